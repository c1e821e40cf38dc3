//! The client commands of the `abacus` binary: `card`, `send`, `task …`.
//!
//! Output is for a person on a terminal and for a program otherwise:
//! `--json` prints one JSON document (JSON lines for streams), and the
//! exit code says how it went ([`Exit`]).

mod parts;
mod progress;
mod render;

use abacus::client::{Client, ClientError, ErrorClass};
use abacus::protocol::types::{
    CancelTaskRequest, GetTaskRequest, ListTasksRequest, SendMessageResponse,
    SubscribeToTaskRequest, Task, TaskState,
};
use abacus::protocol::Binding;
use futures_util::StreamExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit codes, one per outcome a script branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The task completed, or the agent replied with a message.
    Ok = 0,
    /// The task ended failed, canceled or rejected.
    TaskFailed = 1,
    /// The command line was wrong (clap's code).
    Usage = 2,
    /// The server could not be reached, did not answer in time, or the
    /// connection broke.
    Transport = 3,
    /// The server answered with an A2A error or something that is not A2A.
    Protocol = 4,
    /// The task waits for more input (`input-required`, `auth-required`):
    /// continue it with `abacus send --task ID`.
    NeedsInput = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// The exit-code table of `--help`.
pub const EXIT_CODES: &str = "\
Exit codes of the client commands:
  0  the task completed, or the agent replied with a message
  1  the task failed, was canceled or rejected
  2  usage error
  3  transport error: the server could not be reached, timed out, or the connection broke
  4  protocol error: the server answered with an A2A error, or not with A2A
  5  the task needs input (input-required, auth-required): continue it with --task ID";

/// How to reach the agent: every client command takes these.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// The agent's base URL (its card at /.well-known/agent-card.json).
    #[arg(long, env = "A2A_URL", default_value = "http://127.0.0.1:8002/")]
    pub url: String,
    /// Bindings to use, best first (jsonrpc, rest, grpc); default: the card's order.
    #[arg(long, env = "A2A_BINDING", value_delimiter = ',', value_parser = parse_binding)]
    pub binding: Vec<Binding>,
    /// API key, sent in the header the card's API-key scheme names (X-API-Key by default).
    #[arg(long, env = "A2A_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Bearer token (Authorization: Bearer …).
    #[arg(long, env = "A2A_BEARER_TOKEN", hide_env_values = true)]
    pub bearer_token: Option<String>,
    /// CA bundle (PEM) an https server is verified against instead of the system's trust store.
    #[arg(long, env = "ABACUS_OUTBOUND_CA")]
    pub outbound_ca: Option<PathBuf>,
    /// Seconds one attempt may take (a stream: until it starts).
    #[arg(long, env = "A2A_TIMEOUT_SECS", default_value_t = 60)]
    pub timeout_secs: u64,
    /// Machine-readable output: one JSON document, or JSON lines for streams.
    #[arg(long)]
    pub json: bool,
}

fn parse_binding(s: &str) -> Result<Binding, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "jsonrpc" | "json-rpc" => Ok(Binding::JsonRpc),
        "rest" | "http+json" | "http_json" => Ok(Binding::Rest),
        "grpc" => Ok(Binding::Grpc),
        other => Err(format!("unknown binding {other:?}: jsonrpc, rest or grpc")),
    }
}

impl ClientArgs {
    async fn connect(&self) -> Result<Client, ClientError> {
        let mut b = Client::builder(self.url.clone())
            .prefer(self.binding.iter().copied())
            .timeout(Duration::from_secs(self.timeout_secs.max(1)))
            .deadline(Duration::from_secs(self.timeout_secs.max(1) * 2));
        if let Some(ca) = &self.outbound_ca {
            b = b.ca_file(ca);
        }
        if let Some(k) = &self.api_key {
            b = b.api_key(k);
        }
        if let Some(t) = &self.bearer_token {
            b = b.bearer_token(t);
        }
        b.connect().await
    }
}

