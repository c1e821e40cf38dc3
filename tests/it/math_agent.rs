//! The math agent over HTTP: exact answers, limits, cancel, and the stack
//! around it (cache, timeout, overload).

use crate::common::{eventually, rpc, send_body, task_state, texts, TestServer};
use abacus::stack::StackConfig;
use serde_json::{json, Value};

/// A 60-digit number: 3 × 311 × a 57-digit cofactor that Pollard rho does
/// not split in far longer than any test deadline, so the computation is
/// still running when we act.
const HARD: &str = "671998030559713968361666935769282348564453734211131263736711";

async fn ask(s: &TestServer, q: &str) -> Value {
    let (status, r) = s.post_json(&send_body("SendMessage", q)).await;
    assert_eq!(status, 200);
    r
}

#[tokio::test]
async fn exact_answers() {
    let s = TestServer::math().await;
    let r = ask(&s, "2^200").await;
    assert_eq!(
        r["result"]["message"]["parts"][0]["text"],
        "1606938044258990275541962092341162602522202993782792835301376",
        "{r}"
    );
    let r = ask(&s, "2 + 3 * 4").await;
    assert_eq!(r["result"]["message"]["parts"][0]["text"], "14");
    let r = ask(&s, "what is 15% of 200").await;
    assert_eq!(r["result"]["message"]["parts"][0]["text"], "30");

    let r = ask(&s, "factorial 100").await;
    assert_eq!(task_state(&r), "TASK_STATE_COMPLETED", "{r}");
    let result = r["result"]["task"]["artifacts"][0]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(result.len(), 158);
    assert!(result.starts_with("93326215443944152681699238856266700490715968264381621468"));

    let r = ask(&s, "prime factors 18446744073709551557").await;
    assert_eq!(
        r["result"]["task"]["artifacts"][0]["parts"][0]["text"], "18446744073709551557",
        "{r}"
    );
    let r = ask(&s, "prime factors 600851475143").await;
    assert_eq!(
        r["result"]["task"]["artifacts"][0]["parts"][0]["text"],
        "71 × 839 × 1471 × 6857"
    );
    let r = ask(&s, "fibonacci 100").await;
    assert_eq!(
        r["result"]["task"]["artifacts"][0]["parts"][0]["text"],
        "354224848179261915075"
    );
    s.stop().await;
}

/// Equations typed as text: the same exact solver as equation data parts.
#[tokio::test]
async fn equations_in_plain_text_are_solved_exactly() {
    let s = TestServer::math().await;
    let table = [
        ("solve x^2 - 5x + 6 = 0", "x^2 - 5x + 6 = 0: x = 2 or x = 3 (discriminant 1)"),
        ("3x + 2 = 11", "3x + 2 = 11: x = 3"),
        ("solve 2y + 1 = 8 for y", "2y + 1 = 8: y = 7/2 ≈ 3.5"),
        (
            "solve x^2 - 5x + 3 = 0",
            "x^2 - 5x + 3 = 0: x = (5 ± √13)/2 ≈ 0.697224 or 4.30278 (discriminant 13, not a perfect square)",
        ),
        ("solve x + y = 3 and x - y = 1", "x + y = 3, x - y = 1: x = 2, y = 1"),
        (
            "x^2 + 1 = 0",
            "x^2 + 1 = 0: no real solution; complex roots x = ±i (discriminant -4 < 0)",
        ),
    ];
    for (question, answer) in table {
        let r = ask(&s, question).await;
        let parts = &r["result"]["message"]["parts"];
        assert_eq!(parts[0]["text"], answer, "{question}: {r}");
        assert_eq!(parts[1]["data"]["kind"], "equation", "{question}: {r}");
    }
    // Asked to solve what the solver cannot: its reason, not "I don't understand".
    let r = ask(&s, "solve x*y = 2").await;
    assert_eq!(task_state(&r), "TASK_STATE_REJECTED", "{r}");
    assert!(texts(&r).iter().any(|t| t.contains("not linear")), "{r}");
    // An `=` that is not an equation is still arithmetic's.
    let r = ask(&s, "2 + 2").await;
    assert_eq!(r["result"]["message"]["parts"][0]["text"], "4");
    s.stop().await;
}

