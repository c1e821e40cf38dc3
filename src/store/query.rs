//! The filters of a [`ListQuery`], written once for every backend: as SQL
//! conditions for SQLite and PostgreSQL and as a predicate for the memory
//! store. A new filter is added here, in both forms side by side.

use super::sql::{Dialect, SqlArg, SqlWhere};
use super::token::PageKey;
use super::{state_name, time_key, ListQuery, StoreError, TaskOwner};
use a2a::Task;

/// A [`ListQuery`] with its page token decoded and its time converted to the
/// stored sort key.
#[derive(Debug)]
pub(crate) struct TaskFilter<'q> {
    query: &'q ListQuery,
    status_after: Option<i64>,
    after: Option<PageKey>,
}

impl<'q> TaskFilter<'q> {
    /// Decodes the page token; an invalid one is
    /// [`StoreError::InvalidPageToken`].
    pub fn new(query: &'q ListQuery) -> Result<Self, StoreError> {
        Ok(Self {
            after: PageKey::decode_opt(query.page_token.as_deref())?,
            status_after: query.status_after.map(time_key),
            query,
        })
    }

    /// Most tasks in one page (at least 1).
    pub fn page_size(&self) -> usize {
        self.query.page_size.max(1)
    }

    /// Whether `task` of `owner`, whose status sort key is `status_key`,
    /// passes the filters (on any page). The same tests as
    /// [`TaskFilter::where_sql`].
    pub fn matches(&self, task: &Task, owner: &TaskOwner, status_key: i64) -> bool {
        let q = self.query;
        &q.owner == owner
            && q.context_id.as_ref().is_none_or(|c| &task.context_id == c)
            && q.state.as_ref().is_none_or(|s| &task.status.state == s)
            && self.status_after.is_none_or(|a| status_key > a)
    }

    /// Whether a matching task lies after the page token, i.e. on this page
    /// or a later one. The same test as [`TaskFilter::keyset_sql`].
    pub fn after_token(&self, status_key: i64, id: &str) -> bool {
        self.after
            .as_ref()
            .is_none_or(|k| k.precedes(status_key, id))
    }

    /// Adds the filters as conditions over the `tasks` columns.
    pub fn where_sql<D: Dialect>(&self, w: &mut SqlWhere<D>) -> Result<(), StoreError> {
        let q = self.query;
        let p = w.bind(SqlArg::Text(q.owner.tenant().to_owned()));
        w.and(format!("tenant = {p}"));
        let p = w.bind(SqlArg::Text(q.owner.principal().to_owned()));
        w.and(format!("owner = {p}"));
        if let Some(c) = &q.context_id {
            let p = w.bind(SqlArg::Text(c.clone()));
            w.and(format!("context_id = {p}"));
        }
        if let Some(s) = &q.state {
            let p = w.bind(SqlArg::Text(state_name(s)?));
            w.and(format!("state = {p}"));
        }
        if let Some(t) = self.status_after {
            let p = w.bind(SqlArg::Int(t));
            w.and(format!("status_ts > {p}"));
        }
        Ok(())
    }

    /// Adds the page token's position as a keyset condition: strictly after
    /// it in list order (status descending, then id ascending).
    pub fn keyset_sql<D: Dialect>(&self, w: &mut SqlWhere<D>) {
        if let Some(k) = &self.after {
            let t = w.bind(SqlArg::Int(k.status_key));
            let i = w.bind(SqlArg::Text(k.id.clone()));
            w.and(format!(
                "(status_ts < {t} OR (status_ts = {t} AND id > {i}))"
            ));
        }
    }
}
