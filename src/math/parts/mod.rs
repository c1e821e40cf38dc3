//! Analysis of the non-text parts of a message: matrices, equations and
//! datasets sent as structured data, CSV and JSON files, images, other files
//! and URLs.
//!
//! [`analyze_part`] looks at one A2A [`Part`] and returns a [`PartAnalysis`]:
//! a `kind`, one human-readable `summary` line and a structured `data` value.
//! All arithmetic on matrices and equations is exact (rationals of any size;
//! floats are read as their shortest decimal form, so `0.1` is `1/10`).
//! Every input is bounded by [`PartLimits`], so the work is bounded too; for
//! the largest inputs allowed (20×20 matrices, 10 000-row datasets) it may take
//! some milliseconds, so callers may prefer a blocking thread.
//!
//! | part | recognised as | `kind` |
//! |------|---------------|--------|
//! | data `{"matrix": [[1, 2], [3, 4]]}` | shape, sum, transpose, rank, trace, determinant, inverse | `matrix` |
//! | data `{"equation": "2x + 3 = 7"}`, `{"equation": {"type": "quadratic", "coefficients": [1, -5, 6]}}`, `{"equation": {"system": [[1, 1, 3], [1, -1, 1]]}}`, `{"equations": ["x + y = 3", "x - y = 1"]}` | exact solutions | `equation` |
//! | data `{"dataset": [{"a": 1}, …]}` (or a list of numbers) | count, fields, statistics | `dataset` |
//! | any other data | structure: type, keys or length, nesting depth | `data` |
//! | file `text/csv`, `.csv` (`text/tab-separated-values`, `.tsv`) | statistics per column | `csv` |
//! | file `application/json`, `.json` | a list of records → `dataset`; `matrix`/`equation`/`dataset` → as data; else structure | `dataset`, `matrix`, `equation`, `json` |
//! | file `image/*`, image extension or magic bytes | format, size, pixel dimensions | `image` |
//! | any other file | name, media type, size, whether it is UTF-8 text | `file` |
//! | URL | never fetched here; `data.fetch_allowed` says whether the caller may | `url` |
//! | text | length, words, whether it is a question | `text` |
//!
//! ```
//! use abacus::math::parts::{analyze_part, PartLimits};
//! use abacus::protocol::types::Part;
//! use serde_json::json;
//!
//! let part = Part::data(json!({"matrix": [[1, 2], [3, 4]]}));
//! let analysis = analyze_part(&part, &PartLimits::default()).unwrap();
//! assert_eq!(analysis.kind, "matrix");
//! assert_eq!(analysis.data["determinant"], "-2");
//! assert_eq!(analysis.data["inverse"][1][0], "3/2");
//! ```

mod dataset;
mod equation;
mod file;
mod matrix;
mod rational;

use std::io::Write;

use serde_json::{json, Map, Value};

use crate::protocol::types::{Part, PartContent};

/// Bounds on what [`analyze_part`] accepts.
///
/// ```
/// use abacus::math::parts::PartLimits;
/// let limits = PartLimits {
///     fetch_allow_list: vec!["https://data.example.com/".to_string()],
///     ..PartLimits::default()
/// };
/// assert_eq!(limits.max_matrix_dim, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLimits {
    /// Most parts in one message (default 32), checked by [`analyze_parts`].
    pub max_parts: usize,
    /// Largest part in bytes (default 1 MiB): file bytes, text, or data
    /// serialized as JSON.
    pub max_part_bytes: usize,
    /// Most rows and columns of a matrix, and most equations and unknowns of a
    /// linear system (default 20).
    pub max_matrix_dim: usize,
    /// Most records of a dataset or rows of a CSV file (default 10 000).
    pub max_dataset_rows: usize,
    /// URL prefixes the caller may fetch (default empty: never fetch). A URL
    /// matches when it starts with a prefix at a boundary: the prefix ends in
    /// `/`, `?`, `#` or `=`, or the URL continues with one of `/?#` (so
    /// `https://a.example` does not match `https://a.example.evil.com`).
    /// URLs with whitespace, backslashes, `@` in the authority or dot segments
    /// (`/../`) never match.
    pub fetch_allow_list: Vec<String>,
}

impl Default for PartLimits {
    fn default() -> Self {
        PartLimits {
            max_parts: 32,
            max_part_bytes: 1024 * 1024,
            max_matrix_dim: 20,
            max_dataset_rows: 10_000,
            fetch_allow_list: Vec::new(),
        }
    }
}