/// The answer's text wherever the agent put it: a direct reply's first
/// part, or a task's first artifact.
fn answer_text(r: &Value) -> &str {
    let result = &r["result"];
    let text = match result.get("message") {
        Some(m) => &m["parts"][0]["text"],
        None => &result["task"]["artifacts"][0]["parts"][0]["text"],
    };
    text.as_str().unwrap_or_default()
}

/// Plain-text questions of every family the engine answers itself, with
/// their exact answers, through SendMessage.
#[tokio::test]
async fn plain_text_questions_per_family() {
    let s = TestServer::math().await;
    let table = [
        // Equations: linear, quadratic, higher degree.
        ("equation", "solve 3x + 2 = 11", "3x + 2 = 11: x = 3"),
        ("equation", "x^2 = 2", "x^2 = 2: x = ±√2 ≈ -1.41421 or 1.41421 (discriminant 8, not a perfect square)"),
        ("equation", "solve x^3 - 6x^2 + 11x - 6 = 0", "x^3 - 6x^2 + 11x - 6 = 0: x = 1, x = 2 or x = 3"),
        ("equation", "solve 2x^3 - x^2 - 2x + 1 = 0", "2x^3 - x^2 - 2x + 1 = 0: x = -1, x = 1/2 ≈ 0.5 or x = 1"),
        ("equation", "x^4 = 16", "x^4 = 16: x = -2, x = 2 or x = ±2i (two of them complex)"),
        // Systems.
        ("system", "solve x + y = 10 and x - y = 2", "x + y = 10, x - y = 2: x = 6, y = 4"),
        ("system", "solve a + b + c = 6, a - b = 0, b - c = -1", "a + b + c = 6, a - b = 0, b - c = -1: a = 5/3 ≈ 1.66667, b = 5/3 ≈ 1.66667, c = 8/3 ≈ 2.66667"),
        // Derivatives and integrals.
        ("derivative", "derivative of x^3", "3x^2"),
        ("derivative", "d/dx sin(x^2)", "2x·cos(x^2)"),
        ("derivative", "differentiate x*e^x", "x·e^x + e^x"),
        ("integral", "integrate 3x^2 + 2x", "x^3 + x^2 + C"),
        ("integral", "antiderivative of 1/x", "ln|x| + C"),
        ("integral", "integral of x^2 from 0 to 3", "9"),
        // Combinatorics and number theory.
        ("combinatorics", "100 choose 3", "161700"),
        ("combinatorics", "how many ways to arrange 6", "720"),
        ("combinatorics", "10 permute 3", "720"),
        ("number theory", "3^200 mod 13", "9"),
        ("number theory", "pow(7, 10^30, 1000000007)", "130355593"),
        ("number theory", "totient of 36", "12"),
        ("number theory", "divisors of 28", "1, 2, 4, 7, 14, 28"),
        // Number words and ordinal powers.
        ("number words", "twelve plus three", "15"),
        ("number words", "a hundred and five times two", "210"),
        ("number words", "2 to the 10th power", "1024"),
    ];
    for (family, question, want) in table {
        let r = ask(&s, question).await;
        assert_eq!(answer_text(&r), want, "{family}: {question}: {r}");
    }
    s.stop().await;
}

