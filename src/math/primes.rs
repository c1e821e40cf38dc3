//! Primality (Miller–Rabin) and factorization (trial division by small
//! primes, then Pollard rho with Brent's cycle finding).
//!
//! Numbers below 2^64 use `u64` arithmetic with `u128` products and a
//! deterministic Miller–Rabin test; larger numbers use `BigUint` and a strong
//! probable-prime test with many bases.

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, ToPrimitive, Zero};

use super::budget::{Budget, Progress};
use super::MathError;

/// Trial division uses every prime below this bound.
const TRIAL_BOUND: usize = 1024;
/// π(1024): the number of primes below [`TRIAL_BOUND`].
const TRIAL_COUNT: usize = 172;

/// The primes below [`TRIAL_BOUND`], ascending (sieved at compile time).
const SMALL_PRIMES: [u32; TRIAL_COUNT] = small_primes();

const fn small_primes() -> [u32; TRIAL_COUNT] {
    let mut composite = [false; TRIAL_BOUND];
    let mut out = [0u32; TRIAL_COUNT];
    let mut count = 0;
    let mut i = 2;
    while i < TRIAL_BOUND {
        if !composite[i] {
            out[count] = i as u32;
            count += 1;
            let mut j = i * i;
            while j < TRIAL_BOUND {
                composite[j] = true;
                j += i;
            }
        }
        i += 1;
    }
    assert!(count == TRIAL_COUNT);
    out
}

/// Miller–Rabin bases that make the test deterministic for every `n < 2^64`.
const BASES_U64: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];

/// Bases for numbers of 2^64 and above: the primes below 100. The first 13
/// alone are deterministic below 3.3 × 10^24; beyond that the test is a
/// strong probable-prime test (no counterexample is known for so many bases).
const BASES_BIG: [u32; 25] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
];

/// Pollard-rho steps between gcds (and budget checks).
const BATCH: u64 = 128;

#[inline]
fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    ((a as u128 * b as u128) % m as u128) as u64
}

fn pow_mod(mut base: u64, mut exp: u64, m: u64) -> u64 {
    let mut acc = 1 % m;
    base %= m;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    acc
}

