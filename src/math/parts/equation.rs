//! Equations: a small parser for polynomial equations in a few unknowns, and
//! exact solvers for linear equations, quadratics and linear systems.
//!
//! Accepted text: numbers (`3`, `0.5`), single-letter unknowns with an
//! optional index (`x`, `y`, `x1`, `x_2`), `+ - * / ^`, parentheses, implicit
//! multiplication (`3x`, `2(x + 1)`, `(x + 1)(x - 1)`, `xy`), `²`/`³`, the
//! Unicode minus and `×`/`·`/`÷`, and at most one `=` (without one the
//! expression is set equal to zero).

use std::collections::{BTreeMap, BTreeSet};

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use serde_json::{json, Map, Value};

use super::rational::{
    eliminate, fmt_q, from_json, json_f64, parse_decimal, shown, split_square, to_f64, to_int_rows,
    NumError, MAX_NUMBER_CHARS,
};
use super::{fmt_f64, shorten, PartAnalysis, PartError, PartLimits};

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

// ---------------------------------------------------------------------------
// Polynomials
// ---------------------------------------------------------------------------

/// A monomial: `(unknown index, exponent)` pairs sorted by index, exponents ≥ 1.
type Mono = Vec<(usize, u32)>;

/// A polynomial with exact rational coefficients (no zero coefficients stored).
#[derive(Debug, Clone, PartialEq, Default)]
struct Poly(BTreeMap<Mono, BigRational>);

fn too_large(what: &str) -> PartError {
    PartError::TooLarge(format!(
        "the equation is too large to solve exactly: {what}"
    ))
}

impl Poly {
    fn constant(q: BigRational) -> Poly {
        let mut p = Poly::default();
        if !q.is_zero() {
            p.0.insert(Vec::new(), q);
        }
        p
    }

    fn var(id: usize) -> Poly {
        let mut p = Poly::default();
        p.0.insert(vec![(id, 1)], BigRational::one());
        p
    }

    /// The value when the polynomial has no unknowns.
    fn as_constant(&self) -> Option<BigRational> {
        match self.0.len() {
            0 => Some(BigRational::zero()),
            1 => self.0.get(&Vec::new()).cloned(),
            _ => None,
        }
    }

    fn coef(&self, mono: &[(usize, u32)]) -> BigRational {
        self.0.get(mono).cloned().unwrap_or_else(BigRational::zero)
    }

    fn degree(&self) -> u32 {
        self.0.keys().map(|m| mono_degree(m)).max().unwrap_or(0)
    }

    fn unknowns(&self) -> BTreeSet<usize> {
        self.0.keys().flatten().map(|&(v, _)| v).collect()
    }

    fn add_term(&mut self, mono: Mono, q: BigRational) -> Result<(), PartError> {
        let entry = self.0.entry(mono).or_insert_with(BigRational::zero);
        *entry += q;
        check_coef(entry)?;
        if entry.is_zero() {
            self.0.retain(|_, c| !c.is_zero());
        }
        if self.0.len() > MAX_TERMS {
            return Err(too_large(&format!("more than {MAX_TERMS} terms")));
        }
        Ok(())
    }

    fn add(mut self, other: Poly, sign: i32) -> Result<Poly, PartError> {
        for (m, c) in other.0 {
            self.add_term(m, if sign < 0 { -c } else { c })?;
        }
        Ok(self)
    }

    fn neg(self) -> Poly {
        Poly(self.0.into_iter().map(|(m, c)| (m, -c)).collect())
    }

    fn mul(&self, other: &Poly) -> Result<Poly, PartError> {
        let mut out = Poly::default();
        for (ma, ca) in &self.0 {
            for (mb, cb) in &other.0 {
                let m = mono_mul(ma, mb);
                if mono_degree(&m) > MAX_DEGREE {
                    return Err(PartError::Unsupported(format!(
                        "the equation has a term of degree above {MAX_DEGREE}; only linear and \
                         quadratic equations are solved"
                    )));
                }
                out.add_term(m, ca * cb)?;
            }
        }
        Ok(out)
    }

    fn pow(&self, e: u32) -> Result<Poly, PartError> {
        if let Some(c) = self.as_constant() {
            let bits = c.numer().bits() + c.denom().bits();
            if bits.saturating_mul(u64::from(e)) > MAX_COEF_BITS {
                return Err(too_large("a power is too large"));
            }
            return Ok(Poly::constant(num_traits::pow(c, e as usize)));
        }
        if e > MAX_DEGREE {
            return Err(PartError::Unsupported(format!(
                "the exponent {e} is above {MAX_DEGREE}; only linear and quadratic equations \
                 are solved"
            )));
        }
        let mut out = Poly::constant(BigRational::one());
        for _ in 0..e {
            out = out.mul(self)?;
        }
        Ok(out)
    }
}

fn check_coef(q: &BigRational) -> Result<(), PartError> {
    if q.numer().bits() + q.denom().bits() > MAX_COEF_BITS {
        return Err(too_large("a coefficient has too many digits"));
    }
    Ok(())
}

fn mono_degree(m: &[(usize, u32)]) -> u32 {
    m.iter().map(|&(_, e)| e).sum()
}

