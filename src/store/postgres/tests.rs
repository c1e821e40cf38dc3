//! PostgreSQL backend tests.

use super::super::conformance::{self, task, Fixture};
use super::super::TaskOwner;
use super::testing::{connect_in_schema, database_url, futures_join_all, private_schema, versions};
use super::*;
use crate::store::TaskStore;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

async fn fixture() -> Option<Fixture> {
    let url = database_url()?;
    let (store, guard) = connect_in_schema(&url).await;
    Some(Fixture::new(store, guard))
}

conformance::task_store_conformance!(fixture());
conformance::task_log_conformance!(fixture());

#[tokio::test]
async fn bad_urls_are_errors() {
    assert!(PostgresTaskStore::connect("not a url at all")
        .await
        .is_err());
    // Nothing listens on port 1.
    let err = PostgresTaskStore::connect("postgres://u:secret@127.0.0.1:1/db")
        .await
        .expect_err("must fail");
    assert!(!err.to_string().contains("secret"), "{err}");
    let bad_schema = PostgresOptions {
        schema: Some("x; DROP TABLE tasks".into()),
        ..PostgresOptions::default()
    };
    assert!(
        PostgresTaskStore::connect_with("postgres://u@127.0.0.1:1/db", bad_schema)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn migrations_run_once_and_concurrently() {
    let Some(url) = database_url() else {
        return;
    };
    let (options, _guard) = private_schema(&url, 2);
    // Several replicas starting at once on an empty schema.
    let starts = (0..4).map(|_| {
        let (url, options) = (url.clone(), options.clone());
        async move { PostgresTaskStore::connect_with(&url, options).await }
    });
    let stores: Vec<_> = futures_join_all(starts).await;
    for s in &stores {
        assert!(s.is_ok(), "{s:?}");
    }
    let store = stores.into_iter().flatten().next().expect("a store");
    assert_eq!(versions(store.database(), "tasks").await, [1, 2, 3, 4]);
}

/// A schema written by a build that kept one version list for every
/// component: connecting records the versions per component and runs
/// nothing again (which would fail: the tables exist).
#[tokio::test]
async fn legacy_version_list_is_adopted() {
    let Some(url) = database_url() else {
        return;
    };
    let (options, guard) = private_schema(&url, 2);
    let schema = &guard.schema;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let conn = tokio::spawn(conn);
    let legacy = format!(
        "CREATE SCHEMA {schema};
         SET search_path = {schema};
         {tasks};
         CREATE TABLE schema_migrations (
             version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );
         INSERT INTO schema_migrations (version) VALUES (1), (2);",
        tasks = Postgres::statements().task_schema,
    );
    client.batch_execute(&legacy).await.expect("legacy schema");
    drop(client);
    let _ = conn.await;
    let store = PostgresTaskStore::connect_with(&url, options)
        .await
        .expect("connect to the legacy schema");
    let t = task("after", "ctx", a2a::TaskState::Working, 1);
    store.save(&t, &TaskOwner::anonymous()).await.expect("save");
    assert_eq!(versions(store.database(), "tasks").await, [1, 2, 3, 4]);
}

#[tokio::test]
async fn open_picks_postgres_when_url_is_set() {
    let Some(url) = database_url() else {
        return;
    };
    let config = super::super::StoreConfig {
        database_url: Some(url),
        ..Default::default()
    };
    let stores = super::super::open(&config).await.expect("open");
    assert_eq!(stores.tasks.kind(), "postgres");
    assert_eq!(stores.backend.kind(), "postgres");
    stores.tasks.ping().await.expect("ping");
}

/// A TCP forwarder that can be taken down and brought back on the same
/// port, standing in for a database restart.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut proxy = Proxy {
            addr,
            target,
            accept: None,
            conns: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target;
        let conns = self.conns.clone();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().expect("conns").push(conn);
            }
        }));
    }

    /// Stops listening and cuts every forwarded connection.
    async fn down(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        let conns: Vec<_> = self.conns.lock().expect("conns").drain(..).collect();
        for c in conns {
            c.abort();
            let _ = c.await;
        }
    }

    async fn up(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind");
        self.serve(listener);
    }
}

#[tokio::test]
async fn ping_fails_while_down_and_recovers() {
    let Some(url) = database_url() else {
        return;
    };
    let real: tokio_postgres::Config = url.parse().expect("DATABASE_URL");
    let host = match real.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let port = real.get_ports().first().copied().unwrap_or(5432);
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve")
        .next()
        .expect("an address");
    let mut proxy = Proxy::start(target).await;

    let (options, _guard) = private_schema(&url, 2);
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(proxy.addr.port())
        .connect_timeout(Duration::from_secs(2));
    if let Some(user) = real.get_user() {
        config.user(user);
    }
    if let Some(password) = real.get_password() {
        config.password(password);
    }
    if let Some(db) = real.get_dbname() {
        config.dbname(db);
    }
    let store = PostgresTaskStore::from_config(config, options)
        .await
        .expect("connect through proxy");
    store.ping().await.expect("ping while up");
    let t = task("survivor", "ctx", a2a::TaskState::Working, 1);
    store
        .save(&t, &TaskOwner::anonymous())
        .await
        .expect("save while up");

    proxy.down().await;
    assert!(store.ping().await.is_err(), "ping must fail while down");
    assert!(store.ping().await.is_err(), "ping must keep failing");
    assert!(store
        .get("survivor", &TaskOwner::anonymous())
        .await
        .is_err());

    proxy.up().await;
    // The pool replaces dead connections on checkout; allow a few
    // attempts for the closed sockets to be noticed.
    let mut recovered = false;
    for _ in 0..50 {
        if store.ping().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "ping did not recover after the server came back");
    assert_eq!(
        store
            .get("survivor", &TaskOwner::anonymous())
            .await
            .expect("get after recovery"),
        Some(t)
    );
    proxy.down().await;
}
