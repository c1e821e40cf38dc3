//! Datasets: JSON records or CSV rows → record count, fields and statistics
//! per field (numeric: count, mean, median, sample standard deviation, min,
//! max, sum; other fields: distinct values and the most frequent one).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::rational::shown;
use super::{fmt_f64, plural, shorten, PartAnalysis, PartError, PartLimits};

/// Most fields (columns) of one dataset.
pub(super) const MAX_FIELDS: usize = 500;
/// Field descriptions shown in the summary line.
const SUMMARY_FIELDS: usize = 4;

/// One value of a field.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    /// `null` or an empty string: counted as missing.
    Empty,
    Num(f64),
    Text(String),
    Bool(bool),
    /// A list or object inside a record, as compact JSON.
    Nested(String),
}

/// A dataset by column; each column holds only the values present.
#[derive(Debug, Default)]
pub(super) struct Table {
    rows: usize,
    names: Vec<String>,
    index: HashMap<String, usize>,
    columns: Vec<Vec<Cell>>,
}

impl Table {
    fn column(&mut self, name: &str) -> Result<usize, PartError> {
        if let Some(&i) = self.index.get(name) {
            return Ok(i);
        }
        if self.names.len() == MAX_FIELDS {
            return Err(PartError::TooLarge(format!(
                "the dataset has more than {MAX_FIELDS} fields"
            )));
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() - 1);
        self.columns.push(Vec::new());
        Ok(self.names.len() - 1)
    }

    fn push(&mut self, name: &str, cell: Cell) -> Result<(), PartError> {
        let i = self.column(name)?;
        self.columns[i].push(cell);
        Ok(())
    }
}

/// A number in a string: must contain a digit and be finite (`"NaN"`,
/// `"inf"` are text).
fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if !s.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn cell(v: &Value) -> Cell {
    match v {
        Value::Null => Cell::Empty,
        Value::Bool(b) => Cell::Bool(*b),
        Value::Number(n) => match n.as_f64().or_else(|| parse_number(&n.to_string())) {
            Some(f) if f.is_finite() => Cell::Num(f),
            _ => Cell::Text(n.to_string()),
        },
        Value::String(s) if s.trim().is_empty() => Cell::Empty,
        Value::String(s) => Cell::Text(s.clone()),
        other => Cell::Nested(other.to_string()),
    }
}

fn check_rows(n: usize, limits: &PartLimits, what: &str) -> Result<(), PartError> {
    if n > limits.max_dataset_rows {
        return Err(PartError::TooLarge(format!(
            "the {what} has {n} rows; the maximum is {}",
            limits.max_dataset_rows
        )));
    }
    Ok(())
}

/// Reads a list of records: objects (fields are the union of their keys),
/// lists (fields `column_1`, `column_2`, …) or plain values (field `value`).
pub(super) fn from_records(items: &[Value], limits: &PartLimits) -> Result<Table, PartError> {
    check_rows(items.len(), limits, "dataset")?;
    let mut table = Table {
        rows: items.len(),
        ..Table::default()
    };
    let shape = |v: &Value| match v {
        Value::Object(_) => "an object",
        Value::Array(_) => "a list",
        _ => "a plain value",
    };
    let Some(first) = items.first() else {
        return Ok(table);
    };
    for (i, item) in items.iter().enumerate() {
        if shape(item) != shape(first) {
            return Err(PartError::Invalid(format!(
                "dataset row {} is {} but row 1 is {}: rows must all be records (objects), \
                 all lists, or all plain values",
                i + 1,
                shape(item),
                shape(first)
            )));
        }
        match item {
            Value::Object(map) => {
                for (k, v) in map {
                    table.push(k, cell(v))?;
                }
            }
            Value::Array(values) => {
                for (j, v) in values.iter().enumerate() {
                    table.push(&format!("column_{}", j + 1), cell(v))?;
                }
            }
            v => table.push("value", cell(v))?,
        }
    }
    Ok(table)
}

/// Reads CSV bytes with a header row.
pub(super) fn from_csv(
    bytes: &[u8],
    delimiter: u8,
    limits: &PartLimits,
) -> Result<Table, PartError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader.headers().map_err(csv_error)?.clone();
    if headers.iter().all(str::is_empty) {
        return Err(PartError::Invalid(
            "the CSV file is empty: the first line must be a header row".to_string(),
        ));
    }
    let mut table = Table::default();
    let mut names = Vec::with_capacity(headers.len());
    for (j, h) in headers.iter().enumerate() {
        let base = if h.is_empty() {
            format!("column_{}", j + 1)
        } else {
            h.to_string()
        };
        let mut name = base.clone();
        let mut k = 2;
        while table.index.contains_key(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        table.column(&name)?;
        names.push(name);
    }
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        table.rows += 1;
        check_rows(table.rows, limits, "CSV file")?;
        if record.len() > names.len() {
            let line = record.position().map_or(0, |p| p.line());
            return Err(PartError::Invalid(format!(
                "CSV line {line} has {} fields but the header has {}",
                record.len(),
                names.len()
            )));
        }
        for (j, field) in record.iter().enumerate() {
            let c = if field.is_empty() {
                Cell::Empty
            } else {
                match parse_number(field) {
                    Some(f) => Cell::Num(f),
                    None => Cell::Text(field.to_string()),
                }
            };
            table.columns[j].push(c);
        }
    }
    Ok(table)
}

