//! Versioned schema changes, kept per component so that several owners
//! (the task store, an agent's own tables) can share one database.
//!
//! Applied versions are recorded in `schema_versions (component, version,
//! applied_us)`. Builds before the split recorded the versions of every
//! component in one list, `schema_migrations (version)`; a component that
//! adopts those versions ([`Migrations::adopting`]) takes over its own the
//! first time it runs, so an existing database is not migrated twice.

use super::Dialect;
use crate::store::StoreError;

/// One schema change.
///
/// ```
/// use abacus::store::Migration;
/// const NOTES: Migration = Migration {
///     version: 1,
///     sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
/// };
/// assert_eq!(NOTES.version, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration<'a> {
    /// Position in the component's order; versions only grow.
    pub version: i64,
    /// The statements that make the change, run in one transaction.
    pub sql: &'a str,
}

/// The schema changes of one component of a database, oldest first. Never
/// edit a change that has shipped; append a new one.
///
/// ```
/// use abacus::store::{Migration, Migrations};
/// const NOTES: Migrations = Migrations::new(
///     "notes",
///     &[Migration {
///         version: 1,
///         sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
///     }],
/// );
/// assert_eq!(NOTES.latest(), 1);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Migrations<'a> {
    component: &'a str,
    steps: &'a [Migration<'a>],
    legacy: &'a [i64],
}

impl<'a> Migrations<'a> {
    /// The changes `steps` of `component` (a name unique in the database).
    pub const fn new(component: &'a str, steps: &'a [Migration<'a>]) -> Self {
        Self {
            component,
            steps,
            legacy: &[],
        }
    }

    /// Marks `versions` as this component's entries of the single version
    /// list of earlier builds (`schema_migrations`).
    pub(crate) const fn adopting(mut self, versions: &'a [i64]) -> Self {
        self.legacy = versions;
        self
    }

    /// The component's name.
    pub fn component(&self) -> &'a str {
        self.component
    }

    /// The newest version this build knows (0 without steps).
    pub fn latest(&self) -> i64 {
        self.steps.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Whether the legacy version list must be read on the first run.
    pub(crate) fn adopts_legacy(&self) -> bool {
        !self.legacy.is_empty()
    }
}

/// The ledger's statements in one dialect.
pub(crate) struct Ledger {
    /// Creates `schema_versions` if missing.
    pub create: String,
    /// The newest applied version of a component (parameter 1), 0 if none.
    pub current: String,
    /// Records a version: component, version, microseconds since the epoch.
    pub record: String,
}

impl Ledger {
    pub fn new<D: Dialect>() -> Self {
        let p = D::param;
        let int = D::INT64;
        Self {
            create: format!(
                "CREATE TABLE IF NOT EXISTS schema_versions (
                    component   TEXT NOT NULL,
                    version     {int} NOT NULL,
                    applied_us  {int} NOT NULL,
                    PRIMARY KEY (component, version)
                )"
            ),
            current: format!(
                "SELECT COALESCE(MAX(version), 0) FROM schema_versions WHERE component = {}",
                p(1)
            ),
            record: format!(
                "INSERT INTO schema_versions (component, version, applied_us) VALUES ({}, {}, {})",
                p(1),
                p(2),
                p(3)
            ),
        }
    }
}

/// The versions in the legacy list (only read when its table exists).
pub(crate) const LEGACY_VERSIONS: &str = "SELECT version FROM schema_migrations";

/// What a run of [`Migrations`] must do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan<'a> {
    /// Versions applied by an earlier build, to record without running.
    pub adopt: Vec<i64>,
    /// Changes to run and record, in order.
    pub apply: Vec<Migration<'a>>,
}

/// Plans a run of `migrations` given the component's newest recorded
/// version and the legacy list's versions (empty when not read).
pub(crate) fn plan<'a, D: Dialect>(
    migrations: &Migrations<'a>,
    current: i64,
    legacy: &[i64],
) -> Result<Plan<'a>, StoreError> {
    let latest = migrations.latest();
    if current > latest {
        return Err(StoreError::Backend(format!(
            "{}: schema version {current} of {:?} is newer than this build supports ({latest})",
            D::NAME,
            migrations.component
        )));
    }
    let adopt: Vec<i64> = if current == 0 {
        let mut own: Vec<i64> = migrations
            .legacy
            .iter()
            .copied()
            .filter(|v| legacy.contains(v))
            .collect();
        own.sort_unstable();
        own
    } else {
        Vec::new()
    };
    let done = adopt.last().copied().unwrap_or(0).max(current);
    let apply = migrations
        .steps
        .iter()
        .filter(|m| m.version > done)
        .copied()
        .collect();
    Ok(Plan { adopt, apply })
}

/// The task store's schema in dialect `D`.
pub(crate) fn task_schema<D: Dialect>() -> String {
    let (updated, updated_type) = D::UPDATED_COLUMN;
    format!(
        "CREATE TABLE tasks (
            id          {id} PRIMARY KEY NOT NULL,
            context_id  TEXT NOT NULL,
            state       TEXT NOT NULL,
            status_ts   {int} NOT NULL, -- ns since epoch; i64::MIN = none
            {updated}  {updated_type}, -- wall clock of the last save
            doc         {doc} NOT NULL  -- the task as JSON
        );
        CREATE INDEX tasks_by_status ON tasks (status_ts DESC, id);
        CREATE INDEX tasks_by_context ON tasks (context_id, status_ts DESC, id);
        CREATE INDEX tasks_by_state ON tasks (state, status_ts DESC, id);",
        id = D::ID_TYPE,
        int = D::INT64,
        doc = D::DOC_TYPE,
    )
}

