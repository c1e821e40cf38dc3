//! The manifests as parsed YAML: deploy/k8s, docker-compose.yml and
//! deploy/prometheus, and what each platform says about the abacus container
//! (on docker compose: about each abacus replica service).

use super::binary::Help;
use super::{CONTAINER, ROOT};
use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(super) fn path(rel: &str) -> PathBuf {
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

pub(super) fn str_of<'a>(v: &'a Yaml, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {v:?}"))
}

pub(super) fn seq<'a>(v: &'a Yaml, key: &str) -> &'a [Yaml] {
    v.get(key)
        .and_then(Yaml::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A scalar as a string (`8002` and `"8002"` alike).
pub(super) fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Every parsed document, by origin.
pub(super) struct Manifests {
    /// (file name, document) for each document under deploy/k8s.
    k8s: Vec<(String, Yaml)>,
    /// deploy/prometheus/*.yml by file name (one document each).
    prometheus: BTreeMap<String, Yaml>,
    compose: Yaml,
}

impl Manifests {
    pub(super) fn load() -> Self {
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
        let mut compose = compose.remove(0);
        // `<<: *anchor` merge keys, as docker compose applies them.
        compose
            .apply_merge()
            .unwrap_or_else(|e| panic!("docker-compose.yml: bad merge key: {e}"));
        Manifests {
            k8s,
            prometheus,
            compose,
        }
    }

    pub(super) fn kind<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Yaml> + 'a {
        let kind = kind.to_string();
        self.k8s
            .iter()
            .map(|(_, d)| d)
            .filter(move |d| d.get("kind").and_then(Yaml::as_str) == Some(kind.as_str()))
    }

    /// The only object of `kind`.
    pub(super) fn one(&self, kind: &str) -> &Yaml {
        let all: Vec<&Yaml> = self.kind(kind).collect();
        assert_eq!(all.len(), 1, "expected exactly one {kind} in deploy/k8s");
        all[0]
    }

    pub(super) fn prom(&self, file: &str) -> &Yaml {
        self.prometheus
            .get(file)
            .unwrap_or_else(|| panic!("deploy/prometheus/{file} is missing"))
    }

    /// The Deployment's abacus container.
    pub(super) fn container(&self) -> &Yaml {
        seq(
            &self.one("Deployment")["spec"]["template"]["spec"],
            "containers",
        )
        .iter()
        .find(|c| c["name"].as_str() == Some(CONTAINER))
        .unwrap_or_else(|| panic!("the Deployment has no container named {CONTAINER:?}"))
    }

    /// Every docker-compose.yml service by name.
    pub(super) fn compose_services(&self) -> BTreeMap<String, &Yaml> {
        self.compose["services"]
            .as_mapping()
            .expect("docker-compose.yml: no services mapping")
            .iter()
            .map(|(k, v)| (str_of(k, "docker-compose.yml service name").to_string(), v))
            .collect()
    }

    /// docker-compose.yml's abacus replicas, by service name: the services
    /// built from this repository, running the abacus image, or named
    /// `abacus*`. At least one.
    pub(super) fn compose_replicas(&self) -> BTreeMap<String, &Yaml> {
        let replicas: BTreeMap<String, &Yaml> = self
            .compose_services()
            .into_iter()
            .filter(|(name, svc)| is_abacus_service(name, svc))
            .collect();
        assert!(
            !replicas.is_empty(),
            "docker-compose.yml has no abacus service (built here, image abacus, or named {CONTAINER}*)"
        );
        replicas
    }

    /// Kubernetes, then each compose replica.
    pub(super) fn platforms(&self) -> Vec<Platform> {
        let mut all = vec![self.kubernetes()];
        all.extend(self.docker_compose());
        all
    }

    /// What deploy/k8s says about the abacus container.
    pub(super) fn kubernetes(&self) -> Platform {
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
            name: "deploy/k8s".to_string(),
            service: None,
            env,
            ports,
            probes,
            scrapes,
            listened,
        }
    }

    /// What docker-compose.yml and deploy/prometheus/prometheus.yml say
    /// about each abacus replica.
    pub(super) fn docker_compose(&self) -> Vec<Platform> {
        self.compose_replicas()
            .into_iter()
            .map(|(name, svc)| self.compose_replica(&name, svc))
            .collect()
    }

    fn compose_replica(&self, service: &str, svc: &Yaml) -> Platform {
        let file = format!("docker-compose.yml {service}");
        let env = match &svc["environment"] {
            Yaml::Mapping(m) => m
                .iter()
                .map(|(k, v)| EnvVar {
                    name: str_of(k, &format!("{file} environment")).to_string(),
                    value: scalar(v),
                })
                .collect(),
            Yaml::Sequence(items) => items
                .iter()
                .map(|i| {
                    let s = str_of(i, &format!("{file} environment"));
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
            other => panic!("{file}: unexpected environment {other:?}"),
        };

        // Published ports (container side) and `expose`d ones.
        let ports = compose_ports(svc, &file)
            .into_iter()
            .map(|(_, container)| container)
            .chain(seq(svc, "expose").iter().map(|p| {
                scalar(p)
                    .and_then(|s| s.split('/').next().and_then(|s| s.parse::<u16>().ok()))
                    .unwrap_or_else(|| panic!("{file}: cannot read expose {p:?}"))
            }))
            .map(|port| (None, port))
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
            let what = format!("{file} healthcheck");
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

        // Prometheus' scrape jobs whose targets are this service.
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
                    if host != service {
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
            "prometheus.yml has no scrape target on the {service:?} service"
        );

        Platform {
            name: file,
            service: Some(service.to_string()),
            env,
            ports,
            probes,
            scrapes,
            listened,
        }
    }

    /// Every alert rule expression: (where, expr).
    pub(super) fn alert_exprs(&self) -> Vec<(String, String)> {
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

/// Whether a compose service runs abacus: built from this repository
/// (`build`), running the `abacus` image, or named `abacus*`.
pub(super) fn is_abacus_service(name: &str, svc: &Yaml) -> bool {
    let image = svc.get("image").and_then(Yaml::as_str).unwrap_or("");
    let repository = image.rsplit('/').next().unwrap_or("");
    let repository = repository.split([':', '@']).next().unwrap_or("");
    name.starts_with(CONTAINER) || svc.get("build").is_some() || repository == CONTAINER
}

/// Each port a compose service publishes, as (host port, container port):
/// "8002" (a random host port: None), "8002:8002", "127.0.0.1:8002:8002/tcp",
/// or the long form {target: 8002, published: 8002}.
pub(super) fn compose_ports(svc: &Yaml, what: &str) -> Vec<(Option<u16>, u16)> {
    seq(svc, "ports")
        .iter()
        .map(|p| {
            let (host, container) = match p {
                Yaml::Mapping(_) => (scalar(&p["published"]), scalar(&p["target"])),
                _ => {
                    let s = scalar(p).unwrap_or_default();
                    let s = s.split('/').next().unwrap_or("");
                    let mut parts = s.rsplit(':');
                    let container = parts.next().map(String::from);
                    (parts.next().map(String::from), container)
                }
            };
            let container = container
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or_else(|| panic!("{what}: cannot read port {p:?}"));
            (host.and_then(|s| s.parse().ok()), container)
        })
        .collect()
}

/// The container path of a compose volume: `src:/path[:ro]`, a bare
/// `/path` (an anonymous volume), or the long form {target: /path}.
pub(super) fn volume_target(v: &Yaml) -> Option<&str> {
    match v {
        Yaml::Mapping(_) => v["target"].as_str(),
        _ => {
            let s = v.as_str()?;
            let mut parts = s.split(':');
            let first = parts.next()?;
            parts.next().or(Some(first))
        }
    }
}

/// A port given as a number, a numeric string or a container port name.
pub(super) fn resolve_port(v: &Yaml, named: &[(Option<String>, u16)], what: &str) -> u16 {
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
pub(super) fn healthcheck_target(cmd: &str) -> Option<(u16, String)> {
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
pub(super) struct EnvVar {
    pub(super) name: String,
    /// None for `valueFrom` (a Secret) and for compose's bare `NAME`.
    pub(super) value: Option<String>,
}

/// A GET the platform makes: a probe or a scrape.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) source: String,
    pub(super) port: u16,
    pub(super) path: String,
}

/// One way of running abacus: its container ports, environment, probes and scrapes.
pub(super) struct Platform {
    /// `deploy/k8s`, or `docker-compose.yml SERVICE`.
    pub(super) name: String,
    /// The compose service name (None on Kubernetes).
    pub(super) service: Option<String>,
    pub(super) env: Vec<EnvVar>,
    /// Container ports (k8s: with their names).
    pub(super) ports: Vec<(Option<String>, u16)>,
    pub(super) probes: Vec<Endpoint>,
    pub(super) scrapes: Vec<Endpoint>,
    /// (where, port): every port something sends traffic to.
    pub(super) listened: Vec<(String, u16)>,
}

impl Platform {
    pub(super) fn env_value(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.as_deref())
    }

    /// The port `abacus serve` listens on here: A2A_PORT, else the flag's default.
    pub(super) fn main_port(&self, help: &Help) -> u16 {
        match self.env_value("A2A_PORT") {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{}: A2A_PORT={v:?} is not a port", self.name)),
            None => help.default_port(),
        }
    }

    /// The metrics listener's port here: ABACUS_METRICS_PORT (no default: unset, no listener).
    pub(super) fn metrics_port(&self) -> u16 {
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

    pub(super) fn named_port(&self, name: &str) -> Option<u16> {
        self.ports
            .iter()
            .find(|(n, _)| n.as_deref() == Some(name))
            .map(|(_, p)| *p)
    }
}
