//! Expressions in one variable with exact rational constants, and their
//! simplification into a canonical form: sums of terms with like terms
//! collected, products with like bases merged, constants folded.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use std::collections::BTreeMap;

use super::print::show;
use crate::math::MathError;

/// Most nodes an expression may grow to (a derivative of a product of many
/// factors grows quadratically).
pub(super) const MAX_NODES: usize = 5_000;

/// An elementary function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Func {
    Sin,
    Cos,
    Tan,
    Exp,
    Ln,
    Abs,
    Atan,
}

impl Func {
    pub(super) fn name(self) -> &'static str {
        match self {
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Tan => "tan",
            Func::Exp => "exp",
            Func::Ln => "ln",
            Func::Abs => "abs",
            Func::Atan => "atan",
        }
    }
}

/// An expression. `Neg` is a product with `-1`, `a / b` a product with `b^-1`,
/// `sqrt(a)` is `a^(1/2)`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Num(BigRational),
    /// The variable.
    Var,
    Pi,
    E,
    Add(Vec<Expr>),
    Mul(Vec<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Call(Func, Box<Expr>),
}

pub(super) fn int(n: i64) -> Expr {
    Expr::Num(BigRational::from_integer(n.into()))
}

pub(super) fn num(q: BigRational) -> Expr {
    Expr::Num(q)
}

impl Expr {
    pub(super) fn pow(self, e: Expr) -> Expr {
        Expr::Pow(Box::new(self), Box::new(e))
    }

    pub(super) fn call(f: Func, a: Expr) -> Expr {
        Expr::Call(f, Box::new(a))
    }

    pub(super) fn neg(self) -> Expr {
        Expr::Mul(vec![int(-1), self])
    }

    pub(super) fn as_num(&self) -> Option<&BigRational> {
        match self {
            Expr::Num(q) => Some(q),
            _ => None,
        }
    }

    pub(super) fn is_zero(&self) -> bool {
        self.as_num().is_some_and(Zero::is_zero)
    }

    /// Whether the variable occurs.
    pub(super) fn has_var(&self) -> bool {
        match self {
            Expr::Var => true,
            Expr::Num(_) | Expr::Pi | Expr::E => false,
            Expr::Add(v) | Expr::Mul(v) => v.iter().any(Expr::has_var),
            Expr::Pow(b, e) => b.has_var() || e.has_var(),
            Expr::Call(_, a) => a.has_var(),
        }
    }

    pub(super) fn nodes(&self) -> usize {
        1 + match self {
            Expr::Add(v) | Expr::Mul(v) => v.iter().map(Expr::nodes).sum(),
            Expr::Pow(b, e) => b.nodes() + e.nodes(),
            Expr::Call(_, a) => a.nodes(),
            _ => 0,
        }
    }

    /// The most factors of any product in the expression.
    pub(super) fn widest_product(&self) -> usize {
        match self {
            Expr::Mul(v) => v
                .iter()
                .map(Expr::widest_product)
                .max()
                .unwrap_or(0)
                .max(v.len()),
            Expr::Add(v) => v.iter().map(Expr::widest_product).max().unwrap_or(0),
            Expr::Pow(b, e) => b.widest_product().max(e.widest_product()),
            Expr::Call(_, a) => a.widest_product(),
            _ => 0,
        }
    }

    /// The value at `x`, in floating point.
    pub(super) fn eval(&self, x: f64) -> f64 {
        match self {
            Expr::Num(q) => q.to_f64().unwrap_or(f64::NAN),
            Expr::Var => x,
            Expr::Pi => std::f64::consts::PI,
            Expr::E => std::f64::consts::E,
            Expr::Add(v) => v.iter().map(|t| t.eval(x)).sum(),
            Expr::Mul(v) => v.iter().map(|t| t.eval(x)).product(),
            Expr::Pow(b, e) => b.eval(x).powf(e.eval(x)),
            Expr::Call(f, a) => {
                let a = a.eval(x);
                match f {
                    Func::Sin => a.sin(),
                    Func::Cos => a.cos(),
                    Func::Tan => a.tan(),
                    Func::Exp => a.exp(),
                    Func::Ln => a.ln(),
                    Func::Abs => a.abs(),
                    Func::Atan => a.atan(),
                }
            }
        }
    }

