//! The deployment manifests against the real `abacus` binary.
//!
//! Parses every YAML document under `deploy/k8s/*.yaml`,
//! `deploy/prometheus/*.yml` and `docker-compose.yml`, collects every probe
//! path and port, container port, Service target port, scrape endpoint,
//! environment variable and alert-rule metric they reference, then checks
//! each against the binary: its `--help` (flags, defaults, environment
//! variables) and a running `abacus serve` (probe paths answer 200, `/metrics`
//! answers on both listeners and exposes every metric the alerts use).

use crate::common::{abacus, abacus_serve, free_ports, get};
use abacus::client::Client;
use serde::Deserialize;
use serde_json::json;
use serde_yaml_ng::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The container (k8s) and service (compose) that runs abacus.
const CONTAINER: &str = "abacus";
/// The metrics listener's port everywhere in the docs (README, Dockerfile `EXPOSE`).
const METRICS_PORT: u16 = 8090;
/// Set in the manifests but not read through clap: the logging filter reads it.
const EXEMPT_ENV: &[&str] = &["RUST_LOG"];
/// Metrics the alerts use that Prometheus itself produces.
const EXEMPT_METRICS: &[&str] = &["up"];

// ------------------------------------------------------------------ manifests

fn path(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

/// Every non-empty YAML document of a file.
fn load_docs(file: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            Yaml::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", file.display()))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The files of `dir` whose name ends with `.ext`, sorted.
fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(path(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no *.{ext} files in {dir}");
    out
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn str_of<'a>(v: &'a Yaml, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {v:?}"))
}

fn seq<'a>(v: &'a Yaml, key: &str) -> &'a [Yaml] {
    v.get(key)
        .and_then(Yaml::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A scalar as a string (`8002` and `"8002"` alike).
fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Every parsed document, by origin.
struct Manifests {
    /// (file name, document) for each document under deploy/k8s.
    k8s: Vec<(String, Yaml)>,
    /// deploy/prometheus/*.yml by file name (one document each).
    prometheus: BTreeMap<String, Yaml>,
    compose: Yaml,
}

impl Manifests {
    fn load() -> Self {
        let mut k8s = Vec::new();
        for f in files("deploy/k8s", "yaml") {
            for doc in load_docs(&f) {
                k8s.push((file_name(&f), doc));
            }
        }
        let mut prometheus = BTreeMap::new();
        for f in files("deploy/prometheus", "yml") {
            let mut docs = load_docs(&f);
            assert_eq!(
                docs.len(),
                1,
                "{} holds {} documents",
                f.display(),
                docs.len()
            );
            prometheus.insert(file_name(&f), docs.remove(0));
        }
        let mut compose = load_docs(&path("docker-compose.yml"));
        assert_eq!(
            compose.len(),
            1,
            "docker-compose.yml holds several documents"
        );
        Manifests {
            k8s,
            prometheus,
            compose: compose.remove(0),
        }
    }

    fn kind<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Yaml> + 'a {
        let kind = kind.to_string();
        self.k8s
            .iter()
            .map(|(_, d)| d)
            .filter(move |d| d.get("kind").and_then(Yaml::as_str) == Some(kind.as_str()))
    }

    /// The only object of `kind`.
    fn one(&self, kind: &str) -> &Yaml {
        let all: Vec<&Yaml> = self.kind(kind).collect();
        assert_eq!(all.len(), 1, "expected exactly one {kind} in deploy/k8s");
        all[0]
    }

    fn prom(&self, file: &str) -> &Yaml {
        self.prometheus
            .get(file)
            .unwrap_or_else(|| panic!("deploy/prometheus/{file} is missing"))
    }

    /// The Deployment's abacus container.
    fn container(&self) -> &Yaml {
        seq(
            &self.one("Deployment")["spec"]["template"]["spec"],
            "containers",
        )
        .iter()
        .find(|c| c["name"].as_str() == Some(CONTAINER))
        .unwrap_or_else(|| panic!("the Deployment has no container named {CONTAINER:?}"))
    }

    /// docker-compose.yml's abacus service.
    fn compose_service(&self) -> &Yaml {
        self.compose["services"]
            .get(CONTAINER)
            .unwrap_or_else(|| panic!("docker-compose.yml has no service {CONTAINER:?}"))
    }

    fn platforms(&self) -> [Platform; 2] {
        [self.kubernetes(), self.docker_compose()]
    }

    /// What deploy/k8s says about the abacus container.
    fn kubernetes(&self) -> Platform {
        let container = self.container();
        let ports: Vec<(Option<String>, u16)> = seq(container, "ports")
            .iter()
            .map(|p| {
                let port = p["containerPort"]
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .unwrap_or_else(|| panic!("deployment.yaml: bad containerPort in {p:?}"));
                (p["name"].as_str().map(String::from), port)
            })
            .collect();
        let resolve = |v: &Yaml, what: &str| resolve_port(v, &ports, what);

        let env = seq(container, "env")
            .iter()
            .map(|e| EnvVar {
                name: str_of(&e["name"], "deployment.yaml env name").to_string(),
                value: scalar(&e["value"]),
            })
            .collect();

        let mut probes = Vec::new();
        let mut listened = Vec::new();
        for kind in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let Some(probe) = container.get(kind) else {
                continue;
            };
            let what = format!("deployment.yaml {kind}");
            if let Some(get) = probe.get("httpGet") {
                if let Some(scheme) = get.get("scheme") {
                    assert_eq!(
                        scheme.as_str(),
                        Some("HTTP"),
                        "{what}: abacus serves plain HTTP"
                    );
                }
                let port = resolve(&get["port"], &what);
                probes.push(Endpoint {
                    source: what.clone(),
                    port,
                    path: str_of(&get["path"], &what).to_string(),
                });
                listened.push((what, port));
            } else if let Some(tcp) = probe.get("tcpSocket") {
                listened.push((what.clone(), resolve(&tcp["port"], &what)));
            }
        }

        // Service targetPorts, by Service port name.
        let service = self.one("Service");
        let mut service_ports = BTreeMap::new();
        for p in seq(&service["spec"], "ports") {
            let name = p["name"].as_str().unwrap_or("").to_string();
            let target = p.get("targetPort").unwrap_or(&p["port"]);
            let what = format!("service.yaml port {name:?} targetPort");
            let port = resolve(target, &what);
            listened.push((what, port));
            service_ports.insert(name, port);
        }

        // ServiceMonitor endpoints: a Service port name (or a targetPort) and a path.
        let mut scrapes = Vec::new();
        for ep in seq(&self.one("ServiceMonitor")["spec"], "endpoints") {
            let what = "servicemonitor.yaml endpoint".to_string();
            let port = if let Some(name) = ep.get("port") {
                let name = str_of(name, &what);
                *service_ports.get(name).unwrap_or_else(|| {
                    panic!("{what}: port {name:?} is not a port name of the Service ({service_ports:?})")
                })
            } else {
                resolve(&ep["targetPort"], &what)
            };
            let path = ep.get("path").and_then(Yaml::as_str).unwrap_or("/metrics");
            scrapes.push(Endpoint {
                source: what.clone(),
                port,
                path: path.to_string(),
            });
            listened.push((what, port));
        }

        Platform {
            name: "deploy/k8s",
            env,
            ports,
            probes,
            scrapes,
            listened,
        }
    }

    /// What docker-compose.yml and deploy/prometheus/prometheus.yml say.
    fn docker_compose(&self) -> Platform {
        let svc = self.compose_service();
        let env = match &svc["environment"] {
            Yaml::Mapping(m) => m
                .iter()
                .map(|(k, v)| EnvVar {
                    name: str_of(k, "docker-compose.yml environment").to_string(),
                    value: scalar(v),
                })
                .collect(),
            Yaml::Sequence(items) => items
                .iter()
                .map(|i| {
                    let s = str_of(i, "docker-compose.yml environment");
                    let (name, value) = match s.split_once('=') {
                        Some((n, v)) => (n, Some(v.to_string())),
                        None => (s, None),
                    };
                    EnvVar {
                        name: name.to_string(),
                        value,
                    }
                })
                .collect(),
            Yaml::Null => Vec::new(),
            other => panic!("docker-compose.yml: unexpected environment {other:?}"),
        };

        // Container side of each published port: "8002", "8002:8002",
        // "127.0.0.1:8002:8002/tcp", or the long form {target: 8002}.
        let ports = seq(svc, "ports")
            .iter()
            .map(|p| {
                let container = match p {
                    Yaml::Mapping(_) => scalar(&p["target"]),
                    _ => scalar(p).map(|s| {
                        let s = s.split('/').next().unwrap_or("").to_string();
                        s.rsplit(':').next().unwrap_or("").to_string()
                    }),
                };
                let port = container
                    .and_then(|s| s.parse::<u16>().ok())
                    .unwrap_or_else(|| panic!("docker-compose.yml: cannot read port {p:?}"));
                (None, port)
            })
            .collect::<Vec<_>>();

        let mut probes = Vec::new();
        let mut listened = Vec::new();
        if let Some(hc) = svc.get("healthcheck") {
            let cmd = match &hc["test"] {
                Yaml::Sequence(parts) => parts
                    .iter()
                    .filter_map(scalar)
                    .collect::<Vec<_>>()
                    .join(" "),
                other => scalar(other).unwrap_or_default(),
            };
            let what = "docker-compose.yml healthcheck".to_string();
            let (port, path) = healthcheck_target(&cmd).unwrap_or_else(|| {
                panic!("{what}: cannot find the probed port and path in {cmd:?}")
            });
            probes.push(Endpoint {
                source: what.clone(),
                port,
                path,
            });
            listened.push((what, port));
        }

        // Prometheus' scrape jobs whose targets are the abacus service.
        let mut scrapes = Vec::new();
        for job in seq(self.prom("prometheus.yml"), "scrape_configs") {
            let name = job["job_name"].as_str().unwrap_or("?");
            let path = job
                .get("metrics_path")
                .and_then(Yaml::as_str)
                .unwrap_or("/metrics");
            for sc in seq(job, "static_configs") {
                for target in seq(sc, "targets") {
                    let target = str_of(target, "prometheus.yml target");
                    let (host, port) = target.rsplit_once(':').unwrap_or((target, "80"));
                    if host != CONTAINER {
                        continue;
                    }
                    let what = format!("prometheus.yml job {name:?} target {target:?}");
                    let port = port.parse().unwrap_or_else(|_| panic!("{what}: bad port"));
                    scrapes.push(Endpoint {
                        source: what.clone(),
                        port,
                        path: path.to_string(),
                    });
                    listened.push((what, port));
                }
            }
        }
        assert!(
            !scrapes.is_empty(),
            "prometheus.yml has no scrape target on the {CONTAINER:?} service"
        );

        Platform {
            name: "docker-compose.yml",
            env,
            ports,
            probes,
            scrapes,
            listened,
        }
    }

    /// Every alert rule expression: (where, expr).
    fn alert_exprs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let sources = [
            ("alerts.yml", &self.prom("alerts.yml")["groups"]),
            (
                "prometheusrule.yaml",
                &self.one("PrometheusRule")["spec"]["groups"],
            ),
        ];
        for (file, groups) in sources {
            for group in groups.as_sequence().map(Vec::as_slice).unwrap_or(&[]) {
                for rule in seq(group, "rules") {
                    let name = rule
                        .get("alert")
                        .or_else(|| rule.get("record"))
                        .and_then(Yaml::as_str)
                        .unwrap_or("?");
                    let expr = scalar(&rule["expr"])
                        .unwrap_or_else(|| panic!("{file} rule {name}: no expr"));
                    out.push((format!("{file} {name}"), expr));
                }
            }
        }
        assert!(!out.is_empty(), "no alert rules found");
        out
    }
}

