//! The math engine: exact arithmetic of any size, sequences, primes and series.
//!
//! [`parse`] turns a question ("2 + 2", "what is 15% of 200", "prime factors
//! of 600851475143") into a [`Query`]. Parsing is cheap: it lexes, parses and
//! checks sizes against the [`Limits`] but computes nothing heavy. The
//! [`Query`] owns its data, so it can be moved to another thread and
//! evaluated there with [`Query::evaluate`], which honours a [`Budget`] (time
//! limit and cancellation) and reports progress lines for long computations.
//!
//! Numbers are exact wherever possible: integers of any size, rationals
//! (printed as decimals: `7/4 = 1.75`, `1/3 = 0.333333333333333`), and `f64`
//! only for irrational functions (`sqrt(2)`, `sin`, `ln`, ...).
//!
//! ```
//! use abacus::math::{parse, Budget, Limits, Operation};
//!
//! let limits = Limits::default();
//! let budget = Budget::new(limits.cpu_time);
//! let answer = parse("what is 2 plus 3", &limits)
//!     .unwrap()
//!     .evaluate(&limits, &budget, &mut |_| {})
//!     .unwrap();
//! assert_eq!(answer.operation, Operation::Arithmetic);
//! assert_eq!(answer.result, "5");
//! assert_eq!(answer.text, "2 + 3 = 5");
//! ```

mod budget;
mod error;
mod lexer;
mod llm;
mod modular;
mod number;
mod operators;
mod parser;
pub mod parts;
mod primes;
mod sequences;
mod symbolic;
mod words;

mod agent;
pub mod history;
pub use agent::MathAgent;

pub use budget::{Budget, CancelHandle};
pub use error::MathError;

use std::time::Duration;

use num_bigint::{BigInt, Sign};
use num_integer::Integer;
use num_traits::{Signed, ToPrimitive, Zero};

use budget::Progress;
use number::{check_digits, decimal_digits, log10_big, Num};
use parser::{Arg, BinOp, Func, Node, Parser};
use words::Cmd;

/// What the engine can do; appended to "not understood" errors.
pub(crate) const SUPPORTED_HELP: &str = "I can answer arithmetic (\"2 + 2\", \"(1 + 2) * 3\", \
\"2^200\", \"15% of 200\", \"17 mod 5\", \"what is 2 plus 3\"), functions (sqrt, abs, ln, log, \
exp, sin, cos, tan, floor, ceil, round) and the constants pi and e (\"square root of 16\", \
\"sin(pi / 2)\"), \"fibonacci 100\", \"factorial 100\" or \"100!\", \"prime factors \
600851475143\", \"is 97 prime\", \"gcd 12 18\", \"lcm 4 6\", \"sum of 1, 2, 3\" (or \"sum \
1..100\"), \"mean of 2, 4, 9\", \"100 choose 3\", \"permutations of 5\", \"totient of 36\", \
\"divisors of 28\", \"3^200 mod 13\", calculus (\"derivative of x^3\", \"integral of \
cos(x)\", \"integral of x^2 from 0 to 3\") and equations (\"solve x^2 - 5x + 6 = 0\", \"3x + 2 = \
11\").";

/// Resource limits applied to every query.
///
/// ```
/// use abacus::math::Limits;
/// let limits = Limits { max_sequence_n: 1_000, ..Limits::default() };
/// assert_eq!(limits.max_input_len, 4096);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted question, in bytes (default 4096).
    pub max_input_len: usize,
    /// Deepest nesting of parentheses, unary operators, powers and function
    /// calls (default 64; never more than 256 whatever is configured).
    pub max_depth: usize,
    /// Largest N for fibonacci and factorial, and most terms of a sum or mean (default 100 000).
    pub max_sequence_n: u64,
    /// Most decimal digits of any exact result (default 100 000); estimated
    /// before computing powers, products, factorials and fibonacci numbers.
    pub max_result_digits: usize,
    /// Most decimal digits of a number to factor or test for primality (default 60).
    pub max_factor_digits: usize,
    /// CPU time allowed per query (default 5 s); see [`Budget`].
    pub cpu_time: Duration,
}

impl Default for Limits {
    /// The defaults of the `--max-*` and `--cpu-time-ms` flags.
    fn default() -> Self {
        use crate::config::defaults as d;
        Limits {
            max_input_len: d::MAX_EXPRESSION_LEN,
            max_depth: d::MAX_DEPTH,
            max_sequence_n: d::MAX_SEQUENCE_N,
            max_result_digits: d::MAX_RESULT_DIGITS,
            max_factor_digits: d::MAX_FACTOR_DIGITS,
            cpu_time: Duration::from_millis(d::CPU_TIME_MS),
        }
    }
}

