use super::bus::Bus;
use super::log::{LogContext, Replica};
use super::running::{store_unavailable, Origin, Phase, Running};
use super::stream::{follow, follow_log, EndAt, Start};
use crate::agent::{Agent, RequestContext, TaskUpdater};
use crate::protocol::types::{
    new_context_id, new_task_id, AgentCard, CancelTaskRequest, GetTaskRequest, ListTasksRequest,
    ListTasksResponse, Message, Role, SendMessageRequest, SubscribeToTaskRequest, Task, TaskState,
    TaskStatus,
};
use crate::protocol::types::{ListTaskPushNotificationConfigsResponse, TaskPushNotificationConfig};
use crate::protocol::{
    error_code, A2AError, A2ARequest, A2AResponse, Call, Principal, PushCall, Reply,
};
use crate::push::Pusher;
use crate::store::{
    Backplane, Claim, ListQuery, LoggedTask, MemoryTaskStore, StoreError, TaskOwner, TaskStore,
};
use dashmap::DashMap;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long CancelTask waits for the replica running the task to confirm.
const REMOTE_CANCEL_WAIT: Duration = Duration::from_secs(10);

/// Default and maximum `pageSize` of ListTasks.
const DEFAULT_PAGE_SIZE: i32 = 50;
const MAX_PAGE_SIZE: i32 = 100;

/// The core A2A service. Cheap to clone; clones share all state.
///
/// ```
/// use abacus::agent::{Agent, RequestContext, TaskUpdater};
/// use abacus::core::Core;
/// use abacus::protocol::types::A2AError;
///
/// struct Done;
/// #[async_trait::async_trait]
/// impl Agent for Done {
///     async fn execute(&self, _: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
///         up.complete(None).await
///     }
/// }
///
/// let card = abacus::card::CardBuilder::new("done", "completes everything").build();
/// let core = Core::builder(Done, card).build();
/// # let _ = core;
/// ```
#[derive(Clone)]
pub struct Core {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) agent: Arc<dyn Agent>,
    pub(super) store: Arc<dyn TaskStore>,
    card: Arc<AgentCard>,
    /// The extended agent card, as JSON, for authenticated callers.
    extended_card: Option<serde_json::Value>,
    pub(super) running: DashMap<String, Arc<Running>>,
    /// Push notifications, when enabled.
    push: Option<Pusher>,
    /// What every task's log is written with (store, bus, replica).
    pub(super) log: LogContext,
    /// Signals from and to the other replicas, when the store is shared.
    pub(super) backplane: Option<Arc<dyn Backplane>>,
    /// How long logged events are kept.
    pub(super) retention: Duration,
}

/// Builds a [`Core`].
///
/// ```
/// # use abacus::agent::{Agent, RequestContext, TaskUpdater};
/// # use abacus::protocol::types::A2AError;
/// # struct Done;
/// # #[async_trait::async_trait]
/// # impl Agent for Done {
/// #     async fn execute(&self, _: RequestContext, up: TaskUpdater) -> Result<(), A2AError> { up.complete(None).await }
/// # }
/// use std::sync::Arc;
/// let card = abacus::card::CardBuilder::new("done", "completes everything").build();
/// let core = abacus::core::Core::builder(Done, card)
///     .store(Arc::new(abacus::store::MemoryTaskStore::new()))
///     .build();
/// # let _ = core;
/// ```
pub struct CoreBuilder {
    agent: Arc<dyn Agent>,
    card: AgentCard,
    store: Option<Arc<dyn TaskStore>>,
    extended_card: Option<AgentCard>,
    push: Option<Pusher>,
    replica: Option<Replica>,
    backplane: Option<Arc<dyn Backplane>>,
    retention: Duration,
}

impl CoreBuilder {
    /// This replica's id and the length of the leases it holds on the
    /// tasks it runs (default: host name and process id, 30 s; see
    /// [`ReplicaConfig`](crate::config::ReplicaConfig)).
    pub fn replica(mut self, id: impl Into<String>, lease: Duration) -> Self {
        self.replica = Some(Replica {
            id: Arc::from(id.into()),
            lease: lease.max(Duration::from_millis(100)),
        });
        self
    }

