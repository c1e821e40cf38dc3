//! The [`Agent`] trait that the math agent, the conformance agent and your
//! own agents implement, and the [`TaskUpdater`] they report progress with.

use crate::core::running::{Emit, Running};
use crate::protocol::types::{
    new_artifact_id, new_message_id, A2AError, Artifact, Message, Part, Role, StreamResponse, Task,
    TaskArtifactUpdateEvent, TaskState, TaskStatus, TaskStatusUpdateEvent,
};
use crate::protocol::Principal;
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// An A2A agent: turns a user message into events.
///
/// The core service calls [`Agent::execute`] for every SendMessage and
/// SendStreamingMessage. The agent reports through the [`TaskUpdater`]:
/// either one direct reply ([`TaskUpdater::reply`]) or a task lifecycle
/// (status updates and artifacts ending in a terminal or interrupted state).
/// If `execute` returns without a final state the task is marked failed;
/// if it returns an error before emitting anything, the request is answered
/// with that error and no task is created.
///
/// ```
/// use abacus::agent::{Agent, RequestContext, TaskUpdater};
/// use abacus::protocol::types::{A2AError, Part};
///
/// struct Echo;
///
/// #[async_trait::async_trait]
/// impl Agent for Echo {
///     async fn execute(&self, ctx: RequestContext, updater: TaskUpdater) -> Result<(), A2AError> {
///         let text = ctx.text();
///         updater.add_artifact(vec![Part::text(text)]).await?;
///         updater.complete(None).await
///     }
/// }
/// ```
#[async_trait]
pub trait Agent: Send + Sync + 'static {
    /// Handles one message. Long work should watch [`RequestContext::cancelled`].
    async fn execute(&self, ctx: RequestContext, updater: TaskUpdater) -> Result<(), A2AError>;

    /// Cancels a running or interrupted task. The default marks it canceled.
    async fn cancel(&self, task: &Task, updater: TaskUpdater) -> Result<(), A2AError> {
        let _ = task;
        updater.cancel(None).await
    }

    /// The response-cache key of a new message (not a task continuation),
    /// or `None` when its direct reply must not be served from the cache.
    ///
    /// The default caches nothing: most agents' answers depend on more than
    /// the message. An agent whose direct replies depend on the text alone
    /// returns [`text_cache_key`]; one with questions whose answers change
    /// (the time, random numbers) returns `None` for those. Return `None`
    /// too for messages answered with a task (never cached): identical
    /// concurrent requests with a key wait for the first one's reply.
    ///
    /// ```
    /// use abacus::agent::{text_cache_key, Agent, RequestContext, TaskUpdater};
    /// use abacus::protocol::types::{A2AError, Message, Part};
    ///
    /// struct Upper;
    /// #[async_trait::async_trait]
    /// impl Agent for Upper {
    ///     async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
    ///         up.reply(up.agent_message(vec![Part::text(ctx.text().to_uppercase())])).await
    ///     }
    ///     fn cache_key(&self, message: &Message) -> Option<String> {
    ///         text_cache_key(message)
    ///     }
    /// }
    /// ```
    fn cache_key(&self, message: &Message) -> Option<String> {
        let _ = message;
        None
    }

    /// Whether a task may be run again from its last message when the
    /// replica that ran it stopped before it finished. The default, false,
    /// ends such a task `FAILED`; an agent whose work has no effects
    /// outside its own events (a computation) may say true, and the
    /// replica that finds the task runs [`Agent::execute`] again on it.
    ///
    /// ```
    /// # use abacus::agent::{Agent, RequestContext, TaskUpdater};
    /// # use abacus::protocol::types::A2AError;
    /// struct Squares;
    /// #[async_trait::async_trait]
    /// impl Agent for Squares {
    ///     async fn execute(&self, _: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
    ///         up.complete(None).await
    ///     }
    ///     fn rerun_after_failover(&self) -> bool {
    ///         true
    ///     }
    /// }
    /// assert!(Squares.rerun_after_failover());
    /// ```
    fn rerun_after_failover(&self) -> bool {
        false
    }
}

