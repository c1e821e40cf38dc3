//! The similarity measure every backend ranks by (see the module docs of
//! [`super`]).

use super::{HistoryEntry, SIMILARITY_THRESHOLD};
use std::time::Duration;

/// Normalized queries longer than this many characters are cut before
/// indexing and comparing, which bounds the cost of a similarity search.
const MAX_NORMALIZED_CHARS: usize = 256;

/// A query's comparable form: lowercase with all whitespace removed, cut to
/// [`MAX_NORMALIZED_CHARS`] characters.
pub(super) fn normalize(query: &str) -> String {
    query
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .take(MAX_NORMALIZED_CHARS)
        .collect()
}

/// One character trigram.
pub(super) type Trigram = [char; 3];

/// The sorted, distinct trigrams of a normalized query, padded with two
/// spaces in front and one behind (as `pg_trgm` pads words).
pub(super) fn trigrams(normalized: &str) -> Vec<Trigram> {
    let padded: Vec<char> = "  "
        .chars()
        .chain(normalized.chars())
        .chain(std::iter::once(' '))
        .collect();
    let mut out: Vec<Trigram> = padded.windows(3).map(|w| [w[0], w[1], w[2]]).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The unpadded trigrams of a normalized query in first-seen order without
/// repeats, as SQLite's FTS5 `trigram` tokenizer indexes them.
pub(super) fn plain_trigrams(normalized: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = normalized.chars().collect();
    let mut out: Vec<String> = Vec::new();
    for w in chars.windows(3) {
        let t: String = w.iter().collect();
        if !out.contains(&t) {
            out.push(t);
            if out.len() >= max {
                break;
            }
        }
    }
    out
}

/// Jaccard index of two sorted, distinct trigram sets.
pub(super) fn jaccard(a: &[Trigram], b: &[Trigram]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - common;
    common as f64 / union as f64
}

/// Scores `candidates` (pairs of insertion sequence and entry, in any order,
/// possibly repeated) against `query` and keeps the best `limit` of those at
/// or above [`SIMILARITY_THRESHOLD`]: highest score first, then newest
/// (highest sequence) first.
pub(super) fn rank(
    query: &str,
    candidates: Vec<(i64, HistoryEntry)>,
    limit: usize,
) -> Vec<HistoryEntry> {
    let wanted = trigrams(&normalize(query));
    let mut scored: Vec<(f64, i64, HistoryEntry)> = candidates
        .into_iter()
        .filter_map(|(seq, entry)| {
            let score = jaccard(&wanted, &trigrams(&normalize(&entry.query)));
            (score >= SIMILARITY_THRESHOLD).then_some((score, seq, entry))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.truncate(limit);
    scored.into_iter().map(|(_, _, entry)| entry).collect()
}

/// Saturating conversion of a duration to nanoseconds for storage.
pub(super) fn duration_to_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A stored nanosecond count back to a duration (negative counts read as 0).
pub(super) fn nanos_to_duration(n: i64) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_ignores_case_and_spaces() {
        assert_eq!(normalize("  What IS 2 +\t2 "), "whatis2+2");
        assert_eq!(trigrams(&normalize("2 + 2")), trigrams(&normalize("2+2")));
    }

    #[test]
    fn jaccard_bounds() {
        let a = trigrams("abc");
        assert_eq!(jaccard(&a, &a), 1.0);
        assert_eq!(jaccard(&a, &trigrams("xyz")), 0.0);
        let s = jaccard(&trigrams("integratex^2"), &trigrams("integratex^3"));
        assert!(s > SIMILARITY_THRESHOLD && s < 1.0, "{s}");
    }

    #[test]
    fn plain_trigrams_match_fts() {
        assert_eq!(plain_trigrams("abcab", 10), vec!["abc", "bca", "cab"]);
        assert!(plain_trigrams("ab", 10).is_empty());
        assert_eq!(plain_trigrams("abcdef", 2).len(), 2);
    }
}
