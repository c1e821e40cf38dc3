//! Slow and idle clients against a real server over loopback: a trickling
//! body gets 408, silent and idle connections are closed, the connection
//! limit makes new clients wait, an oversized WebSocket message closes the
//! socket with 1009. Timings are only checked against generous bounds; the
//! observed figures are printed (`--nocapture`).

use crate::common::{bound_memory_config, raw_request, send_body};
use abacus::agent::{Agent, RequestContext, TaskUpdater};
use abacus::config::Config;
use abacus::protocol::types::A2AError;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Far above every configured timeout: a close later than this is a failure.
const BOUND: Duration = Duration::from_secs(10);

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n";

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(tune: impl FnOnce(&mut Config)) -> Self {
        let agent = abacus::math::MathAgent::new(abacus::math::Limits::default());
        Self::start_agent(agent, abacus::math::MathAgent::card(), tune).await
    }

    async fn start_agent(
        agent: impl Agent,
        card: abacus::protocol::types::AgentCard,
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        let (listener, mut config) = bound_memory_config().await;
        tune(&mut config);
        let addr = listener.local_addr().unwrap();
        let server = abacus::Server::new(agent, card).config(config);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server.run_on(listener, async move {
            let _ = rx.await;
        }));
        Running {
            addr,
            stop: Some(tx),
            handle,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    async fn health_status(&self) -> u16 {
        let url = format!("http://{}/health", self.addr);
        let answer = raw_request(&url, "GET", Bytes::new(), &[]);
        tokio::time::timeout(BOUND, answer).await.unwrap().0
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(BOUND, self.handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// Reads until the server closes the connection (EOF or reset); what it
/// sent and how long that took. Panics if it stays open past [`BOUND`].
async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .expect("the server kept the connection open");
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

/// Reads one HTTP/1.1 response with a `content-length` body.
async fn one_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before a full response: {got:?}");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .expect("no response");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_trickling_body_gets_408_and_others_are_served_meanwhile() {
    let s = Running::start(|c| {
        c.body_timeout_ms = 300;
        c.idle_timeout_ms = 30_000;
    })
    .await;
    let mut slow = s.connect().await;
    slow.write_all(
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
          A2A-Version: 1.0\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"",
    )
    .await
    .unwrap();
    let waiting = tokio::spawn(async move { until_closed(&mut slow).await });
    assert_eq!(s.health_status().await, 200, "served while a body trickles");
    let (reply, took) = waiting.await.unwrap();
    eprintln!("slow body: 408 and closed after {took:?}");
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("connection: close"),
        "{reply}"
    );
    assert!(
        reply.contains("request body not received within 300 ms"),
        "{reply}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let s = Running::start(|c| c.idle_timeout_ms = 300).await;
    let mut silent = s.connect().await;
    let (sent, took) = until_closed(&mut silent).await;
    eprintln!("silent connection closed after {took:?}");
    assert_eq!(sent, "");
    // The start of an HTTP/2 preface, then silence: the version is never
    // decided, the connection is closed all the same.
    let mut partial = s.connect().await;
    partial.write_all(b"PRI * HT").await.unwrap();
    let (_, took) = until_closed(&mut partial).await;
    eprintln!("half a preface: closed after {took:?}");
    s.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let s = Running::start(|c| c.idle_timeout_ms = 300).await;
    let mut conn = s.connect().await;
    for _ in 0..2 {
        conn.write_all(HEALTH).await.unwrap();
        let reply = one_response(&mut conn).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    let (rest, took) = until_closed(&mut conn).await;
    eprintln!("idle HTTP/1.1 keep-alive closed after {took:?}");
    assert_eq!(rest, "");
    s.stop().await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let s = Running::start(|c| c.idle_timeout_ms = 300).await;
    let io = hyper_util::rt::TokioIo::new(s.connect().await);
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get(format!("http://{}/health", s.addr))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    let started = Instant::now();
    let ended = tokio::time::timeout(BOUND, conn).await;
    eprintln!(
        "idle HTTP/2 connection closed after {:?}",
        started.elapsed()
    );
    assert!(ended.is_ok(), "the HTTP/2 connection stayed open");
    s.stop().await;
}

/// Works for a while before completing.
struct Slow;

#[async_trait::async_trait]
impl Agent for Slow {
    async fn execute(&self, _: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        up.start_work().await?;
        tokio::time::sleep(Duration::from_millis(900)).await;
        up.complete(None).await
    }
}

#[tokio::test]
async fn requests_and_streams_in_progress_outlive_the_idle_timeout() {
    let card = abacus::card::CardBuilder::new("slow", "takes its time").build();
    let s = Running::start_agent(Slow, card, |c| c.idle_timeout_ms = 300).await;
    let url = format!("http://{}/", s.addr);
    let headers = [("content-type", "application/json"), ("a2a-version", "1.0")];
    for method in ["SendMessage", "SendStreamingMessage"] {
        let body = Bytes::from(send_body(method, "take your time"));
        let started = Instant::now();
        let (status, _, reply) = raw_request(&url, "POST", body, &headers).await;
        let reply = String::from_utf8_lossy(&reply);
        eprintln!("{method}: answered after {:?}", started.elapsed());
        assert_eq!(status, 200);
        assert!(reply.contains("TASK_STATE_COMPLETED"), "{method}: {reply}");
    }
    s.stop().await;
}

#[tokio::test]
async fn beyond_the_connection_limit_clients_wait_their_turn() {
    let s = Running::start(|c| {
        c.max_connections = 2;
        c.idle_timeout_ms = 30_000;
    })
    .await;
    let first = s.connect().await;
    let mut second = s.connect().await;
    let mut third = s.connect().await;
    third.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "the third client was answered at the limit");
    let started = Instant::now();
    drop(first);
    let reply = one_response(&mut third).await;
    eprintln!(
        "third client answered {:?} after the first closed",
        started.elapsed()
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    second.write_all(HEALTH).await.unwrap();
    let reply = one_response(&mut second).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    s.stop().await;
}

#[tokio::test]
async fn an_oversized_websocket_message_closes_with_1009() {
    let s = Running::start(|c| c.max_body_bytes = 1024).await;
    let url = format!("ws://{}/stream", s.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::Text("x".repeat(4096).into()))
        .await
        .unwrap();
    let close = tokio::time::timeout(BOUND, async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame,
                Ok(_) => continue,
                Err(e) => panic!("no close frame: {e}"),
            }
        }
        None
    })
    .await
    .expect("the socket stayed open");
    let frame = close.expect("a close frame with a code");
    eprintln!(
        "oversized message: close {} {:?}",
        u16::from(frame.code),
        frame.reason
    );
    assert_eq!(frame.code, CloseCode::Size);
    s.stop().await;
}
