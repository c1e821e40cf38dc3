//! Calculus in plain text: "derivative of x^3", "d/dx sin(x)^2",
//! "differentiate x·e^x", "second derivative of x^4", "integrate 3x^2 + 2x",
//! "integral of cos(2x)", "antiderivative of 1/x", "integral of x^2 from 0
//! to 3". Exact: constants are rationals, results are simplified
//! (`d/dx x^3 = 3x^2`, `∫ 3x^2 + 2x dx = x^3 + x^2 + C`).
//!
//! Hand-written: the symbolic crates of the ecosystem are either whole
//! computer-algebra systems (far more than a math agent needs, and not
//! bounded against hostile input) or abandoned; this is a few hundred
//! lines with a node limit and a depth limit.

mod calculus;
mod expr;
mod parse;
mod print;
#[cfg(test)]
mod tests;

use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive};

use super::{Limits, MathError};
use expr::{simplify, Expr};
use print::{show, with_var};

/// Most nodes a derivative may have before it is simplified.
const MAX_DIFF_NODES: usize = 200_000;

/// What is asked.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// The n-th derivative.
    Derivative(u32),
    /// An antiderivative, or the definite integral between two bounds.
    Integral(Option<(String, String)>),
}

/// A calculus question, recognised by its phrasing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Question {
    kind: Kind,
    expression: String,
    var: String,
}

/// Leading words that change nothing.
const FILLER: &[&str] = &[
    "what is ",
    "what's ",
    "whats ",
    "find ",
    "compute ",
    "calculate ",
    "give me ",
    "please ",
    "the ",
];

const DERIVATIVE: &[(&str, u32)] = &[
    ("derivative of ", 1),
    ("first derivative of ", 1),
    ("second derivative of ", 2),
    ("third derivative of ", 3),
    ("differentiate ", 1),
    ("diff ", 1),
];

const INTEGRAL: &[&str] = &[
    "integral of ",
    "indefinite integral of ",
    "definite integral of ",
    "integrate ",
    "antiderivative of ",
    "anti-derivative of ",
    "primitive of ",
    "∫",
];

/// Function and constant names: not the variable.
const NAMES: &[&str] = &[
    "sin", "cos", "tan", "exp", "ln", "log", "sqrt", "atan", "arctan", "abs", "pi", "e",
];

/// The calculus question `text` asks, if it asks one.
///
/// ```ignore
/// assert!(question("derivative of x^3").is_some());
/// assert!(question("2 + 2").is_none());
/// ```
pub(crate) fn question(text: &str) -> Option<Result<Question, MathError>> {
    let mut t = text
        .trim()
        .trim_end_matches(['?', '.', '!'])
        .trim()
        .to_lowercase();
    while let Some(rest) = FILLER.iter().find_map(|f| t.strip_prefix(f)) {
        t = rest.trim_start().to_string();
    }
    let mut var = None;
    let (kind, body) = if let Some((rest, n)) = DERIVATIVE
        .iter()
        .find_map(|(p, n)| t.strip_prefix(p).map(|r| (r, *n)))
    {
        (Kind::Derivative(n), rest.to_string())
    } else if let Some(rest) = d_dv(&t, &mut var) {
        (Kind::Derivative(1), rest)
    } else if let Some(rest) = INTEGRAL.iter().find_map(|p| t.strip_prefix(p)) {
        (Kind::Integral(None), rest.to_string())
    } else {
        return None;
    };
    Some(finish(kind, body, var))
}

/// `d/dx …`, `d/dt(…)`: the rest, and the variable.
fn d_dv(t: &str, var: &mut Option<String>) -> Option<String> {
    let rest = t.strip_prefix("d/d")?;
    let v = rest.chars().next().filter(char::is_ascii_alphabetic)?;
    let after = &rest[1..];
    if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    *var = Some(v.to_string());
    Some(after.trim_start().to_string())
}

fn finish(mut kind: Kind, body: String, mut var: Option<String>) -> Result<Question, MathError> {
    let mut body = body.trim().to_string();
    // "… with respect to t", "… wrt t".
    for marker in [" with respect to ", " wrt ", " w.r.t. "] {
        if let Some(i) = body.find(marker) {
            let v = body[i + marker.len()..].trim().to_string();
            if v.chars().count() != 1 || !v.chars().all(char::is_alphabetic) {
                return Err(MathError::NotUnderstood(format!(
                    "'{v}' is not a variable: name one letter, e.g. \"with respect to x\""
                )));
            }
            var = Some(v);
            body.truncate(i);
        }
    }
    if let Kind::Integral(_) = kind {
        // "… from a to b" (before or after "dx").
        if let Some(i) = body.rfind(" from ") {
            let range = body[i + 6..].to_string();
            let Some((lo, hi)) = range.split_once(" to ") else {
                return Err(MathError::NotUnderstood(
                    "a definite integral needs both bounds: \"from 0 to 3\"".into(),
                ));
            };
            kind = Kind::Integral(Some((lo.trim().to_string(), hi.trim().to_string())));
            body.truncate(i);
        }
        // A trailing "dx" names the variable.
        let trimmed = body.trim_end();
        let mut chars = trimmed.chars().rev();
        if let (Some(v), Some('d'), Some(' ' | ')')) = (chars.next(), chars.next(), chars.next()) {
            if v.is_ascii_alphabetic() {
                var = Some(v.to_string());
                body.truncate(trimmed.len() - 2);
            }
        }
    }
    let expression = body.trim().to_string();
    if expression.is_empty() {
        return Err(MathError::NotUnderstood(
            "there is no expression: e.g. \"derivative of x^3\"".into(),
        ));
    }
    let var = match var {
        Some(v) => v,
        None => infer_var(&expression)?,
    };
    Ok(Question {
        kind,
        expression,
        var,
    })
}

