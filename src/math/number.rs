//! The numeric type: exact integers (with an `i64` fast path), exact
//! rationals, and `f64` for irrational results; plus formatting.

use std::cmp::Ordering;
use std::fmt;

use num_bigint::{BigInt, BigUint};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::MathError;

const LOG10_2: f64 = std::f64::consts::LOG10_2;

/// Significant digits shown for inexact results.
const SIG_DIGITS: usize = 15;

/// Terminating decimals with more fractional digits than this are rounded instead.
const MAX_EXACT_DECIMALS: u64 = 30;

/// A number. Invariants: `Big` never fits an `i64`, `Rat` never has denominator 1,
/// `Float` is always finite.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Big(BigInt),
    Rat(BigRational),
    Float(f64),
}

/// `floor(log10(|n|))`-ish: log10 of a non-zero big magnitude, accurate for any size.
pub(crate) fn log10_big(n: &BigUint) -> f64 {
    let bits = n.bits();
    if bits <= 1000 {
        return n.to_f64().map_or(f64::INFINITY, f64::log10);
    }
    let shift = bits - 64;
    let top = (n >> shift).to_u64().unwrap_or(u64::MAX);
    (top as f64).log10() + shift as f64 * LOG10_2
}

/// Number of decimal digits of `|n|` (1 for zero). Exact.
pub(crate) fn decimal_digits(n: &BigInt) -> usize {
    if n.is_zero() {
        return 1;
    }
    // The estimate from the bit length is off by at most one; settle it exactly.
    let est = (log10_big(n.magnitude()).floor() as u64 + 1) as u32;
    let lower = BigUint::from(10u32).pow(est.saturating_sub(1));
    if n.magnitude() < &lower {
        (est - 1) as usize
    } else if n.magnitude() >= &(lower * 10u32) {
        est as usize + 1
    } else {
        est as usize
    }
}

/// Rejects a result of about `digits` decimal digits when it exceeds the limit.
pub(crate) fn check_digits(digits: f64, max_digits: usize, what: &str) -> Result<(), MathError> {
    if digits > max_digits as f64 {
        Err(MathError::limit(format!(
            "{what} would have about {} digits; the maximum is {max_digits}",
            fmt_count(digits)
        )))
    } else {
        Ok(())
    }
}

/// Formats a (possibly huge) digit count estimate without scientific notation noise.
fn fmt_count(digits: f64) -> String {
    if digits < 1e18 {
        format!("{}", digits.floor() as u64)
    } else {
        format!("{digits:e}")
    }
}

fn pow10(k: u64) -> BigUint {
    BigUint::from(10u32).pow(k as u32)
}

impl Num {
    /// Normalizes a big integer.
    pub(crate) fn from_big(b: BigInt) -> Num {
        match b.to_i64() {
            Some(i) => Num::Int(i),
            None => Num::Big(b),
        }
    }

    /// Normalizes a (reduced) rational.
    pub(crate) fn from_ratio(r: BigRational) -> Num {
        if r.denom().is_one() {
            Num::from_big(r.to_integer())
        } else {
            Num::Rat(r)
        }
    }

    /// A float result; NaN and infinities become domain errors.
    pub(crate) fn float(f: f64) -> Result<Num, MathError> {
        if f.is_finite() {
            Ok(Num::Float(f))
        } else if f.is_nan() {
            Err(MathError::domain(
                "the result is undefined (not a real number)",
            ))
        } else {
            Err(MathError::domain(
                "the result is too large to represent as a floating-point number",
            ))
        }
    }

    pub(crate) fn is_zero(&self) -> bool {
        match self {
            Num::Int(i) => *i == 0,
            Num::Big(_) | Num::Rat(_) => false,
            Num::Float(f) => *f == 0.0,
        }
    }

    pub(crate) fn is_negative(&self) -> bool {
        match self {
            Num::Int(i) => *i < 0,
            Num::Big(b) => b.is_negative(),
            Num::Rat(r) => r.is_negative(),
            Num::Float(f) => *f < 0.0,
        }
    }

