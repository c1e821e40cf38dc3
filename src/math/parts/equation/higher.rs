//! Polynomials of degree 3 and up in one unknown: every rational root by the
//! rational root theorem (exact, with multiplicities), the quadratic left
//! after dividing them out solved exactly, and the real roots of any larger
//! factor without rational roots given as decimals.

use std::time::Duration;

use num_bigint::{BigInt, BigUint};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use serde_json::{json, Value};

use super::format::{fmt_poly_eq, with_decimal};
use super::poly::Poly;
use super::quadratic::quadratic;
use super::solve::base_data;
use crate::math::budget::{Budget, Progress};
use crate::math::parts::rational::{fmt_q, json_f64, to_f64};
use crate::math::parts::{fmt_f64, shorten, PartAnalysis, PartError};
use crate::math::primes::factorize;

/// Largest leading or constant coefficient (after clearing denominators)
/// whose divisors are searched: its factorization must be quick.
const MAX_SEARCHED: u64 = 1_000_000_000_000_000;
/// Most candidate roots `±p/q` tried.
const MAX_CANDIDATES: usize = 20_000;

/// Coefficients, lowest degree first.
type Coefs = Vec<BigRational>;

/// `aₙxⁿ + … + a₀ = 0` with `n ≥ 3`.
pub(super) fn polynomial(
    input: &str,
    p: &Poly,
    v: usize,
    names: &[String],
) -> Result<PartAnalysis, PartError> {
    let degree = p.degree();
    let mut rest: Coefs = (0..=degree)
        .map(|k| match k {
            0 => p.coef(&[]),
            k => p.coef(&[(v, k)]),
        })
        .collect();
    let name = names[v].as_str();
    let mut roots: Vec<(BigRational, u32)> = Vec::new();
    let push = |r: BigRational, roots: &mut Vec<(BigRational, u32)>| match roots
        .iter_mut()
        .find(|(x, _)| *x == r)
    {
        Some((_, m)) => *m += 1,
        None => roots.push((r, 1)),
    };
    // x = 0 first: it is where the theorem's constant term vanishes.
    while rest.len() > 1 && rest[0].is_zero() {
        rest.remove(0);
        push(BigRational::zero(), &mut roots);
    }
    for r in candidates(&rest, input)? {
        while rest.len() > 1 && eval(&rest, &r).is_zero() {
            rest = deflate(&rest, &r);
            push(r.clone(), &mut roots);
        }
    }
    roots.sort_by(|a, b| a.0.cmp(&b.0));

    let mut data = base_data("polynomial", &[input.to_string()], &[p], &[name], names);
    data.insert("degree".into(), json!(degree));
    let mut exact: Vec<Value> = roots
        .iter()
        .map(|(r, m)| json!({"exact": fmt_q(r), "decimal": json_f64(r), "multiplicity": m}))
        .collect();
    let mut solutions: Vec<String> = roots.iter().map(|(r, _)| fmt_q(r)).collect();
    let mut shown: Vec<String> = roots.iter().map(|(r, m)| root_text(name, r, *m)).collect();
    let factors = factor_text(name, &roots, &rest, names, v);
    data.insert("factored".into(), json!(factors));

    let remaining = rest.len() - 1;
    let mut note = String::new();
    let status = if remaining == 0 {
        "all_rational"
    } else if remaining == 2 {
        // What is left is a quadratic without rational roots: surds or complex.
        let q = quadratic(input, &to_poly(&rest, v), v, names);
        let closed = q.data.get("closed_form").cloned().unwrap_or(Value::Null);
        if let Some(Value::Array(more)) = q.data.get("roots") {
            exact.extend(more.iter().cloned());
        }
        if let Some(Value::Array(more)) = q.data.get("solutions") {
            solutions.extend(more.iter().filter_map(Value::as_str).map(String::from));
        }
        let complex = q.data.get("status").and_then(Value::as_str) == Some("complex");
        let closed = closed.as_str().unwrap_or_default();
        shown.push(format!("{name} = {closed}"));
        if complex {
            note = " (two of them complex)".into();
        }
        if roots.is_empty() {
            "no_rational"
        } else {
            "partly_rational"
        }
    } else {
        let approx = real_roots(&rest);
        let factor = fmt_poly_eq(&to_poly(&rest, v), names);
        let factor = factor.trim_end_matches(" = 0");
        let listed: Vec<String> = approx.iter().map(|x| fmt_f64(*x)).collect();
        for x in &approx {
            exact.push(json!({"decimal": x, "exact": Value::Null}));
        }
        data.insert("irreducible_factor".into(), json!(factor));
        note = match listed.len() {
            0 => format!("; {factor} has no rational and no real roots"),
            _ => format!(
                "; {factor} has no rational roots, its real roots are ≈ {}",
                listed.join(", ")
            ),
        };
        if roots.is_empty() {
            "no_rational"
        } else {
            "partly_rational"
        }
    };
    data.insert("status".into(), json!(status));
    data.insert("roots".into(), Value::Array(exact));
    data.insert("solutions".into(), json!(solutions));
    let answer = match shown.len() {
        0 => "no rational root".to_string(),
        1 => shown.remove(0),
        n => format!("{} or {}", shown[..n - 1].join(", "), shown[n - 1]),
    };
    Ok(PartAnalysis {
        kind: "equation",
        summary: format!("{}: {answer}{note}", shorten(input, 80)),
        data: Value::Object(data),
    })
}