/// The kind of a query, e.g. for metrics and for deciding where to run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// An expression: `2 + 2`, `sqrt(16)`, `15% of 200`, `2^200`.
    Arithmetic,
    /// The N-th Fibonacci number (also an expression using `fib(...)`).
    Fibonacci,
    /// N factorial (also an expression using `!` or `factorial(...)`).
    Factorial,
    /// The prime factorization of an integer.
    PrimeFactors,
    /// Whether an integer is prime.
    IsPrime,
    /// The greatest common divisor of two or more integers.
    Gcd,
    /// The least common multiple of two or more integers.
    Lcm,
    /// The sum of a series of numbers or integer ranges.
    Sum,
    /// The arithmetic mean of a series of numbers or integer ranges.
    Mean,
    /// Binomial coefficients and permutations: `10 choose 3`, `permutations of 5`.
    Combinatorics,
    /// Euler's totient and the divisors of an integer.
    NumberTheory,
    /// Derivatives and integrals: `derivative of x^3`, `integral of cos(x)`.
    Calculus,
}

impl Operation {
    /// A short snake_case name, suitable as a metrics label.
    ///
    /// ```
    /// use abacus::math::Operation;
    /// assert_eq!(Operation::PrimeFactors.as_str(), "prime_factors");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Arithmetic => "arithmetic",
            Operation::Fibonacci => "fibonacci",
            Operation::Factorial => "factorial",
            Operation::PrimeFactors => "prime_factors",
            Operation::IsPrime => "is_prime",
            Operation::Gcd => "gcd",
            Operation::Lcm => "lcm",
            Operation::Sum => "sum",
            Operation::Mean => "mean",
            Operation::Combinatorics => "combinatorics",
            Operation::NumberTheory => "number_theory",
            Operation::Calculus => "calculus",
        }
    }

    /// Whether the operation may take long enough to deserve a background
    /// task with progress: fibonacci, factorial, prime factors, sum and mean.
    ///
    /// ```
    /// use abacus::math::Operation;
    /// assert!(Operation::Factorial.is_long());
    /// assert!(!Operation::Arithmetic.is_long());
    /// ```
    pub fn is_long(&self) -> bool {
        matches!(
            self,
            Operation::Fibonacci
                | Operation::Factorial
                | Operation::PrimeFactors
                | Operation::Sum
                | Operation::Mean
                | Operation::Combinatorics
                | Operation::NumberTheory
        )
    }
}

/// The answer to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What was computed.
    pub operation: Operation,
    /// Just the value: `"4"`, `"1.75"`, `"2^2 × 3"`, `"true"`.
    pub result: String,
    /// One human-readable line: `"2 + 2 = 4"`, `"12 = 2^2 × 3"`, `"97 is prime"`.
    pub text: String,
}

/// A parsed question, ready to evaluate. Owns its data (`Send + 'static`).
#[derive(Debug, Clone)]
pub struct Query {
    operation: Operation,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Expr(Node),
    Command(Cmd, Vec<Arg>),
    Calculus(symbolic::Question),
}

/// Parses a question. Cheap: lexes, parses and checks sizes against `limits`
/// (input length, nesting depth, literal sizes, the N of fibonacci/factorial
/// and the digits of a number to factor when given literally); the real work
/// happens in [`Query::evaluate`].
///
/// Errors: [`MathError::LimitExceeded`] for oversized input,
/// [`MathError::Parse`] for malformed math, [`MathError::NotUnderstood`]
/// (listing what is supported) for text that is not math.
///
/// ```
/// use abacus::math::{parse, Limits, MathError, Operation};
/// let limits = Limits::default();
/// assert_eq!(parse("is 97 prime", &limits).unwrap().operation(), Operation::IsPrime);
/// assert!(matches!(parse("hello there", &limits), Err(MathError::NotUnderstood(_))));
/// ```
pub fn parse(text: &str, limits: &Limits) -> Result<Query, MathError> {
    if text.len() > limits.max_input_len {
        return Err(MathError::limit(format!(
            "the question is {} bytes long; the maximum is {}",
            text.len(),
            limits.max_input_len
        )));
    }
    if let Some(question) = symbolic::question(text) {
        return Ok(Query {
            operation: Operation::Calculus,
            body: Body::Calculus(question?),
        });
    }
    let toks = match lexer::lex(text) {
        Ok(toks) => toks,
        Err(_) if !text.bytes().any(|b| b.is_ascii_digit()) => {
            return Err(MathError::NotUnderstood(format!(
                "That does not look like math. {SUPPORTED_HELP}"
            )));
        }
        Err(e) => return Err(e),
    };
    let plan = words::plan(&toks);
    if plan.tokens.is_empty() {
        return Err(match plan.cmd {
            Some((cmd, pos)) => MathError::parse(format!("{} needs a number", cmd.name()), pos),
            None => MathError::NotUnderstood(format!("There is no question. {SUPPORTED_HELP}")),
        });
    }
    let mut parser = Parser::new(&plan.tokens, limits, text.len());
    match plan.cmd {
        None => {
            let node = parser.expression()?;
            Ok(Query {
                operation: classify(&node),
                body: Body::Expr(node),
            })
        }
        Some((cmd, pos)) => {
            let args = parser.list(matches!(cmd, Cmd::Sum | Cmd::Mean))?;
            validate(cmd, pos, &args, limits)?;
            Ok(Query {
                operation: command_operation(cmd),
                body: Body::Command(cmd, args),
            })
        }
    }
}

