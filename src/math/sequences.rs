//! Fibonacci (fast doubling), factorial (product tree) and integer ranges.

use num_bigint::{BigInt, BigUint};
use num_traits::{One, Zero};

use super::budget::{Budget, Progress};
use super::number::check_digits;
use super::{Limits, MathError};

/// log10 of the golden ratio.
const LOG10_PHI: f64 = 0.208_987_640_249_978_74;

/// Rejects `fibonacci(n)` when `n` or the size of the result exceeds the limits.
pub(crate) fn check_fibonacci(n: u64, limits: &Limits) -> Result<(), MathError> {
    if n > limits.max_sequence_n {
        return Err(MathError::limit(format!(
            "fibonacci({n}) is too large: the index may be at most {}",
            limits.max_sequence_n
        )));
    }
    // F(n) ≈ φ^n / √5.
    let digits = if n < 2 {
        1.0
    } else {
        (n as f64 * LOG10_PHI - 0.5 * 5f64.log10()).floor() + 1.0
    };
    check_digits(digits, limits.max_result_digits, &format!("fibonacci({n})"))
}

/// `F(n)` with `F(0) = 0`, `F(1) = 1`, by fast doubling:
/// `F(2k) = F(k)(2F(k+1) − F(k))`, `F(2k+1) = F(k)² + F(k+1)²`.
pub(crate) fn fibonacci(
    n: u64,
    limits: &Limits,
    budget: &Budget,
    progress: &mut Progress<'_>,
) -> Result<BigUint, MathError> {
    check_fibonacci(n, limits)?;
    if n <= 93 {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..n {
            (a, b) = (b, a.wrapping_add(b));
        }
        return Ok(BigUint::from(a));
    }
    let (mut a, mut b) = (BigUint::zero(), BigUint::one());
    let mut k = 0u64;
    let report = n >= 10_000;
    for bit in (0..64 - n.leading_zeros()).rev() {
        budget.check()?;
        let c = &a * ((&b << 1u32) - &a);
        let d = &a * &a + &b * &b;
        k *= 2;
        if (n >> bit) & 1 == 1 {
            b = &c + &d;
            a = d;
            k += 1;
        } else {
            a = c;
            b = d;
        }
        if report && k >= n / 1024 {
            progress.emit(|| format!("Fibonacci: computed F({k}) of F({n})"));
        }
    }
    Ok(a)
}

/// `F(0) ..= F(n)` for small `n` (used to show the sequence).
pub(crate) fn fibonacci_terms(n: u64) -> Vec<u64> {
    let mut out = Vec::with_capacity(n as usize + 1);
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..=n.min(90) {
        out.push(a);
        (a, b) = (b, a + b);
    }
    out
}

/// Rejects `n!` when `n` or the size of the result (Stirling) exceeds the limits.
pub(crate) fn check_factorial(n: u64, limits: &Limits) -> Result<(), MathError> {
    if n > limits.max_sequence_n {
        return Err(MathError::limit(format!(
            "{n}! is too large: factorial is limited to n ≤ {}",
            limits.max_sequence_n
        )));
    }
    let digits = if n < 2 {
        1.0
    } else {
        let x = n as f64;
        let ln = x * x.ln() - x + 0.5 * (std::f64::consts::TAU * x).ln() + 1.0 / (12.0 * x);
        (ln / std::f64::consts::LN_10).floor() + 1.0
    };
    check_digits(digits, limits.max_result_digits, &format!("{n}!"))
}

/// `n!`, multiplying in a balanced product tree (in ten chunks, for progress).
pub(crate) fn factorial(
    n: u64,
    limits: &Limits,
    budget: &Budget,
    progress: &mut Progress<'_>,
) -> Result<BigUint, MathError> {
    check_factorial(n, limits)?;
    if n <= 20 {
        return Ok(BigUint::from((1..=n).product::<u64>()));
    }
    let report = n >= 1_000;
    let step = n.div_ceil(10);
    let mut parts = Vec::with_capacity(10);
    let mut lo = 2;
    while lo <= n {
        let hi = (lo + step - 1).min(n);
        parts.push(product(lo, hi, budget)?);
        if report {
            progress.emit(|| format!("Factorial: multiplied 1..{hi} of {n}"));
        }
        lo = hi + 1;
    }
    while parts.len() > 1 {
        budget.check()?;
        let mut next = Vec::with_capacity(parts.len().div_ceil(2));
        let mut it = parts.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => a * b,
                None => a,
            });
        }
        parts = next;
    }
    Ok(parts.pop().unwrap_or_else(BigUint::one))
}

/// `lo * (lo+1) * ... * hi` by binary splitting (recursion depth ≤ 64).
fn product(lo: u64, hi: u64, budget: &Budget) -> Result<BigUint, MathError> {
    if hi - lo < 32 {
        budget.check()?;
        let mut acc = BigUint::one();
        let mut small = 1u64;
        for k in lo..=hi {
            match small.checked_mul(k) {
                Some(v) => small = v,
                None => {
                    acc *= small;
                    small = k;
                }
            }
        }
        return Ok(acc * small);
    }
    let mid = lo + (hi - lo) / 2;
    Ok(product(lo, mid, budget)? * product(mid + 1, hi, budget)?)
}