/// `x = 2`, `x = 1/2 ≈ 0.5`, `x = 1 (twice)`.
fn root_text(name: &str, r: &BigRational, multiplicity: u32) -> String {
    let times = match multiplicity {
        1 => String::new(),
        2 => " (twice)".into(),
        m => format!(" ({m} times)"),
    };
    format!("{name} = {}{times}", with_decimal(r))
}

/// `(x - 1)(x + 2)^2(x^2 + 1)`, with the leading coefficient in front.
fn factor_text(
    name: &str,
    roots: &[(BigRational, u32)],
    rest: &Coefs,
    names: &[String],
    v: usize,
) -> String {
    let mut lead = rest.last().cloned().unwrap_or_else(BigRational::one);
    let mut out = String::new();
    for (r, m) in roots {
        // A root p/q is the factor (q·x - p), q taken from the leading coefficient.
        let q = BigRational::from_integer(r.denom().clone());
        lead /= q.pow(*m as i32);
        let p = r.numer();
        let qx = if r.denom().is_one() {
            name.to_string()
        } else {
            format!("{}{name}", r.denom())
        };
        let f = match p.sign() {
            num_bigint::Sign::NoSign => name.to_string(),
            num_bigint::Sign::Plus => format!("({qx} - {p})"),
            num_bigint::Sign::Minus => format!("({qx} + {})", p.abs()),
        };
        out.push_str(&f);
        if *m > 1 {
            out.push_str(&format!("^{m}"));
        }
    }
    if rest.len() > 1 {
        let monic: Coefs = rest
            .iter()
            .map(|c| c / rest[rest.len() - 1].clone())
            .collect();
        let text = fmt_poly_eq(&to_poly(&monic, v), names);
        out.push_str(&format!("({})", text.trim_end_matches(" = 0")));
    }
    let lead = match lead {
        l if l.is_one() => String::new(),
        l if l == -BigRational::one() => "-".into(),
        l if l.is_integer() => fmt_q(&l),
        l => format!("({})", fmt_q(&l)),
    };
    format!("{lead}{out}")
}