/// `abacus send`.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// The question, e.g. "2 + 2" (optional with --data or --file).
    pub text: Option<String>,
    /// Stream the task's events (SendStreamingMessage): live progress.
    #[arg(long)]
    pub stream: bool,
    /// A JSON file sent as a data part (repeatable).
    #[arg(long, value_name = "FILE")]
    pub data: Vec<PathBuf>,
    /// A file sent as a file part with its media type (repeatable).
    #[arg(long, value_name = "PATH")]
    pub file: Vec<PathBuf>,
    /// Continue this task (one that asked for input).
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// Send within this context.
    #[arg(long, value_name = "ID")]
    pub context: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `abacus task …`.
#[derive(clap::Subcommand, Debug)]
pub enum TaskCommand {
    /// Print a task (GetTask).
    Get {
        /// The task's id.
        id: String,
        /// How many messages of its history to include.
        #[arg(long)]
        history: Option<i32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List tasks (ListTasks), newest first, every page.
    List {
        /// Only tasks of this context.
        #[arg(long)]
        context: Option<String>,
        /// Only tasks in this state (working, completed, input-required …).
        #[arg(long)]
        status: Option<String>,
        /// At most this many tasks.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a task (CancelTask).
    Cancel {
        /// The task's id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Follow a task's events (SubscribeToTask), resuming if the connection drops.
    Subscribe {
        /// The task's id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// A failed command: its message and exit code.
pub struct Failure {
    exit: Exit,
    message: String,
    json: Option<serde_json::Value>,
}

impl Failure {
    fn client(e: &ClientError) -> Failure {
        let exit = match e.class() {
            ErrorClass::Transport => Exit::Transport,
            ErrorClass::Protocol => Exit::Protocol,
        };
        let mut json = serde_json::json!({
            "class": if exit == Exit::Transport { "transport" } else { "protocol" },
            "message": e.to_string(),
        });
        if let Some(r) = e.remote() {
            json["code"] = r.code.into();
            json["reason"] = r.reason.clone().into();
        }
        Failure {
            exit,
            message: e.to_string(),
            json: Some(serde_json::json!({ "error": json })),
        }
    }

    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            message: message.into(),
            json: None,
        }
    }

    /// Prints the failure (stderr; also stdout as JSON in `--json` mode)
    /// and returns its exit code.
    pub fn report(self, json: bool) -> ExitCode {
        if let (true, Some(v)) = (json, &self.json) {
            println!("{v}");
        }
        eprintln!("abacus: {}", self.message);
        self.exit.into()
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::client(&e)
    }
}

/// The exit code of a task's state.
fn exit_of(state: &TaskState) -> Exit {
    match state {
        TaskState::Failed | TaskState::Canceled | TaskState::Rejected => Exit::TaskFailed,
        TaskState::InputRequired | TaskState::AuthRequired => Exit::NeedsInput,
        _ => Exit::Ok,
    }
}

/// What a person reads after a task stopped short of completing.
fn state_note(task_id: &str, state: &TaskState) -> Option<String> {
    match state {
        TaskState::InputRequired | TaskState::AuthRequired => Some(format!(
            "the task asks for {} — continue it with: abacus send --task {task_id} \"…\"",
            if *state == TaskState::AuthRequired {
                "authentication"
            } else {
                "input"
            }
        )),
        TaskState::Failed | TaskState::Canceled | TaskState::Rejected => Some(format!(
            "task {task_id} ended {}",
            render::state_name(state)
        )),
        _ => None,
    }
}

/// `abacus send`.
pub async fn send(args: SendArgs) -> Result<Exit, Failure> {
    let message = parts::message(&args).map_err(Failure::usage)?;
    let client = args.client.connect().await?;
    let request = abacus::client::message_request(message);
    let json = args.client.json;
    if args.stream {
        let events = client.send_streaming_message(request).await?;
        return progress::follow(events, json).await;
    }
    let reply = client.send_message(request).await?;
    if json {
        println!("{}", serde_json::to_string(&reply).unwrap_or_default());
    }
    Ok(match reply {
        SendMessageResponse::Message(m) => {
            if !json {
                println!("{}", render::parts(&m.parts));
            }
            Exit::Ok
        }
        SendMessageResponse::Task(t) => {
            if !json {
                let answer = render::answer(&t);
                if !answer.is_empty() {
                    println!("{answer}");
                }
                if let Some(note) = state_note(&t.id, &t.status.state) {
                    eprintln!("abacus: {note}");
                }
            }
            exit_of(&t.status.state)
        }
    })
}

/// `abacus task …`.
pub async fn task(command: TaskCommand) -> Result<Exit, Failure> {
    match command {
        TaskCommand::Get {
            id,
            history,
            client,
        } => {
            let c = client.connect().await?;
            let t = c
                .get_task(GetTaskRequest {
                    id,
                    history_length: history,
                    tenant: None,
                })
                .await?;
            print_task(&t, client.json);
            Ok(Exit::Ok)
        }
        TaskCommand::List {
            context,
            status,
            limit,
            client,
        } => {
            let state = status.as_deref().map(render::parse_state).transpose();
            let status = state.map_err(Failure::usage)?;
            let c = client.connect().await?;
            let request = ListTasksRequest {
                context_id: context,
                status,
                page_size: Some(i32::try_from(limit.clamp(1, 100)).unwrap_or(100)),
                page_token: None,
                history_length: Some(0),
                status_timestamp_after: None,
                include_artifacts: Some(false),
                tenant: None,
            };
            let mut tasks = c.list_all_tasks(request).take(limit);
            let mut all = Vec::new();
            while let Some(t) = tasks.next().await {
                let t = t?;
                if !client.json {
                    println!("{}", render::task_line(&t));
                }
                all.push(t);
            }
            if client.json {
                println!("{}", serde_json::json!({ "tasks": all }));
            } else if all.is_empty() {
                eprintln!("abacus: no tasks");
            }
            Ok(Exit::Ok)
        }
        TaskCommand::Cancel { id, client } => {
            let c = client.connect().await?;
            let t = c
                .cancel_task(CancelTaskRequest {
                    id,
                    metadata: None,
                    tenant: None,
                })
                .await?;
            if client.json {
                println!("{}", serde_json::to_string(&t).unwrap_or_default());
            } else {
                println!("task {} {}", t.id, render::state_name(&t.status.state));
            }
            Ok(Exit::Ok)
        }
        TaskCommand::Subscribe { id, client } => {
            let c = client.connect().await?;
            let events = c
                .subscribe_to_task(SubscribeToTaskRequest { id, tenant: None })
                .await?;
            progress::follow(events, client.json).await
        }
    }
}

fn print_task(t: &Task, json: bool) {
    if json {
        println!("{}", serde_json::to_string(t).unwrap_or_default());
        return;
    }
    println!("{}", render::task_detail(t));
}

/// `abacus card`: a summary, or the raw JSON; with `--verify-key`, only
/// a card whose signature verifies.
pub async fn card(client: &ClientArgs, verify_keys: &[PathBuf]) -> Result<Exit, Failure> {
    use abacus::card::sign::{verify, VerifyingKey};
    let mut keys = Vec::new();
    for path in verify_keys {
        keys.extend(VerifyingKey::from_file(path).map_err(|e| Failure::usage(e.to_string()))?);
    }
    let base = client.url.trim_end_matches('/');
    let raw = abacus::client::JsonRpcClient::with_ca(&client.url, client.outbound_ca.as_deref())?;
    let url = format!("{base}/.well-known/agent-card.json");
    // The raw client has no deadline of its own: a server that accepts and
    // never answers must not hang the command.
    let after = Duration::from_secs(client.timeout_secs.max(1));
    let card = tokio::time::timeout(after, raw.get(&url))
        .await
        .map_err(|_| ClientError::Timeout { url, after })??;
    let verified = if keys.is_empty() {
        None
    } else {
        let kid = verify(&card, &keys).map_err(|e| Failure {
            exit: Exit::Protocol,
            message: format!("the agent card is not verified: {e}"),
            json: None,
        })?;
        Some(kid)
    };
    if client.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&card).unwrap_or_default()
        );
    } else {
        println!("{}", render::card(&card));
    }
    if let Some(kid) = verified {
        eprintln!("abacus: agent card signature verified (kid {kid})");
    }
    Ok(Exit::Ok)
}

impl TaskCommand {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            TaskCommand::Get { client, .. }
            | TaskCommand::List { client, .. }
            | TaskCommand::Cancel { client, .. }
            | TaskCommand::Subscribe { client, .. } => client.json,
        }
    }
}
