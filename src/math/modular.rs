//! Modular exponentiation: `pow(b, e, m)`, `modpow(b, e, m)` and `b^e mod m`,
//! computed without ever forming `b^e`, so `2^(10^100) mod 97` is instant
//! where `2^(10^100)` is over every digit limit.

use num_bigint::BigInt;
use num_integer::Integer;
use num_traits::{One, Signed, Zero};

use super::{Budget, MathError};

/// Squarings between two checks of the CPU-time budget.
const CHECK_EVERY: u64 = 256;

/// `b^e mod m` with the sign of `m` (floored, as `mod` is elsewhere). A
/// negative `e` uses the inverse of `b` modulo `m`, which exists when
/// `gcd(b, m) = 1`.
///
/// Hand-written rather than `BigInt::modpow` so that the budget is checked
/// between squarings: an exponent of a hundred thousand digits with a large
/// modulus takes long enough to need cancelling.
pub(super) fn modpow(
    b: &BigInt,
    e: &BigInt,
    m: &BigInt,
    budget: &Budget,
) -> Result<BigInt, MathError> {
    if m.is_zero() {
        return Err(MathError::DivisionByZero);
    }
    let modulus = m.abs();
    let base = if e.is_negative() {
        inverse(b, &modulus).ok_or_else(|| {
            MathError::domain(format!(
                "{b} has no inverse modulo {m} (they share a factor), so a negative power is not defined"
            ))
        })?
    } else {
        b.mod_floor(&modulus)
    };
    let exponent = e.abs();
    let mut result = BigInt::one().mod_floor(&modulus);
    for i in (0..exponent.bits()).rev() {
        if i % CHECK_EVERY == 0 {
            budget.check()?;
        }
        result = (&result * &result).mod_floor(&modulus);
        if exponent.bit(i) {
            result = (&result * &base).mod_floor(&modulus);
        }
    }
    // Floored: the result takes the sign of the modulus.
    Ok(if m.is_negative() && !result.is_zero() {
        result - modulus
    } else {
        result
    })
}

/// The inverse of `b` modulo `m > 0`, if `gcd(b, m) = 1`.
fn inverse(b: &BigInt, m: &BigInt) -> Option<BigInt> {
    let g = b.mod_floor(m).extended_gcd(m);
    g.gcd.is_one().then(|| g.x.mod_floor(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn mp(b: i64, e: i64, m: i64) -> Result<BigInt, MathError> {
        let budget = Budget::new(Duration::from_secs(5));
        modpow(&b.into(), &e.into(), &m.into(), &budget)
    }

    #[test]
    fn small_cases_agree_with_direct_powers() {
        for b in -7i64..=7 {
            for e in 0u32..=9 {
                for m in [1i64, 2, 3, 7, 10, 13, -5] {
                    let direct = BigInt::from(b).pow(e).mod_floor(&BigInt::from(m));
                    assert_eq!(mp(b, e.into(), m).ok(), Some(direct), "{b}^{e} mod {m}");
                }
            }
        }
    }

    #[test]
    fn inverses_and_errors() {
        assert_eq!(mp(3, -1, 7).ok(), Some(5.into()));
        assert_eq!(mp(3, -2, 7).ok(), Some(4.into())); // 5^2 = 25 = 4 mod 7
        assert!(matches!(mp(2, -1, 4), Err(MathError::Domain(_))));
        assert!(matches!(mp(2, 3, 0), Err(MathError::DivisionByZero)));
    }

    #[test]
    fn huge_exponents_are_fast_and_exact() {
        let budget = Budget::new(Duration::from_secs(5));
        let e = BigInt::from(10).pow(100u32);
        // 2 has order 48 modulo 97; 10^100 = 16 mod 48, and 2^16 = 61 mod 97.
        let r = modpow(&2.into(), &e, &97.into(), &budget);
        assert_eq!(r.ok(), Some(61.into()));
    }
}
