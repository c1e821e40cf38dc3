//! Equation text → tokens with their 1-based character positions.

use num_rational::BigRational;

use super::too_large;
use crate::math::operators;
use crate::math::parts::rational::{parse_decimal, NumError, MAX_NUMBER_CHARS};
use crate::math::parts::{shorten, PartError};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Num(BigRational),
    Var(String),
    /// An operator from the shared table, by its ASCII symbol, or `=`.
    Op(char),
}

/// A number token; `text` is ASCII digits and dots.
fn number(text: &str, pos: usize) -> Result<Tok, PartError> {
    if text.len() > MAX_NUMBER_CHARS {
        return Err(too_large(&format!(
            "the number at position {pos} has more than {MAX_NUMBER_CHARS} characters"
        )));
    }
    let q = parse_decimal(text).map_err(|e| match e {
        NumError::TooLong => too_large(&format!("the number {} is too long", shorten(text, 20))),
        _ => PartError::Invalid(format!("bad number '{text}' at position {pos}")),
    })?;
    Ok(Tok::Num(q))
}

/// Splits equation text into tokens with their 1-based character positions.
pub(super) fn lex(s: &str) -> Result<Vec<(Tok, usize)>, PartError> {
    let chars: Vec<char> = s.chars().collect();
    // Byte offsets of the characters, to look spellings up in `s`.
    let offsets: Vec<usize> = s.char_indices().map(|(b, _)| b).collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                toks.push((number(&text, pos)?, pos));
            }
            '<' | '>' | '≤' | '≥' | '≠' => {
                return Err(PartError::Unsupported(format!(
                    "'{c}' at position {pos}: inequalities are not supported, only equations"
                )));
            }
            '=' => {
                toks.push((Tok::Op('='), pos));
                i += 1;
                if chars.get(i) == Some(&'=') {
                    i += 1;
                }
            }
            c if c.is_alphabetic() => {
                let start = i;
                while i < chars.len() && chars[i].is_alphabetic() {
                    i += 1;
                }
                if i - start > 2 {
                    let word: String = chars[start..i].iter().collect();
                    return Err(PartError::Invalid(format!(
                        "unknown word '{}' at position {pos}: unknowns are single letters like \
                         x, y, z (optionally indexed: x1, x_2) and functions are not supported",
                        shorten(&word, 20)
                    )));
                }
                for (k, &letter) in chars[start..i].iter().enumerate() {
                    let mut name = letter.to_string();
                    if start + k + 1 == i {
                        // An index: x1, x12, x_2.
                        let digits_at = |j: usize| chars.get(j).is_some_and(|d| d.is_ascii_digit());
                        if chars.get(i) == Some(&'_') && digits_at(i + 1) {
                            name.push('_');
                            i += 1;
                        }
                        while digits_at(i) && name.len() < 8 {
                            name.push(chars[i]);
                            i += 1;
                        }
                    }
                    toks.push((Tok::Var(name), start + k + 1));
                }
            }
            _ => {
                let rest = &s[offsets[i]..];
                if let Some((op, spelling)) = operators::operator_at(rest) {
                    toks.push((Tok::Op(op.symbol()), pos));
                    i += spelling.chars().count();
                } else if let len @ 1.. = operators::superscript_len(rest) {
                    // An exponent: `x²` lexes as `x ^ 2`.
                    let sup = &rest[..len];
                    toks.push((Tok::Op('^'), pos));
                    toks.push((number(&operators::superscript_to_ascii(sup), pos)?, pos));
                    i += sup.chars().count();
                } else {
                    return Err(PartError::Invalid(format!(
                        "unexpected character '{c}' at position {pos}"
                    )));
                }
            }
        }
    }
    Ok(toks)
}
