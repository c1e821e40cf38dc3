//! The SQL that SQLite and PostgreSQL share, written once: the task upsert
//! with its "newest status wins" guard, the keyset-page list query and its
//! count, the event log's guarded append and reads, the leases, and the
//! schema migrations. A [`Dialect`] supplies what differs
//! (placeholders, column types, how the clock and the JSON document are
//! written); each backend keeps only its connections and how it runs a
//! statement.
//!
//! Statements are built once per dialect ([`Dialect::statements`]), so the
//! backends' statement caches see the same `&'static str` on every call.

pub(crate) mod migrate;

use super::log::{Claim, LeaseHolder, LoggedEvent, LoggedTask};
use super::query::TaskFilter;
use super::token::finish_page;
use super::{decode_task, state_name, StoreError, TaskPage};
use a2a::{StreamResponse, TaskState};
use chrono::{DateTime, Utc};
use migrate::{heartbeat_schema, log_schema, owner_schema, task_schema, Ledger};
use std::marker::PhantomData;

/// What differs between the SQL of two backends.
pub(crate) trait Dialect: Sized + 'static {
    /// Name used in error messages (`sqlite`, `postgres`).
    const NAME: &'static str;
    /// Column type of a 64-bit integer.
    const INT64: &'static str;
    /// Column type of the task id; it must sort byte-wise, as the other
    /// backends do.
    const ID_TYPE: &'static str;
    /// Column type of the task document.
    const DOC_TYPE: &'static str;
    /// The column holding the wall clock of the last save, with its type.
    const UPDATED_COLUMN: (&'static str, &'static str);
    /// The SQL value of the last-save column; `None` binds the wall clock
    /// in microseconds as the upsert's sixth parameter.
    const UPDATED_VALUE: Option<&'static str>;
    /// Turns a text parameter into [`Dialect::DOC_TYPE`] (a suffix).
    const DOC_FROM_TEXT: &'static str;
    /// Reads the document column as text.
    const DOC_AS_TEXT: &'static str;
    /// A query returning one row if the legacy version list
    /// (`schema_migrations`) exists in the current schema.
    const LEGACY_LEDGER_EXISTS: &'static str;
    /// Whether the page query also returns the total count (as its first
    /// column), so that both come from one statement's snapshot.
    const COUNT_IN_PAGE: bool;
    /// Whether parameters may be arrays (`unnest`), so that one statement
    /// inserts all events of an append ([`Statements::insert_events`]).
    const ARRAY_PARAMS: bool;
    /// Appended to a select whose rows an update is about to claim, so
    /// that concurrent claimers skip each other's rows (empty where one
    /// process writes).
    const SKIP_LOCKED: &'static str;

    /// The character before a parameter's number (`?1`, `$1`).
    const PLACEHOLDER: char;

    /// Placeholder of the `n`-th parameter (1-based).
    fn param(n: usize) -> String {
        format!("{}{n}", Self::PLACEHOLDER)
    }

    /// This dialect's statements, built on first use.
    fn statements() -> &'static Statements;
}

/// A bound value of a built statement; each backend binds it natively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SqlArg {
    /// A text parameter.
    Text(String),
    /// A 64-bit integer parameter.
    Int(i64),
}

/// Conditions joined by `AND`, and the parameters they bind in order.
pub(crate) struct SqlWhere<D> {
    conditions: Vec<String>,
    args: Vec<SqlArg>,
    dialect: PhantomData<D>,
}

impl<D: Dialect> SqlWhere<D> {
    pub fn new() -> Self {
        Self {
            conditions: Vec::new(),
            args: Vec::new(),
            dialect: PhantomData,
        }
    }

    /// Adds a parameter and returns its placeholder.
    pub fn bind(&mut self, arg: SqlArg) -> String {
        self.args.push(arg);
        D::param(self.args.len())
    }

    /// Adds a condition.
    pub fn and(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    /// ` WHERE a AND b`, or nothing without conditions.
    pub fn clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }
}