#[tokio::test]
async fn bad_math_ends_the_task_with_the_reason() {
    let s = TestServer::math().await;
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let cases = [
        ("fibonacci 999999999999", "TASK_STATE_REJECTED", "limit"),
        ("factorial 10000000", "TASK_STATE_REJECTED", "limit"),
        (deep.as_str(), "TASK_STATE_REJECTED", "limit"),
        ("2^999999999", "TASK_STATE_REJECTED", "limit"),
        ("1/0", "TASK_STATE_FAILED", "division by zero"),
        ("sqrt(-1)", "TASK_STATE_FAILED", "domain"),
        ("tell me a joke", "TASK_STATE_INPUT_REQUIRED", ""),
        ("2 +", "TASK_STATE_REJECTED", "parse"),
    ];
    for (q, state, why) in cases {
        let r = ask(&s, q).await;
        assert_eq!(task_state(&r), state, "{}: {r}", &q[..q.len().min(30)]);
        let reason = r["result"]["task"]["status"]["message"]["parts"][0]["text"]
            .as_str()
            .unwrap();
        assert!(
            reason.to_lowercase().contains(why),
            "{}: {reason}",
            &q[..q.len().min(30)]
        );
    }
    s.stop().await;
}

/// The value of `a2a_math_errors_total{kind}` in a Prometheus scrape.
fn math_errors(scrape: &str, kind: &str) -> Option<f64> {
    super::common::sample(scrape, "a2a_math_errors_total", "kind", kind)
}