    /// How replicas sharing the store signal each other (new events,
    /// cancels): [`Stores::backplane`](crate::store::Stores::backplane).
    /// Without one, a task is followed and canceled by this process only.
    pub fn backplane(mut self, backplane: Arc<dyn Backplane>) -> Self {
        self.backplane = Some(backplane);
        self
    }

    /// How long each task event is kept for replay (default one day).
    pub fn event_log_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The card `GetExtendedAgentCard` answers authenticated callers with
    /// (the public card must declare `capabilities.extendedAgentCard`).
    pub fn extended_card(mut self, card: AgentCard) -> Self {
        self.extended_card = Some(card);
        self
    }

    /// Where tasks are kept (default: a bounded in-memory store).
    pub fn store(mut self, store: Arc<dyn TaskStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Serves the push-notification config methods and delivers task
    /// events to the configs (without it they answer
    /// `PushNotificationNotSupported`). The card should declare
    /// `capabilities.pushNotifications`.
    pub fn push(mut self, pusher: Pusher) -> Self {
        self.push = Some(pusher);
        self
    }

    /// The service. Inside a Tokio runtime, it also starts its
    /// background work: lease renewal, ending the tasks of replicas that
    /// stopped, log retention and the backplane's signals (see
    /// [`crate::core`]); it stops when the last clone is dropped.
    pub fn build(self) -> Core {
        let store: Arc<dyn TaskStore> = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryTaskStore::new()));
        let replica = self.replica.unwrap_or_else(|| {
            let config = crate::config::ReplicaConfig::default();
            Replica {
                id: Arc::from(config.replica_id()),
                lease: config.lease(),
            }
        });
        let inner = Arc::new(Inner {
            agent: self.agent,
            log: LogContext {
                store: store.clone(),
                bus: Arc::new(Bus::default()),
                replica,
            },
            store,
            card: Arc::new(self.card),
            extended_card: self
                .extended_card
                .and_then(|c| serde_json::to_value(c).ok()),
            running: DashMap::new(),
            push: self.push,
            backplane: self.backplane,
            retention: self.retention,
        });
        super::replica::start(&inner);
        Core { inner }
    }
}

impl Core {
    /// Starts building a core service for `agent`, described by `card`
    /// (capabilities in the card decide which optional methods are served).
    pub fn builder(agent: impl Agent, card: AgentCard) -> CoreBuilder {
        CoreBuilder {
            agent: Arc::new(agent),
            card,
            store: None,
            extended_card: None,
            push: None,
            replica: None,
            backplane: None,
            retention: Duration::from_secs(crate::config::defaults::EVENT_LOG_RETENTION_SECS),
        }
    }

    /// The agent card the service was built with.
    pub fn card(&self) -> &AgentCard {
        &self.inner.card
    }

    /// The task store.
    pub fn store(&self) -> &Arc<dyn TaskStore> {
        &self.inner.store
    }

    /// Clients streaming the events of task `id` right now (0 when the task
    /// is not live). For observability and tests.
    pub fn subscribers(&self, id: &str) -> usize {
        let live = self
            .inner
            .running
            .get(id)
            .map(|r| r.subscriber_count())
            .unwrap_or(0);
        live + self.inner.log.bus.followers(id)
    }

    /// This replica's id, as its leases name it.
    pub fn replica_id(&self) -> &str {
        &self.inner.log.replica.id
    }

    /// The response-cache key of `req`, asked of the agent: only new
    /// messages (`SendMessage` that continues no task) may be cached.
    pub fn reply_cache_key(&self, req: &A2ARequest) -> Option<String> {
        let Call::SendMessage(p) = &req.call else {
            return None;
        };
        let m = &p.message;
        if m.task_id.is_some() || m.reference_task_ids.is_some() || m.parts.is_empty() {
            return None;
        }
        self.inner.agent.cache_key(m)
    }

    /// Number of tasks an agent is working on right now.
    pub fn running_tasks(&self) -> usize {
        self.inner.running.len()
    }
}

impl tower::Service<A2ARequest> for Core {
    type Response = A2AResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<A2AResponse, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: A2ARequest) -> Self::Future {
        let inner = self.inner.clone();
        async move { Ok(inner.handle(req).await) }.boxed()
    }
}

