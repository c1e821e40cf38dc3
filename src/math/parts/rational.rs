//! Exact rational numbers for the part analysers: parsing (JSON numbers and
//! numeric strings), formatting, and fraction-free Gauss–Jordan elimination
//! over the integers (used for determinants, ranks, inverses and linear systems).

use num_bigint::{BigInt, BigUint};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, ToPrimitive, Zero};
use serde_json::Value;

use super::PartError;

/// Longest numeric string accepted for one number (a JSON literal or a string entry).
pub(crate) const MAX_NUMBER_CHARS: usize = 64;
/// Largest decimal exponent accepted (`1e400`); covers the whole `f64` range.
pub(crate) const MAX_EXPONENT: i64 = 400;
/// Most bits the Hadamard bound allows for the minors met by forward
/// elimination (rank and determinant): about 4 900 decimal digits.
pub(crate) const MAX_FORWARD_BITS: u64 = 16_384;
/// Most bits the Hadamard bound allows for full Gauss–Jordan reduction
/// (inverses and linear systems), which does several times the work and
/// produces that many digits in every entry: about 920 decimal digits.
pub(crate) const MAX_JORDAN_BITS: u64 = 3_072;

/// Why a value is not an acceptable number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumError {
    /// Not a number at all.
    NotNumber,
    /// Longer than [`MAX_NUMBER_CHARS`] or an exponent beyond [`MAX_EXPONENT`].
    TooLong,
    /// A fraction with denominator zero.
    ZeroDenominator,
}

impl NumError {
    /// The error for a value at `place` ("row 2, column 3"), showing `shown`.
    pub(crate) fn at(self, place: &str, shown: &str) -> PartError {
        match self {
            NumError::NotNumber => {
                PartError::Invalid(format!("{place}: expected a number, found {shown}"))
            }
            NumError::TooLong => PartError::TooLarge(format!(
                "{place}: the number {shown} is too long (at most {MAX_NUMBER_CHARS} characters \
                 and exponents up to ±{MAX_EXPONENT})"
            )),
            NumError::ZeroDenominator => {
                PartError::Invalid(format!("{place}: {shown} divides by zero"))
            }
        }
    }
}

/// A short rendering of a JSON value for error messages.
pub(crate) fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let cut: String = s.chars().take(24).collect();
            if cut.len() < s.len() {
                format!("\"{cut}…\"")
            } else {
                format!("\"{cut}\"")
            }
        }
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
        other => other.to_string(),
    }
}

/// A JSON number or numeric string as an exact rational. Floats become their
/// shortest decimal representation (`0.1` → `1/10`), not their binary value.
pub(crate) fn from_json(v: &Value) -> Result<BigRational, NumError> {
    match v {
        Value::Number(n) => parse_rational(&n.to_string()),
        Value::String(s) => parse_rational(s),
        _ => Err(NumError::NotNumber),
    }
}

/// Parses `12`, `-3.5`, `+.5`, `1e-3`, `2.5E+4` or a fraction `-3/4`, `1.5/2`
/// exactly; surrounding whitespace is ignored.
pub(crate) fn parse_rational(s: &str) -> Result<BigRational, NumError> {
    let s = s.trim();
    if s.len() > MAX_NUMBER_CHARS {
        return Err(NumError::TooLong);
    }
    match s.split_once('/') {
        Some((n, d)) => {
            let n = parse_decimal(n.trim())?;
            let d = parse_decimal(d.trim())?;
            if d.is_zero() {
                return Err(NumError::ZeroDenominator);
            }
            Ok(n / d)
        }
        None => parse_decimal(s),
    }
}

/// Parses a decimal literal with optional sign, fraction and exponent.
pub(crate) fn parse_decimal(s: &str) -> Result<BigRational, NumError> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !all_digits(int) || !all_digits(frac) {
        return Err(NumError::NotNumber);
    }
    let mut exp: i64 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !all_digits(digits) {
                return Err(NumError::NotNumber);
            }
            if digits.len() > 6 {
                return Err(NumError::TooLong);
            }
            e.parse().map_err(|_| NumError::NotNumber)?
        }
    };
    let mut digits = String::with_capacity(int.len() + frac.len());
    digits.push_str(int);
    digits.push_str(frac);
    exp -= frac.len() as i64;
    let mut value: BigInt = digits.parse().map_err(|_| NumError::NotNumber)?;
    if value.is_zero() {
        return Ok(BigRational::zero());
    }
    // Significant digits decide the real magnitude: 0.000…01e400 is fine.
    let trailing = digits.trim_end_matches('0').len();
    let magnitude = exp + trailing as i64;
    if magnitude.abs() > MAX_EXPONENT + MAX_NUMBER_CHARS as i64 {
        return Err(NumError::TooLong);
    }
    if negative {
        value = -value;
    }
    let ten = BigInt::from(10u32);
    let scale = num_traits::pow(ten, exp.unsigned_abs() as usize);
    Ok(if exp >= 0 {
        BigRational::from_integer(value * scale)
    } else {
        BigRational::new(value, scale)
    })
}