fn mono_mul(a: &[(usize, u32)], b: &[(usize, u32)]) -> Mono {
    let mut map: BTreeMap<usize, u32> = a.iter().copied().collect();
    for &(v, e) in b {
        *map.entry(v).or_insert(0) += e;
    }
    map.into_iter().collect()
}

// ---------------------------------------------------------------------------
// Lexer and parser
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(BigRational),
    Var(String),
    Op(char),
}

/// Splits equation text into tokens with their 1-based character positions.
fn lex(s: &str) -> Result<Vec<(Tok, usize)>, PartError> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if text.len() > MAX_NUMBER_CHARS {
                    return Err(too_large(&format!(
                        "the number at position {pos} has more than {MAX_NUMBER_CHARS} characters"
                    )));
                }
                let q = parse_decimal(&text).map_err(|e| match e {
                    NumError::TooLong => {
                        too_large(&format!("the number {} is too long", shorten(&text, 20)))
                    }
                    _ => PartError::Invalid(format!("bad number '{text}' at position {pos}")),
                })?;
                toks.push((Tok::Num(q), pos));
            }
            '²' | '³' => {
                toks.push((Tok::Op('^'), pos));
                let e = if c == '²' { 2 } else { 3 };
                toks.push((Tok::Num(BigRational::from_integer(BigInt::from(e))), pos));
                i += 1;
            }
            '<' | '>' | '≤' | '≥' | '≠' => {
                return Err(PartError::Unsupported(format!(
                    "'{c}' at position {pos}: inequalities are not supported, only equations"
                )));
            }
            '=' => {
                toks.push((Tok::Op('='), pos));
                i += 1;
                if chars.get(i) == Some(&'=') {
                    i += 1;
                }
            }
            c if c.is_alphabetic() => {
                let start = i;
                while i < chars.len() && chars[i].is_alphabetic() {
                    i += 1;
                }
                if i - start > 2 {
                    let word: String = chars[start..i].iter().collect();
                    return Err(PartError::Invalid(format!(
                        "unknown word '{}' at position {pos}: unknowns are single letters like \
                         x, y, z (optionally indexed: x1, x_2) and functions are not supported",
                        shorten(&word, 20)
                    )));
                }
                for (k, &letter) in chars[start..i].iter().enumerate() {
                    let mut name = letter.to_string();
                    if start + k + 1 == i {
                        // An index: x1, x12, x_2.
                        let digits_at = |j: usize| chars.get(j).is_some_and(|d| d.is_ascii_digit());
                        if chars.get(i) == Some(&'_') && digits_at(i + 1) {
                            name.push('_');
                            i += 1;
                        }
                        while digits_at(i) && name.len() < 8 {
                            name.push(chars[i]);
                            i += 1;
                        }
                    }
                    toks.push((Tok::Var(name), start + k + 1));
                }
            }
            _ => {
                let op = match c {
                    '+' => '+',
                    '-' | '−' | '–' => '-',
                    '*' | '×' | '·' | '⋅' | '∗' => '*',
                    '/' | '÷' => '/',
                    '^' => '^',
                    '(' | '[' | '{' => '(',
                    ')' | ']' | '}' => ')',
                    _ => {
                        return Err(PartError::Invalid(format!(
                            "unexpected character '{c}' at position {pos}"
                        )));
                    }
                };
                toks.push((Tok::Op(op), pos));
                i += 1;
            }
        }
    }
    Ok(toks)
}