fn store_err(e: StoreError) -> A2AError {
    match e {
        StoreError::InvalidPageToken => A2AError::invalid_params("invalid pageToken"),
        StoreError::Corrupt(_) => A2AError::internal(format!("task store: {e}")),
        other => store_unavailable(&other),
    }
}

impl Inner {
    async fn handle(self: Arc<Self>, req: A2ARequest) -> A2AResponse {
        let span = tracing::Span::current();
        if !span.is_disabled() {
            span.record("a2a.method", req.call.method().name());
            span.record("a2a.binding", req.meta.binding.to_string());
        }
        // Every task the call names or lists must be this owner's; another
        // owner's task is answered as one that does not exist.
        let principal = req.meta.principal;
        let owner = TaskOwner::new(&principal, req.meta.tenant.as_deref());
        let result = match req.call {
            Call::SendMessage(p) => self.send(p, principal, owner, Delivery::Reply).await,
            Call::SendStreamingMessage(p) => {
                if self.card.capabilities.streaming != Some(true) {
                    Err(A2AError::unsupported_operation(
                        "streaming is not supported",
                    ))
                } else {
                    self.send(p, principal, owner, Delivery::Stream).await
                }
            }
            Call::GetTask(p) => self
                .get_task(p, &owner)
                .await
                .map(|t| A2AResponse::ok(Reply::Task(t))),
            Call::ListTasks(p) => self
                .list(p, owner)
                .await
                .map(|l| A2AResponse::ok(Reply::Tasks(l))),
            Call::CancelTask(p) => self
                .cancel(p, &owner)
                .await
                .map(|t| A2AResponse::ok(Reply::Task(t))),
            Call::SubscribeToTask(p) => {
                self.subscribe(p, &owner, req.meta.last_event_id.as_deref())
                    .await
            }
            Call::PushConfig(call) => self.push_config(call, &owner).await,
            Call::GetExtendedAgentCard => {
                if self.card.capabilities.extended_agent_card == Some(true) {
                    match &self.extended_card {
                        Some(card) if !principal.is_anonymous() => {
                            Ok(A2AResponse::ok(Reply::Json(card.clone())))
                        }
                        _ => Err(A2AError::extended_card_not_configured()),
                    }
                } else {
                    Err(A2AError::unsupported_operation(
                        "this agent has no extended agent card",
                    ))
                }
            }
        };
        result.unwrap_or_else(A2AResponse::error)
    }

    async fn send(
        self: Arc<Self>,
        params: SendMessageRequest,
        principal: Principal,
        owner: TaskOwner,
        delivery: Delivery,
    ) -> Result<A2AResponse, A2AError> {
        validate_message(&params.message)?;
        let config = params.configuration.as_ref();
        let history_length = config.and_then(|c| c.history_length);
        check_history_length(history_length)?;
        let return_immediately = config.and_then(|c| c.return_immediately) == Some(true);
        let push = config.and_then(|c| c.task_push_notification_config.clone());

        let (running, ctx) = self
            .begin(params.message, principal, owner, delivery, push)
            .await?;
        let updater = TaskUpdater {
            running: running.clone(),
        };
        let subscription = (delivery == Delivery::Stream).then(|| running.subscribe());
        self.clone().start(running.clone(), ctx, updater);

        if let Some(sub) = subscription {
            return Ok(A2AResponse::Stream(follow(running, sub, EndAt::Final)));
        }
        if !return_immediately {
            running.settled().await;
        }
        let mut task = {
            let st = running.lock();
            if let Some(e) = &st.failure {
                return Err(e.clone());
            }
            if let Some(reply) = &st.reply {
                return Ok(A2AResponse::ok(Reply::Message(Box::new(reply.clone()))));
            }
            st.task.clone()
        };
        if return_immediately {
            // Never answer with a task that is not stored: intermediate
            // states are saved without waiting, so wait for this one.
            running.persist().await.map_err(|e| store_unavailable(&e))?;
        }
        trim_history(&mut task, history_length);
        Ok(A2AResponse::ok(Reply::SendTask(Box::new(task))))
    }

