//! PostgreSQL stopped or frozen under load, and a pool with every
//! connection busy: clear errors in bounded time, readiness 503 then 200,
//! nothing acknowledged lost, service back without a restart.
//!
//! Each test runs a throwaway cluster of its own (the shared one of
//! `DATABASE_URL` serves other tests): needs root and the PostgreSQL server
//! binaries; skipped with a notice otherwise.

use crate::common::free_port;
use crate::outage::{send_task, under_load, Outcome};
use abacus::client::JsonRpcClient as Client;
use abacus::store::{
    Backend, PostgresDatabase, PostgresOptions, PostgresPushStore, PostgresTaskStore, Stores,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The directory of `initdb` and `pg_ctl`: on the `PATH`, else the newest
/// of Debian's `/usr/lib/postgresql/<version>/bin`.
fn pg_bindir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|dir| dir.join("initdb").is_file()));
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A PostgreSQL cluster in a temporary directory, run as the `postgres`
/// user on a free port of 127.0.0.1 with trust authentication; stopped on
/// drop.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    /// `None` (the caller skips) without the binaries, root or the
    /// `postgres` account.
    fn init() -> Option<Cluster> {
        let bin = pg_bindir()?;
        let may_run_as_postgres = Command::new("runuser")
            .args(["-u", "postgres", "--", "true"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !may_run_as_postgres {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let chown = Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .status();
        assert!(chown.is_ok_and(|s| s.success()), "chown the cluster dir");
        let cluster = Cluster {
            dir,
            bin,
            port: free_port(),
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "abacus", "--no-sync"],
        );
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Runs `tool` of the cluster's binaries as `postgres`; panics with its
    /// output (and the server log) if it fails.
    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .output()
            .expect("runuser");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}\nserver log: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
        out
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        let log = self.log().display().to_string();
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30", "start",
            ],
        );
    }

    /// An immediate stop: every backend dies at once, as in a crash; the
    /// restart replays the WAL.
    fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    /// The postmaster's pid: the first line of `postmaster.pid`.
    fn postmaster(&self) -> Option<String> {
        let pidfile = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"));
        pidfile.ok()?.lines().next().map(str::to_string)
    }

    /// Sends `signal` to the postmaster, then to its children: stopped
    /// first, it forks no more. Whether the postmaster got it (a child may
    /// have exited meanwhile).
    fn signal(&self, signal: &str) -> bool {
        let Some(main) = self.postmaster() else {
            return false;
        };
        let send = |pids: &[&str]| {
            Command::new("kill")
                .arg(format!("-{signal}"))
                .args(pids)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let sent = send(&[&main]);
        let children = Command::new("pgrep").args(["-P", &main]).output();
        let children = children.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        let children = children.unwrap_or_default();
        let children: Vec<&str> = children.split_whitespace().collect();
        if !children.is_empty() {
            send(&children);
        }
        sent
    }

    /// SIGSTOP to every process of the cluster: connections stay open and
    /// nothing answers, as with a hung server or a network partition.
    fn freeze(&self) {
        assert!(self.signal("STOP"), "cannot freeze the cluster");
    }

    fn thaw(&self) {
        assert!(self.signal("CONT"), "cannot thaw the cluster");
    }

    fn url(&self) -> String {
        format!("postgres://abacus@127.0.0.1:{}/postgres", self.port)
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A frozen postmaster would not stop.
        let _ = self.signal("CONT");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}

/// A math server on `config`'s port (or `stores`, when given); the
/// base URL, and what stops it.
async fn serve(
    config_for: impl FnOnce(&mut abacus::config::Config),
    stores: Option<Stores>,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let config_for = |config: &mut abacus::config::Config| {
        // The machine's disk must not decide readiness here.
        config.health_disk_max = 0.0;
        config_for(config);
    };
    crate::common::serve_math(config_for, stores).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_gives_clear_errors_and_loses_nothing() {
    let Some(cluster) = Cluster::init() else {
        eprintln!("skipped: needs root and the PostgreSQL server binaries (initdb, pg_ctl)");
        return;
    };
    cluster.start();
    let (base, stop, handle) = serve(
        |config| {
            config.store_kind = abacus::store::StoreKind::Postgres;
            config.database_url = Some(cluster.url());
            config.data_dir = cluster.dir().to_path_buf();
        },
        None,
    )
    .await;

    let report = under_load(
        &base,
        Duration::from_secs(4),
        || cluster.stop(),
        || cluster.start(),
    )
    .await;
    report.print("postgres stopped");
    report.assert_sound();

    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}

/// Every process of PostgreSQL stopped (SIGSTOP) under load: statements
/// and new connections get no answer, and the bounded waits turn that into
/// the clear error; nothing answers late after the thaw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_frozen_under_load_gives_clear_errors_in_bounded_time() {
    let Some(cluster) = Cluster::init() else {
        eprintln!("skipped: needs root and the PostgreSQL server binaries (initdb, pg_ctl)");
        return;
    };
    cluster.start();
    // Below the harness's 10 s bound on a call; the default is 10 s.
    let options = PostgresOptions {
        query_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let db = PostgresDatabase::connect_with(&cluster.url(), options)
        .await
        .expect("connect");
    let stores = Stores {
        tasks: Arc::new(PostgresTaskStore::new(db.clone())),
        push: Arc::new(PostgresPushStore::open(&db).await.expect("push store")),
        backend: Backend::Postgres(db),
        backplane: None,
    };
    let (base, stop, handle) = serve(
        |config| config.data_dir = cluster.dir().to_path_buf(),
        Some(stores),
    )
    .await;

    let report = under_load(
        &base,
        Duration::from_secs(6),
        || cluster.freeze(),
        || cluster.thaw(),
    )
    .await;
    report.print("postgres frozen");
    report.assert_sound();

    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}

/// Every connection of the pool held elsewhere: a save waits a bounded
/// time for one, then fails with the store's clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_gives_clear_errors_in_bounded_time() {
    let Some(cluster) = Cluster::init() else {
        eprintln!("skipped: needs root and the PostgreSQL server binaries (initdb, pg_ctl)");
        return;
    };
    cluster.start();
    let options = PostgresOptions {
        max_connections: 2,
        ..PostgresOptions::default()
    };
    let db = PostgresDatabase::connect_with(&cluster.url(), options)
        .await
        .expect("connect");
    let stores = Stores {
        tasks: Arc::new(PostgresTaskStore::new(db.clone())),
        push: Arc::new(PostgresPushStore::open(&db).await.expect("push store")),
        backend: Backend::Postgres(db.clone()),
        backplane: None,
    };
    let (base, stop, handle) = serve(
        |config| config.data_dir = cluster.dir().to_path_buf(),
        Some(stores),
    )
    .await;
    let client = Client::new(&base);
    let Outcome::Stored(before) = send_task(&client, 0).await else {
        panic!("the server does not store tasks");
    };

    let held = [db.client().await.expect("a"), db.client().await.expect("b")];
    let started = Instant::now();
    let busy = tokio::time::timeout(Duration::from_secs(20), send_task(&client, 1)).await;
    let waited = started.elapsed();
    assert!(
        matches!(busy, Ok(Outcome::StoreError)),
        "on an exhausted pool: {busy:?}"
    );
    drop(held);
    let after = send_task(&client, 2).await;
    let Outcome::Stored(after) = after else {
        panic!("no task stored once connections were free: {after:?}");
    };
    for id in [&before, &after] {
        let reply = client
            .call("GetTask", serde_json::json!({"id": id}))
            .await
            .expect("GetTask");
        assert_eq!(crate::common::task_state(&reply), "TASK_STATE_COMPLETED");
    }
    eprintln!(
        "exhausted pool: STORE_UNAVAILABLE after {:.1} s of waiting for a connection; \
         stored again once they were free",
        waited.as_secs_f64()
    );
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");

    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}
