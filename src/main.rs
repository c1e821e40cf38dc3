//! The `abacus` binary: serves the math agent, and talks to A2A servers.

use abacus::client::JsonRpcClient as Client;
use abacus::config::{Config, MathConfig};
use abacus::math::MathAgent;
use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: with a thread per blocking task,
/// glibc's arenas kept growing under a steady load (RSS 25 → 60 MiB in a
/// 10-minute soak with a flat live heap).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "abacus",
    version,
    about = "A fast A2A v1.0 server with a math agent",
    long_about = None,
    args_conflicts_with_subcommands = true
)]
/// The command line.
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Flags of `serve`.
#[derive(clap::Args)]
#[command(about = None, long_about = None)]
struct ServeArgs {
    #[command(flatten)]
    config: Config,
    #[command(flatten)]
    math: MathConfig,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the math agent (the default).
    Serve(Box<ServeArgs>),
    /// Send a message to an A2A server and print the answer.
    Send {
        /// The question, e.g. "2 + 2".
        text: String,
        /// Stream the events (SendStreamingMessage).
        #[arg(long)]
        stream: bool,
        /// Server URL.
        #[arg(long, default_value = "http://127.0.0.1:8002/")]
        url: String,
        /// CA bundle (PEM) an https server is verified against instead of the system's trust store.
        #[arg(long, env = "ABACUS_OUTBOUND_CA")]
        outbound_ca: Option<std::path::PathBuf>,
    },
    /// Print a server's agent card.
    Card {
        /// Server URL.
        #[arg(long, default_value = "http://127.0.0.1:8002/")]
        url: String,
        /// Verify the card's signature with these public keys (PEM or JWKS files; repeatable or comma-separated): print the card only when one verifies
        #[arg(long, value_name = "PATH", value_delimiter = ',')]
        verify_key: Vec<std::path::PathBuf>,
        /// CA bundle (PEM) an https server is verified against instead of the system's trust store.
        #[arg(long, env = "ABACUS_OUTBOUND_CA")]
        outbound_ca: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(Box::new(cli.serve)));
    let (log_format, workers) = match &command {
        Command::Serve(a) => (a.config.log_format.clone(), a.config.worker_threads),
        _ => ("text".to_string(), Some(1)),
    };
    abacus::telemetry::init_logging(&log_format);
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("abacus: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match command {
            Command::Serve(a) => serve(a.config, a.math).await,
            Command::Send {
                text,
                stream,
                url,
                outbound_ca,
            } => send(&url, outbound_ca.as_deref(), &text, stream).await,
            Command::Card {
                url,
                verify_key,
                outbound_ca,
            } => card(&url, &verify_key, outbound_ca.as_deref()).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("abacus: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config, math: MathConfig) -> Result<(), Box<dyn std::error::Error>> {
    let stores = abacus::store::open(&config.store()).await?;
    // The math agent keeps its query history in the same database.
    let history = abacus::math::history::open(&stores.backend, math.history()).await?;
    let mut external = math.external();
    if let Some(ca) = &config.outbound_ca {
        // Refuse to start on an unreadable bundle rather than run without
        // the external services.
        abacus::http::tls::client_config(Some(ca))?;
        external.outbound_ca = Some(ca.clone());
    }
    let external = abacus::external::ExternalMath::new(external);
    let agent = MathAgent::new(math.limits())
        .with_history(history.clone())
        .with_cpu_pool(math.cpu_pool())
        .with_external(external.clone());
    let served = abacus::Server::new(agent, MathAgent::card())
        .extended_card(MathAgent::extended_card())
        .config(config)
        .stores(stores)
        .self_test("2 + 2", "4")
        .health_check(external.health_check())
        .run()
        .await;
    if let Err(e) = history.flush().await {
        tracing::warn!(error = %e, "query history not fully written at shutdown");
    }
    served?;
    Ok(())
}

async fn send(
    url: &str,
    ca: Option<&std::path::Path>,
    text: &str,
    stream: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::with_ca(url, ca)?;
    let params = Client::text_params(text);
    if stream {
        let mut events = client.stream("SendStreamingMessage", params).await?;
        while let Some(ev) = events.next().await {
            println!("{}", describe(&ev?));
        }
    } else {
        let reply = client.call("SendMessage", params).await?;
        println!("{}", describe(&reply));
    }
    Ok(())
}

async fn card(
    url: &str,
    verify_keys: &[std::path::PathBuf],
    ca: Option<&std::path::Path>,
) -> Result<(), Box<dyn std::error::Error>> {
    use abacus::card::sign::{verify, VerifyingKey};
    let mut keys = Vec::new();
    for path in verify_keys {
        keys.extend(VerifyingKey::from_file(path)?);
    }
    let base = url.trim_end_matches('/');
    let client = Client::with_ca(url, ca)?;
    let card = client
        .get(&format!("{base}/.well-known/agent-card.json"))
        .await?;
    let verified = if keys.is_empty() {
        None
    } else {
        let kid =
            verify(&card, &keys).map_err(|e| format!("the agent card is not verified: {e}"))?;
        Some(kid)
    };
    println!("{}", serde_json::to_string_pretty(&card)?);
    if let Some(kid) = verified {
        eprintln!("abacus: agent card signature verified (kid {kid})");
    }
    Ok(())
}

/// One line per reply: the texts it carries, or the error.
fn describe(reply: &Value) -> String {
    if let Some(err) = reply.get("error") {
        return format!(
            "error {}: {}",
            err["code"],
            err["message"].as_str().unwrap_or("")
        );
    }
    let result = reply.get("result").cloned().unwrap_or(json!(null));
    let (kind, body) = result
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap_or_default();
    let state = body["status"]["state"]
        .as_str()
        .map(|s| s.trim_start_matches("TASK_STATE_").to_lowercase());
    let texts = abacus::protocol::reply_texts(&body);
    match state {
        Some(s) => format!("[{kind} {s}] {}", texts.join(" | ")),
        None => format!("[{kind}] {}", texts.join(" | ")),
    }
}