    /// Creates the task (or reopens the one the message continues).
    async fn begin(
        &self,
        mut message: Message,
        principal: Principal,
        owner: TaskOwner,
        delivery: Delivery,
        push: Option<TaskPushNotificationConfig>,
    ) -> Result<(Arc<Running>, RequestContext), A2AError> {
        let (running, existing) = match message.task_id.clone() {
            Some(task_id) => {
                let running = match self.reopen(&task_id, &owner).await? {
                    Reopened::Here(running) => running,
                    Reopened::Elsewhere(logged) => return Err(busy_elsewhere(&logged)),
                };
                let previous = running.snapshot();
                if previous.status.state.is_terminal() {
                    return Err(A2AError::unsupported_operation(format!(
                        "task {task_id} is in a terminal state and accepts no more messages"
                    )));
                }
                if message
                    .context_id
                    .as_ref()
                    .is_some_and(|c| c != &previous.context_id)
                {
                    self.abandon(&running);
                    return Err(A2AError::invalid_params(format!(
                        "message.contextId does not match the context of task {task_id}"
                    )));
                }
                message.context_id = Some(previous.context_id.clone());
                if let Some(config) = push {
                    // Registered before the execution starts: its first
                    // event is delivered too.
                    let config = match self.register_push(&owner, &task_id, config).await {
                        Ok(config) => config,
                        Err(e) => {
                            self.abandon(&running);
                            return Err(e);
                        }
                    };
                    running.set_push_config(config);
                }
                if !running.begin_execution(message.clone()) {
                    return Err(A2AError::unsupported_operation(format!(
                        "task {task_id} is still being worked on; wait for it to ask for input"
                    )));
                }
                (running, Some(previous))
            }
            None => {
                let context_id = message.context_id.clone().unwrap_or_else(new_context_id);
                let task_id = new_task_id();
                // Checked now, stored with the task's first event: a direct
                // reply makes no task, and leaves no config behind.
                let push = match push {
                    Some(config) => Some(self.check_push(&task_id, config).await?),
                    None => None,
                };
                message.context_id = Some(context_id.clone());
                message.task_id = Some(task_id.clone());
                let task = Task {
                    id: task_id,
                    context_id,
                    status: TaskStatus {
                        state: TaskState::Submitted,
                        message: None,
                        timestamp: Some(chrono::Utc::now()),
                    },
                    artifacts: None,
                    history: Some(vec![message.clone()]),
                    metadata: None,
                };
                let running = Running::new(
                    task,
                    owner,
                    Phase::Started(Origin::New),
                    0,
                    &self.log,
                    self.push.clone(),
                );
                if let Some(config) = push {
                    running.set_unsaved_push_config(config);
                }
                self.running
                    .insert(running.task_id.clone(), running.clone());
                (running, None)
            }
        };
        let ctx = RequestContext {
            task_id: running.task_id.clone(),
            context_id: running.context_id.clone(),
            message,
            task: existing,
            streaming: delivery == Delivery::Stream,
            principal,
            cancel: running.cancel.clone(),
        };
        Ok((running, ctx))
    }

    /// The live handle of an existing task, registering one for a stored
    /// task nobody is working on, whose lease this replica takes (so
    /// messages and cancels meet there); or the task as stored, when
    /// another replica holds its lease.
    pub(super) async fn reopen(
        &self,
        task_id: &str,
        owner: &TaskOwner,
    ) -> Result<Reopened, A2AError> {
        if let Some(r) = self.live(task_id, owner)? {
            return Ok(Reopened::Here(r));
        }
        let replica = &self.log.replica;
        let claim = self
            .store
            .claim(
                task_id,
                owner,
                &replica.id,
                replica.lease_until(),
                chrono::Utc::now(),
            )
            .await
            .map_err(store_err)?;
        let (logged, terminal) = match claim {
            Claim::Acquired(logged) => (logged, false),
            Claim::Terminal(logged) => (logged, true),
            Claim::Held(logged) => return Ok(Reopened::Elsewhere(Box::new(logged))),
            Claim::Missing => return Err(A2AError::task_not_found(task_id)),
        };
        let fresh = Running::new(
            logged.task,
            owner.clone(),
            Phase::Idle,
            logged.seq,
            &self.log,
            self.push.clone(),
        );
        if terminal {
            return Ok(Reopened::Here(fresh));
        }
        let (running, registered) = match self.running.entry(task_id.to_string()) {
            dashmap::Entry::Occupied(e) => (e.get().clone(), false),
            dashmap::Entry::Vacant(e) => (e.insert(fresh).clone(), true),
        };
        // Registered meanwhile by its owner: still theirs only.
        if &running.owner != owner {
            return Err(A2AError::task_not_found(task_id));
        }
        if registered {
            // Loaded once registered: a config created meanwhile is either
            // in the store already or added to this handle by its creator.
            self.load_push_configs(&running).await?;
        }
        Ok(Reopened::Here(running))
    }

