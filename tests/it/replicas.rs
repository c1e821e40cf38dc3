//! Several server processes sharing one PostgreSQL database act as one
//! server: a task created on one is got, listed, followed and canceled on
//! another; a subscriber that drops its stream resumes on a third with
//! `Last-Event-ID`; a reply computed on one is a cache hit on another
//! through Redis, and Redis killed under load costs no request; the tasks
//! and pending push notifications of a replica killed with SIGKILL are
//! taken over by a survivor within the lease time.
//!
//! Each replica is this test binary run again as a child process
//! ([`replica_process`]) serving [`TimedAgent`] with `abacus::Server`, so
//! SIGKILL is real. The tests need `DATABASE_URL` and skip without it.

use crate::common::{free_ports, get};
use crate::event_log::{next, rest, subscribe, Event};
use abacus::agent::{Agent, RequestContext, TaskUpdater};
use abacus::card::CardBuilder;
use abacus::protocol::types::{A2AError, Part};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Set in a child process: `<port> <replica id> <lease secs> [rerun]`.
const REPLICA_ENV: &str = "ABACUS_TEST_REPLICA";
/// Set in a child process whose cache has the Redis tier.
const REDIS_ENV: &str = "ABACUS_TEST_REDIS_URL";

/// `steps N every MS`: working, then a progress update every MS ms, then
/// completed; `ask Q`: a direct reply naming the replica that computed it
/// (cacheable); anything else: completed at once with an artifact. With
/// `rerun`, a task whose replica stopped is run again instead of failed.
struct TimedAgent {
    rerun: bool,
    id: String,
}

#[async_trait::async_trait]
impl Agent for TimedAgent {
    async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        let text = ctx.text();
        let words: Vec<&str> = text.split_whitespace().collect();
        let (n, every) = match words.as_slice() {
            ["ask", ..] => {
                let answer = format!("{text} (answered by replica {})", self.id);
                return up.reply(up.agent_message(vec![Part::text(answer)])).await;
            }
            ["steps", n, "every", ms] => (
                n.parse::<u32>().unwrap_or(1),
                ms.parse::<u64>().unwrap_or(100),
            ),
            _ => {
                up.add_artifact(vec![Part::text(format!("done: {text}"))])
                    .await?;
                return up.complete(None).await;
            }
        };
        up.start_work().await?;
        for i in 1..=n {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(every)) => {}
                _ = ctx.cancelled() => return Ok(()),
            }
            up.progress(format!("step {i}")).await?;
        }
        up.complete(None).await
    }

    fn rerun_after_failover(&self) -> bool {
        self.rerun
    }

    fn cache_key(&self, message: &abacus::protocol::types::Message) -> Option<String> {
        abacus::agent::text_cache_key(message).filter(|k| k.starts_with("ask "))
    }
}

/// Child half of the tests below: serves [`TimedAgent`] on PostgreSQL
/// (`DATABASE_URL`) until killed. Does nothing unless started by them.
#[test]
fn replica_process() {
    let Ok(spec) = std::env::var(REPLICA_ENV) else {
        return;
    };
    let mut words = spec.split_whitespace();
    let (Some(port), Some(id), Some(lease)) = (words.next(), words.next(), words.next()) else {
        panic!("{REPLICA_ENV}={spec:?}: expected `<port> <replica id> <lease secs> [rerun]`");
    };
    let agent = TimedAgent {
        rerun: words.next() == Some("rerun"),
        id: id.to_string(),
    };
    let data = tempfile::tempdir().expect("data dir");
    let mut config = abacus::config::Config {
        port: port.parse().expect("port"),
        store_kind: abacus::store::StoreKind::Postgres,
        database_url: std::env::var("DATABASE_URL").ok(),
        data_dir: data.path().to_path_buf(),
        health_disk_max: 100.0,
        ..Default::default()
    };
    // Webhook receivers of the tests listen on loopback, over http.
    config.push.push_allow = vec!["127.0.0.1/32".into()];
    config.push.push_allow_http = true;
    config.stack.redis_url = std::env::var(REDIS_ENV).ok();
    config.replica.replica_id = Some(id.to_string());
    config.replica.lease_secs = lease.parse().expect("lease secs");
    let card = CardBuilder::new("timed", "steps on a clock")
        .streaming(true)
        .build();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let served = rt.block_on(abacus::Server::new(agent, card).config(config).run());
    panic!("replica {id} stopped: {served:?}");
}