/// The readiness check's one-row table: a heartbeat write proves that the
/// database still takes writes (disk full, read-only file). Scratch data,
/// so a table left by a rebuilt ledger is simply kept.
pub(crate) fn heartbeat_schema<D: Dialect>() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS heartbeat (
            id       {int} PRIMARY KEY NOT NULL, -- always 1
            beat_us  {int} NOT NULL -- wall clock of the last beat, us since epoch
        );",
        int = D::INT64,
    )
}

/// Who owns each task (migration 3): the principal and tenant that created
/// it; rows from before it belong to the anonymous owner. Every list filters
/// on both, so they lead the index that replaces the status index (one index
/// more to keep up on every save cost durable streams 8 % in instructions).
pub(crate) fn owner_schema() -> String {
    "ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '';
     ALTER TABLE tasks ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
     CREATE INDEX tasks_by_owner ON tasks (tenant, owner, status_ts DESC, id);
     DROP INDEX tasks_by_status;"
        .to_string()
}

/// The event log and the leases (migration 4): each task's place in its
/// log (`seq`, 0 before its first event) and its lease (`lease_owner`, the
/// replica, and `lease_until`, microseconds since the epoch; both null when
/// free), and the log itself. Both lease indexes are partial: only leased
/// tasks are in them, so the scan for expired leases and the renewal of a
/// replica's leases stay small however many finished tasks the table keeps.
pub(crate) fn log_schema<D: Dialect>() -> String {
    format!(
        "ALTER TABLE tasks ADD COLUMN seq {int} NOT NULL DEFAULT 0;
         ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
         ALTER TABLE tasks ADD COLUMN lease_until {int};
         CREATE INDEX tasks_by_lease_until ON tasks (lease_until)
            WHERE lease_until IS NOT NULL;
         CREATE INDEX tasks_by_lease_owner ON tasks (lease_owner)
            WHERE lease_owner IS NOT NULL;
         CREATE TABLE task_events (
            task_id      {id} NOT NULL,
            seq          {int} NOT NULL, -- 1 for a task's first event
            doc          {doc} NOT NULL, -- the event (a StreamResponse) as JSON
            appended_at  {int} NOT NULL, -- wall clock of the append, us since epoch
            PRIMARY KEY (task_id, seq)
         );
         CREATE INDEX task_events_by_time ON task_events (appended_at);",
        id = D::ID_TYPE,
        int = D::INT64,
        doc = D::DOC_TYPE,
    )
}

/// The component name of the task store's schema.
pub(crate) const TASKS: &str = "tasks";

/// The task store's migrations in dialect `D`.
pub(crate) fn task_migrations<D: Dialect>() -> [Migration<'static>; 4] {
    let statements = D::statements();
    [
        Migration {
            version: 1,
            sql: &statements.task_schema,
        },
        Migration {
            version: 2,
            sql: &statements.heartbeat_schema,
        },
        Migration {
            version: 3,
            sql: &statements.owner_schema,
        },
        Migration {
            version: 4,
            sql: &statements.log_schema,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::Sqlite;

    const STEPS: &[Migration<'static>] = &[
        Migration {
            version: 2,
            sql: "a",
        },
        Migration {
            version: 3,
            sql: "b",
        },
    ];

    #[test]
    fn fresh_database_runs_everything() {
        let m = Migrations::new("x", STEPS).adopting(&[2, 3]);
        let p = plan::<Sqlite>(&m, 0, &[]).expect("plan");
        assert_eq!(p.adopt, Vec::<i64>::new());
        assert_eq!(p.apply, STEPS.to_vec());
    }

    #[test]
    fn legacy_versions_are_adopted_once() {
        let m = Migrations::new("x", STEPS).adopting(&[2, 3]);
        // Another component's legacy version (1) is not taken.
        let p = plan::<Sqlite>(&m, 0, &[3, 1, 2]).expect("plan");
        assert_eq!((p.adopt, p.apply), (vec![2, 3], vec![]));
        // An older build had only the first change.
        let p = plan::<Sqlite>(&m, 0, &[1, 2]).expect("plan");
        assert_eq!((p.adopt, p.apply), (vec![2], vec![STEPS[1]]));
        // Once recorded, the legacy list no longer matters.
        let p = plan::<Sqlite>(&m, 2, &[1, 2, 3]).expect("plan");
        assert_eq!((p.adopt, p.apply), (vec![], vec![STEPS[1]]));
        // Without adopting, legacy versions are ignored.
        let p = plan::<Sqlite>(&Migrations::new("y", STEPS), 0, &[2, 3]).expect("plan");
        assert_eq!(p.apply, STEPS.to_vec());
    }

    #[test]
    fn newer_schema_is_refused() {
        let m = Migrations::new("x", STEPS);
        let err = plan::<Sqlite>(&m, 4, &[]).expect_err("newer");
        assert!(err.to_string().contains("newer"), "{err}");
        assert!(plan::<Sqlite>(&m, 3, &[])
            .expect("current")
            .apply
            .is_empty());
    }
}
