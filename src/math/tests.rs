//! End-to-end tests of the public API: parse + evaluate.

use super::*;

fn answer_with(text: &str, limits: &Limits) -> Result<Answer, MathError> {
    let budget = Budget::new(limits.cpu_time);
    parse(text, limits)?.evaluate(limits, &budget, &mut |_| {})
}

fn answer(text: &str) -> Result<Answer, MathError> {
    answer_with(text, &Limits::default())
}

/// The result string, panicking with the input on error.
fn eval(text: &str) -> String {
    match answer(text) {
        Ok(a) => a.result,
        Err(e) => panic!("{text}: {e:?}"),
    }
}

fn err(text: &str) -> MathError {
    match answer(text) {
        Ok(a) => panic!("{text}: expected an error, got {a:?}"),
        Err(e) => e,
    }
}

#[test]
fn query_is_send_and_static() {
    fn check<T: Send + 'static>() {}
    check::<Query>();
    check::<Answer>();
    check::<MathError>();
}

#[test]
fn precedence_and_associativity() {
    let cases = [
        ("2 + 2", "4"),
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("10 - 4 - 3", "3"),
        ("10 - (4 - 3)", "9"),
        ("100 / 10 / 5", "2"),
        ("2 * 3 ^ 2", "18"),
        ("2 ^ 3 ^ 2", "512"),
        ("2 ** 3 ** 2", "512"),
        ("(2 ^ 3) ^ 2", "64"),
        ("-2 ^ 2", "-4"),
        ("(-2) ^ 2", "4"),
        ("2 ^ -1", "0.5"),
        ("-3 + 5", "2"),
        ("--3", "3"),
        ("2 * -3", "-6"),
        ("4 - -3", "7"),
        ("-(2 + 3) * 2", "-10"),
        ("17 % 5", "2"),
        ("-7 % 3", "2"),
        ("17 mod 5 + 1", "3"),
        ("2 + 3 * 4 ^ 2 / 8 - 1", "7"),
        ("3!", "6"),
        ("3! ^ 2", "36"),
        ("2 ^ 3!", "64"),
        ("-3!", "-6"),
        ("1.5e3 + 1", "1501"),
        ("[1 + 2] * {3}", "9"),
    ];
    for (input, want) in cases {
        assert_eq!(eval(input), want, "input {input}");
    }
}

#[test]
fn operator_spellings() {
    let cases = [
        ("3²", "9"),
        ("2³ + 1", "9"),
        ("2¹⁰", "1024"),
        ("-3²", "-9"),
        ("2^3²", "512"),
        ("6 × 7", "42"),
        ("6·7", "42"),
        ("8 ÷ 2", "4"),
        ("5 − 3", "2"),
        ("2 ** 3", "8"),
    ];
    for (input, want) in cases {
        assert_eq!(eval(input), want, "input {input}");
    }
    assert_eq!(
        answer("3²").map(|a| a.text).ok().as_deref(),
        Some("3^2 = 9")
    );
    // Every spelling of the table that the equation lexer shares.
    for &(spelling, op) in operators::SPELLINGS {
        let (input, want) = match op {
            operators::Op::Add => (format!("4 {spelling} 2"), "6"),
            operators::Op::Sub => (format!("4 {spelling} 2"), "2"),
            operators::Op::Mul => (format!("4 {spelling} 2"), "8"),
            operators::Op::Div => (format!("4 {spelling} 2"), "2"),
            operators::Op::Pow => (format!("4 {spelling} 2"), "16"),
            operators::Op::Open => (format!("{spelling}4 + 2) * 2"), "12"),
            operators::Op::Close => (format!("(4 + 2{spelling} * 2"), "12"),
        };
        assert_eq!(eval(&input), want, "input {input}");
    }
}

#[test]
fn exact_numbers() {
    assert_eq!(
        eval("2^200"),
        "1606938044258990275541962092341162602522202993782792835301376"
    );
    assert_eq!(eval("0.1 + 0.2"), "0.3");
    assert_eq!(eval("1/3"), "0.333333333333333");
    assert_eq!(eval("7/4"), "1.75");
    assert_eq!(eval("1/3 * 3"), "1");
    assert_eq!(eval("2^64 + 1 - 2^64"), "1");
    assert_eq!(
        eval("99999999999999999999 * 99999999999999999999"),
        "9999999999999999999800000000000000000001"
    );
    assert_eq!(eval("sqrt(16)"), "4");
    assert_eq!(eval("sqrt(1/4)"), "0.5");
    assert_eq!(eval("sqrt(2)"), "1.4142135623731");
    assert_eq!(eval("sqrt(10^100)"), format!("1{}", "0".repeat(50)));
    assert_eq!(eval("50%"), "0.5");
    assert_eq!(eval("1e-3"), "0.001");
}

