//! Load on a server while its store fails and comes back: what every
//! request got, when readiness turned, and whether each acknowledged task
//! reads back afterwards. Shared by the store fault tests.

use crate::common::{get, task_state};
use abacus::client::JsonRpcClient as Client;
use abacus::protocol::server_error::STORE_UNAVAILABLE;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest any one call may take; more counts as a hang.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What one request came to.
#[derive(Debug)]
pub enum Outcome {
    /// A completed task: the server says it is stored.
    Stored(String),
    /// The store's clear error.
    StoreError,
    /// Anything else: a lie, a wrong error, a broken stream or no answer.
    Other(String),
}

fn is_store_error(reply: &Value) -> bool {
    reply["error"]["code"] == STORE_UNAVAILABLE
        && reply["error"]["data"][0]["reason"] == "STORE_UNAVAILABLE"
}

/// SendMessage of a task question (`fibonacci {1000 + n}`).
pub async fn send_task(client: &Client, n: usize) -> Outcome {
    let params = Client::text_params(&format!("fibonacci {}", 1000 + n));
    let reply = match client.call("SendMessage", params).await {
        Ok(reply) => reply,
        Err(e) => return Outcome::Other(format!("{e:?}")),
    };
    if is_store_error(&reply) {
        return Outcome::StoreError;
    }
    match reply["result"]["task"]["id"].as_str() {
        Some(id) if task_state(&reply) == "TASK_STATE_COMPLETED" => Outcome::Stored(id.to_string()),
        _ => Outcome::Other(reply.to_string()),
    }
}

/// SendStreamingMessage of a task question: stored if the stream ends with
/// the completed status, a store error if it ends with that error (and
/// claimed no completion before).
pub async fn stream_task(client: &Client, n: usize) -> Outcome {
    let params = Client::text_params(&format!("fibonacci {}", 1000 + n));
    let mut events = match client.stream("SendStreamingMessage", params).await {
        Ok(events) => events,
        Err(e) => return Outcome::Other(format!("stream refused: {e:?}")),
    };
    let (mut last, mut completed_before_end) = (Value::Null, false);
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => return Outcome::Other(format!("broken stream: {e:?}")),
        };
        completed_before_end |= completed_id(&last).is_some();
        last = event;
    }
    if completed_before_end {
        return Outcome::Other(format!("a stream went on after completing: {last}"));
    }
    if is_store_error(&last) {
        return Outcome::StoreError;
    }
    match completed_id(&last) {
        Some(id) => Outcome::Stored(id.to_string()),
        None => Outcome::Other(format!("stream ended with {last}")),
    }
}

fn completed_id(event: &Value) -> Option<&str> {
    let update = &event["result"]["statusUpdate"];
    (update["status"]["state"] == "TASK_STATE_COMPLETED")
        .then(|| update["taskId"].as_str())
        .flatten()
}

/// Where the run stood when a request was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The store works.
    Before,
    /// The store was broken and is not repaired yet.
    Outage,
    /// The store is repaired; readiness is not back yet.
    Recovering,
    /// Readiness is back.
    After,
}

const PHASES: [Phase; 4] = [
    Phase::Before,
    Phase::Outage,
    Phase::Recovering,
    Phase::After,
];

/// Requests of one kind or phase.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub sent: usize,
    pub stored: usize,
    pub errors: usize,
    pub other: usize,
}

impl Counts {
    fn add(&mut self, outcome: &Outcome) {
        self.sent += 1;
        match outcome {
            Outcome::Stored(_) => self.stored += 1,
            Outcome::StoreError => self.errors += 1,
            Outcome::Other(_) => self.other += 1,
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {}, stored {}, clear errors {}, other {}",
            self.sent, self.stored, self.errors, self.other
        )
    }
}