/// A port given as a number, a numeric string or a container port name.
fn resolve_port(v: &Yaml, named: &[(Option<String>, u16)], what: &str) -> u16 {
    match v {
        Yaml::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or_else(|| panic!("{what}: bad port {n}")),
        Yaml::String(s) => s.parse().unwrap_or_else(|_| {
            named
                .iter()
                .find(|(name, _)| name.as_deref() == Some(s.as_str()))
                .map(|(_, port)| *port)
                .unwrap_or_else(|| {
                    panic!(
                        "{what}: {s:?} is not a port name of the {CONTAINER} container ({named:?})"
                    )
                })
        }),
        other => panic!("{what}: bad port {other:?}"),
    }
}

/// The port and path a compose healthcheck command probes: the
/// `/dev/tcp/HOST/PORT` + `GET PATH HTTP/1.1` form, or an `http://HOST:PORT/PATH` URL.
fn healthcheck_target(cmd: &str) -> Option<(u16, String)> {
    if let Some(i) = cmd.find("/dev/tcp/") {
        let rest = &cmd[i + "/dev/tcp/".len()..];
        let (_host, rest) = rest.split_once('/')?;
        let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let j = cmd.find("GET ")?;
        let path: String = cmd[j + 4..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        return Some((port.parse().ok()?, path));
    }
    let i = cmd.find("http://")?;
    let url: String = cmd[i + "http://".len()..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\''))
        .collect();
    let (authority, path) = match url.find('/') {
        Some(j) => (&url[..j], url[j..].to_string()),
        None => (url.as_str(), "/".to_string()),
    };
    let port = authority
        .rsplit_once(':')
        .map_or(Some(80), |(_, p)| p.parse().ok())?;
    Some((port, path))
}

