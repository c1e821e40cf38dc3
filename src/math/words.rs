//! Natural-language forms: strips conversational filler ("what is", "?"),
//! recognizes commands ("prime factors of 12", "is 97 prime", "gcd of 12 and
//! 18", "the 10th fibonacci number") and rewrites operator words ("plus",
//! "divided by", "to the power of", "square root of", "percent") into tokens.
//! Works on tokens, so error positions still point into the original text.

use std::borrow::Cow;

use super::lexer::{Tok, Token};
use super::parser::Func;

/// A command recognized from its leading words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmd {
    Fib,
    Fact,
    Factors,
    IsPrime,
    Gcd,
    Lcm,
    Sum,
    Mean,
    Choose,
    Permutations,
    Totient,
    Divisors,
}

impl Cmd {
    /// How the command is named in error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cmd::Fib => "fibonacci",
            Cmd::Fact => "factorial",
            Cmd::Factors => "prime factors",
            Cmd::IsPrime => "is prime",
            Cmd::Gcd => "gcd",
            Cmd::Lcm => "lcm",
            Cmd::Sum => "sum",
            Cmd::Mean => "mean",
            Cmd::Choose => "choose",
            Cmd::Permutations => "permutations",
            Cmd::Totient => "totient",
            Cmd::Divisors => "divisors",
        }
    }
}

/// The result of [`plan`]: the tokens to parse and, for commands, which one.
pub(crate) struct Plan<'t, 'a> {
    /// The command and the byte offset of its keyword; `None` for a plain expression.
    pub(crate) cmd: Option<(Cmd, usize)>,
    /// An expression (no command) or the command's argument list.
    pub(crate) tokens: Cow<'t, [Token<'a>]>,
}

/// Command keywords; the longest matching phrase wins.
const COMMANDS: &[(&[&str], Cmd)] = &[
    (&["prime", "factors"], Cmd::Factors),
    (&["prime", "factorization"], Cmd::Factors),
    (&["prime", "factorisation"], Cmd::Factors),
    (&["prime", "decomposition"], Cmd::Factors),
    (&["factorization"], Cmd::Factors),
    (&["factorisation"], Cmd::Factors),
    (&["factorize"], Cmd::Factors),
    (&["factorise"], Cmd::Factors),
    (&["factor"], Cmd::Factors),
    (&["is", "prime"], Cmd::IsPrime),
    (&["isprime"], Cmd::IsPrime),
    (&["is_prime"], Cmd::IsPrime),
    (&["primality"], Cmd::IsPrime),
    (&["fibonacci"], Cmd::Fib),
    (&["fib"], Cmd::Fib),
    (&["fibo"], Cmd::Fib),
    (&["factorial"], Cmd::Fact),
    (&["gcd"], Cmd::Gcd),
    (&["hcf"], Cmd::Gcd),
    (&["gcf"], Cmd::Gcd),
    (&["greatest", "common", "divisor"], Cmd::Gcd),
    (&["greatest", "common", "factor"], Cmd::Gcd),
    (&["highest", "common", "factor"], Cmd::Gcd),
    (&["lcm"], Cmd::Lcm),
    (&["least", "common", "multiple"], Cmd::Lcm),
    (&["lowest", "common", "multiple"], Cmd::Lcm),
    (&["sum"], Cmd::Sum),
    (&["total"], Cmd::Sum),
    (&["add"], Cmd::Sum),
    (&["add", "up"], Cmd::Sum),
    (&["mean"], Cmd::Mean),
    (&["arithmetic", "mean"], Cmd::Mean),
    (&["average"], Cmd::Mean),
    (&["avg"], Cmd::Mean),
    (&["choose"], Cmd::Choose),
    (&["binomial"], Cmd::Choose),
    (&["combinations"], Cmd::Choose),
    (&["permutations"], Cmd::Permutations),
    (&["how", "many", "ways", "to", "arrange"], Cmd::Permutations),
    (
        &["how", "many", "ways", "can", "you", "arrange"],
        Cmd::Permutations,
    ),
    (&["totient"], Cmd::Totient),
    (&["euler", "totient"], Cmd::Totient),
    (&["euler's", "totient"], Cmd::Totient),
    (&["phi"], Cmd::Totient),
    (&["divisors"], Cmd::Divisors),
    (&["factors", "of"], Cmd::Divisors),
];

/// Words skipped between a command keyword and its arguments.
const ARG_FILLER: &[&str] = &[
    "of", "the", "numbers", "number", "integers", "integer", "values", "from", "for", "all",
];