    pub(crate) fn is_float(&self) -> bool {
        matches!(self, Num::Float(_))
    }

    /// The value as a big integer if it is an integer (floats only when integral and < 2^63).
    pub(crate) fn integer_value(&self) -> Option<BigInt> {
        match self {
            Num::Int(i) => Some(BigInt::from(*i)),
            Num::Big(b) => Some(b.clone()),
            Num::Rat(_) => None,
            Num::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(BigInt::from(*f as i64)),
            Num::Float(_) => None,
        }
    }

    fn to_big(&self) -> Option<BigInt> {
        match self {
            Num::Int(i) => Some(BigInt::from(*i)),
            Num::Big(b) => Some(b.clone()),
            _ => None,
        }
    }

    fn to_ratio(&self) -> Option<BigRational> {
        match self {
            Num::Int(i) => Some(BigRational::from_integer(BigInt::from(*i))),
            Num::Big(b) => Some(BigRational::from_integer(b.clone())),
            Num::Rat(r) => Some(r.clone()),
            Num::Float(_) => None,
        }
    }

    /// Nearest `f64` (infinite when out of range).
    pub(crate) fn to_f64(&self) -> f64 {
        match self {
            Num::Int(i) => *i as f64,
            Num::Big(b) => b.to_f64().unwrap_or(f64::NAN),
            Num::Rat(r) => r.to_f64().unwrap_or(f64::NAN),
            Num::Float(f) => *f,
        }
    }

    /// Like [`Num::to_f64`] but an error when the value is out of `f64` range.
    pub(crate) fn to_f64_checked(&self) -> Result<f64, MathError> {
        let f = self.to_f64();
        if f.is_finite() {
            Ok(f)
        } else {
            Err(MathError::domain(
                "the number is too large for a floating-point function",
            ))
        }
    }

    /// Natural logarithm of a positive value, accurate even beyond `f64` range.
    pub(crate) fn ln_positive(&self) -> f64 {
        let ln10 = std::f64::consts::LN_10;
        match self {
            Num::Int(i) => (*i as f64).ln(),
            Num::Big(b) => log10_big(b.magnitude()) * ln10,
            Num::Rat(r) => {
                (log10_big(r.numer().magnitude()) - log10_big(r.denom().magnitude())) * ln10
            }
            Num::Float(f) => f.ln(),
        }
    }

    /// log10 of the absolute value of the largest exact component (numerator or
    /// denominator); used to estimate the size of powers. Zero for floats.
    fn size_log10(&self) -> f64 {
        match self {
            Num::Int(i) => (i.unsigned_abs() as f64).log10().max(0.0),
            Num::Big(b) => log10_big(b.magnitude()),
            Num::Rat(r) => log10_big(r.numer().magnitude())
                .max(0.0)
                .max(log10_big(r.denom().magnitude())),
            Num::Float(_) => 0.0,
        }
    }

    pub(crate) fn neg(&self) -> Num {
        match self {
            Num::Int(i) => match i.checked_neg() {
                Some(n) => Num::Int(n),
                None => Num::Big(-BigInt::from(*i)),
            },
            Num::Big(b) => Num::from_big(-b),
            Num::Rat(r) => Num::Rat(-r),
            Num::Float(f) => Num::Float(-f),
        }
    }

    pub(crate) fn abs(&self) -> Num {
        if self.is_negative() {
            self.neg()
        } else {
            self.clone()
        }
    }