#[derive(Debug, Clone)]
struct EnvVar {
    name: String,
    /// None for `valueFrom` (a Secret) and for compose's bare `NAME`.
    value: Option<String>,
}

/// A GET the platform makes: a probe or a scrape.
#[derive(Debug, Clone)]
struct Endpoint {
    source: String,
    port: u16,
    path: String,
}

/// One way of running abacus: its container ports, environment, probes and scrapes.
struct Platform {
    name: &'static str,
    env: Vec<EnvVar>,
    /// Container ports (k8s: with their names).
    ports: Vec<(Option<String>, u16)>,
    probes: Vec<Endpoint>,
    scrapes: Vec<Endpoint>,
    /// (where, port): every port something sends traffic to.
    listened: Vec<(String, u16)>,
}

impl Platform {
    fn env_value(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.as_deref())
    }

    /// The port `abacus serve` listens on here: A2A_PORT, else the flag's default.
    fn main_port(&self, help: &Help) -> u16 {
        match self.env_value("A2A_PORT") {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{}: A2A_PORT={v:?} is not a port", self.name)),
            None => help.default_port(),
        }
    }

    /// The metrics listener's port here: ABACUS_METRICS_PORT (no default: unset, no listener).
    fn metrics_port(&self) -> u16 {
        let v = self.env_value("ABACUS_METRICS_PORT").unwrap_or_else(|| {
            panic!(
                "{}: ABACUS_METRICS_PORT is not set, so abacus opens no metrics listener \
                 (--metrics-port has no default)",
                self.name
            )
        });
        v.parse()
            .unwrap_or_else(|_| panic!("{}: ABACUS_METRICS_PORT={v:?} is not a port", self.name))
    }

    fn named_port(&self, name: &str) -> Option<u16> {
        self.ports
            .iter()
            .find(|(n, _)| n.as_deref() == Some(name))
            .map(|(_, p)| *p)
    }
}

// ----------------------------------------------------------------- the binary

/// `abacus --help` and `abacus serve --help`.
struct Help {
    text: String,
}

impl Help {
    fn get() -> Self {
        let mut text = String::new();
        for args in [&["--help"][..], &["serve", "--help"][..]] {
            let out = abacus().args(args).output().expect("run abacus --help");
            assert!(out.status.success(), "abacus {args:?} failed: {out:?}");
            text.push_str(&String::from_utf8_lossy(&out.stdout));
            text.push('\n');
        }
        Help { text }
    }

