//! The expression AST and a recursive-descent / precedence-climbing parser.
//!
//! Grammar, loosest to tightest binding:
//!
//! ```text
//! expr    := term (('+' | '-') term)*                      left-assoc
//! term    := unary (('*' | '/' | '%' | 'mod') unary)*       left-assoc
//! unary   := ('-' | '+') unary | power
//! power   := postfix ('^' unary)?                          right-assoc; -2^2 = -(2^2)
//! postfix := primary ('!' | '%' | '%' 'of' unary)*
//! primary := number | constant | '(' expr ')' | function '(' expr (',' expr)* ')'
//!          | function unary
//! ```
//!
//! Left-associative chains are stored flat ([`Node::Chain`]) so that long
//! sums do not make the tree (and its evaluation and drop) deep; every other
//! kind of nesting is counted against the depth limit before recursing.

use std::fmt::{self, Write as _};

use num_bigint::BigInt;
use num_rational::BigRational;

use super::lexer::{Tok, Token};
use super::number::{check_digits, Num};
use super::operators;
use super::{Limits, MathError};

/// Nesting deeper than this is refused whatever [`Limits::max_depth`] says,
/// to keep the parser's and evaluator's stack use bounded.
pub(crate) const HARD_MAX_DEPTH: usize = 256;

/// A binary operator of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// A named constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Const {
    Pi,
    E,
    Tau,
}

impl Const {
    fn from_name(w: &str) -> Option<Const> {
        [("pi", Const::Pi), ("e", Const::E), ("tau", Const::Tau)]
            .into_iter()
            .find(|(n, _)| w.eq_ignore_ascii_case(n))
            .map(|(_, c)| c)
    }

    pub(crate) fn value(self) -> f64 {
        match self {
            Const::Pi => std::f64::consts::PI,
            Const::E => std::f64::consts::E,
            Const::Tau => std::f64::consts::TAU,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Const::Pi => "pi",
            Const::E => "e",
            Const::Tau => "tau",
        }
    }
}

/// A built-in function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Sqrt,
    Cbrt,
    Abs,
    Ln,
    Log,
    Log2,
    Log10,
    Exp,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Floor,
    Ceil,
    Round,
    Pow,
    ModPow,
    Min,
    Max,
    Fib,
    Factorial,
    Gcd,
    Lcm,
    Sum,
    Mean,
}

/// Spellings accepted for each function (matched case-insensitively).
const FUNC_NAMES: &[(&str, Func)] = &[
    ("sqrt", Func::Sqrt),
    ("cbrt", Func::Cbrt),
    ("abs", Func::Abs),
    ("ln", Func::Ln),
    ("log", Func::Log),
    ("log2", Func::Log2),
    ("log10", Func::Log10),
    ("lg", Func::Log10),
    ("exp", Func::Exp),
    ("sin", Func::Sin),
    ("cos", Func::Cos),
    ("tan", Func::Tan),
    ("asin", Func::Asin),
    ("arcsin", Func::Asin),
    ("acos", Func::Acos),
    ("arccos", Func::Acos),
    ("atan", Func::Atan),
    ("arctan", Func::Atan),
    ("floor", Func::Floor),
    ("ceil", Func::Ceil),
    ("ceiling", Func::Ceil),
    ("round", Func::Round),
    ("pow", Func::Pow),
    ("modpow", Func::ModPow),
    ("powmod", Func::ModPow),
    ("min", Func::Min),
    ("max", Func::Max),
    ("fib", Func::Fib),
    ("fibonacci", Func::Fib),
    ("factorial", Func::Factorial),
    ("gcd", Func::Gcd),
    ("lcm", Func::Lcm),
    ("sum", Func::Sum),
    ("mean", Func::Mean),
    ("avg", Func::Mean),
    ("average", Func::Mean),
];

impl Func {
    pub(crate) fn from_name(w: &str) -> Option<Func> {
        FUNC_NAMES
            .iter()
            .find(|(n, _)| w.eq_ignore_ascii_case(n))
            .map(|&(_, f)| f)
    }

    pub(crate) fn name(self) -> &'static str {
        FUNC_NAMES
            .iter()
            .find(|&&(_, f)| f == self)
            .map_or("?", |&(n, _)| n)
    }

    /// Minimum and maximum number of arguments.
    fn arity(self) -> (usize, usize) {
        match self {
            Func::Log => (1, 2),
            // `pow(b, e, m)` is modular, as in Python.
            Func::Pow => (2, 3),
            Func::ModPow => (3, 3),
            Func::Gcd | Func::Lcm => (2, usize::MAX),
            Func::Min | Func::Max | Func::Sum | Func::Mean => (1, usize::MAX),
            _ => (1, 1),
        }
    }
}