/// The statements of one dialect that do not depend on a query.
pub(crate) struct Statements {
    /// Inserts or replaces a task unless the stored status is newer or the
    /// stored task has another owner. Parameters: id, context id, state,
    /// status key, document (text), owner, tenant and, without
    /// [`Dialect::UPDATED_VALUE`], the wall clock in microseconds.
    pub upsert: String,
    /// The document of a task by id, owner and tenant, as text.
    pub get: String,
    /// Writes the heartbeat row; parameter: the wall clock in microseconds.
    pub heartbeat: String,
    /// The task table and its indexes (migration 1 of the task store).
    pub task_schema: String,
    /// The heartbeat table (migration 2 of the task store).
    pub heartbeat_schema: String,
    /// The owner and tenant columns (migration 3 of the task store).
    pub owner_schema: String,
    /// The event log and the lease columns (migration 4 of the task store).
    pub log_schema: String,
    /// The migration ledger.
    pub ledger: Ledger,
    /// Appends from position 0: inserts the task, or updates it if its log
    /// is still empty and its owner the same. Parameters: id, context id,
    /// state, status key, document (text), owner, tenant, the new sequence
    /// number, lease owner, lease end (microseconds, both null without a
    /// lease), `after` (0) and, without [`Dialect::UPDATED_VALUE`], the
    /// wall clock in microseconds. Changes no row on a conflict.
    pub append_insert: String,
    /// Appends from position `after` > 0: updates the task if its log ends
    /// there and its owner is the same. The parameters of `append_insert`.
    pub append_update: String,
    /// Inserts one logged event. Parameters: task id, sequence number,
    /// event document (text), append time in microseconds.
    pub insert_event: String,
    /// Inserts all events of an append with [`Dialect::ARRAY_PARAMS`].
    /// Parameters: task id, the sequence numbers, the documents (arrays),
    /// append time in microseconds.
    pub insert_events: Option<String>,
    /// A task with its log position and lease, by id, owner and tenant:
    /// the document as text, seq, lease owner, lease end.
    pub get_logged: String,
    /// Events of a task after a position, in order, if the task is the
    /// owner's. Parameters: task id, after, owner, tenant, limit; columns:
    /// seq, document as text.
    pub events_after: String,
    /// Takes a lease if the task is the owner's, not terminal, and its
    /// lease is free, ours or ended. Parameters: id, owner, tenant,
    /// replica, lease end, now (microseconds); returns the row as
    /// `get_logged` does when it took it.
    pub claim: String,
    /// Extends a replica's leases. Parameters: replica, lease end.
    pub renew_leases: String,
    /// Frees a replica's lease of a task. Parameters: id, replica.
    pub release_lease: String,
    /// Tasks not terminal whose lease ended before parameter 1, longest
    /// ended first, at most parameter 2: id, owner, tenant, lease owner.
    pub expired_leases: String,
    /// Deletes the events appended before parameter 1 (microseconds).
    pub prune_events: String,
}