/// Operator phrases and what they become; the longest match wins.
const OPERATORS: &[(&[&str], &[Tok<'static>])] = &[
    (&["plus"], &[Tok::Plus]),
    (&["minus"], &[Tok::Minus]),
    (&["negative"], &[Tok::Minus]),
    (&["times"], &[Tok::Star]),
    (&["multiplied", "by"], &[Tok::Star]),
    (&["divided", "by"], &[Tok::Slash]),
    (&["over"], &[Tok::Slash]),
    (&["mod"], &[Tok::Mod]),
    (&["modulo"], &[Tok::Mod]),
    (&["percent"], &[Tok::Percent]),
    (&["to", "the", "power", "of"], &[Tok::Caret]),
    (&["to", "the", "power"], &[Tok::Caret]),
    (&["to", "the"], &[Tok::Caret]),
    (&["raised", "to", "the", "power", "of"], &[Tok::Caret]),
    (&["raised", "to", "the", "power"], &[Tok::Caret]),
    (&["raised", "to", "the"], &[Tok::Caret]),
    (&["raised", "to"], &[Tok::Caret]),
    (&["power"], &[Tok::Caret]),
    (&["squared"], &[Tok::Caret, Tok::Num("2")]),
    (&["cubed"], &[Tok::Caret, Tok::Num("3")]),
    (&["square", "root", "of"], &[Tok::Ident("sqrt")]),
    (&["square", "root"], &[Tok::Ident("sqrt")]),
    (&["cube", "root", "of"], &[Tok::Ident("cbrt")]),
    (&["cube", "root"], &[Tok::Ident("cbrt")]),
    (&["absolute", "value", "of"], &[Tok::Ident("abs")]),
    (&["absolute", "value"], &[Tok::Ident("abs")]),
    (&["natural", "log", "of"], &[Tok::Ident("ln")]),
    (&["natural", "logarithm", "of"], &[Tok::Ident("ln")]),
    (&["logarithm", "of"], &[Tok::Ident("log")]),
    (&["logarithm"], &[Tok::Ident("log")]),
    (&["the"], &[]),
];

fn is_word(t: &Token<'_>, word: &str) -> bool {
    matches!(t.tok, Tok::Ident(w) if w.eq_ignore_ascii_case(word))
}

fn is_any(t: &Token<'_>, words: &[&str]) -> bool {
    words.iter().any(|w| is_word(t, w))
}

/// Length of `phrase` if `toks` starts with it.
fn starts_with(toks: &[Token<'_>], phrase: &[&str]) -> bool {
    toks.len() >= phrase.len() && toks.iter().zip(phrase).all(|(t, w)| is_word(t, w))
}

/// Strips filler, detects a command, and rewrites operator words.
pub(crate) fn plan<'t, 'a>(all: &'t [Token<'a>]) -> Plan<'t, 'a> {
    let mut toks = trim_end(all);
    if !toks.iter().any(|t| matches!(t.tok, Tok::Ident(_))) {
        return Plan {
            cmd: None,
            tokens: Cow::Borrowed(toks),
        };
    }
    toks = trim_start(toks);
    toks = trim_end(toks);
    // "100 choose 3", "10 permute 4": the keyword between its numbers.
    if let [n, word, k] = toks {
        const INFIX: [(&str, Cmd); 4] = [
            ("choose", Cmd::Choose),
            ("c", Cmd::Choose),
            ("permute", Cmd::Permutations),
            ("p", Cmd::Permutations),
        ];
        let numbers = matches!(n.tok, Tok::Num(_)) && matches!(k.tok, Tok::Num(_));
        if let Some((_, cmd)) = INFIX.iter().find(|(w, _)| numbers && is_word(word, w)) {
            return Plan {
                cmd: Some((*cmd, word.pos)),
                tokens: Cow::Owned(vec![*n, *k]),
            };
        }
    }
    let (cmd, args) = match detect(toks) {
        Some((cmd, pos, args)) => (Some((cmd, pos)), args),
        None => (None, toks),
    };
    let rewritten = rewrite(args);
    let tokens = match number_words(&rewritten) {
        Some(numbers) => Cow::Owned(numbers),
        None => rewritten,
    };
    Plan { cmd, tokens }
}

/// Drops trailing `?`, `=`, `.` and words like "equals" / "please".
fn trim_end<'t, 'a>(mut toks: &'t [Token<'a>]) -> &'t [Token<'a>] {
    while let Some((last, rest)) = toks.split_last() {
        if matches!(last.tok, Tok::Question | Tok::Equals | Tok::Dot)
            || is_any(last, &["equals", "equal", "please"])
        {
            toks = rest;
        } else {
            break;
        }
    }
    toks
}

