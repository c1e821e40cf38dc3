//! A small parser of expressions in one variable: numbers (exact: `0.5` is
//! 1/2), the variable (one letter), `pi`/`π`, `e`, `+ - * / ^` (and the
//! spellings of `math::operators`: `×`, `÷`, `−`, `**`, `x²`), functions
//! (`sin cos tan exp ln log sqrt atan`, with or without parentheses:
//! `sin x`), and implicit multiplication (`3x`, `2sin(x)`, `x(x + 1)`).

use num_bigint::BigInt;
use num_rational::BigRational;

use super::expr::{int, num, ratio, Expr, Func};
use crate::math::MathError;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(BigRational),
    Word(String),
    Op(char),
}

fn lex(text: &str) -> Result<Vec<Tok>, MathError> {
    let text = normalize(text);
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Tok::Num(decimal(&s).ok_or_else(|| {
                MathError::parse(format!("invalid number '{s}'"), start)
            })?));
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            out.push(Tok::Word(
                chars[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else if "+-*/^()|".contains(c) {
            out.push(Tok::Op(c));
            i += 1;
        } else {
            return Err(MathError::parse(format!("unexpected '{c}'"), i));
        }
    }
    Ok(out)
}

/// Every operator spelling as its ASCII symbol; superscripts as `^n`.
fn normalize(text: &str) -> String {
    use crate::math::operators::{operator_at, superscript_len, superscript_to_ascii};
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some((op, spelling)) = operator_at(rest) {
            out.push(op.symbol());
            rest = &rest[spelling.len()..];
        } else if let n @ 1.. = superscript_len(rest) {
            out.push('^');
            out.push_str(&superscript_to_ascii(&rest[..n]));
            rest = &rest[n..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn decimal(s: &str) -> Option<BigRational> {
    let (int_part, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.contains('.') || (int_part.is_empty() && frac.is_empty()) {
        return None;
    }
    let digits = format!("{int_part}{frac}");
    let n: BigInt = digits.parse().ok()?;
    Some(BigRational::new(
        n,
        BigInt::from(10u32).pow(frac.len() as u32),
    ))
}

fn function(w: &str) -> Option<Func> {
    Some(match w {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" => Func::Tan,
        "exp" => Func::Exp,
        "ln" | "log" => Func::Ln,
        "atan" | "arctan" => Func::Atan,
        "abs" => Func::Abs,
        _ => return None,
    })
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    var: &'a str,
    depth: usize,
    max_depth: usize,
}

/// Parses `text`, whose variable is `var` (one letter).
pub(super) fn parse(text: &str, var: &str, max_depth: usize) -> Result<Expr, MathError> {
    let toks = lex(text)?;
    if toks.is_empty() {
        return Err(MathError::parse("there is no expression", 0));
    }
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        var,
        depth: 0,
        max_depth,
    };
    let e = p.sum()?;
    match p.toks.get(p.pos) {
        None => Ok(e),
        Some(t) => Err(MathError::parse(format!("unexpected {t:?}"), p.pos)),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, op: char) -> bool {
        if self.peek() == Some(&Tok::Op(op)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), MathError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(MathError::limit(format!(
                "the expression nests deeper than {}",
                self.max_depth
            )));
        }
        Ok(())
    }

    fn sum(&mut self) -> Result<Expr, MathError> {
        let mut terms = vec![self.product()?];
        loop {
            if self.eat('+') {
                terms.push(self.product()?);
            } else if self.eat('-') {
                terms.push(self.product()?.neg());
            } else {
                break;
            }
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Add(terms)
        })
    }

    /// Starts an implicit product: a number, a word or `(`.
    fn starts_factor(&self) -> bool {
        matches!(self.peek(), Some(Tok::Num(_) | Tok::Word(_) | Tok::Op('(')))
    }

    fn product(&mut self) -> Result<Expr, MathError> {
        let mut fs = vec![self.unary()?];
        loop {
            if self.eat('*') {
                fs.push(self.unary()?);
            } else if self.eat('/') {
                fs.push(self.unary()?.pow(int(-1)));
            } else if self.starts_factor() {
                fs.push(self.power()?);
            } else {
                break;
            }
        }
        Ok(if fs.len() == 1 {
            fs.remove(0)
        } else {
            Expr::Mul(fs)
        })
    }

    fn unary(&mut self) -> Result<Expr, MathError> {
        if self.eat('-') {
            self.enter()?;
            let e = self.unary()?.neg();
            self.depth -= 1;
            return Ok(e);
        }
        if self.eat('+') {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr, MathError> {
        let base = self.atom()?;
        if self.eat('^') {
            self.enter()?;
            // Right-associative; `x^-1` allowed.
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(base.pow(e));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Expr, MathError> {
        let at = self.pos;
        let Some(tok) = self.peek().cloned() else {
            return Err(MathError::parse("the expression ends too soon", at));
        };
        self.pos += 1;
        match tok {
            Tok::Num(q) => Ok(num(q)),
            Tok::Op('(') => {
                self.enter()?;
                let e = self.sum()?;
                self.depth -= 1;
                if !self.eat(')') {
                    return Err(MathError::parse("a '(' is not closed", at));
                }
                Ok(e)
            }
            Tok::Op('|') => {
                self.enter()?;
                let e = self.sum()?;
                self.depth -= 1;
                if !self.eat('|') {
                    return Err(MathError::parse("a '|' is not closed", at));
                }
                Ok(Expr::call(Func::Abs, e))
            }
            Tok::Word(w) => self.word(&w),
            Tok::Op(c) => Err(MathError::parse(format!("unexpected '{c}'"), at)),
        }
    }

    fn word(&mut self, w: &str) -> Result<Expr, MathError> {
        if w == self.var {
            return Ok(Expr::Var);
        }
        match w {
            "pi" | "π" => return Ok(Expr::Pi),
            "e" => return Ok(Expr::E),
            _ => {}
        }
        // `None` is sqrt, a power.
        let f = match (w, function(w)) {
            ("sqrt", _) => None,
            (_, Some(f)) => Some(f),
            // `xe`: letters run together.
            (_, None) => return self.letters(w),
        };
        self.enter()?;
        // `sin(x)`, `sin x`, `sin^2(x)`.
        let square = if self.peek() == Some(&Tok::Op('^')) {
            self.pos += 1;
            Some(self.atom()?)
        } else {
            None
        };
        let arg = if self.peek() == Some(&Tok::Op('(')) {
            self.atom()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        let applied = match f {
            Some(f) => Expr::call(f, arg),
            None => arg.pow(ratio(1, 2)),
        };
        Ok(match square {
            Some(k) => applied.pow(k),
            None => applied,
        })
    }

    /// A run of letters that is not a function: each must be the variable
    /// or a constant (`xe` = x·e).
    fn letters(&mut self, w: &str) -> Result<Expr, MathError> {
        let mut fs = Vec::new();
        for c in w.chars() {
            let s = c.to_string();
            if s == self.var {
                fs.push(Expr::Var);
            } else if c == 'e' {
                fs.push(Expr::E);
            } else if c == 'π' {
                fs.push(Expr::Pi);
            } else {
                return Err(MathError::NotUnderstood(format!(
                    "'{w}' is neither the variable {} nor a function I know (sin, cos, tan, exp, \
                     ln, sqrt, atan)",
                    self.var
                )));
            }
        }
        Ok(if fs.len() == 1 {
            fs.remove(0)
        } else {
            Expr::Mul(fs)
        })
    }
}

/// A constant (a bound of a definite integral: `3`, `1/2`, `pi`), as an
/// expression without the variable.
pub(super) fn constant(text: &str) -> Result<Expr, MathError> {
    // No letter is the variable here.
    let e = parse(text, "", 16)?;
    if e.has_var() {
        return Err(MathError::parse(format!("'{text}' is not a number"), 0));
    }
    Ok(e)
}
