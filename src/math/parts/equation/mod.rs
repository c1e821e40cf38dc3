//! Equations: a small parser for polynomial equations in a few unknowns, and
//! exact solvers for linear equations, quadratics, the rational roots of
//! polynomials of higher degree and linear systems.
//!
//! Accepted text: numbers (`3`, `0.5`), single-letter unknowns with an
//! optional index (`x`, `y`, `x1`, `x_2`), the operators and brackets that
//! questions accept too (`+ - * / ^ **`, `×`, `·`, `÷`, `−`, superscript
//! exponents such as `x²`: one table, `math::operators`), implicit
//! multiplication (`3x`, `2(x + 1)`, `(x + 1)(x - 1)`, `xy`), and at most one
//! `=` (without one the expression is set equal to zero).

mod format;
mod higher;
mod lexer;
mod parser;
mod poly;
mod quadratic;
mod solve;
mod system;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use num_rational::BigRational;
use num_traits::Zero;
use serde_json::{Map, Value};

use super::rational::{fmt_q, from_json, shown};
use super::{shorten, PartAnalysis, PartError, PartLimits};
use format::{fmt_poly_eq, join_terms};
use parser::parse_equation;
use poly::Poly;
use solve::solve;

/// Longest accepted equation text, in characters.
const MAX_EQUATION_CHARS: usize = 2000;
/// Deepest nesting of parentheses and unary signs.
const MAX_DEPTH: usize = 32;
/// Highest total degree of any term while parsing.
const MAX_DEGREE: u32 = 8;
/// Most terms of a polynomial while parsing.
const MAX_TERMS: usize = 200;
/// Largest coefficient (numerator plus denominator bits) while parsing.
const MAX_COEF_BITS: u64 = 4096;

const HELP: &str = "an equation is a string like \"2x + 3 = 7\", a list of such strings for a \
system, {\"type\": \"quadratic\", \"coefficients\": [1, -5, 6]} (meaning x^2 - 5x + 6 = 0) or \
{\"system\": [[1, 1, 3], [1, -1, 1]]} (augmented rows: x + y = 3, x - y = 1)";

fn too_large(what: &str) -> PartError {
    PartError::TooLarge(format!(
        "the equation is too large to solve exactly: {what}"
    ))
}

/// Analyses the value of `{"equation": …}` or `{"equations": …}`.
pub(super) fn analyze(value: &Value, limits: &PartLimits) -> Result<PartAnalysis, PartError> {
    match value {
        Value::String(s) => from_texts(&split_equations(s), limits),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
            let texts: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            from_texts(&texts, limits)
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_array) => {
            numeric_system(value, None, limits)
        }
        Value::Object(map) => {
            if let Some(system) = map.get("system") {
                numeric_system(system, map.get("variables"), limits)
            } else if let Some(c) = map.get("coefficients") {
                coefficients(c, map, limits)
            } else if map.contains_key("a") || map.contains_key("b") {
                let list: Vec<Value> = ["a", "b", "c"]
                    .iter()
                    .filter_map(|k| map.get(*k).cloned())
                    .collect();
                coefficients(&Value::Array(list), map, limits)
            } else if let Some(inner) = ["equation", "equations", "expression", "text"]
                .iter()
                .find_map(|k| map.get(*k))
            {
                analyze(inner, limits)
            } else {
                Err(PartError::Invalid(format!(
                    "unrecognised equation object; {HELP}"
                )))
            }
        }
        other => Err(PartError::Invalid(format!(
            "cannot read an equation from {}; {HELP}",
            shown(other)
        ))),
    }
}

/// One text may hold several equations separated by `;`, new lines, or
/// commas when it has more than one `=`.
fn split_equations(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in s.split([';', '\n']) {
        if piece.matches('=').count() > 1 && piece.contains(',') {
            out.extend(piece.split(',').map(str::to_string));
        } else {
            out.push(piece.to_string());
        }
    }
    let out: Vec<String> = out
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if out.is_empty() {
        vec![String::new()]
    } else {
        out
    }
}

fn from_texts(texts: &[String], limits: &PartLimits) -> Result<PartAnalysis, PartError> {
    if texts.len() > limits.max_matrix_dim {
        return Err(PartError::TooLarge(format!(
            "{} equations; the maximum is {}",
            texts.len(),
            limits.max_matrix_dim
        )));
    }
    let mut names = Vec::new();
    let mut polys = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        let p = parse_equation(t, &mut names).map_err(|e| {
            if texts.len() == 1 {
                e
            } else {
                prefix_error(e, &format!("equation {}", i + 1))
            }
        })?;
        polys.push(p);
    }
    let inputs = texts.iter().map(|t| t.trim().to_string()).collect();
    solve(inputs, polys, &names, limits)
}

fn prefix_error(e: PartError, prefix: &str) -> PartError {
    match e {
        PartError::TooLarge(m) => PartError::TooLarge(format!("{prefix}: {m}")),
        PartError::Invalid(m) => PartError::Invalid(format!("{prefix}: {m}")),
        PartError::Unsupported(m) => PartError::Unsupported(format!("{prefix}: {m}")),
    }
}

