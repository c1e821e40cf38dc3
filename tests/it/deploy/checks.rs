//! The checks: manifests, alert rules and the binary against each other.

use super::binary::{local, Help, Server};
use super::manifests::{
    compose_ports, healthcheck_target, path, resolve_port, scalar, seq, str_of, volume_target,
    EnvVar, Manifests, Platform,
};
use super::nginx::{NginxConf, NGINX_CONF};
use super::promql::{
    a2a_identifiers, alert_metrics, base_name, promql_problems, scan_promql, Exposition, Matcher,
};
use super::{EXEMPT_ENV, EXEMPT_METRICS, METRICS_PORT};
use crate::common::get;
use abacus::client::JsonRpcClient as Client;
use serde_json::json;
use serde_yaml_ng::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};

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
    assert_eq!(promql_problems(&exprs, &good), Vec::<String>::new());
    let wrong_label =
        Exposition::parse("a2a_a_total{status=\"success\"} 1\na2a_b_bucket{le=\"+Inf\"} 1\n");
    let problems = promql_problems(&exprs, &wrong_label);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains(r#"a2a_a_total{status="error"}"#),
        "{problems:?}"
    );
    // A histogram exported as a plain gauge: no _bucket series, no le label.
    let no_histogram = Exposition::parse("a2a_a_total{status=\"error\"} 1\na2a_b 1\n");
    let problems = promql_problems(&exprs, &no_histogram);
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
    let replicas = m.compose_replicas();
    let compose_jobs: BTreeSet<String> = seq(m.prom("prometheus.yml"), "scrape_configs")
        .iter()
        .filter(|job| {
            seq(job, "static_configs").iter().any(|sc| {
                seq(sc, "targets").iter().filter_map(Yaml::as_str).any(|t| {
                    t.split(':')
                        .next()
                        .is_some_and(|h| replicas.contains_key(h))
                })
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
    for p in m.docker_compose() {
        let Some(dir) = p.env_value("ABACUS_DATA_DIR") else {
            continue;
        };
        let svc = replicas[p.service.as_deref().unwrap()];
        let mounted = seq(svc, "volumes")
            .iter()
            .any(|v| volume_target(v) == Some(dir));
        assert!(mounted, "{}: ABACUS_DATA_DIR={dir} is not a volume", p.name);
    }
}

/// What is wrong with the compose replicas as one server: each has an id of
/// its own, and all share one PostgreSQL and one Redis, compose services.
fn replica_problems(replicas: &[Platform], services: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    if replicas.len() < 2 {
        problems.push(format!(
            "{} abacus replica(s) in docker-compose.yml; several are the point",
            replicas.len()
        ));
    }
    let mut ids: BTreeMap<&str, &str> = BTreeMap::new();
    for p in replicas {
        match p.env_value("ABACUS_REPLICA_ID") {
            None => problems.push(format!("{}: no ABACUS_REPLICA_ID", p.name)),
            Some(id) => {
                if let Some(other) = ids.insert(id, &p.name) {
                    problems.push(format!(
                        "{}: ABACUS_REPLICA_ID={id} is also {other}'s",
                        p.name
                    ));
                }
            }
        }
    }
    // Shared, and the same everywhere: what makes the replicas one server.
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "ABACUS_CACHE_NAMESPACE",
        "A2A_PUBLIC_URL",
    ] {
        let values: BTreeSet<Option<&str>> = replicas.iter().map(|p| p.env_value(var)).collect();
        if values.len() > 1 {
            problems.push(format!("the replicas disagree on {var}: {values:?}"));
        }
    }
    for var in ["DATABASE_URL", "REDIS_URL"] {
        for p in replicas {
            let Some(url) = p.env_value(var) else {
                problems.push(format!("{}: no {var}", p.name));
                continue;
            };
            let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
            let authority = authority.split('/').next().unwrap_or("");
            let host_port = authority.rsplit('@').next().unwrap_or("");
            let host = host_port.split(':').next().unwrap_or("");
            if !services.contains(host) {
                problems.push(format!(
                    "{}: {var} names host {host:?}, which is no docker-compose.yml service",
                    p.name
                ));
            }
        }
    }
    problems
}

#[test]
fn the_replica_checks_catch_missing_and_diverging_settings() {
    let replica = |name: &str, env: &[(&str, &str)]| Platform {
        name: format!("docker-compose.yml {name}"),
        service: Some(name.to_string()),
        env: env
            .iter()
            .map(|(k, v)| EnvVar {
                name: k.to_string(),
                value: Some(v.to_string()),
            })
            .collect(),
        ports: Vec::new(),
        probes: Vec::new(),
        scrapes: Vec::new(),
        listened: Vec::new(),
    };
    let services = BTreeSet::from(["pg".to_string(), "redis".to_string()]);
    let db = ("DATABASE_URL", "postgres://u:p@pg:5432/db");
    let redis = ("REDIS_URL", "redis://redis:6379/0");
    let good = [
        replica("a-1", &[("ABACUS_REPLICA_ID", "a-1"), db, redis]),
        replica("a-2", &[("ABACUS_REPLICA_ID", "a-2"), db, redis]),
    ];
    assert_eq!(replica_problems(&good, &services), Vec::<String>::new());
    let bad = [
        replica("a-1", &[("ABACUS_REPLICA_ID", "a"), db, redis]),
        replica("a-2", &[("ABACUS_REPLICA_ID", "a"), db]),
        replica(
            "a-3",
            &[("DATABASE_URL", "postgres://u:p@db:5432/db"), redis],
        ),
    ];
    let problems = replica_problems(&bad, &services);
    for want in [
        "a-2: ABACUS_REPLICA_ID=a is also",
        "a-3: no ABACUS_REPLICA_ID",
        "disagree on DATABASE_URL",
        "disagree on REDIS_URL",
        "a-2: no REDIS_URL",
        "names host \"db\"",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "{want}: {problems:?}"
        );
    }
    assert!(!replica_problems(&good[..1], &services).is_empty());
}

#[test]
fn compose_replicas_share_one_store_and_cache() {
    let m = Manifests::load();
    let services: BTreeSet<String> = m.compose_services().into_keys().collect();
    let problems = replica_problems(&m.docker_compose(), &services);
    assert!(
        problems.is_empty(),
        "docker-compose.yml replicas:\n{}",
        problems.join("\n")
    );
}

#[test]
fn nginx_balances_every_compose_replica() {
    let m = Manifests::load();
    let help = Help::get();
    let replicas: BTreeMap<String, u16> = m
        .docker_compose()
        .iter()
        .map(|p| (p.service.clone().unwrap(), p.main_port(&help)))
        .collect();
    let conf = NginxConf::load();
    let problems = conf.problems(&replicas, abacus::grpc::SERVICE_NAME);
    assert!(
        problems.is_empty(),
        "{NGINX_CONF} vs the replicas of docker-compose.yml {replicas:?}:\n{}",
        problems.join("\n")
    );

    // The compose service that mounts the file, publishes what it listens
    // on, and starts after the replicas.
    let services = m.compose_services();
    let mounts_conf = |svc: &Yaml| {
        seq(svc, "volumes").iter().any(|v| {
            let source = match v {
                Yaml::Mapping(_) => v["source"].as_str(),
                _ => v.as_str().and_then(|s| s.split(':').next()),
            };
            source.is_some_and(|s| s.trim_start_matches("./") == NGINX_CONF)
        })
    };
    let lbs: Vec<(&String, &&Yaml)> = services
        .iter()
        .filter(|(_, svc)| mounts_conf(svc))
        .collect();
    assert_eq!(
        lbs.len(),
        1,
        "docker-compose.yml: services mounting {NGINX_CONF}: {lbs:?}"
    );
    let (name, lb) = lbs[0];
    let target = seq(lb, "volumes").iter().find_map(|v| {
        let s = v.as_str()?;
        s.contains(NGINX_CONF)
            .then(|| s.split(':').nth(1).unwrap_or(""))
    });
    if let Some(target) = target {
        assert_eq!(
            target, "/etc/nginx/nginx.conf",
            "{name}: where {NGINX_CONF} is mounted"
        );
    }
    let published = compose_ports(lb, name);
    let listen = conf.listen_ports();
    assert!(!listen.is_empty(), "{NGINX_CONF}: no listen port");
    for port in &listen {
        assert!(
            published.iter().any(|(_, container)| container == port),
            "{name}: {NGINX_CONF} listens on {port}, which {name} does not publish ({published:?})"
        );
    }
    // The agent card's URL is the load balancer: a port it publishes on the host.
    for p in m.docker_compose() {
        let Some(url) = p.env_value("A2A_PUBLIC_URL") else {
            continue;
        };
        let authority = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = authority.split('/').next().unwrap_or("");
        let port: u16 = match authority.rsplit_once(':') {
            Some((_, port)) => port.parse().unwrap_or(0),
            None if url.starts_with("https") => 443,
            None => 80,
        };
        assert!(
            published
                .iter()
                .any(|(host, container)| *host == Some(port) && listen.contains(container)),
            "{}: A2A_PUBLIC_URL={url}, but {name} publishes no host port {port} to a port nginx listens on ({published:?})",
            p.name
        );
    }
    let depends: BTreeSet<String> = match &lb["depends_on"] {
        Yaml::Mapping(map) => map.keys().filter_map(scalar).collect(),
        other => other
            .as_sequence()
            .map(|s| s.iter().filter_map(scalar).collect())
            .unwrap_or_default(),
    };
    for replica in replicas.keys() {
        assert!(
            depends.contains(replica),
            "{name}: does not depend on {replica}, whose name its upstream must resolve"
        );
    }
}

#[test]
fn kubernetes_replicas_have_their_own_ids_and_drain_within_the_grace_period() {
    let m = Manifests::load();
    let help = Help::get();
    let container = m.container();
    let pod = &m.one("Deployment")["spec"]["template"]["spec"];

    // Each pod holds its leases under its own name.
    let id = seq(container, "env")
        .iter()
        .find(|e| e["name"].as_str() == Some("ABACUS_REPLICA_ID"))
        .expect("deployment.yaml: no ABACUS_REPLICA_ID");
    assert_eq!(
        id["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.name"),
        "deployment.yaml: ABACUS_REPLICA_ID is not the pod name"
    );
    // The Redis URL is optional: a pod starts without the Secret.
    let redis = seq(container, "env")
        .iter()
        .find(|e| e["name"].as_str() == Some("REDIS_URL"))
        .expect("deployment.yaml: no REDIS_URL");
    assert_eq!(
        redis["valueFrom"]["secretKeyRef"]["optional"].as_bool(),
        Some(true),
        "deployment.yaml: REDIS_URL's Secret must be optional"
    );

    // preStop sleep + drain fit in the grace period, with room to spare.
    let k8s = m.kubernetes();
    let drain: f64 = k8s
        .env_value("ABACUS_SHUTDOWN_DRAIN_SECS")
        .map(String::from)
        .or_else(|| help.default_of("--shutdown-drain-secs"))
        .and_then(|v| v.parse().ok())
        .expect("the shutdown drain (ABACUS_SHUTDOWN_DRAIN_SECS or its default)");
    let pre_stop = &container["lifecycle"]["preStop"];
    let sleep: f64 = match (pre_stop.get("sleep"), pre_stop.get("exec")) {
        (Some(s), _) => s["seconds"].as_f64().unwrap_or(0.0),
        (None, Some(exec)) => {
            let cmd: Vec<String> = seq(exec, "command").iter().filter_map(scalar).collect();
            match cmd.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["sleep", secs] => secs.parse().unwrap_or(0.0),
                _ => panic!("deployment.yaml: preStop runs {cmd:?}, not a sleep"),
            }
        }
        (None, None) => 0.0,
    };
    let grace = pod["terminationGracePeriodSeconds"]
        .as_f64()
        .unwrap_or(30.0);
    assert!(
        sleep + drain < grace,
        "deployment.yaml: preStop {sleep} s + drain {drain} s do not fit in terminationGracePeriodSeconds {grace}"
    );

    // One pod down at a time, and the budget covers the Deployment's pods.
    let pdb = m.one("PodDisruptionBudget");
    let labels = &pod_labels(&m);
    for (k, v) in pdb["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("PodDisruptionBudget matchLabels")
    {
        assert_eq!(
            labels.get(k),
            Some(v),
            "PodDisruptionBudget selector {k:?} vs pod labels"
        );
    }
    assert_eq!(
        scalar(&pdb["spec"]["maxUnavailable"]).as_deref(),
        Some("1"),
        "pdb.yaml: maxUnavailable"
    );
}

fn pod_labels(m: &Manifests) -> Yaml {
    m.one("Deployment")["spec"]["template"]["metadata"]["labels"].clone()
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
        for problem in promql_problems(&exprs, &Exposition::parse(&body)) {
            problems.push(format!("{what}: {problem}"));
        }
    }
    assert!(
        problems.is_empty(),
        "the alert rules reference what abacus does not expose (needed: {required:?}):\n{}",
        problems.join("\n")
    );
}
