//! Which questions go to the external services.

/// Word stems that mark a question the local engine cannot answer. Each must
/// start a word ("limit" matches "limits" but not "unlimited"); stems catch
/// the inflections ("integrat" = integrate, integrating, integration).
const STEMS: &[&str] = &[
    // Subjects beyond the local engine.
    "integral",
    "derivative",
    "limit",
    "complex analysis",
    "differential equation",
    "linear algebra",
    "calculus",
    // Verbs and close relatives.
    "integrat",
    "antiderivative",
    "differentiat",
    "d/dx",
    "dy/dx",
    "eigenvalue",
    "eigenvector",
    // "series" only as an expansion: the local engine sums "1, 2, 3" itself.
    "taylor series",
    "maclaurin series",
    "power series",
    "fourier series",
    "laurent series",
    "series expansion",
];

/// `true` if `text` asks for mathematics the local engine does not do and
/// the external services might: calculus, limits, series expansions, linear
/// algebra, differential equations, "solve ... for x".
///
/// Plain "series" is not enough ("sum of the series 1, 2, 3" stays local);
/// "taylor series", "power series", "series expansion" and the like are.
///
/// ```
/// use abacus::external::wants_external;
/// assert!(wants_external("What is the integral of x^2?"));
/// assert!(wants_external("taylor series of e^x"));
/// assert!(!wants_external("sum of 1, 2, 3"));
/// assert!(!wants_external("2 + 2"));
/// ```
pub fn wants_external(text: &str) -> bool {
    let text = text.to_lowercase();
    STEMS.iter().any(|stem| starts_a_word(&text, stem)) || solve_for(&text)
}

/// `stem` occurs at the start of a word of `text`.
fn starts_a_word(text: &str, stem: &str) -> bool {
    text.match_indices(stem).any(|(i, _)| {
        text[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
    })
}

/// "solve ... for ...": the word "solve" followed, later, by the word "for".
fn solve_for(text: &str) -> bool {
    let mut words = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty());
    words.any(|w| w == "solve") && words.any(|w| w == "for")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_starts() {
        assert!(starts_a_word("limits of f", "limit"));
        assert!(!starts_a_word("unlimited", "limit"));
        assert!(starts_a_word("(d/dx) x", "d/dx"));
        assert!(solve_for("solve for x: 2x = 4"));
        assert!(!solve_for("for x solve"));
        assert!(!solve_for("solver for x"));
    }
}