    /// Lets go of a task reopened for a message that was refused: unless
    /// an execution runs on it, the handle is forgotten and the lease
    /// given back.
    fn abandon(&self, running: &Arc<Running>) {
        if running.is_executing() {
            return;
        }
        self.unregister(running);
        let store = self.store.clone();
        let (id, replica) = (running.task_id.clone(), self.log.replica.id.clone());
        tokio::spawn(async move {
            if let Err(e) = store.release_lease(&id, &replica).await {
                tracing::debug!(task_id = %id, error = %e, "lease not given back; it runs out");
            }
        });
    }

    /// Forgets the live handle once nothing runs on it.
    pub(super) fn unregister(&self, running: &Arc<Running>) {
        self.running
            .remove_if(&running.task_id, |_, r| Arc::ptr_eq(r, running));
    }

    /// The live handle of task `id` if `owner` may see it; another owner's
    /// live task is `TaskNotFound`, as if it did not exist.
    fn live(&self, id: &str, owner: &TaskOwner) -> Result<Option<Arc<Running>>, A2AError> {
        match self.running.get(id).map(|r| r.clone()) {
            Some(r) if &r.owner != owner => Err(A2AError::task_not_found(id)),
            found => Ok(found),
        }
    }

    /// Runs the agent: inline when it finishes at once, else on its own task.
    pub(super) fn start(
        self: Arc<Self>,
        running: Arc<Running>,
        ctx: RequestContext,
        updater: TaskUpdater,
    ) {
        let agent = self.agent.clone();
        let span = tracing::info_span!(
            target: crate::otel::TARGET,
            "a2a.agent",
            a2a.task_id = %running.task_id
        );
        let run = async move {
            let token = running.cancel.clone();
            let result = tokio::select! {
                biased;
                _ = token.cancelled() => Ok(()),
                r = agent.execute(ctx, updater) => r,
            };
            if !token.is_cancelled() {
                running.finish_unsettled(result.err()).await;
            }
            running.end_execution();
            self.unregister(&running);
        };
        let mut run = Box::pin(tracing::Instrument::instrument(run, span));
        // Most agents answer without waiting on anything: finish those here
        // and skip the spawn. A pending future is re-polled by the runtime.
        if (&mut run).now_or_never().is_none() {
            tokio::spawn(tracing::Instrument::in_current_span(run));
        }
    }

    /// The stored push configs of a task just taken live.
    async fn load_push_configs(&self, running: &Running) -> Result<(), A2AError> {
        let Some(pusher) = &self.push else {
            return Ok(());
        };
        let configs = pusher
            .store()
            .list_configs(&running.owner, &running.task_id)
            .await
            .map_err(store_err)?;
        for config in configs {
            running.set_push_config(config);
        }
        Ok(())
    }

    /// Checks a push config of task `task_id` (its URL through the SSRF
    /// guard) and stores it; the id defaults to the task id, as in the
    /// other SDKs, so a second config without an id replaces the first.
    async fn register_push(
        &self,
        owner: &TaskOwner,
        task_id: &str,
        config: TaskPushNotificationConfig,
    ) -> Result<TaskPushNotificationConfig, A2AError> {
        let config = self.check_push(task_id, config).await?;
        let pusher = self.pusher()?;
        let store = pusher.store();
        let existing = store
            .list_configs(owner, task_id)
            .await
            .map_err(store_err)?;
        let max = pusher.settings().max_configs_per_task;
        if existing.len() >= max && !existing.iter().any(|c| c.id == config.id) {
            return Err(A2AError::invalid_params(format!(
                "task {task_id} already has {max} push notification configs; delete one first"
            )));
        }
        store.put_config(owner, &config).await.map_err(store_err)?;
        Ok(config)
    }

    fn pusher(&self) -> Result<&Pusher, A2AError> {
        self.push
            .as_ref()
            .ok_or_else(A2AError::push_notification_not_supported)
    }

