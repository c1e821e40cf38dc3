//! Polynomials and values as text: `x^2 - 5x + 6 = 0`, `7/3 ≈ 2.33333`.

use num_rational::BigRational;
use num_traits::{One, Signed};

use super::poly::{mono_degree, Mono, Poly};
use crate::math::parts::fmt_f64;
use crate::math::parts::rational::{fmt_q, to_f64};

pub(super) fn fmt_mono(m: &[(usize, u32)], names: &[String]) -> String {
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
pub(super) fn fmt_term(c: &BigRational, mono: &str) -> String {
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
pub(super) fn join_terms(terms: &[(BigRational, String)]) -> String {
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
pub(super) fn fmt_poly_eq(p: &Poly, names: &[String]) -> String {
    let mut terms: Vec<(&Mono, &BigRational)> = p.0.iter().collect();
    terms.sort_by(|a, b| mono_degree(b.0).cmp(&mono_degree(a.0)).then(a.0.cmp(b.0)));
    let terms: Vec<(BigRational, String)> = terms
        .into_iter()
        .map(|(m, c)| (c.clone(), fmt_mono(m, names)))
        .collect();
    format!("{} = 0", join_terms(&terms))
}

/// A value with its decimal approximation when not whole: `7/3 ≈ 2.33333`.
pub(super) fn with_decimal(q: &BigRational) -> String {
    match to_f64(q) {
        Some(f) if !q.is_integer() => format!("{} ≈ {}", fmt_q(q), fmt_f64(f)),
        _ => fmt_q(q),
    }
}
