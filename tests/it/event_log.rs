//! The task event log on one server: SSE event ids are the events'
//! sequence numbers, and a subscriber that drops its stream and comes back
//! with `Last-Event-ID` gets exactly the events it missed, then the live
//! ones. The same over several replicas is in `replicas.rs`.

use crate::common::{rpc, TestServer};
use abacus::agent::{Agent, RequestContext, TaskUpdater};
use abacus::card::CardBuilder;
use abacus::core::Core;
use abacus::http::{SseDecoder, SseEvent};
use abacus::protocol::types::A2AError;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use http_body_util::Full;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// `steps N`: working, then N progress updates, each after a permit of
/// the gate, then completed.
pub(crate) struct GatedAgent {
    pub(crate) gate: Arc<Semaphore>,
}

#[async_trait::async_trait]
impl Agent for GatedAgent {
    async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        let n: usize = ctx
            .text()
            .strip_prefix("steps ")
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(1);
        up.start_work().await?;
        for i in 1..=n {
            tokio::select! {
                permit = self.gate.acquire() => permit.map_err(|_| A2AError::internal("gate closed"))?.forget(),
                _ = ctx.cancelled() => return Ok(()),
            }
            up.progress(format!("step {i}")).await?;
        }
        up.complete(None).await
    }
}

pub(crate) fn gated_core(gate: &Arc<Semaphore>) -> Core {
    let card = CardBuilder::new("gated", "steps behind a gate").build();
    Core::builder(GatedAgent { gate: gate.clone() }, card).build()
}

/// One SSE event: its id and its JSON-RPC `result` (or `error`).
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) body: Value,
}

impl Event {
    /// The text of a status update's message (`step 3`), the state of a
    /// status update or task otherwise.
    pub(crate) fn label(&self) -> String {
        let r = &self.body["result"];
        if let Some(text) = r["statusUpdate"]["status"]["message"]["parts"][0]["text"].as_str() {
            return text.to_string();
        }
        if let Some(s) = r["statusUpdate"]["status"]["state"].as_str() {
            return s.to_string();
        }
        if let Some(s) = r["task"]["status"]["state"].as_str() {
            return format!("task {s}");
        }
        format!("other {}", self.body)
    }
}

pub(crate) type Events = BoxStream<'static, Event>;

/// A JSON-RPC call answered with SSE, with `Last-Event-ID` if given; the
/// error reply as a single event when the answer is no stream.
pub(crate) async fn sse_call(base: &str, body: String, last_event_id: Option<&str>) -> Events {
    let mut req = http::Request::builder()
        .method("POST")
        .uri(base)
        .header("content-type", "application/json")
        .header("a2a-version", "1.0");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let resp = client.request(req).await.expect("request");
    let is_sse = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let mut body = resp.into_body();
    if !is_sse {
        let bytes = http_body_util::BodyExt::collect(body)
            .await
            .unwrap()
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        return futures_util::stream::once(async move {
            Event {
                id: String::new(),
                body,
            }
        })
        .boxed();
    }
    let mut decoder = SseDecoder::new();
    let mut ready: VecDeque<SseEvent> = VecDeque::new();
    futures_util::stream::poll_fn(move |cx| loop {
        if let Some(ev) = ready.pop_front() {
            let body: Value = serde_json::from_str(&ev.data).unwrap();
            return std::task::Poll::Ready(Some(Event { id: ev.id, body }));
        }
        match futures_util::ready!(http_body::Body::poll_frame(
            std::pin::Pin::new(&mut body),
            cx
        )) {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let mut out = Vec::new();
                    decoder.feed(&data, &mut out).unwrap();
                    ready.extend(out);
                }
            }
            Some(Err(_)) | None => return std::task::Poll::Ready(None),
        }
    })
    .boxed()
}

/// SubscribeToTask of `id`, resuming after `last` if given.
pub(crate) async fn subscribe(base: &str, id: &str, last: Option<&str>) -> Events {
    sse_call(base, rpc("SubscribeToTask", json!({"id": id})), last).await
}

