//! What the math agent asks an LLM, and how it checks the answer: the
//! arithmetic an answer states (`17 × 23 = 391`) is recomputed exactly by
//! the local engine, and a wrong claim is said so.

use super::{parse, Budget, Limits};

/// The instructions sent with every question.
pub(super) const SYSTEM_PROMPT: &str = "You are a careful mathematics tutor. Answer the \
question concisely and correctly. Write every arithmetic step you state as \
`expression = result` with plain numbers, for example `17 * 23 = 391`.";

/// Words that ask for an explanation rather than a value: these go to the
/// LLM (when one is configured) even if the engine could compute a part.
const EXPLAIN: [&str; 5] = ["explain", "why", "prove", "show", "describe"];

/// After "how", the words of a question about a method ("how do I …");
/// "how many ways …" asks for a number, the engine's.
const HOW: [&str; 8] = ["do", "does", "did", "can", "come", "is", "would", "should"];

/// Whether `text` asks for an explanation ("explain why …", "why is …",
/// "how do I …").
pub(super) fn asks_for_explanation(text: &str) -> bool {
    let mut words = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()));
    let first = words.next().unwrap_or_default();
    if first.eq_ignore_ascii_case("how") {
        let second = words.next().unwrap_or_default();
        return HOW.iter().any(|w| w.eq_ignore_ascii_case(second));
    }
    EXPLAIN.iter().any(|w| w.eq_ignore_ascii_case(first))
}

/// What the engine can answer of an explanation request when the LLM is
/// not there: "explain why the derivative of x^2 is 2x" → "the derivative
/// of x^2"; the text itself otherwise.
pub(super) fn computable_part(text: &str) -> String {
    let mut rest = text.trim().trim_end_matches(['?', '.', '!']).to_string();
    loop {
        let lower = rest.to_ascii_lowercase();
        let words = [
            "explain",
            "why",
            "how",
            "prove",
            "show",
            "describe",
            "me",
            "that",
            "is",
            "does",
            "do",
            "the",
            "steps",
            "of",
            "to",
            "compute",
            "calculate",
            "get",
            "i",
            "we",
            "you",
        ];
        let Some(first) = lower.split_whitespace().next() else {
            return rest;
        };
        if !words.contains(&first) || first == "the" && lower.starts_with("the derivative") {
            break;
        }
        rest = rest.trim_start()[first.len()..].trim_start().to_string();
    }
    // "… is 2x", "… equals 4": the claim is left out.
    for sep in [" is ", " equals ", " gives "] {
        if let Some(i) = rest.to_ascii_lowercase().rfind(sep) {
            rest.truncate(i);
        }
    }
    rest
}

/// One arithmetic claim of an answer that the engine checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Claim {
    /// The expression as written (`17 * 23`).
    pub(super) expression: String,
    /// The result the answer states.
    pub(super) stated: String,
    /// The engine's exact result.
    pub(super) computed: String,
}

impl Claim {
    pub(super) fn is_right(&self) -> bool {
        if self.stated == self.computed {
            return true;
        }
        // "3.3333" for 10/3: equal to the digits stated.
        match (self.stated.parse::<f64>(), decimal(&self.computed)) {
            (Ok(s), Some(c)) => {
                let digits = self.stated.split('.').nth(1).map_or(0, str::len) as i32;
                (s - c).abs() <= 0.5 * 10f64.powi(-digits) * 1.000_001
            }
            _ => false,
        }
    }
}

/// `7/2`, `3.5`, `-4` as a float.
fn decimal(exact: &str) -> Option<f64> {
    match exact.split_once('/') {
        Some((n, d)) => Some(n.trim().parse::<f64>().ok()? / d.trim().parse::<f64>().ok()?),
        None => exact.trim().parse().ok(),
    }
}

/// Characters of an arithmetic expression as an answer writes it.
fn is_expression_char(c: char) -> bool {
    c.is_ascii_digit() || " .+-*/×÷^()−·".contains(c)
}