/// Every `±p/q` with `p | a₀` and `q | aₙ`, for the coefficients made whole.
fn candidates(c: &Coefs, input: &str) -> Result<Vec<BigRational>, PartError> {
    if c.len() < 2 {
        return Ok(Vec::new());
    }
    let ints = whole(c);
    let (Some(lo), Some(hi)) = (ints.first(), ints.last()) else {
        return Ok(Vec::new());
    };
    let too_large = || {
        PartError::Unsupported(format!(
            "'{}' has coefficients too large to search for rational roots (the constant and leading \
             terms must be at most {MAX_SEARCHED} once whole)",
            shorten(input, 60)
        ))
    };
    let small = |n: &BigInt| {
        n.magnitude()
            .to_u64()
            .filter(|&m| m <= MAX_SEARCHED)
            .ok_or_else(too_large)
    };
    let (ps, qs) = (divisors(small(lo)?), divisors(small(hi)?));
    if ps.len().saturating_mul(qs.len()).saturating_mul(2) > MAX_CANDIDATES {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(ps.len() * qs.len() * 2);
    for p in &ps {
        for q in &qs {
            if p.gcd(q) == 1 {
                let r = BigRational::new(BigInt::from(*p), BigInt::from(*q));
                out.push(-r.clone());
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// The coefficients times the lcm of their denominators.
fn whole(c: &Coefs) -> Vec<BigInt> {
    let l = c.iter().fold(BigInt::one(), |l, q| l.lcm(q.denom()));
    c.iter()
        .map(|q| (q * BigRational::from_integer(l.clone())).to_integer())
        .collect()
}

/// The positive divisors of `n ≥ 1`, ascending.
fn divisors(n: u64) -> Vec<u64> {
    // Below 10^15 the u64 path of `factorize` (Pollard rho) takes microseconds.
    let budget = Budget::new(Duration::from_secs(1));
    let mut sink = |_: String| {};
    let mut progress = Progress::new(&mut sink);
    let Ok(factors) = factorize(&BigUint::from(n), &budget, &mut progress) else {
        return vec![1];
    };
    let mut out = vec![1u64];
    for (p, e) in factors {
        let p = p.to_u64().unwrap_or(1);
        let before = out.clone();
        let mut power = 1u64;
        for _ in 0..e {
            power = power.saturating_mul(p);
            out.extend(before.iter().map(|d| d.saturating_mul(power)));
        }
    }
    out.sort_unstable();
    out
}

/// The polynomial's value at `x` (Horner).
fn eval(c: &Coefs, x: &BigRational) -> BigRational {
    c.iter()
        .rev()
        .fold(BigRational::zero(), |acc, a| acc * x + a)
}

/// The quotient of the polynomial by `(x - r)`, `r` a root.
fn deflate(c: &Coefs, r: &BigRational) -> Coefs {
    let n = c.len() - 1;
    let mut q = vec![BigRational::zero(); n];
    let mut carry = BigRational::zero();
    for k in (1..=n).rev() {
        carry = carry * r + &c[k];
        q[k - 1] = carry.clone();
    }
    q
}

fn to_poly(c: &Coefs, v: usize) -> Poly {
    let mut p = Poly::default();
    for (k, q) in c.iter().enumerate().filter(|(_, q)| !q.is_zero()) {
        let mono = match k {
            0 => Vec::new(),
            k => vec![(v, k as u32)],
        };
        p.0.insert(mono, q.clone());
    }
    p
}

/// The real roots of a polynomial without rational roots, as decimals:
/// sign changes on a fine grid inside Cauchy's bound, then bisection.
fn real_roots(c: &Coefs) -> Vec<f64> {
    let f: Vec<f64> = c.iter().map(|q| to_f64(q).unwrap_or(f64::NAN)).collect();
    let Some(&lead) = f.last() else {
        return Vec::new();
    };
    if f.iter().any(|x| !x.is_finite()) || lead == 0.0 {
        return Vec::new();
    }
    let bound = 1.0
        + f[..f.len() - 1]
            .iter()
            .map(|a| (a / lead).abs())
            .fold(0.0, f64::max);
    let at = |x: f64| f.iter().rev().fold(0.0, |acc, a| acc * x + a);
    const STEPS: usize = 20_000;
    let step = 2.0 * bound / STEPS as f64;
    let mut out = Vec::new();
    let mut x0 = -bound;
    let mut y0 = at(x0);
    for i in 1..=STEPS {
        let x1 = -bound + step * i as f64;
        let y1 = at(x1);
        if y0.signum() != y1.signum() {
            let (mut a, mut b, mut ya) = (x0, x1, y0);
            for _ in 0..200 {
                let m = 0.5 * (a + b);
                let ym = at(m);
                if ym.signum() == ya.signum() {
                    (a, ya) = (m, ym);
                } else {
                    b = m;
                }
            }
            out.push(0.5 * (a + b));
        }
        (x0, y0) = (x1, y1);
    }
    out
}