    /// The help entry of `--flag` (its line and the description lines under it).
    fn entry(&self, flag: &str) -> String {
        let head = format!("{flag} ");
        let mut lines = self
            .text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(&head));
        let first = lines
            .next()
            .unwrap_or_else(|| panic!("abacus --help does not list {flag}"));
        let mut entry = first.to_string();
        for l in lines {
            if l.trim().is_empty() || !l.starts_with(' ') || l.trim_start().starts_with('-') {
                break;
            }
            entry.push(' ');
            entry.push_str(l.trim());
        }
        entry
    }

    fn default_port(&self) -> u16 {
        let entry = self.entry("--port");
        assert!(
            self.text.contains("[default: 8002]"),
            "abacus --help does not mention [default: 8002]"
        );
        let start = entry
            .find("[default: ")
            .unwrap_or_else(|| panic!("--port has no default: {entry}"))
            + "[default: ".len();
        let end = start + entry[start..].find(']').unwrap();
        entry[start..end].parse().unwrap()
    }

    /// `[env: NAME=...]`, or `[env: NAME]` for secrets (`hide_env_values`).
    fn reads_env(&self, name: &str) -> bool {
        self.text.contains(&format!("[env: {name}="))
            || self.text.contains(&format!("[env: {name}]"))
    }
}