fn gcd_u64(mut a: u64, mut b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

/// Deterministic primality for `u64` (Miller–Rabin with bases 2..=37).
pub(crate) fn is_prime_u64(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for &p in &BASES_U64 {
        if n % p == 0 {
            return n == p;
        }
    }
    if n < 41 * 41 {
        return true;
    }
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'bases: for &a in &BASES_U64 {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// `n mod p` for a small `p`, without allocating.
fn rem_small(n: &BigUint, p: u32) -> u32 {
    let p = u128::from(p);
    n.iter_u64_digits()
        .rev()
        .fold(0u128, |r, d| ((r << 64) | u128::from(d)) % p) as u32
}

/// Primality of any size: exact below 2^64, a strong probable-prime test
/// with the 25 prime bases below 100 above.
pub(crate) fn is_prime(n: &BigUint) -> bool {
    if let Some(small) = n.to_u64() {
        return is_prime_u64(small);
    }
    if SMALL_PRIMES.iter().any(|&p| rem_small(n, p) == 0) {
        return false;
    }
    let one = BigUint::one();
    let n_minus_1 = n - &one;
    let s = n_minus_1.trailing_zeros().unwrap_or(0);
    let d = &n_minus_1 >> s;
    'bases: for &a in &BASES_BIG {
        let mut x = BigUint::from(a).modpow(&d, n);
        if x == one || x == n_minus_1 {
            continue;
        }
        for _ in 1..s {
            x = &x * &x % n;
            if x == n_minus_1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// A non-trivial factor of the odd composite `n < 2^64` (Pollard rho, Brent).
fn rho_u64(n: u64, budget: &Budget) -> Result<u64, MathError> {
    if let Some(r) = exact_sqrt_u64(n) {
        return Ok(r);
    }
    for c in 1..u64::MAX {
        let f = |x: u64| ((x as u128 * x as u128 + c as u128) % n as u128) as u64;
        let (mut x, mut y, mut ys) = (2u64, 2u64, 2u64);
        let (mut q, mut g, mut r) = (1u64, 1u64, 1u64);
        while g == 1 {
            x = y;
            let mut i = 0;
            while i < r {
                budget.check()?;
                for _ in 0..BATCH.min(r - i) {
                    y = f(y);
                }
                i += BATCH;
            }
            let mut k = 0;
            while k < r && g == 1 {
                budget.check()?;
                ys = y;
                for _ in 0..BATCH.min(r - k) {
                    y = f(y);
                    q = mul_mod(q, x.abs_diff(y), n);
                }
                g = gcd_u64(q, n);
                k += BATCH;
            }
            r = r.saturating_mul(2);
        }
        if g == n {
            // The batch overshot: redo it one step at a time.
            loop {
                ys = f(ys);
                g = gcd_u64(x.abs_diff(ys), n);
                if g > 1 {
                    break;
                }
            }
        }
        if g != n {
            return Ok(g);
        }
    }
    Err(MathError::TimedOut)
}

fn exact_sqrt_u64(n: u64) -> Option<u64> {
    let r = n.isqrt();
    (r * r == n).then_some(r)
}

/// A non-trivial factor of the composite `n ≥ 2^64` without small factors.
fn rho_big(n: &BigUint, budget: &Budget) -> Result<BigUint, MathError> {
    // Perfect powers defeat rho; their prime base is at least TRIAL_BOUND.
    let max_k = (n.bits() / 10).max(2) as u32;
    for k in 2..=max_k {
        let r = n.nth_root(k);
        if &r.pow(k) == n {
            return Ok(r);
        }
    }
    let one = BigUint::one();
    for c in 1u32.. {
        let c = BigUint::from(c);
        let f = |x: &BigUint| (x * x + &c) % n;
        let diff = |a: &BigUint, b: &BigUint| if a > b { a - b } else { b - a };
        let (mut x, mut y) = (BigUint::from(2u32), BigUint::from(2u32));
        let mut ys = y.clone();
        let (mut q, mut g, mut r) = (one.clone(), one.clone(), 1u64);
        while g == one {
            x = y.clone();
            let mut i = 0;
            while i < r {
                budget.check()?;
                for _ in 0..BATCH.min(r - i) {
                    y = f(&y);
                }
                i += BATCH;
            }
            let mut k = 0;
            while k < r && g == one {
                budget.check()?;
                ys = y.clone();
                for _ in 0..BATCH.min(r - k) {
                    y = f(&y);
                    q = q * diff(&x, &y) % n;
                }
                g = q.gcd(n);
                k += BATCH;
            }
            r = r.saturating_mul(2);
        }
        if &g == n {
            loop {
                budget.check()?;
                ys = f(&ys);
                g = diff(&x, &ys).gcd(n);
                if g > one {
                    break;
                }
            }
        }
        if &g != n {
            return Ok(g);
        }
    }
    Err(MathError::TimedOut)
}

/// Factors `n < 2^64`, calling `found` with each prime factor (with repetition,
/// in the order found).
fn factor_u64(mut n: u64, budget: &Budget, found: &mut dyn FnMut(u64)) -> Result<(), MathError> {
    for &p in &SMALL_PRIMES {
        let p = u64::from(p);
        if p * p > n {
            break;
        }
        while n % p == 0 {
            n /= p;
            found(p);
        }
    }
    if n == 1 {
        return Ok(());
    }
    let mut stack = vec![n];
    while let Some(m) = stack.pop() {
        if is_prime_u64(m) {
            found(m);
        } else {
            let d = rho_u64(m, budget)?;
            stack.push(d);
            stack.push(m / d);
        }
    }
    Ok(())
}

/// The prime factorization of `n ≥ 1` as `(prime, exponent)` pairs, ascending
/// (empty for 1). Reports "found factor p, remaining r" progress lines and
/// stops with the budget's error when it runs out.
pub(crate) fn factorize(
    n: &BigUint,
    budget: &Budget,
    progress: &mut Progress<'_>,
) -> Result<Vec<(BigUint, u32)>, MathError> {
    if n.is_zero() {
        return Err(MathError::domain("0 has no prime factorization"));
    }
    let mut primes: Vec<BigUint> = Vec::new();
    if let Some(small) = n.to_u64() {
        if small > 3 && is_prime_u64(small) {
            progress.emit(|| format!("{small} is prime"));
            primes.push(n.clone());
        } else {
            let mut remaining = small;
            factor_u64(small, budget, &mut |p| {
                remaining /= p;
                progress.emit(|| format!("found factor {p}, remaining {remaining}"));
                primes.push(BigUint::from(p));
            })?;
        }
        return Ok(group(primes));
    }
    let mut remaining = n.clone();
    let mut found = |p: BigUint, remaining: &mut BigUint, progress: &mut Progress<'_>| {
        *remaining /= &p;
        progress.emit(|| format!("found factor {p}, remaining {remaining}"));
        primes.push(p);
    };
    let mut rest = n.clone();
    for &p in &SMALL_PRIMES {
        while rem_small(&rest, p) == 0 {
            rest /= p;
            found(BigUint::from(p), &mut remaining, progress);
        }
    }
    let mut stack = vec![rest];
    while let Some(m) = stack.pop() {
        if m.is_one() || m.is_zero() {
            continue;
        }
        if let Some(small) = m.to_u64() {
            let mut factors = Vec::new();
            factor_u64(small, budget, &mut |p| factors.push(p))?;
            for p in factors {
                found(BigUint::from(p), &mut remaining, progress);
            }
        } else if is_prime(&m) {
            found(m, &mut remaining, progress);
        } else {
            budget.check()?;
            let d = rho_big(&m, budget)?;
            stack.push(&m / &d);
            stack.push(d);
        }
    }
    Ok(group(primes))
}

/// Sorts prime factors and collects repeats into exponents.
fn group(mut primes: Vec<BigUint>) -> Vec<(BigUint, u32)> {
    primes.sort_unstable();
    let mut out: Vec<(BigUint, u32)> = Vec::with_capacity(primes.len());
    for p in primes {
        match out.last_mut() {
            Some((q, e)) if *q == p => *e += 1,
            _ => out.push((p, 1)),
        }
    }
    out
}

/// Formats a factorization: ascending primes joined by " × ", repeated primes
/// as powers: `2^2 × 3`, `71 × 839 × 1471 × 6857`. An empty list (the
/// factorization of 1) is "1".
pub(crate) fn format_factors(factors: &[(BigUint, u32)]) -> String {
    if factors.is_empty() {
        return "1".to_string();
    }
    let mut out = String::new();
    for (i, (p, e)) in factors.iter().enumerate() {
        if i > 0 {
            out.push_str(" × ");
        }
        out.push_str(&p.to_string());
        if *e > 1 {
            out.push('^');
            out.push_str(&e.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn big(s: &str) -> BigUint {
        s.parse().unwrap()
    }

    fn factor_str(s: &str) -> (Result<String, MathError>, Vec<String>) {
        let mut lines = Vec::new();
        let mut sink = |l: String| lines.push(l);
        let r = factorize(&big(s), &Budget::unlimited(), &mut Progress::new(&mut sink));
        (r.map(|f| format_factors(&f)), lines)
    }

    #[test]
    fn sieve_and_small_primes() {
        assert_eq!(SMALL_PRIMES[..5], [2, 3, 5, 7, 11]);
        assert_eq!(SMALL_PRIMES[TRIAL_COUNT - 1], 1021);
        let brute: Vec<u64> = (0..2000u64)
            .filter(|&n| n >= 2 && (2..n).take_while(|d| d * d <= n).all(|d| n % d != 0))
            .collect();
        let mr: Vec<u64> = (0..2000u64).filter(|&n| is_prime_u64(n)).collect();
        assert_eq!(mr, brute);
        assert_eq!(gcd_u64(12, 18), 6);
        assert_eq!(gcd_u64(0, 7), 7);
    }

    #[test]
    fn carmichael_and_strong_pseudoprimes_are_composite() {
        for n in [
            561u64,
            1105,
            1729,
            2465,
            41041,
            3_215_031_751,
            2_152_302_898_747,
        ] {
            assert!(!is_prime_u64(n), "{n}");
        }
        // A strong pseudoprime to bases 2..=23 (caught by 29 and up).
        assert!(!is_prime(&big("3825123056546413051")));
        assert!(!is_prime(&big("318665857834031151167461"))); // spsp to bases 2..=37
    }

    #[test]
    fn primes_near_2_pow_64() {
        let primes = [
            "18446744073709551427",
            "18446744073709551437",
            "18446744073709551521",
            "18446744073709551533",
            "18446744073709551557",
            "18446744073709551629", // the first prime above 2^64
        ];
        for p in primes {
            assert!(is_prime(&big(p)), "{p}");
        }
        for n in [
            "18446744073709551615",
            "18446744073709551556",
            "18446744073709551617",
        ] {
            assert!(!is_prime(&big(n)), "{n}");
        }
        assert!(is_prime(&big("2305843009213693951"))); // 2^61 - 1
        assert!(is_prime(&big("170141183460469231731687303715884105727"))); // 2^127 - 1
    }

    #[test]
    fn factorizations() {
        let (r, lines) = factor_str("600851475143");
        assert_eq!(r.unwrap(), "71 × 839 × 1471 × 6857");
        assert_eq!(lines[0], "found factor 71, remaining 8462696833");
        assert_eq!(lines.len(), 4);
        let (r, lines) = factor_str("18446744073709551557");
        assert_eq!(r.unwrap(), "18446744073709551557");
        assert_eq!(lines, ["18446744073709551557 is prime"]);
        assert_eq!(factor_str("12").0.unwrap(), "2^2 × 3");
        assert_eq!(factor_str("1").0.unwrap(), "1");
        assert_eq!(factor_str("2").0.unwrap(), "2");
        assert_eq!(factor_str("1048576").0.unwrap(), "2^20");
        assert_eq!(
            factor_str("18446744073709551615").0.unwrap(),
            "3 × 5 × 17 × 257 × 641 × 65537 × 6700417"
        );
        // Squares of large primes (rho's weak spot) and beyond-u64 products.
        assert_eq!(factor_str("4294967291").0.unwrap(), "4294967291");
        assert_eq!(
            factor_str("18446744030759878681").0.unwrap(),
            "4294967291^2"
        );
        assert_eq!(
            factor_str("18446744073709551617").0.unwrap(),
            "274177 × 67280421310721"
        );
        assert_eq!(
            factor_str("340282366920938463426481119284349108225")
                .0
                .unwrap(),
            "3^2 × 5^2 × 17^2 × 257^2 × 641^2 × 65537^2 × 6700417^2"
        );
    }

    #[test]
    fn thirty_digit_semiprime() {
        let (r, lines) = factor_str("1000000001900000000390000000741");
        assert_eq!(r.unwrap(), "10000000019 × 100000000000000000039");
        assert!(lines.len() <= 20);
    }

    #[test]
    fn budget_stops_hard_factorization() {
        // (2^61 - 1) × (the largest prime below 2^64): rho would need ~10^9 steps.
        let n = big("42535295865117307778430344311653531707");
        let mut sink = |_: String| {};
        let budget = Budget::new(Duration::from_millis(30));
        let r = factorize(&n, &budget, &mut Progress::new(&mut sink));
        assert_eq!(r, Err(MathError::TimedOut));
        let budget = Budget::new(Duration::from_secs(60));
        budget.cancel_handle().cancel();
        let r = factorize(&n, &budget, &mut Progress::new(&mut sink));
        assert_eq!(r, Err(MathError::Cancelled));
    }
}
