//! Quadratics in one unknown: rational, irrational (surds) and complex roots.

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};
use serde_json::{json, Value};

use super::format::with_decimal;
use super::poly::Poly;
use super::solve::base_data;
use crate::math::parts::rational::{fmt_q, json_f64, split_square, to_f64};
use crate::math::parts::{fmt_f64, shorten, PartAnalysis};

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
pub(super) fn quadratic(input: &str, p: &Poly, v: usize, names: &[String]) -> PartAnalysis {
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
