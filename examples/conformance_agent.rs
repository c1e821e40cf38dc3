//! The A2A conformance (TCK) agent: a second agent on the abacus library and
//! stack that implements the TCK scenarios, chosen by messageId prefix.
//! It doubles as the smallest complete example of writing your own agent.
//!
//! ```text
//! A2A_PORT=9999 cargo run --release --example conformance_agent
//! ../shared/tck/run-tck.sh http://127.0.0.1:9999 must
//! ```

use abacus::agent::{new_artifact, Agent, ArtifactMode, Chunk, RequestContext, TaskUpdater};
use abacus::card::CardBuilder;
use abacus::protocol::types::{A2AError, Part, TaskState};
use clap::Parser;
use std::time::Duration;

/// How long the resubscription scenario keeps its task working.
const LONG_TASK: Duration = Duration::from_secs(4);

struct TckAgent;

#[async_trait::async_trait]
impl Agent for TckAgent {
    async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        let id = ctx.message.message_id.as_str();
        let text = |t: &str| vec![Part::text(t)];
        let file = || {
            vec![Part::raw(b"tck".to_vec())
                .with_media_type("text/plain")
                .with_filename("output.txt")]
        };
        // Longest prefixes first: several scenario prefixes share a stem.
        if id.starts_with("tck-stream-artifact-chunked") {
            up.start_work().await?;
            let first = new_artifact(text("chunk-1 "));
            let mut second = first.clone();
            second.parts = text("chunk-2");
            up.artifact_chunk(first, ArtifactMode::Append, Chunk::More)
                .await?;
            up.artifact_chunk(second, ArtifactMode::Append, Chunk::Last)
                .await?;
            up.complete(None).await
        } else if id.starts_with("test-resubscribe-message-id") {
            up.start_work().await?;
            tokio::select! {
                _ = tokio::time::sleep(LONG_TASK) => {}
                _ = ctx.cancelled() => return Ok(()),
            }
            up.complete(None).await
        } else if let Some(t) = streamed_text(id) {
            up.start_work().await?;
            up.add_artifact(text(t)).await?;
            up.complete(None).await
        } else if id.starts_with("tck-stream-artifact-file") {
            up.start_work().await?;
            up.add_artifact(file()).await?;
            up.complete(None).await
        } else if id.starts_with("tck-stream-002") {
            up.complete(None).await
        } else if id.starts_with("tck-artifact-file-url") {
            let part = Part::url("https://example.com/output.txt")
                .with_media_type("text/plain")
                .with_filename("output.txt");
            up.add_artifact(vec![part]).await?;
            up.complete(None).await
        } else if id.starts_with("tck-message-response") {
            up.reply(up.agent_message(text("Direct message response")))
                .await
        } else if id.starts_with("tck-input-required") {
            let ask = up.agent_message(text("Please provide more input"));
            up.update_status(TaskState::InputRequired, Some(ask)).await
        } else if id.starts_with("tck-complete-task") {
            up.complete(Some(up.agent_message(text("Hello from TCK"))))
                .await
        } else if id.starts_with("tck-artifact-text") {
            up.add_artifact(text("Generated text content")).await?;
            up.complete(None).await
        } else if id.starts_with("tck-artifact-file") {
            up.add_artifact(file()).await?;
            up.complete(None).await
        } else if id.starts_with("tck-artifact-data") {
            up.add_artifact(vec![Part::data(
                serde_json::json!({"key": "value", "count": 42}),
            )])
            .await?;
            up.complete(None).await
        } else if id.starts_with("tck-reject-task") {
            up.reject("rejected").await
        } else {
            let echo = format!("Unhandled messageId prefix: {id}");
            up.complete(Some(up.agent_message(text(&echo)))).await
        }
    }
}

/// The streaming scenarios that answer with one text artifact.
fn streamed_text(id: &str) -> Option<&'static str> {
    [
        ("tck-stream-artifact-text", "Streamed text content"),
        ("tck-stream-ordering-001", "Ordered output"),
        ("tck-stream-001", "Stream hello from TCK"),
        ("tck-stream-003", "Stream task lifecycle"),
    ]
    .into_iter()
    .find(|(prefix, _)| id.starts_with(prefix))
    .map(|(_, text)| text)
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: abacus::config::Config,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let card = CardBuilder::new(
        "abacus conformance agent",
        "Implements the A2A TCK scenarios on the abacus server stack",
    )
    .provider("abacus", "https://github.com/abacus-a2a/abacus")
    .skill(
        "tck",
        "TCK conformance",
        "Handles TCK conformance test messages",
        &["tck"],
        &[],
    )
    .build();
    abacus::Server::new(TckAgent, card)
        .config(cli.config)
        .run()
        .await
}
