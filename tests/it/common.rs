//! Shared helpers: a real server on 127.0.0.1:0, raw HTTP access to it, and
//! the real `abacus` binary.

use abacus::agent::Agent;
use abacus::card::ServedCard;
use abacus::client::JsonRpcClient as Client;
use abacus::core::Core;
use abacus::http::{serve, HttpApp, HttpOptions};
use abacus::protocol::types::AgentCard;
use abacus::stack::{A2ALayers, StackConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;
use tokio::sync::oneshot;

pub struct TestServer {
    pub url: String,
    pub core: Core,
    pub layers: A2ALayers,
    pub client: Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(agent: impl Agent, card: AgentCard) -> Self {
        Self::start_with(agent, card, HttpOptions::default()).await
    }

    pub async fn start_with(agent: impl Agent, card: AgentCard, opts: HttpOptions) -> Self {
        Self::start_full(agent, card, opts, StackConfig::default()).await
    }

    /// A server with the default stack built from `stack`.
    pub async fn start_full(
        agent: impl Agent,
        card: AgentCard,
        opts: HttpOptions,
        stack: StackConfig,
    ) -> Self {
        Self::start_core_with(Core::builder(agent, card).build(), opts, stack).await
    }

    /// A server for an already built core, with the default stack.
    pub async fn start_core(core: Core) -> Self {
        Self::start_core_with(core, HttpOptions::default(), StackConfig::default()).await
    }

    async fn start_core_with(core: Core, opts: HttpOptions, stack: StackConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let layers = A2ALayers::new(&stack, &core);
        let served = ServedCard::new(core.card().clone(), &url);
        let app = HttpApp::new(layers.default_stack(core.clone()), served, opts);
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(
            listener,
            app,
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(2),
        ));
        TestServer {
            client: Client::new(&url),
            url,
            core,
            layers,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub async fn math() -> Self {
        Self::math_with(StackConfig::default()).await
    }

    pub async fn math_with(stack: StackConfig) -> Self {
        let limits = abacus::math::Limits::default();
        let agent = abacus::math::MathAgent::new(limits);
        let card = abacus::math::MathAgent::card();
        Self::start_full(agent, card, HttpOptions::default(), stack).await
    }

    /// POSTs `body` to `/` with the given headers; returns status and parsed JSON (Null if none).
    pub async fn post_raw(&self, body: impl Into<Bytes>, headers: &[(&str, &str)]) -> (u16, Value) {
        self.request("POST", "", body.into(), headers).await
    }

    /// POSTs a JSON-RPC body with the standard headers.
    pub async fn post_json(&self, body: &str) -> (u16, Value) {
        self.post_raw(
            body.to_string(),
            &[("content-type", "application/json"), ("a2a-version", "1.0")],
        )
        .await
    }

    /// GETs `path`; returns status and parsed JSON (Null if none).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, Bytes::new(), &[]).await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("{}{}", self.url, path.trim_start_matches('/'));
        let (status, _, bytes) = raw_request(&url, method, body, headers).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

/// One HTTP request; returns status, headers and body.
pub async fn raw_request(
    url: &str,
    method: &str,
    body: Bytes,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, Bytes) {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = hyper_client()
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes)
}

/// SendMessage "6 * 7" with the `auth` headers: the status, the
/// `WWW-Authenticate` challenge and the body.
pub async fn send_with_auth(url: &str, auth: &[(&str, &str)]) -> (u16, Option<String>, Bytes) {
    let mut headers = vec![("content-type", "application/json"), ("a2a-version", "1.0")];
    headers.extend_from_slice(auth);
    let (status, head, body) = raw_request(
        url,
        "POST",
        Bytes::from(send_body("SendMessage", "6 * 7")),
        &headers,
    )
    .await;
    let challenge = head
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, challenge, body)
}

/// A JSON-RPC SendMessage body with one text part.
pub fn send_body(method: &str, text: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": method,
        "params": {"message": {"messageId": uuid::Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": text}]}}
    })
    .to_string()
}

/// The state string of the task in a reply's result (task, or bare task).
pub fn task_state(reply: &Value) -> String {
    let r = &reply["result"];
    let t = if r.get("task").is_some() {
        &r["task"]
    } else {
        r
    };
    t["status"]["state"].as_str().unwrap_or("").to_string()
}

/// All text parts anywhere in a value.
pub fn texts(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(t) = o.get("text").and_then(Value::as_str) {
                    out.push(t.to_string());
                }
                o.values().for_each(|c| walk(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// A JSON-RPC request body.
pub fn rpc(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string()
}

/// Polls `cond` every 10 ms for up to 2 s; whether it became true.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

fn hyper_client() -> HyperClient<HttpConnector, Full<Bytes>> {
    HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// GET `url`: status and body as text; an error if no answer came in 30 s.
pub async fn get(url: &str) -> Result<(u16, String), String> {
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let resp = hyper_client()
            .request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| format!("GET {url} got no answer"))?
}

/// `N` distinct ports free on 127.0.0.1 (all bound at once, then released).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: [std::net::TcpListener; N] =
        std::array::from_fn(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    listeners.map(|l| l.local_addr().unwrap().port())
}

/// A port free on 127.0.0.1.
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// The real `abacus` binary with the deployment-related environment cleared,
/// so the caller's A2A_*/ABACUS_*/DATABASE_URL cannot change what it does.
pub fn abacus() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_abacus"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("A2A_")
            || k.starts_with("ABACUS_")
            || k.starts_with("OTEL_")
            || k == "DATABASE_URL"
        {
            cmd.env_remove(&*k);
        }
    }
    cmd
}

/// `abacus serve --port <port>` whose readiness ignores this machine's load
/// (CPU and memory only warn by default) and disk (a full test machine must
/// not make it flap), logging warnings only.
pub fn abacus_serve(port: u16) -> Command {
    let mut cmd = abacus();
    cmd.args(["serve", "--port", &port.to_string()])
        .args(["--health-disk-max", "100"])
        .env("RUST_LOG", "warn");
    cmd
}

/// `abacus <args>` (e.g. `["serve", "--help"]`): its standard output.
pub fn abacus_output(args: &[&str]) -> String {
    let out = abacus().args(args).output().expect("run abacus");
    assert!(out.status.success(), "abacus {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).expect("abacus prints UTF-8")
}

/// One option of a clap `--help` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpFlag {
    /// `--port`.
    pub flag: String,
    /// `A2A_PORT`, from `[env: A2A_PORT=]` (or `[env: NAME]` for hidden values).
    pub env: Option<String>,
    /// `8002`, from `[default: 8002]`.
    pub default: Option<String>,
}

/// The long options of a clap `--help` text, with their environment
/// variable and default, in the order listed.
pub fn help_flags(help: &str) -> Vec<HelpFlag> {
    let mut flags = Vec::new();
    let mut lines = help.lines().peekable();
    while let Some(line) = lines.next() {
        let spec = line.trim_start();
        if !line.starts_with(' ') || !spec.starts_with('-') {
            continue;
        }
        let Some(flag) = spec
            .split_whitespace()
            .map(|w| w.trim_end_matches(','))
            .find(|w| w.starts_with("--"))
        else {
            continue;
        };
        // The description: the rest of this line and the indented lines under it.
        let mut entry = spec.to_string();
        while let Some(next) = lines.peek() {
            if !next.starts_with(' ') || next.trim_start().starts_with('-') {
                break;
            }
            entry.push(' ');
            entry.push_str(next.trim());
            lines.next();
        }
        let bracket = |key: &str| {
            let start = entry.find(&format!("[{key}: "))? + key.len() + 3;
            let end = start + entry[start..].find(']')?;
            Some(entry[start..end].to_string())
        };
        flags.push(HelpFlag {
            flag: flag.to_string(),
            env: bracket("env").map(|e| e.split('=').next().unwrap_or_default().to_string()),
            default: bracket("default"),
        });
    }
    flags
}

/// A listener on 127.0.0.1:0 and a server config for its port, with the
/// memory store (nothing on disk).
pub async fn bound_memory_config() -> (tokio::net::TcpListener, abacus::config::Config) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = abacus::config::Config {
        port: listener.local_addr().unwrap().port(),
        store_kind: abacus::store::StoreKind::Memory,
        ..Default::default()
    };
    (listener, config)
}

/// The math agent served by `abacus::Server` on a free loopback port, the
/// memory store unless `config_for` or `stores` say otherwise: the base URL,
/// the sender that stops it and its task.
pub async fn serve_math(
    config_for: impl FnOnce(&mut abacus::config::Config),
    stores: Option<abacus::store::Stores>,
) -> (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (listener, mut config) = bound_memory_config().await;
    config_for(&mut config);
    let base = format!("http://127.0.0.1:{}/", config.port);
    let limits = abacus::math::Limits::default();
    let mut server = abacus::Server::new(
        abacus::math::MathAgent::new(limits),
        abacus::math::MathAgent::card(),
    )
    .extended_card(abacus::math::MathAgent::extended_card())
    .config(config);
    if let Some(stores) = stores {
        server = server.stores(stores);
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run_on(listener, async move {
        let _ = stopped.await;
    }));
    (base, stop, handle)
}

/// The value of the one-label series `metric{label="value"}` in a
/// Prometheus scrape.
pub fn sample(scrape: &str, metric: &str, label: &str, value: &str) -> Option<f64> {
    let series = format!("{metric}{{{label}=\"{value}\"}} ");
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
}

/// A tmpfs mounted on a temporary directory for one test (needs root),
/// unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` where mounting is not permitted (the caller skips with a notice).
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(Tmpfs { dir })
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let plain = Command::new("umount").arg(self.dir.path()).status();
        if !plain.is_ok_and(|s| s.success()) {
            // A writer thread may still hold a file: detach now, freed
            // when it lets go.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Fills the filesystem of `dir` with one file; returns its path.
pub fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // The last bytes a partial chunk could not take.
    while f.write_all(&[0u8]).is_ok() {}
    let _ = f.sync_all();
    path
}
