//! The operator spellings shared by the question lexer and the equation
//! lexer, so that `6 × 7`, `2 ** 3` or `3²` mean the same in a question and
//! in an equation.

/// An arithmetic operator or a bracket, whatever its spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Open,
    Close,
}

impl Op {
    /// The ASCII spelling, as the equation parser and error messages use it.
    pub(crate) fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
            Op::Div => '/',
            Op::Pow => '^',
            Op::Open => '(',
            Op::Close => ')',
        }
    }
}

/// Every spelling of every operator. `**` comes before `*` so the longer
/// spelling wins.
pub(crate) const SPELLINGS: &[(&str, Op)] = &[
    ("**", Op::Pow),
    ("^", Op::Pow),
    ("+", Op::Add),
    ("-", Op::Sub),
    ("\u{2212}", Op::Sub), // − minus sign
    ("\u{2013}", Op::Sub), // – en dash
    ("*", Op::Mul),
    ("×", Op::Mul),
    ("\u{b7}", Op::Mul),   // · middle dot
    ("\u{2219}", Op::Mul), // ∙ bullet operator
    ("\u{22c5}", Op::Mul), // ⋅ dot operator
    ("\u{2217}", Op::Mul), // ∗ asterisk operator
    ("/", Op::Div),
    ("÷", Op::Div),
    ("\u{2215}", Op::Div), // ∕ division slash
    ("(", Op::Open),
    ("[", Op::Open),
    ("{", Op::Open),
    (")", Op::Close),
    ("]", Op::Close),
    ("}", Op::Close),
];

/// Superscript digits by value: a run of them is an exponent (`3²` is
/// `3^2`, `2¹⁰` is `2^10`).
const SUPERSCRIPT_DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];

/// The operator spelled at the start of `s`, and that spelling.
pub(crate) fn operator_at(s: &str) -> Option<(Op, &'static str)> {
    SPELLINGS
        .iter()
        .find(|(spelling, _)| s.starts_with(spelling))
        .map(|&(spelling, op)| (op, spelling))
}

/// The length in bytes of the run of superscript digits at the start of `s`
/// (0 when there is none).
pub(crate) fn superscript_len(s: &str) -> usize {
    s.chars()
        .take_while(|c| SUPERSCRIPT_DIGITS.contains(c))
        .map(char::len_utf8)
        .sum()
}

/// `s` with every superscript digit replaced by its ASCII digit: `¹⁰` → `10`.
pub(crate) fn superscript_to_ascii(s: &str) -> String {
    s.chars()
        .map(|c| match SUPERSCRIPT_DIGITS.iter().position(|&d| d == c) {
            Some(d) => char::from(b'0' + d as u8),
            None => c,
        })
        .collect()
}

/// Whether `text` contains a power in any spelling (`^`, `**`, superscripts).
pub(crate) fn has_power(text: &str) -> bool {
    SPELLINGS
        .iter()
        .any(|&(spelling, op)| op == Op::Pow && text.contains(spelling))
        || text.chars().any(|c| SUPERSCRIPT_DIGITS.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_spelling_wins() {
        assert_eq!(operator_at("**2"), Some((Op::Pow, "**")));
        assert_eq!(operator_at("*2"), Some((Op::Mul, "*")));
        assert_eq!(operator_at("− 3"), Some((Op::Sub, "−")));
        assert_eq!(operator_at("x"), None);
        assert_eq!(operator_at(""), None);
    }

    #[test]
    fn every_spelling_is_found_as_itself() {
        for &(spelling, op) in SPELLINGS {
            assert_eq!(operator_at(spelling), Some((op, spelling)), "{spelling}");
        }
    }

    #[test]
    fn superscripts() {
        assert_eq!(superscript_len("²+1"), '²'.len_utf8());
        assert_eq!(superscript_len("¹⁰"), "¹⁰".len());
        assert_eq!(superscript_len("2"), 0);
        assert_eq!(superscript_to_ascii("⁰¹²³⁴⁵⁶⁷⁸⁹"), "0123456789");
        assert!(has_power("3²") && has_power("2 ** 3") && has_power("2^3"));
        assert!(!has_power("2 * 3 × 4"));
    }
}