/// A replica process; killed (SIGKILL) when dropped.
pub(crate) struct Replica {
    pub(crate) id: String,
    pub(crate) url: String,
    child: Child,
}

impl Replica {
    /// Starts replica `id` on `port` over `database_url` and waits until it
    /// serves its card.
    pub(crate) async fn start(id: &str, port: u16, database_url: &str, lease_secs: u64) -> Self {
        Self::start_with(id, port, database_url, &lease_secs.to_string()).await
    }

    /// As [`Replica::start`], with `rest` after the port and id in the spec
    /// (the lease, and `rerun`).
    async fn start_with(id: &str, port: u16, database_url: &str, rest: &str) -> Self {
        Self::spawn(id, port, database_url, rest, None).await
    }

    /// As [`Replica::start`], its response cache with the Redis tier at
    /// `redis_url`.
    async fn start_cached(id: &str, port: u16, database_url: &str, redis_url: &str) -> Self {
        Self::spawn(id, port, database_url, "30", Some(redis_url)).await
    }

    async fn spawn(
        id: &str,
        port: u16,
        database_url: &str,
        rest: &str,
        redis_url: Option<&str>,
    ) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("test binary"));
        if let Some(redis) = redis_url {
            command.env(REDIS_ENV, redis);
        }
        let child = command
            .args([
                "replicas::replica_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(REPLICA_ENV, format!("{port} {id} {rest}"))
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn replica");
        let url = format!("http://127.0.0.1:{port}/");
        let replica = Replica {
            id: id.to_string(),
            url,
            child,
        };
        let card = format!("{}.well-known/agent-card.json", replica.url);
        for _ in 0..200 {
            if matches!(get(&card).await, Ok((200, _))) {
                return replica;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("replica {id} did not come up on port {port}");
    }

    /// SIGKILL, now.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A unary JSON-RPC call.
    pub(crate) async fn call(&self, method: &str, params: Value) -> Value {
        abacus::client::JsonRpcClient::new(&self.url)
            .call(method, params)
            .await
            .unwrap_or_else(|e| panic!("{method} on replica {}: {e}", self.id))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A schema of its own in the database at `DATABASE_URL`, and that URL
/// with it as the search path; dropped with the guard.
pub(crate) async fn private_database() -> Option<(String, SchemaDrop)> {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            eprintln!("DATABASE_URL not set: skipping the replica test");
            None
        })?;
    let schema = format!("replicas_{}_{}", std::process::id(), rand_suffix());
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect to DATABASE_URL");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-csearch_path%3D{schema}");
    Some((scoped, SchemaDrop { client, schema }))
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Drops the test's schema.
pub(crate) struct SchemaDrop {
    client: tokio_postgres::Client,
    schema: String,
}

impl SchemaDrop {
    /// Rows of `table` in the test's schema.
    pub(crate) async fn count(&self, table: &str) -> i64 {
        let row = self
            .client
            .query_one(
                &format!("SELECT COUNT(*) FROM {}.{table}", self.schema),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("count {table}: {e}"));
        row.get(0)
    }

    pub(crate) async fn drop_schema(self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await;
    }
}

/// A task of `text` started on `replica` with `returnImmediately`.
pub(crate) async fn start_task(replica: &Replica, message_id: &str, text: &str) -> String {
    let v = replica
        .call(
            "SendMessage",
            json!({"message": {"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": text}]},
                   "configuration": {"returnImmediately": true}}),
        )
        .await;
    v["result"]["task"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no task in {v}"))
        .to_string()
}

fn labels(events: &[Event]) -> Vec<String> {
    events.iter().map(Event::label).collect()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_tasks_streams_and_cancels() {
    let Some((url, schema)) = private_database().await else {
        return;
    };
    let [pa, pb, pc] = free_ports();
    let a = Replica::start("a", pa, &url, 30).await;
    let b = Replica::start("b", pb, &url, 30).await;
    let c = Replica::start("c", pc, &url, 30).await;

    // Created on A; got and listed on B.
    let id = start_task(&a, "r-1", "steps 8 every 150").await;
    let got = b.call("GetTask", json!({"id": id})).await;
    assert_eq!(got["result"]["id"], id.as_str(), "{got}");
    let listed = b.call("ListTasks", json!({})).await;
    let listed: Vec<&str> = listed["result"]["tasks"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(listed.contains(&id.as_str()), "{listed:?}");

    // A message for it on B: A is working on it.
    let busy = b
        .call(
            "SendMessage",
            json!({"message": {"messageId": "r-1b", "role": "ROLE_USER", "taskId": id,
                               "parts": [{"text": "more"}]}}),
        )
        .await;
    let says = busy["error"]["message"].as_str().unwrap_or("");
    assert!(says.contains("replica a"), "{busy}");

    // A witness on A, a follower on B, and one on B that drops at step 3
    // and resumes on C.
    let witness = subscribe(&a.url, &id, None).await;
    let follower = subscribe(&b.url, &id, None).await;
    let mut dropping = subscribe(&b.url, &id, None).await;
    let mut seen = vec![next(&mut dropping).await];
    while seen.last().map(Event::label).as_deref() != Some("step 3") {
        seen.push(next(&mut dropping).await);
    }
    drop(dropping);
    tokio::time::sleep(Duration::from_millis(400)).await; // steps pass meanwhile
    let last = seen.last().map(|e| e.id.clone()).unwrap_or_default();
    let resumed = rest(subscribe(&c.url, &id, Some(&last)).await).await;

    let whole = rest(witness).await;
    let on_b = rest(follower).await;
    assert_eq!(
        labels(&whole).last().map(String::as_str),
        Some("TASK_STATE_COMPLETED"),
        "{whole:?}"
    );
    // B streamed A's task in order, exactly once, to the end.
    assert_eq!(ids(&on_b), ids(&whole), "{on_b:?}");
    assert_eq!(labels(&on_b), labels(&whole));
    let consecutive: Vec<u64> = (ids(&whole)[0]..).take(whole.len()).collect();
    assert_eq!(ids(&whole), consecutive);
    // Seen before the drop + resumed on C = everything, nothing twice.
    let mut joined = ids(&seen);
    joined.extend(ids(&resumed));
    let from_first: Vec<u64> = ids(&whole)
        .into_iter()
        .skip_while(|&i| i < ids(&seen)[0])
        .collect();
    assert_eq!(joined, from_first, "seen {seen:?} resumed {resumed:?}");

    // Canceled on B while A runs it.
    let long = start_task(&a, "r-2", "steps 100 every 100").await;
    let mut on_a = subscribe(&a.url, &long, None).await;
    next(&mut on_a).await;
    let canceled = b.call("CancelTask", json!({"id": long})).await;
    assert_eq!(
        canceled["result"]["status"]["state"], "TASK_STATE_CANCELED",
        "{canceled}"
    );
    let end = rest(on_a).await;
    assert_eq!(
        end.last().map(Event::label).as_deref(),
        Some("TASK_STATE_CANCELED"),
        "{end:?}"
    );
    let got = c.call("GetTask", json!({"id": long})).await;
    assert_eq!(got["result"]["status"]["state"], "TASK_STATE_CANCELED");

    drop((a, b, c));
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_s_working_tasks_are_ended_by_a_survivor_within_the_lease() {
    let Some((url, schema)) = private_database().await else {
        return;
    };
    let lease = 2;
    let [pa, pb] = free_ports();
    let mut a = Replica::start("doomed", pa, &url, lease).await;
    let b = Replica::start("survivor", pb, &url, lease).await;
    let mut tasks = Vec::new();
    for i in 0..3 {
        tasks.push(start_task(&a, &format!("k-{i}"), "steps 1000 every 100").await);
    }
    // Followed on B, which will see the end.
    let mut follow = subscribe(&b.url, &tasks[0], None).await;
    next(&mut follow).await;
    a.kill();
    let killed = std::time::Instant::now();
    let end = rest(follow).await;
    let ended_after = killed.elapsed();
    let last = end.last().expect("an end event");
    assert!(
        last.label().contains("stopped before it finished"),
        "{end:?}"
    );
    // Within the lease plus one reaper period (half the lease) and slack
    // for a loaded machine.
    assert!(
        ended_after < Duration::from_secs(lease * 5),
        "ended {ended_after:?} after the kill"
    );
    for id in &tasks {
        // The others expire within moments of the first, and are ended by
        // the survivor's next scan.
        let got = loop {
            let got = b.call("GetTask", json!({"id": id})).await;
            if got["result"]["status"]["state"] != "TASK_STATE_WORKING"
                || killed.elapsed() > Duration::from_secs(lease * 5)
            {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            got["result"]["status"]["state"], "TASK_STATE_FAILED",
            "{got}"
        );
        let text = got["result"]["status"]["message"]["parts"][0]["text"]
            .as_str()
            .unwrap_or("");
        assert!(
            text.contains("doomed") && text.contains("survivor"),
            "{text}"
        );
    }
    drop(b);
    schema.drop_schema().await;
}

/// The reply of a direct `SendMessage` of `text` on `replica`, or the
/// error that came instead.
async fn ask(replica: &Replica, text: &str) -> Result<String, String> {
    let v = abacus::client::JsonRpcClient::new(&replica.url)
        .call(
            "SendMessage",
            json!({"message": {"messageId": uuid::Uuid::new_v4().to_string(), "role": "ROLE_USER",
                               "parts": [{"text": text}]}}),
        )
        .await
        .map_err(|e| e.to_string())?;
    v["result"]["message"]["parts"][0]["text"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| v.to_string())
}

/// Three replicas sharing PostgreSQL and one Redis: a reply computed on A
/// is a hit on C (C's agent never sees the question), and Redis killed in
/// the middle of a load run over all three costs no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_replies_through_redis_and_lose_nothing_when_it_stops() {
    use crate::redis_cache::Redis;
    let Some(mut redis) = Redis::start() else {
        eprintln!("skipped: needs the redis-server binary");
        return;
    };
    let Some((url, schema)) = private_database().await else {
        return;
    };
    let [pa, pb, pc] = free_ports();
    let a = Replica::start_cached("a", pa, &url, &redis.url()).await;
    let b = Replica::start_cached("b", pb, &url, &redis.url()).await;
    let c = Replica::start_cached("c", pc, &url, &redis.url()).await;

    let on_a = ask(&a, "ask 6 * 7").await.expect("A answers");
    assert_eq!(on_a, "ask 6 * 7 (answered by replica a)");
    // A writes its reply to Redis off the request's path.
    for _ in 0..200 {
        if redis.dbsize().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(redis.dbsize(), Some(1), "A's reply in Redis");
    let on_c = ask(&c, "ask  6 * 7").await.expect("C answers");
    assert_eq!(on_c, on_a, "C's agent answered instead of Redis");

    // A load run over the three; Redis killed a third of the way in.
    const N: usize = 300;
    let replicas = [&a, &b, &c];
    let (mut answered, mut errors) = (0, Vec::new());
    for i in 0..N {
        if i == N / 3 {
            redis.kill();
        }
        let question = format!("ask {}", i % 50);
        match ask(replicas[i % 3], &question).await {
            Ok(reply) if reply.starts_with(&format!("{question} (answered by replica ")) => {
                answered += 1
            }
            Ok(other) => errors.push(format!("{question}: {other}")),
            Err(e) => errors.push(format!("{question}: {e}")),
        }
    }
    eprintln!(
        "three replicas, Redis killed after {}: sent {N}, answered {answered}, errors {}",
        N / 3,
        errors.len(),
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(answered, N);
    drop((a, b, c));
    schema.drop_schema().await;
}

/// The push notifications a replica accepted, then could not deliver
/// before it was killed, are delivered by a survivor once the dead
/// replica's claims lapse: every one, once, each task's in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_s_pending_push_notifications_are_delivered_by_a_survivor() {
    use crate::push::{send_with_push, Answer, Receiver};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let Some((url, schema)) = private_database().await else {
        return;
    };
    // Refuses (503) until healed, then takes everything.
    let healed = Arc::new(AtomicBool::new(false));
    let open = healed.clone();
    let receiver = Receiver::start(Arc::new(move |_, _| {
        if open.load(Ordering::Relaxed) {
            Answer::ok()
        } else {
            Answer::status(503)
        }
    }))
    .await;
    let [pa, pb] = free_ports();
    let lease = 2;
    let mut a = Replica::start("a", pa, &url, lease).await;
    let b = Replica::start("b", pb, &url, lease).await;

    const TASKS: usize = 5;
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let v = a
            .call(
                "SendMessage",
                send_with_push(&format!("quick {i}"), &receiver.url(), None),
            )
            .await;
        assert_eq!(
            v["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
            "{v}"
        );
        tasks.push(
            v["result"]["task"]["id"]
                .as_str()
                .expect("task id")
                .to_string(),
        );
    }
    // Every notification was tried (and refused) by A, and waits in the
    // outbox for its next attempt.
    let accepted = schema.count("push_outbox").await;
    assert!(
        accepted >= TASKS as i64,
        "{accepted} notifications for {TASKS} tasks"
    );
    for _ in 0..100 {
        if receiver.got().len() >= accepted as usize {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(receiver.delivered().is_empty());

    a.kill();
    healed.store(true, Ordering::Relaxed);
    let killed = std::time::Instant::now();
    // A's claims lapse after the lease; B looks every lease/3.
    let got = receiver
        .wait_delivered(accepted as usize, Duration::from_secs(lease * 2 + 10))
        .await;
    let took = killed.elapsed();
    let mut event_ids: Vec<&str> = got.iter().map(|r| r.header("x-a2a-event-id")).collect();
    event_ids.sort();
    event_ids.dedup();
    eprintln!(
        "push takeover: {accepted} notifications pending on the killed replica, {} delivered by \
         the survivor ({} distinct) {:.1} s after the kill, lease {lease} s",
        got.len(),
        event_ids.len(),
        took.as_secs_f64()
    );
    assert_eq!(
        got.len(),
        accepted as usize,
        "every pending notification delivered"
    );
    assert_eq!(event_ids.len(), got.len(), "each delivered once");
    for task in &tasks {
        let kinds: Vec<String> = got
            .iter()
            .filter(|r| r.task_id() == task)
            .map(|r| r.kind())
            .collect();
        assert_eq!(
            kinds.last().map(String::as_str),
            Some("TASK_STATE_COMPLETED"),
            "{task}: {kinds:?}"
        );
    }
    for _ in 0..100 {
        if schema.count("push_outbox").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(schema.count("push_outbox").await, 0, "the outbox drains");
    drop(b);
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_allows_it_has_a_dead_replica_s_task_run_again() {
    let Some((url, schema)) = private_database().await else {
        return;
    };
    let [pa, pb] = free_ports();
    let mut a = Replica::start_with("first", pa, &url, "2 rerun").await;
    let b = Replica::start_with("second", pb, &url, "2 rerun").await;
    let id = start_task(&a, "rerun-1", "steps 4 every 300").await;
    let mut follow = subscribe(&b.url, &id, None).await;
    let mut events = vec![next(&mut follow).await];
    while events.last().map(Event::label).as_deref() != Some("step 1") {
        events.push(next(&mut follow).await);
    }
    a.kill();
    events.extend(rest(follow).await);
    let labels = labels(&events);
    assert_eq!(
        labels.last().map(String::as_str),
        Some("TASK_STATE_COMPLETED"),
        "{labels:?}"
    );
    // Run again from the start on B: its events follow A's in the log.
    let again = labels.iter().rposition(|l| l == "TASK_STATE_WORKING");
    assert!(again.is_some_and(|i| i > 1), "{labels:?}");
    let consecutive: Vec<u64> = (ids(&events)[0]..).take(events.len()).collect();
    assert_eq!(ids(&events), consecutive, "{labels:?}");
    let got = b.call("GetTask", json!({"id": id})).await;
    assert_eq!(got["result"]["status"]["state"], "TASK_STATE_COMPLETED");
    let users = got["result"]["history"]
        .as_array()
        .map(|h| h.iter().filter(|m| m["role"] == "ROLE_USER").count());
    assert_eq!(users, Some(1), "the message is run again, not added again");
    drop(b);
    schema.drop_schema().await;
}

/// nginx in front of `upstreams`, from its own prefix directory; stopped
/// when dropped. `None` (with a notice) when nginx is not installed.
struct Nginx {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(port: u16, upstreams: &[&Replica]) -> Option<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .or_else(|| {
                eprintln!("nginx not installed: skipping the load balancer test");
                None
            })?;
        let dir = tempfile::tempdir().expect("nginx prefix");
        let servers: String = upstreams
            .iter()
            .map(|r| {
                let addr = r.url.trim_start_matches("http://").trim_end_matches('/');
                format!("        server {addr} max_fails=1 fail_timeout=2s;\n")
            })
            .collect();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n    access_log off;\n\
                 client_body_temp_path {p}/body;\n    proxy_temp_path {p}/proxy;\n\
                 fastcgi_temp_path {p}/fastcgi;\n    uwsgi_temp_path {p}/uwsgi;\n    scgi_temp_path {p}/scgi;\n\
                 upstream abacus {{\n{servers}        keepalive 16;\n    }}\n\
                 server {{\n        listen 127.0.0.1:{port};\n\
                     location / {{\n            proxy_pass http://abacus;\n\
                         proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n\
                         proxy_buffering off;\n            proxy_read_timeout 60s;\n\
                         proxy_connect_timeout 1s;\n\
                         proxy_next_upstream error timeout http_502 http_503;\n\
                         proxy_next_upstream_tries 3;\n        }}\n    }}\n}}\n",
            p = dir.path().display(),
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .expect("start nginx");
        let nginx = Nginx {
            child,
            url: format!("http://127.0.0.1:{port}/"),
            _dir: dir,
        };
        let card = format!("{}.well-known/agent-card.json", nginx.url);
        for _ in 0..100 {
            if matches!(get(&card).await, Ok((200, _))) {
                return Some(nginx);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(nginx._dir.path().join("error.log")).unwrap_or_default();
        panic!("nginx did not come up on port {port}: {log}");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one request of the load run came to.
enum Outcome {
    /// A completed task (its id), acknowledged to the client.
    Completed(String),
    /// A clear failure: an HTTP error status or a JSON-RPC error.
    Failed,
}

async fn send_quick(client: &abacus::client::JsonRpcClient, n: usize) -> Outcome {
    let params = json!({"message": {"messageId": format!("lb-{n}"), "role": "ROLE_USER",
                                    "parts": [{"text": format!("quick {n}")}]}});
    let call = tokio::time::timeout(Duration::from_secs(10), client.call("SendMessage", params));
    match call.await {
        Ok(Ok(v)) if v["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED" => {
            Outcome::Completed(v["result"]["task"]["id"].as_str().unwrap_or("").to_string())
        }
        Ok(Ok(v)) => {
            assert!(
                v.get("error").is_some(),
                "neither a completed task nor an error: {v}"
            );
            Outcome::Failed
        }
        Ok(Err(_)) => Outcome::Failed, // an HTTP error status from the balancer
        Err(_) => panic!("request {n} got no answer within 10 s"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_through_nginx_survives_a_replica_killed_midway() {
    let Some((url, schema)) = private_database().await else {
        return;
    };
    let lease = 2;
    let [pa, pb, pc, plb] = free_ports();
    let mut a = Replica::start("lb-a", pa, &url, lease).await;
    let b = Replica::start("lb-b", pb, &url, lease).await;
    let c = Replica::start("lb-c", pc, &url, lease).await;
    let Some(lb) = Nginx::start(plb, &[&a, &b, &c]).await else {
        return;
    };
    // Work that will be orphaned: two long tasks on the replica to be killed.
    let orphans = [
        start_task(&a, "lb-long-1", "steps 1000 every 100").await,
        start_task(&a, "lb-long-2", "steps 1000 every 100").await,
    ];

    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let run_until = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut workers = Vec::new();
    for w in 0..4 {
        let client = abacus::client::JsonRpcClient::new(&lb.url);
        let sent = sent.clone();
        workers.push(tokio::spawn(async move {
            let (mut completed, mut failed, mut retried_ok) = (Vec::new(), 0usize, 0usize);
            while tokio::time::Instant::now() < run_until {
                let n = w * 1_000_000 + sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match send_quick(&client, n).await {
                    Outcome::Completed(id) => completed.push(id),
                    Outcome::Failed => {
                        failed += 1;
                        // The retry a client makes goes through the balancer
                        // to a live replica.
                        if let Outcome::Completed(id) = send_quick(&client, n + 500_000).await {
                            retried_ok += 1;
                            completed.push(id);
                        }
                    }
                }
            }
            (completed, failed, retried_ok)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill();
    let (mut completed, mut failed, mut retried_ok) = (Vec::new(), 0, 0);
    for w in workers {
        let (done, f, r) = w.await.expect("worker");
        completed.extend(done);
        failed += f;
        retried_ok += r;
    }
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed) + failed;

    // Every task acknowledged as completed is still there, on any replica.
    let client = abacus::client::JsonRpcClient::new(&lb.url);
    let mut lost = 0;
    for id in &completed {
        let got = client
            .call("GetTask", json!({"id": id}))
            .await
            .expect("GetTask");
        if got["result"]["status"]["state"] != "TASK_STATE_COMPLETED" {
            lost += 1;
        }
    }
    // The dead replica's working tasks are ended by a survivor.
    let mut ended = 0;
    for id in &orphans {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(lease * 5);
        loop {
            let got = b.call("GetTask", json!({"id": id})).await;
            if got["result"]["status"]["state"] == "TASK_STATE_FAILED" {
                ended += 1;
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "orphan {id} still {got}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!(
        "replica run: sent {sent}, ok {}, failed cleanly {failed} (retried ok {retried_ok}), \
         lost {lost}, orphaned tasks ended {ended}/{}",
        completed.len(),
        orphans.len()
    );
    assert_eq!(lost, 0);
    assert_eq!(ended, orphans.len());
    assert!(
        completed.len() > 100,
        "the run completed only {} tasks",
        completed.len()
    );
    assert_eq!(
        retried_ok, failed,
        "every failed request succeeded on its retry"
    );
    drop((lb, b, c));
    schema.drop_schema().await;
}
