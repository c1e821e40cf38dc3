//! The real binary: its `--help` and a running `abacus serve`.

use super::manifests::Platform;
use crate::common::{abacus_output, abacus_serve, free_ports, get, help_flags, HelpFlag};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `abacus --help` and `abacus serve --help`.
pub(super) struct Help {
    text: String,
    flags: Vec<HelpFlag>,
}

impl Help {
    pub(super) fn get() -> Self {
        let text = [&["--help"][..], &["serve", "--help"][..]]
            .map(abacus_output)
            .join("\n");
        Help {
            flags: help_flags(&text),
            text,
        }
    }

    pub(super) fn default_port(&self) -> u16 {
        let port = self
            .flags
            .iter()
            .find(|f| f.flag == "--port")
            .unwrap_or_else(|| panic!("abacus --help does not list --port"));
        assert!(
            self.text.contains("[default: 8002]"),
            "abacus --help does not mention [default: 8002]"
        );
        port.default
            .as_deref()
            .unwrap_or_else(|| panic!("--port has no default: {port:?}"))
            .parse()
            .unwrap()
    }

    /// The `[default: ...]` of `flag`, when --help lists one.
    pub(super) fn default_of(&self, flag: &str) -> Option<String> {
        self.flags
            .iter()
            .find(|f| f.flag == flag)
            .and_then(|f| f.default.clone())
    }

    /// `[env: NAME=...]`, or `[env: NAME]` for secrets (`hide_env_values`).
    pub(super) fn reads_env(&self, name: &str) -> bool {
        self.text.contains(&format!("[env: {name}="))
            || self.text.contains(&format!("[env: {name}]"))
    }
}

/// A running `abacus serve`; killed on drop.
pub(super) struct Server {
    child: Child,
    pub(super) port: u16,
    pub(super) metrics_port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub(super) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// With more `abacus serve` arguments.
    pub(super) async fn start_with(args: &[String]) -> Self {
        let [port, metrics_port] = free_ports();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("abacus.log");
        let child = abacus_serve(port)
            .args(["--metrics-port", &metrics_port.to_string()])
            .args(["--store", "memory"])
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn abacus serve");
        let mut server = Server {
            child,
            port,
            metrics_port,
            log,
            _dir: dir,
        };
        server.wait_ready().await;
        server
    }

    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Until /health answers on the main port and /metrics on the metrics port.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("abacus serve exited early ({status}):\n{}", self.log());
            }
            let main = get(&local(self.port, "/health")).await;
            let metrics = get(&local(self.metrics_port, "/metrics")).await;
            if matches!(main, Ok((200, _))) && metrics.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "abacus serve never became ready (/health: {main:?}, metrics port: {metrics:?}):\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The test server's port for a port the manifests use on `platform`.
    pub(super) fn live_port(&self, platform: &Platform, help: &Help, port: u16, what: &str) -> u16 {
        if port == platform.main_port(help) {
            self.port
        } else if port == platform.metrics_port() {
            self.metrics_port
        } else {
            panic!(
                "{what}: port {port} is neither the A2A port ({}) nor the metrics port ({}) \
                 abacus listens on under {}",
                platform.main_port(help),
                platform.metrics_port(),
                platform.name
            )
        }
    }
}

/// http://127.0.0.1:port/path
pub(super) fn local(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}