#[test]
fn functions_and_constants() {
    let cases = [
        ("abs(-5)", "5"),
        ("ln(e)", "1"),
        ("ln(1)", "0"),
        ("log(1000)", "3"),
        ("log(8, 2)", "3"),
        ("log10(10^200)", "200"),
        ("exp(0)", "1"),
        ("sin(pi / 2)", "1"),
        ("sin(pi)", "0"),
        ("cos(0)", "1"),
        ("tan(0)", "0"),
        ("floor(7/2)", "3"),
        ("ceil(7/2)", "4"),
        ("round(2.5)", "3"),
        ("round(-2.5)", "-3"),
        ("floor(-0.5)", "-1"),
        ("2 * pi", "6.28318530717959"),
        ("e", "2.71828182845905"),
        ("pi", "3.14159265358979"),
        ("sqrt 16 + 1", "5"),
        ("max(1, 5, 3)", "5"),
        ("min(4, -2)", "-2"),
        ("fib(10) + 1", "56"),
    ];
    for (input, want) in cases {
        assert_eq!(eval(input), want, "input {input}");
    }
}

#[test]
fn word_forms() {
    let cases = [
        ("what is 2 plus 3", "5", Operation::Arithmetic),
        ("What is 7 minus 2?", "5", Operation::Arithmetic),
        ("6 times 7", "42", Operation::Arithmetic),
        ("10 divided by 4", "2.5", Operation::Arithmetic),
        ("square root of 16", "4", Operation::Arithmetic),
        ("what is the square root of 81?", "9", Operation::Arithmetic),
        ("15% of 200", "30", Operation::Arithmetic),
        ("15 percent of 200", "30", Operation::Arithmetic),
        ("2 to the power of 10", "1024", Operation::Arithmetic),
        ("5 squared", "25", Operation::Arithmetic),
        ("sum of 1, 2, 3", "6", Operation::Sum),
        ("sum 1..100", "5050", Operation::Sum),
        ("sum of 1 to 10", "55", Operation::Sum),
        ("mean of 2, 4, 9", "5", Operation::Mean),
        ("average of 1, 2", "1.5", Operation::Mean),
        ("mean of 1, 2, 2", "1.66666666666667", Operation::Mean),
        ("fibonacci 10", "55", Operation::Fibonacci),
        ("fib(10)", "55", Operation::Fibonacci),
        ("the 10th fibonacci number", "55", Operation::Fibonacci),
        ("factorial 5", "120", Operation::Factorial),
        ("5!", "120", Operation::Factorial),
        ("10 factorial", "3628800", Operation::Factorial),
        ("prime factors 12", "2^2 × 3", Operation::PrimeFactors),
        ("factorize 12", "2^2 × 3", Operation::PrimeFactors),
        (
            "prime factors of 360",
            "2^3 × 3^2 × 5",
            Operation::PrimeFactors,
        ),
        ("is 97 prime", "true", Operation::IsPrime),
        ("is 97 a prime number?", "true", Operation::IsPrime),
        ("is 91 prime", "false", Operation::IsPrime),
        ("gcd 12 18", "6", Operation::Gcd),
        ("gcd(12, 18, 8)", "2", Operation::Gcd),
        ("greatest common divisor of 12 and 18", "6", Operation::Gcd),
        ("lcm 4 6", "12", Operation::Lcm),
        ("lcm(4, 6, 10)", "60", Operation::Lcm),
    ];
    for (input, want, op) in cases {
        let a = answer(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
        assert_eq!(a.result, want, "input {input}");
        assert_eq!(a.operation, op, "input {input}");
    }
}

#[test]
fn summary_lines() {
    let text = |q: &str| answer(q).unwrap().text;
    assert_eq!(text("2 + 2"), "2 + 2 = 4");
    assert_eq!(text("what is 2 plus 3"), "2 + 3 = 5");
    assert_eq!(text("15% of 200"), "15% of 200 = 30");
    assert_eq!(text("prime factors 12"), "12 = 2^2 × 3");
    assert_eq!(text("prime factors -12"), "-12 = -1 × 2^2 × 3");
    assert_eq!(text("prime factors 97"), "97 = 97 (prime)");
    assert_eq!(text("is 97 prime"), "97 is prime");
    assert_eq!(text("is 561 prime"), "561 is not prime");
    assert_eq!(text("gcd 12 18"), "gcd(12, 18) = 6");
    assert_eq!(text("sum 1..100"), "sum(1..100) = 5050");
    assert_eq!(
        text("fibonacci 10"),
        "fibonacci(10) = 55 (sequence: 0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55)"
    );
    assert_eq!(
        text("fibonacci 100"),
        "fibonacci(100) = 354224848179261915075"
    );
    assert_eq!(text("factorial 5"), "5! = 120");
}

#[test]
fn sequences() {
    assert_eq!(eval("fibonacci 100"), "354224848179261915075");
    let f = eval("factorial 100");
    assert_eq!(f.len(), 158);
    assert!(f.starts_with("93326215443944152681699238856266700490715968264381621468"));
    assert_eq!(eval("100!"), f);
    assert_eq!(eval("factorial(0)"), "1");

    let limits = Limits::default();
    let budget = Budget::new(limits.cpu_time);
    let mut lines = Vec::new();
    let a = parse("factorial 20000", &limits)
        .unwrap()
        .evaluate(&limits, &budget, &mut |l| lines.push(l))
        .unwrap();
    assert_eq!(a.result.len(), 77_338);
    assert!(!lines.is_empty() && lines.len() <= 20, "{lines:?}");
}

#[test]
fn primes() {
    let limits = Limits::default();
    let budget = Budget::new(limits.cpu_time);
    let mut lines = Vec::new();
    let a = parse("prime factors 600851475143", &limits)
        .unwrap()
        .evaluate(&limits, &budget, &mut |l| lines.push(l))
        .unwrap();
    assert_eq!(a.result, "71 × 839 × 1471 × 6857");
    assert_eq!(a.text, "600851475143 = 71 × 839 × 1471 × 6857");
    assert_eq!(lines[0], "found factor 71, remaining 8462696833");

    assert_eq!(
        eval("prime factors 18446744073709551557"),
        "18446744073709551557"
    );
    assert_eq!(eval("is 18446744073709551557 prime"), "true");
    assert_eq!(eval("is 18446744073709551559 prime"), "false");
    assert_eq!(eval("is 2^64 + 13 prime"), "true"); // 18446744073709551629
    assert_eq!(
        eval("prime factors 1000000001900000000390000000741"),
        "10000000019 × 100000000000000000039"
    );
    assert_eq!(eval("is 561 prime"), "false");
    assert_eq!(eval("is 41041 prime"), "false");
    assert_eq!(eval("is 1 prime"), "false");
    assert_eq!(eval("is 2 prime"), "true");
    assert_eq!(eval("is -7 prime"), "false");
    assert_eq!(eval("prime factors 1"), "1");
    assert!(matches!(err("prime factors 0"), MathError::Domain(_)));
    assert!(matches!(err("prime factors 1.5"), MathError::Domain(_)));
}

#[test]
fn budget_stops_factorization() {
    // (2^61 - 1) × 18446744073709551557: Pollard rho would need ~10^9 steps.
    let q = parse(
        "prime factors 42535295865117307778430344311653531707",
        &Limits::default(),
    )
    .unwrap();
    let limits = Limits {
        cpu_time: std::time::Duration::from_millis(20),
        ..Limits::default()
    };
    let budget = Budget::new(limits.cpu_time);
    assert_eq!(
        q.evaluate(&limits, &budget, &mut |_| {}),
        Err(MathError::TimedOut)
    );

    let budget = Budget::new(std::time::Duration::from_secs(60));
    let handle = budget.cancel_handle();
    let worker = std::thread::spawn(move || q.evaluate(&Limits::default(), &budget, &mut |_| {}));
    std::thread::sleep(std::time::Duration::from_millis(20));
    handle.cancel();
    assert_eq!(worker.join().unwrap(), Err(MathError::Cancelled));
}

#[test]
fn limits() {
    let limit = |text: &str| {
        let e = err(text);
        assert!(matches!(e, MathError::LimitExceeded(_)), "{text}: {e:?}");
    };
    limit("fibonacci 100001");
    limit("fibonacci 10^6");
    limit("factorial 100000"); // 456 574 digits
    limit("factorial 999999999999999999999999");
    limit("1000000!");
    limit("2^999999999");
    limit("2^999999999999999999999999999");
    limit("10^100000 * 10^100000");
    limit(&format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000)));
    limit(&format!("{}1", "-".repeat(10_000)));
    limit(&"1+".repeat(3_000));
    limit(&format!("prime factors {}", "7".repeat(61)));
    limit(&format!("is {} prime", "7".repeat(61)));
    limit("sum 1..1000000");
    assert_eq!(eval("sum 1..100000"), "5000050000");

    let small = Limits {
        max_input_len: 10,
        ..Limits::default()
    };
    assert!(answer_with("1 + 2 + 3 + 4", &small).unwrap_err().is_limit());
    // Parsing alone rejects these, before any evaluation.
    let limits = Limits::default();
    assert!(parse("fibonacci 100001", &limits).unwrap_err().is_limit());
    assert!(
        parse(&format!("{}1{}", "(".repeat(100), ")".repeat(100)), &limits)
            .unwrap_err()
            .is_limit()
    );
}

