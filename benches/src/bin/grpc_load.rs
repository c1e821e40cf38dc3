//! A small closed-loop load client for the gRPC binding (no packaged gRPC
//! load tool was at hand): `--concurrency` workers, each on its own HTTP/2
//! connection, send SendMessage "2 + 2" (or SendStreamingMessage, reading
//! every event, with `--stream`) back to back for `--duration` seconds.
//! Prints one tab-separated line: calls per second, p99 latency in ms,
//! errors (failed calls, and replies without the answer "4").
//!
//! ```text
//! grpc_load --url http://127.0.0.1:8002 --concurrency 64 --duration 10 [--stream]
//! ```

use a2a_pb::proto::a2a_service_client::A2aServiceClient;
use a2a_pb::proto::{part, Message, Part, Role, SendMessageRequest};
use std::time::{Duration, Instant};

struct Args {
    url: String,
    concurrency: usize,
    duration: Duration,
    stream: bool,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        url: "http://127.0.0.1:8002".into(),
        concurrency: 64,
        duration: Duration::from_secs(10),
        stream: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value()?,
            "--concurrency" => args.concurrency = value()?.parse().map_err(|e| format!("{e}"))?,
            "--duration" => {
                args.duration = Duration::from_secs(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--stream" => args.stream = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn request() -> tonic::Request<SendMessageRequest> {
    let message = Message {
        message_id: "bench".into(),
        role: Role::User as i32,
        parts: vec![Part {
            content: Some(part::Content::Text("2 + 2".into())),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut req = tonic::Request::new(SendMessageRequest {
        message: Some(message),
        ..Default::default()
    });
    req.metadata_mut().insert(
        "a2a-version",
        tonic::metadata::MetadataValue::from_static("1.0"),
    );
    req
}

/// One call; true when it succeeded with the answer in it.
async fn call(client: &mut A2aServiceClient<tonic::transport::Channel>, stream: bool) -> bool {
    if !stream {
        return match client.send_message(request()).await {
            Ok(reply) => format!("{:?}", reply.into_inner()).contains("\"4\""),
            Err(_) => false,
        };
    }
    let Ok(reply) = client.send_streaming_message(request()).await else {
        return false;
    };
    let mut events = reply.into_inner();
    let mut answered = false;
    loop {
        match events.message().await {
            Ok(Some(event)) => answered |= format!("{event:?}").contains("\"4\""),
            Ok(None) => return answered,
            Err(_) => return false,
        }
    }
}

fn main() -> Result<(), String> {
    let args = args()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let end = Instant::now() + args.duration;
        let mut workers = Vec::new();
        for _ in 0..args.concurrency {
            let channel = tonic::transport::Endpoint::from_shared(args.url.clone())
                .map_err(|e| e.to_string())?
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", args.url))?;
            let stream = args.stream;
            workers.push(tokio::spawn(async move {
                let mut client = A2aServiceClient::new(channel);
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < end {
                    let start = Instant::now();
                    if call(&mut client, stream).await {
                        latencies.push(start.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            }));
        }
        let started = Instant::now();
        let (mut latencies, mut errors) = (Vec::new(), 0);
        for w in workers {
            let (l, e) = w.await.map_err(|e| e.to_string())?;
            latencies.extend(l);
            errors += e;
        }
        let elapsed = started
            .elapsed()
            .as_secs_f64()
            .max(args.duration.as_secs_f64());
        latencies.sort();
        let p99 = latencies
            .get(latencies.len().saturating_sub(1) * 99 / 100)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        println!(
            "{:.0}\t{p99:.3}\t{errors}",
            latencies.len() as f64 / elapsed
        );
        Ok(())
    })
}