/// Drops leading "what is", "calculate", "please", "the", ...
fn trim_start<'t, 'a>(mut toks: &'t [Token<'a>]) -> &'t [Token<'a>] {
    const PREFIXES: &[&[&str]] = &[
        &["what", "is"],
        &["what", "are"],
        &["what's"],
        &["whats"],
        &["what’s"],
        &["how", "much", "is"],
        &["tell", "me"],
        &["give", "me"],
        &["can", "you"],
        &["could", "you"],
        &["please"],
        &["calculate"],
        &["compute"],
        &["evaluate"],
        &["eval"],
        &["solve"],
        &["find"],
        &["work", "out"],
        &["the", "value", "of"],
        &["the"],
    ];
    'outer: loop {
        for p in PREFIXES {
            if starts_with(toks, p) && toks.len() > p.len() {
                toks = &toks[p.len()..];
                continue 'outer;
            }
        }
        return toks;
    }
}

/// Recognizes a command; returns it, its keyword position and its argument tokens.
fn detect<'t, 'a>(toks: &'t [Token<'a>]) -> Option<(Cmd, usize, &'t [Token<'a>])> {
    let first = toks.first()?;
    // "is 97 prime", "is 97 a prime number"
    if is_word(first, "is") && toks.len() >= 3 {
        let mut end = toks.len();
        if is_any(&toks[end - 1], &["number", "numeral"]) {
            end -= 1;
        }
        if end >= 3 && is_word(&toks[end - 1], "prime") {
            end -= 1;
            if end >= 3 && is_any(&toks[end - 1], &["a", "an"]) {
                end -= 1;
            }
            return Some((Cmd::IsPrime, first.pos, &toks[1..end]));
        }
    }
    // "10th fibonacci number"
    if let [n @ Token {
        tok: Tok::Num(_), ..
    }, suffix, fib, rest @ ..] = toks
    {
        if is_any(suffix, &["st", "nd", "rd", "th"])
            && is_any(fib, &["fibonacci", "fib"])
            && (rest.is_empty() || (rest.len() == 1 && is_any(&rest[0], &["number", "term"])))
        {
            return Some((Cmd::Fib, fib.pos, std::slice::from_ref(n)));
        }
    }
    // "100 factorial"
    if toks.len() >= 2 && is_word(&toks[toks.len() - 1], "factorial") {
        let last = &toks[toks.len() - 1];
        return Some((Cmd::Fact, last.pos, &toks[..toks.len() - 1]));
    }
    // Keyword first: "prime factors of 12", "gcd 12 18", "sum(1..10)".
    let (phrase, cmd) = COMMANDS
        .iter()
        .filter(|(p, _)| starts_with(toks, p))
        .max_by_key(|(p, _)| p.len())?;
    let mut rest = &toks[phrase.len()..];
    let is_function =
        phrase.len() == 1 && matches!(first.tok, Tok::Ident(w) if Func::from_name(w).is_some());
    if is_function && rest.first().is_some_and(|t| t.tok == Tok::LParen) {
        if let Some(inner) = single_group(rest) {
            return Some((*cmd, first.pos, inner));
        }
        // "fibonacci(10) + 1": an expression that uses the function.
        return None;
    }
    while rest.first().is_some_and(|t| is_any(t, ARG_FILLER)) {
        rest = &rest[1..];
    }
    if let Some(inner) = single_group(rest) {
        rest = inner;
    }
    Some((*cmd, first.pos, rest))
}