/// The analysis of one part.
///
/// ```
/// use abacus::math::parts::{analyze_part, PartLimits};
/// use abacus::protocol::types::Part;
///
/// let a = analyze_part(&Part::text("What is 2 + 2?"), &PartLimits::default()).unwrap();
/// assert_eq!(a.kind, "text");
/// assert_eq!(a.data["question"], true);
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PartAnalysis {
    /// What the part was recognised as: `matrix`, `equation`, `dataset`,
    /// `data`, `csv`, `json`, `image`, `file`, `url` or `text`.
    pub kind: &'static str,
    /// One human-readable line.
    pub summary: String,
    /// The structured result, e.g. `{"shape": [2, 2], "determinant": "-2", …}`.
    /// Exact numbers are strings (`"-7/10"`); approximations are JSON numbers
    /// in fields ending in `_decimal`.
    pub data: Value,
}

/// Why a part could not be analysed. The `Display` text is meant for users.
///
/// ```
/// use abacus::math::parts::PartError;
/// let e = PartError::Invalid("row 2 has 3 entries".to_string());
/// assert_eq!(e.kind(), "invalid");
/// assert_eq!(e.to_string(), "invalid input: row 2 has 3 entries");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartError {
    /// A [`PartLimits`] bound (or a fixed size bound) was exceeded.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The part is malformed: the message says what and where.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The part is well formed but asks for something not supported.
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl PartError {
    /// A short snake_case name of the error, suitable as a metrics label.
    ///
    /// ```
    /// use abacus::math::parts::PartError;
    /// assert_eq!(PartError::TooLarge("x".into()).kind(), "too_large");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            PartError::TooLarge(_) => "too_large",
            PartError::Invalid(_) => "invalid",
            PartError::Unsupported(_) => "unsupported",
        }
    }
}

/// Solves an equation or a small system typed as text (`3x + 2 = 11`,
/// `x + y = 3, x - y = 1`) with the same exact solver as `{"equation": …}`
/// data parts.
///
/// ```
/// use abacus::math::parts::{solve_text, PartLimits};
/// let a = solve_text("x^2 - 5x + 6 = 0", &PartLimits::default()).unwrap();
/// assert!(a.summary.contains("x = 2 or x = 3"), "{}", a.summary);
/// ```
pub fn solve_text(text: &str, limits: &PartLimits) -> Result<PartAnalysis, PartError> {
    equation::analyze(&Value::String(text.to_string()), limits)
}

/// Analyses one part (see the [module documentation](self) for what is
/// recognised). Text parts get a short description only: the math agent
/// evaluates the math in text itself.
///
/// ```
/// use abacus::math::parts::{analyze_part, PartLimits};
/// use abacus::protocol::types::Part;
/// use serde_json::json;
///
/// let limits = PartLimits::default();
/// let eq = analyze_part(&Part::data(json!({"equation": "2x + 3 = 7"})), &limits).unwrap();
/// assert_eq!(eq.data["solution"]["x"], "2");
///
/// let url = analyze_part(&Part::url("https://example.com/a.csv"), &limits).unwrap();
/// assert_eq!(url.data["fetch_allowed"], false);
/// ```
pub fn analyze_part(part: &Part, limits: &PartLimits) -> Result<PartAnalysis, PartError> {
    match &part.content {
        PartContent::Text(text) => analyze_text(text, limits),
        PartContent::Data(value) => {
            check_json_size(value, limits)?;
            analyze_data(value, limits)
        }
        PartContent::Raw(bytes) => file::analyze_raw(
            bytes,
            part.filename.as_deref(),
            part.media_type.as_deref(),
            limits,
        ),
        PartContent::Url(url) => analyze_url(url, limits),
    }
}

/// Analyses every part of a message, each independently; fails as a whole
/// only when there are more than [`PartLimits::max_parts`] parts.
///
/// ```
/// use abacus::math::parts::{analyze_parts, PartLimits};
/// use abacus::protocol::types::Part;
///
/// let parts = vec![Part::text("hello"), Part::raw(vec![0, 159, 146, 150])];
/// let results = analyze_parts(&parts, &PartLimits::default()).unwrap();
/// assert_eq!(results[1].as_ref().unwrap().kind, "file");
/// ```
pub fn analyze_parts(
    parts: &[Part],
    limits: &PartLimits,
) -> Result<Vec<Result<PartAnalysis, PartError>>, PartError> {
    if parts.len() > limits.max_parts {
        return Err(PartError::TooLarge(format!(
            "the message has {} parts; the maximum is {}",
            parts.len(),
            limits.max_parts
        )));
    }
    Ok(parts.iter().map(|p| analyze_part(p, limits)).collect())
}

