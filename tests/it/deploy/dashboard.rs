//! The Grafana dashboard (`deploy/grafana/abacus.json`) and its
//! provisioning: a valid dashboard (uid, schema version, a `${datasource}`
//! variable every panel and query uses, unique ids, a grid without
//! overlaps, units), whose every query names metrics and labels a running
//! `abacus serve` exposes, used the way their types want (counters in
//! `rate()`, histograms by their `_bucket` and `le`); and docker compose
//! serving it from Grafana next to its Prometheus.

use super::binary::{local, Server};
use super::manifests::{compose_ports, path, scalar, seq, str_of, volume_target, Manifests};
use super::promql::{base_name, promql_problems, scan_promql, Exposition, Query, TARGET_LABELS};
use super::EXEMPT_METRICS;
use crate::common::get;
use crate::push::{send_with_push, Receiver};
use abacus::client::JsonRpcClient as Client;
use futures_util::StreamExt;
use serde_json::{json, Value};
use serde_yaml_ng::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const DASHBOARD: &str = "deploy/grafana/abacus.json";
const DATASOURCES: &str = "deploy/grafana/provisioning/datasources/prometheus.yml";
const PROVIDERS: &str = "deploy/grafana/provisioning/dashboards/abacus.yml";
const PROMETHEUS_CONFIG: &str = "deploy/prometheus/prometheus.yml";
/// The dashboard's uid and title (its URL is /d/abacus).
const UID: &str = "abacus";
/// Grafana 10.4 / 11.
const MIN_SCHEMA_VERSION: u64 = 39;
/// The data source template variable every panel and query names.
const DATASOURCE_VAR: &str = "datasource";
/// Variables Grafana defines itself.
const GRAFANA_VARS: &[&str] = &[
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
];
/// Grafana's grid is 24 columns wide.
const GRID_COLUMNS: u64 = 24;
/// Where Grafana reads provisioning (GF_PATHS_PROVISIONING's default).
const GRAFANA_PROVISIONING: &str = "/etc/grafana/provisioning";
/// Grafana's HTTP port (GF_SERVER_HTTP_PORT's default).
const GRAFANA_PORT: u16 = 3000;
/// Prometheus' listen port, unless its command sets --web.listen-address.
const PROMETHEUS_PORT: u16 = 9090;

fn load_dashboard() -> Value {
    let text = std::fs::read_to_string(path(DASHBOARD))
        .unwrap_or_else(|e| panic!("cannot read {DASHBOARD}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

fn load_yaml(rel: &str) -> Yaml {
    let text =
        std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Every panel, the panels of collapsed rows included.
fn all_panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in array(&d["panels"]) {
        out.push(p);
        out.extend(array(&p["panels"]));
    }
    out
}

fn is_row(p: &Value) -> bool {
    p["type"] == "row"
}

fn panel_name(p: &Value) -> String {
    format!(
        "panel {} {:?}",
        p["id"],
        p["title"].as_str().unwrap_or_default()
    )
}

/// A target's place and its expression.
struct Target<'a> {
    name: String,
    expr: &'a str,
    legend: &'a str,
}

fn targets(d: &Value) -> Vec<Target<'_>> {
    let mut out = Vec::new();
    for p in all_panels(d).into_iter().filter(|p| !is_row(p)) {
        for t in array(&p["targets"]) {
            out.push(Target {
                name: format!(
                    "{} target {}",
                    panel_name(p),
                    t["refId"].as_str().unwrap_or("?")
                ),
                expr: t["expr"].as_str().unwrap_or_default(),
                legend: t["legendFormat"].as_str().unwrap_or_default(),
            });
        }
    }
    out
}

/// The template variables by name.
fn variables(d: &Value) -> BTreeMap<&str, &Value> {
    array(&d["templating"]["list"])
        .iter()
        .filter_map(|v| Some((v["name"].as_str()?, v)))
        .collect()
}

/// A query variable's query: a string, or `{"query": ...}`.
fn variable_query(v: &Value) -> Option<&str> {
    v["query"].as_str().or_else(|| v["query"]["query"].as_str())
}

/// `label_values(selector, label)` as (selector, label); `label_values(label)` as ("", label).
fn label_values(query: &str) -> Option<(&str, &str)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    Some(match inner.rsplit_once(',') {
        Some((selector, label)) => (selector.trim(), label.trim()),
        None => ("", inner.trim()),
    })
}