/// A running `abacus serve`; killed on drop.
struct Server {
    child: Child,
    port: u16,
    metrics_port: u16,
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
    async fn start() -> Self {
        let [port, metrics_port] = free_ports();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("abacus.log");
        let child = abacus_serve(port)
            .args(["--metrics-port", &metrics_port.to_string()])
            .args(["--store", "memory"])
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

    fn url(&self) -> String {
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
    fn live_port(&self, platform: &Platform, help: &Help, port: u16, what: &str) -> u16 {
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
fn local(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

// --------------------------------------------------------------------- PromQL

#[derive(Debug, Clone, PartialEq)]
struct Matcher {
    label: String,
    op: String,
    value: String,
}

/// A vector selector: `metric{label op "value", ...}`.
#[derive(Debug, Clone, PartialEq)]
struct Selector {
    metric: String,
    matchers: Vec<Matcher>,
}

/// The selectors and the `by`/`without` labels of a PromQL expression.
#[derive(Debug, Default)]
struct Query {
    selectors: Vec<Selector>,
    grouping: BTreeSet<String>,
}

/// Aggregations and keywords: identifiers that are not metric names.
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
];

fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// A quoted string at `chars[i]`; returns its value and the index after it.
fn parse_quoted(chars: &[char], i: usize) -> (String, usize) {
    let quote = chars[i];
    assert!(matches!(quote, '"' | '\'' | '`'), "expected a quote at {i}");
    let mut out = String::new();
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' if quote != '`' && j + 1 < chars.len() => {
                out.push(match chars[j + 1] {
                    'n' => '\n',
                    c => c,
                });
                j += 2;
            }
            c if c == quote => return (out, j + 1),
            c => {
                out.push(c);
                j += 1;
            }
        }
    }
    panic!(
        "unterminated string in {:?}",
        chars.iter().collect::<String>()
    )
}

/// `{label op "value", ...}` at `chars[i] == '{'` (PromQL matchers or an
/// exposition line's labels); returns them and the index after `}`.
fn parse_braces(chars: &[char], i: usize) -> (Vec<Matcher>, usize) {
    assert_eq!(chars[i], '{');
    let mut out = Vec::new();
    let mut i = i + 1;
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        assert!(
            i < chars.len(),
            "unterminated {{ in {:?}",
            chars.iter().collect::<String>()
        );
        if chars[i] == '}' {
            return (out, i + 1);
        }
        let start = i;
        while i < chars.len() && ident_char(chars[i]) {
            i += 1;
        }
        let label: String = chars[start..i].iter().collect();
        i = skip_ws(chars, i);
        let op_start = i;
        while i < chars.len() && matches!(chars[i], '=' | '!' | '~') {
            i += 1;
        }
        let op: String = chars[op_start..i].iter().collect();
        i = skip_ws(chars, i);
        let (value, next) = parse_quoted(chars, i);
        i = next;
        out.push(Matcher { label, op, value });
    }
}

fn scan_promql(expr: &str) -> Query {
    let chars: Vec<char> = expr.chars().collect();
    let mut q = Query::default();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            i = parse_quoted(&chars, i).1;
        } else if c == '#' {
            // A comment, to the end of the line.
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '[' {
            // A range or subquery duration: [5m], [1h:1m].
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
        } else if c == '{' {
            let (matchers, next) = parse_braces(&chars, i);
            if let Some(m) = matchers
                .iter()
                .find(|m| m.label == "__name__" && m.op == "=")
            {
                q.selectors.push(Selector {
                    metric: m.value.clone(),
                    matchers: matchers.clone(),
                });
            }
            i = next;
        } else if c.is_ascii_digit() || c == '.' {
            // A number or a duration (offset 5m).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if ident_start(c) {
            let start = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            let lower = ident.to_ascii_lowercase();
            let next = skip_ws(&chars, i);
            let label_list = matches!(
                lower.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            );
            if label_list && chars.get(next) == Some(&'(') {
                let end = next + chars[next..].iter().position(|&c| c == ')').unwrap();
                if lower == "by" || lower == "without" {
                    let labels: String = chars[next + 1..end].iter().collect();
                    q.grouping.extend(
                        labels
                            .split(',')
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(String::from),
                    );
                }
                i = end + 1;
            } else if chars.get(next) == Some(&'(') || PROMQL_WORDS.contains(&lower.as_str()) {
                // A function call or a keyword.
            } else if chars.get(next) == Some(&'{') {
                let (matchers, after) = parse_braces(&chars, next);
                q.selectors.push(Selector {
                    metric: ident,
                    matchers,
                });
                i = after;
            } else {
                q.selectors.push(Selector {
                    metric: ident,
                    matchers: Vec::new(),
                });
            }
        } else {
            i += 1;
        }
    }
    q
}

/// A metric name without its histogram/summary series suffix.
fn base_name(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// The series of a Prometheus text exposition.
struct Exposition {
    series: Vec<(String, BTreeMap<String, String>)>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut series = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let chars: Vec<char> = line.chars().collect();
            let end = chars
                .iter()
                .position(|&c| c == '{' || c.is_whitespace())
                .unwrap_or(chars.len());
            let name: String = chars[..end].iter().collect();
            let labels = if chars.get(end) == Some(&'{') {
                parse_braces(&chars, end)
                    .0
                    .into_iter()
                    .map(|m| (m.label, m.value))
                    .collect()
            } else {
                BTreeMap::new()
            };
            series.push((name, labels));
        }
        Exposition { series }
    }

    fn of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a BTreeMap<String, String>> {
        self.series
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, l)| l)
    }

    fn has(&self, name: &str) -> bool {
        self.of(name).next().is_some()
    }
}

/// Why the alert expressions cannot work against `exposition` (empty: they can).
fn alert_problems(exprs: &[(String, String)], exposition: &Exposition) -> Vec<String> {
    let mut problems = Vec::new();
    for (rule, expr) in exprs {
        let q = scan_promql(expr);
        let ours: Vec<&Selector> = q
            .selectors
            .iter()
            .filter(|s| !EXEMPT_METRICS.contains(&s.metric.as_str()))
            .collect();
        for s in &ours {
            if !exposition.has(&s.metric) {
                problems.push(format!(
                    "{rule}: metric {} (base name {}) is not exposed by abacus",
                    s.metric,
                    base_name(&s.metric)
                ));
                continue;
            }
            for m in &s.matchers {
                let ok = match m.op.as_str() {
                    "=" => exposition
                        .of(&s.metric)
                        .any(|l| l.get(&m.label) == Some(&m.value)),
                    // Regex and negative matchers: the label must at least exist.
                    _ => exposition.of(&s.metric).any(|l| l.contains_key(&m.label)),
                };
                if !ok {
                    problems.push(format!(
                        "{rule}: no series {}{{{}{}{:?}}} is exposed",
                        s.metric, m.label, m.op, m.value
                    ));
                }
            }
        }
        if ours.is_empty() {
            continue;
        }
        for label in &q.grouping {
            let found = ours
                .iter()
                .any(|s| exposition.of(&s.metric).any(|l| l.contains_key(label)));
            if !found {
                problems.push(format!(
                    "{rule}: groups by label {label:?}, which no series of {:?} carries",
                    ours.iter().map(|s| &s.metric).collect::<Vec<_>>()
                ));
            }
        }
    }
    problems
}

/// Every metric name (and its base name) the alerts reference, exempt ones excluded.
fn alert_metrics(exprs: &[(String, String)]) -> BTreeSet<String> {
    exprs
        .iter()
        .flat_map(|(_, e)| scan_promql(e).selectors)
        .map(|s| s.metric)
        .filter(|m| !EXEMPT_METRICS.contains(&m.as_str()))
        .collect()
}

/// Identifiers of the form `a2a_[a-z0-9_]+` anywhere in `expr`.
fn a2a_identifiers(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(off) = expr[i..].find("a2a_") {
        let start = i + off;
        let boundary = start == 0 || !ident_char(bytes[start - 1] as char);
        let mut end = start + 4;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if boundary && end > start + 4 {
            out.insert(expr[start..end].to_string());
        }
        i = end;
    }
    out
}

// ---------------------------------------------------------------------- tests

#[test]
fn promql_scanner_finds_selectors_matchers_and_grouping() {
    let q = scan_promql(
        r#"histogram_quantile(0.95, sum by (le, method) (rate(a2a_x_bucket{job="a", s!~"b|c"}[5m])))
           / on (instance) group_left (version) max without (pod) (a2a_y) > 5 # a2a_comment
           and up{job="abacus"} == 0 or {__name__="a2a_z", k="it's"} offset 5m"#,
    );
    let metrics: Vec<&str> = q.selectors.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(metrics, ["a2a_x_bucket", "a2a_y", "up", "a2a_z"]);
    assert_eq!(
        q.selectors[0].matchers,
        [
            Matcher {
                label: "job".into(),
                op: "=".into(),
                value: "a".into()
            },
            Matcher {
                label: "s".into(),
                op: "!~".into(),
                value: "b|c".into()
            },
        ]
    );
    let grouping: Vec<&str> = q.grouping.iter().map(String::as_str).collect();
    assert_eq!(grouping, ["le", "method", "pod"]);
    assert_eq!(base_name("a2a_x_bucket"), "a2a_x");
    assert_eq!(base_name("a2a_requests_total"), "a2a_requests_total");

    let e = Exposition::parse(
        "# TYPE a2a_x histogram\na2a_x_bucket{le=\"0.1\",s=\"a\\\"b\"} 1\na2a_y 2\n\n",
    );
    assert!(e.has("a2a_x_bucket") && e.has("a2a_y") && !e.has("a2a_x"));
    assert_eq!(e.of("a2a_x_bucket").next().unwrap()["s"], "a\"b");
}

#[test]
fn the_checks_catch_missing_metrics_labels_and_probe_targets() {
    let exprs = vec![(
        "r".to_string(),
        r#"sum(rate(a2a_a_total{status="error"}[5m])) / sum by (le) (rate(a2a_b_bucket[5m])) and up{job="x"} == 0"#
            .to_string(),
    )];
    let good = Exposition::parse(
        "a2a_a_total{status=\"error\"} 1\na2a_b_bucket{le=\"+Inf\"} 1\na2a_b_sum 1\na2a_b_count 1\n",
    );
    assert_eq!(alert_problems(&exprs, &good), Vec::<String>::new());
    let wrong_label =
        Exposition::parse("a2a_a_total{status=\"success\"} 1\na2a_b_bucket{le=\"+Inf\"} 1\n");
    let problems = alert_problems(&exprs, &wrong_label);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains(r#"a2a_a_total{status="error"}"#),
        "{problems:?}"
    );
    // A histogram exported as a plain gauge: no _bucket series, no le label.
    let no_histogram = Exposition::parse("a2a_a_total{status=\"error\"} 1\na2a_b 1\n");
    let problems = alert_problems(&exprs, &no_histogram);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("a2a_b_bucket (base name a2a_b)")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains(r#"label "le""#)),
        "{problems:?}"
    );
    assert_eq!(
        alert_metrics(&exprs),
        BTreeSet::from(["a2a_a_total".to_string(), "a2a_b_bucket".to_string()])
    );

    assert_eq!(
        healthcheck_target(
            "CMD bash -c exec 3<>/dev/tcp/127.0.0.1/8002 && printf 'GET /health HTTP/1.1\\r\\n' >&3"
        ),
        Some((8002, "/health".to_string()))
    );
    assert_eq!(
        healthcheck_target("CMD curl -fsS http://localhost:8002/health/detailed"),
        Some((8002, "/health/detailed".to_string()))
    );
    let named = [
        (Some("http".to_string()), 8002),
        (Some("metrics".to_string()), 8090),
    ];
    assert_eq!(resolve_port(&Yaml::from("metrics"), &named, "t"), 8090);
    assert_eq!(resolve_port(&Yaml::from(8002), &named, "t"), 8002);
    let unknown = std::panic::catch_unwind(|| resolve_port(&Yaml::from("grpc"), &named, "t"));
    assert!(unknown.is_err(), "an unknown port name must fail");
}

#[test]
fn prometheus_rule_groups_equal_alerts_yml_groups() {
    let m = Manifests::load();
    let plain = &m.prom("alerts.yml")["groups"];
    let operator = &m.one("PrometheusRule")["spec"]["groups"];
    assert!(
        plain.as_sequence().is_some_and(|g| !g.is_empty()),
        "alerts.yml has no groups"
    );
    assert_eq!(
        operator, plain,
        "deploy/k8s/prometheusrule.yaml spec.groups differ from deploy/prometheus/alerts.yml groups"
    );
}

#[test]
fn alert_expressions_reference_a2a_metrics() {
    let m = Manifests::load();
    let exprs = m.alert_exprs();
    let selected = alert_metrics(&exprs);
    let mut raw = BTreeSet::new();
    for (rule, expr) in &exprs {
        let q = scan_promql(expr);
        for s in &q.selectors {
            assert!(
                s.metric.starts_with("a2a_") || EXEMPT_METRICS.contains(&s.metric.as_str()),
                "{rule}: metric {} is neither an abacus (a2a_*) metric nor exempt",
                s.metric
            );
        }
        raw.extend(a2a_identifiers(expr));
    }
    // The scanner found every a2a_ identifier the expressions mention.
    assert_eq!(selected, raw, "PromQL scanner and identifier scan disagree");
    assert!(!selected.is_empty(), "the alerts reference no a2a_ metric");
}

#[test]
fn container_ports_match_the_binary() {
    let m = Manifests::load();
    let help = Help::get();
    let default_port = help.default_port();
    assert_eq!(default_port, 8002, "abacus serve --port default");

    let k8s = m.kubernetes();
    let http = k8s
        .named_port("http")
        .expect("deployment.yaml: no container port named http");
    let metrics = k8s
        .named_port("metrics")
        .expect("deployment.yaml: no container port named metrics");
    assert_eq!(http, default_port, "deployment.yaml: containerPort http");
    assert_eq!(
        metrics, METRICS_PORT,
        "deployment.yaml: containerPort metrics"
    );

    for p in m.platforms() {
        let main = p.main_port(&help);
        let metrics = p.metrics_port();
        assert_eq!(main, default_port, "{}: A2A port", p.name);
        assert_eq!(metrics, METRICS_PORT, "{}: ABACUS_METRICS_PORT", p.name);
        assert_ne!(main, metrics, "{}: one port for both listeners", p.name);
        if let Some(http) = p.named_port("http") {
            assert_eq!(main, http, "{}: A2A_PORT vs containerPort http", p.name);
        }
        if let Some(named) = p.named_port("metrics") {
            assert_eq!(
                metrics, named,
                "{}: ABACUS_METRICS_PORT vs containerPort metrics",
                p.name
            );
        }
        // Every container port is a listener, and both listeners are exposed.
        let declared: BTreeSet<u16> = p.ports.iter().map(|(_, port)| *port).collect();
        assert_eq!(
            declared,
            BTreeSet::from([main, metrics]),
            "{}: container ports vs the ports abacus listens on",
            p.name
        );
        for (what, port) in &p.listened {
            assert!(
                *port == main || *port == metrics,
                "{}: {what} targets port {port}; abacus listens on {main} and {metrics}",
                p.name
            );
        }
        // Reachable from outside the container: bind a wildcard address if set.
        if let Some(host) = p.env_value("A2A_HOST") {
            assert!(
                matches!(host, "0.0.0.0" | "::" | "[::]"),
                "{}: A2A_HOST={host:?} is not reachable by probes from outside the container",
                p.name
            );
        }
    }
}

#[test]
fn every_env_var_the_manifests_set_is_read_by_the_binary() {
    let m = Manifests::load();
    let help = Help::get();
    let mut unknown = Vec::new();
    let mut checked = 0;
    for p in m.platforms() {
        assert!(!p.env.is_empty(), "{}: no environment", p.name);
        for e in &p.env {
            if EXEMPT_ENV.contains(&e.name.as_str()) {
                continue;
            }
            checked += 1;
            if !help.reads_env(&e.name) {
                unknown.push(format!("{}: {}", p.name, e.name));
            }
        }
    }
    assert!(checked > 0);
    assert!(
        unknown.is_empty(),
        "environment variables abacus does not read (no `[env: NAME=` or `[env: NAME]` in --help): {unknown:?}"
    );
}

#[test]
fn manifests_are_wired_to_each_other() {
    let m = Manifests::load();

    // Service -> pods, ServiceMonitor -> Service.
    let deployment = m.one("Deployment");
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let service = m.one("Service");
    let service_name = str_of(&service["metadata"]["name"], "Service name");
    for (k, v) in service["spec"]["selector"]
        .as_mapping()
        .expect("Service selector")
    {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "Service selector {k:?} vs pod labels"
        );
    }
    let monitor = m.one("ServiceMonitor");
    let match_labels = monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("ServiceMonitor matchLabels");
    for (k, v) in match_labels {
        assert_eq!(
            service["metadata"]["labels"].get(k),
            Some(v),
            "ServiceMonitor selector {k:?} vs Service labels"
        );
    }

    // Ingress backends name a port of the Service.
    let service_ports: BTreeSet<String> = seq(&service["spec"], "ports")
        .iter()
        .filter_map(|p| scalar(&p["name"]))
        .collect();
    for rule in seq(&m.one("Ingress")["spec"], "rules") {
        for p in seq(&rule["http"], "paths") {
            let backend = &p["backend"]["service"];
            assert_eq!(
                backend["name"].as_str(),
                Some(service_name),
                "Ingress backend"
            );
            if let Some(name) = backend["port"].get("name") {
                let name = str_of(name, "Ingress backend port");
                assert!(
                    service_ports.contains(name),
                    "Ingress port {name:?} not in Service"
                );
            }
        }
    }

    // up{job="..."} matches the job name on both platforms: the
    // prometheus.yml job scraping abacus, and the Service name (the
    // ServiceMonitor's job label unless it sets jobLabel).
    let k8s_job = match monitor["spec"].get("jobLabel").and_then(Yaml::as_str) {
        Some(label) => str_of(&service["metadata"]["labels"][label], "jobLabel").to_string(),
        None => service_name.to_string(),
    };
    let compose_jobs: BTreeSet<String> = seq(m.prom("prometheus.yml"), "scrape_configs")
        .iter()
        .filter(|job| {
            seq(job, "static_configs").iter().any(|sc| {
                seq(sc, "targets")
                    .iter()
                    .filter_map(Yaml::as_str)
                    .any(|t| t.split(':').next() == Some(CONTAINER))
            })
        })
        .map(|job| str_of(&job["job_name"], "job_name").to_string())
        .collect();
    for (rule, expr) in m.alert_exprs() {
        for s in scan_promql(&expr).selectors {
            for mt in s
                .matchers
                .iter()
                .filter(|mt| mt.label == "job" && mt.op == "=")
            {
                assert_eq!(mt.value, k8s_job, "{rule}: job on Kubernetes");
                assert!(
                    compose_jobs.contains(&mt.value),
                    "{rule}: job {:?} is not a prometheus.yml job scraping abacus ({compose_jobs:?})",
                    mt.value
                );
            }
        }
    }

    // Every file kustomize applies exists; the example Secrets are not applied.
    let kustomization = m.one("Kustomization");
    for r in seq(kustomization, "resources") {
        let r = str_of(r, "kustomization resource");
        assert!(
            path("deploy/k8s").join(r).is_file(),
            "kustomization: {r} is missing"
        );
        assert_ne!(
            r, "secrets.example.yaml",
            "kustomization applies the example Secrets"
        );
    }

    // Every secretKeyRef has its key in the example Secrets.
    let mut secrets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in m.kind("Secret") {
        let keys = secrets
            .entry(str_of(&s["metadata"]["name"], "Secret name").to_string())
            .or_default();
        for field in ["data", "stringData"] {
            if let Some(map) = s.get(field).and_then(Yaml::as_mapping) {
                keys.extend(map.keys().filter_map(scalar));
            }
        }
    }
    for e in seq(m.container(), "env") {
        if let Some(r) = e["valueFrom"].get("secretKeyRef") {
            let (name, key) = (str_of(&r["name"], "secret"), str_of(&r["key"], "key"));
            assert!(
                secrets.get(name).is_some_and(|k| k.contains(key)),
                "env {:?}: Secret {name}/{key} is not in secrets.example.yaml",
                e["name"]
            );
        }
    }

    // The root filesystem is read-only: ABACUS_DATA_DIR must be a mount.
    let k8s = m.kubernetes();
    if let Some(dir) = k8s.env_value("ABACUS_DATA_DIR") {
        let mounts: Vec<&str> = seq(m.container(), "volumeMounts")
            .iter()
            .filter_map(|v| v["mountPath"].as_str())
            .collect();
        assert!(
            mounts.contains(&dir),
            "deployment.yaml: ABACUS_DATA_DIR={dir} is not mounted"
        );
    }
    let compose = m.docker_compose();
    if let Some(dir) = compose.env_value("ABACUS_DATA_DIR") {
        let mounted = seq(m.compose_service(), "volumes").iter().any(|v| match v {
            Yaml::Mapping(_) => v["target"].as_str() == Some(dir),
            _ => v.as_str().and_then(|s| s.split(':').nth(1)) == Some(dir),
        });
        assert!(
            mounted,
            "docker-compose.yml: ABACUS_DATA_DIR={dir} is not a volume"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_scrapes_and_alert_metrics_work_against_the_real_binary() {
    let m = Manifests::load();
    let help = Help::get();
    let exprs = m.alert_exprs();
    let server = Server::start().await;
    let client = Client::new(&server.url());

    // Probe paths answer 200 where the platform sends them.
    for p in m.platforms() {
        assert!(!p.probes.is_empty(), "{}: no probes", p.name);
        for probe in &p.probes {
            let port = server.live_port(&p, &help, probe.port, &probe.source);
            let (status, body) = get(&local(port, &probe.path)).await.unwrap();
            assert_eq!(
                status, 200,
                "{}: GET {} on port {} answered {status}: {body}",
                probe.source, probe.path, probe.port
            );
        }
    }
    // The probe bodies are JSON health reports.
    for path in ["health", "health/detailed"] {
        let v = client
            .get(&format!("{}{path}", server.url()))
            .await
            .unwrap_or_else(|e| panic!("GET /{path}: {e}"));
        assert_eq!(v["status"], "healthy", "/{path}: {v}");
    }

    // /metrics answers on both listeners.
    for port in [server.port, server.metrics_port] {
        let (status, body) = get(&local(port, "/metrics")).await.unwrap();
        assert_eq!(status, 200, "GET /metrics on port {port}: {body}");
        assert!(
            body.contains("# TYPE "),
            "port {port}: not an exposition: {body}"
        );
    }

    // Traffic, so every metric has a series: a success, the same again (a
    // cache hit), a failed computation, and a JSON-RPC error.
    let message = |id: &str, text: &str| json!({"message": {"messageId": id, "role": "ROLE_USER", "parts": [{"text": text}]}});
    for id in ["m1", "m2"] {
        let r = client
            .call("SendMessage", message(id, "2 + 2"))
            .await
            .unwrap();
        assert_eq!(r["result"]["message"]["parts"][0]["text"], "4", "{r}");
    }
    let r = client
        .call("SendMessage", message("m3", "1/0"))
        .await
        .unwrap();
    assert!(r.get("result").is_some(), "{r}");
    let r = client
        .call("GetTask", json!({"id": "no-such-task"}))
        .await
        .unwrap();
    assert!(r.get("error").is_some(), "GetTask of an unknown id: {r}");

    // What Prometheus scrapes carries every metric, label and grouping the
    // alerts use; so does /metrics on both listeners.
    let required = alert_metrics(&exprs);
    assert!(!required.is_empty());
    let mut targets: Vec<(String, u16, String)> = vec![
        (
            "/metrics on the A2A port".into(),
            server.port,
            "/metrics".into(),
        ),
        (
            "/metrics on the metrics port".into(),
            server.metrics_port,
            "/metrics".into(),
        ),
    ];
    for p in m.platforms() {
        assert!(!p.scrapes.is_empty(), "{}: nothing scrapes abacus", p.name);
        for s in &p.scrapes {
            let port = server.live_port(&p, &help, s.port, &s.source);
            targets.push((s.source.clone(), port, s.path.clone()));
        }
    }
    let mut problems = Vec::new();
    for (what, port, path) in targets {
        let (status, body) = get(&local(port, &path)).await.unwrap();
        assert_eq!(status, 200, "{what}: GET {path} answered {status}: {body}");
        for problem in alert_problems(&exprs, &Exposition::parse(&body)) {
            problems.push(format!("{what}: {problem}"));
        }
    }
    assert!(
        problems.is_empty(),
        "the alert rules reference what abacus does not expose (needed: {required:?}):\n{}",
        problems.join("\n")
    );
}