fn command_operation(cmd: Cmd) -> Operation {
    match cmd {
        Cmd::Fib => Operation::Fibonacci,
        Cmd::Fact => Operation::Factorial,
        Cmd::Factors => Operation::PrimeFactors,
        Cmd::IsPrime => Operation::IsPrime,
        Cmd::Gcd => Operation::Gcd,
        Cmd::Lcm => Operation::Lcm,
        Cmd::Sum => Operation::Sum,
        Cmd::Mean => Operation::Mean,
        Cmd::Choose | Cmd::Permutations => Operation::Combinatorics,
        Cmd::Totient | Cmd::Divisors => Operation::NumberTheory,
    }
}

/// The operation of an expression: the costliest one it uses (so that
/// `fib(1000) + 1` counts as long), else gcd/lcm at the top, else arithmetic.
fn classify(node: &Node) -> Operation {
    fn walk(node: &Node, best: &mut Operation) {
        let rank = |op: Operation| match op {
            Operation::Fibonacci => 4,
            Operation::Factorial => 3,
            Operation::Sum | Operation::Mean => 2,
            _ => 0,
        };
        let mut consider = |op: Operation| {
            if rank(op) > rank(*best) {
                *best = op;
            }
        };
        match node {
            Node::Num(_) | Node::Scaled(..) | Node::Const(_) => {}
            Node::Neg(x) | Node::Percent(x) => walk(x, best),
            Node::Fact(x) => {
                consider(Operation::Factorial);
                walk(x, best);
            }
            Node::Pow(a, b) | Node::PercentOf(a, b) => {
                walk(a, best);
                walk(b, best);
            }
            Node::Chain(items) => items.iter().for_each(|(_, n)| walk(n, best)),
            Node::Call(f, args) => {
                match f {
                    Func::Fib => consider(Operation::Fibonacci),
                    Func::Factorial => consider(Operation::Factorial),
                    Func::Sum => consider(Operation::Sum),
                    Func::Mean => consider(Operation::Mean),
                    _ => {}
                }
                args.iter().for_each(|n| walk(n, best));
            }
        }
    }
    let mut best = match node {
        Node::Call(Func::Gcd, _) => Operation::Gcd,
        Node::Call(Func::Lcm, _) => Operation::Lcm,
        _ => Operation::Arithmetic,
    };
    walk(node, &mut best);
    best
}

/// Checks a command's argument count and, for literal arguments, its limits.
fn validate(cmd: Cmd, pos: usize, args: &[Arg], limits: &Limits) -> Result<(), MathError> {
    let name = cmd.name();
    let single = matches!(
        cmd,
        Cmd::Fib | Cmd::Fact | Cmd::Factors | Cmd::IsPrime | Cmd::Totient | Cmd::Divisors
    );
    if cmd == Cmd::Choose && args.len() != 2 {
        return Err(MathError::parse(
            format!("{name} takes two numbers, n and k (\"10 choose 3\")"),
            pos,
        ));
    }
    if cmd == Cmd::Permutations && !(1..=2).contains(&args.len()) {
        return Err(MathError::parse(
            format!("{name} takes n, or n and k (\"permutations of 5\", \"10 permute 3\")"),
            pos,
        ));
    }
    if single && args.len() != 1 {
        return Err(MathError::parse(
            format!("{name} takes exactly one number, but got {}", args.len()),
            pos,
        ));
    }
    if matches!(cmd, Cmd::Gcd | Cmd::Lcm) && args.len() < 2 {
        return Err(MathError::parse(
            format!("{name} needs at least two numbers"),
            pos,
        ));
    }
    let literal = |a: &Arg| match a {
        Arg::One(Node::Num(n)) => n.integer_value(),
        _ => None,
    };
    match cmd {
        Cmd::Fib | Cmd::Fact => {
            if let Some(n) = args.first().and_then(literal) {
                let n = n.to_u64().unwrap_or(u64::MAX);
                if cmd == Cmd::Fib {
                    sequences::check_fibonacci(n, limits)?;
                } else {
                    sequences::check_factorial(n, limits)?;
                }
            }
        }
        Cmd::Factors | Cmd::IsPrime | Cmd::Totient | Cmd::Divisors => {
            if let Some(n) = args.first().and_then(literal) {
                check_factor_digits(&n, cmd, limits)?;
            }
        }
        Cmd::Choose | Cmd::Permutations => {
            if let Some(n) = args.first().and_then(literal) {
                sequences::check_factorial(n.to_u64().unwrap_or(u64::MAX), limits)?;
            }
        }
        Cmd::Sum | Cmd::Mean => {
            let mut count = BigInt::zero();
            for a in args {
                match a {
                    Arg::Range(Node::Num(a), Node::Num(b)) => {
                        if let (Some(a), Some(b)) = (a.integer_value(), b.integer_value()) {
                            count += sequences::range_len(&a, &b);
                        }
                    }
                    _ => count += 1u32,
                }
            }
            check_count(&count, name, limits)?;
        }
        Cmd::Gcd | Cmd::Lcm => {}
    }
    Ok(())
}

