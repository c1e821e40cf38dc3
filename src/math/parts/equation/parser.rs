//! Tokens → one polynomial (`lhs - rhs`), by recursive descent.

use num_traits::{Signed, ToPrimitive, Zero};

use super::lexer::{lex, Tok};
use super::poly::Poly;
use super::{too_large, HELP, MAX_DEPTH, MAX_EQUATION_CHARS};
use crate::math::parts::{shorten, PartError};

struct Parser<'a> {
    toks: &'a [(Tok, usize)],
    pos: usize,
    names: &'a mut Vec<String>,
    depth: usize,
    len: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> String {
        match self.toks.get(self.pos) {
            Some((_, p)) => format!("at position {p}"),
            None => format!("at the end (position {})", self.len + 1),
        }
    }

    fn eat(&mut self, op: char) -> bool {
        if self.peek() == Some(&Tok::Op(op)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `expr ('=' expr)?`; returns `lhs - rhs` and whether there was an `=`.
    fn equation(&mut self) -> Result<(Poly, bool), PartError> {
        let lhs = self.expr()?;
        let (poly, has_eq) = if self.eat('=') {
            let rhs = self.expr()?;
            (lhs.add(rhs, -1)?, true)
        } else {
            (lhs, false)
        };
        match self.peek() {
            None => Ok((poly, has_eq)),
            Some(Tok::Op('=')) => Err(PartError::Invalid(format!(
                "a second '=' {}: write one equation at a time",
                self.at()
            ))),
            Some(Tok::Op(')')) => Err(PartError::Invalid(format!("unmatched ')' {}", self.at()))),
            Some(_) => Err(PartError::Invalid(format!("unexpected {}", self.at()))),
        }
    }

    fn expr(&mut self) -> Result<Poly, PartError> {
        let mut acc = self.term()?;
        loop {
            if self.eat('+') {
                acc = acc.add(self.term()?, 1)?;
            } else if self.eat('-') {
                acc = acc.add(self.term()?, -1)?;
            } else {
                return Ok(acc);
            }
        }
    }

    fn term(&mut self) -> Result<Poly, PartError> {
        let mut acc = self.unary()?;
        loop {
            if self.eat('*') {
                acc = acc.mul(&self.unary()?)?;
            } else if self.eat('/') {
                let at = self.at();
                let d = self.unary()?;
                let Some(d) = d.as_constant() else {
                    return Err(PartError::Unsupported(format!(
                        "division by an expression with an unknown ({at}) is not supported"
                    )));
                };
                if d.is_zero() {
                    return Err(PartError::Invalid(format!("division by zero {at}")));
                }
                acc = acc.mul(&Poly::constant(d.recip()))?;
            } else if matches!(self.peek(), Some(Tok::Var(_)) | Some(Tok::Op('('))) {
                // Implicit multiplication: 3x, 2(x + 1), (x + 1)(x - 1), xy.
                acc = acc.mul(&self.power()?)?;
            } else if matches!(self.peek(), Some(Tok::Num(_))) {
                return Err(PartError::Invalid(format!(
                    "a number cannot follow here {}: use * between numbers",
                    self.at()
                )));
            } else {
                return Ok(acc);
            }
        }
    }

    fn enter(&mut self) -> Result<(), PartError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(too_large(&format!(
                "nested more than {MAX_DEPTH} levels deep"
            )));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Poly, PartError> {
        if self.eat('-') {
            self.enter()?;
            let p = self.unary()?.neg();
            self.depth -= 1;
            Ok(p)
        } else if self.eat('+') {
            self.enter()?;
            let p = self.unary()?;
            self.depth -= 1;
            Ok(p)
        } else {
            self.power()
        }
    }

    fn power(&mut self) -> Result<Poly, PartError> {
        let base = self.atom()?;
        if !self.eat('^') {
            return Ok(base);
        }
        let at = self.at();
        self.enter()?;
        let e = self.unary()?;
        self.depth -= 1;
        let e = e
            .as_constant()
            .filter(|e| e.is_integer() && !e.is_negative())
            .and_then(|e| e.to_integer().to_u32())
            .ok_or_else(|| {
                PartError::Unsupported(format!(
                    "the exponent {at} must be a whole number from 0 up"
                ))
            })?;
        base.pow(e)
    }

    fn atom(&mut self) -> Result<Poly, PartError> {
        let at = self.at();
        match self.toks.get(self.pos).map(|(t, _)| t.clone()) {
            Some(Tok::Num(q)) => {
                self.pos += 1;
                Ok(Poly::constant(q))
            }
            Some(Tok::Var(name)) => {
                self.pos += 1;
                let id = match self.names.iter().position(|n| *n == name) {
                    Some(id) => id,
                    None => {
                        self.names.push(name);
                        self.names.len() - 1
                    }
                };
                Ok(Poly::var(id))
            }
            Some(Tok::Op('(')) => {
                self.pos += 1;
                self.enter()?;
                let inner = self.expr()?;
                self.depth -= 1;
                if !self.eat(')') {
                    return Err(PartError::Invalid(format!(
                        "expected ')' {} to close the '(' {at}",
                        self.at()
                    )));
                }
                Ok(inner)
            }
            Some(Tok::Op(op)) => Err(PartError::Invalid(format!(
                "expected a number, an unknown or '(' {at}, found '{op}'"
            ))),
            None => Err(PartError::Invalid(format!(
                "the equation ends too early: expected a number or an unknown {at}"
            ))),
        }
    }
}

/// Parses one equation; unknowns are registered in `names`.
pub(super) fn parse_equation(text: &str, names: &mut Vec<String>) -> Result<Poly, PartError> {
    let len = text.chars().count();
    if len > MAX_EQUATION_CHARS {
        return Err(PartError::TooLarge(format!(
            "the equation is {len} characters long; the maximum is {MAX_EQUATION_CHARS}"
        )));
    }
    let toks = lex(text)?;
    if toks.is_empty() {
        return Err(PartError::Invalid(format!("the equation is empty; {HELP}")));
    }
    let mut parser = Parser {
        toks: &toks,
        pos: 0,
        names,
        depth: 0,
        len,
    };
    let (poly, has_eq) = parser.equation()?;
    if !has_eq && poly.unknowns().is_empty() {
        return Err(PartError::Invalid(format!(
            "'{}' has no '=' and no unknowns: it is an expression, not an equation",
            shorten(text.trim(), 60)
        )));
    }
    Ok(poly)
}