/// If `toks` is exactly one parenthesized group, its contents.
fn single_group<'t, 'a>(toks: &'t [Token<'a>]) -> Option<&'t [Token<'a>]> {
    if toks.first()?.tok != Tok::LParen {
        return None;
    }
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return (i == toks.len() - 1).then(|| &toks[1..i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Replaces operator words with operator tokens (copying only when needed).
fn rewrite<'t, 'a>(toks: &'t [Token<'a>]) -> Cow<'t, [Token<'a>]> {
    let needs = toks.iter().any(|t| match t.tok {
        // "of" may follow a function name ("sqrt of 16"); it is dropped below.
        Tok::Ident(w) => {
            w.eq_ignore_ascii_case("of")
                || OPERATORS.iter().any(|(p, _)| p[0].eq_ignore_ascii_case(w))
        }
        _ => false,
    });
    if !needs {
        return Cow::Borrowed(toks);
    }
    let mut out = Vec::with_capacity(toks.len() + 2);
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        let best = OPERATORS
            .iter()
            .filter(|(p, _)| starts_with(&toks[i..], p))
            .max_by_key(|(p, _)| p.len());
        match best {
            Some((phrase, repl)) => {
                out.extend(repl.iter().map(|&tok| Token { tok, pos: t.pos }));
                i += phrase.len();
            }
            None => {
                out.push(t);
                i += 1;
            }
        }
        // "sqrt of 16", "log of 100": drop the "of" after a function name.
        if let (
            Some(Token {
                tok: Tok::Ident(w), ..
            }),
            Some(next),
        ) = (out.last(), toks.get(i))
        {
            if Func::from_name(w).is_some() && is_word(next, "of") {
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;

    fn show(text: &str) -> (Option<Cmd>, Vec<Tok<'_>>) {
        let toks = lex(text).unwrap();
        let p = plan(&toks);
        (p.cmd.map(|c| c.0), p.tokens.iter().map(|t| t.tok).collect())
    }

    #[test]
    fn operator_words() {
        use Tok::*;
        assert_eq!(show("2 plus 3"), (None, vec![Num("2"), Plus, Num("3")]));
        assert_eq!(
            show("What is 7 minus 2?"),
            (None, vec![Num("7"), Minus, Num("2")])
        );
        assert_eq!(
            show("3 multiplied by 4"),
            (None, vec![Num("3"), Star, Num("4")])
        );
        assert_eq!(
            show("2 to the power of 10"),
            (None, vec![Num("2"), Caret, Num("10")])
        );
        assert_eq!(
            show("the square root of 16"),
            (None, vec![Ident("sqrt"), Num("16")])
        );
        assert_eq!(show("sqrt of 16"), (None, vec![Ident("sqrt"), Num("16")]));
        assert_eq!(show("5 squared"), (None, vec![Num("5"), Caret, Num("2")]));
        assert_eq!(
            show("15 percent of 200"),
            (None, vec![Num("15"), Percent, Ident("of"), Num("200")])
        );
    }

    #[test]
    fn commands() {
        use Tok::*;
        assert_eq!(
            show("prime factors of 12"),
            (Some(Cmd::Factors), vec![Num("12")])
        );
        assert_eq!(show("is 97 prime?"), (Some(Cmd::IsPrime), vec![Num("97")]));
        assert_eq!(
            show("is 97 a prime number"),
            (Some(Cmd::IsPrime), vec![Num("97")])
        );
        assert_eq!(show("is prime 97"), (Some(Cmd::IsPrime), vec![Num("97")]));
        assert_eq!(
            show("the 10th fibonacci number"),
            (Some(Cmd::Fib), vec![Num("10")])
        );
        assert_eq!(
            show("fibonacci number 10"),
            (Some(Cmd::Fib), vec![Num("10")])
        );
        assert_eq!(show("100 factorial"), (Some(Cmd::Fact), vec![Num("100")]));
        assert_eq!(
            show("gcd(12, 18)"),
            (Some(Cmd::Gcd), vec![Num("12"), Comma, Num("18")])
        );
        assert_eq!(
            show("greatest common divisor of 12 and 18"),
            (Some(Cmd::Gcd), vec![Num("12"), Ident("and"), Num("18")])
        );
        assert_eq!(
            show("what is the sum of 1, 2"),
            (Some(Cmd::Sum), vec![Num("1"), Comma, Num("2")])
        );
        // A function call inside a bigger expression is not a command.
        assert_eq!(show("fib(10) + 1").0, None);
        assert_eq!(show("2 + 2").0, None);
    }
}

/// An equation typed as a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EquationText {
    /// Asked to solve (`solve …`, `… for x`): the solver answers, even
    /// with an error.
    Asked(String),
    /// An `=` between expressions with a letter in them: an equation if
    /// the solver can read it, else the expression parser's to answer.
    Looks(String),
}

impl EquationText {
    /// The equation (or the equations, comma-separated).
    pub(crate) fn text(&self) -> &str {
        match self {
            EquationText::Asked(t) | EquationText::Looks(t) => t,
        }
    }
}

/// The equation in `text`, if it is one: `solve x^2 - 5x + 6 = 0`,
/// `3x + 2 = 11`, `solve x + y = 3 and x - y = 1 for x and y`.
pub(crate) fn equation_text(text: &str) -> Option<EquationText> {
    let t = text.trim().trim_end_matches(['?', '.', '!']).trim();
    let lower = t.to_ascii_lowercase();
    let mut rest = t;
    let mut asked = false;
    for prefix in [
        "please solve",
        "solve the equations",
        "solve the equation",
        "solve the system",
        "solve",
    ] {
        if lower.starts_with(prefix) && t.is_char_boundary(prefix.len()) {
            rest = t[prefix.len()..].trim_start_matches([':', ' ']);
            asked = true;
            break;
        }
    }
    // `… for x`, `… for x and y`, `… for x, y`: the unknowns are the
    // equation's own letters; the words only say it is an equation.
    let lower_rest = rest.to_ascii_lowercase();
    if let Some(at) = lower_rest.rfind(" for ") {
        let unknowns = &lower_rest[at + 5..];
        let only_letters = unknowns
            .split([',', ' '])
            .filter(|w| !w.is_empty() && *w != "and")
            .all(|w| {
                w.chars().count() <= 3 && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if only_letters && rest.is_char_boundary(at) {
            rest = rest[..at].trim_end();
            asked = true;
        }
    }
    if !rest.contains('=') || !rest.chars().any(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let equations = if rest.matches('=').count() > 1 {
        rest.replace(" and ", ", ")
    } else {
        rest.to_string()
    };
    Some(if asked {
        EquationText::Asked(equations)
    } else {
        EquationText::Looks(equations)
    })
}

#[cfg(test)]
mod equation_text_tests {
    use super::{equation_text, EquationText};

    #[test]
    fn equations_are_recognised_in_plain_text() {
        let asked = |s: &str| Some(EquationText::Asked(s.to_string()));
        let looks = |s: &str| Some(EquationText::Looks(s.to_string()));
        assert_eq!(
            equation_text("solve x^2 - 5x + 6 = 0"),
            asked("x^2 - 5x + 6 = 0")
        );
        assert_eq!(equation_text("Solve: 2x = 4?"), asked("2x = 4"));
        assert_eq!(equation_text("3x + 2 = 11"), looks("3x + 2 = 11"));
        assert_eq!(equation_text("2y + 1 = 7 for y"), asked("2y + 1 = 7"));
        assert_eq!(
            equation_text("solve x + y = 3 and x - y = 1 for x and y"),
            asked("x + y = 3, x - y = 1")
        );
        assert_eq!(equation_text("2 + 2"), None);
        assert_eq!(equation_text("1 + 1 = 2"), None);
        assert_eq!(equation_text("what is 15% of 200"), None);
    }
}

/// Number words and their values as numerals (static: the tokens borrow).
const NUMBER_WORDS: &[(&str, &str)] = &[
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
    ("eleven", "11"),
    ("twelve", "12"),
    ("thirteen", "13"),
    ("fourteen", "14"),
    ("fifteen", "15"),
    ("sixteen", "16"),
    ("seventeen", "17"),
    ("eighteen", "18"),
    ("nineteen", "19"),
    ("twenty", "20"),
    ("thirty", "30"),
    ("forty", "40"),
    ("fifty", "50"),
    ("sixty", "60"),
    ("seventy", "70"),
    ("eighty", "80"),
    ("ninety", "90"),
];

/// Scale words: `hundred` multiplies within a group, the others close it.
const SCALES: &[(&str, &str)] = &[
    ("hundred", "100"),
    ("thousand", "1000"),
    ("million", "1000000"),
    ("billion", "1000000000"),
    ("trillion", "1000000000000"),
];

/// Ordinals as exponents: "to the third power".
const ORDINALS: &[(&str, &str)] = &[
    ("second", "2"),
    ("third", "3"),
    ("fourth", "4"),
    ("fifth", "5"),
    ("sixth", "6"),
    ("seventh", "7"),
    ("eighth", "8"),
    ("ninth", "9"),
    ("tenth", "10"),
];

fn lookup(table: &[(&str, &'static str)], t: &Token<'_>) -> Option<&'static str> {
    table.iter().find(|(w, _)| is_word(t, w)).map(|&(_, n)| n)
}

/// Whether `rest` starts with the "power" of "to the 100th power" (the
/// operator words made it a `^`): one that nothing follows, or an operator.
fn trailing_power(rest: &[Token<'_>]) -> bool {
    match rest {
        [first, ..] if is_word(first, "power") => true,
        [Token {
            tok: Tok::Caret, ..
        }] => true,
        [Token {
            tok: Tok::Caret, ..
        }, next, ..] => matches!(
            next.tok,
            Tok::Plus
                | Tok::Minus
                | Tok::Star
                | Tok::Slash
                | Tok::RParen
                | Tok::Mod
                | Tok::Question
        ),
        _ => false,
    }
}

fn is_number_word(t: &Token<'_>) -> bool {
    lookup(NUMBER_WORDS, t).is_some() || lookup(SCALES, t).is_some()
}

/// Number words as arithmetic on numerals, so that no token needs an
/// owned string: "three hundred and twenty five thousand" becomes
/// `((3 * 100 + 20 + 5) * 1000)`. Ordinal exponents ("to the 100th
/// power", "to the third power") become plain exponents.
pub(crate) fn number_words<'a>(toks: &[Token<'a>]) -> Option<Vec<Token<'a>>> {
    let any = toks.iter().any(|t| {
        is_number_word(t) || lookup(ORDINALS, t).is_some() || is_any(t, &["st", "nd", "rd", "th"])
    });
    if !any {
        return None;
    }
    let mut out: Vec<Token<'a>> = Vec::with_capacity(toks.len() + 8);
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        let after_caret = |out: &[Token<'a>]| out.last().is_some_and(|l| l.tok == Tok::Caret);
        // "the 100th power" / "the third power" after "to": the exponent.
        if let Some(n) = lookup(ORDINALS, &t).filter(|_| after_caret(&out)) {
            out.push(Token {
                tok: Tok::Num(n),
                pos: t.pos,
            });
            i += 1 + usize::from(trailing_power(&toks[i + 1..]));
            continue;
        }
        if is_any(&t, &["st", "nd", "rd", "th"])
            && matches!(
                out.last(),
                Some(Token {
                    tok: Tok::Num(_),
                    ..
                })
            )
            && out.len() >= 2
            && out[out.len() - 2].tok == Tok::Caret
        {
            i += 1 + usize::from(trailing_power(&toks[i + 1..]));
            continue;
        }
        let starts_run = is_number_word(&t)
            || (is_word(&t, "a") && toks.get(i + 1).is_some_and(|n| lookup(SCALES, n).is_some()));
        if !starts_run {
            out.push(t);
            i += 1;
            continue;
        }
        // One run of number words: groups closed by thousand/million/…,
        // each a sum of products.
        let pos = t.pos;
        let mut groups: Vec<(Vec<Vec<&'static str>>, Option<&'static str>)> = Vec::new();
        let mut summands: Vec<Vec<&'static str>> = Vec::new();
        while let Some(w) = toks.get(i) {
            if let Some(n) = lookup(NUMBER_WORDS, w) {
                summands.push(vec![n]);
            } else if is_word(w, "hundred") {
                match summands.last_mut() {
                    Some(last) => last.push("100"),
                    None => summands.push(vec!["100"]),
                }
            } else if let Some(scale) = lookup(SCALES, w) {
                if summands.is_empty() {
                    summands.push(vec!["1"]);
                }
                groups.push((std::mem::take(&mut summands), Some(scale)));
            } else if is_word(w, "a")
                && toks.get(i + 1).is_some_and(|n| lookup(SCALES, n).is_some())
            {
                summands.push(vec!["1"]);
            } else if (is_word(w, "and") || w.tok == Tok::Minus)
                && toks.get(i + 1).is_some_and(is_number_word)
                && !(summands.is_empty() && groups.is_empty())
            {
                // "a hundred and five", "twenty-three": joiners inside a run.
            } else {
                break;
            }
            i += 1;
        }
        if !summands.is_empty() {
            groups.push((summands, None));
        }
        let tok = |tok| Token { tok, pos };
        out.push(tok(Tok::LParen));
        for (g, (summands, scale)) in groups.iter().enumerate() {
            if g > 0 {
                out.push(tok(Tok::Plus));
            }
            out.push(tok(Tok::LParen));
            for (s, factors) in summands.iter().enumerate() {
                if s > 0 {
                    out.push(tok(Tok::Plus));
                }
                for (f, n) in factors.iter().enumerate() {
                    if f > 0 {
                        out.push(tok(Tok::Star));
                    }
                    out.push(tok(Tok::Num(n)));
                }
            }
            out.push(tok(Tok::RParen));
            if let Some(scale) = scale {
                out.push(tok(Tok::Star));
                out.push(tok(Tok::Num(scale)));
            }
        }
        out.push(tok(Tok::RParen));
    }
    Some(out)
}