fn check_factor_digits(n: &BigInt, cmd: Cmd, limits: &Limits) -> Result<(), MathError> {
    let digits = decimal_digits(n);
    if digits > limits.max_factor_digits {
        return Err(MathError::limit(format!(
            "{} is limited to numbers of at most {} digits; this one has {digits}",
            cmd.name(),
            limits.max_factor_digits
        )));
    }
    Ok(())
}

fn check_count(count: &BigInt, name: &str, limits: &Limits) -> Result<(), MathError> {
    if count > &BigInt::from(limits.max_sequence_n) {
        return Err(MathError::limit(format!(
            "the {name} has {count} terms; the maximum is {}",
            limits.max_sequence_n
        )));
    }
    Ok(())
}

impl Query {
    /// What the query computes.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// Whether the answer may be cached, keyed by the question text (and the
    /// limits). True for every query the engine parses today: each answer is
    /// a pure function of the text and the limits (no clock, randomness or
    /// state). Errors such as [`MathError::TimedOut`] depend on machine load
    /// and should not be cached.
    pub fn is_cacheable(&self) -> bool {
        true
    }

    /// Computes the answer within `budget`, calling `progress` with a few
    /// human-readable lines (at most 20) during long computations.
    ///
    /// Results are exact for integers and rationals; irrational functions
    /// use `f64` and print 15 significant digits. Prime factorizations print
    /// ascending primes joined by `" × "` with repeated primes as powers
    /// (`"2^2 × 3"`, `"71 × 839 × 1471 × 6857"`); primality prints `"true"`
    /// or `"false"`.
    ///
    /// ```
    /// use abacus::math::{parse, Budget, Limits};
    /// let limits = Limits::default();
    /// let budget = Budget::new(limits.cpu_time);
    /// let mut lines = Vec::new();
    /// let q = parse("prime factors 600851475143", &limits).unwrap();
    /// let answer = q.evaluate(&limits, &budget, &mut |l| lines.push(l)).unwrap();
    /// assert_eq!(answer.result, "71 × 839 × 1471 × 6857");
    /// assert_eq!(lines[0], "found factor 71, remaining 8462696833");
    /// ```
    pub fn evaluate(
        &self,
        limits: &Limits,
        budget: &Budget,
        progress: &mut dyn FnMut(String),
    ) -> Result<Answer, MathError> {
        budget.check()?;
        let mut progress = Progress::new(progress);
        let mut ev = Eval {
            limits,
            budget,
            progress: &mut progress,
        };
        let (result, text) = match &self.body {
            Body::Expr(node) => {
                let result = ev.eval(node)?.to_string();
                let mut text = String::with_capacity(result.len() + 16);
                node.write(&mut text);
                text.push_str(" = ");
                text.push_str(&result);
                (result, text)
            }
            Body::Command(cmd, args) => ev.command(*cmd, args)?,
            Body::Calculus(q) => q.answer(limits)?,
        };
        Ok(Answer {
            operation: self.operation,
            result,
            text,
        })
    }
}

/// Evaluation context.
struct Eval<'e, 'p> {
    limits: &'e Limits,
    budget: &'e Budget,
    progress: &'e mut Progress<'p>,
}

impl Eval<'_, '_> {
    fn max_digits(&self) -> usize {
        self.limits.max_result_digits
    }

