//! The `abacus` binary: serves the math agent, and talks to A2A servers.

mod cli;

use abacus::config::{Config, MathConfig};
use abacus::math::MathAgent;
use clap::{Parser, Subcommand};
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
    /// Send a message to an A2A agent and print the answer.
    #[command(after_help = cli::EXIT_CODES)]
    Send(Box<cli::SendArgs>),
    /// Print an agent's card.
    #[command(after_help = cli::EXIT_CODES)]
    Card {
        /// Verify the card's signature with these public keys (PEM or JWKS files; repeatable or comma-separated): print the card only when one verifies
        #[arg(long, value_name = "PATH", value_delimiter = ',')]
        verify_key: Vec<std::path::PathBuf>,
        #[command(flatten)]
        client: cli::ClientArgs,
    },
    /// Get, list, cancel or follow tasks.
    #[command(subcommand, after_help = cli::EXIT_CODES)]
    Task(cli::TaskCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(Box::new(cli.serve)));
    let (log_format, workers) = match &command {
        Command::Serve(a) => (a.config.log_format.clone(), a.config.worker_threads),
        _ => ("text".to_string(), Some(1)),
    };
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
    {
        // Inside the runtime: the trace exporter's client runs on it.
        let _runtime = rt.enter();
        abacus::telemetry::init_logging(&log_format);
    }
    let result = rt.block_on(async move {
        match command {
            Command::Serve(a) => serve(a.config, a.math)
                .await
                .map(|()| cli::Exit::Ok)
                .map_err(|e| Outcome::Serve(e.to_string())),
            Command::Send(args) => {
                let json = args.client.json;
                cli::send(*args).await.map_err(|f| Outcome::Client(f, json))
            }
            Command::Card { verify_key, client } => cli::card(&client, &verify_key)
                .await
                .map_err(|f| Outcome::Client(f, client.json)),
            Command::Task(command) => {
                let json = command.json();
                cli::task(command)
                    .await
                    .map_err(|f| Outcome::Client(f, json))
            }
        }
    });
    // The spans of the last requests are still buffered.
    abacus::otel::shutdown();
    match result {
        Ok(exit) => exit.into(),
        Err(Outcome::Serve(e)) => {
            eprintln!("abacus: {e}");
            ExitCode::FAILURE
        }
        Err(Outcome::Client(f, json)) => f.report(json),
    }
}

/// How a command failed.
enum Outcome {
    /// The server could not start or stopped on an error.
    Serve(String),
    /// A client command failed; `--json` was given or not.
    Client(cli::Failure, bool),
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
    let mut llm = math.llm()?;
    llm.outbound_ca = config.outbound_ca.clone();
    let llm = abacus::llm::LlmClient::new(llm)?;
    let mut agent = MathAgent::new(math.limits())
        .with_history(history.clone())
        .with_cpu_pool(math.cpu_pool())
        .with_external(external.clone());
    if let Some(llm) = &llm {
        tracing::info!(
            provider = llm.provider(),
            model = llm.model(),
            "LLM path on"
        );
        agent = agent.with_llm(llm.clone());
    }
    let mut server = abacus::Server::new(agent, MathAgent::card())
        .extended_card(MathAgent::extended_card())
        .config(config)
        .stores(stores)
        .self_test("2 + 2", "4")
        .health_check(external.health_check());
    if let Some(llm) = &llm {
        server = server.health_check(llm.health_check());
    }
    let served = server.run().await;
    if let Err(e) = history.flush().await {
        tracing::warn!(error = %e, "query history not fully written at shutdown");
    }
    served?;
    Ok(())
}