/// An expression tree.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// A literal (never negative).
    Num(Num),
    /// A literal with a decimal exponent, `m e k`; scaled when evaluated.
    Scaled(Num, i64),
    Const(Const),
    Neg(Box<Node>),
    /// `items[0].1 op1 items[1].1 op2 ...` evaluated left to right; `items[0].0`
    /// is ignored. All operators of one chain have the same precedence.
    Chain(Vec<(BinOp, Node)>),
    Pow(Box<Node>, Box<Node>),
    Fact(Box<Node>),
    /// `x%` = x / 100.
    Percent(Box<Node>),
    /// `p% of x` = p * x / 100.
    PercentOf(Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

/// One item of a command's argument list.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    One(Node),
    /// An inclusive integer range `a..b` / `a to b`.
    Range(Node, Node),
}

/// Whether a token can begin an operand (used to tell `a % b` from `a%` and
/// to split space-separated argument lists).
pub(crate) fn starts_operand(t: Tok<'_>) -> bool {
    match t {
        Tok::Num(_) | Tok::LParen => true,
        Tok::Ident(w) => Const::from_name(w).is_some() || Func::from_name(w).is_some(),
        _ => false,
    }
}

/// The `NotUnderstood` error for an unknown word.
pub(crate) fn unknown_word(w: &str) -> MathError {
    MathError::NotUnderstood(format!(
        "I don't understand \"{w}\". {}",
        super::SUPPORTED_HELP
    ))
}

/// Parser state over a token slice.
pub(crate) struct Parser<'t, 'a> {
    toks: &'t [Token<'a>],
    i: usize,
    max_depth: usize,
    max_digits: usize,
    /// Byte offset reported for "input ended" errors.
    end: usize,
}

