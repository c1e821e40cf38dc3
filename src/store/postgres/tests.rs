//! PostgreSQL backend tests.

use super::super::conformance::{self, task, Fixture};
use super::super::TaskOwner;
use super::testing::{connect_in_schema, database_url, futures_join_all, private_schema, versions};
use super::*;
use crate::store::{Backplane, Lease, Signal, TaskStore};
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
    assert!(
        stores.backplane.is_some(),
        "replicas on PostgreSQL have a backplane"
    );
    stores.tasks.ping().await.expect("ping");
}

/// The next signal, waiting at most 10 s.
async fn next_signal(rx: &mut tokio::sync::mpsc::Receiver<Signal>) -> Signal {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a signal within 10 s")
        .expect("the backplane is running")
}

/// The next signal that is not a `Resync`.
async fn next_news(rx: &mut tokio::sync::mpsc::Receiver<Signal>) -> Signal {
    loop {
        match next_signal(rx).await {
            Signal::Resync => continue,
            signal => return signal,
        }
    }
}

#[tokio::test]
async fn backplane_signals_appends_and_cancels_of_its_schema_only() {
    use crate::store::conformance::events;
    let Some(url) = database_url() else {
        return;
    };
    let (x, _gx) = connect_in_schema(&url).await;
    let (y, _gy) = connect_in_schema(&url).await;
    let (bx, by) = (
        PostgresBackplane::start(x.database()),
        PostgresBackplane::start(y.database()),
    );
    assert_ne!(bx.events_channel(), by.events_channel());
    assert_ne!(bx.cancel_channel(), by.cancel_channel());
    let (mut rx, mut ry) = (bx.signals(), by.signals());
    // Both listen before anything is sent.
    assert_eq!(next_signal(&mut rx).await, Signal::Resync);
    assert_eq!(next_signal(&mut ry).await, Signal::Resync);

    let anon = TaskOwner::anonymous();
    let t = task("bp", "ctx", a2a::TaskState::Working, 1);
    x.append(&t, &anon, 0, &events(&t, 1, 2), Lease::Release)
        .await
        .expect("append");
    assert_eq!(
        next_news(&mut rx).await,
        Signal::Event {
            task_id: "bp".into(),
            seq: 2
        }
    );
    // Without events nothing is announced; a refused append neither.
    x.append(&t, &anon, 2, &[], Lease::Release)
        .await
        .expect("append nothing");
    assert!(x
        .append(&t, &anon, 1, &events(&t, 2, 2), Lease::Release)
        .await
        .is_err());
    x.append(&t, &anon, 2, &events(&t, 3, 3), Lease::Release)
        .await
        .expect("append more");
    assert_eq!(
        next_news(&mut rx).await,
        Signal::Event {
            task_id: "bp".into(),
            seq: 3
        }
    );
    bx.request_cancel("bp").await.expect("request cancel");
    assert_eq!(
        next_news(&mut rx).await,
        Signal::Cancel {
            task_id: "bp".into()
        }
    );

    // The other schema heard none of it: its first news is its own
    // (notifications arrive in commit order).
    let u = task("bp-y", "ctx", a2a::TaskState::Working, 1);
    y.append(&u, &anon, 0, &events(&u, 1, 1), Lease::Release)
        .await
        .expect("append in y");
    assert_eq!(
        next_news(&mut ry).await,
        Signal::Event {
            task_id: "bp-y".into(),
            seq: 1
        }
    );
    by.request_cancel("bp-y")
        .await
        .expect("request cancel in y");
    assert_eq!(
        next_news(&mut ry).await,
        Signal::Cancel {
            task_id: "bp-y".into()
        }
    );
    // ...and x none of y's.
    bx.request_cancel("last").await.expect("request cancel");
    assert_eq!(
        next_news(&mut rx).await,
        Signal::Cancel {
            task_id: "last".into()
        }
    );
}

#[tokio::test]
async fn backplane_reconnects_after_its_connection_is_killed() {
    use crate::store::conformance::events;
    let Some(url) = database_url() else {
        return;
    };
    let (store, _guard) = connect_in_schema(&url).await;
    let backplane = PostgresBackplane::start(store.database());
    let mut rx = backplane.signals();
    assert_eq!(next_signal(&mut rx).await, Signal::Resync);
    let anon = TaskOwner::anonymous();
    let t = task("rc", "ctx", a2a::TaskState::Working, 1);
    for round in 0..2u64 {
        // Each round appends one event: the log ends at `round` before it.
        let after = round;
        let client = store.database().client().await.expect("client");
        let killed = client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = $1",
                &[&backplane.application_name()],
            )
            .await
            .expect("terminate the listener");
        assert_eq!(killed.len(), 1, "round {round}: one listening connection");
        drop(client);
        assert_eq!(next_signal(&mut rx).await, Signal::Resync, "round {round}");
        store
            .append(
                &t,
                &anon,
                after,
                &events(&t, after + 1, after + 1),
                Lease::Release,
            )
            .await
            .expect("append");
        assert_eq!(
            next_news(&mut rx).await,
            Signal::Event {
                task_id: "rc".into(),
                seq: after + 1
            },
            "round {round}"
        );
    }
    backplane
        .request_cancel("rc")
        .await
        .expect("request cancel");
    assert_eq!(
        next_news(&mut rx).await,
        Signal::Cancel {
            task_id: "rc".into()
        }
    );
}

#[tokio::test]
async fn signals_are_handed_out_once() {
    let Some(url) = database_url() else {
        return;
    };
    let (store, _guard) = connect_in_schema(&url).await;
    let backplane = PostgresBackplane::start(store.database());
    let mut first = backplane.signals();
    let mut second = backplane.signals();
    assert_eq!(next_signal(&mut first).await, Signal::Resync);
    assert_eq!(second.recv().await, None);
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