    /// Evaluates an expression. Recursion depth is bounded by the parser's depth limit.
    fn eval(&mut self, node: &Node) -> Result<Num, MathError> {
        match node {
            Node::Num(n) => Ok(n.clone()),
            Node::Scaled(m, k) => {
                let scale = Num::Int(10).pow(&Num::Int(k.abs()), self.max_digits())?;
                if *k >= 0 {
                    m.mul(&scale, self.max_digits())
                } else {
                    m.div(&scale)
                }
            }
            Node::Const(c) => Ok(Num::Float(c.value())),
            Node::Neg(x) => Ok(self.eval(x)?.neg()),
            Node::Chain(items) => {
                let Some(((_, first), rest)) = items.split_first() else {
                    return Ok(Num::Int(0));
                };
                // `b^e mod m` never forms `b^e`.
                let (mut acc, rest) = match (first, rest) {
                    (Node::Pow(b, e), [(BinOp::Mod, m), rest @ ..]) => {
                        (self.modpow([b, e, m])?, rest)
                    }
                    _ => (self.eval(first)?, rest),
                };
                for (op, item) in rest {
                    let v = self.eval(item)?;
                    acc = match op {
                        BinOp::Add => acc.add(&v)?,
                        BinOp::Sub => acc.sub(&v)?,
                        BinOp::Mul => acc.mul(&v, self.max_digits())?,
                        BinOp::Div => acc.div(&v)?,
                        BinOp::Mod => acc.rem(&v)?,
                    };
                }
                Ok(acc)
            }
            Node::Pow(b, e) => {
                let (b, e) = (self.eval(b)?, self.eval(e)?);
                self.budget.check()?;
                b.pow(&e, self.max_digits())
            }
            Node::Fact(x) => {
                let n = self.eval(x)?;
                self.factorial(&n)
            }
            Node::Percent(x) => self.eval(x)?.div(&Num::Int(100)),
            Node::PercentOf(p, x) => {
                let (p, x) = (self.eval(p)?, self.eval(x)?);
                p.mul(&x, self.max_digits())?.div(&Num::Int(100))
            }
            Node::Call(f, args) => self.call(*f, args),
        }
    }

    fn eval_all(&mut self, args: &[Node]) -> Result<Vec<Num>, MathError> {
        args.iter().map(|a| self.eval(a)).collect()
    }

    fn call(&mut self, f: Func, args: &[Node]) -> Result<Num, MathError> {
        self.budget.check()?;
        let Some(first) = args.first() else {
            return Err(MathError::parse(
                format!("{} needs an argument", f.name()),
                0,
            ));
        };
        match f {
            Func::Fib => {
                let n = self.eval(first)?;
                self.fibonacci(&n)
            }
            Func::Factorial => {
                let n = self.eval(first)?;
                self.factorial(&n)
            }
            Func::Gcd | Func::Lcm => {
                let vals = self.eval_all(args)?;
                let ints = integers(&vals, f.name())?;
                self.gcd_lcm(f == Func::Gcd, &ints)
            }
            Func::Sum | Func::Mean => {
                let vals = self.eval_all(args)?;
                let mut total = Num::Int(0);
                for v in &vals {
                    total = total.add(v)?;
                }
                if f == Func::Sum {
                    Ok(total)
                } else {
                    total.div(&Num::Int(vals.len() as i64))
                }
            }
            Func::Min | Func::Max => {
                let vals = self.eval_all(args)?;
                let want = if f == Func::Min {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                };
                let mut best: Option<Num> = None;
                for v in vals {
                    best = match best {
                        Some(b) if v.cmp_value(&b) != want => Some(b),
                        _ => Some(v),
                    };
                }
                Ok(best.unwrap_or(Num::Int(0)))
            }
            Func::ModPow => match args {
                [b, e, m] => self.modpow([b, e, m]),
                _ => Err(MathError::parse("modpow takes 3 arguments", 0)),
            },
            Func::Pow if args.len() == 3 => self.modpow([&args[0], &args[1], &args[2]]),
            Func::Pow => {
                let b = self.eval(first)?;
                let e = match args.get(1) {
                    Some(e) => self.eval(e)?,
                    None => return Err(MathError::parse("pow takes 2 arguments", 0)),
                };
                b.pow(&e, self.max_digits())
            }
            Func::Log if args.len() == 2 => {
                let x = self.eval(first)?;
                let base = self.eval(&args[1])?;
                let lx = positive_log(&x, "log", Num::ln_positive)?;
                let lb = positive_log(&base, "log", Num::ln_positive)?;
                if lb == 0.0 {
                    return Err(MathError::domain("a logarithm's base cannot be 1"));
                }
                Num::float(lx / lb)
            }
            _ => {
                let x = self.eval(first)?;
                unary_function(f, &x)
            }
        }
    }

    /// `b^e mod m` for whole numbers, by [`modular::modpow`].
    fn modpow(&mut self, [b, e, m]: [&Node; 3]) -> Result<Num, MathError> {
        let vals = [self.eval(b)?, self.eval(e)?, self.eval(m)?];
        let ints = integers(&vals, "modular exponentiation")?;
        let [b, e, m] = ints.as_slice() else {
            return Err(MathError::parse("modpow takes 3 arguments", 0));
        };
        modular::modpow(b, e, m, self.budget).map(Num::from_big)
    }