/// Number of integers in the inclusive range between `a` and `b` (either order).
pub(crate) fn range_len(a: &BigInt, b: &BigInt) -> BigInt {
    let d = if a <= b { b - a } else { a - b };
    d + 1u32
}

/// Sum of the integers in the inclusive range between `a` and `b`: `(a + b) * count / 2`.
pub(crate) fn range_sum(a: &BigInt, b: &BigInt) -> BigInt {
    (a + b) * range_len(a, b) / 2u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl FnOnce(&mut Progress<'_>) -> T) -> (T, Vec<String>) {
        let mut lines = Vec::new();
        let mut sink = |l: String| lines.push(l);
        let out = f(&mut Progress::new(&mut sink));
        (out, lines)
    }

    fn fib(n: u64) -> String {
        let limits = Limits::default();
        run(|p| fibonacci(n, &limits, &Budget::unlimited(), p))
            .0
            .unwrap()
            .to_string()
    }

    fn fact(n: u64) -> String {
        let limits = Limits::default();
        run(|p| factorial(n, &limits, &Budget::unlimited(), p))
            .0
            .unwrap()
            .to_string()
    }

    #[test]
    fn fibonacci_values() {
        assert_eq!(fib(0), "0");
        assert_eq!(fib(1), "1");
        assert_eq!(fib(10), "55");
        assert_eq!(fib(93), "12200160415121876738");
        assert_eq!(fib(94), "19740274219868223167");
        assert_eq!(fib(100), "354224848179261915075");
        assert_eq!(fib(1000).len(), 209);
        assert!(fib(1000).starts_with("43466557686937456435688527675040625802564660517371780402481729089536555417949051890403879840079255169295922593080322634775209689623239873322471161642996440906533187938298969649928516003704476137795166849228875"));
        // Doubling agrees with simple iteration around the u64 boundary and beyond.
        let (mut a, mut b) = (BigUint::zero(), BigUint::one());
        for n in 0..300u64 {
            assert_eq!(fib(n), a.to_string(), "F({n})");
            let next = &a + &b;
            a = std::mem::replace(&mut b, next);
        }
        assert_eq!(fibonacci_terms(10), [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55]);
    }

    #[test]
    fn fibonacci_progress_is_a_handful_of_lines() {
        let limits = Limits::default();
        let (r, lines) = run(|p| fibonacci(100_000, &limits, &Budget::unlimited(), p));
        assert_eq!(r.unwrap().to_string().len(), 20_899);
        assert!(!lines.is_empty() && lines.len() <= 20, "{lines:?}");
        assert_eq!(
            lines.last().unwrap(),
            "Fibonacci: computed F(100000) of F(100000)"
        );
    }

    #[test]
    fn factorial_values() {
        assert_eq!(fact(0), "1");
        assert_eq!(fact(1), "1");
        assert_eq!(fact(20), "2432902008176640000");
        assert_eq!(fact(21), "51090942171709440000");
        let f100 = fact(100);
        assert_eq!(f100.len(), 158);
        assert!(f100.starts_with("93326215443944152681699238856266700490715968264381621468"));
        assert!(f100.ends_with(&"0".repeat(24)));
        // Product tree agrees with the naive product.
        let naive: BigUint = (1..=1234u32).map(BigUint::from).product();
        assert_eq!(fact(1234), naive.to_string());
    }

    #[test]
    fn factorial_progress_and_limits() {
        let limits = Limits::default();
        let (r, lines) = run(|p| factorial(20_000, &limits, &Budget::unlimited(), p));
        assert_eq!(r.unwrap().to_string().len(), 77_338);
        assert_eq!(lines.len(), 10);
        assert_eq!(lines[9], "Factorial: multiplied 1..20000 of 20000");
        // 100000! has 456574 digits: over the default result limit, refused up front.
        let err = check_factorial(100_000, &limits).unwrap_err();
        assert!(err.to_string().contains("456574 digits"), "{err}");
        assert!(check_factorial(100_001, &limits).unwrap_err().is_limit());
        assert!(check_fibonacci(100_001, &limits).unwrap_err().is_limit());
        let small = Limits {
            max_result_digits: 100,
            ..Limits::default()
        };
        assert!(check_fibonacci(480, &small).is_ok()); // F(480) has 100 digits
        assert!(check_fibonacci(481, &small).is_err()); // F(481) has 101
        assert!(check_factorial(69, &small).is_ok()); // 69! has 99 digits
        assert!(check_factorial(70, &small).is_err()); // 70! has 101
    }

    #[test]
    fn budget_stops_factorial() {
        let limits = Limits::default();
        let budget = Budget::new(std::time::Duration::ZERO);
        let (r, _) = run(|p| factorial(20_000, &limits, &budget, p));
        assert_eq!(r, Err(MathError::TimedOut));
    }

    #[test]
    fn ranges() {
        let b = |i: i64| BigInt::from(i);
        assert_eq!(range_sum(&b(1), &b(100)), b(5050));
        assert_eq!(range_sum(&b(100), &b(1)), b(5050));
        assert_eq!(range_sum(&b(-3), &b(3)), b(0));
        assert_eq!(range_len(&b(5), &b(5)), b(1));
    }
}
