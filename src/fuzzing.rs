//! The bodies of the `cargo fuzz` targets in `fuzz/`, one function per
//! target, listed in [`TARGETS`].
//!
//! They live in the library so that they can reach the crate's internals and
//! so that `cargo test` replays every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` through them: what the fuzzer once found
//! stays fixed. Compiled for tests and under `--cfg fuzzing` only.
//!
//! Each target checks a property, not only "no panic": the JSON-RPC decoder
//! names a real method or a known error; the SSE parser gives the same
//! events however its input is cut, and reads back what the server writes;
//! the math engine and the part analysers finish within their budgets (the
//! fuzzer's `-timeout` catches the rest).

use crate::http::{SseDecoder, SseEvent};
use crate::math::parts::{analyze_part, PartLimits};
use crate::math::{Budget, Limits};
use crate::protocol::types::{Message, Part, Role, StreamResponse};
use crate::protocol::{A2ARequest, A2AResponse, EventStream, JsonRpcId, Method};
use serde_json::{json, Value};
use std::time::Duration;

/// The body of one target: bytes in, a panic when a property breaks.
pub type Target = fn(&[u8]);

/// Every target: its name (the file in `fuzz/fuzz_targets/` and the corpus
/// folder) and its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("jsonrpc", jsonrpc),
    ("math", math),
    ("part_matrix", part_matrix),
    ("part_equation", part_equation),
    ("part_dataset", part_dataset),
    ("part_csv", part_csv),
    ("part_json_file", part_json_file),
    ("part_image", part_image),
    ("sse", sse),
    ("ws_message", ws_message),
    ("ws_frames", ws_frames),
];

/// The JSON-RPC envelope and every method's params decoder.
pub fn jsonrpc(data: &[u8]) {
    match crate::protocol::jsonrpc::decode_request(data) {
        Ok((_, req)) => {
            let method = req.call.method();
            assert_eq!(Method::from_name(method.name()), Some(method));
        }
        Err((_, e)) => {
            let known = crate::protocol::ERROR_KINDS
                .iter()
                .any(|k| k.code == e.code);
            assert!(known, "the decoder answered an unknown code {}", e.code);
            let wire = crate::protocol::wire_error(&e);
            assert!(serde_json::to_string(&wire).is_ok());
        }
    }
}

/// The math lexer, parser and evaluator, on a short budget.
pub fn math(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits {
        cpu_time: Duration::from_millis(50),
        ..Limits::default()
    };
    let message = Message::new(Role::User, vec![Part::text(text)]);
    let _ = crate::agent::text_cache_key(&message);
    if let Ok(query) = crate::math::parse(text, &limits) {
        let _ = query.is_cacheable();
        let budget = Budget::new(limits.cpu_time);
        if let Ok(answer) = query.evaluate(&limits, &budget, &mut |_| {}) {
            assert!(!answer.text.is_empty());
        }
    }
}

/// The input as JSON when it is JSON, else as a string.
fn json_or_text(data: &[u8]) -> Value {
    serde_json::from_slice(data).unwrap_or_else(|_| Value::String(lossy(data)))
}

fn lossy(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Analyses a part; a success must serialize as the reply will.
fn analyze(part: Part) {
    if let Ok(a) = analyze_part(&part, &PartLimits::default()) {
        assert!(!a.summary.is_empty(), "{} part without a summary", a.kind);
        assert!(serde_json::to_string(&a).is_ok());
    }
}

/// `{"matrix": …}` data parts.
pub fn part_matrix(data: &[u8]) {
    analyze(Part::data(json!({ "matrix": json_or_text(data) })));
}

/// `{"equation": …}` and `{"equations": […]}` data parts: text first.
pub fn part_equation(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let value = match mode % 3 {
        0 => json!({ "equation": lossy(rest) }),
        1 => json!({ "equation": json_or_text(rest) }),
        _ => json!({ "equations": json_or_text(rest) }),
    };
    analyze(Part::data(value));
}

/// `{"dataset": …}` data parts.
pub fn part_dataset(data: &[u8]) {
    analyze(Part::data(json!({ "dataset": json_or_text(data) })));
}

fn file(data: &[u8], media: Option<&str>, name: Option<&str>) -> Part {
    let mut part = Part::raw(data.to_vec());
    part.media_type = media.map(str::to_string);
    part.filename = name.map(str::to_string);
    part
}

/// CSV and TSV files.
pub fn part_csv(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (media, name) = match mode % 3 {
        0 => (Some("text/csv"), None),
        1 => (Some("text/tab-separated-values"), None),
        _ => (None, Some("data.csv")),
    };
    analyze(file(rest, media, name));
}

/// JSON files.
pub fn part_json_file(data: &[u8]) {
    analyze(file(data, Some("application/json"), Some("data.json")));
}

/// Image headers, by media type, by extension or by magic bytes alone.
pub fn part_image(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    const MEDIA: [Option<&str>; 8] = [
        None,
        Some("image/png"),
        Some("image/jpeg"),
        Some("image/gif"),
        Some("image/svg+xml"),
        Some("image/webp"),
        Some("image/bmp"),
        Some("application/octet-stream"),
    ];
    let name = (mode & 0x80 != 0).then_some("picture.svg");
    analyze(file(rest, MEDIA[usize::from(mode & 7)], name));
}

/// Feeds `input` in the pieces `cuts` gives; stops at the first error.
fn sse_events(input: &[u8], cuts: &[usize], max: usize) -> (Vec<SseEvent>, bool, String) {
    let mut sse = SseDecoder::new().max_event_bytes(max);
    let mut events = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain([input.len()].iter()) {
        let cut = cut.clamp(at, input.len());
        if sse.feed(&input[at..cut], &mut events).is_err() {
            return (events, true, sse.last_event_id().to_string());
        }
        at = cut;
    }
    (events, false, sse.last_event_id().to_string())
}

/// The SSE parser: any cutting of the input gives the same result, and an
/// event the server writes, whatever its text, reads back unchanged.
pub fn sse(data: &[u8]) {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let max = if seed & 1 == 0 { 64 } else { 1 << 20 };
    let whole = sse_events(input, &[], max);
    let step = usize::from(seed >> 1).max(1);
    let cuts: Vec<usize> = (step..input.len()).step_by(step).collect();
    assert_eq!(sse_events(input, &cuts, max), whole);
    let bytewise: Vec<usize> = (1..input.len()).collect();
    assert_eq!(sse_events(input, &bytewise, max), whole);

    let event = StreamResponse::Message(Message::new(Role::Agent, vec![Part::text(lossy(input))]));
    let mut wire = Vec::new();
    crate::http::sse::SseEncoding::JsonRpc(JsonRpcId::Number(1))
        .write_event(&mut wire, &Ok(event.clone().into()));
    let (events, failed, _) = sse_events(&wire, &[], usize::MAX);
    assert!(!failed);
    assert_eq!(events.len(), 1);
    let read: Value = serde_json::from_str(&events[0].data).expect("the server writes JSON");
    assert_eq!(
        read["result"],
        serde_json::to_value(&event).expect("events serialize")
    );
}

/// A WebSocket text message as the server decodes it.
pub fn ws_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(req) = crate::http::ws::parse_request(text) {
        assert_eq!(req.call.method(), Method::SendStreamingMessage);
    }
}