    /// A config checked and completed (task id, id) for task `task_id`.
    async fn check_push(
        &self,
        task_id: &str,
        mut config: TaskPushNotificationConfig,
    ) -> Result<TaskPushNotificationConfig, A2AError> {
        let pusher = self.pusher()?;
        if config.url.trim().is_empty() {
            return Err(A2AError::invalid_params(
                "field `url` of the push notification config must not be empty",
            ));
        }
        pusher
            .check_config(&config)
            .await
            .map_err(A2AError::invalid_params)?;
        config.task_id = task_id.to_string();
        let id = config
            .id
            .take()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| task_id.to_string());
        config.id = Some(id);
        Ok(config)
    }

    /// The four push-config methods. The task must exist for `owner`.
    async fn push_config(
        &self,
        call: PushCall,
        owner: &TaskOwner,
    ) -> Result<A2AResponse, A2AError> {
        let pusher = self.pusher()?;
        let task_id = call.task_id().to_string();
        if task_id.is_empty() {
            return Err(A2AError::invalid_params("field `taskId` must not be empty"));
        }
        self.find(&task_id, owner).await?;
        let store = pusher.store();
        match call {
            PushCall::Create(config) => {
                let config = self.register_push(owner, &task_id, config).await?;
                if let Some(r) = self.live(&task_id, owner)? {
                    r.set_push_config(config.clone());
                }
                json_reply(&config)
            }
            PushCall::Get(r) => match store
                .get_config(owner, &task_id, &r.id)
                .await
                .map_err(store_err)?
            {
                Some(config) => json_reply(&config),
                None => Err(config_not_found(&task_id, &r.id)),
            },
            PushCall::List(r) => {
                let configs = store
                    .list_configs(owner, &task_id)
                    .await
                    .map_err(store_err)?;
                json_reply(&page_configs(
                    configs,
                    r.page_size,
                    r.page_token.as_deref(),
                )?)
            }
            PushCall::Delete(r) => {
                store
                    .delete_config(owner, &task_id, &r.id)
                    .await
                    .map_err(store_err)?;
                if let Some(live) = self.live(&task_id, owner)? {
                    live.remove_push_config(&r.id);
                }
                pusher.forget(&task_id, &r.id);
                Ok(A2AResponse::ok(Reply::Json(serde_json::json!({}))))
            }
        }
    }

    async fn find(&self, id: &str, owner: &TaskOwner) -> Result<Task, A2AError> {
        if let Some(r) = self.live(id, owner)? {
            return Ok(r.snapshot());
        }
        self.store
            .get(id, owner)
            .await
            .map_err(store_err)?
            .ok_or_else(|| A2AError::task_not_found(id))
    }

    async fn get_task(&self, p: GetTaskRequest, owner: &TaskOwner) -> Result<Box<Task>, A2AError> {
        check_history_length(p.history_length)?;
        let mut task = self.find(&p.id, owner).await?;
        trim_history(&mut task, p.history_length);
        Ok(Box::new(task))
    }

    async fn list(
        &self,
        p: ListTasksRequest,
        owner: TaskOwner,
    ) -> Result<ListTasksResponse, A2AError> {
        let page_size = p.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(A2AError::invalid_params(format!(
                "pageSize must be between 1 and {MAX_PAGE_SIZE}, got {page_size}"
            )));
        }
        check_history_length(p.history_length)?;
        let query = ListQuery {
            owner,
            context_id: p.context_id.filter(|c| !c.is_empty()),
            state: p.status.filter(|s| *s != TaskState::Unspecified),
            status_after: p.status_timestamp_after,
            page_size: page_size as usize,
            page_token: p.page_token.filter(|t| !t.is_empty()),
        };
        let page = self.store.list(&query).await.map_err(store_err)?;
        let include_artifacts = p.include_artifacts == Some(true);
        let tasks = page
            .tasks
            .into_iter()
            .map(|mut t| {
                if !include_artifacts {
                    t.artifacts = None;
                }
                trim_history(&mut t, p.history_length);
                t
            })
            .collect();
        Ok(ListTasksResponse {
            tasks,
            next_page_token: page.next_page_token.unwrap_or_default(),
            page_size,
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
        })
    }

    async fn cancel(&self, p: CancelTaskRequest, owner: &TaskOwner) -> Result<Box<Task>, A2AError> {
        match self.reopen(&p.id, owner).await? {
            Reopened::Here(running) => self.cancel_here(running).await,
            Reopened::Elsewhere(logged) => self.cancel_elsewhere(*logged, owner).await,
        }
    }

    /// Cancels a task this replica runs (or holds idle).
    pub(super) async fn cancel_here(&self, running: Arc<Running>) -> Result<Box<Task>, A2AError> {
        let snapshot = running.snapshot();
        if snapshot.status.state.is_terminal() {
            return Err(A2AError::task_not_cancelable(&running.task_id));
        }
        running.cancel.cancel();
        let updater = TaskUpdater {
            running: running.clone(),
        };
        let result = self.agent.cancel(&snapshot, updater).await;
        if !running.is_executing() {
            self.unregister(&running);
        }
        match result {
            Ok(()) => Ok(Box::new(running.snapshot())),
            Err(e) if e.code == crate::protocol::error_code::UNSUPPORTED_OPERATION => {
                // The task finished while we were canceling it.
                Err(A2AError::task_not_cancelable(&running.task_id))
            }
            Err(e) => Err(e),
        }
    }

    /// Cancels a task another replica runs: asks it through the backplane
    /// and waits, bounded, for the canceled state in the log. A lease that
    /// ends meanwhile (the task asked for input, or its replica stopped)
    /// makes the task this replica's to cancel.
    async fn cancel_elsewhere(
        &self,
        logged: LoggedTask,
        owner: &TaskOwner,
    ) -> Result<Box<Task>, A2AError> {
        let id = logged.task.id.clone();
        let Some(backplane) = &self.backplane else {
            return Err(busy_elsewhere(&logged));
        };
        let mut watch = self.log.bus.watch(&id);
        backplane.request_cancel(&id).await.map_err(store_err)?;
        let deadline = tokio::time::Instant::now() + REMOTE_CANCEL_WAIT;
        loop {
            let current = self
                .store
                .get_logged(&id, owner)
                .await
                .map_err(store_err)?
                .ok_or_else(|| A2AError::task_not_found(&id))?;
            match current.task.status.state {
                TaskState::Canceled => return Ok(Box::new(current.task)),
                s if s.is_terminal() => return Err(A2AError::task_not_cancelable(&id)),
                _ => {}
            }
            let held = current.lease.as_ref().is_some_and(|l| {
                l.until > chrono::Utc::now() && *l.replica != *self.log.replica.id
            });
            if !held {
                if let Reopened::Here(running) = self.reopen(&id, owner).await? {
                    return self.cancel_here(running).await;
                }
            }
            match tokio::time::timeout_at(deadline, watch.changed()).await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    let by = current.lease.map(|l| l.replica).unwrap_or_default();
                    return Err(A2AError::internal(format!(
                        "task {id} runs on replica {by}, which did not confirm the cancel within {} s",
                        REMOTE_CANCEL_WAIT.as_secs()
                    )));
                }
            }
        }
    }

    /// Follows a task's log, on whichever replica runs it: its snapshot
    /// first, or with `Last-Event-ID` the events after that one.
    async fn subscribe(
        &self,
        p: SubscribeToTaskRequest,
        owner: &TaskOwner,
        last_event_id: Option<&str>,
    ) -> Result<A2AResponse, A2AError> {
        if self.card.capabilities.streaming != Some(true) {
            return Err(A2AError::unsupported_operation(
                "streaming is not supported",
            ));
        }
        let after = match last_event_id {
            None | Some("") => None,
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                A2AError::invalid_params(format!(
                    "Last-Event-ID must be the sequence number of an event of this task, got {v:?}"
                ))
            })?),
        };
        let watch = self.log.bus.watch(&p.id);
        if let Some(running) = self.live(&p.id, owner)? {
            // Queued events first, so the stored log is as far as ours.
            let _ = running.log.flush().await;
        }
        let logged = self
            .store
            .get_logged(&p.id, owner)
            .await
            .map_err(store_err)?
            .ok_or_else(|| A2AError::task_not_found(&p.id))?;
        let terminal = logged.task.status.state.is_terminal();
        let start = match after {
            Some(n) if n > logged.seq => {
                return Err(A2AError::invalid_params(format!(
                    "Last-Event-ID {n} is after the last event of task {} ({})",
                    p.id, logged.seq
                )))
            }
            Some(n) if !(terminal && n == logged.seq) => Start::After(n),
            _ if terminal => {
                return Err(A2AError::unsupported_operation(format!(
                    "task {} is in a terminal state; use GetTask",
                    p.id
                )))
            }
            _ => Start::Snapshot(Box::new(logged.task), logged.seq),
        };
        Ok(A2AResponse::Stream(follow_log(
            self.store.clone(),
            watch,
            owner.clone(),
            p.id,
            start,
        )))
    }
}