/// The `label_values` selectors of the query variables: (where, selector, label).
fn variable_selectors(d: &Value) -> Vec<(String, String, String)> {
    variables(d)
        .into_iter()
        .filter(|(_, v)| v["type"] == "query")
        .filter_map(|(name, v)| {
            let (selector, label) = label_values(variable_query(v)?)?;
            Some((
                format!("variable {name}"),
                selector.to_string(),
                label.to_string(),
            ))
        })
        .collect()
}

/// The variables `text` uses: `$name`, `${name}`, `${name:format}`, `[[name]]`.
fn variable_refs(text: &str) -> BTreeSet<String> {
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices('$') {
        let rest = &text[i + 1..];
        let name = word(rest.strip_prefix('{').unwrap_or(rest));
        if !name.is_empty() {
            out.insert(name);
        }
    }
    for (i, _) in text.match_indices("[[") {
        let name = word(&text[i + 2..]);
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// The `{{label}}`s of a legend format.
fn legend_labels(legend: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = legend;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        out.push(rest[start + 2..start + 2 + len].trim().to_string());
        rest = &rest[start + 2 + len + 2..];
    }
    out
}

/// Whether `ds` is `{"type": "prometheus", "uid": "${datasource}"}` (or `$datasource`).
fn uses_datasource_var(ds: &Value) -> bool {
    let uid = ds["uid"].as_str().unwrap_or_default();
    ds["type"] == "prometheus"
        && (uid == format!("${{{DATASOURCE_VAR}}}") || uid == format!("${DATASOURCE_VAR}"))
}

fn uint(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// What is wrong with `d` as a Grafana dashboard of Prometheus queries
/// (empty: nothing); the queries' metrics are [`live_problems`]'.
fn dashboard_problems(d: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |p: String| problems.push(p);
    for key in ["title", "uid"] {
        if d[key] != UID {
            problem(format!("{key} is {}, not {UID:?}", d[key]));
        }
    }
    match uint(&d["schemaVersion"]) {
        Some(v) if v >= MIN_SCHEMA_VERSION => {}
        _ => problem(format!(
            "schemaVersion {} is not an integer >= {MIN_SCHEMA_VERSION}",
            d["schemaVersion"]
        )),
    }

    // Template variables: unique names, the data source, label_values queries.
    let list = array(&d["templating"]["list"]);
    let vars = variables(d);
    if vars.len() != list.len() {
        problem(format!(
            "templating.list: {} variables, {} distinct names",
            list.len(),
            vars.len()
        ));
    }
    match vars.get(DATASOURCE_VAR) {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        Some(v) => problem(format!(
            "variable {DATASOURCE_VAR} is not a Prometheus data source variable: {v}"
        )),
        None => problem(format!(
            "templating.list defines no {DATASOURCE_VAR} variable"
        )),
    }
    let mut used_vars = BTreeSet::new();
    for (name, v) in &vars {
        if v["type"] != "query" {
            continue;
        }
        if !uses_datasource_var(&v["datasource"]) {
            problem(format!(
                "variable {name}: datasource {} is not the ${DATASOURCE_VAR} variable",
                v["datasource"]
            ));
        }
        match variable_query(v) {
            Some(q) if label_values(q).is_some() => {
                used_vars.extend(variable_refs(q));
            }
            q => problem(format!(
                "variable {name}: query {q:?} is not label_values(...)"
            )),
        }
    }

    // Panels: ids, grid, type, data source, targets, unit.
    let top = array(&d["panels"]);
    if top.is_empty() {
        problem("no panels".into());
    }
    let mut ids = BTreeSet::new();
    for p in all_panels(d) {
        let name = panel_name(p);
        match uint(&p["id"]) {
            Some(id) if ids.insert(id) => {}
            Some(id) => problem(format!("{name}: id {id} is used twice")),
            None => problem(format!("{name}: no integer id")),
        }
        let g = &p["gridPos"];
        match [&g["h"], &g["w"], &g["x"], &g["y"]].map(uint) {
            [Some(h), Some(w), Some(x), Some(_)] if h >= 1 && w >= 1 && x + w <= GRID_COLUMNS => {}
            _ => problem(format!(
                "{name}: gridPos {g} is not h, w >= 1, x, y with x + w <= {GRID_COLUMNS}"
            )),
        }
        if p["type"].as_str().is_none_or(str::is_empty) {
            problem(format!("{name}: no type"));
        }
        if p["title"].as_str().is_none_or(str::is_empty) {
            problem(format!("{name}: no title"));
        }
        if is_row(p) {
            if !p["panels"].is_array() {
                problem(format!("{name}: a row without a panels list"));
            }
            continue;
        }
        if !uses_datasource_var(&p["datasource"]) {
            problem(format!(
                "{name}: datasource {} is not the ${DATASOURCE_VAR} variable",
                p["datasource"]
            ));
        }
        if p["fieldConfig"]["defaults"]["unit"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            problem(format!("{name}: no unit (fieldConfig.defaults.unit)"));
        }
        let ts = array(&p["targets"]);
        if ts.is_empty() {
            problem(format!("{name}: no targets"));
        }
        let mut refs = BTreeSet::new();
        for t in ts {
            let r = t["refId"].as_str().unwrap_or_default();
            if r.is_empty() || !refs.insert(r) {
                problem(format!("{name}: refId {r:?} missing or used twice"));
            }
            if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                problem(format!("{name} target {r}: no expr"));
            }
            if !uses_datasource_var(&t["datasource"]) {
                problem(format!(
                    "{name} target {r}: datasource {} is not the ${DATASOURCE_VAR} variable",
                    t["datasource"]
                ));
            }
        }
    }
    // No two panels of the top level share a cell.
    let cells = |p: &Value| {
        let g = &p["gridPos"];
        let [h, w, x, y] = [&g["h"], &g["w"], &g["x"], &g["y"]].map(|v| uint(v).unwrap_or(0));
        (x, y, w, h)
    };
    for (i, a) in top.iter().enumerate() {
        for b in &top[i + 1..] {
            let ((ax, ay, aw, ah), (bx, by, bw, bh)) = (cells(a), cells(b));
            if ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah {
                problem(format!("{} and {} overlap", panel_name(a), panel_name(b)));
            }
        }
    }

    // Queries: defined variables, legends by grouping labels, quantiles of buckets.
    for t in targets(d) {
        used_vars.extend(variable_refs(t.expr));
        let q = scan_promql(t.expr);
        for label in legend_labels(t.legend) {
            if !q.grouping.is_empty() && (!q.grouping.contains(&label) || label == "le") {
                problem(format!(
                    "{}: legend {{{{{label}}}}} is not a label the query keeps (by {:?})",
                    t.name, q.grouping
                ));
            }
        }
        if t.expr.contains("histogram_quantile") {
            if !q.grouping.contains("le") {
                problem(format!(
                    "{}: histogram_quantile without le in its by (...)",
                    t.name
                ));
            }
            for s in &q.selectors {
                if !s.metric.ends_with("_bucket") {
                    problem(format!(
                        "{}: histogram_quantile over {}, not a _bucket series",
                        t.name, s.metric
                    ));
                }
            }
        }
    }
    for v in used_vars {
        if !vars.contains_key(v.as_str()) && !GRAFANA_VARS.contains(&v.as_str()) {
            problem(format!("the queries use ${v}, which no variable defines"));
        }
    }
    problems
}

/// `# TYPE name kind` of an exposition, by name.
fn metric_types(exposition: &str) -> BTreeMap<&str, &str> {
    exposition
        .lines()
        .filter_map(|l| {
            let mut words = l.strip_prefix("# TYPE ")?.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .collect()
}

/// For each occurrence of the selector `metric` in `expr`, the function it
/// is the first argument of (`""` if none).
fn enclosing_functions<'a>(expr: &'a str, metric: &str) -> Vec<&'a str> {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(off) = expr[from..].find(metric) {
        let start = from + off;
        let end = start + metric.len();
        from = end;
        if (start > 0 && ident(bytes[start - 1])) || (end < bytes.len() && ident(bytes[end])) {
            continue;
        }
        let func = expr[..start]
            .trim_end()
            .strip_suffix('(')
            .map(|before| {
                let before = before.trim_end();
                let i = before
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(0, |i| i + 1);
                &before[i..]
            })
            .unwrap_or("");
        out.push(func);
    }
    out
}