    /// The polynomial's coefficients, lowest degree first, if it is one
    /// (of degree at most `max_degree`).
    pub(super) fn poly(&self, max_degree: usize) -> Option<Vec<BigRational>> {
        let p = match self {
            Expr::Num(q) => vec![q.clone()],
            Expr::Var => vec![BigRational::zero(), BigRational::one()],
            Expr::Pi | Expr::E | Expr::Call(..) => return None,
            Expr::Add(v) => {
                let mut acc = vec![BigRational::zero()];
                for t in v {
                    let p = t.poly(max_degree)?;
                    if p.len() > acc.len() {
                        acc.resize(p.len(), BigRational::zero());
                    }
                    for (a, b) in acc.iter_mut().zip(p) {
                        *a += b;
                    }
                }
                acc
            }
            Expr::Mul(v) => {
                let mut acc = vec![BigRational::one()];
                for t in v {
                    acc = poly_mul(&acc, &t.poly(max_degree)?);
                    if acc.len() > max_degree + 1 {
                        return None;
                    }
                }
                acc
            }
            Expr::Pow(b, e) => {
                let k = e.as_num()?;
                if !k.is_integer() || k.is_negative() {
                    return None;
                }
                let k = k.to_integer().to_usize()?;
                let base = b.poly(max_degree)?;
                if (base.len().saturating_sub(1)).saturating_mul(k) > max_degree {
                    return None;
                }
                let mut acc = vec![BigRational::one()];
                for _ in 0..k {
                    acc = poly_mul(&acc, &base);
                }
                acc
            }
        };
        let mut p = p;
        while p.len() > 1 && p.last().is_some_and(Zero::is_zero) {
            p.pop();
        }
        (p.len() <= max_degree + 1).then_some(p)
    }
}