/// Where [`Inner::reopen`] found a task.
pub(super) enum Reopened {
    /// Live on this replica (or stored and now leased by it).
    Here(Arc<Running>),
    /// Leased by another replica, which runs it.
    Elsewhere(Box<LoggedTask>),
}

/// The answer to a message for a task another replica works on.
fn busy_elsewhere(logged: &LoggedTask) -> A2AError {
    let by = logged
        .lease
        .as_ref()
        .map_or("another replica", |l| l.replica.as_str());
    A2AError::unsupported_operation(format!(
        "task {} is still being worked on (by replica {by}); wait for it to ask for input",
        logged.task.id
    ))
}

/// A JSON reply of a push-config method.
fn json_reply<T: serde::Serialize>(value: &T) -> Result<A2AResponse, A2AError> {
    serde_json::to_value(value)
        .map(|v| A2AResponse::ok(Reply::Json(v)))
        .map_err(|e| A2AError::internal(format!("cannot encode the reply: {e}")))
}

/// A config the task does not have (or another owner's): not found, as a
/// task of another owner is.
fn config_not_found(task_id: &str, id: &str) -> A2AError {
    A2AError::new(
        error_code::TASK_NOT_FOUND,
        format!("task {task_id} has no push notification config {id:?}"),
    )
}