/// Every `expression = number` of `answer` whose expression the engine
/// evaluates (at most 20, each within the engine's limits).
pub(super) fn arithmetic_claims(answer: &str, limits: &Limits) -> Vec<Claim> {
    let mut claims = Vec::new();
    // Markdown: code spans and bold are not arithmetic.
    let plain = answer.replace('`', " ").replace("**", " ");
    let chars: Vec<(usize, char)> = plain.char_indices().collect();
    for (k, &(at, c)) in chars.iter().enumerate() {
        if c != '=' || claims.len() >= 20 {
            continue;
        }
        let start = chars[..k]
            .iter()
            .rev()
            .take_while(|(_, c)| is_expression_char(*c))
            .last()
            .map_or(at, |(i, _)| *i);
        let left = plain[start..at]
            .trim()
            .trim_start_matches([')', '.'])
            .trim();
        let right: String = plain[at + 1..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-' || *c == ',')
            .collect();
        let right = right.trim_end_matches(['.', ',']).replace(',', "");
        let has_operator = left.chars().skip(1).any(|c| "+-*/×÷^−·".contains(c));
        if !has_operator || right.is_empty() || !left.chars().any(|c| c.is_ascii_digit()) {
            continue;
        }
        let budget = Budget::new(limits.cpu_time);
        let computed = parse(left, limits).and_then(|q| q.evaluate(limits, &budget, &mut |_| {}));
        if let Ok(answer) = computed {
            claims.push(Claim {
                expression: left.to_string(),
                stated: right,
                computed: answer.result,
            });
        }
    }
    claims
}

/// The agent's note on the claims: what it found wrong, or that it checked.
pub(super) fn check_note(claims: &[Claim]) -> Option<String> {
    if claims.is_empty() {
        return None;
    }
    let wrong: Vec<String> = claims
        .iter()
        .filter(|c| !c.is_right())
        .map(|c| {
            format!(
                "the answer states {} = {}, but {} = {}",
                c.expression, c.stated, c.expression, c.computed
            )
        })
        .collect();
    Some(match wrong.len() {
        0 => format!(
            "Checked by the exact engine: {} arithmetic step{} correct.",
            claims.len(),
            if claims.len() == 1 { " is" } else { "s are" }
        ),
        _ => format!("Correction by the exact engine: {}.", wrong.join("; ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanation_requests_are_recognized() {
        assert!(asks_for_explanation(
            "Explain why the derivative of x^2 is 2x"
        ));
        assert!(asks_for_explanation("why is 0! equal to 1?"));
        assert!(asks_for_explanation("How do I solve 2x = 4"));
        assert!(!asks_for_explanation("2 + 2"));
        assert!(!asks_for_explanation("derivative of x^3"));
        assert!(!asks_for_explanation("how many ways to arrange 5"));
        assert!(asks_for_explanation("how does long division work"));
    }

    #[test]
    fn the_computable_part_of_an_explanation_request() {
        assert_eq!(
            computable_part("Explain why the derivative of x^2 is 2x"),
            "the derivative of x^2"
        );
        assert_eq!(computable_part("explain 2^10"), "2^10");
        assert_eq!(computable_part("why is 17 * 23 equal"), "17 * 23 equal");
    }

    #[test]
    fn claims_are_found_and_checked() {
        let limits = Limits::default();
        let claims = arithmetic_claims(
            "First, 17 × 23 = 381. Then `381 + 9 = 390`, and 10/4 = 2.5; x = 3 is a root.",
            &limits,
        );
        assert_eq!(claims.len(), 3, "{claims:?}");
        assert!(!claims[0].is_right());
        assert_eq!(claims[0].computed, "391");
        assert!(claims[1].is_right());
        assert!(claims[2].is_right(), "{:?}", claims[2]);
        let note = check_note(&claims).unwrap_or_default();
        assert!(note.contains("17 × 23 = 381, but 17 × 23 = 391"), "{note}");
        let right = arithmetic_claims("So 2 + 2 = 4.", &limits);
        assert_eq!(
            check_note(&right).as_deref(),
            Some("Checked by the exact engine: 1 arithmetic step is correct.")
        );
        assert_eq!(
            check_note(&arithmetic_claims("no numbers here", &limits)),
            None
        );
        let rounded = arithmetic_claims("10 / 3 = 3.333", &limits);
        assert!(rounded[0].is_right(), "{rounded:?}");
        let off = arithmetic_claims("10 / 3 = 3.4", &limits);
        assert!(!off[0].is_right(), "{off:?}");
    }
}
