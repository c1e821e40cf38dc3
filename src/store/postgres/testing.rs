//! Helpers for tests that need a PostgreSQL database (`DATABASE_URL`).

use super::{PostgresDatabase, PostgresOptions, PostgresTaskStore};
use chrono::Utc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio_postgres::NoTls;

/// `DATABASE_URL`, or `None` (with a notice) to skip the test.
pub(crate) fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("DATABASE_URL not set: skipping PostgreSQL test");
            None
        }
    }
}

/// Drops its test schema when the test ends.
pub(crate) struct SchemaGuard {
    pub url: String,
    pub schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        // Tests run inside a runtime, which cannot block on another:
        // clean up from a plain thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(&url, NoTls).await {
                    let conn = tokio::spawn(conn);
                    let _ = client.batch_execute(&sql).await;
                    drop(client);
                    let _ = conn.await;
                }
            });
        })
        .join();
    }
}

pub(crate) fn unique_schema() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = Utc::now().timestamp_subsec_nanos();
    format!(
        "abacus_test_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Options for a new private schema of the database at `url`, and the
/// guard that drops it.
pub(crate) fn private_schema(url: &str, max_connections: usize) -> (PostgresOptions, SchemaGuard) {
    let schema = unique_schema();
    let options = PostgresOptions {
        schema: Some(schema.clone()),
        max_connections,
        ..PostgresOptions::default()
    };
    let guard = SchemaGuard {
        url: url.to_string(),
        schema,
    };
    (options, guard)
}

/// A task store in a new private schema.
pub(crate) async fn connect_in_schema(url: &str) -> (PostgresTaskStore, SchemaGuard) {
    let (options, guard) = private_schema(url, 4);
    let store = PostgresTaskStore::connect_with(url, options)
        .await
        .expect("connect to DATABASE_URL");
    (store, guard)
}

/// `join_all` without a futures dependency.
pub(crate) async fn futures_join_all<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("join"));
    }
    out
}

/// The recorded versions of `component`, in order.
pub(crate) async fn versions(db: &PostgresDatabase, component: &str) -> Vec<i64> {
    db.client()
        .await
        .expect("client")
        .query(
            "SELECT version FROM schema_versions WHERE component = $1 ORDER BY version",
            &[&component],
        )
        .await
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect()
}
