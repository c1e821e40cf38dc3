//! The error type of the math engine.

/// Everything that can go wrong while parsing or evaluating a math query.
///
/// The `Display` text of every variant is meant to be shown to the person
/// who asked the question, so it says what went wrong and, where useful,
/// which value or limit was involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MathError {
    /// The query looks like math but is not well formed.
    #[error("could not parse the expression: {message} (at column {})", .position + 1)]
    Parse {
        /// What was expected or found.
        message: String,
        /// Zero-based character offset into the query text where the problem was found.
        position: usize,
    },
    /// A division or modulo by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// An argument outside a function's domain, e.g. `sqrt(-1)` or `ln(0)`,
    /// or a result that is not a finite real number.
    #[error("math domain error: {0}")]
    Domain(String),
    /// A configured limit was exceeded; the message names the limit, the value and the maximum.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The computation ran past its time budget and was stopped.
    #[error("the computation took too long and was stopped (time limit exceeded)")]
    TimedOut,
    /// The computation was cancelled by the caller.
    #[error("the computation was cancelled")]
    Cancelled,
    /// The input is not math that this engine knows; the message lists what is supported.
    #[error("{0}")]
    NotUnderstood(String),
}

impl MathError {
    /// Whether this error comes from a resource limit: a [`Limits`](super::Limits)
    /// value ([`MathError::LimitExceeded`]) or the time budget ([`MathError::TimedOut`]).
    ///
    /// ```rust
    /// use abacus::math::MathError;
    /// assert!(MathError::TimedOut.is_limit());
    /// assert!(!MathError::DivisionByZero.is_limit());
    /// ```
    pub fn is_limit(&self) -> bool {
        matches!(self, MathError::LimitExceeded(_) | MathError::TimedOut)
    }

    /// A short snake_case name for the kind of error, suitable as a metrics label.
    ///
    /// ```rust
    /// use abacus::math::MathError;
    /// assert_eq!(MathError::DivisionByZero.kind(), "division_by_zero");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            MathError::Parse { .. } => "parse_error",
            MathError::DivisionByZero => "division_by_zero",
            MathError::Domain(_) => "domain_error",
            MathError::LimitExceeded(_) => "limit_exceeded",
            MathError::TimedOut => "timed_out",
            MathError::Cancelled => "cancelled",
            MathError::NotUnderstood(_) => "not_understood",
        }
    }

    /// Every value [`MathError::kind`] returns, e.g. to register a metric's
    /// labels before the first error.
    ///
    /// ```rust
    /// use abacus::math::MathError;
    /// assert!(MathError::KINDS.contains(&MathError::TimedOut.kind()));
    /// ```
    pub const KINDS: &'static [&'static str] = &[
        "parse_error",
        "division_by_zero",
        "domain_error",
        "limit_exceeded",
        "timed_out",
        "cancelled",
        "not_understood",
    ];

    pub(crate) fn parse(message: impl Into<String>, position: usize) -> Self {
        MathError::Parse {
            message: message.into(),
            position,
        }
    }

    pub(crate) fn domain(message: impl Into<String>) -> Self {
        MathError::Domain(message.into())
    }

    pub(crate) fn limit(message: impl Into<String>) -> Self {
        MathError::LimitExceeded(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_messages() {
        let e = MathError::parse("expected ')'", 4);
        assert_eq!(
            e.to_string(),
            "could not parse the expression: expected ')' (at column 5)"
        );
        assert_eq!(MathError::DivisionByZero.to_string(), "division by zero");
        assert_eq!(
            MathError::domain("ln(0) is undefined").to_string(),
            "math domain error: ln(0) is undefined"
        );
    }

    /// One error of every variant, in the order of [`MathError::KINDS`].
    fn one_of_each() -> Vec<MathError> {
        let all = vec![
            MathError::parse("x", 0),
            MathError::DivisionByZero,
            MathError::domain("x"),
            MathError::limit("x"),
            MathError::TimedOut,
            MathError::Cancelled,
            MathError::NotUnderstood("x".into()),
        ];
        for e in &all {
            // No wildcard: a new variant stops this compiling until it has
            // an example above and its kind is in `KINDS`.
            match e {
                MathError::Parse { .. }
                | MathError::DivisionByZero
                | MathError::Domain(_)
                | MathError::LimitExceeded(_)
                | MathError::TimedOut
                | MathError::Cancelled
                | MathError::NotUnderstood(_) => {}
            }
        }
        all
    }

    #[test]
    fn kinds_and_limits() {
        let all = one_of_each();
        let kinds: Vec<_> = all.iter().map(MathError::kind).collect();
        assert_eq!(kinds, MathError::KINDS);
        let limits: Vec<_> = all.iter().map(MathError::is_limit).collect();
        assert_eq!(limits, [false, false, false, true, true, false, false]);
    }
}
