//! Hand-written lexer: query text → tokens that borrow from the text.

use super::operators::{self, Op};
use super::MathError;

/// A token kind. Numbers and words keep their source text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// A numeric literal such as `12`, `0.5`, `.5`, `1e3`, `1_000`, or a
    /// superscript exponent such as `²` (after a [`Tok::Caret`]).
    Num(&'a str),
    /// A word: function, constant or natural-language word (case preserved).
    Ident(&'a str),
    Plus,
    Minus,
    Star,
    Slash,
    /// `%`: modulo, or percent when followed by `of` or by nothing usable.
    Percent,
    /// The words `mod` / `modulo`: always modulo.
    Mod,
    /// `^`, `**`, or before a superscript exponent (`3²`).
    Caret,
    Bang,
    LParen,
    RParen,
    Comma,
    /// `..` in ranges (`sum 1..100`).
    DotDot,
    /// A lone `.` (only meaningful as a sentence end).
    Dot,
    Question,
    Equals,
}

/// A token and the byte offset where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub(crate) tok: Tok<'a>,
    pub(crate) pos: usize,
}

impl Tok<'_> {
    /// How the token is shown in error messages.
    pub(crate) fn describe(&self) -> String {
        let s = match self {
            Tok::Num(s) | Tok::Ident(s) => return format!("'{s}'"),
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Mod => "mod",
            Tok::Caret => "^",
            Tok::Bang => "!",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::DotDot => "..",
            Tok::Dot => ".",
            Tok::Question => "?",
            Tok::Equals => "=",
        };
        format!("'{s}'")
    }
}

/// The question token of an operator from the shared table.
fn op_token(op: Op) -> Tok<'static> {
    match op {
        Op::Add => Tok::Plus,
        Op::Sub => Tok::Minus,
        Op::Mul => Tok::Star,
        Op::Div => Tok::Slash,
        Op::Pow => Tok::Caret,
        Op::Open => Tok::LParen,
        Op::Close => Tok::RParen,
    }
}

/// Splits `text` into tokens. Fails only on characters that cannot start a token.
pub(crate) fn lex(text: &str) -> Result<Vec<Token<'_>>, MathError> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(8);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'0'..=b'9' => {
                i = scan_number(b, i);
                Tok::Num(&text[start..i])
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = scan_number(b, i);
                Tok::Num(&text[start..i])
            }
            b'.' if b.get(i + 1) == Some(&b'.') => {
                i += 2;
                Tok::DotDot
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                i = scan_word(text, i);
                Tok::Ident(&text[start..i])
            }
            _ => {
                let rest = &text[i..];
                if let Some((op, spelling)) = operators::operator_at(rest) {
                    i += spelling.len();
                    op_token(op)
                } else if let len @ 1.. = operators::superscript_len(rest) {
                    // An exponent: `3²` lexes as `3 ^ 2`.
                    out.push(Token {
                        tok: Tok::Caret,
                        pos: start,
                    });
                    i += len;
                    Tok::Num(&text[start..i])
                } else {
                    let ch = rest.chars().next().unwrap_or('\u{fffd}');
                    i += ch.len_utf8();
                    match ch {
                        '%' => Tok::Percent,
                        '!' => Tok::Bang,
                        ',' | ';' => Tok::Comma,
                        '.' => Tok::Dot,
                        '?' | '？' => Tok::Question,
                        '=' => Tok::Equals,
                        'π' => Tok::Ident("pi"),
                        '√' => Tok::Ident("sqrt"),
                        c if c.is_whitespace() => continue,
                        c => {
                            return Err(MathError::parse(
                                format!("unexpected character '{c}'"),
                                start,
                            ))
                        }
                    }
                }
            }
        };
        out.push(Token { tok, pos: start });
    }
    Ok(out)
}

/// Digits with optional `_` separators, an optional fraction and an optional
/// exponent (`e`/`E`, optional sign, at least one digit).
fn scan_number(b: &[u8], mut i: usize) -> usize {
    let digits = |b: &[u8], mut i: usize| {
        while i < b.len()
            && (b[i].is_ascii_digit() || (b[i] == b'_' && i > 0 && b[i - 1].is_ascii_digit()))
        {
            i += 1;
        }
        i
    };
    i = digits(b, i);
    if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i = digits(b, i + 1);
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = digits(b, j);
        }
    }
    i
}

/// Letters, digits, `_` and apostrophes (`what's`).
fn scan_word(text: &str, mut i: usize) -> usize {
    let b = text.as_bytes();
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'\'' {
            i += 1;
        } else if text[i..].starts_with('’') {
            i += '’'.len_utf8();
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Tok<'_>> {
        lex(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_operators_and_numbers() {
        assert_eq!(
            kinds("2+3.5*(4 - .5)^2 ** 1e3 % 7!"),
            [
                Tok::Num("2"),
                Tok::Plus,
                Tok::Num("3.5"),
                Tok::Star,
                Tok::LParen,
                Tok::Num("4"),
                Tok::Minus,
                Tok::Num(".5"),
                Tok::RParen,
                Tok::Caret,
                Tok::Num("2"),
                Tok::Caret,
                Tok::Num("1e3"),
                Tok::Percent,
                Tok::Num("7"),
                Tok::Bang,
            ]
        );
    }

    #[test]
    fn lexes_words_ranges_and_unicode() {
        assert_eq!(
            kinds("what's 10th 1..5 2×3÷4−1 π √"),
            [
                Tok::Ident("what's"),
                Tok::Num("10"),
                Tok::Ident("th"),
                Tok::Num("1"),
                Tok::DotDot,
                Tok::Num("5"),
                Tok::Num("2"),
                Tok::Star,
                Tok::Num("3"),
                Tok::Slash,
                Tok::Num("4"),
                Tok::Minus,
                Tok::Num("1"),
                Tok::Ident("pi"),
                Tok::Ident("sqrt"),
            ]
        );
        assert_eq!(kinds("2e"), [Tok::Num("2"), Tok::Ident("e")]);
        assert_eq!(
            kinds("1_000 5."),
            [Tok::Num("1_000"), Tok::Num("5"), Tok::Dot]
        );
    }

    #[test]
    fn lexes_every_shared_spelling_and_superscripts() {
        for &(spelling, op) in operators::SPELLINGS {
            assert_eq!(kinds(spelling), [op_token(op)], "{spelling}");
        }
        assert_eq!(
            kinds("3²+2¹⁰"),
            [
                Tok::Num("3"),
                Tok::Caret,
                Tok::Num("²"),
                Tok::Plus,
                Tok::Num("2"),
                Tok::Caret,
                Tok::Num("¹⁰"),
            ]
        );
    }

    #[test]
    fn positions_and_errors() {
        let toks = lex("  12 + x").unwrap();
        assert_eq!(toks[0].pos, 2);
        assert_eq!(toks[2].pos, 7);
        assert_eq!(
            lex("2 # 3"),
            Err(MathError::parse("unexpected character '#'", 2))
        );
    }
}