    pub(crate) fn add(&self, o: &Num) -> Result<Num, MathError> {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => Ok(match a.checked_add(*b) {
                Some(c) => Num::Int(c),
                None => Num::from_big(BigInt::from(*a) + *b),
            }),
            _ if self.is_float() || o.is_float() => Num::float(self.to_f64() + o.to_f64()),
            _ => exact(self, o, |a, b| a + b, |a, b| a + b),
        }
    }

    pub(crate) fn sub(&self, o: &Num) -> Result<Num, MathError> {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => Ok(match a.checked_sub(*b) {
                Some(c) => Num::Int(c),
                None => Num::from_big(BigInt::from(*a) - *b),
            }),
            _ if self.is_float() || o.is_float() => Num::float(self.to_f64() - o.to_f64()),
            _ => exact(self, o, |a, b| a - b, |a, b| a - b),
        }
    }

    pub(crate) fn mul(&self, o: &Num, max_digits: usize) -> Result<Num, MathError> {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => {
                if let Some(c) = a.checked_mul(*b) {
                    return Ok(Num::Int(c));
                }
                Ok(Num::from_big(BigInt::from(*a) * *b))
            }
            _ if self.is_float() || o.is_float() => Num::float(self.to_f64() * o.to_f64()),
            _ => {
                if !self.is_zero() && !o.is_zero() {
                    // The product has at least this many digits (numerators multiply).
                    let digits = (self.size_log10() + o.size_log10()).floor() + 1.0;
                    check_digits(digits, max_digits, "the product")?;
                }
                exact(self, o, |a, b| a * b, |a, b| a * b)
            }
        }
    }

    pub(crate) fn div(&self, o: &Num) -> Result<Num, MathError> {
        if o.is_zero() {
            return Err(MathError::DivisionByZero);
        }
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => {
                if let (Some(0), Some(q)) = (a.checked_rem(*b), a.checked_div(*b)) {
                    return Ok(Num::Int(q));
                }
                Ok(Num::from_ratio(BigRational::new(
                    BigInt::from(*a),
                    BigInt::from(*b),
                )))
            }
            _ if self.is_float() || o.is_float() => Num::float(self.to_f64() / o.to_f64()),
            _ => {
                if let (Some(a), Some(b)) = (self.to_big(), o.to_big()) {
                    // Long integers: an exact quotient needs no gcd.
                    let (q, r) = a.div_rem(&b);
                    if r.is_zero() {
                        return Ok(Num::from_big(q));
                    }
                }
                check_fraction(self, o)?;
                match (self.to_ratio(), o.to_ratio()) {
                    (Some(a), Some(b)) => Ok(Num::from_ratio(a / b)),
                    _ => Num::float(self.to_f64() / o.to_f64()),
                }
            }
        }
    }

    /// Floored modulo: the result has the sign of the divisor (`-7 mod 3 = 2`).
    pub(crate) fn rem(&self, o: &Num) -> Result<Num, MathError> {
        if o.is_zero() {
            return Err(MathError::DivisionByZero);
        }
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => Ok(Num::Int(match a.checked_rem(*b) {
                Some(r) if r != 0 && ((r < 0) != (*b < 0)) => r + b,
                Some(r) => r,
                None => 0, // i64::MIN % -1
            })),
            _ if self.is_float() || o.is_float() => {
                let (a, b) = (self.to_f64(), o.to_f64());
                Num::float(a - b * (a / b).floor())
            }
            _ => match (self.to_big(), o.to_big()) {
                (Some(a), Some(b)) => Ok(Num::from_big(a.mod_floor(&b))),
                _ => match (self.to_ratio(), o.to_ratio()) {
                    (Some(a), Some(b)) => {
                        check_fraction(self, o)?;
                        let q = (&a / &b).floor();
                        Ok(Num::from_ratio(a - b * q))
                    }
                    _ => Err(MathError::domain("modulo of these values is not defined")),
                },
            },
        }
    }

    /// `self ^ e`. Exact for exact bases with integer exponents (size-checked
    /// before computing) and for exact roots (`8^(1/3) = 2`); floats otherwise.
    pub(crate) fn pow(&self, e: &Num, max_digits: usize) -> Result<Num, MathError> {
        match e {
            Num::Int(k) => self.powi(*k, max_digits),
            Num::Big(k) => self.pow_huge(k),
            Num::Rat(r) => self.pow_ratio(r, max_digits),
            Num::Float(x) => {
                if x.fract() == 0.0 && x.abs() < 9.2e18 && !self.is_float() {
                    return self.powi(*x as i64, max_digits);
                }
                let b = self.to_f64_checked()?;
                if b < 0.0 && x.fract() != 0.0 {
                    return Err(MathError::domain(
                        "a negative number raised to a fractional power is not a real number",
                    ));
                }
                if b == 0.0 && *x < 0.0 {
                    return Err(MathError::DivisionByZero);
                }
                Num::float(b.powf(*x))
            }
        }
    }

    fn pow_huge(&self, k: &BigInt) -> Result<Num, MathError> {
        let odd = k.is_odd();
        match self {
            _ if self.is_zero() => {
                if k.is_negative() {
                    Err(MathError::DivisionByZero)
                } else {
                    Ok(Num::Int(0))
                }
            }
            Num::Int(1) => Ok(Num::Int(1)),
            Num::Int(-1) => Ok(Num::Int(if odd { -1 } else { 1 })),
            Num::Float(b) => Num::float(b.powf(k.to_f64().unwrap_or(f64::INFINITY))),
            _ => Err(MathError::limit(format!(
                "the exponent {k} is too large; the result would be astronomically large"
            ))),
        }
    }

    fn powi(&self, k: i64, max_digits: usize) -> Result<Num, MathError> {
        if let Num::Float(b) = self {
            if *b == 0.0 && k < 0 {
                return Err(MathError::DivisionByZero);
            }
            return Num::float(b.powf(k as f64));
        }
        if k == 0 {
            return Ok(Num::Int(1));
        }
        if self.is_zero() {
            return if k < 0 {
                Err(MathError::DivisionByZero)
            } else {
                Ok(Num::Int(0))
            };
        }
        match self {
            Num::Int(1) => return Ok(Num::Int(1)),
            Num::Int(-1) => return Ok(Num::Int(if k % 2 == 0 { 1 } else { -1 })),
            _ => {}
        }
        let digits = (k.unsigned_abs() as f64 * self.size_log10()).floor() + 1.0;
        check_digits(digits, max_digits, "the power")?;
        let ku = u32::try_from(k.unsigned_abs())
            .map_err(|_| MathError::limit(format!("the exponent {k} is too large")))?;
        let magnitude = match self {
            Num::Int(b) => match b.checked_pow(ku) {
                Some(p) => Num::Int(p),
                None => Num::Big(BigInt::from(*b).pow(ku)),
            },
            Num::Big(b) => Num::Big(b.pow(ku)),
            Num::Rat(r) => Num::Rat(BigRational::new_raw(r.numer().pow(ku), r.denom().pow(ku))),
            Num::Float(_) => unreachable!("handled above"),
        };
        if k > 0 {
            Ok(magnitude)
        } else {
            Num::Int(1).div(&magnitude)
        }
    }

    /// `self ^ (p/q)` for a non-integer rational exponent.
    pub(crate) fn pow_ratio(&self, r: &BigRational, max_digits: usize) -> Result<Num, MathError> {
        let (p, q) = (r.numer().to_i64(), r.denom().to_u32());
        if let (Some(p), Some(q)) = (p, q) {
            if self.is_negative() && q % 2 == 0 {
                return Err(MathError::domain(format!(
                    "an even root of a negative number ({self}) is not a real number"
                )));
            }
            if q <= 64 {
                if let Some(root) = self.exact_root(q) {
                    return root.powi(p, max_digits);
                }
            }
            let b = self.to_f64_checked()?;
            let x = p as f64 / q as f64;
            if b < 0.0 {
                // Odd root of a negative number: real, with sign from p.
                let m = (-b).powf(x);
                return Num::float(if p % 2 == 0 { m } else { -m });
            }
            if b == 0.0 && x < 0.0 {
                return Err(MathError::DivisionByZero);
            }
            return Num::float(b.powf(x));
        }
        let b = self.to_f64_checked()?;
        let x = r.to_f64().unwrap_or(f64::NAN);
        if b < 0.0 {
            return Err(MathError::domain(
                "a negative number raised to a fractional power is not a real number",
            ));
        }
        Num::float(b.powf(x))
    }

    /// The exact `q`-th root, if the value is exact and a perfect power.
    pub(crate) fn exact_root(&self, q: u32) -> Option<Num> {
        if q == 0 || (q % 2 == 0 && self.is_negative()) {
            return None; // `nth_root` panics on these
        }
        let root_int = |n: &BigInt| -> Option<BigInt> {
            let r = n.nth_root(q);
            if &r.pow(q) == n {
                Some(r)
            } else {
                None
            }
        };
        match self {
            Num::Int(_) | Num::Big(_) => {
                self.to_big().and_then(|b| root_int(&b)).map(Num::from_big)
            }
            Num::Rat(r) => {
                let n = root_int(r.numer())?;
                let d = root_int(r.denom())?;
                Some(Num::from_ratio(BigRational::new(n, d)))
            }
            Num::Float(_) => None,
        }
    }

    /// Compares values (exactly when both are exact).
    pub(crate) fn cmp_value(&self, o: &Num) -> Ordering {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => a.cmp(b),
            _ => match (self.to_ratio(), o.to_ratio()) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => self
                    .to_f64()
                    .partial_cmp(&o.to_f64())
                    .unwrap_or(Ordering::Equal),
            },
        }
    }

    pub(crate) fn floor(&self) -> Num {
        match self {
            Num::Rat(r) => Num::from_ratio(r.floor()),
            Num::Float(f) => float_to_int(f.floor()),
            _ => self.clone(),
        }
    }

    pub(crate) fn ceil(&self) -> Num {
        match self {
            Num::Rat(r) => Num::from_ratio(r.ceil()),
            Num::Float(f) => float_to_int(f.ceil()),
            _ => self.clone(),
        }
    }

    /// Rounds half away from zero.
    pub(crate) fn round(&self) -> Num {
        match self {
            Num::Rat(r) => Num::from_ratio(r.round()),
            Num::Float(f) => float_to_int(f.round()),
            _ => self.clone(),
        }
    }
}

