//! A PromQL scanner (selectors, matchers, grouping labels) and the
//! Prometheus text exposition, enough to check the alert rules against
//! what abacus exposes.

use super::EXEMPT_METRICS;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Matcher {
    pub(super) label: String,
    pub(super) op: String,
    pub(super) value: String,
}

/// A vector selector: `metric{label op "value", ...}`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Selector {
    pub(super) metric: String,
    pub(super) matchers: Vec<Matcher>,
}

/// The selectors and the `by`/`without` labels of a PromQL expression.
#[derive(Debug, Default)]
pub(super) struct Query {
    pub(super) selectors: Vec<Selector>,
    pub(super) grouping: BTreeSet<String>,
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

pub(super) fn scan_promql(expr: &str) -> Query {
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
pub(super) fn base_name(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// The series of a Prometheus text exposition.
pub(super) struct Exposition {
    pub(super) series: Vec<(String, BTreeMap<String, String>)>,
}

impl Exposition {
    pub(super) fn parse(text: &str) -> Self {
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

    pub(super) fn of<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a BTreeMap<String, String>> {
        self.series
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, l)| l)
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.of(name).next().is_some()
    }
}

/// Labels Prometheus gives every series it scrapes (the target's): in
/// queries, never in an exposition.
pub(super) const TARGET_LABELS: &[&str] = &["job", "instance"];

/// The values a regex matcher names, when it is an alternation of plain
/// words (`A|B|C`); None for any other regex (or a template variable).
fn literal_alternatives(regex: &str) -> Option<Vec<&str>> {
    let plain = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let words: Vec<&str> = regex.split('|').collect();
    words.iter().all(|w| plain(w)).then_some(words)
}

/// Why the PromQL expressions (alert rules, dashboard queries: `(where,
/// expr)`) cannot work against `exposition` (empty: they can). Every metric
/// must be exposed, every matcher's label carried by one of its series (and
/// its value, for `=` and a regex of plain alternatives), every grouping
/// label by a series of the expression's metrics; target labels are
/// Prometheus', and metrics in `EXEMPT_METRICS` its own.
pub(super) fn promql_problems(exprs: &[(String, String)], exposition: &Exposition) -> Vec<String> {
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
                if TARGET_LABELS.contains(&m.label.as_str()) {
                    continue;
                }
                let has_value = |v: &str| {
                    exposition
                        .of(&s.metric)
                        .any(|l| l.get(&m.label).is_some_and(|x| x == v))
                };
                let ok = match (m.op.as_str(), literal_alternatives(&m.value)) {
                    ("=", _) => has_value(&m.value),
                    ("=~", Some(values)) => values.iter().all(|v| has_value(v)),
                    // Other regex and negative matchers: the label must at least exist.
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
        for label in q
            .grouping
            .iter()
            .filter(|l| !TARGET_LABELS.contains(&l.as_str()))
        {
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
pub(super) fn alert_metrics(exprs: &[(String, String)]) -> BTreeSet<String> {
    exprs
        .iter()
        .flat_map(|(_, e)| scan_promql(e).selectors)
        .map(|s| s.metric)
        .filter(|m| !EXEMPT_METRICS.contains(&m.as_str()))
        .collect()
}

/// Identifiers of the form `a2a_[a-z0-9_]+` anywhere in `expr`.
pub(super) fn a2a_identifiers(expr: &str) -> BTreeSet<String> {
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