struct Parser<'a> {
    toks: &'a [(Tok, usize)],
    pos: usize,
    names: &'a mut Vec<String>,
    depth: usize,
    len: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> String {
        match self.toks.get(self.pos) {
            Some((_, p)) => format!("at position {p}"),
            None => format!("at the end (position {})", self.len + 1),
        }
    }

    fn eat(&mut self, op: char) -> bool {
        if self.peek() == Some(&Tok::Op(op)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `expr ('=' expr)?`; returns `lhs - rhs` and whether there was an `=`.
    fn equation(&mut self) -> Result<(Poly, bool), PartError> {
        let lhs = self.expr()?;
        let (poly, has_eq) = if self.eat('=') {
            let rhs = self.expr()?;
            (lhs.add(rhs, -1)?, true)
        } else {
            (lhs, false)
        };
        match self.peek() {
            None => Ok((poly, has_eq)),
            Some(Tok::Op('=')) => Err(PartError::Invalid(format!(
                "a second '=' {}: write one equation at a time",
                self.at()
            ))),
            Some(Tok::Op(')')) => Err(PartError::Invalid(format!("unmatched ')' {}", self.at()))),
            Some(_) => Err(PartError::Invalid(format!("unexpected {}", self.at()))),
        }
    }

    fn expr(&mut self) -> Result<Poly, PartError> {
        let mut acc = self.term()?;
        loop {
            if self.eat('+') {
                acc = acc.add(self.term()?, 1)?;
            } else if self.eat('-') {
                acc = acc.add(self.term()?, -1)?;
            } else {
                return Ok(acc);
            }
        }
    }

    fn term(&mut self) -> Result<Poly, PartError> {
        let mut acc = self.unary()?;
        loop {
            if self.eat('*') {
                acc = acc.mul(&self.unary()?)?;
            } else if self.eat('/') {
                let at = self.at();
                let d = self.unary()?;
                let Some(d) = d.as_constant() else {
                    return Err(PartError::Unsupported(format!(
                        "division by an expression with an unknown ({at}) is not supported"
                    )));
                };
                if d.is_zero() {
                    return Err(PartError::Invalid(format!("division by zero {at}")));
                }
                acc = acc.mul(&Poly::constant(d.recip()))?;
            } else if matches!(self.peek(), Some(Tok::Var(_)) | Some(Tok::Op('('))) {
                // Implicit multiplication: 3x, 2(x + 1), (x + 1)(x - 1), xy.
                acc = acc.mul(&self.power()?)?;
            } else if matches!(self.peek(), Some(Tok::Num(_))) {
                return Err(PartError::Invalid(format!(
                    "a number cannot follow here {}: use * between numbers",
                    self.at()
                )));
            } else {
                return Ok(acc);
            }
        }
    }

    fn enter(&mut self) -> Result<(), PartError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(too_large(&format!(
                "nested more than {MAX_DEPTH} levels deep"
            )));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Poly, PartError> {
        if self.eat('-') {
            self.enter()?;
            let p = self.unary()?.neg();
            self.depth -= 1;
            Ok(p)
        } else if self.eat('+') {
            self.enter()?;
            let p = self.unary()?;
            self.depth -= 1;
            Ok(p)
        } else {
            self.power()
        }
    }

    fn power(&mut self) -> Result<Poly, PartError> {
        let base = self.atom()?;
        if !self.eat('^') {
            return Ok(base);
        }
        let at = self.at();
        self.enter()?;
        let e = self.unary()?;
        self.depth -= 1;
        let e = e
            .as_constant()
            .filter(|e| e.is_integer() && !e.is_negative())
            .and_then(|e| e.to_integer().to_u32())
            .ok_or_else(|| {
                PartError::Unsupported(format!(
                    "the exponent {at} must be a whole number from 0 up"
                ))
            })?;
        base.pow(e)
    }

    fn atom(&mut self) -> Result<Poly, PartError> {
        let at = self.at();
        match self.toks.get(self.pos).map(|(t, _)| t.clone()) {
            Some(Tok::Num(q)) => {
                self.pos += 1;
                Ok(Poly::constant(q))
            }
            Some(Tok::Var(name)) => {
                self.pos += 1;
                let id = match self.names.iter().position(|n| *n == name) {
                    Some(id) => id,
                    None => {
                        self.names.push(name);
                        self.names.len() - 1
                    }
                };
                Ok(Poly::var(id))
            }
            Some(Tok::Op('(')) => {
                self.pos += 1;
                self.enter()?;
                let inner = self.expr()?;
                self.depth -= 1;
                if !self.eat(')') {
                    return Err(PartError::Invalid(format!(
                        "expected ')' {} to close the '(' {at}",
                        self.at()
                    )));
                }
                Ok(inner)
            }
            Some(Tok::Op(op)) => Err(PartError::Invalid(format!(
                "expected a number, an unknown or '(' {at}, found '{op}'"
            ))),
            None => Err(PartError::Invalid(format!(
                "the equation ends too early: expected a number or an unknown {at}"
            ))),
        }
    }
}

/// Parses one equation; unknowns are registered in `names`.
fn parse_equation(text: &str, names: &mut Vec<String>) -> Result<Poly, PartError> {
    let len = text.chars().count();
    if len > MAX_EQUATION_CHARS {
        return Err(PartError::TooLarge(format!(
            "the equation is {len} characters long; the maximum is {MAX_EQUATION_CHARS}"
        )));
    }
    let toks = lex(text)?;
    if toks.is_empty() {
        return Err(PartError::Invalid(format!("the equation is empty; {HELP}")));
    }
    let mut parser = Parser {
        toks: &toks,
        pos: 0,
        names,
        depth: 0,
        len,
    };
    let (poly, has_eq) = parser.equation()?;
    if !has_eq && poly.unknowns().is_empty() {
        return Err(PartError::Invalid(format!(
            "'{}' has no '=' and no unknowns: it is an expression, not an equation",
            shorten(text.trim(), 60)
        )));
    }
    Ok(poly)
}

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------

fn fmt_mono(m: &[(usize, u32)], names: &[String]) -> String {
    let factors: Vec<String> = m
        .iter()
        .map(|&(v, e)| {
            let name = names.get(v).map_or("?", String::as_str);
            if e == 1 {
                name.to_string()
            } else {
                format!("{name}^{e}")
            }
        })
        .collect();
    factors.join("*")
}

/// `3x`, `x`, `(1/2)x`, `7`, `2/3` for a non-negative coefficient.
fn fmt_term(c: &BigRational, mono: &str) -> String {
    if mono.is_empty() {
        fmt_q(c)
    } else if c.is_one() {
        mono.to_string()
    } else if c.is_integer() {
        format!("{}{mono}", fmt_q(c))
    } else {
        format!("({}){mono}", fmt_q(c))
    }
}

/// Joins signed terms: `2x - 4`, `-y + 3`; `0` when empty.
fn join_terms(terms: &[(BigRational, String)]) -> String {
    let mut out = String::new();
    for (c, mono) in terms {
        let neg = c.is_negative();
        let t = fmt_term(&c.abs(), mono);
        if out.is_empty() {
            if neg {
                out.push('-');
            }
        } else {
            out.push_str(if neg { " - " } else { " + " });
        }
        out.push_str(&t);
    }
    if out.is_empty() {
        out.push('0');
    }
    out
}

/// `x^2 - 5x + 6 = 0`: highest degree first.
fn fmt_poly_eq(p: &Poly, names: &[String]) -> String {
    let mut terms: Vec<(&Mono, &BigRational)> = p.0.iter().collect();
    terms.sort_by(|a, b| mono_degree(b.0).cmp(&mono_degree(a.0)).then(a.0.cmp(b.0)));
    let terms: Vec<(BigRational, String)> = terms
        .into_iter()
        .map(|(m, c)| (c.clone(), fmt_mono(m, names)))
        .collect();
    format!("{} = 0", join_terms(&terms))
}

/// A value with its decimal approximation when not whole: `7/3 ≈ 2.33333`.
fn with_decimal(q: &BigRational) -> String {
    match to_f64(q) {
        Some(f) if !q.is_integer() => format!("{} ≈ {}", fmt_q(q), fmt_f64(f)),
        _ => fmt_q(q),
    }
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Solvers
// ---------------------------------------------------------------------------

fn solve(
    inputs: Vec<String>,
    polys: Vec<Poly>,
    names: &[String],
    limits: &PartLimits,
) -> Result<PartAnalysis, PartError> {
    let used: Vec<usize> = polys
        .iter()
        .flat_map(Poly::unknowns)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if used.len() > limits.max_matrix_dim {
        return Err(PartError::TooLarge(format!(
            "{} unknowns; the maximum is {}",
            used.len(),
            limits.max_matrix_dim
        )));
    }
    if polys.len() == 1 && used.len() == 1 {
        let p = &polys[0];
        let v = used[0];
        match p.degree() {
            1 => return Ok(linear(&inputs[0], p, v, names)),
            2 => return Ok(quadratic(&inputs[0], p, v, names)),
            d => {
                return Err(PartError::Unsupported(format!(
                    "'{}' has degree {d}: only linear and quadratic equations are solved",
                    shorten(&inputs[0], 60)
                )));
            }
        }
    }
    if let Some(k) = polys.iter().position(|p| p.degree() > 1) {
        return Err(PartError::Unsupported(if polys.len() == 1 {
            format!(
                "'{}' is not linear: equations in several unknowns are solved only when linear",
                shorten(&inputs[0], 60)
            )
        } else {
            format!(
                "equation {} ('{}') is not linear: only systems of linear equations are solved",
                k + 1,
                shorten(&inputs[k], 60)
            )
        }));
    }
    linear_system(inputs, &polys, &used, names)
}

fn base_data(
    kind: &str,
    inputs: &[String],
    polys: &[&Poly],
    vars: &[&str],
    names: &[String],
) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("type".into(), json!(kind));
    if inputs.len() == 1 {
        data.insert("input".into(), json!(inputs[0]));
        data.insert("normalized".into(), json!(fmt_poly_eq(polys[0], names)));
    } else {
        data.insert("input".into(), json!(inputs));
        let normalized: Vec<String> = polys.iter().map(|p| fmt_poly_eq(p, names)).collect();
        data.insert("normalized".into(), json!(normalized));
    }
    data.insert("variables".into(), json!(vars));
    data
}

/// `a·x + b = 0`.
fn linear(input: &str, p: &Poly, v: usize, names: &[String]) -> PartAnalysis {
    let a = p.coef(&[(v, 1)]);
    let b = p.coef(&[]);
    let x = -b / a;
    let name = names[v].as_str();
    let mut data = base_data("linear", &[input.to_string()], &[p], &[name], names);
    data.insert("status".into(), json!("unique"));
    data.insert("solution".into(), json!({ name: fmt_q(&x) }));
    data.insert("solution_decimal".into(), json!({ name: json_f64(&x) }));
    PartAnalysis {
        kind: "equation",
        summary: format!("{}: {name} = {}", shorten(input, 80), with_decimal(&x)),
        data: Value::Object(data),
    }
}

/// `c·√r` as text: `√2`, `3√5`, `√2/2`, `(3/2)` → `3/2` when `r` is 1; an
/// `i` is added for imaginary parts: `i`, `2i`, `i√2/2`.
fn fmt_surd(c: &BigRational, r: &BigUint, imaginary: bool) -> String {
    let (num, den) = (c.numer().magnitude(), c.denom().magnitude());
    let i = if imaginary { "i" } else { "" };
    let mut s = if r.is_one() {
        if num.is_one() && imaginary {
            "i".to_string()
        } else {
            format!("{num}{i}")
        }
    } else if num.is_one() {
        format!("{i}√{r}")
    } else {
        format!("{num}{i}√{r}")
    };
    if !den.is_one() {
        s = format!("{s}/{den}");
    }
    s
}

/// `center ± c·√r` (or with `i`) over a common denominator: `±√2`,
/// `(5 ± √13)/2`, `-1 ± 2i`. `sign` is `"±"`, `"-"` or `"+"`.
fn fmt_pm(
    center: &BigRational,
    c: &BigRational,
    r: &BigUint,
    imaginary: bool,
    sign: &str,
) -> String {
    let d = center.denom().lcm(c.denom());
    let n = (center * BigRational::from_integer(d.clone())).to_integer();
    let s = (c * BigRational::from_integer(d.clone())).to_integer();
    let rad = fmt_surd(&BigRational::from_integer(s), r, imaginary);
    let body = if n.is_zero() {
        let sign = if sign == "+" { "" } else { sign };
        format!("{sign}{rad}")
    } else {
        format!("{n} {sign} {rad}")
    };
    if d.is_one() {
        body
    } else if n.is_zero() {
        format!("{body}/{d}")
    } else {
        format!("({body})/{d}")
    }
}

/// `a·x² + b·x + c = 0`.
fn quadratic(input: &str, p: &Poly, v: usize, names: &[String]) -> PartAnalysis {
    let a = p.coef(&[(v, 2)]);
    let b = p.coef(&[(v, 1)]);
    let c = p.coef(&[]);
    let name = names[v].as_str();
    let disc = &b * &b - BigRational::from_integer(4.into()) * &a * &c;
    let two_a = &a * BigRational::from_integer(2.into());
    let center = -&b / &two_a;
    // √|D| = √(|p|·q)/q = s·√r/q for D = p/q.
    let n = disc.numer().magnitude() * disc.denom().magnitude();
    let (s, r) = split_square(&n);
    let half =
        BigRational::new(BigInt::from_biguint(Sign::Plus, s), disc.denom().clone()) / two_a.abs();
    let center_f = to_f64(&center);
    let half_f = to_f64(&disc.abs())
        .zip(to_f64(&two_a.abs()))
        .map(|(d, t)| d.sqrt() / t);

    let mut data = base_data("quadratic", &[input.to_string()], &[p], &[name], names);
    data.insert(
        "coefficients".into(),
        json!({"a": fmt_q(&a), "b": fmt_q(&b), "c": fmt_q(&c)}),
    );
    data.insert("discriminant".into(), json!(fmt_q(&disc)));
    data.insert("discriminant_decimal".into(), json_f64(&disc));
    let f = |x: Option<f64>| {
        x.and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number)
    };
    let input_shown = shorten(input, 80);
    let d_shown = fmt_q(&disc);
    let summary;
    if disc.is_zero() {
        data.insert("status".into(), json!("double"));
        data.insert(
            "roots".into(),
            json!([{"exact": fmt_q(&center), "decimal": json_f64(&center)}]),
        );
        data.insert("solutions".into(), json!([fmt_q(&center)]));
        summary = format!(
            "{input_shown}: {name} = {} (a double root; discriminant 0)",
            with_decimal(&center)
        );
    } else if disc.is_positive() && r.is_one() {
        let step = &half;
        let (x1, x2) = (&center - step, &center + step);
        data.insert("status".into(), json!("two_rational"));
        data.insert(
            "roots".into(),
            json!([
                {"exact": fmt_q(&x1), "decimal": json_f64(&x1)},
                {"exact": fmt_q(&x2), "decimal": json_f64(&x2)},
            ]),
        );
        data.insert("solutions".into(), json!([fmt_q(&x1), fmt_q(&x2)]));
        summary = format!(
            "{input_shown}: {name} = {} or {name} = {} (discriminant {d_shown})",
            with_decimal(&x1),
            with_decimal(&x2)
        );
    } else if disc.is_positive() {
        let lo = fmt_pm(&center, &half, &r, false, "-");
        let hi = fmt_pm(&center, &half, &r, false, "+");
        let both = fmt_pm(&center, &half, &r, false, "±");
        let (lo_f, hi_f) = match (center_f, half_f) {
            (Some(cf), Some(hf)) => (Some(cf - hf), Some(cf + hf)),
            _ => (None, None),
        };
        data.insert("status".into(), json!("two_irrational"));
        data.insert("closed_form".into(), json!(both));
        data.insert(
            "roots".into(),
            json!([
                {"exact": lo, "decimal": f(lo_f)},
                {"exact": hi, "decimal": f(hi_f)},
            ]),
        );
        data.insert("solutions".into(), json!([lo, hi]));
        let approx = match (lo_f, hi_f) {
            (Some(l), Some(h)) => format!(" ≈ {} or {}", fmt_f64(l), fmt_f64(h)),
            _ => String::new(),
        };
        summary = format!(
            "{input_shown}: {name} = {both}{approx} (discriminant {d_shown}, not a perfect square)"
        );
    } else {
        let lo = fmt_pm(&center, &half, &r, true, "-");
        let hi = fmt_pm(&center, &half, &r, true, "+");
        let both = fmt_pm(&center, &half, &r, true, "±");
        let im = fmt_surd(&half, &r, false);
        data.insert("status".into(), json!("complex"));
        data.insert("closed_form".into(), json!(both));
        data.insert(
            "roots".into(),
            json!([
                {"exact": lo, "re": fmt_q(&center), "im": format!("-{im}"),
                 "re_decimal": f(center_f), "im_decimal": f(half_f.map(|h| -h))},
                {"exact": hi, "re": fmt_q(&center), "im": im,
                 "re_decimal": f(center_f), "im_decimal": f(half_f)},
            ]),
        );
        data.insert("solutions".into(), json!([lo, hi]));
        let approx = match (center_f, half_f) {
            (Some(c), Some(h)) if !r.is_one() => {
                format!(" ≈ {} ± {}i", fmt_f64(c), fmt_f64(h))
            }
            _ => String::new(),
        };
        summary = format!(
            "{input_shown}: no real solution; complex roots {name} = {both}{approx} \
             (discriminant {d_shown} < 0)"
        );
    }
    PartAnalysis {
        kind: "equation",
        summary,
        data: Value::Object(data),
    }
}