/// A cache key made of a message's text parts, lowercased, whitespace
/// collapsed; `None` when a part is not text.
///
/// ```
/// use abacus::agent::text_cache_key;
/// use abacus::protocol::types::{Message, Part, Role};
/// let a = Message::new(Role::User, vec![Part::text("2  +  2")]);
/// let b = Message::new(Role::User, vec![Part::text("2 + 2")]);
/// assert_eq!(text_cache_key(&a), text_cache_key(&b));
/// ```
pub fn text_cache_key(message: &Message) -> Option<String> {
    let mut key = String::with_capacity(32);
    for part in &message.parts {
        for word in part.as_text()?.split_whitespace() {
            if !key.is_empty() {
                key.push(' ');
            }
            // Lowercase in place: no allocation per word.
            if word.is_ascii() {
                let at = key.len();
                key.push_str(word);
                key[at..].make_ascii_lowercase();
            } else {
                key.extend(word.chars().flat_map(char::to_lowercase));
            }
        }
        key.push('\n');
    }
    Some(key)
}

/// Whether an artifact chunk starts (or replaces) an artifact or adds to it.
///
/// ```
/// use abacus::agent::ArtifactMode;
/// assert_ne!(ArtifactMode::New, ArtifactMode::Append);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactMode {
    /// The chunk is the artifact (replacing one with the same id).
    New,
    /// The chunk's parts are added to the artifact with the same id.
    Append,
}

/// Whether more chunks of an artifact follow.
///
/// ```
/// use abacus::agent::Chunk;
/// assert_ne!(Chunk::More, Chunk::Last);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// More chunks follow (or the agent does not say).
    More,
    /// The final chunk of the artifact.
    Last,
}

/// What an agent knows about the message it is handling.
///
/// ```
/// # fn show(ctx: abacus::agent::RequestContext) {
/// println!("task {} in context {}: {}", ctx.task_id, ctx.context_id, ctx.text());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The id of the task this message belongs to (new or continued).
    pub task_id: String,
    /// The conversation context.
    pub context_id: String,
    /// The user's message.
    pub message: Message,
    /// The task being continued (e.g. after input-required), if any.
    pub task: Option<Task>,
    /// True when the client asked for a stream of events.
    pub streaming: bool,
    /// Who sent the message (anonymous without authentication); the task
    /// is theirs.
    pub principal: Principal,
    pub(crate) cancel: CancellationToken,
}

impl RequestContext {
    /// All text parts of the message joined by newlines.
    pub fn text(&self) -> String {
        let mut texts = self.message.parts.iter().filter_map(Part::as_text);
        let first = texts.next().unwrap_or_default().to_string();
        texts.fold(first, |mut acc, t| {
            acc.push('\n');
            acc.push_str(t);
            acc
        })
    }

    /// True once the task was canceled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the task is canceled.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// A token that fires when the task is canceled, for handing to other tasks.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

/// The handle an agent reports progress with. Cheap to clone.
///
/// Every method returns once the event is applied to the task (and, for
/// status changes, durably stored) and delivered to subscribers. After a
/// terminal state further events fail with `UnsupportedOperation`.
#[derive(Clone)]
pub struct TaskUpdater {
    pub(crate) running: Arc<Running>,
}

impl std::fmt::Debug for TaskUpdater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskUpdater")
            .field("task_id", &self.running.task_id)
            .finish()
    }
}

impl TaskUpdater {
    /// The task id.
    pub fn task_id(&self) -> &str {
        &self.running.task_id
    }

    /// The context id.
    pub fn context_id(&self) -> &str {
        &self.running.context_id
    }

    /// A message from the agent bound to this task and context.
    pub fn agent_message(&self, parts: Vec<Part>) -> Message {
        Message {
            message_id: new_message_id(),
            context_id: Some(self.running.context_id.clone()),
            task_id: Some(self.running.task_id.clone()),
            role: Role::Agent,
            parts,
            metadata: None,
            extensions: None,
            reference_task_ids: None,
        }
    }

    /// Answers with a single message instead of a task (the whole reply).
    pub async fn reply(&self, mut message: Message) -> Result<(), A2AError> {
        message.task_id = None;
        message.context_id = Some(self.running.context_id.clone());
        message.role = Role::Agent;
        self.running.emit(Emit::Reply(message)).await
    }