    /// A non-negative integer index for fibonacci/factorial.
    fn index(&self, n: &Num, what: &str) -> Result<u64, MathError> {
        let i = n
            .integer_value()
            .filter(|i| !i.is_negative())
            .ok_or_else(|| {
                MathError::domain(format!(
                    "{what} is defined for non-negative whole numbers, not {n}"
                ))
            })?;
        Ok(i.to_u64().unwrap_or(u64::MAX))
    }

    fn fibonacci(&mut self, n: &Num) -> Result<Num, MathError> {
        let n = self.index(n, "fibonacci")?;
        let f = sequences::fibonacci(n, self.limits, self.budget, self.progress)?;
        Ok(Num::from_big(BigInt::from(f)))
    }

    fn factorial(&mut self, n: &Num) -> Result<Num, MathError> {
        let n = self.index(n, "factorial")?;
        let f = sequences::factorial(n, self.limits, self.budget, self.progress)?;
        Ok(Num::from_big(BigInt::from(f)))
    }

    /// `n choose k` (Cmd::Choose) or the arrangements of `k` of `n` things,
    /// `n! / (n - k)!` (Cmd::Permutations), exact; 0 when `k > n`.
    fn arrangements(&self, cmd: Cmd, n: u64, k: u64) -> Result<BigInt, MathError> {
        if k > n {
            return Ok(BigInt::zero());
        }
        let k = if cmd == Cmd::Choose { k.min(n - k) } else { k };
        sequences::check_factorial(k, self.limits)?;
        let mut acc = BigInt::from(1u32);
        for i in 0..k {
            if i % 256 == 255 {
                self.budget.check()?;
            }
            acc *= n - i;
            if cmd == Cmd::Choose {
                // Exact at every step: a product of i + 1 consecutive
                // integers is divisible by (i + 1)!.
                acc /= i + 1;
            }
        }
        check_digits(
            f64::from(u32::try_from(acc.bits()).unwrap_or(u32::MAX)) * std::f64::consts::LOG10_2,
            self.max_digits(),
            cmd.name(),
        )?;
        Ok(acc)
    }

    fn gcd_lcm(&self, gcd: bool, ints: &[BigInt]) -> Result<Num, MathError> {
        let mut acc = ints.first().map(|i| i.abs()).unwrap_or_default();
        for i in ints.iter().skip(1) {
            if gcd {
                acc = acc.gcd(i);
            } else {
                if acc.is_zero() || i.is_zero() {
                    return Ok(Num::Int(0));
                }
                let digits = log10_big(acc.magnitude()) + log10_big(i.magnitude());
                check_digits(digits.floor() + 1.0, self.max_digits(), "the lcm")?;
                acc = acc.lcm(i);
            }
        }
        Ok(Num::from_big(acc))
    }

    /// Evaluates a command's single integer argument, checking the factor digit limit.
    fn factor_arg(&mut self, cmd: Cmd, args: &[Arg]) -> Result<BigInt, MathError> {
        let v = self.one(args)?;
        let n = v.integer_value().ok_or_else(|| {
            MathError::domain(format!("{} needs a whole number, not {v}", cmd.name()))
        })?;
        check_factor_digits(&n, cmd, self.limits)?;
        Ok(n)
    }

    fn one(&mut self, args: &[Arg]) -> Result<Num, MathError> {
        match args {
            [Arg::One(node)] => self.eval(node),
            _ => Err(MathError::parse("expected exactly one number", 0)),
        }
    }