/// The one letter of `expression` that is not part of a function name.
fn infer_var(expression: &str) -> Result<String, MathError> {
    let mut found: Vec<char> = Vec::new();
    for word in expression.split(|c: char| !c.is_alphabetic()) {
        if word.is_empty() || NAMES.contains(&word) {
            continue;
        }
        for c in word.chars().filter(|&c| c != 'e' && c != 'π') {
            if !found.contains(&c) {
                found.push(c);
            }
        }
    }
    match found.as_slice() {
        [] => Ok("x".into()),
        [v] => Ok(v.to_string()),
        _ => Err(MathError::NotUnderstood(format!(
            "the expression has several variables ({}): say which, e.g. \"with respect to {}\"",
            found
                .iter()
                .map(char::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            found[0]
        ))),
    }
}

impl Question {
    /// The answer: the result and one line saying what it is.
    pub(crate) fn answer(&self, limits: &Limits) -> Result<(String, String), MathError> {
        with_var(&self.var, || self.compute(limits))
    }

    fn compute(&self, limits: &Limits) -> Result<(String, String), MathError> {
        let e = simplify(parse::parse(&self.expression, &self.var, limits.max_depth)?)?;
        let input = show(&e);
        let v = &self.var;
        match &self.kind {
            Kind::Derivative(n) => {
                let mut d = e;
                for _ in 0..*n {
                    // The product rule copies a product once per factor:
                    // refuse before building what simplification would refuse.
                    if d.nodes().saturating_mul(d.widest_product() + 1) > MAX_DIFF_NODES {
                        return Err(MathError::limit(
                            "the derivative of this expression would be too large",
                        ));
                    }
                    d = simplify(calculus::diff(&d))?;
                }
                let result = show(&d);
                let op = match n {
                    1 => format!("d/d{v}"),
                    2 => format!("d²/d{v}²"),
                    n => format!("d^{n}/d{v}^{n}"),
                };
                Ok((result.clone(), format!("{op} {input} = {result}")))
            }
            Kind::Integral(None) => {
                let f = simplify(calculus::integrate(&e)?)?;
                let result = format!("{} + C", show(&f));
                Ok((result.clone(), format!("∫ {input} d{v} = {result}")))
            }
            Kind::Integral(Some((lo, hi))) => {
                let f = simplify(calculus::integrate(&e)?)?;
                let value = definite(&e, &f, lo, hi)?;
                Ok((
                    value.clone(),
                    format!("∫ {input} d{v} from {lo} to {hi} = {value}"),
                ))
            }
        }
    }
}

/// `F(b) - F(a)`: exact for a polynomial with rational bounds, else a
/// decimal; an error when the integrand is undefined in between.
fn definite(integrand: &Expr, f: &Expr, lo: &str, hi: &str) -> Result<String, MathError> {
    let (a, b) = (
        simplify(parse::constant(lo)?)?,
        simplify(parse::constant(hi)?)?,
    );
    if let (Some(p), Some(qa), Some(qb)) = (f.poly(64), a.as_num(), b.as_num()) {
        let at = |x: &BigRational| {
            p.iter()
                .rev()
                .fold(BigRational::from_integer(0.into()), |acc, c| acc * x + c)
        };
        let v = at(qb) - at(qa);
        return Ok(exact(&v));
    }
    let (fa, fb) = (a.eval(0.0), b.eval(0.0));
    // ln|x| across 0, 1/x², tan across π/2: the antiderivative's difference
    // would be a wrong finite number.
    const SAMPLES: usize = 1000;
    let defined = (0..=SAMPLES).all(|i| {
        let x = fa + (fb - fa) * i as f64 / SAMPLES as f64;
        integrand.eval(x).is_finite()
    });
    let (at_a, at_b) = (f.eval(fa), f.eval(fb));
    let mut v = at_b - at_a;
    // sin(π) is 1.2e-16 in floating point: below the rounding of the two
    // values subtracted, the difference is zero.
    if v.abs() <= 1e-12 * at_a.abs().max(at_b.abs()).max(1.0) {
        v = 0.0;
    }
    if !defined || !v.is_finite() {
        return Err(MathError::domain(format!(
            "the integrand is not defined everywhere between {lo} and {hi}: the integral diverges \
             or needs splitting"
        )));
    }
    Ok(crate::math::parts::fmt_f64(v))
}

/// `9`, `7/3 ≈ 2.33333`.
fn exact(q: &BigRational) -> String {
    if q.is_integer() {
        return q.numer().to_string();
    }
    let d = q
        .to_f64()
        .map(crate::math::parts::fmt_f64)
        .unwrap_or_default();
    let sign = if q.is_negative() { "-" } else { "" };
    format!("{sign}{}/{} ≈ {d}", q.numer().abs(), q.denom())
}