/// The queries' metrics (exempt ones excluded).
fn query_metrics(d: &Value) -> BTreeSet<String> {
    let selectors = variable_selectors(d);
    targets(d)
        .iter()
        .map(|t| t.expr)
        .chain(selectors.iter().map(|(_, s, _)| s.as_str()))
        .flat_map(|e| scan_promql(e).selectors)
        .map(|s| s.metric)
        .filter(|m| !EXEMPT_METRICS.contains(&m.as_str()))
        .collect()
}

/// Why the dashboard's queries cannot work against the `exposition` text of
/// `/metrics` (empty: they can): what [`promql_problems`] finds, variables'
/// labels that no series carries, counters and histogram series outside
/// `rate()`/`increase()`, gauges inside them, legends of ungrouped queries
/// naming labels their series lack, metrics not abacus'.
fn live_problems(d: &Value, exposition: &str) -> Vec<String> {
    let parsed = Exposition::parse(exposition);
    let types = metric_types(exposition);
    let targets = targets(d);
    let selectors = variable_selectors(d);
    let mut exprs: Vec<(String, String)> = targets
        .iter()
        .map(|t| (t.name.clone(), t.expr.to_string()))
        .collect();
    exprs.extend(
        selectors
            .iter()
            .filter(|(_, s, _)| !s.is_empty())
            .map(|(w, s, _)| (w.clone(), s.clone())),
    );
    let mut problems = promql_problems(&exprs, &parsed);

    let carried = |q: &Query, label: &str| {
        TARGET_LABELS.contains(&label)
            || q.selectors
                .iter()
                .any(|s| parsed.of(&s.metric).any(|l| l.contains_key(label)))
    };
    for (name, selector, label) in &selectors {
        let q = scan_promql(selector);
        if q.selectors.is_empty() && !TARGET_LABELS.contains(&label.as_str()) {
            problems.push(format!(
                "{name}: label_values({label}) over every series; name a metric"
            ));
        } else if !carried(&q, label) {
            problems.push(format!(
                "{name}: no series of {selector} carries label {label:?}"
            ));
        }
    }
    // The panels' queries (a variable's selector needs no rate()).
    for t in &targets {
        let (name, expr) = (&t.name, t.expr);
        let q = scan_promql(expr);
        for s in &q.selectors {
            let m = s.metric.as_str();
            if EXEMPT_METRICS.contains(&m) {
                continue;
            }
            if !m.starts_with("a2a_") {
                problems.push(format!(
                    "{name}: {m} is neither an abacus (a2a_*) metric nor exempt"
                ));
            }
            let kind = types.get(m).or_else(|| types.get(base_name(m))).copied();
            let funcs = enclosing_functions(expr, m);
            let rated = |f: &str| matches!(f, "rate" | "irate" | "increase");
            match kind {
                Some("counter" | "histogram" | "summary") => {
                    if let Some(f) = funcs.iter().find(|f| !rated(f)) {
                        problems.push(format!(
                            "{name}: {m} is a {} series, used in {f:?} instead of rate()/increase()",
                            kind.unwrap()
                        ));
                    }
                }
                Some("gauge") if funcs.iter().any(|f| rated(f)) => {
                    problems.push(format!("{name}: {m} is a gauge, inside rate()/increase()"));
                }
                _ => {}
            }
        }
    }
    for t in &targets {
        let q = scan_promql(t.expr);
        if !q.grouping.is_empty() {
            continue;
        }
        for label in legend_labels(t.legend) {
            if !carried(&q, &label) {
                problems.push(format!(
                    "{}: legend {{{{{label}}}}}: no series of the query carries it",
                    t.name
                ));
            }
        }
    }
    problems
}