    /// Runs a command; returns the result and the summary line.
    fn command(&mut self, cmd: Cmd, args: &[Arg]) -> Result<(String, String), MathError> {
        match cmd {
            Cmd::Fib => {
                let n = self.one(args)?;
                let value = self.fibonacci(&n)?.to_string();
                let mut text = format!("fibonacci({n}) = {value}");
                // Small indices also show the sequence up to the answer.
                if let Some(k) = n.integer_value().and_then(|k| k.to_u64()) {
                    if (2..=20).contains(&k) {
                        let terms: Vec<String> = sequences::fibonacci_terms(k)
                            .iter()
                            .map(u64::to_string)
                            .collect();
                        text.push_str(&format!(" (sequence: {})", terms.join(", ")));
                    }
                }
                Ok((value, text))
            }
            Cmd::Fact => {
                let n = self.one(args)?;
                let value = self.factorial(&n)?.to_string();
                let text = format!("{n}! = {value}");
                Ok((value, text))
            }
            Cmd::Factors => {
                let n = self.factor_arg(cmd, args)?;
                if n.is_zero() {
                    return Err(MathError::domain("0 has no prime factorization"));
                }
                let factors = primes::factorize(n.magnitude(), self.budget, self.progress)?;
                let mut value = primes::format_factors(&factors);
                if n.sign() == Sign::Minus {
                    value = if factors.is_empty() {
                        "-1".to_string()
                    } else {
                        format!("-1 × {value}")
                    };
                }
                let prime = factors.len() == 1 && factors[0].1 == 1 && n.sign() == Sign::Plus;
                let text = if prime {
                    format!("{n} = {value} (prime)")
                } else {
                    format!("{n} = {value}")
                };
                Ok((value, text))
            }
            Cmd::IsPrime => {
                let n = self.factor_arg(cmd, args)?;
                let prime = n.sign() == Sign::Plus && primes::is_prime(n.magnitude());
                let text = format!("{n} is {}prime", if prime { "" } else { "not " });
                Ok((prime.to_string(), text))
            }
            Cmd::Gcd | Cmd::Lcm => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.one(std::slice::from_ref(a))?);
                }
                let ints = integers(&vals, cmd.name())?;
                let value = self.gcd_lcm(cmd == Cmd::Gcd, &ints)?.to_string();
                let text = format!("{}({}) = {value}", cmd.name(), list_text(args));
                Ok((value, text))
            }
            Cmd::Choose | Cmd::Permutations => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.one(std::slice::from_ref(a))?);
                }
                let n = self.index(&vals[0], cmd.name())?;
                let k = match vals.get(1) {
                    Some(k) => self.index(k, cmd.name())?,
                    None => n,
                };
                let value = self.arrangements(cmd, n, k)?;
                let text = match (cmd, args.len()) {
                    (Cmd::Choose, _) => format!("{n} choose {k} = {value}"),
                    (_, 1) => format!("{n} things can be arranged in {n}! = {value} ways"),
                    _ => format!("permutations of {k} out of {n} = {value}"),
                };
                Ok((value.to_string(), text))
            }
            Cmd::Totient => {
                let n = self.factor_arg(cmd, args)?;
                if n.sign() != Sign::Plus {
                    return Err(MathError::domain(
                        "the totient is defined for positive integers",
                    ));
                }
                let factors = primes::factorize(n.magnitude(), self.budget, self.progress)?;
                // φ(n) = n · Π (1 - 1/p) = Π p^(e-1) · (p - 1)
                let mut phi = num_bigint::BigUint::from(1u32);
                for (p, e) in &factors {
                    phi *= p.pow(e - 1) * (p - 1u32);
                }
                let text = format!("φ({n}) = {phi}");
                Ok((phi.to_string(), text))
            }
            Cmd::Divisors => {
                let n = self.factor_arg(cmd, args)?;
                if n.is_zero() {
                    return Err(MathError::domain("every integer divides 0"));
                }
                let factors = primes::factorize(n.magnitude(), self.budget, self.progress)?;
                let count: u64 = factors.iter().map(|(_, e)| u64::from(*e) + 1).product();
                let n_abs = n.magnitude().clone();
                if count > 200 {
                    let text = format!("{n_abs} has {count} divisors");
                    return Ok((count.to_string(), text));
                }
                let mut divisors = vec![num_bigint::BigUint::from(1u32)];
                for (p, e) in &factors {
                    let mut next = Vec::with_capacity(divisors.len() * (*e as usize + 1));
                    for d in &divisors {
                        let mut power = d.clone();
                        next.push(power.clone());
                        for _ in 0..*e {
                            power *= p;
                            next.push(power.clone());
                        }
                    }
                    divisors = next;
                }
                divisors.sort();
                let list: Vec<String> = divisors.iter().map(ToString::to_string).collect();
                let value = list.join(", ");
                let text = format!("the {count} divisors of {n_abs}: {value}");
                Ok((value, text))
            }
            Cmd::Sum | Cmd::Mean => {
                let (total, count) = self.series(cmd, args)?;
                let value = if cmd == Cmd::Sum {
                    total
                } else {
                    let count = Num::from_big(count);
                    total.div(&count)?
                }
                .to_string();
                let text = format!("{}({}) = {value}", cmd.name(), list_text(args));
                Ok((value, text))
            }
        }
    }

    /// The exact total and number of terms of a series.
    fn series(&mut self, cmd: Cmd, args: &[Arg]) -> Result<(Num, BigInt), MathError> {
        let mut total = Num::Int(0);
        let mut count = BigInt::zero();
        for (i, a) in args.iter().enumerate() {
            if i % 256 == 255 {
                self.budget.check()?;
            }
            match a {
                Arg::One(node) => {
                    total = total.add(&self.eval(node)?)?;
                    count += 1u32;
                }
                Arg::Range(lo, hi) => {
                    let (lo, hi) = (self.eval(lo)?, self.eval(hi)?);
                    let (Some(lo), Some(hi)) = (lo.integer_value(), hi.integer_value()) else {
                        return Err(MathError::domain(format!(
                            "a range in a {} needs whole-number ends, not {lo} and {hi}",
                            cmd.name()
                        )));
                    };
                    count += sequences::range_len(&lo, &hi);
                    check_count(&count, cmd.name(), self.limits)?;
                    total = total.add(&Num::from_big(sequences::range_sum(&lo, &hi)))?;
                }
            }
        }
        check_count(&count, cmd.name(), self.limits)?;
        Ok((total, count))
    }
}