    /// Sets the task's state, with an optional status message.
    pub async fn update_status(
        &self,
        state: TaskState,
        message: Option<Message>,
    ) -> Result<(), A2AError> {
        let event = TaskStatusUpdateEvent {
            task_id: self.running.task_id.clone(),
            context_id: self.running.context_id.clone(),
            status: TaskStatus {
                state,
                message,
                timestamp: Some(chrono::Utc::now()),
            },
            metadata: None,
        };
        self.running
            .emit(Emit::Event(StreamResponse::StatusUpdate(event)))
            .await
    }

    /// Moves the task to `working`.
    pub async fn start_work(&self) -> Result<(), A2AError> {
        self.update_status(TaskState::Working, None).await
    }

    /// Reports progress text while staying in `working`.
    pub async fn progress(&self, text: impl Into<String>) -> Result<(), A2AError> {
        let msg = self.agent_message(vec![Part::text(text)]);
        self.update_status(TaskState::Working, Some(msg)).await
    }

    /// Completes the task.
    pub async fn complete(&self, message: Option<Message>) -> Result<(), A2AError> {
        self.update_status(TaskState::Completed, message).await
    }

    /// Fails the task with a reason shown to the user.
    pub async fn fail(&self, reason: impl Into<String>) -> Result<(), A2AError> {
        let msg = self.agent_message(vec![Part::text(reason)]);
        self.update_status(TaskState::Failed, Some(msg)).await
    }

    /// Rejects the task with a reason shown to the user.
    pub async fn reject(&self, reason: impl Into<String>) -> Result<(), A2AError> {
        let msg = self.agent_message(vec![Part::text(reason)]);
        self.update_status(TaskState::Rejected, Some(msg)).await
    }

    /// Asks the user for more input; the task waits in `input-required`.
    pub async fn require_input(&self, message: Option<Message>) -> Result<(), A2AError> {
        self.update_status(TaskState::InputRequired, message).await
    }

    /// Marks the task canceled.
    pub async fn cancel(&self, message: Option<Message>) -> Result<(), A2AError> {
        self.update_status(TaskState::Canceled, message).await
    }

    /// Adds a new artifact made of `parts`.
    pub async fn add_artifact(&self, parts: Vec<Part>) -> Result<(), A2AError> {
        self.artifact_chunk(new_artifact(parts), ArtifactMode::New, Chunk::More)
            .await
    }

    /// Sends one chunk of an artifact.
    ///
    /// ```
    /// # async fn demo(up: abacus::agent::TaskUpdater) -> Result<(), abacus::protocol::A2AError> {
    /// use abacus::agent::{new_artifact, ArtifactMode, Chunk};
    /// use abacus::protocol::types::Part;
    /// let mut artifact = new_artifact(vec![Part::text("1, 1, 2")]);
    /// up.artifact_chunk(artifact.clone(), ArtifactMode::New, Chunk::More).await?;
    /// artifact.parts = vec![Part::text(", 3, 5")];
    /// up.artifact_chunk(artifact, ArtifactMode::Append, Chunk::Last).await
    /// # }
    /// ```
    pub async fn artifact_chunk(
        &self,
        artifact: Artifact,
        mode: ArtifactMode,
        chunk: Chunk,
    ) -> Result<(), A2AError> {
        let event = TaskArtifactUpdateEvent {
            task_id: self.running.task_id.clone(),
            context_id: self.running.context_id.clone(),
            artifact,
            append: Some(mode == ArtifactMode::Append),
            last_chunk: Some(chunk == Chunk::Last),
            metadata: None,
        };
        self.running
            .emit(Emit::Event(StreamResponse::ArtifactUpdate(event)))
            .await
    }
}

/// A new artifact with a fresh id.
///
/// ```
/// use abacus::agent::new_artifact;
/// use abacus::protocol::types::Part;
/// let a = new_artifact(vec![Part::text("4")]);
/// assert_eq!(a.parts.len(), 1);
/// ```
pub fn new_artifact(parts: Vec<Part>) -> Artifact {
    Artifact {
        artifact_id: new_artifact_id(),
        name: None,
        description: None,
        parts,
        metadata: None,
        extensions: None,
    }
}