fn poly_mul(a: &[BigRational], b: &[BigRational]) -> Vec<BigRational> {
    let mut out = vec![BigRational::zero(); a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// `Σ cₖ xᵏ` as an expression.
pub(super) fn from_poly(c: &[BigRational]) -> Expr {
    let terms = c
        .iter()
        .enumerate()
        .filter(|(_, q)| !q.is_zero())
        .map(|(k, q)| match k {
            0 => num(q.clone()),
            1 => Expr::Mul(vec![num(q.clone()), Expr::Var]),
            k => Expr::Mul(vec![num(q.clone()), Expr::Var.pow(int(k as i64))]),
        })
        .collect();
    Expr::Add(terms)
}

/// The canonical form of `e`; an error when it grows past [`MAX_NODES`].
pub(super) fn simplify(e: Expr) -> Result<Expr, MathError> {
    let s = simp(e);
    if s.nodes() > MAX_NODES {
        return Err(MathError::limit(format!(
            "the result has more than {MAX_NODES} terms and factors"
        )));
    }
    Ok(s)
}

fn simp(e: Expr) -> Expr {
    match e {
        Expr::Add(v) => add(v.into_iter().map(simp).collect()),
        Expr::Mul(v) => mul(v.into_iter().map(simp).collect()),
        Expr::Pow(b, x) => power(simp(*b), simp(*x)),
        Expr::Call(f, a) => call(f, simp(*a)),
        other => other,
    }
}

/// A term as `coefficient × rest` (rest `None` for a number).
fn split_coef(t: Expr) -> (BigRational, Option<Expr>) {
    match t {
        Expr::Num(q) => (q, None),
        Expr::Mul(mut v) if matches!(v.first(), Some(Expr::Num(_))) => {
            let Expr::Num(q) = v.remove(0) else {
                unreachable!("checked above")
            };
            let rest = match v.len() {
                1 => v.remove(0),
                _ => Expr::Mul(v),
            };
            (q, Some(rest))
        }
        other => (BigRational::one(), Some(other)),
    }
}

/// The degree of a term in the variable, for ordering sums (highest first).
fn degree(t: &Expr) -> BigRational {
    match t {
        Expr::Var => BigRational::one(),
        Expr::Pow(b, e) if **b == Expr::Var => e.as_num().cloned().unwrap_or_else(BigRational::one),
        Expr::Mul(v) => v.iter().map(degree).fold(BigRational::zero(), |a, b| a + b),
        _ => BigRational::zero(),
    }
}

fn add(terms: Vec<Expr>) -> Expr {
    let mut flat = Vec::new();
    for t in terms {
        match t {
            Expr::Add(inner) => flat.extend(inner),
            t => flat.push(t),
        }
    }
    let mut constant = BigRational::zero();
    // Like terms by their printed form, in first-seen order.
    let mut like: Vec<(String, BigRational, Expr)> = Vec::new();
    for t in flat {
        match split_coef(t) {
            (q, None) => constant += q,
            (q, Some(rest)) => {
                let key = show(&rest);
                match like.iter_mut().find(|(k, _, _)| *k == key) {
                    Some((_, c, _)) => *c += q,
                    None => like.push((key, q, rest)),
                }
            }
        }
    }
    let mut out: Vec<Expr> = like
        .into_iter()
        .filter(|(_, c, _)| !c.is_zero())
        .map(|(_, c, rest)| {
            if c.is_one() {
                rest
            } else {
                mul(vec![num(c), rest])
            }
        })
        .collect();
    out.sort_by_key(|t| std::cmp::Reverse(degree(t)));
    if !constant.is_zero() {
        out.push(num(constant));
    }
    match out.len() {
        0 => int(0),
        1 => out.remove(0),
        _ => Expr::Add(out),
    }
}

/// The order of factors in a product: variable powers, then the rest.
fn factor_rank(f: &Expr) -> u8 {
    match f {
        Expr::Var => 0,
        Expr::Pow(b, _) if **b == Expr::Var => 0,
        Expr::Pi | Expr::E => 1,
        Expr::Pow(b, _) if !b.has_var() => 1,
        Expr::Add(_) => 2,
        Expr::Pow(b, _) if matches!(**b, Expr::Add(_)) => 2,
        _ => 3,
    }
}

fn mul(factors: Vec<Expr>) -> Expr {
    let mut flat = Vec::new();
    for f in factors {
        match f {
            Expr::Mul(inner) => flat.extend(inner),
            f => flat.push(f),
        }
    }
    let mut coef = BigRational::one();
    // Like bases by their printed form: their exponents add up.
    let mut bases: BTreeMap<String, (Expr, Vec<Expr>)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for f in flat {
        let (base, exp) = match f {
            Expr::Num(q) => {
                coef *= q;
                continue;
            }
            Expr::Pow(b, e) => (*b, *e),
            f => (f, int(1)),
        };
        let key = show(&base);
        if !bases.contains_key(&key) {
            order.push(key.clone());
        }
        bases
            .entry(key)
            .or_insert_with(|| (base, Vec::new()))
            .1
            .push(exp);
    }
    if coef.is_zero() {
        return int(0);
    }
    let mut out = Vec::new();
    for key in order {
        let Some((base, exps)) = bases.remove(&key) else {
            continue;
        };
        match power(base, add(exps)) {
            Expr::Num(q) => coef *= q,
            Expr::Mul(inner) => out.extend(inner),
            f => out.push(f),
        }
    }
    // Merging may have produced numbers (x·x^-1 = 1, 2·2^-1).
    out.retain(|f| match f {
        Expr::Num(q) => {
            coef *= q;
            false
        }
        _ => true,
    });
    out.sort_by_key(factor_rank);
    if !coef.is_one() || out.is_empty() {
        out.insert(0, num(coef));
    }
    match out.len() {
        1 => out.remove(0),
        _ => Expr::Mul(out),
    }
}

fn power(b: Expr, e: Expr) -> Expr {
    if e.is_zero() {
        return int(1);
    }
    if e.as_num().is_some_and(One::is_one) {
        return b;
    }
    match (b, e) {
        (Expr::Num(q), Expr::Num(k))
            if k.is_integer() && k.abs() <= BigRational::from_integer(64.into()) =>
        {
            let k = k.to_integer().to_i32().unwrap_or(0);
            if q.is_zero() && k < 0 {
                return Expr::Num(q).pow(int(k.into()));
            }
            num(q.pow(k))
        }
        (Expr::Num(q), Expr::Num(_)) if q.is_one() => int(1),
        // (b^m)^k = b^(m·k) for a whole k.
        (Expr::Pow(bb, m), Expr::Num(k)) if k.is_integer() => power(*bb, mul(vec![*m, num(k)])),
        // (a·b)^k = a^k · b^k for a whole k.
        (Expr::Mul(fs), Expr::Num(k)) if k.is_integer() => {
            mul(fs.into_iter().map(|f| power(f, num(k.clone()))).collect())
        }
        (Expr::E, x) => call(Func::Exp, x),
        (b, e) => b.pow(e),
    }
}

fn call(f: Func, a: Expr) -> Expr {
    let zero = a.is_zero();
    match (f, a) {
        (Func::Sin | Func::Tan | Func::Atan, _) if zero => int(0),
        (Func::Cos | Func::Exp, _) if zero => int(1),
        (Func::Ln, Expr::Num(q)) if q.is_one() => int(0),
        (Func::Ln, Expr::E) => int(1),
        (Func::Ln, Expr::Call(Func::Exp, x)) => *x,
        (Func::Exp, Expr::Call(Func::Ln, x)) => *x,
        (Func::Abs, Expr::Num(q)) => num(q.abs()),
        (f, a) => Expr::call(f, a),
    }
}

/// `p/q` as a rational (both small integers).
pub(super) fn ratio(p: i64, q: i64) -> Expr {
    num(BigRational::new(BigInt::from(p), BigInt::from(q)))
}