/// The values as integers, or a domain error naming the operation.
fn integers(vals: &[Num], name: &str) -> Result<Vec<BigInt>, MathError> {
    vals.iter()
        .map(|v| {
            v.integer_value().ok_or_else(|| {
                MathError::domain(format!("{name} is defined for whole numbers, not {v}"))
            })
        })
        .collect()
}

/// Command arguments as text: `1, 2, 3` or `1..100`.
fn list_text(args: &[Arg]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match a {
            Arg::One(n) => n.write(&mut out),
            Arg::Range(a, b) => {
                a.write(&mut out);
                out.push_str("..");
                b.write(&mut out);
            }
        }
    }
    out
}

/// `log(x)` for a positive `x`, else a domain error naming the function.
fn positive_log(x: &Num, name: &str, log: impl Fn(&Num) -> f64) -> Result<f64, MathError> {
    if x.is_negative() || x.is_zero() {
        return Err(MathError::domain(format!(
            "{name}({x}) is undefined: the logarithm needs a positive number"
        )));
    }
    Ok(log(x))
}

/// log10 of a positive number, accurate beyond `f64` range.
fn log10(x: &Num) -> f64 {
    match x {
        Num::Int(_) | Num::Float(_) => x.to_f64().log10(),
        _ => x.ln_positive() / std::f64::consts::LN_10,
    }
}

/// log2 of a positive number, accurate beyond `f64` range.
fn log2(x: &Num) -> f64 {
    match x {
        Num::Int(_) | Num::Float(_) => x.to_f64().log2(),
        _ => x.ln_positive() / std::f64::consts::LN_2,
    }
}

/// A trigonometric result, with rounding noise at multiples of pi snapped to 0
/// (`sin(pi)` is 0, not 1.2e-16).
fn trig(x: f64, f: fn(f64) -> f64) -> Result<Num, MathError> {
    let r = f(x);
    if r.abs() < 1e-15 && x.abs() > 1e-3 {
        return Ok(Num::Int(0));
    }
    Num::float(r)
}

fn unary_function(f: Func, x: &Num) -> Result<Num, MathError> {
    match f {
        Func::Sqrt => {
            if x.is_negative() {
                return Err(MathError::domain(format!(
                    "the square root of a negative number ({x}) is not a real number"
                )));
            }
            if let Some(r) = x.exact_root(2) {
                return Ok(r);
            }
            Num::float(x.to_f64_checked()?.sqrt())
        }
        Func::Cbrt => match x.exact_root(3) {
            Some(r) => Ok(r),
            None => Num::float(x.to_f64_checked()?.cbrt()),
        },
        Func::Abs => Ok(x.abs()),
        Func::Ln => Num::float(positive_log(x, "ln", Num::ln_positive)?),
        Func::Log | Func::Log10 => {
            let name = if f == Func::Log { "log" } else { "log10" };
            Num::float(positive_log(x, name, log10)?)
        }
        Func::Log2 => Num::float(positive_log(x, "log2", log2)?),
        Func::Exp => Num::float(x.to_f64_checked()?.exp()),
        Func::Sin => trig(x.to_f64_checked()?, f64::sin),
        Func::Cos => trig(x.to_f64_checked()?, f64::cos),
        Func::Tan => trig(x.to_f64_checked()?, f64::tan),
        Func::Asin | Func::Acos => {
            let v = x.to_f64_checked()?;
            if !(-1.0..=1.0).contains(&v) {
                return Err(MathError::domain(format!(
                    "{}({x}) is undefined: the argument must be between -1 and 1",
                    f.name()
                )));
            }
            Num::float(if f == Func::Asin { v.asin() } else { v.acos() })
        }
        Func::Atan => Num::float(x.to_f64_checked()?.atan()),
        Func::Floor => Ok(x.floor()),
        Func::Ceil => Ok(x.ceil()),
        Func::Round => Ok(x.round()),
        // Multi-argument and sequence functions are handled by the caller.
        _ => Err(MathError::parse(
            format!("{} takes more arguments", f.name()),
            0,
        )),
    }
}

#[cfg(test)]
mod tests;