/// What a run came to.
#[derive(Debug, Default)]
pub struct Report {
    pub unary: Counts,
    pub streams: Counts,
    /// All requests by the phase they were sent in.
    pub phases: [Counts; 4],
    /// The first few answers that were neither.
    pub others: Vec<String>,
    /// What GetTask of an acknowledged task answered during the outage.
    pub read_in_outage: String,
    /// From breaking the store to readiness 503.
    pub to_503: Option<Duration>,
    /// The failing database check's status.
    pub database_status: String,
    /// From the repaired store to readiness 200.
    pub to_200: Option<Duration>,
    /// From the repaired store to the last clear error answered.
    pub last_error: Option<Duration>,
    pub acknowledged: usize,
    pub lost: usize,
}

impl Report {
    pub fn print(&self, name: &str) {
        let secs =
            |d: Option<Duration>| d.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()));
        eprintln!(
            "{name}: unary {}; streams {}; acknowledged {}, lost {}; readiness 503 {} after the \
             fault ({}), 200 {} after the repair, last clear error {} after it; GetTask in \
             the outage: {}",
            self.unary,
            self.streams,
            self.acknowledged,
            self.lost,
            secs(self.to_503),
            self.database_status,
            secs(self.to_200),
            secs(self.last_error),
            self.read_in_outage,
        );
        for (phase, counts) in PHASES.iter().zip(&self.phases) {
            eprintln!("{name}:   sent {phase:?}: {counts}");
        }
        for other in &self.others {
            eprintln!("{name}:   other: {other}");
        }
    }

    /// Clear answers only, readiness turned both ways, service back as soon
    /// as the store is, and nothing acknowledged lost.
    pub fn assert_sound(&self) {
        let total = self.unary.other + self.streams.other;
        assert_eq!(
            total, 0,
            "answers neither stored nor clear: {:?}",
            self.others
        );
        assert!(
            self.to_503.is_some(),
            "readiness stayed 200 with a broken store"
        );
        assert!(self.to_200.is_some(), "readiness did not come back");
        let outage = self.phases[1];
        assert!(outage.errors > 0, "the broken store never failed a write");
        assert!(
            self.streams.errors > 0,
            "no stream ended with the store's error"
        );
        let (back, after) = (self.phases[2], self.phases[3]);
        assert!(after.stored > 0, "nothing stored after the repair");
        // Service is back with the store, before readiness says so.
        assert_eq!(
            back.errors + after.errors,
            0,
            "store errors after the repair"
        );
        assert_eq!(self.lost, 0, "acknowledged tasks lost");
    }
}

/// Polls readiness until it answers `want`; how long that took and the
/// report, or `None` past `limit`.
async fn readiness_turns(base: &str, want: u16, limit: Duration) -> Option<(Duration, Value)> {
    let url = format!("{base}health/detailed");
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok((status, body)) = get(&url).await {
            if status == want {
                return Some((started.elapsed(), serde_json::from_str(&body).ok()?));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// One request's outcome, and when it was sent and answered.
struct Answer {
    sent_in: Phase,
    stream: bool,
    at: Instant,
    outcome: Outcome,
}

/// Unary and streaming clients sending task questions until `stop`.
struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<Mutex<Phase>>,
    workers: Vec<tokio::task::JoinHandle<Vec<Answer>>>,
}

impl Load {
    fn start(base: &str, unary: usize, streaming: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(Mutex::new(Phase::Before));
        let seq = Arc::new(AtomicUsize::new(0));
        let workers = (0..unary + streaming)
            .map(|i| {
                let (stop, phase, seq) = (stop.clone(), phase.clone(), seq.clone());
                let client = Client::new(base);
                let stream = i >= unary;
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let n = seq.fetch_add(1, Ordering::Relaxed);
                        let sent_in = *phase.lock().unwrap();
                        let call = async {
                            if stream {
                                stream_task(&client, n).await
                            } else {
                                send_task(&client, n).await
                            }
                        };
                        let outcome = tokio::time::timeout(CALL_TIMEOUT, call)
                            .await
                            .unwrap_or_else(|_| {
                                Outcome::Other(format!("no answer in {CALL_TIMEOUT:?}"))
                            });
                        out.push(Answer {
                            sent_in,
                            stream,
                            at: Instant::now(),
                            outcome,
                        });
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    out
                })
            })
            .collect();
        Load {
            stop,
            phase,
            workers,
        }
    }

    fn enter(&self, phase: Phase) {
        *self.phase.lock().unwrap() = phase;
    }

    async fn finish(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for w in self.workers {
            all.extend(w.await.expect("a load worker panicked"));
        }
        all
    }
}