/// Structured data: matrix, equation(s), dataset, or a structure summary.
fn analyze_data(value: &Value, limits: &PartLimits) -> Result<PartAnalysis, PartError> {
    if let Some(analysis) = analyze_math_object(value, limits)? {
        return Ok(analysis);
    }
    Ok(structure(value, "data", "Data"))
}

/// `{"matrix": …}`, `{"equation": …}`, `{"equations": …}` or `{"dataset": …}`.
fn analyze_math_object(
    value: &Value,
    limits: &PartLimits,
) -> Result<Option<PartAnalysis>, PartError> {
    let Value::Object(map) = value else {
        return Ok(None);
    };
    if let Some(m) = map.get("matrix") {
        return matrix::analyze(m, limits).map(Some);
    }
    if let Some(e) = map.get("equation").or_else(|| map.get("equations")) {
        return equation::analyze(e, limits).map(Some);
    }
    if let Some(d) = map.get("dataset") {
        return dataset::analyze_json(d, limits).map(Some);
    }
    Ok(None)
}

/// Fails when `value` serializes to more than `max_part_bytes` bytes; stops
/// serializing as soon as the limit is passed.
fn check_json_size(value: &Value, limits: &PartLimits) -> Result<(), PartError> {
    struct Counter {
        n: usize,
        max: usize,
    }
    impl Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.n += buf.len();
            if self.n > self.max {
                return Err(std::io::Error::other("too large"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter {
        n: 0,
        max: limits.max_part_bytes,
    };
    if serde_json::to_writer(&mut counter, value).is_err() {
        return Err(PartError::TooLarge(format!(
            "the data is larger than the maximum of {} (serialized as JSON)",
            fmt_bytes(limits.max_part_bytes)
        )));
    }
    Ok(())
}

/// The words that make a text a question when it starts with one.
const QUESTION_WORDS: [&str; 10] = [
    "who", "what", "why", "how", "when", "where", "is", "are", "can", "does",
];

fn analyze_text(text: &str, limits: &PartLimits) -> Result<PartAnalysis, PartError> {
    if text.len() > limits.max_part_bytes {
        return Err(PartError::TooLarge(format!(
            "the text is {}; the maximum is {}",
            fmt_bytes(text.len()),
            fmt_bytes(limits.max_part_bytes)
        )));
    }
    let trimmed = text.trim();
    let chars = trimmed.chars().count();
    let words = trimmed.split_whitespace().count();
    let lines = if trimmed.is_empty() {
        0
    } else {
        trimmed.lines().count()
    };
    let question = is_question(trimmed);
    let summary = if trimmed.is_empty() {
        "Empty text".to_string()
    } else {
        format!(
            "Text: {} {}, {} {}{}",
            words,
            plural(words, "word", "words"),
            chars,
            plural(chars, "character", "characters"),
            if question { ", a question" } else { "" }
        )
    };
    Ok(PartAnalysis {
        kind: "text",
        summary,
        data: json!({
            "length": chars,
            "bytes": text.len(),
            "words": words,
            "lines": lines,
            "question": question,
        }),
    })
}

/// Ends with a question mark, or starts with a question word ("What's" counts).
fn is_question(text: &str) -> bool {
    if text.ends_with(['?', '？']) || text.starts_with('¿') {
        return true;
    }
    let first: String = text
        .chars()
        .skip_while(|c| !c.is_alphanumeric())
        .take_while(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    QUESTION_WORDS.contains(&first.as_str())
}

/// Longest URL accepted.
const MAX_URL_LEN: usize = 8192;

fn analyze_url(url: &str, limits: &PartLimits) -> Result<PartAnalysis, PartError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(PartError::Invalid("the URL is empty".to_string()));
    }
    if url.len() > MAX_URL_LEN {
        return Err(PartError::TooLarge(format!(
            "the URL is {} bytes long; the maximum is {MAX_URL_LEN}",
            url.len()
        )));
    }
    let allowed = fetch_allowed(url, &limits.fetch_allow_list);
    let shown = shorten(url, 120);
    let summary = if allowed {
        format!("URL {shown} (on the fetch allow-list: it may be fetched)")
    } else if limits.fetch_allow_list.is_empty() {
        format!(
            "URL {shown} was not fetched: fetching is disabled (no prefixes in the \
             fetch_allow_list setting)"
        )
    } else {
        format!("URL {shown} was not fetched: it does not match the fetch_allow_list setting")
    };
    Ok(PartAnalysis {
        kind: "url",
        summary,
        data: json!({"url": url, "fetch_allowed": allowed}),
    })
}

/// Whether `url` starts with an allowed prefix at a boundary (see
/// [`PartLimits::fetch_allow_list`]).
fn fetch_allowed(url: &str, allow: &[String]) -> bool {
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return false;
    }
    // No credentials ("https://good.example@evil.example/").
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    // No dot segments, plain or percent-encoded.
    let path = url.split(['?', '#']).next().unwrap_or("");
    let lower = path.to_ascii_lowercase().replace("%2e", ".");
    if lower
        .split('/')
        .skip(3)
        .any(|segment| segment == "." || segment == "..")
    {
        return false;
    }
    allow.iter().any(|prefix| {
        let prefix = prefix.trim();
        !prefix.is_empty()
            && url.starts_with(prefix)
            && (prefix.ends_with(['/', '?', '#', '='])
                || url[prefix.len()..].is_empty()
                || url[prefix.len()..].starts_with(['/', '?', '#']))
    })
}

/// A structure summary of any JSON value.
fn structure(value: &Value, kind: &'static str, what: &str) -> PartAnalysis {
    let depth = depth(value);
    let (summary, mut data) = match value {
        Value::Object(map) => {
            let keys: Vec<&String> = map.keys().take(50).collect();
            let listed: Vec<&str> = map.keys().take(8).map(String::as_str).collect();
            let more = if map.len() > listed.len() {
                ", …"
            } else {
                ""
            };
            (
                format!(
                    "{what}: an object with {} {} ({}{more}), nesting depth {depth}",
                    map.len(),
                    plural(map.len(), "key", "keys"),
                    listed.join(", ")
                ),
                json!({"type": "object", "key_count": map.len(), "keys": keys}),
            )
        }
        Value::Array(items) => {
            let mut types = Map::new();
            for item in items {
                let entry = types.entry(type_name(item)).or_insert(json!(0));
                *entry = json!(entry.as_u64().unwrap_or(0) + 1);
            }
            let listed: Vec<String> = types.iter().map(|(t, n)| format!("{n} {t}")).collect();
            (
                format!(
                    "{what}: a list of {} {}{}, nesting depth {depth}",
                    items.len(),
                    plural(items.len(), "item", "items"),
                    if listed.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", listed.join(", "))
                    }
                ),
                json!({"type": "array", "length": items.len(), "item_types": types}),
            )
        }
        Value::String(s) => (
            format!("{what}: a string of {} characters", s.chars().count()),
            json!({"type": "string", "length": s.chars().count()}),
        ),
        other => (
            format!(
                "{what}: {} {}",
                type_name(other),
                shorten(&other.to_string(), 40)
            ),
            json!({"type": type_name(other), "value": other}),
        ),
    };
    if let Value::Object(map) = &mut data {
        map.insert("depth".to_string(), json!(depth));
    }
    PartAnalysis {
        kind,
        summary,
        data,
    }
}