/// One page of a task's configs; the token is the offset of the next page.
fn page_configs(
    configs: Vec<TaskPushNotificationConfig>,
    page_size: Option<i32>,
    page_token: Option<&str>,
) -> Result<ListTaskPushNotificationConfigsResponse, A2AError> {
    let start = match page_token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= configs.len())
            .ok_or_else(|| A2AError::invalid_params("invalid pageToken"))?,
    };
    let size = match page_size {
        None | Some(0) => configs.len().max(1),
        Some(n) if n < 0 => {
            return Err(A2AError::invalid_params(format!(
                "pageSize must be >= 0, got {n}"
            )))
        }
        Some(n) => n as usize,
    };
    let end = start.saturating_add(size).min(configs.len());
    let next_page_token = (end < configs.len()).then(|| end.to_string());
    Ok(ListTaskPushNotificationConfigsResponse {
        configs: configs.into_iter().skip(start).take(end - start).collect(),
        next_page_token,
    })
}

/// How the answer to a message is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// One reply once the exchange settles (SendMessage).
    Reply,
    /// A stream of events (SendStreamingMessage).
    Stream,
}

fn validate_message(m: &Message) -> Result<(), A2AError> {
    if m.message_id.trim().is_empty() {
        return Err(A2AError::invalid_params(
            "field `message.messageId` must not be empty",
        ));
    }
    if m.role != Role::User {
        return Err(A2AError::invalid_params(
            "field `message.role` must be ROLE_USER",
        ));
    }
    if m.parts.is_empty() {
        return Err(A2AError::invalid_params(
            "field `message.parts` must contain at least one part",
        ));
    }
    Ok(())
}

fn check_history_length(h: Option<i32>) -> Result<(), A2AError> {
    match h {
        Some(n) if n < 0 => Err(A2AError::invalid_params(format!(
            "historyLength must be >= 0, got {n}"
        ))),
        _ => Ok(()),
    }
}

/// Applies `historyLength` semantics: unset keeps all, 0 omits, n keeps the last n.
fn trim_history(task: &mut Task, history_length: Option<i32>) {
    match history_length {
        None => {}
        Some(0) => task.history = None,
        Some(n) => {
            if let Some(h) = task.history.as_mut() {
                let keep = n as usize;
                if h.len() > keep {
                    h.drain(..h.len() - keep);
                }
            }
        }
    }
}