impl Statements {
    pub fn new<D: Dialect>() -> Self {
        let p = D::param;
        let (updated, _) = D::UPDATED_COLUMN;
        let now = D::UPDATED_VALUE.map_or_else(|| p(8), str::to_owned);
        let append_now = D::UPDATED_VALUE.map_or_else(|| p(12), str::to_owned);
        let doc = D::DOC_FROM_TEXT;
        let terminal = terminal_states();
        let logged_columns = format!("{}, seq, lease_owner, lease_until", D::DOC_AS_TEXT);
        // The columns an append writes, as `SET` assignments.
        let append_set = |value: &dyn Fn(&str, usize) -> String| {
            format!(
                "context_id = {}, state = {}, status_ts = {}, {updated} = {}, doc = {}, \
                 seq = {}, lease_owner = {}, lease_until = {}",
                value("context_id", 2),
                value("state", 3),
                value("status_ts", 4),
                if D::UPDATED_VALUE.is_some() {
                    append_now.clone()
                } else {
                    value(updated, 12)
                },
                value("doc", 5),
                value("seq", 8),
                value("lease_owner", 9),
                value("lease_until", 10),
            )
        };
        Self {
            append_insert: format!(
                "INSERT INTO tasks (id, context_id, state, status_ts, {updated}, doc, owner, tenant,
                                    seq, lease_owner, lease_until)
                 VALUES ({}, {}, {}, {}, {append_now}, {}{doc}, {}, {}, {}, {}, {})
                 ON CONFLICT (id) DO UPDATE SET {}
                 WHERE tasks.seq = {} AND tasks.owner = excluded.owner
                    AND tasks.tenant = excluded.tenant",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(7),
                p(8),
                p(9),
                p(10),
                append_set(&|column, _| format!("excluded.{column}")),
                p(11),
            ),
            append_update: format!(
                "UPDATE tasks SET {}
                 WHERE id = {} AND seq = {} AND owner = {} AND tenant = {}",
                append_set(&|column, n| if column == "doc" {
                    format!("{}{doc}", p(n))
                } else {
                    p(n)
                }),
                p(1),
                p(11),
                p(6),
                p(7),
            ),
            insert_event: format!(
                "INSERT INTO task_events (task_id, seq, doc, appended_at)
                 VALUES ({}, {}, {}{doc}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
            ),
            insert_events: D::ARRAY_PARAMS.then(|| {
                format!(
                    "INSERT INTO task_events (task_id, seq, doc, appended_at)
                     SELECT {}, e.seq, e.doc{doc}, {}
                     FROM unnest({}::{int}[], {}::TEXT[]) AS e (seq, doc)",
                    p(1),
                    p(4),
                    p(2),
                    p(3),
                    int = D::INT64,
                )
            }),
            get_logged: format!(
                "SELECT {logged_columns} FROM tasks WHERE id = {} AND owner = {} AND tenant = {}",
                p(1),
                p(2),
                p(3)
            ),
            events_after: format!(
                "SELECT seq, {} FROM task_events
                 WHERE task_id = {} AND seq > {} AND EXISTS (
                    SELECT 1 FROM tasks
                    WHERE tasks.id = {} AND tasks.owner = {} AND tasks.tenant = {})
                 ORDER BY seq LIMIT {}",
                D::DOC_AS_TEXT,
                p(1),
                p(2),
                p(1),
                p(3),
                p(4),
                p(5),
            ),
            claim: format!(
                "UPDATE tasks SET lease_owner = {}, lease_until = {}
                 WHERE id = {} AND owner = {} AND tenant = {} AND state NOT IN ({terminal})
                    AND (lease_owner IS NULL OR lease_owner = {} OR lease_until < {})
                 RETURNING {logged_columns}",
                p(4),
                p(5),
                p(1),
                p(2),
                p(3),
                p(4),
                p(6),
            ),
            renew_leases: format!(
                "UPDATE tasks SET lease_until = {} WHERE lease_owner = {}",
                p(2),
                p(1)
            ),
            release_lease: format!(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL
                 WHERE id = {} AND lease_owner = {}",
                p(1),
                p(2)
            ),
            expired_leases: format!(
                "SELECT id, owner, tenant, lease_owner FROM tasks
                 WHERE lease_until < {} AND state NOT IN ({terminal})
                 ORDER BY lease_until, id LIMIT {}",
                p(1),
                p(2)
            ),
            prune_events: format!("DELETE FROM task_events WHERE appended_at < {}", p(1)),
            log_schema: log_schema::<D>(),
            // A late write of an older status (a detached save that lost
            // the race) must not overwrite a newer one.
            upsert: format!(
                "INSERT INTO tasks (id, context_id, state, status_ts, {updated}, doc, owner, tenant)
                 VALUES ({}, {}, {}, {}, {now}, {}{}, {}, {})
                 ON CONFLICT (id) DO UPDATE SET
                    context_id = excluded.context_id,
                    state = excluded.state,
                    status_ts = excluded.status_ts,
                    {updated} = excluded.{updated},
                    doc = excluded.doc
                 WHERE excluded.status_ts >= tasks.status_ts
                    AND tasks.owner = excluded.owner AND tasks.tenant = excluded.tenant",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                D::DOC_FROM_TEXT,
                p(6),
                p(7),
            ),
            get: format!(
                "SELECT {} FROM tasks WHERE id = {} AND owner = {} AND tenant = {}",
                D::DOC_AS_TEXT,
                p(1),
                p(2),
                p(3)
            ),
            heartbeat: format!(
                "INSERT INTO heartbeat (id, beat_us) VALUES (1, {})
                 ON CONFLICT (id) DO UPDATE SET beat_us = excluded.beat_us",
                p(1)
            ),
            task_schema: task_schema::<D>(),
            heartbeat_schema: heartbeat_schema::<D>(),
            owner_schema: owner_schema(),
            ledger: Ledger::new::<D>(),
        }
    }
}

