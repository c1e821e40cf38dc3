//! The channels replicas sharing one database signal each other on, with
//! `LISTEN`/`NOTIFY`.
//!
//! Every append of events ([`TaskStore::append`](crate::store::TaskStore::append))
//! notifies the events channel, in its transaction, with `"<seq> <task_id>"`
//! of its last event.
//!
//! `LISTEN`/`NOTIFY` channels belong to the whole database, so each schema
//! has its own pair ([`PostgresOptions::schema`](super::PostgresOptions::schema)):
//! `abacus_events` and `abacus_cancel` for the default (`public`) schema,
//! suffixed with the schema's name otherwise.

/// Tells the listening replicas: parameters channel, payload.
pub(super) const NOTIFY: &str = "SELECT pg_notify($1, $2)";
/// PostgreSQL's longest identifier (and channel name, and application name).
const MAX_NAME: usize = 63;

/// The two channels of one schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Channels {
    /// Appended events: `"<seq> <task_id>"`.
    pub events: String,
    /// Cancel requests: the task id.
    pub cancel: String,
}

impl Channels {
    /// The channels of the tables in `schema` (`None`: the default one).
    pub fn of(schema: Option<&str>) -> Self {
        match schema {
            None | Some("public") => Self {
                events: "abacus_events".into(),
                cancel: "abacus_cancel".into(),
            },
            Some(schema) => Self {
                events: channel("abacus_events", schema),
                cancel: channel("abacus_cancel", schema),
            },
        }
    }
}

/// `<base>_<schema>`, or with a hash of the schema's name when that is too
/// long a name (`LISTEN` would shorten it, `pg_notify` refuse it).
fn channel(base: &str, schema: &str) -> String {
    let name = format!("{base}_{schema}");
    if name.len() <= MAX_NAME {
        return name;
    }
    // FNV-1a: stable across builds and processes, unlike std's hashers.
    let hash = schema.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{base}_{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_per_schema_and_fit() {
        assert_eq!(Channels::of(None), Channels::of(Some("public")));
        assert_eq!(Channels::of(None).events, "abacus_events");
        let tenant = Channels::of(Some("tenant_a"));
        assert_eq!(
            (tenant.events.as_str(), tenant.cancel.as_str()),
            ("abacus_events_tenant_a", "abacus_cancel_tenant_a")
        );
        let long = "s".repeat(63);
        let other = format!("{}t", "s".repeat(62));
        let (a, b) = (Channels::of(Some(&long)), Channels::of(Some(&other)));
        assert!(a.events.len() <= MAX_NAME && a.cancel.len() <= MAX_NAME);
        assert_ne!(a.events, b.events);
        assert_eq!(a, Channels::of(Some(&long)), "stable");
    }
}
