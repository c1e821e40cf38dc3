//! Behaviour every history backend must show, run by each backend's tests.

use super::{HistoryEntry, HistoryStore};
use chrono::{TimeZone, Utc};
use std::future::Future;
use std::time::Duration;

/// History checks. `make(retention)` returns a fresh, empty store keeping at
/// most `retention` entries (`None` skips).
pub async fn history_suite<F, Fut>(make: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Option<Box<dyn HistoryStore>>>,
{
    let Some(store) = make(1000).await else {
        return;
    };
    assert!(store.similar("2+2", 5).await.expect("empty").is_empty());

    let entry = |q: &str, r: &str, ms: u64, secs: i64| HistoryEntry {
        query: q.into(),
        result: r.into(),
        processing_time: Duration::from_nanos(ms * 1_000_000 + 7),
        agent_version: "0.1.0".into(),
        created_at: Utc
            .timestamp_opt(1_750_000_000 + secs, 123_456_000)
            .single()
            .expect("ts"),
    };
    let first = entry("2+2", "4", 3, 0);
    let spaced = entry("What is 2 + 2", "4", 2, 1);
    let again = entry("2 + 2", "4", 1, 2);
    let integral = entry("integrate x^2 dx", "x^3/3 + C", 40, 3);
    let integral2 = entry("Integrate x^3 dx", "x^4/4 + C", 41, 4);
    let short = entry("5", "5", 1, 5);
    let weird = entry("a\u{0}b \"quoted\" OR NEAR(x) * ^", "?", 1, 6);
    for e in [
        &first, &spaced, &again, &integral, &integral2, &short, &weird,
    ] {
        store.record(e.clone());
    }
    store.flush().await.expect("flush");

    // Identical after normalization first, newest first among equals; the
    // longer phrasing is less similar; unrelated queries are not returned.
    let hits = store.similar("2+2", 10).await.expect("similar");
    assert_eq!(hits, vec![again.clone(), first.clone()]);
    let hits = store.similar("what is 2+2?", 10).await.expect("similar");
    assert_eq!(hits.first(), Some(&spaced));
    assert!(!hits.contains(&integral));

    let hits = store.similar("integrate x^2", 10).await.expect("similar");
    assert_eq!(hits.first(), Some(&integral));
    assert!(hits.contains(&integral2), "{hits:?}");
    assert!(!hits.contains(&first));
    assert_eq!(
        store.similar("integrate x^2", 1).await.expect("limit"),
        vec![integral.clone()]
    );
    assert!(store.similar("2+2", 0).await.expect("zero").is_empty());

    // Queries too short for a trigram index still find their equals.
    assert_eq!(store.similar(" 5 ", 3).await.expect("short"), vec![short]);
    // FTS syntax and NUL characters in queries are data, not syntax.
    let hits = store.similar(&weird.query, 3).await.expect("weird");
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].query.replace('\u{0}', "\u{fffd}"),
        weird.query.replace('\u{0}', "\u{fffd}")
    );
    assert!(store
        .similar("completely unrelated words", 5)
        .await
        .expect("unrelated")
        .is_empty());

    let stats = store.stats();
    assert_eq!((stats.accepted, stats.dropped, stats.failed), (7, 0, 0));
    assert_eq!(stats.written, 7);

    // Without a flush, an entry shows up once the writer's interval passed
    // (bounded wait; no timing assertion).
    let late = entry("sqrt(144)", "12", 1, 7);
    store.record(late.clone());
    let mut found = Vec::new();
    for _ in 0..200 {
        found = store.similar("sqrt(144)", 1).await.expect("similar");
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(found, vec![late]);

    // Retention keeps the newest rows.
    let Some(small) = make(10).await else {
        return;
    };
    for i in 0..25 {
        small.record(entry(&format!("retention query {i:02}"), "r", 1, i));
    }
    small.flush().await.expect("flush");
    let kept = small
        .similar("retention query 24", 100)
        .await
        .expect("similar");
    assert!(kept.len() <= 10, "kept {}", kept.len());
    assert!(kept.len() >= 5, "similar found only {}", kept.len());
    assert_eq!(kept[0].query, "retention query 24");
    assert!(kept
        .iter()
        .all(|e| e.query.as_str() >= "retention query 15"));
    assert_eq!(small.stats().written, 25);
}