/// A `steps n` task started with `returnImmediately`; its id.
pub(crate) async fn start_steps(base: &str, n: usize) -> String {
    let params = json!({"message": {"messageId": format!("m-{}", uuid_like()), "role": "ROLE_USER",
                                    "parts": [{"text": format!("steps {n}")}]},
                        "configuration": {"returnImmediately": true}});
    let client = abacus::client::JsonRpcClient::new(base);
    let v: Value = client.call("SendMessage", params).await.expect("send");
    v["result"]["task"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no task in {v}"))
        .to_string()
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The next event, within 10 s.
pub(crate) async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream ended early")
}

/// Every event to the end of the stream, within 10 s each.
pub(crate) async fn rest(mut events: Events) -> Vec<Event> {
    let mut all = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event or the end within 10 s")
    {
        all.push(ev);
    }
    all
}

fn ids(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .map(|e| {
            e.id.parse()
                .unwrap_or_else(|_| panic!("event id {:?}", e.id))
        })
        .collect()
}

#[tokio::test]
async fn sse_ids_are_the_task_events_sequence_numbers() {
    let gate = Arc::new(Semaphore::new(3));
    let s = TestServer::start_core(gated_core(&gate)).await;
    let body = rpc(
        "SendStreamingMessage",
        json!({"message": {"messageId": "ids-1", "role": "ROLE_USER", "parts": [{"text": "steps 3"}]}}),
    );
    let events = rest(sse_call(&s.url, body, None).await).await;
    let labels: Vec<String> = events.iter().map(Event::label).collect();
    assert_eq!(
        labels,
        [
            "task TASK_STATE_SUBMITTED",
            "TASK_STATE_WORKING",
            "step 1",
            "step 2",
            "step 3",
            "TASK_STATE_COMPLETED"
        ],
        "{events:?}"
    );
    // The task snapshot is "after event 0"; events count from 1.
    assert_eq!(ids(&events), [0, 1, 2, 3, 4, 5]);
    s.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_reconnects_with_last_event_id_gets_exactly_what_it_missed() {
    let gate = Arc::new(Semaphore::new(0));
    let s = TestServer::start_core(gated_core(&gate)).await;
    let id = start_steps(&s.url, 6).await;

    // A witness follows the whole task without interruption.
    let witness = subscribe(&s.url, &id, None).await;
    let mut first = subscribe(&s.url, &id, None).await;
    let snapshot = next(&mut first).await;
    assert!(snapshot.label().starts_with("task "), "{snapshot:?}");
    let mut seen = vec![snapshot];
    gate.add_permits(2);
    while seen.last().map(Event::label).as_deref() != Some("step 2") {
        seen.push(next(&mut first).await);
    }
    drop(first); // the connection drops mid-task
    let last = seen.last().map(|e| e.id.clone()).unwrap_or_default();

    gate.add_permits(2); // steps 3 and 4 happen while nobody listens here
    let mut probe = subscribe(&s.url, &id, None).await;
    loop {
        let ev = next(&mut probe).await;
        if ev.label() == "step 4"
            || ev.body["result"]["task"]["status"]["message"]["parts"][0]["text"] == "step 4"
        {
            break;
        }
    }
    drop(probe);

    let resumed = subscribe(&s.url, &id, Some(&last)).await;
    gate.add_permits(2);
    let missed = rest(resumed).await;
    let labels: Vec<String> = missed.iter().map(Event::label).collect();
    assert_eq!(
        labels,
        [
            "step 3",
            "step 4",
            "step 5",
            "step 6",
            "TASK_STATE_COMPLETED"
        ],
        "{missed:?}"
    );
    let resumed_ids = ids(&missed);
    let last: u64 = last.parse().unwrap();
    assert_eq!(resumed_ids, (last + 1..=last + 5).collect::<Vec<_>>());

    // Seen before the drop + replayed after = the witness's events.
    let whole = rest(witness).await;
    let mut joined: Vec<u64> = ids(&seen);
    joined.extend(&resumed_ids);
    assert_eq!(joined, ids(&whole));
    s.stop().await;
}

#[tokio::test]
async fn last_event_id_on_a_finished_task_replays_to_its_end() {
    let gate = Arc::new(Semaphore::new(10));
    let s = TestServer::start_core(gated_core(&gate)).await;
    let params = json!({"message": {"messageId": "fin-1", "role": "ROLE_USER", "parts": [{"text": "steps 2"}]}});
    let v: Value = s.client.call("SendMessage", params).await.unwrap();
    let id = v["result"]["task"]["id"].as_str().unwrap().to_string();
    let replay = rest(subscribe(&s.url, &id, Some("1")).await).await;
    let labels: Vec<String> = replay.iter().map(Event::label).collect();
    assert_eq!(labels, ["step 1", "step 2", "TASK_STATE_COMPLETED"]);
    assert_eq!(ids(&replay), [2, 3, 4]);
    s.stop().await;
}

#[tokio::test]
async fn a_bad_last_event_id_is_a_clear_error() {
    let gate = Arc::new(Semaphore::new(0));
    let s = TestServer::start_core(gated_core(&gate)).await;
    let id = start_steps(&s.url, 1).await;
    for (value, says) in [("abc", "sequence number"), ("99", "after the last event")] {
        let mut events = subscribe(&s.url, &id, Some(value)).await;
        let reply = next(&mut events).await;
        assert_eq!(
            reply.body["error"]["code"], -32602,
            "{value}: {:?}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{value}: {message}");
    }
    gate.add_permits(1);
    s.stop().await;
}