impl<'t, 'a> Parser<'t, 'a> {
    pub(crate) fn new(toks: &'t [Token<'a>], limits: &Limits, end: usize) -> Self {
        Parser {
            toks,
            i: 0,
            max_depth: limits.max_depth.min(HARD_MAX_DEPTH),
            max_digits: limits.max_result_digits,
            end,
        }
    }

    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.i).map(|t| t.tok)
    }

    fn peek_at(&self, k: usize) -> Option<Tok<'a>> {
        self.toks.get(self.i + k).map(|t| t.tok)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(self.end, |t| t.pos)
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    /// A whole expression; every token must be used.
    pub(crate) fn expression(&mut self) -> Result<Node, MathError> {
        let node = self.expr(0)?;
        match self.toks.get(self.i) {
            None => Ok(node),
            Some(t) => Err(self.unexpected(t)),
        }
    }

    /// A command's arguments: expressions separated by commas, `and`, or just
    /// spaces (`gcd 12 18`); with `allow_range`, items may be `a..b` / `a to b`.
    pub(crate) fn list(&mut self, allow_range: bool) -> Result<Vec<Arg>, MathError> {
        let mut out = Vec::new();
        while self.peek().is_some() {
            let a = self.expr(1)?;
            let range = matches!(self.peek(), Some(Tok::DotDot))
                || self.peek_word("to")
                || self.peek_word("through");
            if range && allow_range {
                self.i += 1;
                let b = self.expr(1)?;
                out.push(Arg::Range(a, b));
            } else {
                out.push(Arg::One(a));
            }
            let mut separated = false;
            while matches!(self.peek(), Some(Tok::Comma)) || self.peek_word("and") {
                self.i += 1;
                separated = true;
            }
            if let Some(t) = self.toks.get(self.i) {
                if !separated && !starts_operand(t.tok) {
                    return Err(self.unexpected(t));
                }
            }
        }
        Ok(out)
    }

    fn unexpected(&self, t: &Token<'_>) -> MathError {
        match t.tok {
            Tok::Ident(w) => unknown_word(w),
            Tok::RParen => MathError::parse("unmatched ')'", t.pos),
            Tok::Num(_) | Tok::LParen => MathError::parse(
                format!("expected an operator before {}", t.tok.describe()),
                t.pos,
            ),
            other => MathError::parse(format!("unexpected {}", other.describe()), t.pos),
        }
    }

    fn too_deep(&self) -> MathError {
        MathError::limit(format!(
            "the expression is nested too deeply (the maximum nesting depth is {})",
            self.max_depth
        ))
    }

    fn expr(&mut self, depth: usize) -> Result<Node, MathError> {
        let first = self.term(depth)?;
        let mut chain = Vec::new();
        loop {
            let op = match self.peek() {
                Some(Tok::Plus) => BinOp::Add,
                Some(Tok::Minus) => BinOp::Sub,
                _ => break,
            };
            self.i += 1;
            chain.push((op, self.term(depth)?));
        }
        Ok(finish_chain(first, chain))
    }

    fn term(&mut self, depth: usize) -> Result<Node, MathError> {
        let first = self.unary(depth)?;
        let mut chain = Vec::new();
        loop {
            let op = match self.peek() {
                Some(Tok::Star) => BinOp::Mul,
                Some(Tok::Slash) => BinOp::Div,
                Some(Tok::Percent | Tok::Mod) => BinOp::Mod,
                _ => break,
            };
            self.i += 1;
            chain.push((op, self.unary(depth)?));
        }
        Ok(finish_chain(first, chain))
    }

    fn unary(&mut self, depth: usize) -> Result<Node, MathError> {
        if depth > self.max_depth {
            return Err(self.too_deep());
        }
        match self.peek() {
            Some(Tok::Minus) => {
                self.i += 1;
                Ok(Node::Neg(Box::new(self.unary(depth + 1)?)))
            }
            Some(Tok::Plus) => {
                self.i += 1;
                self.unary(depth + 1)
            }
            _ => self.power(depth),
        }
    }

    fn power(&mut self, depth: usize) -> Result<Node, MathError> {
        let base = self.postfix(depth)?;
        if self.peek() == Some(Tok::Caret) {
            self.i += 1;
            let exp = self.unary(depth + 1)?;
            return Ok(Node::Pow(Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn postfix(&mut self, depth: usize) -> Result<Node, MathError> {
        let mut node = self.primary(depth)?;
        let mut depth = depth;
        loop {
            match self.peek() {
                Some(Tok::Bang) => {
                    self.i += 1;
                    node = Node::Fact(Box::new(node));
                }
                Some(Tok::Percent) => match self.peek_at(1) {
                    Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("of") => {
                        self.i += 2;
                        let of = self.unary(depth + 1)?;
                        node = Node::PercentOf(Box::new(node), Box::new(of));
                    }
                    Some(t) if starts_operand(t) => break, // binary modulo
                    _ => {
                        self.i += 1;
                        node = Node::Percent(Box::new(node));
                    }
                },
                _ => break,
            }
            depth += 1;
            if depth > self.max_depth {
                return Err(self.too_deep());
            }
        }
        Ok(node)
    }

    fn primary(&mut self, depth: usize) -> Result<Node, MathError> {
        let Some(&t) = self.toks.get(self.i) else {
            return Err(MathError::parse(
                "expected a number, but the input ended",
                self.end,
            ));
        };
        match t.tok {
            Tok::Num(s) => {
                self.i += 1;
                literal(s, t.pos, self.max_digits)
            }
            Tok::LParen => {
                self.i += 1;
                let inner = self.expr(depth + 1)?;
                if self.peek() != Some(Tok::RParen) {
                    return Err(match self.toks.get(self.i) {
                        None => MathError::parse("missing ')'", self.end),
                        Some(t) if matches!(t.tok, Tok::Ident(_)) => self.unexpected(t),
                        Some(_) => MathError::parse("expected ')'", self.pos()),
                    });
                }
                self.i += 1;
                Ok(inner)
            }
            Tok::Ident(w) => {
                self.i += 1;
                if let Some(c) = Const::from_name(w) {
                    return Ok(Node::Const(c));
                }
                match Func::from_name(w) {
                    Some(f) => self.call(f, t.pos, depth),
                    None => Err(unknown_word(w)),
                }
            }
            other => Err(MathError::parse(
                format!("expected a number but found {}", other.describe()),
                t.pos,
            )),
        }
    }

    fn call(&mut self, f: Func, pos: usize, depth: usize) -> Result<Node, MathError> {
        let args = if self.peek() == Some(Tok::LParen) {
            self.i += 1;
            let mut args = Vec::new();
            if self.peek() != Some(Tok::RParen) {
                loop {
                    args.push(self.expr(depth + 1)?);
                    if self.peek() != Some(Tok::Comma) {
                        break;
                    }
                    self.i += 1;
                }
            }
            if self.peek() != Some(Tok::RParen) {
                return Err(match self.toks.get(self.i) {
                    Some(t) if matches!(t.tok, Tok::Ident(_)) => self.unexpected(t),
                    _ => MathError::parse(
                        format!("expected ',' or ')' in the arguments of {}", f.name()),
                        self.pos(),
                    ),
                });
            }
            self.i += 1;
            args
        } else if self.peek().is_none() {
            return Err(MathError::parse(
                format!("{} needs an argument", f.name()),
                self.end,
            ));
        } else {
            vec![self.unary(depth + 1)?]
        };
        let (lo, hi) = f.arity();
        if args.len() < lo || args.len() > hi {
            let expected = match (lo, hi) {
                (1, 1) => "exactly 1 argument".to_string(),
                (a, b) if a == b => format!("exactly {a} arguments"),
                (a, usize::MAX) => {
                    format!("at least {a} argument{}", if a == 1 { "" } else { "s" })
                }
                (a, b) => format!("{a} or {b} arguments"),
            };
            return Err(MathError::parse(
                format!("{} takes {expected}, but got {}", f.name(), args.len()),
                pos,
            ));
        }
        Ok(Node::Call(f, args))
    }
}

fn finish_chain(first: Node, mut chain: Vec<(BinOp, Node)>) -> Node {
    if chain.is_empty() {
        first
    } else {
        chain.insert(0, (BinOp::Add, first));
        Node::Chain(chain)
    }
}

/// Converts a numeric literal. Decimals are exact (`0.1` is 1/10); a decimal
/// exponent is applied at evaluation time (it may be large).
fn literal(s: &str, pos: usize, max_digits: usize) -> Result<Node, MathError> {
    // A superscript exponent (`²` in `3²`) is read as its ASCII digits.
    let ascii;
    let s = if s.is_ascii() {
        s
    } else {
        ascii = operators::superscript_to_ascii(s);
        ascii.as_str()
    };
    if s.len() <= 18 && s.bytes().all(|c| c.is_ascii_digit()) {
        let v = s
            .bytes()
            .fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0'));
        return Ok(Node::Num(Num::Int(v)));
    }
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(k) => (&s[..k], Some(&s[k + 1..])),
        None => (s, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .filter(u8::is_ascii_digit)
        .collect();
    let frac_len = frac_part.bytes().filter(u8::is_ascii_digit).count();
    let m = BigInt::parse_bytes(&digits, 10)
        .ok_or_else(|| MathError::parse(format!("invalid number '{s}'"), pos))?;
    let value = if frac_len == 0 {
        Num::from_big(m)
    } else {
        let den = BigInt::from(10u32).pow(frac_len as u32);
        Num::from_ratio(BigRational::new(m, den))
    };
    let Some(exp) = exp else {
        return Ok(Node::Num(value));
    };
    let exp_digits: String = exp.chars().filter(|&c| c != '_').collect();
    let too_big = || {
        MathError::limit(format!(
            "the number {s} is too large; results may have at most {max_digits} digits"
        ))
    };
    let k: i64 = exp_digits.parse().map_err(|_| too_big())?;
    check_digits(
        (k.unsigned_abs() as f64) - digits.len() as f64,
        max_digits,
        &format!("the number {s}"),
    )?;
    Ok(Node::Scaled(value, k))
}

impl Node {
    /// Binding strength used when printing (higher binds tighter).
    fn prec(&self) -> u8 {
        match self {
            Node::Chain(items) => match items.get(1).map(|i| i.0) {
                Some(BinOp::Add | BinOp::Sub) => 1,
                _ => 2,
            },
            Node::PercentOf(..) => 2,
            Node::Neg(_) => 3,
            Node::Pow(..) => 4,
            Node::Fact(_) | Node::Percent(_) => 5,
            Node::Num(n) if n.is_negative() => 3,
            _ => 6,
        }
    }

    fn write_min(&self, out: &mut String, min: u8) {
        if self.prec() < min {
            out.push('(');
            self.write(out);
            out.push(')');
        } else {
            self.write(out);
        }
    }

    /// Canonical text of the expression, with only the parentheses it needs.
    pub(crate) fn write(&self, out: &mut String) {
        match self {
            Node::Num(n) => {
                let _ = write!(out, "{n}");
            }
            Node::Scaled(m, k) => {
                let _ = write!(out, "{m}e{k}");
            }
            Node::Const(c) => out.push_str(c.name()),
            Node::Neg(x) => {
                out.push('-');
                x.write_min(out, 4);
            }
            Node::Chain(items) => {
                let p = self.prec();
                for (i, (op, node)) in items.iter().enumerate() {
                    if i == 0 {
                        node.write_min(out, p);
                        continue;
                    }
                    out.push_str(match op {
                        BinOp::Add => " + ",
                        BinOp::Sub => " - ",
                        BinOp::Mul => " * ",
                        BinOp::Div => " / ",
                        BinOp::Mod => " mod ",
                    });
                    node.write_min(out, p + 1);
                }
            }
            Node::Pow(b, e) => {
                b.write_min(out, 5);
                out.push('^');
                e.write_min(out, 3);
            }
            Node::Fact(x) => {
                x.write_min(out, 6);
                out.push('!');
            }
            Node::Percent(x) => {
                x.write_min(out, 6);
                out.push('%');
            }
            Node::PercentOf(p, x) => {
                p.write_min(out, 6);
                out.push_str("% of ");
                x.write_min(out, 3);
            }
            Node::Call(f, args) => {
                out.push_str(f.name());
                out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    a.write(out);
                }
                out.push(')');
            }
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;

    fn parse_expr(text: &str) -> Result<Node, MathError> {
        let toks = lex(text)?;
        Parser::new(&toks, &Limits::default(), text.len()).expression()
    }

    fn canon(text: &str) -> String {
        parse_expr(text).unwrap().to_string()
    }

    #[test]
    fn precedence_and_associativity_render() {
        let cases = [
            ("1+2*3", "1 + 2 * 3"),
            ("(1+2)*3", "(1 + 2) * 3"),
            ("1-(2-3)", "1 - (2 - 3)"),
            ("(1-2)-3", "1 - 2 - 3"),
            ("2^3^2", "2^3^2"),
            ("(2^3)^2", "(2^3)^2"),
            ("-2^2", "-2^2"),
            ("(-2)^2", "(-2)^2"),
            ("2^-1", "2^-1"),
            ("--2", "-(-2)"),
            ("+2", "2"),
            ("3!", "3!"),
            ("(1+2)!", "(1 + 2)!"),
            ("15% of 200", "15% of 200"),
            ("50%", "50%"),
            ("7 % 3", "7 mod 3"),
            ("sqrt 16 + 1", "sqrt(16) + 1"),
            ("log(8, 2)", "log(8, 2)"),
            ("1.5e3", "1.5e3"),
            ("2*pi", "2 * pi"),
        ];
        for (input, want) in cases {
            assert_eq!(canon(input), want, "input {input}");
        }
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = |t: &str| parse_expr(t).unwrap_err();
        assert_eq!(
            err("2 +"),
            MathError::parse("expected a number, but the input ended", 3)
        );
        assert_eq!(err("(2 + 3"), MathError::parse("missing ')'", 6));
        assert_eq!(err("2 + 3)"), MathError::parse("unmatched ')'", 5));
        assert_eq!(
            err("2 3"),
            MathError::parse("expected an operator before '3'", 2)
        );
        assert_eq!(
            err("* 3"),
            MathError::parse("expected a number but found '*'", 0)
        );
        assert!(matches!(
            err("sqrt(1, 2)"),
            MathError::Parse { position: 0, .. }
        ));
        assert!(matches!(err("2 + banana"), MathError::NotUnderstood(_)));
    }

    #[test]
    fn depth_limit_is_checked_before_recursing() {
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_expr(&deep).unwrap_err().is_limit());
        let minus = format!("{}1", "-".repeat(10_000));
        assert!(parse_expr(&minus).unwrap_err().is_limit());
        let pow = vec!["2"; 5_000].join("^");
        assert!(parse_expr(&pow).unwrap_err().is_limit());
        let bangs = format!("3{}", "!".repeat(5_000));
        assert!(parse_expr(&bangs).unwrap_err().is_limit());
        let ok = format!("{}1{}", "(".repeat(60), ")".repeat(60));
        assert!(parse_expr(&ok).is_ok());
        // Long flat chains are not nesting.
        let long = vec!["1"; 2_000].join("+");
        assert!(parse_expr(&long).is_ok());
    }

    #[test]
    fn literals() {
        assert_eq!(
            parse_expr("0.1").unwrap(),
            Node::Num(Num::from_ratio(BigRational::new(1.into(), 10.into())))
        );
        assert_eq!(parse_expr("1_000").unwrap(), Node::Num(Num::Int(1000)));
        assert_eq!(
            parse_expr("123456789012345678901234567890")
                .unwrap()
                .to_string(),
            "123456789012345678901234567890"
        );
        assert!(parse_expr("1e999999999").unwrap_err().is_limit());
        assert!(parse_expr("1e99999999999999999999999")
            .unwrap_err()
            .is_limit());
    }
}