#[test]
fn evaluation_errors() {
    assert_eq!(err("1 / 0"), MathError::DivisionByZero);
    assert_eq!(err("5 % 0"), MathError::DivisionByZero);
    assert_eq!(err("1 / (2 - 2)"), MathError::DivisionByZero);
    assert_eq!(err("0 ^ -1"), MathError::DivisionByZero);
    for text in [
        "sqrt(-1)", "ln(0)", "ln(-1)", "log(0)", "asin(2)", "(-8)^0.5", "(-1)!", "2.5!",
    ] {
        assert!(matches!(err(text), MathError::Domain(_)), "{text}");
    }
    assert!(matches!(err("gcd 1.5 2"), MathError::Domain(_)));
    assert!(matches!(err("exp(1000)"), MathError::Domain(_)));
}

#[test]
fn not_understood_and_syntax_errors() {
    for text in [
        "hello there",
        "what is the weather",
        "bonjour ça va",
        "",
        "   ?",
    ] {
        match err(text) {
            MathError::NotUnderstood(m) => assert!(m.contains("prime factors"), "{text}: {m}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert!(matches!(err("2 +"), MathError::Parse { .. }));
    assert!(matches!(err("(2 + 3"), MathError::Parse { .. }));
    assert!(matches!(err("2 3"), MathError::Parse { .. }));
    assert!(matches!(err("2 # 3"), MathError::Parse { .. }));
    assert!(matches!(err("gcd 12"), MathError::Parse { .. }));
    assert!(matches!(err("fibonacci"), MathError::Parse { .. }));
}

/// Combinatorics and number theory as people ask for them, exact.
#[test]
fn combinatorics_and_number_theory() {
    let limits = Limits::default();
    let table = [
        ("100 choose 3", "161700", Operation::Combinatorics),
        ("choose 10 3", "120", Operation::Combinatorics),
        ("10 C 0", "1", Operation::Combinatorics),
        ("3 choose 5", "0", Operation::Combinatorics),
        ("binomial(52, 5)", "2598960", Operation::Combinatorics),
        ("permutations of 5", "120", Operation::Combinatorics),
        ("10 permute 3", "720", Operation::Combinatorics),
        ("how many ways to arrange 4", "24", Operation::Combinatorics),
        ("totient of 36", "12", Operation::NumberTheory),
        ("phi 97", "96", Operation::NumberTheory),
        (
            "divisors of 28",
            "1, 2, 4, 7, 14, 28",
            Operation::NumberTheory,
        ),
        ("divisors 1", "1", Operation::NumberTheory),
        ("2^100 mod 7", "2", Operation::Arithmetic),
        ("3^200 mod 13", "9", Operation::Arithmetic),
        ("pow(3, 200, 13)", "9", Operation::Arithmetic),
        ("modpow(2, 10^100, 97)", "61", Operation::Arithmetic),
        ("powmod(3, -1, 7)", "5", Operation::Arithmetic),
        ("3 to the 200th power mod 13", "9", Operation::Arithmetic),
        ("-2^3 mod 5", "2", Operation::Arithmetic),
    ];
    for (question, want, op) in table {
        let q = parse(question, &limits).unwrap_or_else(|e| panic!("{question}: {e}"));
        assert_eq!(q.operation(), op, "{question}");
        let answer = q
            .evaluate(&limits, &Budget::new(limits.cpu_time), &mut |_| {})
            .unwrap_or_else(|e| panic!("{question}: {e}"));
        assert_eq!(answer.result, want, "{question}");
    }
    // Far beyond the digit limit as a power, instant as a modular one.
    assert_eq!(eval("2^(10^100) mod 97"), "61");
    assert!(matches!(err("2^(10^100)"), MathError::LimitExceeded(_)));
    assert!(matches!(err("modpow(2, 3, 0)"), MathError::DivisionByZero));
    assert!(matches!(err("modpow(2, 1/2, 5)"), MathError::Domain(_)));
    // 200 choose 100 against the product formula computed another way:
    // C(n, k) = C(n - 1, k - 1) + C(n - 1, k), Pascal's rule, row by row.
    let mut row = vec![num_bigint::BigInt::from(1u32)];
    for _ in 0..200 {
        let mut next = vec![num_bigint::BigInt::from(1u32)];
        next.extend(row.windows(2).map(|w| &w[0] + &w[1]));
        next.push(num_bigint::BigInt::from(1u32));
        row = next;
    }
    let q = parse("200 choose 100", &limits).unwrap();
    let answer = q
        .evaluate(&limits, &Budget::new(limits.cpu_time), &mut |_| {})
        .unwrap();
    assert_eq!(answer.result, row[100].to_string());
    assert!(parse("choose 10", &limits).is_err(), "choose needs n and k");
}

/// Numbers and exponents written in words.
#[test]
fn number_words_and_ordinal_powers() {
    let limits = Limits::default();
    let table = [
        ("twelve plus three", "15"),
        ("a hundred and five", "105"),
        ("what is twenty-three times two", "46"),
        ("three hundred and twenty five thousand", "325000"),
        ("one million two hundred thousand and one", "1200001"),
        ("2 to the 100th power", "1267650600228229401496703205376"),
        ("2 to the 10th power plus 1", "1025"),
        ("three to the third power", "27"),
        ("ten squared", "100"),
        ("fibonacci twelve", "144"),
    ];
    for (question, want) in table {
        let q = parse(question, &limits).unwrap_or_else(|e| panic!("{question}: {e}"));
        let answer = q
            .evaluate(&limits, &Budget::new(limits.cpu_time), &mut |_| {})
            .unwrap_or_else(|e| panic!("{question}: {e}"));
        assert_eq!(answer.result, want, "{question}");
    }
}

#[test]
fn operation_names() {
    let all = [
        Operation::Arithmetic,
        Operation::Fibonacci,
        Operation::Factorial,
        Operation::PrimeFactors,
        Operation::IsPrime,
        Operation::Gcd,
        Operation::Lcm,
        Operation::Sum,
        Operation::Mean,
        Operation::Combinatorics,
        Operation::NumberTheory,
    ];
    let names: Vec<_> = all.iter().map(Operation::as_str).collect();
    assert_eq!(
        names,
        [
            "arithmetic",
            "fibonacci",
            "factorial",
            "prime_factors",
            "is_prime",
            "gcd",
            "lcm",
            "sum",
            "mean",
            "combinatorics",
            "number_theory"
        ]
    );
    let long: Vec<_> = all
        .iter()
        .filter(|o| o.is_long())
        .map(Operation::as_str)
        .collect();
    assert_eq!(
        long,
        [
            "fibonacci",
            "factorial",
            "prime_factors",
            "sum",
            "mean",
            "combinatorics",
            "number_theory"
        ]
    );
    assert!(parse("2 + 2", &Limits::default()).unwrap().is_cacheable());
}

#[test]
fn fractions_too_long_to_reduce_are_refused() {
    let limits = Limits::default();
    // Found by the fuzzer: a product of two ~40 000-digit fractions, whose
    // gcd took a second of one core.
    let e = err("2%%%%*-2001%05**- 20*-20015**- 20000").to_string();
    assert!(e.contains("the exact fraction"), "{e}");
    // The same sizes as integers stay exact, and an exact quotient of long
    // integers needs no fraction at all.
    let q = parse("10^20000 / 10^19999", &limits).unwrap();
    let a = q
        .evaluate(&limits, &Budget::unlimited(), &mut |_| {})
        .unwrap();
    assert_eq!(a.result, "10");
    let e = err("10^20000 / (10^19999 + 1)").to_string();
    assert!(e.contains("the exact fraction"), "{e}");
    // The same for a modulo with a fraction (another find).
    let e = err("10202!%020202%%**9090e0-06e2!%%").to_string();
    assert!(e.contains("the exact fraction"), "{e}");
    // Short fractions are untouched.
    let q = parse("1/3 + 7/4", &limits).unwrap();
    let a = q
        .evaluate(&limits, &Budget::unlimited(), &mut |_| {})
        .unwrap();
    assert_eq!(a.result, "2.08333333333333");
}