/// Runs load against the server at `base` (`http://host:port/`): a while
/// with a working store, then `break_store`, at least `outage` of load on
/// the broken store (and until readiness fails), then `repair`, load until
/// readiness is back and 2 s more. Then every acknowledged task is read
/// back. `break_store` and `repair` may block (they run in place).
pub async fn under_load(
    base: &str,
    outage: Duration,
    break_store: impl FnOnce(),
    repair: impl FnOnce(),
) -> Report {
    let client = Client::new(base);
    let first = match send_task(&client, 0).await {
        Outcome::Stored(id) => id,
        other => panic!("the server does not store tasks: {other:?}"),
    };
    assert!(
        readiness_turns(base, 200, Duration::from_secs(10))
            .await
            .is_some(),
        "the server is not ready before the fault"
    );
    let load = Load::start(base, 4, 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut report = Report::default();
    load.enter(Phase::Outage);
    let broken = Instant::now();
    tokio::task::block_in_place(break_store);
    if let Some((_, body)) = readiness_turns(base, 503, Duration::from_secs(15)).await {
        report.to_503 = Some(broken.elapsed());
        let database = &body["checks"]["database"];
        assert_eq!(database["healthy"], false, "503 for another reason: {body}");
        report.database_status = database["status"].as_str().unwrap_or("").to_string();
    }
    let read = tokio::time::timeout(CALL_TIMEOUT, client.call("GetTask", json!({"id": first})));
    report.read_in_outage = match read.await {
        Ok(Ok(r)) if is_store_error(&r) => "STORE_UNAVAILABLE".into(),
        Ok(Ok(r)) if task_state(&r) == "TASK_STATE_COMPLETED" => "the completed task".into(),
        other => {
            let other = format!("GetTask in the outage: {other:?}");
            report.others.push(other.clone());
            other
        }
    };
    tokio::time::sleep(outage.saturating_sub(broken.elapsed())).await;

    tokio::task::block_in_place(repair);
    let repaired = Instant::now();
    load.enter(Phase::Recovering);
    report.to_200 = readiness_turns(base, 200, Duration::from_secs(20))
        .await
        .map(|_| repaired.elapsed());
    load.enter(Phase::After);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut acknowledged = vec![first];
    for answer in load.finish().await {
        let i = PHASES
            .iter()
            .position(|p| *p == answer.sent_in)
            .unwrap_or(0);
        report.phases[i].add(&answer.outcome);
        if answer.stream {
            report.streams.add(&answer.outcome);
        } else {
            report.unary.add(&answer.outcome);
        }
        if matches!(answer.outcome, Outcome::StoreError) {
            let late = answer.at.checked_duration_since(repaired);
            report.last_error = report.last_error.max(late);
        }
        match answer.outcome {
            Outcome::Stored(id) => acknowledged.push(id),
            Outcome::Other(e) if report.others.len() < 5 => report.others.push(e),
            _ => {}
        }
    }
    report.acknowledged = acknowledged.len();
    for id in &acknowledged {
        let read = tokio::time::timeout(CALL_TIMEOUT, client.call("GetTask", json!({"id": id})));
        match read.await {
            Ok(Ok(r)) if task_state(&r) == "TASK_STATE_COMPLETED" => {}
            other => {
                report.lost += 1;
                eprintln!("acknowledged task {id} lost: {other:?}");
            }
        }
    }
    report
}
