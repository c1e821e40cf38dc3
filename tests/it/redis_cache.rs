//! The response cache's Redis tier against a real `redis-server`: two
//! servers sharing it (a reply computed on one is a hit on the other, whose
//! agent is not called), Redis frozen, killed and started again under
//! traffic (every request answered, none slower than the request timeout,
//! hits again afterwards), and a server started while Redis is down.
//!
//! Each test runs a redis-server of its own on a free loopback port
//! (no persistence) and stops it; skipped with a notice without the
//! `redis-server` binary.

use crate::common::{eventually, free_port, send_body, TestServer};
use abacus::agent::{Agent, RequestContext, TaskUpdater};
use abacus::http::HttpOptions;
use abacus::math::{Limits, MathAgent};
use abacus::protocol::types::{A2AError, Message, Task};
use abacus::stack::StackConfig;
use abacus_layers::circuit_breaker::CircuitState;
use abacus_layers::remote_cache::RemoteCacheHandle;
use serde_json::Value;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A redis-server of the test's own on 127.0.0.1; killed on drop.
pub(crate) struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    /// `None` (the caller skips) without the binary.
    fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// A server on a free port, answering `PING`.
    pub(crate) fn start() -> Option<Redis> {
        if !Self::available() {
            return None;
        }
        let mut redis = Redis {
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
        };
        redis.restart();
        Some(redis)
    }

    /// Starts it (again) on its port, empty; waits until it answers.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pings() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pings(&self) -> bool {
        let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        conn.write_all(b"PING\r\n").is_ok()
            && conn.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Keys in database 0.
    pub(crate) fn dbsize(&self) -> Option<u64> {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
        conn.write_all(b"DBSIZE\r\n").ok()?;
        let mut reply = [0u8; 32];
        let n = conn.read(&mut reply).ok()?;
        std::str::from_utf8(&reply[..n])
            .ok()?
            .trim()
            .strip_prefix(':')?
            .parse()
            .ok()
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn pid(&self) -> String {
        self.child.as_ref().expect("running").id().to_string()
    }

    /// SIGSTOP: connections stay open, nothing answers.
    fn freeze(&self) {
        let status = Command::new("kill").args(["-STOP", &self.pid()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -STOP");
    }

    fn thaw(&self) {
        let status = Command::new("kill").args(["-CONT", &self.pid()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -CONT");
    }

    /// SIGKILL, and reaped.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The math agent, counting the messages it is asked to answer.
struct Counting {
    math: MathAgent,
    calls: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Agent for Counting {
    async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.math.execute(ctx, up).await
    }

    async fn cancel(&self, task: &Task, up: TaskUpdater) -> Result<(), A2AError> {
        self.math.cancel(task, up).await
    }

    fn cache_key(&self, message: &Message) -> Option<String> {
        self.math.cache_key(message)
    }
}

/// A math server whose cache has the Redis tier at `url` under `namespace`.
struct Replica {
    server: TestServer,
    calls: Arc<AtomicUsize>,
}

/// The request deadline of the replicas: no request may take longer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

impl Replica {
    /// Redis calls bounded by `redis_timeout_ms`.
    async fn start(url: &str, namespace: &str, redis_timeout_ms: u64) -> Replica {
        let calls = Arc::new(AtomicUsize::new(0));
        let agent = Counting {
            math: MathAgent::new(Limits::default()),
            calls: calls.clone(),
        };
        let stack = StackConfig {
            redis_url: Some(url.to_string()),
            cache_namespace: namespace.to_string(),
            redis_timeout_ms,
            request_timeout_ms: REQUEST_TIMEOUT.as_millis() as u64,
            ..StackConfig::default()
        };
        let server =
            TestServer::start_full(agent, MathAgent::card(), HttpOptions::default(), stack).await;
        Replica { server, calls }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn l2(&self) -> &RemoteCacheHandle {
        self.server
            .layers
            .remote_cache_handle()
            .expect("the Redis tier is configured")
    }

    fn breaker(&self) -> CircuitState {
        self.server
            .layers
            .remote_cache
            .breaker_handle()
            .expect("the Redis tier is configured")
            .state()
    }

    /// SendMessage `question`: the reply's message.
    async fn ask(&self, question: &str) -> Value {
        let (status, reply) = self
            .server
            .post_json(&send_body("SendMessage", question))
            .await;
        assert_eq!(status, 200, "{reply}");
        reply["result"]["message"].clone()
    }
}

fn text(message: &Value) -> &str {
    message["parts"][0]["text"].as_str().unwrap_or_default()
}

/// A namespace no other test uses.
fn namespace() -> String {
    format!("test-{}", uuid::Uuid::new_v4())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_computed_on_one_server_is_a_hit_on_another() {
    let Some(redis) = Redis::start() else {
        eprintln!("skipped: needs the redis-server binary");
        return;
    };
    let ns = namespace();
    // A generous Redis timeout: what is tested here is the sharing, on a
    // machine that may be busy.
    let a = Replica::start(&redis.url(), &ns, 1000).await;
    let b = Replica::start(&redis.url(), &ns, 1000).await;

    let on_a = a.ask("6 * 7").await;
    assert_eq!(text(&on_a), "42");
    assert_eq!(a.calls(), 1);
    assert_eq!((a.l2().hits(), a.l2().misses(), a.l2().errors()), (0, 1, 0));
    assert!(
        eventually(|| a.l2().writes() == 1).await,
        "A's reply written"
    );

    // B's agent is never asked: the reply is A's, with ids of its own.
    let on_b = b.ask("6  *  7").await;
    assert_eq!(text(&on_b), "42");
    assert_eq!(b.calls(), 0, "B's agent answered: {on_b}");
    assert_eq!((b.l2().hits(), b.l2().misses(), b.l2().errors()), (1, 0, 0));
    assert_ne!(on_b["messageId"], on_a["messageId"]);
    assert_ne!(on_b["contextId"], on_a["contextId"]);
    assert_eq!(b.l2().writes(), 0, "a hit is not written back");

    // Then B's in-process tier answers: Redis is not asked again.
    assert_eq!(text(&b.ask("6 * 7").await), "42");
    assert_eq!((b.l2().hits(), b.calls()), (1, 0));

    // A question B computed is a hit on A.
    assert_eq!(
        text(&b.ask("2^100").await),
        "1267650600228229401496703205376"
    );
    assert_eq!(b.calls(), 1);
    assert!(
        eventually(|| b.l2().writes() == 1).await,
        "B's reply written"
    );
    assert_eq!(
        text(&a.ask("2^100").await),
        "1267650600228229401496703205376"
    );
    assert_eq!((a.calls(), a.l2().hits()), (1, 1));

    // Another namespace shares nothing.
    let c = Replica::start(&redis.url(), &namespace(), 1000).await;
    assert_eq!(text(&c.ask("6 * 7").await), "42");
    assert_eq!((c.calls(), c.l2().hits(), c.l2().misses()), (1, 0, 1));

    // Questions the agent does not let the cache answer never reach Redis.
    let misses = a.l2().misses() + a.l2().errors() + a.l2().hits();
    let (status, _) = a
        .server
        .post_json(&send_body("SendMessage", "what time is it"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(a.l2().misses() + a.l2().errors() + a.l2().hits(), misses);

    for r in [a, b, c] {
        r.server.stop().await;
    }
}

/// What a phase of traffic saw.
#[derive(Debug, Default)]
struct Counts {
    sent: usize,
    answered: usize,
    errors: usize,
    /// Requests that took 40 ms or more (a Redis call waited for its
    /// timeout, or the machine was busy).
    slow: usize,
    max: Duration,
}

/// `n` new questions (`BASE + i` times 7), alternately to A and B, 8 at a
/// time; every answer checked.
async fn traffic(a: &Replica, b: &Replica, base: u64, n: u64) -> Counts {
    let mut counts = Counts::default();
    let questions: Vec<u64> = (base..base + n).collect();
    for batch in questions.chunks(8) {
        let asks = batch.iter().map(|&x| async move {
            let replica = if x % 2 == 0 { a } else { b };
            let start = Instant::now();
            let (status, reply) = replica
                .server
                .post_json(&send_body("SendMessage", &format!("{x} * 7")))
                .await;
            let took = start.elapsed();
            let right = status == 200
                && reply["result"]["message"]["parts"][0]["text"] == (x * 7).to_string().as_str();
            (right, took)
        });
        for (right, took) in futures_util::future::join_all(asks).await {
            counts.sent += 1;
            if right {
                counts.answered += 1;
            } else {
                counts.errors += 1;
            }
            if took >= Duration::from_millis(40) {
                counts.slow += 1;
            }
            counts.max = counts.max.max(took);
        }
    }
    counts
}

/// Asks A a new question until B answers it from Redis without its agent
/// (bounded); the attempts it took.
async fn until_shared(a: &Replica, b: &Replica, base: u64) -> Option<u64> {
    let start = Instant::now();
    for i in 0.. {
        if start.elapsed() > Duration::from_secs(40) {
            return None;
        }
        let question = format!("{} + 1", base + i);
        let expected = (base + i + 1).to_string();
        let writes = a.l2().writes();
        assert_eq!(text(&a.ask(&question).await), expected);
        let deadline = Instant::now() + Duration::from_millis(500);
        while a.l2().writes() == writes && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (hits, calls) = (b.l2().hits(), b.calls());
        assert_eq!(text(&b.ask(&question).await), expected);
        if b.l2().hits() == hits + 1 && b.calls() == calls {
            return Some(i + 1);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_killed_and_back_costs_no_request() {
    let Some(mut redis) = Redis::start() else {
        eprintln!("skipped: needs the redis-server binary");
        return;
    };
    let ns = namespace();
    // The default Redis timeout, 50 ms.
    let a = Replica::start(&redis.url(), &ns, 50).await;
    let b = Replica::start(&redis.url(), &ns, 50).await;
    let first = until_shared(&a, &b, 1_000).await;
    eprintln!("redis up: shared after {first:?} attempts");
    assert!(first.is_some(), "never shared");

    redis.freeze();
    let frozen = traffic(&a, &b, 10_000, 200).await;
    eprintln!("redis frozen: {frozen:?}");
    let (a_breaker, b_breaker) = (a.breaker(), b.breaker());
    redis.thaw();

    redis.kill();
    let killed = traffic(&a, &b, 20_000, 200).await;
    eprintln!("redis killed: {killed:?}");
    let errors_while_down = a.l2().errors() + b.l2().errors();

    redis.restart();
    let started = Instant::now();
    let attempts = until_shared(&a, &b, 30_000).await;
    eprintln!(
        "redis back: shared again after {attempts:?} attempts, {:?}",
        started.elapsed()
    );
    let after = traffic(&a, &b, 40_000, 40).await;
    eprintln!("redis back, traffic: {after:?}");

    for counts in [&frozen, &killed, &after] {
        assert_eq!(counts.answered, counts.sent, "{counts:?}");
        assert_eq!(counts.errors, 0, "{counts:?}");
        assert!(counts.max < REQUEST_TIMEOUT, "{counts:?}");
    }
    // The frozen Redis opened both breakers: then requests did not wait
    // for it (`slow` is reported, not asserted: a busy machine is slow too).
    assert_ne!(a_breaker, CircuitState::Closed);
    assert_ne!(b_breaker, CircuitState::Closed);
    assert!(
        errors_while_down >= 400,
        "lookups failed: {errors_while_down}"
    );
    assert!(attempts.is_some(), "Redis hits did not resume");
    assert_eq!(a.breaker(), CircuitState::Closed);
    assert_eq!(b.breaker(), CircuitState::Closed);

    a.server.stop().await;
    b.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_while_redis_is_down_serves_and_uses_it_once_up() {
    if !Redis::available() {
        eprintln!("skipped: needs the redis-server binary");
        return;
    }
    let mut redis = Redis {
        port: free_port(),
        dir: tempfile::tempdir().expect("tempdir"),
        child: None,
    };
    let ns = namespace();
    let a = Replica::start(&redis.url(), &ns, 50).await;
    let b = Replica::start(&redis.url(), &ns, 50).await;
    let down = traffic(&a, &b, 50_000, 40).await;
    eprintln!("redis not started: {down:?}");
    assert_eq!((down.answered, down.errors), (down.sent, 0), "{down:?}");
    assert!(down.max < REQUEST_TIMEOUT, "{down:?}");
    assert_eq!(a.l2().hits() + b.l2().hits(), 0);

    redis.restart();
    let attempts = until_shared(&a, &b, 60_000).await;
    eprintln!("redis started: shared after {attempts:?} attempts");
    assert!(attempts.is_some(), "the servers never used Redis");

    a.server.stop().await;
    b.server.stop().await;
}