/// Raw bytes on an upgraded socket (after the handshake), as the server's
/// message loop reads them: either as they come, or cut into masked frames
/// whose header byte comes from the input. Behind the loop, an agent that
/// echoes the text; the loop must end when the client stops sending.
pub fn ws_frames(data: &[u8]) {
    use hyper_tungstenite::tungstenite::protocol::frame::coding::OpCode;
    use hyper_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
    use hyper_tungstenite::tungstenite::protocol::Role as WsRole;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut out = Vec::new();
        for chunk in rest.split(|&b| b == 0xFF) {
            let Some((&head, payload)) = chunk.split_first() else {
                continue;
            };
            let header = FrameHeader {
                is_final: head & 0x80 != 0,
                rsv1: head & 0x40 != 0,
                rsv2: false,
                rsv3: false,
                opcode: OpCode::from(head & 0x0F),
                mask: Some([0x12, 0x34, 0x56, 0x78]),
            };
            let _ = Frame::from_payload(header, payload.to_vec().into()).format(&mut out);
        }
        out
    };
    let stack = tower::service_fn(|req: A2ARequest| async move {
        let text = match &req.call {
            crate::protocol::Call::SendStreamingMessage(r) => r
                .message
                .parts
                .iter()
                .find_map(|p| p.as_text().map(str::to_string))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let reply = StreamResponse::Message(Message::new(Role::Agent, vec![Part::text(text)]));
        let events: EventStream = Box::pin(futures_util::stream::iter([Ok(reply.into())]));
        Ok::<_, std::convert::Infallible>(A2AResponse::Stream(events))
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let config = crate::http::ws::ws_config(64 * 1024);
        let ws = hyper_tungstenite::WebSocketStream::from_raw_socket(
            server,
            WsRole::Server,
            Some(config),
        )
        .await;
        let (mut rx, mut tx) = tokio::io::split(client);
        let reader = async move {
            let mut sink = Vec::new();
            let _ = rx.read_to_end(&mut sink).await;
        };
        let writer = async move {
            let _ = tx.write_all(&bytes).await;
            let _ = tx.shutdown().await;
            // Keep the read half's peer open until the server is done.
            tx
        };
        let serve =
            crate::http::ws::serve_messages(ws, stack, crate::protocol::RequestMeta::default());
        let all = async {
            let (_, tx, ()) = tokio::join!(reader, writer, serve);
            drop(tx);
        };
        tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .expect("the message loop ends when the client stops sending");
    });
}

#[cfg(test)]
mod tests {
    use super::TARGETS;
    use std::path::Path;

    /// Replays the kept corpus and every reproducer of a past crash.
    #[test]
    fn the_fuzz_corpus_and_regressions_replay_cleanly() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut replayed = 0;
        for (name, target) in TARGETS {
            assert!(
                root.join("fuzz_targets")
                    .join(format!("{name}.rs"))
                    .is_file(),
                "fuzz/fuzz_targets/{name}.rs is missing"
            );
            for kind in ["corpus", "regressions"] {
                let Ok(dir) = std::fs::read_dir(root.join(kind).join(name)) else {
                    continue;
                };
                for entry in dir.flatten() {
                    let path = entry.path();
                    let data = std::fs::read(&path).expect("a readable corpus file");
                    let outcome = std::panic::catch_unwind(|| target(&data));
                    assert!(outcome.is_ok(), "{name}: {} fails", path.display());
                    replayed += 1;
                }
            }
        }
        assert!(replayed >= TARGETS.len(), "only {replayed} inputs replayed");
    }
}