#[tokio::test]
async fn math_errors_have_their_own_metric_with_every_kind_registered() {
    let s = TestServer::math().await;
    let prometheus = abacus::telemetry::prometheus().expect("no other recorder in this test");
    let before = prometheus.render();
    for kind in abacus::math::MathError::KINDS {
        assert!(
            math_errors(&before, kind).is_some(),
            "{kind} not registered"
        );
    }
    let r = ask(&s, "1/0").await;
    assert_eq!(task_state(&r), "TASK_STATE_FAILED", "{r}");
    let after = prometheus.render();
    let counted = |scrape: &str| math_errors(scrape, "division_by_zero").unwrap_or(0.0);
    assert!(counted(&after) >= counted(&before) + 1.0, "{after}");
    // The JSON-RPC error metric keeps to JSON-RPC reasons.
    assert!(
        !after.contains("error_type=\"division_by_zero\""),
        "{after}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_question_that_is_not_math_asks_for_input_in_the_same_task() {
    let s = TestServer::math().await;
    let r = ask(&s, "hello there").await;
    assert_eq!(task_state(&r), "TASK_STATE_INPUT_REQUIRED", "{r}");
    let id = r["result"]["task"]["id"].as_str().unwrap();
    let follow = json!({"message": {"messageId": "f", "role": "ROLE_USER", "taskId": id, "parts": [{"text": "6 * 7"}]}});
    let (_, r2) = s.post_json(&rpc("SendMessage", follow)).await;
    assert_eq!(task_state(&r2), "TASK_STATE_COMPLETED", "{r2}");
    assert_eq!(
        r2["result"]["task"]["artifacts"][0]["parts"][0]["text"],
        "42"
    );
    s.stop().await;
}

#[tokio::test]
async fn cancel_stops_a_running_computation() {
    let s = TestServer::math().await;
    let body = rpc(
        "SendMessage",
        json!({"message": {"messageId": "c1", "role": "ROLE_USER", "parts": [{"text": format!("prime factors {HARD}")}]},
               "configuration": {"returnImmediately": true}}),
    );
    let (_, r) = s.post_json(&body).await;
    let id = r["result"]["task"]["id"].as_str().unwrap().to_string();
    assert_eq!(s.core.running_tasks(), 1);
    let (_, c) = s.post_json(&rpc("CancelTask", json!({"id": id}))).await;
    assert_eq!(c["result"]["status"]["state"], "TASK_STATE_CANCELED", "{c}");
    assert!(
        eventually(|| s.core.running_tasks() == 0).await,
        "the canceled computation kept running"
    );
    let (_, g) = s.post_json(&rpc("GetTask", json!({"id": id}))).await;
    assert_eq!(g["result"]["status"]["state"], "TASK_STATE_CANCELED");
    s.stop().await;
}

#[tokio::test]
async fn repeated_question_is_a_cache_hit_with_fresh_ids() {
    let s = TestServer::math().await;
    let first = ask(&s, "7 * 6").await;
    let hits_before = s.layers.cache_hits();
    let body = json!({"jsonrpc": "2.0", "id": "two", "method": "SendMessage",
        "params": {"message": {"messageId": "x", "role": "ROLE_USER", "contextId": "my-ctx", "parts": [{"text": "7  *  6"}]}}});
    let (_, second) = s.post_json(&body.to_string()).await;
    assert_eq!(s.layers.cache_hits(), hits_before + 1);
    assert_eq!(second["id"], "two");
    assert_eq!(second["result"]["message"]["parts"][0]["text"], "42");
    assert_eq!(second["result"]["message"]["contextId"], "my-ctx");
    assert_ne!(
        second["result"]["message"]["messageId"],
        first["result"]["message"]["messageId"]
    );
    // non-deterministic questions are never cached
    let (_, random) =
        abacus::protocol::jsonrpc::decode_request(send_body("SendMessage", "random 5").as_bytes())
            .unwrap();
    assert_eq!(s.core.reply_cache_key(&random), None);
    let (_, plain) =
        abacus::protocol::jsonrpc::decode_request(send_body("SendMessage", "7 * 6").as_bytes())
            .unwrap();
    assert!(s.core.reply_cache_key(&plain).is_some());
    s.stop().await;
}

#[tokio::test]
async fn request_over_the_deadline_gets_the_timeout_error() {
    let s = TestServer::math().await;
    let (status, r) = s
        .post_raw(
            send_body("SendMessage", &format!("prime factors {HARD}")),
            &[
                ("content-type", "application/json"),
                ("a2a-version", "1.0"),
                ("x-timeout-ms", "100"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        r["error"]["code"],
        abacus::protocol::server_error::TIMEOUT,
        "{r}"
    );
    s.stop().await;
}

#[tokio::test]
async fn overload_is_refused_fast_and_clearly() {
    let cfg = StackConfig {
        concurrency_limit: 2,
        ..StackConfig::default()
    };
    let s = TestServer::math_with(cfg).await;
    let slow = || {
        let body = send_body("SendMessage", &format!("prime factors {HARD}"));
        let url = s.url.clone();
        tokio::spawn(async move {
            let c = abacus::client::JsonRpcClient::new(&url);
            let v: Value = serde_json::from_str(&body).unwrap();
            c.call("SendMessage", v["params"].clone()).await
        })
    };
    let (a, b) = (slow(), slow());
    // wait until both hold a permit
    eventually(|| s.layers.concurrency_handle().in_flight() == 2).await;
    assert_eq!(s.layers.concurrency_handle().in_flight(), 2);
    let r = ask(&s, "1 + 1").await;
    assert_eq!(
        r["error"]["code"],
        abacus::protocol::server_error::OVERLOADED,
        "{r}"
    );
    assert!(texts(&r).is_empty());
    a.abort();
    b.abort();
    s.stop().await;
}

/// A PNG header for a 3×2 image: signature and IHDR chunk (pixel data is
/// not needed to read the dimensions).
fn tiny_png() -> Vec<u8> {
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&3u32.to_be_bytes());
    png.extend_from_slice(&2u32.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&[0, 0, 0, 0]); // CRC, unchecked
    png
}

#[tokio::test]
async fn every_part_of_a_multi_part_message_gets_its_result() {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let s = TestServer::math().await;
    let csv = "name,score\na,1\nb,2\nc,6\n";
    let parts = json!([
        {"text": "2^10"},
        {"data": {"matrix": [[2, 0, 1], [1, 3, 2], [1, 1, 1]]}},
        {"data": {"dataset": [{"value": 1.0}, {"value": 2.0}, {"value": 6.0}]}},
        {"raw": b64(csv.as_bytes()), "mediaType": "text/csv", "filename": "scores.csv"},
        {"raw": b64(&tiny_png()), "mediaType": "image/png", "filename": "dot.png"},
    ]);
    let body = rpc(
        "SendMessage",
        json!({"message": {"messageId": "mp", "role": "ROLE_USER", "parts": parts}}),
    );
    let (_, r) = s.post_json(&body).await;
    let task = &r["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    let artifacts = task["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 5, "one artifact per part");
    let data = |i: usize| &artifacts[i]["parts"][1]["data"];
    assert_eq!(data(0)["result"], "1024");
    // det [[2,0,1],[1,3,2],[1,1,1]] = 2(3-2) - 0 + 1(1-3) = 0
    assert_eq!(data(1)["kind"], "matrix");
    assert_eq!(data(1)["determinant"], "0");
    assert_eq!(data(1)["rank"], 2);
    assert_eq!(data(2)["kind"], "dataset");
    assert_eq!(data(2)["count"], 3);
    assert_eq!(data(2)["numeric"]["value"]["mean"], 3.0);
    assert_eq!(data(2)["numeric"]["value"]["median"], 2.0);
    assert_eq!(data(3)["kind"], "csv");
    assert_eq!(data(3)["numeric"]["score"]["mean"], 3.0);
    assert_eq!(data(4)["kind"], "image");
    assert_eq!(data(4)["width"], 3);
    assert_eq!(data(4)["height"], 2);
    let summary = task["status"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        summary.starts_with("Multi-part message processed"),
        "{summary}"
    );
    s.stop().await;
}

/// A multi-part SendMessage; the reply's task.
async fn send_parts(s: &TestServer, parts: Value) -> Value {
    let body = rpc(
        "SendMessage",
        json!({"message": {"messageId": uuid::Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": parts}}),
    );
    let (status, r) = s.post_json(&body).await;
    assert_eq!(status, 200, "{r}");
    r["result"]["task"].clone()
}

#[tokio::test]
async fn a_part_over_a_limit_rejects_the_message() {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let s = TestServer::math().await;
    let reason = |task: &Value| {
        task["status"]["message"]["parts"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    let mut csv = String::from("n\n");
    (0..10_001).for_each(|i| csv.push_str(&format!("{i}\n")));
    let task = send_parts(
        &s,
        json!([{"text": "2 + 2"}, {"raw": b64(csv.as_bytes()), "mediaType": "text/csv", "filename": "big.csv"}]),
    )
    .await;
    assert_eq!(task["status"]["state"], "TASK_STATE_REJECTED", "{task}");
    let why = reason(&task);
    assert!(why.contains("part 2 (file big.csv)"), "{why}");
    assert!(why.contains("10001 rows; the maximum is 10000"), "{why}");
    assert!(
        task["artifacts"].as_array().is_none_or(Vec::is_empty),
        "{task}"
    );

    let big = vec![vec![1; 21]; 21];
    let task = send_parts(&s, json!([{"data": {"matrix": big}}])).await;
    assert_eq!(task["status"]["state"], "TASK_STATE_REJECTED", "{task}");
    let why = reason(&task);
    assert!(
        why.contains("part 1 (data)") && why.contains("21 rows; the maximum is 20"),
        "{why}"
    );

    let many: Vec<Value> = (0..33).map(|_| json!({"text": "1 + 1"})).collect();
    let task = send_parts(&s, Value::Array(many)).await;
    assert_eq!(task["status"]["state"], "TASK_STATE_REJECTED", "{task}");
    assert!(
        reason(&task).contains("33 parts; the maximum is 32"),
        "{task}"
    );

    let task = send_parts(
        &s,
        json!([{"text": "2 + 2"}, {"text": "factorial 1000000"}]),
    )
    .await;
    assert_eq!(task["status"]["state"], "TASK_STATE_REJECTED", "{task}");
    assert!(reason(&task).contains("part 2 (text)"), "{task}");

    // Within the limits, and a malformed part: completed, the error in its artifact.
    let max = vec![vec![1; 20]; 20];
    let task = send_parts(
        &s,
        json!([{"data": {"matrix": max}}, {"data": {"matrix": [[1, 2], [3]]}}]),
    )
    .await;
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{task}");
    assert_eq!(task["artifacts"][0]["parts"][1]["data"]["kind"], "matrix");
    assert_eq!(
        task["artifacts"][1]["parts"][1]["data"]["error_kind"],
        "invalid"
    );
    s.stop().await;
}

/// Identical task questions are not cacheable: through the default stack
/// they run side by side, not one after another in the cache's single flight.
#[tokio::test]
async fn identical_concurrent_task_questions_run_side_by_side() {
    let limits = abacus::math::Limits {
        cpu_time: std::time::Duration::from_millis(800),
        ..abacus::math::Limits::default()
    };
    let s = TestServer::start(
        abacus::math::MathAgent::new(limits),
        abacus::math::MathAgent::card(),
    )
    .await;
    let question = format!("prime factors {HARD}");
    // Not cacheable, so never coalesced in the cache's single flight.
    let (_, req) =
        abacus::protocol::jsonrpc::decode_request(send_body("SendMessage", &question).as_bytes())
            .unwrap();
    assert_eq!(s.core.reply_cache_key(&req), None);
    let replies = futures_util::future::join_all((0..3).map(|_| ask(&s, &question))).await;
    let mut ids: Vec<&str> = replies
        .iter()
        .map(|r| r["result"]["task"]["id"].as_str().unwrap_or_default())
        .collect();
    for r in &replies {
        assert_eq!(task_state(r), "TASK_STATE_FAILED", "{r}");
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each request has its own task: {ids:?}");
    assert_eq!(s.layers.cache_hits(), 0);
    s.stop().await;
}

/// A caller that asked for the task at once (`returnImmediately`) and got
/// one holds its id, so however the agent ends it (a failure, a question
/// back, a result) the task reaches that end state, and GetTask says so, on
/// every store. (An answer ready at once is the reply itself: "2 + 2" is a
/// message.) The SQLite writer once kept the snapshot queued last, the
/// SUBMITTED one of the reply, over the final state queued just before.
#[tokio::test]
async fn a_task_returned_immediately_reaches_its_end_state() {
    for kind in [
        abacus::store::StoreKind::Sqlite,
        abacus::store::StoreKind::Memory,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (url, stop, handle) = crate::common::serve_math(
            |config| {
                config.store_kind = kind;
                config.data_dir = dir.path().to_path_buf();
            },
            None,
        )
        .await;
        let client = abacus::client::JsonRpcClient::new(&url);
        for (question, end) in [
            ("2 + 2", "message"),
            ("1/0", "TASK_STATE_FAILED"),
            ("hello there", "TASK_STATE_INPUT_REQUIRED"),
            ("fibonacci 10", "TASK_STATE_COMPLETED"),
            ("fibonacci 1000000", "TASK_STATE_REJECTED"),
        ] {
            let params = json!({"message": {"messageId": format!("ri-{question}"), "role": "ROLE_USER", "parts": [{"text": question}]},
                                "configuration": {"returnImmediately": true}});
            let r = client.call("SendMessage", params).await.unwrap();
            if end == "message" {
                assert_eq!(r["result"]["message"]["parts"][0]["text"], "4", "{r}");
                continue;
            }
            let id = r["result"]["task"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{question}: {r}"))
                .to_string();
            let mut last = Value::Null;
            for _ in 0..200 {
                last = client.call("GetTask", json!({"id": id})).await.unwrap();
                if last["result"]["status"]["state"] == end {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert_eq!(
                last["result"]["status"]["state"], end,
                "{kind:?} {question}: {last}"
            );
        }
        let _ = stop.send(());
        handle.await.unwrap().unwrap();
    }
}
