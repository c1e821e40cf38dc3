//! The SQL that the SQLite and PostgreSQL push stores share: the schema and
//! every statement, built from the task store's [`Dialect`] (placeholders,
//! integer and id types). Each backend keeps only how it runs them.

use super::{config_id, decode_config, encode_config, Notification, Takeover};
use crate::store::sql::Dialect;
use crate::store::{Migration, StoreError, TaskOwner};
use chrono::DateTime;

/// The component name of the push tables in the migration ledger.
pub(super) const COMPONENT: &str = "push";

/// The outbox columns, in the order [`OutboxRow`] binds and reads them.
const OUTBOX_COLUMNS: &str = "event_id, config_id, seq, principal, tenant, task_id, config, \
     payload, created_us, traceparent, tracestate";

/// The push store's statements in one dialect.
pub(super) struct PushSql {
    /// Migration 1: both tables and their indexes.
    pub schema: String,
    /// Inserts a config or replaces its JSON, keeping its creation order.
    /// Parameters: principal, tenant, task id, config id, config JSON.
    pub put_config: String,
    /// One config's JSON; parameters: principal, tenant, task id, config id.
    pub get_config: String,
    /// The JSON of a task's configs in creation order; parameters:
    /// principal, tenant, task id.
    pub list_configs: String,
    /// Removes one config; parameters as `get_config`.
    pub delete_config: String,
    /// Removes the outbox rows of one config; parameters as `get_config`.
    pub delete_config_outbox: String,
    /// Adds one outbox row unless it is there; parameters: the columns of
    /// [`OutboxRow`] in order, then the claim's replica and until (us).
    pub enqueue: String,
    /// The outbox rows with `seq` above parameter 1, at most parameter 2.
    pub pending: String,
    /// Removes one outbox row; parameters: event id, config id.
    pub settle: String,
    /// The number of outbox rows.
    pub depth: String,
    /// Migration 2: who delivers each outbox row, and until when.
    pub claims: String,
    /// Claims rows that `Takeover` selects and returns them; one statement
    /// per [`Takeover`] (in [`Takeover::index`] order). Parameters:
    /// replica, claimed until (us), seq above, limit, now (us).
    pub claim: [String; 3],
    /// Extends every claim of a replica; parameters: replica, until (us).
    pub renew: String,
    /// Migration 3: the W3C trace context of the event, sent with the
    /// webhook so the delivery joins the request's trace.
    pub trace_context: String,
}