fn csv_error(e: csv::Error) -> PartError {
    let line = e.position().map(|p| p.line());
    let at = line.map_or(String::new(), |l| format!(" (line {l})"));
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            PartError::Invalid(format!("the CSV file is not valid UTF-8 text{at}"))
        }
        _ => PartError::Invalid(format!("could not read the CSV file{at}: {e}")),
    }
}

/// Analyses the value of `{"dataset": …}`.
pub(super) fn analyze_json(value: &Value, limits: &PartLimits) -> Result<PartAnalysis, PartError> {
    let Value::Array(items) = value else {
        return Err(PartError::Invalid(format!(
            "a dataset must be a list of records like [{{\"x\": 1}}, {{\"x\": 2}}], found {}",
            shown(value)
        )));
    };
    let table = from_records(items, limits)?;
    Ok(describe(&table, "dataset", "Dataset"))
}

/// Summary statistics of a numeric field.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Stats {
    pub(super) count: usize,
    pub(super) sum: f64,
    pub(super) mean: f64,
    pub(super) median: f64,
    /// Sample standard deviation (n − 1); `None` for fewer than 2 values.
    pub(super) stddev: Option<f64>,
    pub(super) min: f64,
    pub(super) max: f64,
}

/// Statistics of a non-empty list of finite numbers (`None` when empty).
pub(super) fn stats(mut xs: Vec<f64>) -> Option<Stats> {
    let n = xs.len();
    if n == 0 {
        return None;
    }
    // Neumaier-compensated sum.
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    for &x in &xs {
        let t = sum + x;
        comp += if sum.abs() >= x.abs() {
            (sum - t) + x
        } else {
            (x - t) + sum
        };
        sum = t;
    }
    let sum = sum + comp;
    let mean = sum / n as f64;
    // Two passes for an accurate variance.
    let stddev = (n > 1).then(|| {
        let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
        (ss / (n - 1) as f64).sqrt()
    });
    xs.sort_by(f64::total_cmp);
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    Some(Stats {
        count: n,
        sum,
        mean,
        median,
        stddev,
        min: xs[0],
        max: xs[n - 1],
    })
}

fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// The analysis of a table: `kind` and the summary's opening `label`.
pub(super) fn describe(table: &Table, kind: &'static str, label: &str) -> PartAnalysis {
    let mut numeric = Map::new();
    let mut other = Map::new();
    let mut lines = Vec::new();
    for (name, values) in table.names.iter().zip(&table.columns) {
        let present: Vec<&Cell> = values.iter().filter(|c| **c != Cell::Empty).collect();
        let missing = table.rows.saturating_sub(present.len());
        let nums: Vec<f64> = present
            .iter()
            .filter_map(|c| match c {
                Cell::Num(f) => Some(*f),
                Cell::Text(s) => parse_number(s),
                _ => None,
            })
            .collect();
        if !present.is_empty() && nums.len() == present.len() {
            if let Some(s) = stats(nums) {
                let sd = s.stddev.map_or(Value::Null, num);
                numeric.insert(
                    name.clone(),
                    json!({
                        "count": s.count,
                        "missing": missing,
                        "mean": num(s.mean),
                        "median": num(s.median),
                        "stddev": sd,
                        "min": num(s.min),
                        "max": num(s.max),
                        "sum": num(s.sum),
                    }),
                );
                lines.push(format!(
                    "{}: mean {}, median {}, sd {}, min {}, max {}",
                    shorten(name, 30),
                    fmt_f64(s.mean),
                    fmt_f64(s.median),
                    s.stddev.map_or("n/a".to_string(), fmt_f64),
                    fmt_f64(s.min),
                    fmt_f64(s.max)
                ));
                continue;
            }
        }
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let (mut bools, mut texts, mut numbers, mut nested) = (0, 0, 0, 0);
        for c in &present {
            let key = match c {
                Cell::Num(f) => {
                    numbers += 1;
                    fmt_f64(*f)
                }
                Cell::Text(s) => {
                    if parse_number(s).is_some() {
                        numbers += 1;
                    } else {
                        texts += 1;
                    }
                    s.clone()
                }
                Cell::Bool(b) => {
                    bools += 1;
                    b.to_string()
                }
                Cell::Nested(s) => {
                    nested += 1;
                    s.clone()
                }
                Cell::Empty => continue,
            };
            let entry = counts.entry(key.clone()).or_insert(0);
            if *entry == 0 {
                order.push(key);
            }
            *entry += 1;
        }
        // The most frequent value; ties go to the first seen.
        let mut top: Option<(&String, usize)> = None;
        for k in &order {
            let n = counts.get(k).copied().unwrap_or(0);
            if top.is_none_or(|(_, best)| n > best) {
                top = Some((k, n));
            }
        }
        let kinds = [bools, texts, numbers, nested]
            .iter()
            .filter(|&&n| n > 0)
            .count();
        let ty = match (kinds, bools > 0, nested > 0) {
            (0, _, _) => "empty",
            (1, true, _) => "boolean",
            (1, _, true) => "nested",
            (1, _, _) => "text",
            _ => "mixed",
        };
        other.insert(
            name.clone(),
            json!({
                "type": ty,
                "count": present.len(),
                "missing": missing,
                "distinct": counts.len(),
                "top": top.map(|(k, _)| shorten(k, 100)),
                "top_count": top.map(|(_, n)| n),
            }),
        );
        lines.push(format!(
            "{}: {} distinct {}",
            shorten(name, 30),
            counts.len(),
            plural(counts.len(), "value", "values")
        ));
    }
    let fields_shown: Vec<String> = table.names.iter().take(8).map(|n| shorten(n, 30)).collect();
    let more = if table.names.len() > fields_shown.len() {
        ", …"
    } else {
        ""
    };
    let mut summary = if table.rows == 0 {
        format!("{label}: empty (no records)")
    } else {
        format!(
            "{label}: {} {}, {} {} ({}{more})",
            table.rows,
            plural(table.rows, "record", "records"),
            table.names.len(),
            plural(table.names.len(), "field", "fields"),
            fields_shown.join(", ")
        )
    };
    if table.rows > 0 && !lines.is_empty() {
        let shown: Vec<&str> = lines
            .iter()
            .take(SUMMARY_FIELDS)
            .map(String::as_str)
            .collect();
        summary.push_str("; ");
        summary.push_str(&shown.join("; "));
        if lines.len() > SUMMARY_FIELDS {
            summary.push_str("; …");
        }
    }
    PartAnalysis {
        kind,
        summary,
        data: json!({
            "count": table.rows,
            "fields": table.names,
            "numeric": numeric,
            "categorical": other,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(v: &Value, want: f64) {
        let got = v.as_f64().unwrap_or(f64::NAN);
        assert!((got - want).abs() < 1e-9, "{got} != {want}");
    }

    #[test]
    fn stats_match_hand_computed_values() {
        // Odd count: 2, 4, 4, 5, 9 → mean 4.8, median 4,
        // sample variance ((2.8² + 0.8² + 0.8² + 0.2² + 4.2²) / 4) = 26.8 / 4 = 6.7.
        let s = stats(vec![9.0, 2.0, 4.0, 5.0, 4.0]).unwrap();
        assert_eq!(s.count, 5);
        assert!((s.mean - 4.8).abs() < 1e-12);
        assert_eq!(s.median, 4.0);
        assert!((s.stddev.unwrap() - 6.7f64.sqrt()).abs() < 1e-12);
        assert_eq!((s.min, s.max, s.sum), (2.0, 9.0, 24.0));
        // Even count: 1, 2, 3, 4 → median 2.5, sd √(5/3).
        let s = stats(vec![4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!((s.stddev.unwrap() - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        let s = stats(vec![7.0]).unwrap();
        assert_eq!((s.median, s.stddev), (7.0, None));
        assert!(stats(vec![]).is_none());
        // Compensated sum: 0.1 ten times is 1.
        assert_eq!(stats(vec![0.1; 10]).unwrap().sum, 1.0);
    }

    #[test]
    fn json_dataset() {
        let v = json!([
            {"name": "a", "value": 2, "ok": true},
            {"name": "b", "value": 4.0, "ok": false},
            {"name": "a", "value": "4", "extra": [1]},
            {"name": "c", "value": 5},
            {"name": "d", "value": 9, "ok": null},
        ]);
        let a = analyze_json(&v, &PartLimits::default()).unwrap();
        assert_eq!(a.kind, "dataset");
        assert_eq!(a.data["count"], 5);
        // Keys of one object come in serde_json's order (sorted unless
        // `preserve_order` is on); new keys of later records come last.
        let mut fields: Vec<&str> = a.data["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(fields.pop(), Some("extra"));
        fields.sort_unstable();
        assert_eq!(fields, ["name", "ok", "value"]);
        let value = &a.data["numeric"]["value"];
        close(&value["mean"], 4.8);
        close(&value["median"], 4.0);
        close(&value["stddev"], 6.7f64.sqrt());
        close(&value["min"], 2.0);
        close(&value["max"], 9.0);
        assert_eq!(value["count"], 5);
        let name = &a.data["categorical"]["name"];
        assert_eq!(name["distinct"], 4);
        assert_eq!(name["top"], "a");
        assert_eq!(name["top_count"], 2);
        assert_eq!(a.data["categorical"]["ok"]["type"], "boolean");
        assert_eq!(a.data["categorical"]["ok"]["missing"], 3);
        assert_eq!(a.data["categorical"]["extra"]["type"], "nested");
        assert!(
            a.summary.starts_with("Dataset: 5 records, 4 fields ("),
            "{}",
            a.summary
        );
        for piece in [
            "; name: 4 distinct values",
            "; value: mean 4.8, median 4, sd 2.58844, min 2, max 9",
            "; ok: 2 distinct values",
            "; extra: 1 distinct value",
        ] {
            assert!(a.summary.contains(piece), "{piece} in {}", a.summary);
        }
    }

    #[test]
    fn plain_values_and_lists() {
        let a = analyze_json(&json!([1, 2, 3, 4]), &PartLimits::default()).unwrap();
        close(&a.data["numeric"]["value"]["median"], 2.5);
        let a = analyze_json(&json!([[1, "x"], [3, "y"]]), &PartLimits::default()).unwrap();
        close(&a.data["numeric"]["column_1"]["mean"], 2.0);
        assert_eq!(a.data["categorical"]["column_2"]["distinct"], 2);
        let a = analyze_json(&json!([]), &PartLimits::default()).unwrap();
        assert_eq!(a.summary, "Dataset: empty (no records)");
    }

    #[test]
    fn bad_datasets() {
        let limits = PartLimits::default();
        let e = analyze_json(&json!([{"a": 1}, 2]), &limits).unwrap_err();
        assert_eq!(e.kind(), "invalid");
        assert!(e.to_string().contains("row 2"), "{e}");
        assert_eq!(
            analyze_json(&json!({"a": 1}), &limits).unwrap_err().kind(),
            "invalid"
        );
        let small = PartLimits {
            max_dataset_rows: 3,
            ..PartLimits::default()
        };
        let e = analyze_json(&json!([1, 2, 3, 4]), &small).unwrap_err();
        assert_eq!(e.kind(), "too_large");
        let wide: Map<String, Value> = (0..=MAX_FIELDS)
            .map(|i| (format!("f{i}"), json!(i)))
            .collect();
        let e = analyze_json(&json!([wide]), &limits).unwrap_err();
        assert_eq!(e.kind(), "too_large");
    }

    #[test]
    fn csv_tables() {
        let csv = b"\xEF\xBB\xBFname, value ,score\na,2,1.5\nb,4,\n\"c, d\",4,2.5\ne,5,x\nf,9,3\n";
        let t = from_csv(csv, b',', &PartLimits::default()).unwrap();
        let a = describe(&t, "csv", "CSV");
        assert_eq!(a.data["count"], 5);
        assert_eq!(a.data["fields"], json!(["name", "value", "score"]));
        close(&a.data["numeric"]["value"]["mean"], 4.8);
        close(&a.data["numeric"]["value"]["stddev"], 6.7f64.sqrt());
        assert_eq!(a.data["categorical"]["score"]["type"], "mixed");
        assert_eq!(a.data["categorical"]["score"]["missing"], 1);
        assert_eq!(a.data["categorical"]["name"]["distinct"], 5);
        let e = from_csv(b"a,b\n1,2,3\n", b',', &PartLimits::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid input: CSV line 2 has 3 fields but the header has 2"
        );
        let e = from_csv(b"a,b\n\xFF,2\n", b',', &PartLimits::default()).unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
        assert_eq!(
            from_csv(b"", b',', &PartLimits::default())
                .unwrap_err()
                .kind(),
            "invalid"
        );
        let t = from_csv(b"a;a;\n1;2;3\n", b';', &PartLimits::default()).unwrap();
        assert_eq!(t.names, vec!["a", "a_2", "column_3"]);
        let small = PartLimits {
            max_dataset_rows: 1,
            ..PartLimits::default()
        };
        assert_eq!(
            from_csv(b"a\n1\n2\n", b',', &small).unwrap_err().kind(),
            "too_large"
        );
    }
}