/// An integral float as an exact integer when it fits an `i64`.
fn float_to_int(f: f64) -> Num {
    if f.abs() < 9.2e18 {
        Num::Int(f as i64)
    } else {
        Num::Float(f)
    }
}

/// Most digits of a fraction's operands together: reducing a fraction costs
/// the square of its length (a gcd), so this bounds one step to a few
/// milliseconds. Integers are bounded by `max_result_digits` only.
pub(crate) const MAX_FRACTION_DIGITS: usize = 10_000;

/// Refuses an operation on fractions whose result would be too long to reduce.
fn check_fraction(a: &Num, b: &Num) -> Result<(), MathError> {
    check_digits(
        a.size_log10() + b.size_log10(),
        MAX_FRACTION_DIGITS,
        "the exact fraction",
    )
}

/// Applies an exact operation: on integers when both are integers, else on rationals.
fn exact(
    a: &Num,
    b: &Num,
    int_op: impl FnOnce(BigInt, BigInt) -> BigInt,
    rat_op: impl FnOnce(BigRational, BigRational) -> BigRational,
) -> Result<Num, MathError> {
    if let (Some(x), Some(y)) = (a.to_big(), b.to_big()) {
        return Ok(Num::from_big(int_op(x, y)));
    }
    check_fraction(a, b)?;
    match (a.to_ratio(), b.to_ratio()) {
        (Some(x), Some(y)) => Ok(Num::from_ratio(rat_op(x, y))),
        _ => unreachable!("exact() is only called on exact numbers"),
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Big(b) => write!(f, "{b}"),
            Num::Rat(r) => f.write_str(&format_ratio(r)),
            Num::Float(x) => f.write_str(&format_float(*x)),
        }
    }
}