/// An exact rational as text: `-2`, `3/5`, `-7/10`.
pub(crate) fn fmt_q(q: &BigRational) -> String {
    if q.denom().is_one() {
        q.numer().to_string()
    } else {
        format!("{}/{}", q.numer(), q.denom())
    }
}

/// The nearest `f64` (`None` when out of range).
pub(crate) fn to_f64(q: &BigRational) -> Option<f64> {
    q.to_f64().filter(|f| f.is_finite())
}

/// A decimal approximation as JSON (a number, or null when out of `f64` range).
pub(crate) fn json_f64(q: &BigRational) -> Value {
    to_f64(q)
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// Rows of rationals turned into rows of integers: `ints[i] = scales[i] * rows[i]`
/// (denominators cleared, then the gcd of the row divided out).
pub(crate) struct IntRows {
    pub(crate) rows: Vec<Vec<BigInt>>,
    pub(crate) scales: Vec<BigRational>,
}

/// Clears denominators row by row, see [`IntRows`].
pub(crate) fn to_int_rows(rows: &[Vec<BigRational>]) -> IntRows {
    let mut out = Vec::with_capacity(rows.len());
    let mut scales = Vec::with_capacity(rows.len());
    for row in rows {
        let lcm = row.iter().fold(BigInt::one(), |acc, q| acc.lcm(q.denom()));
        let ints: Vec<BigInt> = row.iter().map(|q| q.numer() * (&lcm / q.denom())).collect();
        let gcd = ints.iter().fold(BigInt::zero(), |acc, x| acc.gcd(x));
        let gcd = if gcd.is_zero() { BigInt::one() } else { gcd };
        out.push(ints.into_iter().map(|x| x / &gcd).collect());
        scales.push(BigRational::new(lcm, gcd));
    }
    IntRows { rows: out, scales }
}

/// An upper bound, in bits, of every minor of an integer matrix (Hadamard:
/// a minor is at most the product of its rows' norms).
pub(crate) fn hadamard_bits(rows: &[Vec<BigInt>]) -> u64 {
    let mut bits: u64 = 0;
    for row in rows {
        let max = row.iter().map(|x| x.bits()).max().unwrap_or(0);
        if max == 0 {
            continue;
        }
        // log2 of the row norm ≤ max bits + log2(len)/2.
        let len_bits = u64::from(usize::BITS - row.len().leading_zeros());
        bits = bits.saturating_add(max + len_bits.div_ceil(2));
    }
    bits
}

/// Rejects integer matrices whose minors could exceed `max_bits`.
pub(crate) fn check_hadamard(rows: &[Vec<BigInt>], max_bits: u64) -> Result<(), PartError> {
    let bits = hadamard_bits(rows);
    if bits > max_bits {
        return Err(PartError::TooLarge(format!(
            "the numbers are too large to compute with exactly: intermediate values could reach \
             {} decimal digits (the limit is {})",
            bits * 3 / 10,
            max_bits * 3 / 10
        )));
    }
    Ok(())
}

/// The result of [`eliminate`]: a reduced integer matrix in which every pivot
/// column is zero below its pivot row (and, after Gauss–Jordan, above it).
pub(crate) struct Reduced {
    /// The reduced matrix (rows permuted by the pivoting).
    pub(crate) m: Vec<Vec<BigInt>>,
    /// The pivot column of row `i`, for `i < rank`.
    pub(crate) pivots: Vec<usize>,
    /// How many row swaps were made (the sign of the determinant).
    pub(crate) swaps: usize,
}

impl Reduced {
    /// The number of pivots: the rank of the pivot-column block.
    pub(crate) fn rank(&self) -> usize {
        self.pivots.len()
    }
}

/// Fraction-free elimination (Bareiss): pivots are searched in the first
/// `pivot_cols` columns, and every update `(p·a − f·b) / prev` is an exact
/// integer division, so all entries stay minors of the input and no
/// fractions appear. With `jordan` the rows above each pivot are reduced too
/// (Gauss–Jordan); then every pivot row ends with the last pivot on its
/// diagonal. Either way the last pivot of a full-rank square block is ± its
/// determinant (the sign given by the number of swaps).
///
/// Fails with [`PartError::TooLarge`] when the Hadamard bound of the input
/// exceeds [`MAX_JORDAN_BITS`] (with `jordan`) or [`MAX_FORWARD_BITS`].
pub(crate) fn eliminate(
    mut m: Vec<Vec<BigInt>>,
    pivot_cols: usize,
    jordan: bool,
) -> Result<Reduced, PartError> {
    check_hadamard(
        &m,
        if jordan {
            MAX_JORDAN_BITS
        } else {
            MAX_FORWARD_BITS
        },
    )?;
    let rows = m.len();
    let cols = m.first().map_or(0, Vec::len);
    let mut prev = BigInt::one();
    let mut pivots = Vec::new();
    let mut swaps = 0;
    for c in 0..pivot_cols.min(cols) {
        let r = pivots.len();
        if r == rows {
            break;
        }
        let Some(p) = (r..rows).find(|&i| !m[i][c].is_zero()) else {
            continue;
        };
        if p != r {
            m.swap(p, r);
            swaps += 1;
        }
        let pivot_row = m[r].clone();
        let piv = &pivot_row[c];
        let first = if jordan { 0 } else { r + 1 };
        for (i, row) in m.iter_mut().enumerate().skip(first) {
            if i == r {
                continue;
            }
            let f = row[c].clone();
            // Forward elimination never needs the columns left of the pivot.
            let from = if jordan { 0 } else { c + 1 };
            for (j, x) in row.iter_mut().enumerate().skip(from) {
                if j == c {
                    continue;
                }
                let v = piv * &*x - &f * &pivot_row[j];
                let (q, rem) = v.div_rem(&prev);
                if !rem.is_zero() {
                    return Err(PartError::Invalid(
                        "internal error: inexact elimination step".to_string(),
                    ));
                }
                *x = q;
            }
            row[c] = BigInt::zero();
        }
        prev = piv.clone();
        pivots.push(c);
    }
    Ok(Reduced { m, pivots, swaps })
}

/// Splits `n` as `s² · r` with `r` free of small square factors (every prime
/// below 10 000, and the cofactor if it is a perfect square).
pub(crate) fn split_square(n: &BigUint) -> (BigUint, BigUint) {
    let root = n.sqrt();
    if &root * &root == *n {
        return (root, BigUint::one());
    }
    let mut rest = n.clone();
    let mut s = BigUint::one();
    let mut r = BigUint::one();
    let mut p: u32 = 2;
    while p < 10_000 {
        let pb = BigUint::from(p);
        if &pb * &pb > rest {
            break;
        }
        let mut e = 0u32;
        loop {
            let (q, rem) = rest.div_rem(&pb);
            if !rem.is_zero() {
                break;
            }
            rest = q;
            e += 1;
        }
        if e > 0 {
            s *= num_traits::pow(pb.clone(), (e / 2) as usize);
            if e % 2 == 1 {
                r *= &pb;
            }
        }
        p += if p == 2 { 1 } else { 2 };
    }
    let root = rest.sqrt();
    if &root * &root == rest {
        s *= root;
    } else {
        r *= rest;
    }
    (s, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    #[test]
    fn parses_numbers_exactly() {
        assert_eq!(from_json(&json!(0.1)), Ok(q(1, 10)));
        assert_eq!(from_json(&json!(1.0)), Ok(q(1, 1)));
        assert_eq!(from_json(&json!(-3)), Ok(q(-3, 1)));
        assert_eq!(from_json(&json!(" 2.5e-1 ")), Ok(q(1, 4)));
        assert_eq!(from_json(&json!("-3/4")), Ok(q(-3, 4)));
        assert_eq!(from_json(&json!("+.5")), Ok(q(1, 2)));
        assert_eq!(from_json(&json!(1e300)).map(|x| x.numer().bits()), Ok(997));
        assert_eq!(from_json(&json!("1/0")), Err(NumError::ZeroDenominator));
        for bad in [
            "", "abc", "1.2.3", "--1", "1e", "e5", ".", "1 2", "0x10", "NaN",
        ] {
            assert_eq!(from_json(&json!(bad)), Err(NumError::NotNumber), "{bad}");
        }
        assert_eq!(from_json(&json!("1e999")), Err(NumError::TooLong));
        assert_eq!(from_json(&json!("9".repeat(65))), Err(NumError::TooLong));
        assert_eq!(from_json(&json!(true)), Err(NumError::NotNumber));
    }

    #[test]
    fn formats_rationals() {
        assert_eq!(fmt_q(&q(-4, 2)), "-2");
        assert_eq!(fmt_q(&q(6, 10)), "3/5");
        assert_eq!(fmt_q(&q(7, -10)), "-7/10");
        assert_eq!(json_f64(&q(1, 4)), json!(0.25));
    }

    #[test]
    fn splits_squares() {
        let split = |n: u64| {
            let (s, r) = split_square(&BigUint::from(n));
            (s.to_u64().unwrap_or(0), r.to_u64().unwrap_or(0))
        };
        assert_eq!(split(8), (2, 2));
        assert_eq!(split(49), (7, 1));
        assert_eq!(split(13), (1, 13));
        assert_eq!(split(2 * 3 * 3 * 5 * 5 * 7), (15, 14));
        // A square of a prime above the trial-division bound.
        assert_eq!(split(3 * 10_007 * 10_007), (10_007, 3));
    }

    /// A small deterministic generator for property tests.
    fn lcg(seed: &mut u64) -> i64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) % 11) as i64 - 5
    }

    /// Plain rational Gauss–Jordan, for comparison.
    fn rational_rank(mut m: Vec<Vec<BigRational>>) -> usize {
        let (rows, cols) = (m.len(), m[0].len());
        let mut r = 0;
        for c in 0..cols {
            let Some(p) = (r..rows).find(|&i| !m[i][c].is_zero()) else {
                continue;
            };
            m.swap(p, r);
            let pivot_row = m[r].clone();
            for (i, row) in m.iter_mut().enumerate() {
                if i != r {
                    let f = &row[c] / &pivot_row[c];
                    for (x, p) in row.iter_mut().zip(&pivot_row) {
                        *x -= &f * p;
                    }
                }
            }
            r += 1;
        }
        r
    }

    #[test]
    fn elimination_is_exact_and_solves() {
        let mut seed = 7;
        for trial in 0..200 {
            let rows = 1 + trial % 5;
            let cols = 1 + (trial / 5) % 5;
            let mut m: Vec<Vec<BigInt>> = (0..rows)
                .map(|_| (0..cols).map(|_| BigInt::from(lcg(&mut seed))).collect())
                .collect();
            // Make some matrices rank deficient.
            if trial % 3 == 0 && rows > 1 {
                m[rows - 1] = m[0].iter().map(|x| x * 2).collect();
            }
            let qm: Vec<Vec<BigRational>> = m
                .iter()
                .map(|r| r.iter().cloned().map(BigRational::from_integer).collect())
                .collect();
            let rank = rational_rank(qm);
            let forward = eliminate(m.clone(), cols, false).expect("exact");
            assert_eq!(forward.rank(), rank, "{m:?}");
            let red = eliminate(m.clone(), cols, true).expect("exact");
            assert_eq!(red.rank(), rank, "{m:?}");
            // Pivot columns are cleared outside their pivot row.
            for (i, &c) in red.pivots.iter().enumerate() {
                for (k, row) in red.m.iter().enumerate() {
                    assert_eq!(row[c].is_zero(), k != i);
                }
            }
            // The same pivots, and the same last pivot (± the determinant).
            assert_eq!(forward.pivots, red.pivots);
            if rows == cols && rank == rows {
                assert_eq!(forward.m[rows - 1][cols - 1], red.m[rows - 1][cols - 1]);
            }
        }
    }

    #[test]
    fn hadamard_bound_rejects_huge_matrices() {
        let big = BigInt::from(10u32).pow(1000u32);
        let m = vec![vec![big.clone(), big.clone()], vec![big.clone(), big + 1]];
        // 2 rows of ~3 300 bits each: within the bound.
        assert!(check_hadamard(&m, MAX_FORWARD_BITS).is_ok());
        let huge = BigInt::from(10u32).pow(3000u32);
        let m = vec![vec![huge.clone(), BigInt::one()], vec![BigInt::one(), huge]];
        assert!(matches!(
            check_hadamard(&m, MAX_FORWARD_BITS),
            Err(PartError::TooLarge(_))
        ));
    }
}