/// The stored names of the terminal states, quoted and separated by commas
/// (for `state NOT IN (...)`).
fn terminal_states() -> String {
    use TaskState::*;
    let all = [
        Unspecified,
        Submitted,
        Working,
        Completed,
        Failed,
        Canceled,
        InputRequired,
        Rejected,
        AuthRequired,
    ];
    all.iter()
        .filter(|s| s.is_terminal())
        .filter_map(|s| state_name(s).ok())
        .map(|name| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Microseconds since the epoch, as the log's time columns keep them.
pub(crate) fn micros(ts: DateTime<Utc>) -> i64 {
    ts.timestamp_micros()
}

/// A lease end read back from its column.
fn from_micros(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("lease end {us} out of range")))
}

/// A sequence number as the `seq` columns keep it.
pub(crate) fn seq_arg(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Backend(format!("sequence number {seq} too large")))
}

/// A limit as SQL binds it.
pub(crate) fn limit_arg(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Serializes an event for the log.
pub(crate) fn encode_event(event: &LoggedEvent) -> Result<String, StoreError> {
    serde_json::to_string(&event.event)
        .map_err(|e| StoreError::Corrupt(format!("encode event {}: {e}", event.seq)))
}

/// A logged event from its row (`seq`, document).
pub(crate) fn decode_event(seq: i64, doc: &str) -> Result<LoggedEvent, StoreError> {
    let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("event number {seq}")))?;
    let event: StreamResponse = serde_json::from_str(doc)
        .map_err(|e| StoreError::Corrupt(format!("decode event {seq}: {e}")))?;
    Ok(LoggedEvent { seq, event })
}

/// The lease of an append as its two columns bind it.
pub(crate) fn lease_args(lease: super::Lease<'_>) -> (Option<&str>, Option<i64>) {
    match lease {
        super::Lease::Hold { replica, until } => (Some(replica), Some(micros(until))),
        super::Lease::Release => (None, None),
    }
}

/// The columns of `get_logged` (and of `claim`'s `RETURNING`), as read.
pub(crate) struct LoggedRow {
    pub doc: String,
    pub seq: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
}

impl LoggedRow {
    pub fn decode(self) -> Result<LoggedTask, StoreError> {
        let seq = u64::try_from(self.seq)
            .map_err(|_| StoreError::Corrupt(format!("task log position {}", self.seq)))?;
        let lease = match (self.lease_owner, self.lease_until) {
            (Some(replica), Some(until)) => Some(LeaseHolder {
                replica,
                until: from_micros(until)?,
            }),
            _ => None,
        };
        Ok(LoggedTask {
            task: decode_task(&self.doc)?,
            seq,
            lease,
        })
    }
}

/// How often `claim` tries when the lease changes between its statements.
pub(crate) const CLAIM_ATTEMPTS: usize = 3;

/// The error of a claim that found the lease changing on every attempt.
pub(crate) fn claim_undecided(id: &str) -> StoreError {
    StoreError::Backend(format!("claim of task {id}: its lease kept changing"))
}