/// The JSON type of a value.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Nesting depth (containers only: `1` for `[1, 2]`, `0` for a scalar),
/// computed without recursion.
fn depth(value: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                max = max.max(d + 1);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                max = max.max(d + 1);
                stack.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    max
}

/// `"33 bytes"`, `"1.5 KiB"`, `"2.0 MiB"`.
pub(crate) fn fmt_bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else if n < 1024 {
        format!("{n} bytes")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

/// The singular or plural form for a count.
pub(crate) fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// At most `max` characters of `s`, with an ellipsis when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// An `f64` for humans: whole numbers without a fraction, otherwise six
/// significant digits (scientific notation for very large or small values).
pub(crate) fn fmt_f64(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let a = x.abs();
    if x.fract() == 0.0 && a < 1e15 {
        return format!("{x:.0}");
    }
    if !(1e-4..1e15).contains(&a) {
        let s = format!("{x:.5e}");
        return match s.split_once('e') {
            Some((m, e)) if m.contains('.') => {
                format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => s,
        };
    }
    let decimals = (5 - a.log10().floor() as i32).clamp(0, 10) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PartLimits {
        PartLimits::default()
    }

    #[test]
    fn text_parts_are_described() {
        let a = analyze_part(&Part::text("  What's 2 + 2 "), &limits()).unwrap();
        assert_eq!(a.kind, "text");
        assert_eq!(a.data["question"], true);
        assert_eq!(a.data["words"], 4);
        assert_eq!(a.data["length"], 12);
        let a = analyze_part(&Part::text("Compute 2 + 2."), &limits()).unwrap();
        assert_eq!(a.data["question"], false);
        assert_eq!(a.summary, "Text: 4 words, 14 characters");
        let a = analyze_part(&Part::text("the sum of 1 and 2?"), &limits()).unwrap();
        assert_eq!(a.data["question"], true);
        let a = analyze_part(&Part::text("¿Cuánto es 2 + 2"), &limits()).unwrap();
        assert_eq!(a.data["question"], true);
        let a = analyze_part(&Part::text("Island area"), &limits()).unwrap();
        assert_eq!(a.data["question"], false, "'is' must be a whole word");
        let a = analyze_part(&Part::text(""), &limits()).unwrap();
        assert_eq!(a.summary, "Empty text");
        let small = PartLimits {
            max_part_bytes: 4,
            ..limits()
        };
        let e = analyze_part(&Part::text("hello"), &small).unwrap_err();
        assert_eq!(e.kind(), "too_large");
    }

    #[test]
    fn urls_are_never_fetched_without_allow_list() {
        let a = analyze_part(&Part::url("https://example.com/data.csv"), &limits()).unwrap();
        assert_eq!(a.kind, "url");
        assert_eq!(a.data["fetch_allowed"], false);
        assert_eq!(a.data["url"], "https://example.com/data.csv");
        assert!(a.summary.contains("not fetched"), "{}", a.summary);
        assert!(a.summary.contains("fetch_allow_list"), "{}", a.summary);
        assert_eq!(
            analyze_part(&Part::url("  "), &limits())
                .unwrap_err()
                .kind(),
            "invalid"
        );
    }

    #[test]
    fn allow_list_matches_at_boundaries_only() {
        let allow = vec![
            "https://data.example.com".to_string(),
            "https://files.example.org/public/".to_string(),
        ];
        let ok = |u: &str| fetch_allowed(u, &allow);
        assert!(ok("https://data.example.com"));
        assert!(ok("https://data.example.com/x.csv"));
        assert!(ok("https://data.example.com?q=1"));
        assert!(ok("https://files.example.org/public/a.json"));
        assert!(!ok("https://data.example.com.evil.net/x"));
        assert!(!ok("https://data.example.com@evil.net/x"));
        assert!(!ok("https://files.example.org/public/../private/a"));
        assert!(!ok("https://files.example.org/public/%2E%2E/private/a"));
        assert!(!ok("https://files.example.org/publicity"));
        assert!(!ok("https://files.example.org/public/a b"));
        assert!(!ok("http://data.example.com/x"));
        let limits = PartLimits {
            fetch_allow_list: allow.clone(),
            ..limits()
        };
        let a = analyze_part(&Part::url("https://data.example.com/x.csv"), &limits).unwrap();
        assert_eq!(a.data["fetch_allowed"], true);
    }

    #[test]
    fn other_data_gets_a_structure_summary() {
        let v = json!({"name": "x", "tags": [1, 2, {"deep": [true]}]});
        let a = analyze_part(&Part::data(v), &limits()).unwrap();
        assert_eq!(a.kind, "data");
        assert_eq!(a.data["type"], "object");
        assert_eq!(a.data["key_count"], 2);
        assert_eq!(a.data["depth"], 4);
        assert!(a.summary.contains("2 keys (name, tags)"), "{}", a.summary);
        let a = analyze_part(&Part::data(json!([1, "a", 2])), &limits()).unwrap();
        assert_eq!(a.data["length"], 3);
        assert_eq!(a.data["item_types"]["number"], 2);
        let a = analyze_part(&Part::data(json!(42)), &limits()).unwrap();
        assert_eq!(a.data["type"], "number");
        assert_eq!(a.data["depth"], 0);
    }

    #[test]
    fn data_size_is_bounded() {
        let small = PartLimits {
            max_part_bytes: 10,
            ..limits()
        };
        let e = analyze_part(&Part::data(json!({"matrix": [[1, 2], [3, 4]]})), &small);
        assert_eq!(e.unwrap_err().kind(), "too_large");
    }

    #[test]
    fn part_count_is_bounded() {
        let parts = vec![Part::text("a"); 33];
        assert_eq!(
            analyze_parts(&parts, &limits()).unwrap_err().kind(),
            "too_large"
        );
        assert_eq!(analyze_parts(&parts[..32], &limits()).unwrap().len(), 32);
    }

    #[test]
    fn floats_print_sensibly() {
        assert_eq!(fmt_f64(2.5), "2.5");
        assert_eq!(fmt_f64(3.0), "3");
        assert_eq!(fmt_f64(-0.0), "0");
        assert_eq!(fmt_f64(1.2909944487358056), "1.29099");
        assert_eq!(fmt_f64(1234.56789), "1234.57");
        assert_eq!(fmt_f64(0.000012345), "1.2345e-5");
        assert_eq!(fmt_f64(1e20), "1e20");
        assert_eq!(fmt_bytes(33), "33 bytes");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
    }
}