impl PushSql {
    pub fn new<D: Dialect>() -> Self {
        let p = D::param;
        let config_key = format!(
            "principal = {} AND tenant = {} AND task_id = {} AND config_id = {}",
            p(1),
            p(2),
            p(3),
            p(4)
        );
        let values = (1..=13).map(p).collect::<Vec<_>>().join(", ");
        Self {
            schema: schema::<D>(),
            // Creation order counts per task: the next number after the
            // task's highest, found through the primary key. A replaced
            // config keeps its number (the update leaves it alone).
            put_config: format!(
                "INSERT INTO push_configs
                    (principal, tenant, task_id, config_id, config, created_order)
                 VALUES ({p1}, {p2}, {p3}, {p4}, {p5}, (
                    SELECT COALESCE(MAX(created_order), 0) + 1 FROM push_configs
                    WHERE principal = {p1} AND tenant = {p2} AND task_id = {p3}
                 ))
                 ON CONFLICT (principal, tenant, task_id, config_id)
                 DO UPDATE SET config = excluded.config",
                p1 = p(1),
                p2 = p(2),
                p3 = p(3),
                p4 = p(4),
                p5 = p(5),
            ),
            get_config: format!("SELECT config FROM push_configs WHERE {config_key}"),
            list_configs: format!(
                "SELECT config FROM push_configs
                 WHERE principal = {} AND tenant = {} AND task_id = {}
                 ORDER BY created_order, config_id",
                p(1),
                p(2),
                p(3)
            ),
            delete_config: format!("DELETE FROM push_configs WHERE {config_key}"),
            delete_config_outbox: format!("DELETE FROM push_outbox WHERE {config_key}"),
            enqueue: format!(
                "INSERT INTO push_outbox ({OUTBOX_COLUMNS}, claimed_by, claimed_until)
                 VALUES ({values})
                 ON CONFLICT (event_id, config_id) DO NOTHING"
            ),
            pending: format!(
                "SELECT {OUTBOX_COLUMNS} FROM push_outbox WHERE seq > {}
                 ORDER BY seq, event_id, config_id LIMIT {}",
                p(1),
                p(2)
            ),
            settle: format!(
                "DELETE FROM push_outbox WHERE event_id = {} AND config_id = {}",
                p(1),
                p(2)
            ),
            depth: "SELECT COUNT(*) FROM push_outbox".into(),
            claims: format!(
                "ALTER TABLE push_outbox ADD COLUMN claimed_by {id} NOT NULL DEFAULT '';
                 ALTER TABLE push_outbox ADD COLUMN claimed_until {int} NOT NULL DEFAULT 0;
                 CREATE INDEX push_outbox_by_claim ON push_outbox (claimed_by);",
                id = D::ID_TYPE,
                int = D::INT64,
            ),
            claim: [Takeover::All, Takeover::OwnAndExpired, Takeover::Expired].map(|t| {
                let which = match t {
                    // Every statement binds the same parameters.
                    Takeover::All => format!("(claimed_until < {} OR TRUE)", p(5)),
                    Takeover::OwnAndExpired => {
                        format!("(claimed_by = {} OR claimed_until < {})", p(1), p(5))
                    }
                    Takeover::Expired => {
                        format!("claimed_by <> {} AND claimed_until < {}", p(1), p(5))
                    }
                };
                // The inner select picks the page in delivery order; the
                // update takes it. PostgreSQL skips rows another replica
                // is claiming this instant instead of waiting for them.
                format!(
                    "UPDATE push_outbox SET claimed_by = {p1}, claimed_until = {p2}
                     WHERE (event_id, config_id) IN (
                        SELECT event_id, config_id FROM push_outbox
                        WHERE seq > {p3} AND {which}
                        ORDER BY seq, event_id, config_id LIMIT {p4}{lock})
                     RETURNING {OUTBOX_COLUMNS}",
                    p1 = p(1),
                    p2 = p(2),
                    p3 = p(3),
                    p4 = p(4),
                    lock = D::SKIP_LOCKED,
                )
            }),
            renew: format!(
                "UPDATE push_outbox SET claimed_until = {} WHERE claimed_by = {}",
                p(2),
                p(1)
            ),
            trace_context: "ALTER TABLE push_outbox ADD COLUMN traceparent TEXT;
                 ALTER TABLE push_outbox ADD COLUMN tracestate TEXT;"
                .into(),
        }
    }

    /// The push tables' migrations, for a backend's `Migrations`.
    pub fn migrations(&'static self) -> [Migration<'static>; 3] {
        [
            Migration {
                version: 1,
                sql: &self.schema,
            },
            Migration {
                version: 2,
                sql: &self.claims,
            },
            Migration {
                version: 3,
                sql: &self.trace_context,
            },
        ]
    }
}

/// The push tables in dialect `D`. Ids use the dialect's byte-wise
/// collation, so rows of one `seq` come back in the same order everywhere.
fn schema<D: Dialect>() -> String {
    format!(
        "CREATE TABLE push_configs (
            principal      {id} NOT NULL,
            tenant         {id} NOT NULL,
            task_id        {id} NOT NULL,
            config_id      {id} NOT NULL,
            config         TEXT NOT NULL, -- the config as JSON
            created_order  {int} NOT NULL, -- creation order within the task
            PRIMARY KEY (principal, tenant, task_id, config_id)
        );
        CREATE TABLE push_outbox (
            event_id    {id} NOT NULL,
            config_id   {id} NOT NULL,
            seq         {int} NOT NULL,
            principal   {id} NOT NULL,
            tenant      {id} NOT NULL,
            task_id     {id} NOT NULL,
            config      TEXT NOT NULL, -- the config snapshot as JSON
            payload     TEXT NOT NULL, -- one StreamResponse as JSON
            created_us  {int} NOT NULL, -- us since epoch
            PRIMARY KEY (event_id, config_id)
        );
        CREATE INDEX push_outbox_by_seq ON push_outbox (seq);
        -- Deleting a config drops its pending notifications.
        CREATE INDEX push_outbox_by_config
            ON push_outbox (principal, tenant, task_id, config_id);",
        id = D::ID_TYPE,
        int = D::INT64,
    )
}

