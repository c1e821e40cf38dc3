//! The checks: manifests, alert rules and the binary against each other.

use super::binary::{local, Help, Server};
use super::manifests::{healthcheck_target, path, resolve_port, scalar, seq, str_of, Manifests};
use super::promql::{
    a2a_identifiers, alert_metrics, alert_problems, base_name, scan_promql, Exposition, Matcher,
};
use super::{CONTAINER, EXEMPT_ENV, EXEMPT_METRICS, METRICS_PORT};
use crate::common::get;
use abacus::client::Client;
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