/// A valid unknown's name: a letter with an optional index.
fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(char::is_alphabetic)
        && s.len() <= 8
        && chars.all(|c| c.is_ascii_digit() || c == '_')
}

/// `{"type": "linear"|"quadratic", "coefficients": [a, b(, c)], "variable": "x"}`.
fn coefficients(
    list: &Value,
    map: &Map<String, Value>,
    limits: &PartLimits,
) -> Result<PartAnalysis, PartError> {
    let Value::Array(items) = list else {
        return Err(PartError::Invalid(format!(
            "coefficients must be a list of numbers, found {}",
            shown(list)
        )));
    };
    let kind = map
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    let expected = match kind.as_deref() {
        None => None,
        Some("linear") => Some(2),
        Some("quadratic") => Some(3),
        Some(other) => {
            return Err(PartError::Unsupported(format!(
                "equation type '{}' is not supported: use \"linear\" or \"quadratic\"",
                shorten(other, 20)
            )));
        }
    };
    let n = items.len();
    match expected {
        Some(want) if want != n => {
            return Err(PartError::Invalid(format!(
                "a {} equation needs {want} coefficients ({}), found {n}",
                kind.as_deref().unwrap_or(""),
                if want == 2 {
                    "a, b for ax + b = 0"
                } else {
                    "a, b, c for ax^2 + bx + c = 0"
                }
            )));
        }
        None if !(2..=3).contains(&n) => {
            return Err(PartError::Invalid(format!(
                "give 2 coefficients (ax + b = 0) or 3 (ax^2 + bx + c = 0), found {n}"
            )));
        }
        _ => {}
    }
    let var = match map.get("variable").or_else(|| map.get("unknown")) {
        None => "x".to_string(),
        Some(Value::String(s)) if valid_name(s.trim()) => s.trim().to_string(),
        Some(other) => {
            return Err(PartError::Invalid(format!(
                "the variable must be a letter like \"x\", found {}",
                shown(other)
            )));
        }
    };
    let mut poly = Poly::default();
    for (k, v) in items.iter().enumerate() {
        let q = from_json(v).map_err(|e| e.at(&format!("coefficient {}", k + 1), &shown(v)))?;
        let exp = (n - 1 - k) as u32;
        let mono = if exp == 0 { Vec::new() } else { vec![(0, exp)] };
        poly.add_term(mono, q)?;
    }
    let names = vec![var];
    let input = fmt_poly_eq(&poly, &names);
    solve(vec![input], vec![poly], &names, limits)
}

/// `{"system": [[a11, a12, b1], …], "variables": ["x", "y"]}`: augmented rows.
fn numeric_system(
    rows: &Value,
    variables: Option<&Value>,
    limits: &PartLimits,
) -> Result<PartAnalysis, PartError> {
    let Value::Array(rows) = rows else {
        return Err(PartError::Invalid(format!(
            "a system must be a list of augmented rows like [[1, 1, 3], [1, -1, 1]], found {}",
            shown(rows)
        )));
    };
    if rows.is_empty() {
        return Err(PartError::Invalid(
            "the system has no equations".to_string(),
        ));
    }
    // Reuse the matrix reader (same limits on rows and columns, plus one column).
    let wider = PartLimits {
        max_matrix_dim: limits.max_matrix_dim + 1,
        ..limits.clone()
    };
    if rows.len() > limits.max_matrix_dim {
        return Err(PartError::TooLarge(format!(
            "the system has {} equations; the maximum is {}",
            rows.len(),
            limits.max_matrix_dim
        )));
    }
    let m = super::matrix::parse(&Value::Array(rows.clone()), &wider)?;
    let n = m[0].len() - 1;
    if n == 0 {
        return Err(PartError::Invalid(
            "each row needs at least one coefficient and the right-hand side, e.g. [2, 4] for \
             2x = 4"
                .to_string(),
        ));
    }
    let names: Vec<String> = match variables {
        None => {
            if n <= 3 {
                ["x", "y", "z"][..n].iter().map(|s| s.to_string()).collect()
            } else {
                (1..=n).map(|i| format!("x{i}")).collect()
            }
        }
        Some(Value::Array(vs))
            if vs.len() == n
                && vs.iter().all(|v| v.as_str().is_some_and(valid_name))
                && vs
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<BTreeSet<_>>()
                    .len()
                    == n =>
        {
            vs.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        }
        Some(_) => {
            return Err(PartError::Invalid(format!(
                "variables must be a list of {n} distinct names like [\"x\", \"y\"]"
            )));
        }
    };
    let mut polys = Vec::with_capacity(m.len());
    let mut inputs = Vec::with_capacity(m.len());
    for row in &m {
        let mut p = Poly::constant(-row[n].clone());
        for (j, q) in row[..n].iter().enumerate() {
            p.add_term(vec![(j, 1)], q.clone())?;
        }
        let terms: Vec<(BigRational, String)> = row[..n]
            .iter()
            .zip(&names)
            .filter(|(q, _)| !q.is_zero())
            .map(|(q, name)| (q.clone(), name.clone()))
            .collect();
        inputs.push(format!("{} = {}", join_terms(&terms), fmt_q(&row[n])));
        polys.push(p);
    }
    solve(inputs, polys, &names, limits)
}