/// What a `claim` that took no lease found: the task as it is, read right
/// after (`None`: none of that owner).
pub(crate) enum NotClaimed {
    /// The outcome to report.
    Final(Box<Claim>),
    /// The lease was free again when read (it ended or was released
    /// between the statements): try the claim again.
    Retry,
}

/// Classifies a task the claim statement did not lease.
pub(crate) fn not_claimed(
    found: Option<LoggedTask>,
    replica: &str,
    now: DateTime<Utc>,
) -> NotClaimed {
    match found {
        None => NotClaimed::Final(Box::new(Claim::Missing)),
        Some(t) if t.task.status.state.is_terminal() => {
            NotClaimed::Final(Box::new(Claim::Terminal(t)))
        }
        Some(t) => match &t.lease {
            Some(held) if held.replica != replica && micros(held.until) >= micros(now) => {
                NotClaimed::Final(Box::new(Claim::Held(t)))
            }
            _ => NotClaimed::Retry,
        },
    }
}

/// The statements of one `ListTasks` page.
#[derive(Debug)]
pub(crate) struct ListSql {
    /// `SELECT COUNT(*)` of the matching tasks over all pages; binds the
    /// first `count_args` of `args`.
    pub count: String,
    /// The page: `status_ts` and the document as text, newest status first,
    /// one row more than the page size (to tell whether a page follows);
    /// with [`Dialect::COUNT_IN_PAGE`] the total comes first.
    pub page: String,
    /// Parameters of `page`.
    pub args: Vec<SqlArg>,
    /// How many leading `args` the count binds.
    pub count_args: usize,
    /// Rows a page holds.
    pub page_size: usize,
}

impl ListSql {
    /// The statements for `filter` in dialect `D`.
    pub fn new<D: Dialect>(filter: &TaskFilter<'_>) -> Result<Self, StoreError> {
        let mut w = SqlWhere::<D>::new();
        filter.where_sql(&mut w)?;
        let count = format!("SELECT COUNT(*) FROM tasks{}", w.clause());
        let count_args = w.args.len();
        filter.keyset_sql(&mut w);
        let page_size = filter.page_size();
        let limit = w.bind(SqlArg::Int(
            i64::try_from(page_size.saturating_add(1)).unwrap_or(i64::MAX),
        ));
        let total = if D::COUNT_IN_PAGE {
            // An uncorrelated subquery: evaluated once.
            format!("({count}) AS total, ")
        } else {
            String::new()
        };
        let page = format!(
            "SELECT {total}status_ts, {} FROM tasks{} ORDER BY status_ts DESC, id ASC LIMIT {limit}",
            D::DOC_AS_TEXT,
            w.clause(),
        );
        Ok(Self {
            count,
            page,
            args: w.args,
            count_args,
            page_size,
        })
    }
}