/// Linear equations in any number of unknowns, by exact elimination.
fn linear_system(
    inputs: Vec<String>,
    polys: &[Poly],
    used: &[usize],
    names: &[String],
) -> Result<PartAnalysis, PartError> {
    let n = used.len();
    let rows: Vec<Vec<BigRational>> = polys
        .iter()
        .map(|p| {
            let mut row: Vec<BigRational> = used.iter().map(|&v| p.coef(&[(v, 1)])).collect();
            row.push(-p.coef(&[]));
            row
        })
        .collect();
    let ints = to_int_rows(&rows);
    let red = eliminate(ints.rows, n, true)?;
    let rank = red.rank();
    let vars: Vec<&str> = used.iter().map(|&v| names[v].as_str()).collect();
    let kind = if polys.len() > 1 {
        "system"
    } else if n == 0 {
        "constant"
    } else {
        "linear"
    };
    let poly_refs: Vec<&Poly> = polys.iter().collect();
    let mut data = base_data(kind, &inputs, &poly_refs, &vars, names);
    data.insert("rank".into(), json!(rank));
    let shown_inputs = shorten(&inputs.join(", "), 120);
    let inconsistent = red.m[rank..].iter().any(|row| !row[n].is_zero());
    let summary = if inconsistent {
        data.insert("status".into(), json!("none"));
        data.insert("solution".into(), Value::Null);
        if n == 0 {
            format!("{shown_inputs}: never true, so there is no solution")
        } else if polys.len() == 1 {
            format!("{shown_inputs}: no solution")
        } else {
            format!("{shown_inputs}: no solution (the equations are inconsistent)")
        }
    } else if rank == n && n > 0 {
        let mut exact = Map::new();
        let mut decimal = Map::new();
        let mut parts = Vec::new();
        for (i, &c) in red.pivots.iter().enumerate() {
            let x = BigRational::new(red.m[i][n].clone(), red.m[i][c].clone());
            exact.insert(vars[c].to_string(), json!(fmt_q(&x)));
            decimal.insert(vars[c].to_string(), json_f64(&x));
            parts.push(format!("{} = {}", vars[c], with_decimal(&x)));
        }
        data.insert("status".into(), json!("unique"));
        data.insert("solution".into(), Value::Object(exact));
        data.insert("solution_decimal".into(), Value::Object(decimal));
        format!("{shown_inputs}: {}", parts.join(", "))
    } else if n == 0 {
        data.insert("status".into(), json!("all"));
        data.insert("solution".into(), Value::Null);
        format!("{shown_inputs}: always true")
    } else {
        let pivot_set: BTreeSet<usize> = red.pivots.iter().copied().collect();
        let free: Vec<usize> = (0..n).filter(|j| !pivot_set.contains(j)).collect();
        let mut general = Map::new();
        let mut parts = Vec::new();
        for (i, &c) in red.pivots.iter().enumerate() {
            let p = &red.m[i][c];
            let mut terms = Vec::new();
            let constant = BigRational::new(red.m[i][n].clone(), p.clone());
            if !constant.is_zero() {
                terms.push((constant, String::new()));
            }
            for &j in &free {
                let q = BigRational::new(-red.m[i][j].clone(), p.clone());
                if !q.is_zero() {
                    terms.push((q, vars[j].to_string()));
                }
            }
            let expr = join_terms(&terms);
            parts.push(format!("{} = {expr}", vars[c]));
            general.insert(vars[c].to_string(), json!(expr));
        }
        let free_names: Vec<&str> = free.iter().map(|&j| vars[j]).collect();
        data.insert("status".into(), json!("infinite"));
        data.insert("solution".into(), Value::Null);
        data.insert("general_solution".into(), Value::Object(general));
        data.insert("free_variables".into(), json!(free_names));
        let free_text = format!(
            "{} {}",
            free_names.join(", "),
            if free_names.len() == 1 {
                "is free"
            } else {
                "are free"
            }
        );
        if parts.is_empty() {
            format!(
                "{shown_inputs}: always true: every value of {} is a solution",
                free_names.join(", ")
            )
        } else {
            format!(
                "{shown_inputs}: infinitely many solutions: {} ({free_text})",
                parts.join(", ")
            )
        }
    };
    Ok(PartAnalysis {
        kind: "equation",
        summary,
        data: Value::Object(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: Value) -> Result<PartAnalysis, PartError> {
        analyze(&v, &PartLimits::default())
    }

    fn ok(v: Value) -> PartAnalysis {
        match run(v.clone()) {
            Ok(a) => a,
            Err(e) => panic!("{v}: {e}"),
        }
    }

    #[test]
    fn linear_equation() {
        let a = ok(json!("2x + 3 = 7"));
        assert_eq!(a.kind, "equation");
        assert_eq!(a.data["type"], "linear");
        assert_eq!(a.data["solution"]["x"], "2");
        assert_eq!(a.data["normalized"], "2x - 4 = 0");
        assert_eq!(a.summary, "2x + 3 = 7: x = 2");
        let a = ok(json!("3y = 7"));
        assert_eq!(a.data["solution"]["y"], "7/3");
        assert_eq!(a.summary, "3y = 7: y = 7/3 ≈ 2.33333");
        assert_eq!(
            ok(json!("2(x + 1) = x/2 - 3")).data["solution"]["x"],
            "-10/3"
        );
        assert_eq!(ok(json!("0.5x = 0.1")).data["solution"]["x"], "1/5");
        assert_eq!(ok(json!("-x = 4")).data["solution"]["x"], "-4");
        assert_eq!(ok(json!("2*x − 1 = x + 1")).data["solution"]["x"], "2");
        assert_eq!(ok(json!("x1 + 1 = 0")).data["solution"]["x1"], "-1");
        assert_eq!(ok(json!("(x + 1)^2 = x^2 + 5")).data["solution"]["x"], "2");
    }

    #[test]
    fn quadratic_with_rational_roots() {
        let a = ok(json!("x^2 - 5x + 6"));
        assert_eq!(a.data["type"], "quadratic");
        assert_eq!(a.data["status"], "two_rational");
        assert_eq!(a.data["solutions"], json!(["2", "3"]));
        assert_eq!(a.data["discriminant"], "1");
        assert_eq!(a.summary, "x^2 - 5x + 6: x = 2 or x = 3 (discriminant 1)");
        let a = ok(json!({"type": "quadratic", "coefficients": [1, -5, 6]}));
        assert_eq!(a.data["solutions"], json!(["2", "3"]));
        assert_eq!(a.data["input"], "x^2 - 5x + 6 = 0");
        let a = ok(json!("x² = 2x - 1"));
        assert_eq!(a.data["status"], "double");
        assert_eq!(a.data["solutions"], json!(["1"]));
        let a = ok(json!("4x^2 = 1"));
        assert_eq!(a.data["solutions"], json!(["-1/2", "1/2"]));
    }

    #[test]
    fn quadratic_with_irrational_roots() {
        let a = ok(json!("x^2 - 2 = 0"));
        assert_eq!(a.data["status"], "two_irrational");
        assert_eq!(a.data["closed_form"], "±√2");
        assert_eq!(a.data["solutions"], json!(["-√2", "√2"]));
        let r = a.data["roots"][1]["decimal"].as_f64().unwrap();
        assert!((r - std::f64::consts::SQRT_2).abs() < 1e-12);
        assert!(
            a.summary.contains("x = ±√2 ≈ -1.41421 or 1.41421"),
            "{}",
            a.summary
        );
        let a = ok(json!("x^2 - x - 1 = 0"));
        assert_eq!(a.data["closed_form"], "(1 ± √5)/2");
        assert_eq!(a.data["solutions"], json!(["(1 - √5)/2", "(1 + √5)/2"]));
        let a = ok(json!({"a": 2, "b": 4, "c": -1}));
        // (-4 ± √24)/4 = -1 ± √6/2 = (-2 ± √6)/2
        assert_eq!(a.data["closed_form"], "(-2 ± √6)/2");
        let a = ok(json!("x^2 - 8 = 0"));
        assert_eq!(a.data["closed_form"], "±2√2");
    }

    #[test]
    fn quadratic_with_complex_roots() {
        let a = ok(json!("x^2 + 1 = 0"));
        assert_eq!(a.data["status"], "complex");
        assert_eq!(a.data["closed_form"], "±i");
        assert_eq!(a.data["solutions"], json!(["-i", "i"]));
        assert_eq!(a.data["roots"][1]["im_decimal"], 1.0);
        assert_eq!(a.data["discriminant"], "-4");
        assert!(a.summary.contains("no real solution"), "{}", a.summary);
        let a = ok(json!("x^2 + 2x + 5 = 0"));
        assert_eq!(a.data["closed_form"], "-1 ± 2i");
        assert_eq!(a.data["roots"][0]["re"], "-1");
        assert_eq!(a.data["roots"][0]["im"], "-2");
        let a = ok(json!("2x^2 + 1 = 0"));
        assert_eq!(a.data["closed_form"], "±i√2/2");
    }

    #[test]
    fn two_by_two_system() {
        let a = ok(json!(["x + y = 3", "x - y = 1"]));
        assert_eq!(a.data["type"], "system");
        assert_eq!(a.data["status"], "unique");
        assert_eq!(a.data["solution"], json!({"x": "2", "y": "1"}));
        assert_eq!(a.summary, "x + y = 3, x - y = 1: x = 2, y = 1");
        let b = ok(json!({"system": [[1, 1, 3], [1, -1, 1]]}));
        assert_eq!(b.data["solution"], json!({"x": "2", "y": "1"}));
        assert_eq!(b.data["input"], json!(["x + y = 3", "x - y = 1"]));
        let c = ok(json!("x + y = 3; x - y = 1"));
        assert_eq!(c.data["solution"], a.data["solution"]);
        let d = ok(json!("x + y = 3, x - y = 1"));
        assert_eq!(d.data["solution"], a.data["solution"]);
        let e = ok(json!({"system": [[2, 1, 1], [1, 3, 2]], "variables": ["a", "b"]}));
        assert_eq!(e.data["solution"], json!({"a": "1/5", "b": "3/5"}));
    }

    #[test]
    fn three_unknowns_need_pivoting() {
        let a = ok(json!(["y + z = 5", "x + z = 4", "x + y = 3"]));
        assert_eq!(a.data["solution"], json!({"x": "1", "y": "2", "z": "3"}));
        let a = ok(json!({"system": [[0, 0, 1, 3], [0, 2, 0, 4], [5, 0, 0, 5]]}));
        assert_eq!(a.data["solution"], json!({"x": "1", "y": "2", "z": "3"}));
    }

    #[test]
    fn inconsistent_and_dependent_systems() {
        let a = ok(json!(["x + y = 1", "2x + 2y = 3"]));
        assert_eq!(a.data["status"], "none");
        assert!(a.summary.contains("no solution"), "{}", a.summary);
        let a = ok(json!({"system": [[1, 1, 1], [2, 2, 3]]}));
        assert_eq!(a.data["status"], "none");
        let a = ok(json!(["x + y = 2", "2x + 2y = 4"]));
        assert_eq!(a.data["status"], "infinite");
        assert_eq!(a.data["general_solution"], json!({"x": "2 - y"}));
        assert_eq!(a.data["free_variables"], json!(["y"]));
        assert!(a.summary.contains("infinitely many"), "{}", a.summary);
        let a = ok(json!("y = 2x + 1"));
        assert_eq!(a.data["status"], "infinite");
        assert_eq!(a.data["general_solution"], json!({"y": "1 + 2x"}));
        let a = ok(json!("x + 1 = x + 2"));
        assert_eq!(a.data["status"], "none");
        let a = ok(json!("2 + 2 = 4"));
        assert_eq!(a.data["status"], "all");
        let a = ok(json!("x = x"));
        assert_eq!(a.data["status"], "all");
    }

    #[test]
    fn coefficient_forms() {
        let a = ok(json!({"type": "linear", "coefficients": [2, -4]}));
        assert_eq!(a.data["solution"]["x"], "2");
        let a = ok(json!({"type": "quadratic", "coefficients": [0, 2, -4], "variable": "t"}));
        assert_eq!(a.data["type"], "linear");
        assert_eq!(a.data["solution"]["t"], "2");
        let a = ok(json!({"coefficients": ["1/2", 0, "-2"]}));
        assert_eq!(a.data["solutions"], json!(["-2", "2"]));
        let kind = |v: Value| run(v).unwrap_err().kind();
        assert_eq!(
            kind(json!({"type": "linear", "coefficients": [1, 2, 3]})),
            "invalid"
        );
        assert_eq!(
            kind(json!({"type": "cubic", "coefficients": [1, 2, 3, 4]})),
            "unsupported"
        );
        assert_eq!(kind(json!({"coefficients": [1, "x"]})), "invalid");
        assert_eq!(kind(json!({"coefficients": [1]})), "invalid");
    }

    #[test]
    fn bad_equations_are_rejected() {
        let kind = |v: Value| run(v).unwrap_err().kind();
        assert_eq!(kind(json!("sin(x) = 0")), "invalid");
        assert_eq!(kind(json!("x + = 2")), "invalid");
        assert_eq!(kind(json!("x = 1 = 2")), "invalid");
        assert_eq!(kind(json!("(x + 1 = 2")), "invalid");
        assert_eq!(kind(json!("x + 1) = 2")), "invalid");
        assert_eq!(kind(json!("x $ 2")), "invalid");
        assert_eq!(kind(json!("")), "invalid");
        assert_eq!(kind(json!("2 + 2")), "invalid");
        assert_eq!(kind(json!("x / 0 = 1")), "invalid");
        assert_eq!(kind(json!("1/x = 2")), "unsupported");
        assert_eq!(kind(json!("x^3 = 8")), "unsupported");
        assert_eq!(kind(json!("x^-1 = 8")), "unsupported");
        assert_eq!(kind(json!("x^0.5 = 8")), "unsupported");
        assert_eq!(kind(json!("x*y = 2")), "unsupported");
        assert_eq!(kind(json!(["x + y = 2", "x^2 = y"])), "unsupported");
        assert_eq!(kind(json!("x < 3")), "unsupported");
        assert_eq!(kind(json!("x^2^2^2 = 1")), "unsupported");
        assert_eq!(
            kind(json!(format!("{}x{} = 1", "(".repeat(40), ")".repeat(40)))),
            "too_large"
        );
        assert_eq!(kind(json!("((((9^8)^8)^8)^8) = x")), "too_large");
        assert_eq!(kind(json!("x".repeat(3000))), "too_large");
        assert_eq!(kind(json!("xxx = 1")), "invalid");
        assert_eq!(kind(json!(format!("x = {}", "9".repeat(70)))), "too_large");
        assert_eq!(kind(json!(42)), "invalid");
        assert_eq!(kind(json!({"foo": 1})), "invalid");
        assert_eq!(kind(json!({"system": [[1, 2], [3]]})), "invalid");
        assert_eq!(kind(json!({"system": [[1], [3]]})), "invalid");
        assert_eq!(
            kind(json!({"system": [[1, 2]], "variables": ["x", "x"]})),
            "invalid"
        );
        let many: Vec<String> = (0..21).map(|i| format!("x + {i} = y")).collect();
        assert_eq!(kind(json!(many)), "too_large");
        let e = run(json!("2x + 3 = 7 +")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid input: the equation ends too early: expected a number or an unknown at the \
             end (position 13)"
        );
        let e = run(json!(["x + y = 1", "x +* y = 2"])).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid input: equation 2: "),
            "{e}"
        );
    }
}