/// A notification as the SQL backends bind and read it, in the order of
/// [`OUTBOX_COLUMNS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OutboxRow {
    pub event_id: String,
    pub config_id: String,
    pub seq: i64,
    pub principal: String,
    pub tenant: String,
    pub task_id: String,
    pub config: String,
    pub payload: String,
    pub created_us: i64,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl OutboxRow {
    /// The rows of a batch, or the first notification's encoding error.
    pub fn batch(batch: &[Notification]) -> Result<Vec<Self>, StoreError> {
        batch.iter().map(Self::new).collect()
    }

    fn new(n: &Notification) -> Result<Self, StoreError> {
        Ok(Self {
            event_id: n.event_id.clone(),
            config_id: config_id(&n.config)?.to_owned(),
            seq: n.seq,
            principal: n.owner.principal().to_owned(),
            tenant: n.owner.tenant().to_owned(),
            task_id: n.task_id.clone(),
            config: encode_config(&n.config)?,
            payload: n.payload.clone(),
            created_us: n.created_at.timestamp_micros(),
            traceparent: n.traceparent.clone(),
            tracestate: n.tracestate.clone(),
        })
    }

    /// The notification this row stores.
    pub fn decode(self) -> Result<Notification, StoreError> {
        let created_at = DateTime::from_timestamp_micros(self.created_us).ok_or_else(|| {
            StoreError::Corrupt(format!("outbox timestamp {} out of range", self.created_us))
        })?;
        let config = decode_config(&self.config)?;
        if config.id.as_deref() != Some(self.config_id.as_str()) {
            return Err(StoreError::Corrupt(format!(
                "outbox row {}/{} holds config {:?}",
                self.event_id, self.config_id, config.id
            )));
        }
        Ok(Notification {
            seq: self.seq,
            event_id: self.event_id,
            owner: TaskOwner::from_stored(&self.principal, &self.tenant),
            task_id: self.task_id,
            config,
            payload: self.payload,
            created_at,
            traceparent: self.traceparent,
            tracestate: self.tracestate,
        })
    }
}

/// Rows a claim returned, in delivery order (`RETURNING` keeps none).
pub(super) fn in_delivery_order(mut rows: Vec<OutboxRow>) -> Result<Vec<Notification>, StoreError> {
    rows.sort_by(|a, b| {
        (a.seq, &a.event_id, &a.config_id).cmp(&(b.seq, &b.event_id, &b.config_id))
    });
    rows.into_iter().map(OutboxRow::decode).collect()
}

/// A page size as SQL binds it.
pub(super) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::Postgres;
    use crate::store::sqlite::Sqlite;

    fn squash(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_dialects_differ_only_in_placeholders_and_types() {
        let (lite, pg) = (PushSql::new::<Sqlite>(), PushSql::new::<Postgres>());
        assert_eq!(
            squash(&lite.enqueue),
            "INSERT INTO push_outbox (event_id, config_id, seq, principal, tenant, task_id, \
             config, payload, created_us, traceparent, tracestate, claimed_by, claimed_until) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (event_id, config_id) DO NOTHING"
        );
        assert_eq!(lite.enqueue.replace('?', "$"), pg.enqueue);
        assert_eq!(lite.put_config.replace('?', "$"), pg.put_config);
        assert_eq!(
            squash(&pg.pending),
            "SELECT event_id, config_id, seq, principal, tenant, task_id, config, payload, \
             created_us, traceparent, tracestate FROM push_outbox WHERE seq > $1 \
             ORDER BY seq, event_id, config_id LIMIT $2"
        );
        assert!(pg
            .schema
            .contains(r#"config_id   TEXT COLLATE "C" NOT NULL"#));
        assert!(lite.schema.contains("seq         INTEGER NOT NULL"));
    }

    #[test]
    fn a_row_without_its_config_id_is_corrupt() {
        let row = OutboxRow {
            event_id: "e".into(),
            config_id: "c".into(),
            seq: 1,
            principal: String::new(),
            tenant: String::new(),
            task_id: "t".into(),
            config: r#"{"url":"https://h.example","id":"other"}"#.into(),
            payload: "{}".into(),
            created_us: 0,
            traceparent: None,
            tracestate: None,
        };
        assert!(matches!(row.clone().decode(), Err(StoreError::Corrupt(_))));
        let fixed = OutboxRow {
            config: r#"{"url":"https://h.example","id":"c"}"#.into(),
            ..row
        };
        let n = fixed.decode().expect("decode");
        assert_eq!((n.config_id(), &n.owner), ("c", &TaskOwner::anonymous()));
    }
}