/// A rational as a decimal: exact when it terminates within
/// [`MAX_EXACT_DECIMALS`] places, otherwise rounded to [`SIG_DIGITS`] significant digits.
fn format_ratio(r: &BigRational) -> String {
    let neg = r.is_negative();
    let n = r.numer().magnitude();
    let d = r.denom().magnitude();
    // Terminating iff the denominator is 2^a * 5^b.
    let twos = d.trailing_zeros().unwrap_or(0);
    let mut rest = d >> twos;
    let mut fives = 0u64;
    let five = BigUint::from(5u32);
    while fives <= MAX_EXACT_DECIMALS {
        let (q, rm) = rest.div_rem(&five);
        if !rm.is_zero() {
            break;
        }
        rest = q;
        fives += 1;
    }
    let places = twos.max(fives);
    if rest.is_one() && places <= MAX_EXACT_DECIMALS {
        let scaled = n * pow10(places) / d;
        let mut digits = scaled.to_string();
        let places = places as usize;
        if digits.len() <= places {
            digits = format!("{}{digits}", "0".repeat(places + 1 - digits.len()));
        }
        let (int, frac) = digits.split_at(digits.len() - places);
        let frac = frac.trim_end_matches('0');
        let sign = if neg { "-" } else { "" };
        return if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        };
    }
    let (digits, exp) = round_significant(n, d);
    layout(neg, digits.trim_end_matches('0'), exp)
}

