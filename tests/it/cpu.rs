//! CPU isolation: CPU-heavy questions run on a bounded pool; beyond its
//! workers and queue they are refused at once with -32061, while the agent
//! card and cheap arithmetic keep being answered.

use crate::common::{raw_request, send_body, TestServer};
use abacus::cpu::CpuPool;
use abacus::math::{Limits, MathAgent};
use abacus::protocol::server_error::OVERLOADED;
use abacus::stack::StackConfig;
use bytes::Bytes;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

/// A number (3 × 311 × a hard 57-digit cofactor) that takes the factorizer
/// its whole CPU-time budget.
const HARD: &str = "671998030559713968361666935769282348564453734211131263736711";

#[tokio::test]
async fn a_full_cpu_pool_sheds_at_once_and_probes_are_still_answered() {
    let limits = Limits {
        cpu_time: Duration::from_millis(1500),
        ..Limits::default()
    };
    let agent = MathAgent::new(limits).with_cpu_pool(CpuPool::new(1, 2));
    // The cache would make identical questions wait for one another.
    let stack = StackConfig {
        cache: false,
        ..StackConfig::default()
    };
    let s = TestServer::start_full(agent, MathAgent::card(), Default::default(), stack).await;
    let hard = send_body("SendMessage", &format!("prime factors {HARD}"));
    let heavy: Vec<_> = (0..8)
        .map(|_| {
            let url = s.url.clone();
            let body = hard.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let headers = [("content-type", "application/json"), ("a2a-version", "1.0")];
                let (_, _, reply) = raw_request(&url, "POST", Bytes::from(body), &headers).await;
                let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
                (reply, started.elapsed())
            })
        })
        .collect();
    // While the pool is saturated: probes, timed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut probe_max = Duration::ZERO;
    for _ in 0..10 {
        // (The test server has no health routes; the card is served by the
        // same runtime threads.)
        for path in [".well-known/agent-card.json"] {
            let started = Instant::now();
            let (status, _, _) =
                raw_request(&format!("{}{path}", s.url), "GET", Bytes::new(), &[]).await;
            probe_max = probe_max.max(started.elapsed());
            assert_eq!(status, 200, "/{path}");
        }
        let started = Instant::now();
        let (_, cheap) = s.post_json(&send_body("SendMessage", "2 + 2")).await;
        probe_max = probe_max.max(started.elapsed());
        assert_eq!(
            cheap["result"]["message"]["parts"][0]["text"], "4",
            "{cheap}"
        );
    }
    // A streamed heavy question over a full pool: the error is the stream.
    let params = abacus::client::JsonRpcClient::text_params(&format!("prime factors {HARD}"));
    let mut events = s
        .client
        .stream("SendStreamingMessage", params)
        .await
        .unwrap();
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(first["error"]["code"], OVERLOADED, "{first}");
    assert!(events.next().await.is_none());

    let (mut refused, mut computed) = (0, 0);
    let mut refused_max = Duration::ZERO;
    for h in heavy {
        let (reply, took) = h.await.unwrap();
        if reply["error"]["code"] == OVERLOADED {
            refused += 1;
            refused_max = refused_max.max(took);
        } else {
            // Ran on the pool: completed, or failed at its CPU-time budget.
            let state = crate::common::task_state(&reply);
            assert!(
                state == "TASK_STATE_COMPLETED" || state == "TASK_STATE_FAILED",
                "{reply}"
            );
            computed += 1;
        }
    }
    eprintln!(
        "cpu pool 1 worker + 2 queued: 8 heavy sent, {computed} computed, {refused} refused \
         (slowest refusal {refused_max:?}); probes' slowest answer {probe_max:?}"
    );
    assert_eq!(computed, 3, "one worker and two queued");
    assert_eq!(refused, 5);
    s.stop().await;
}