/// A one-panel dashboard around `expr`, right in every way but the query.
fn one_panel(expr: &str, legend: &str) -> Value {
    let ds = json!({"type": "prometheus", "uid": "${datasource}"});
    json!({
        "title": "abacus", "uid": "abacus", "schemaVersion": 39,
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "job", "type": "query", "datasource": ds,
             "query": {"query": "label_values(a2a_x_total, job)", "refId": "job"}},
        ]},
        "panels": [
            {"id": 1, "type": "row", "title": "r", "collapsed": false,
             "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}, "panels": []},
            {"id": 2, "type": "timeseries", "title": "t", "datasource": ds,
             "gridPos": {"h": 8, "w": 12, "x": 0, "y": 1},
             "fieldConfig": {"defaults": {"unit": "reqps"}},
             "targets": [{"refId": "A", "datasource": ds, "expr": expr, "legendFormat": legend}]},
        ],
    })
}

fn assert_finds(problems: &[String], wanted: &[&str]) {
    for w in wanted {
        assert!(
            problems.iter().any(|p| p.contains(w)),
            "no problem mentions {w:?}: {problems:#?}"
        );
    }
}

#[test]
fn the_dashboard_checks_catch_bad_panels_metrics_and_labels() {
    let exposition = "# TYPE a2a_x_total counter\n\
        a2a_x_total{binding=\"rest\",status=\"error\"} 1\n\
        # TYPE a2a_d_seconds histogram\n\
        a2a_d_seconds_bucket{binding=\"rest\",le=\"+Inf\"} 1\n\
        a2a_d_seconds_sum{binding=\"rest\"} 1\n\
        a2a_d_seconds_count{binding=\"rest\"} 1\n\
        # TYPE a2a_g gauge\n\
        a2a_g{breaker=\"core\"} 0\n";
    let good = [
        (
            r#"sum by (binding, status) (rate(a2a_x_total{status="error", job=~"$job", instance=~"$instance"}[$__rate_interval]))"#,
            "{{binding}} {{status}}",
        ),
        (
            r#"histogram_quantile(0.99, sum by (le, binding) (rate(a2a_d_seconds_bucket{job=~"$job"}[5m])))"#,
            "p99 {{binding}}",
        ),
        (r#"a2a_g{breaker=~"core"}"#, "{{breaker}} {{instance}}"),
        ("sum(up)", "up"),
    ];
    for (expr, legend) in good {
        let mut d = one_panel(expr, legend);
        // $instance: a second variable.
        d["templating"]["list"].as_array_mut().unwrap().push(json!({
            "name": "instance", "type": "query",
            "datasource": {"type": "prometheus", "uid": "$datasource"},
            "query": "label_values(a2a_x_total{job=~\"$job\"}, instance)"}));
        assert_eq!(dashboard_problems(&d), Vec::<String>::new(), "{expr}");
        assert_eq!(
            live_problems(&d, exposition),
            Vec::<String>::new(),
            "{expr}"
        );
    }

    // Metrics, labels and values the server does not export; types misused.
    let live = |expr: &str, legend: &str| live_problems(&one_panel(expr, legend), exposition);
    assert_finds(
        &live("sum(rate(a2a_made_up_total[5m]))", ""),
        &["a2a_made_up_total (base name a2a_made_up_total) is not exposed"],
    );
    assert_finds(
        &live("sum by (method) (rate(a2a_x_total[5m]))", ""),
        &[r#"groups by label "method""#],
    );
    assert_finds(
        &live(r#"sum(rate(a2a_x_total{status="nope"}[5m]))"#, ""),
        &[r#"no series a2a_x_total{status="nope"}"#],
    );
    assert_finds(
        &live(r#"sum(rate(a2a_x_total{status=~"error|nope"}[5m]))"#, ""),
        &[r#"no series a2a_x_total{status=~"error|nope"}"#],
    );
    assert_finds(
        &live(r#"sum(rate(a2a_x_total{methd=~".+"}[5m]))"#, ""),
        &[r#"a2a_x_total{methd=~".+"}"#],
    );
    assert_finds(
        &live("sum(a2a_x_total)", ""),
        &["a2a_x_total is a counter series, used in \"sum\""],
    );
    assert_finds(
        &live("sum by (le) (a2a_d_seconds_bucket)", ""),
        &["a2a_d_seconds_bucket is a histogram series"],
    );
    assert_finds(&live("rate(a2a_g[5m])", ""), &["a2a_g is a gauge"]);
    assert_finds(&live("a2a_g", "{{service}}"), &["legend {{service}}"]);
    assert_finds(
        &live("sum(rate(node_cpu_total[5m]))", ""),
        &["node_cpu_total is neither"],
    );
    let mut d = one_panel("sum(rate(a2a_x_total[5m]))", "");
    d["templating"]["list"][1]["query"]["query"] = json!("label_values(a2a_x_total, methd)");
    assert_finds(
        &live_problems(&d, exposition),
        &[r#"variable job: no series of a2a_x_total carries label "methd""#],
    );

    // Structure.
    let structural = |edit: &dyn Fn(&mut Value), wanted: &[&str]| {
        let mut d = one_panel("sum(rate(a2a_x_total[5m]))", "");
        edit(&mut d);
        assert_finds(&dashboard_problems(&d), wanted);
    };
    structural(&|d| d["uid"] = json!("other"), &["uid is \"other\""]);
    structural(&|d| d["schemaVersion"] = json!(27), &["schemaVersion 27"]);
    structural(
        &|d| {
            d["templating"]["list"].as_array_mut().unwrap().remove(0);
        },
        &["defines no datasource variable"],
    );
    structural(
        &|d| d["panels"][1]["id"] = json!(1),
        &["id 1 is used twice"],
    );
    structural(
        &|d| d["panels"][1]["gridPos"] = json!({"h": 8, "w": 12, "x": 18, "y": 1}),
        &["x + w <= 24"],
    );
    structural(
        &|d| d["panels"][1]["gridPos"]["y"] = json!(0),
        &["panel 1 \"r\" and panel 2 \"t\" overlap"],
    );
    structural(
        &|d| d["panels"][1]["datasource"] = json!({"type": "prometheus", "uid": "prometheus"}),
        &["panel 2 \"t\": datasource"],
    );
    structural(
        &|d| d["panels"][1]["targets"] = json!([]),
        &["panel 2 \"t\": no targets"],
    );
    structural(
        &|d| d["panels"][1]["targets"][0]["expr"] = json!(""),
        &["target A: no expr"],
    );
    structural(&|d| d["panels"][1]["fieldConfig"] = json!({}), &["no unit"]);
    structural(
        &|d| {
            d["panels"][1]["targets"][0]["expr"] =
                json!("sum(rate(a2a_x_total{job=~\"$nope\"}[5m]))")
        },
        &["$nope, which no variable defines"],
    );
    structural(
        &|d| {
            d["panels"][1]["targets"][0]["expr"] =
                json!("sum by (binding) (rate(a2a_x_total[5m]))");
            d["panels"][1]["targets"][0]["legendFormat"] = json!("{{status}}");
        },
        &["legend {{status}} is not a label the query keeps"],
    );
    structural(
        &|d| {
            d["panels"][1]["targets"][0]["expr"] =
                json!("histogram_quantile(0.9, sum(rate(a2a_d_seconds_sum[5m])))")
        },
        &["without le", "over a2a_d_seconds_sum, not a _bucket"],
    );
}

#[test]
fn the_dashboard_is_a_valid_grafana_dashboard() {
    let d = load_dashboard();
    let problems = dashboard_problems(&d);
    assert!(problems.is_empty(), "{DASHBOARD}:\n{}", problems.join("\n"));
    assert!(
        targets(&d).len() >= 10,
        "{DASHBOARD}: only {} queries",
        targets(&d).len()
    );
}

/// The host path and container path of each bind mount of a compose service.
fn bind_mounts(svc: &Yaml) -> Vec<(String, String)> {
    seq(svc, "volumes")
        .iter()
        .filter_map(|v| {
            let source = match v {
                Yaml::Mapping(_) => v["source"].as_str()?,
                _ => v.as_str()?.split(':').next()?,
            };
            let source = source.strip_prefix("./")?;
            Some((source.to_string(), volume_target(v)?.to_string()))
        })
        .collect()
}

/// Where `file` (relative to the repository) is inside a container with `mounts`.
fn container_path(mounts: &[(String, String)], file: &str) -> Option<String> {
    mounts.iter().find_map(|(source, target)| {
        if file == source {
            Some(target.clone())
        } else {
            let rest = file.strip_prefix(source.as_str())?.strip_prefix('/')?;
            Some(format!("{}/{rest}", target.trim_end_matches('/')))
        }
    })
}

fn image_repository(svc: &Yaml) -> (&str, &str) {
    let image = svc.get("image").and_then(Yaml::as_str).unwrap_or("");
    image.rsplit_once(':').unwrap_or((image, ""))
}

fn env_of(svc: &Yaml, name: &str) -> Option<String> {
    match &svc["environment"] {
        Yaml::Mapping(m) => m.get(name).and_then(scalar),
        Yaml::Sequence(items) => items.iter().filter_map(Yaml::as_str).find_map(|s| {
            let (k, v) = s.split_once('=')?;
            (k == name).then(|| v.to_string())
        }),
        _ => None,
    }
}

#[test]
fn compose_provisions_the_dashboard_and_its_prometheus_in_grafana() {
    let m = Manifests::load();
    let services = m.compose_services();

    // The Prometheus that scrapes the replicas.
    let prometheus: Vec<(&String, &&Yaml)> = services
        .iter()
        .filter(|(_, svc)| container_path(&bind_mounts(svc), PROMETHEUS_CONFIG).is_some())
        .collect();
    assert_eq!(
        prometheus.len(),
        1,
        "docker-compose.yml: services mounting {PROMETHEUS_CONFIG}"
    );
    let (prom_name, prom) = prometheus[0];
    assert!(
        image_repository(prom).0.ends_with("prom/prometheus"),
        "{prom_name}: image {:?}",
        prom["image"]
    );
    let command = seq(prom, "command")
        .iter()
        .filter_map(scalar)
        .collect::<Vec<_>>()
        .join(" ")
        + prom["command"].as_str().unwrap_or("");
    assert!(
        !command.contains("web.listen-address"),
        "{prom_name}: a listen address of its own; the data source expects {PROMETHEUS_PORT}"
    );

    // Grafana: pinned, mounts the provisioning and the dashboard.
    let grafana: Vec<(&String, &&Yaml)> = services
        .iter()
        .filter(|(_, svc)| image_repository(svc).0.starts_with("grafana/grafana"))
        .collect();
    assert_eq!(grafana.len(), 1, "docker-compose.yml: Grafana services");
    let (name, svc) = grafana[0];
    let (repository, tag) = image_repository(svc);
    assert!(
        !tag.is_empty() && tag != "latest" && tag.starts_with(|c: char| c.is_ascii_digit()),
        "{name}: image {repository} is not pinned to a version ({tag:?})"
    );
    let mounts = bind_mounts(svc);
    let provisioning =
        env_of(svc, "GF_PATHS_PROVISIONING").unwrap_or_else(|| GRAFANA_PROVISIONING.to_string());
    for (file, dir) in [(DATASOURCES, "datasources"), (PROVIDERS, "dashboards")] {
        let at = container_path(&mounts, file)
            .unwrap_or_else(|| panic!("{name}: does not mount {file} ({mounts:?})"));
        let file_name = file.rsplit('/').next().unwrap();
        assert_eq!(
            at,
            format!("{provisioning}/{dir}/{file_name}"),
            "{name}: where {file} is mounted"
        );
    }
    let dashboard_at = container_path(&mounts, DASHBOARD)
        .unwrap_or_else(|| panic!("{name}: does not mount {DASHBOARD} ({mounts:?})"));

    // The dashboard provider reads the directory the dashboard is mounted in.
    let providers = load_yaml(PROVIDERS);
    let paths: Vec<&str> = seq(&providers, "providers")
        .iter()
        .filter(|p| p["type"].as_str().unwrap_or("file") == "file")
        .map(|p| str_of(&p["options"]["path"], "provider options.path"))
        .collect();
    assert!(
        paths.iter().any(|p| dashboard_at
            .strip_prefix(p.trim_end_matches('/'))
            .is_some_and(|rest| rest.starts_with('/'))),
        "{PROVIDERS}: no file provider reads {dashboard_at} ({paths:?})"
    );
    if let Some(home) = env_of(svc, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH") {
        assert_eq!(home, dashboard_at, "{name}: the home dashboard");
    }

    // The data source is that Prometheus, the default one (${datasource} picks it).
    let datasources = load_yaml(DATASOURCES);
    let proms: Vec<&Yaml> = seq(&datasources, "datasources")
        .iter()
        .filter(|ds| ds["type"].as_str() == Some("prometheus"))
        .collect();
    assert_eq!(proms.len(), 1, "{DATASOURCES}: Prometheus data sources");
    let ds = proms[0];
    assert_eq!(
        ds["isDefault"].as_bool(),
        Some(true),
        "{DATASOURCES}: the default data source"
    );
    let url = str_of(&ds["url"], "data source url");
    assert_eq!(
        url,
        format!("http://{prom_name}:{PROMETHEUS_PORT}"),
        "{DATASOURCES}: url"
    );
    let depends: BTreeSet<String> = match &svc["depends_on"] {
        Yaml::Mapping(map) => map.keys().filter_map(scalar).collect(),
        other => other
            .as_sequence()
            .map(|s| s.iter().filter_map(scalar).collect())
            .unwrap_or_default(),
    };
    assert!(
        depends.contains(prom_name),
        "{name}: does not depend on {prom_name}"
    );

    // Published on loopback only; anonymous visitors may only view.
    let published = compose_ports(svc, name);
    assert!(
        published
            .iter()
            .any(|(_, container)| *container == GRAFANA_PORT),
        "{name}: does not publish {GRAFANA_PORT} ({published:?})"
    );
    for p in seq(svc, "ports") {
        let loopback = match p {
            Yaml::Mapping(_) => p["host_ip"].as_str() == Some("127.0.0.1"),
            _ => scalar(p).is_some_and(|s| s.starts_with("127.0.0.1:")),
        };
        assert!(loopback, "{name}: port {p:?} is not on 127.0.0.1");
    }
    if env_of(svc, "GF_AUTH_ANONYMOUS_ENABLED").as_deref() == Some("true") {
        assert_eq!(
            env_of(svc, "GF_AUTH_ANONYMOUS_ORG_ROLE").as_deref(),
            Some("Viewer"),
            "{name}: the anonymous role"
        );
    }
}

/// A port bound on 127.0.0.1 that nobody listens on: connections are refused.
fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_names_metrics_and_labels_the_real_binary_exports() {
    let d = load_dashboard();
    let needed = query_metrics(&d);
    assert!(!needed.is_empty(), "{DASHBOARD}: no metric");

    // Everything the dashboard shows, on: push (to a receiver here), the
    // rate limit, the Redis tier and an external service (both refusing
    // connections: errors, a retry, a breaker that opens).
    let receiver = Receiver::ok().await;
    let (_redis, redis_port) = refusing_port();
    let (_mathjs, mathjs_port) = refusing_port();
    let redis = format!("redis://127.0.0.1:{redis_port}/0");
    let mathjs = format!("http://127.0.0.1:{mathjs_port}/v4/");
    let args: Vec<String> = [
        "--push-allow",
        "127.0.0.1/32",
        "--push-allow-http",
        "--rate-limit",
        "1000/s",
        "--redis-url",
        redis.as_str(),
        "--mathjs-url",
        mathjs.as_str(),
        "--external-breaker-failures",
        "1",
    ]
    .map(String::from)
    .to_vec();
    let server = Server::start_with(&args).await;
    let client = Client::new(&server.url());
    let message = |text: &str| json!({"message": {"messageId": uuid::Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": text}]}});

    // A success and a cache hit, a failed computation, an error, a stream,
    // a task with a webhook, a question for the external service.
    for _ in 0..2 {
        let r = client.call("SendMessage", message("2 + 2")).await.unwrap();
        assert_eq!(r["result"]["message"]["parts"][0]["text"], "4", "{r}");
    }
    let r = client.call("SendMessage", message("1/0")).await.unwrap();
    assert!(r.get("result").is_some(), "{r}");
    let r = client
        .call("GetTask", json!({"id": "no-such-task"}))
        .await
        .unwrap();
    assert!(r.get("error").is_some(), "{r}");
    let events: Vec<_> = client
        .stream("SendStreamingMessage", message("factor 91"))
        .await
        .unwrap()
        .collect()
        .await;
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    let r = client
        .call(
            "SendMessage",
            send_with_push("factorial 50", &receiver.url(), None),
        )
        .await
        .unwrap();
    assert!(r.get("result").is_some(), "{r}");
    let delivered = receiver.wait_delivered(1, Duration::from_secs(20)).await;
    assert!(!delivered.is_empty(), "no push notification delivered");
    // Questions only the external services answer, until one goes there
    // (the local engine learns more over time).
    for question in [
        "eigenvalues of [[2, 1], [1, 2]]",
        "fourier series of x on [-pi, pi]",
        "solve the differential equation y'' + y = 0",
        "limit of sin(x)/x as x approaches 0",
    ] {
        let r = client.call("SendMessage", message(question)).await.unwrap();
        assert!(r.get("result").is_some(), "{r}");
        let (_, body) = get(&local(server.metrics_port, "/metrics")).await.unwrap();
        if Exposition::parse(&body).has("a2a_external_requests_total") {
            break;
        }
    }

    // Until every metric the dashboard queries has a series (deliveries
    // are settled after the receiver answers).
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = get(&local(server.metrics_port, "/metrics")).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let exposition = Exposition::parse(&body);
        let missing: Vec<&String> = needed.iter().filter(|m| !exposition.has(m)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let problems = live_problems(&d, &body);
    let labels: BTreeSet<String> = targets(&d)
        .iter()
        .map(|t| scan_promql(t.expr))
        .flat_map(|q| {
            q.grouping.into_iter().chain(
                q.selectors
                    .into_iter()
                    .flat_map(|s| s.matchers.into_iter().map(|m| m.label)),
            )
        })
        .collect();
    eprintln!(
        "{DASHBOARD}: {} queries, {} metrics {needed:?}, {} labels {labels:?}",
        targets(&d).len(),
        needed.len(),
        labels.len()
    );
    assert!(
        problems.is_empty(),
        "{DASHBOARD} queries what abacus does not export:\n{}",
        problems.join("\n")
    );
}