/// A page from its rows (status key and document, in list order, at most
/// one more than `page_size`) and the total count.
pub(crate) fn page_from_rows(
    rows: impl ExactSizeIterator<Item = Result<(i64, String), StoreError>>,
    page_size: usize,
    total: i64,
) -> Result<TaskPage, StoreError> {
    let has_more = rows.len() > page_size;
    let mut tasks = Vec::with_capacity(rows.len().min(page_size));
    let mut last_key = None;
    for row in rows.take(page_size) {
        let (key, doc) = row?;
        tasks.push(decode_task(&doc)?);
        last_key = Some(key);
    }
    Ok(finish_page(tasks, has_more, last_key, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::token::PageKey;
    use crate::store::{ListQuery, TaskOwner};
    use a2a::TaskState;

    use crate::store::postgres::Postgres;
    use crate::store::sqlite::Sqlite;

    fn squash(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn list<D: Dialect>(q: &ListQuery) -> ListSql {
        ListSql::new::<D>(&TaskFilter::new(q).expect("filter")).expect("sql")
    }

    #[test]
    fn no_filters() {
        let q = ListQuery {
            page_size: 10,
            ..ListQuery::default()
        };
        let sql = list::<Sqlite>(&q);
        let owner = "tenant = ?1 AND owner = ?2";
        assert_eq!(
            sql.count,
            format!("SELECT COUNT(*) FROM tasks WHERE {owner}")
        );
        assert_eq!(
            sql.page,
            format!(
                "SELECT status_ts, doc FROM tasks WHERE {owner} \
                 ORDER BY status_ts DESC, id ASC LIMIT ?3"
            )
        );
        let anonymous = [SqlArg::Text(String::new()), SqlArg::Text(String::new())];
        assert_eq!(sql.args, [&anonymous[..], &[SqlArg::Int(11)]].concat());
        assert_eq!(sql.count_args, 2);
    }

    #[test]
    fn every_filter_and_the_keyset() {
        let token = PageKey {
            status_key: 77,
            id: "t-9".into(),
        }
        .encode();
        let q = ListQuery {
            owner: TaskOwner::new(&crate::protocol::Principal::new("al"), Some("acme")),
            context_id: Some("ctx".into()),
            state: Some(TaskState::Completed),
            status_after: chrono::DateTime::from_timestamp(1, 5),
            page_size: 2,
            page_token: Some(token),
        };
        let sql = list::<Sqlite>(&q);
        let filters =
            "tenant = ?1 AND owner = ?2 AND context_id = ?3 AND state = ?4 AND status_ts > ?5";
        assert_eq!(
            sql.count,
            format!("SELECT COUNT(*) FROM tasks WHERE {filters}")
        );
        assert_eq!(
            sql.page,
            format!(
                "SELECT status_ts, doc FROM tasks WHERE {filters} AND \
                 (status_ts < ?6 OR (status_ts = ?6 AND id > ?7)) \
                 ORDER BY status_ts DESC, id ASC LIMIT ?8"
            )
        );
        assert_eq!(
            sql.args,
            vec![
                SqlArg::Text("acme".into()),
                SqlArg::Text("al".into()),
                SqlArg::Text("ctx".into()),
                SqlArg::Text("TASK_STATE_COMPLETED".into()),
                SqlArg::Int(1_000_000_005),
                SqlArg::Int(77),
                SqlArg::Text("t-9".into()),
                SqlArg::Int(3),
            ]
        );
        assert_eq!((sql.count_args, sql.page_size), (5, 2));

        // The other dialect: the same conditions, its placeholders, and the
        // count inside the page query.
        let sql = list::<Postgres>(&q);
        let filters =
            "tenant = $1 AND owner = $2 AND context_id = $3 AND state = $4 AND status_ts > $5";
        assert_eq!(
            sql.page,
            format!(
                "SELECT (SELECT COUNT(*) FROM tasks WHERE {filters}) AS total, status_ts, \
                 doc::text FROM tasks WHERE {filters} AND \
                 (status_ts < $6 OR (status_ts = $6 AND id > $7)) \
                 ORDER BY status_ts DESC, id ASC LIMIT $8"
            )
        );
    }

    #[test]
    fn keyset_alone_is_not_counted() {
        let token = PageKey {
            status_key: i64::MIN,
            id: String::new(),
        }
        .encode();
        let q = ListQuery {
            page_size: 0,
            page_token: Some(token),
            ..ListQuery::default()
        };
        let sql = list::<Sqlite>(&q);
        assert_eq!(
            sql.count,
            "SELECT COUNT(*) FROM tasks WHERE tenant = ?1 AND owner = ?2"
        );
        assert_eq!(sql.count_args, 2);
        // A page holds at least one task.
        assert_eq!(sql.page_size, 1);
        assert_eq!(sql.args.last(), Some(&SqlArg::Int(2)));
    }

    #[test]
    fn bad_token_is_rejected_before_any_sql() {
        let q = ListQuery {
            page_size: 5,
            page_token: Some("v1.nope".into()),
            ..ListQuery::default()
        };
        assert!(matches!(
            TaskFilter::new(&q),
            Err(StoreError::InvalidPageToken)
        ));
    }

    #[test]
    fn filter_predicate_matches_the_sql() {
        use crate::store::conformance::task;
        let q = ListQuery {
            owner: TaskOwner::anonymous(),
            context_id: Some("a".into()),
            state: Some(TaskState::Working),
            status_after: Some(crate::store::conformance::ts(10)),
            page_size: 5,
            page_token: None,
        };
        let f = TaskFilter::new(&q).expect("filter");
        let key = |t: &a2a::Task| crate::store::status_key(t.status.timestamp);
        let hit = task("x", "a", TaskState::Working, 11);
        let anonymous = TaskOwner::anonymous();
        assert!(f.matches(&hit, &anonymous, key(&hit)));
        let bob = TaskOwner::new(&crate::protocol::Principal::new("bob"), None);
        assert!(!f.matches(&hit, &bob, key(&hit)));
        for miss in [
            task("x", "b", TaskState::Working, 11),
            task("x", "a", TaskState::Completed, 11),
            task("x", "a", TaskState::Working, 10),
        ] {
            assert!(!f.matches(&miss, &anonymous, key(&miss)), "{miss:?}");
        }
        assert!(f.after_token(0, "any"));
    }

    #[test]
    fn terminal_states_are_the_four() {
        assert_eq!(
            terminal_states(),
            "'TASK_STATE_COMPLETED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELED', \
             'TASK_STATE_REJECTED'"
        );
    }

    #[test]
    fn appends_are_guarded_by_the_log_position_and_owner() {
        let s = Sqlite::statements();
        assert_eq!(
            squash(&s.append_update),
            "UPDATE tasks SET context_id = ?2, state = ?3, status_ts = ?4, updated_us = ?12, \
             doc = ?5, seq = ?8, lease_owner = ?9, lease_until = ?10 \
             WHERE id = ?1 AND seq = ?11 AND owner = ?6 AND tenant = ?7"
        );
        assert!(
            squash(&s.append_insert).ends_with(
                "WHERE tasks.seq = ?11 AND tasks.owner = excluded.owner \
                 AND tasks.tenant = excluded.tenant"
            ),
            "{}",
            s.append_insert
        );
        assert!(s.insert_events.is_none());
        let s = Postgres::statements();
        assert!(
            squash(&s.append_insert)
                .contains("VALUES ($1, $2, $3, $4, now(), $5::text::json, $6, $7, $8, $9, $10)"),
            "{}",
            s.append_insert
        );
        assert!(
            squash(&s.append_update).contains("updated_at = now(), doc = $5::text::json"),
            "{}",
            s.append_update
        );
        assert_eq!(
            s.insert_events.as_deref().map(squash).as_deref(),
            Some(
                "INSERT INTO task_events (task_id, seq, doc, appended_at) \
                 SELECT $1, e.seq, e.doc::text::json, $4 \
                 FROM unnest($2::BIGINT[], $3::TEXT[]) AS e (seq, doc)"
            )
        );
    }

    #[test]
    fn upsert_guards_the_newest_status() {
        let s = Sqlite::statements();
        assert_eq!(
            squash(&s.upsert),
            "INSERT INTO tasks (id, context_id, state, status_ts, updated_us, doc, owner, tenant) \
             VALUES (?1, ?2, ?3, ?4, ?8, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET \
             context_id = excluded.context_id, state = excluded.state, \
             status_ts = excluded.status_ts, updated_us = excluded.updated_us, \
             doc = excluded.doc WHERE excluded.status_ts >= tasks.status_ts \
             AND tasks.owner = excluded.owner AND tasks.tenant = excluded.tenant"
        );
        let s = Postgres::statements();
        assert!(
            squash(&s.upsert).contains("VALUES ($1, $2, $3, $4, now(), $5::text::json, $6, $7)"),
            "{}",
            s.upsert
        );
        assert_eq!(
            s.get,
            "SELECT doc::text FROM tasks WHERE id = $1 AND owner = $2 AND tenant = $3"
        );
    }
}