/// Rounds `n / d` (positive) to [`SIG_DIGITS`] significant digits, half up.
/// Returns the digits and the decimal exponent of the first digit.
fn round_significant(n: &BigUint, d: &BigUint) -> (String, i64) {
    let sig = SIG_DIGITS as i64;
    let upper = pow10(SIG_DIGITS as u64);
    let lower = pow10(SIG_DIGITS as u64 - 1);
    let mut e = (log10_big(n) - log10_big(d)).floor() as i64;
    for _ in 0..4 {
        let shift = sig - 1 - e;
        let (num, den) = if shift >= 0 {
            (n * pow10(shift as u64), d.clone())
        } else {
            (n.clone(), d * pow10(shift.unsigned_abs()))
        };
        let (q, r) = num.div_rem(&den);
        let rounded = if r * 2u32 >= den { q + 1u32 } else { q };
        if rounded >= upper {
            e += 1;
        } else if rounded < lower {
            e -= 1;
        } else {
            return (rounded.to_string(), e);
        }
    }
    // Unreachable in practice: the estimate is off by at most one.
    ("0".to_string(), 0)
}

/// A finite float rounded to [`SIG_DIGITS`] significant digits.
fn format_float(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let s = format!("{:.*e}", SIG_DIGITS - 1, x.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp: i64 = exp.parse().unwrap_or(0);
    layout(x < 0.0, digits.trim_end_matches('0'), exp)
}

/// Places a decimal point in `digits` (first digit has exponent `exp`);
/// scientific notation below 1e-6 and from 1e15 on.
fn layout(neg: bool, digits: &str, exp: i64) -> String {
    let mut out = String::with_capacity(digits.len() + 8);
    if neg {
        out.push('-');
    }
    let digits = if digits.is_empty() { "0" } else { digits };
    if !(-6..15).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&exp.unsigned_abs().to_string());
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(digits);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(i: i64) -> Num {
        Num::Int(i)
    }

    fn ratio(n: i64, d: i64) -> Num {
        Num::from_ratio(BigRational::new(n.into(), d.into()))
    }

    #[test]
    fn formats_integers_and_ratios() {
        assert_eq!(int(-42).to_string(), "-42");
        assert_eq!(ratio(7, 4).to_string(), "1.75");
        assert_eq!(ratio(1, 3).to_string(), "0.333333333333333");
        assert_eq!(ratio(2, 3).to_string(), "0.666666666666667");
        assert_eq!(ratio(-1, 8).to_string(), "-0.125");
        assert_eq!(ratio(1, 20).to_string(), "0.05");
        assert_eq!(ratio(22, 7).to_string(), "3.14285714285714");
        assert_eq!(ratio(1, 3_000_000_000).to_string(), "3.33333333333333e-10");
        let big = Num::from_ratio(BigRational::new(BigInt::from(10).pow(30), 3.into()));
        assert_eq!(big.to_string(), "3.33333333333333e+29");
        assert_eq!(
            ratio(1_999_999_999_999_999, 2_000_000_000_000_000).to_string(),
            "0.9999999999999995"
        );
    }

    #[test]
    fn formats_floats() {
        assert_eq!(Num::Float(2f64.sqrt()).to_string(), "1.4142135623731");
        assert_eq!(Num::Float(0.1 + 0.2).to_string(), "0.3");
        assert_eq!(Num::Float(-2.5).to_string(), "-2.5");
        assert_eq!(Num::Float(1e20).to_string(), "1e+20");
        assert_eq!(Num::Float(123456.0).to_string(), "123456");
        assert_eq!(Num::Float(1.5e-7).to_string(), "1.5e-7");
        assert_eq!(Num::Float(0.000001).to_string(), "0.000001");
        assert_eq!(Num::Float(-0.0).to_string(), "0");
    }

    #[test]
    fn small_int_arithmetic_overflows_into_bigint() {
        let max = int(i64::MAX);
        assert_eq!(max.add(&int(1)).unwrap().to_string(), "9223372036854775808");
        assert_eq!(int(i64::MIN).neg().to_string(), "9223372036854775808");
        assert_eq!(
            int(i64::MIN).div(&int(-1)).unwrap().to_string(),
            "9223372036854775808"
        );
        assert_eq!(int(i64::MIN).rem(&int(-1)).unwrap(), int(0));
        assert_eq!(
            max.mul(&max, 100).unwrap().to_string(),
            "85070591730234615847396907784232501249"
        );
        assert_eq!(max.add(&int(1)).unwrap().sub(&int(1)).unwrap(), max);
    }

    #[test]
    fn floored_modulo() {
        assert_eq!(int(7).rem(&int(3)).unwrap(), int(1));
        assert_eq!(int(-7).rem(&int(3)).unwrap(), int(2));
        assert_eq!(int(7).rem(&int(-3)).unwrap(), int(-2));
        assert_eq!(ratio(7, 2).rem(&int(2)).unwrap(), ratio(3, 2));
        assert_eq!(int(1).rem(&int(0)), Err(MathError::DivisionByZero));
    }

    #[test]
    fn powers() {
        assert_eq!(int(2).pow(&int(-2), 100).unwrap(), ratio(1, 4));
        assert_eq!(ratio(2, 3).pow(&int(2), 100).unwrap(), ratio(4, 9));
        assert_eq!(int(0).pow(&int(0), 100).unwrap(), int(1));
        assert_eq!(int(0).pow(&int(-1), 100), Err(MathError::DivisionByZero));
        assert_eq!(int(8).pow(&ratio(1, 3), 100).unwrap(), int(2));
        assert_eq!(int(-8).pow(&ratio(1, 3), 100).unwrap(), int(-2));
        assert_eq!(int(4).pow(&ratio(3, 2), 100).unwrap(), int(8));
        assert_eq!(ratio(1, 4).pow(&ratio(1, 2), 100).unwrap(), ratio(1, 2));
        assert!(int(-4).pow(&ratio(1, 2), 100).is_err());
        let e = int(10).pow(&int(200), 100).unwrap_err();
        assert!(e.is_limit(), "{e}");
        let huge = Num::from_big(BigInt::from(10).pow(30));
        assert_eq!(int(-1).pow(&huge, 100).unwrap(), int(1));
        assert!(int(2).pow(&huge, 100).unwrap_err().is_limit());
    }

    #[test]
    fn digit_counts() {
        assert_eq!(decimal_digits(&BigInt::from(0)), 1);
        assert_eq!(decimal_digits(&BigInt::from(999)), 3);
        assert_eq!(decimal_digits(&BigInt::from(1000)), 4);
        assert_eq!(decimal_digits(&BigInt::from(10).pow(500)), 501);
        assert_eq!(decimal_digits(&(BigInt::from(10).pow(500) - 1)), 500);
    }
}
