//! Wiring: config + agent + stores + stack + HTTP into a running server.

use crate::agent::Agent;
use crate::auth::Credentials;
use crate::card::ServedCard;
use crate::config::{Config, ReplicaConfig};
use crate::core::Core;
use crate::health::{liveness, Health, HealthCheck, ResourceCheck, SelfTest, StoreCheck};
use crate::http::{serve_routes, shutdown_signal, GetRoute, HttpApp, HttpOptions};
use crate::protocol::types::AgentCard;
use crate::protocol::{A2AError, A2ARequest, A2AResponse};
use crate::push::Pusher;
use crate::stack::A2ALayers;
use crate::store::{open, Stores};
use abacus_layers::auth::AuthLayer;
use abacus_layers::metrics::prometheus::PrometheusHandle;
use bytes::Bytes;
use futures_util::FutureExt;
use http::StatusCode;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower::Layer;

mod first_contact;

fn metrics_route(handle: &'static PrometheusHandle) -> GetRoute {
    Arc::new(move || {
        async move {
            let body = Bytes::from(handle.render());
            (StatusCode::OK, "text/plain; version=0.0.4", body)
        }
        .boxed()
    })
}

/// `/health` (liveness) and `/health/detailed` (readiness).
fn health_routes(health: Health) -> [(&'static str, GetRoute); 2] {
    let live: GetRoute = Arc::new(|| {
        async {
            let body = Bytes::from(liveness().to_string());
            (StatusCode::OK, "application/json", body)
        }
        .boxed()
    });
    let detailed: GetRoute = Arc::new(move || {
        let health = health.clone();
        async move {
            let (ready, report) = health.report().await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, "application/json", Bytes::from(report.to_string()))
        }
        .boxed()
    });
    [("/health", live), ("/health/detailed", detailed)]
}

/// A ready-to-run A2A server for one agent.
///
/// Stores come from the configuration (SQLite under `--data-dir` by
/// default) unless given with [`Server::stores`].
///
/// ```no_run
/// # use abacus::agent::{Agent, RequestContext, TaskUpdater};
/// # use abacus::protocol::types::A2AError;
/// # struct Done;
/// # #[async_trait::async_trait]
/// # impl Agent for Done {
/// #     async fn execute(&self, _: RequestContext, up: TaskUpdater) -> Result<(), A2AError> { up.complete(None).await }
/// # }
/// # async fn run() -> std::io::Result<()> {
/// let card = abacus::card::CardBuilder::new("done", "completes").build();
/// let mut config = abacus::config::Config::default();
/// config.port = 0;
/// abacus::Server::new(Done, card).config(config).run().await
/// # }
/// ```
pub struct Server {
    core: CoreFn,
    card: AgentCard,
    extended_card: Option<AgentCard>,
    config: Config,
    stores: Option<Stores>,
    /// Set by [`Server::http_options`]; built from the config otherwise.
    http: Option<HttpOptions>,
    self_test: Option<(String, String)>,
    checks: Vec<Arc<dyn HealthCheck>>,
    custom_stack: Option<StackFn>,
}

/// Builds the core from the card, the extended card, the stores, the push
/// sink (when enabled) and the replica settings.
type CoreFn = Box<
    dyn FnOnce(AgentCard, Option<AgentCard>, Stores, Option<Pusher>, &ReplicaConfig) -> Core + Send,
>;

/// Builds a stack of the user's choosing around the core.
type StackFn = Box<dyn FnOnce(Core, &A2ALayers) -> BoxedStack + Send>;

/// A type-erased stack, for orders chosen at run time.
pub type BoxedStack = tower::util::BoxCloneSyncService<A2ARequest, A2AResponse, A2AError>;

impl Server {
    /// A server for `agent` described by `card`, with the default config.
    pub fn new(agent: impl Agent, card: AgentCard) -> Self {
        Server {
            core: Box::new(move |card, extended, stores, pusher, replica| {
                let mut core = Core::builder(agent, card)
                    .store(stores.tasks)
                    .replica(replica.replica_id(), replica.lease())
                    .event_log_retention(replica.event_log_retention());
                if let Some(pusher) = pusher {
                    core = core.push(pusher);
                }
                if let Some(backplane) = stores.backplane {
                    core = core.backplane(backplane);
                }
                match extended {
                    Some(extended) => core.extended_card(extended).build(),
                    None => core.build(),
                }
            }),
            card,
            extended_card: None,
            config: Config::default(),
            stores: None,
            http: None,
            self_test: None,
            checks: Vec::new(),
            custom_stack: None,
        }
    }

    /// Serves a stack of your own order instead of the default one; `build`
    /// gets the core and every layer configured from the config.
    ///
    /// ```no_run
    /// # use abacus::agent::{Agent, RequestContext, TaskUpdater};
    /// # use abacus::protocol::types::A2AError;
    /// # struct Done;
    /// # #[async_trait::async_trait]
    /// # impl Agent for Done {
    /// #     async fn execute(&self, _: RequestContext, up: TaskUpdater) -> Result<(), A2AError> { up.complete(None).await }
    /// # }
    /// use abacus::stack::ToRpcError;
    /// use tower::{ServiceBuilder, ServiceExt};
    /// let card = abacus::card::CardBuilder::new("done", "completes").build();
    /// let server = abacus::Server::new(Done, card).stack(|core, layers| {
    ///     let svc = ServiceBuilder::new()
    ///         .layer(layers.timeout.clone())
    ///         .layer(layers.metrics.clone())
    ///         .service(core)
    ///         .map_err(|e| e.to_rpc_error());
    ///     tower::util::BoxCloneSyncService::new(svc)
    /// });
    /// # let _ = server;
    /// ```
    pub fn stack(
        mut self,
        build: impl FnOnce(Core, &A2ALayers) -> BoxedStack + Send + 'static,
    ) -> Self {
        self.custom_stack = Some(Box::new(build));
        self
    }

    /// An extended agent card for authenticated callers (`GetExtendedAgentCard`),
    /// e.g. with skills the public card does not list. It is offered
    /// (`capabilities.extendedAgentCard`) only when authentication is
    /// configured; its interfaces, security schemes and capabilities are
    /// the public card's.
    ///
    /// ```no_run
    /// # use abacus::agent::{Agent, RequestContext, TaskUpdater};
    /// # use abacus::protocol::types::A2AError;
    /// # struct Done;
    /// # #[async_trait::async_trait]
    /// # impl Agent for Done {
    /// #     async fn execute(&self, _: RequestContext, up: TaskUpdater) -> Result<(), A2AError> { up.complete(None).await }
    /// # }
    /// use abacus::card::CardBuilder;
    /// let public = CardBuilder::new("done", "completes").build();
    /// let extended = CardBuilder::new("done", "completes")
    ///     .skill("audit", "Audit", "Reports on past work", &["audit"], &[])
    ///     .build();
    /// let server = abacus::Server::new(Done, public).extended_card(extended);
    /// # let _ = server;
    /// ```
    pub fn extended_card(mut self, card: AgentCard) -> Self {
        self.extended_card = Some(card);
        self
    }

    /// Adds a readiness self-test: `question` sent to the agent must be
    /// answered with a text part equal to `expected`.
    pub fn self_test(mut self, question: &str, expected: &str) -> Self {
        self.self_test = Some((question.into(), expected.into()));
        self
    }

    /// Adds a readiness check to `/health/detailed`.
    pub fn health_check(mut self, check: impl HealthCheck) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Uses already opened stores instead of opening them from the config.
    pub fn stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// Replaces the HTTP edge options (extra routes, limits). They are used
    /// as given: the config's `max_body_bytes` and `body_timeout_ms` apply
    /// only without them.
    /// The health routes are added unless `opts` has routes of those paths;
    /// the playground follows the config ([`Config::playground`]).
    pub fn http_options(mut self, opts: HttpOptions) -> Self {
        self.http = Some(opts);
        self
    }

    /// Binds and serves until SIGINT/SIGTERM.
    pub async fn run(self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.config.bind_addr()?).await?;
        self.run_on(listener, shutdown_signal()).await
    }

    /// Serves on an already bound listener until `shutdown` resolves.
    pub async fn run_on(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        if self.config.port == 0 {
            self.config.port = addr.port();
        }
        // The gRPC port first: the card names it.
        let grpc_listener = match self.config.grpc_port {
            Some(port) => {
                let listener = TcpListener::bind((self.config.host.as_str(), port)).await?;
                self.config.grpc_port = Some(listener.local_addr()?.port());
                Some(listener)
            }
            None => None,
        };
        // The JWK set stays fresh while `_jwks` lives: until serving ends.
        let (credentials, _jwks) = Credentials::load(&self.config)
            .await
            .map_err(std::io::Error::other)?;
        let tls = match self.config.tls_files().map_err(std::io::Error::other)? {
            Some(files) => {
                Some(crate::http::tls::ServerTls::load(files).map_err(std::io::Error::other)?)
            }
            None => None,
        };
        // A verified client certificate is one more accepted credential.
        let credentials = match &tls {
            Some(tls) if tls.mutual() => Some(Credentials::with_mutual_tls(credentials)),
            _ => credentials,
        };
        if let Some(c) = &credentials {
            c.declare(&mut self.card);
        }
        let playground = self.config.playground(credentials.as_ref());
        // A Redis that is down does not stop the start (the cache tier
        // connects by itself later); a URL that does not parse does.
        crate::stack::remote_cache::check_url(&self.config.stack).map_err(std::io::Error::other)?;
        let signing_keys = match self.config.card_signing_key.as_deref() {
            Some(spec) => crate::card::sign::SigningKey::parse_list(spec)
                .map_err(|e| std::io::Error::other(format!("--card-signing-key: {e}")))?,
            None => Vec::new(),
        };
        let mut stores = match self.stores {
            Some(s) => s,
            None => open(&self.config.store())
                .await
                .map_err(|e| std::io::Error::other(format!("cannot open the store: {e}")))?,
        };
        // Store latency (`a2a_store_operation_seconds`): the recorder is
        // installed first, so that the wrapper's handles record.
        crate::telemetry::prometheus();
        stores.tasks = Arc::new(crate::store::TimedStore::new(stores.tasks));
        let store = first_contact::store(&stores.backend, &self.config);
        // Pending notifications are queued again before any request is
        // taken, so that they keep their order ahead of new events.
        let pusher = if self.config.push.push {
            let mut settings = self
                .config
                .push
                .settings(self.config.outbound_ca.as_deref());
            // Replicas share the outbox only on PostgreSQL; a SQLite file
            // or memory is one process's.
            settings.replica = crate::push::OutboxReplica {
                id: self.config.replica.replica_id(),
                lease: self.config.replica.lease(),
                sharing: match stores.backend {
                    crate::store::Backend::Postgres(_) => crate::push::Sharing::Shared,
                    _ => crate::push::Sharing::Alone,
                },
            };
            let pusher = Pusher::start(stores.push.clone(), settings)
                .await
                .map_err(|e| {
                    std::io::Error::other(format!("cannot start push notifications: {e}"))
                })?;
            Some(pusher)
        } else {
            None
        };
        self.card.capabilities.push_notifications = Some(pusher.is_some());
        let extended = match (self.extended_card.take(), &credentials) {
            (Some(card), Some(_)) => {
                self.card.capabilities.extended_agent_card = Some(true);
                Some(card)
            }
            (Some(_), None) => {
                tracing::warn!("an extended agent card is served to authenticated callers only; no authentication is configured, so it is not offered");
                None
            }
            (None, _) => None,
        };
        if let Some(grpc) = self.config.grpc_url() {
            if self.card.supported_interfaces.is_empty() {
                self.card.supported_interfaces =
                    crate::card::interfaces(&self.config.public_url(), Some(&grpc));
            }
        }
        // Signed last: the signatures cover the card exactly as served.
        let served = ServedCard::new(self.card.clone(), &self.config.public_url())
            .signed(&signing_keys)
            .map_err(|e| std::io::Error::other(format!("cannot sign the agent card: {e}")))?;
        let extended = extended.map(|mut card| {
            let public = served.card();
            card.supported_interfaces = public.supported_interfaces.clone();
            card.security_schemes = public.security_schemes.clone();
            card.security_requirements = public.security_requirements.clone();
            card.capabilities = public.capabilities.clone();
            card
        });
        let task_store = stores.tasks.clone();
        let core = (self.core)(self.card, extended, stores, pusher, &self.config.replica);
        let mut http = self.http.unwrap_or_else(|| HttpOptions {
            max_body_bytes: self.config.max_body_bytes,
            body_timeout: self.config.body_timeout(),
            ..HttpOptions::default()
        });
        http.playground = playground;
        let mut health = Health::new()
            .check(StoreCheck::new(task_store))
            .check(ResourceCheck {
                cpu_max: self.config.health_cpu_max,
                memory_max: self.config.health_memory_max,
                disk_max: self.config.health_disk_max,
                ..ResourceCheck::new(self.config.data_dir.clone())
            });
        if let Some((q, a)) = &self.self_test {
            health = health.check(SelfTest::new(core.clone(), q, a));
        }
        for c in self.checks {
            health = health.check_arc(c);
        }
        let metrics_listener = match self.config.metrics_port {
            Some(port) => Some(TcpListener::bind((self.config.host.as_str(), port)).await?),
            None => None,
        };
        let admin_listener = match self.config.admin_addr {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        // Liveness stays on the API port (probes, load balancers); readiness
        // and metrics move to the admin listener when there is one. Routes
        // the caller gave in `http_options` win on the API port.
        let [live, detailed] = health_routes(health);
        let metrics = crate::telemetry::prometheus().map(|h| ("/metrics", metrics_route(h)));
        http.routes.entry(live.0).or_insert_with(|| live.1.clone());
        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        match admin_listener {
            Some(listener) => {
                tracing::info!(addr = %listener.local_addr()?, "serving /metrics and /health/detailed on the admin listener");
                let routes = [Some(live), Some(detailed), metrics.clone()];
                tokio::spawn(async move {
                    let stopped = async move {
                        let _ = admin_stopped.await;
                    };
                    if let Err(e) =
                        serve_routes(listener, routes.into_iter().flatten(), stopped).await
                    {
                        tracing::warn!(error = %e, "admin listener stopped");
                    }
                });
            }
            None => {
                http.routes.entry(detailed.0).or_insert(detailed.1);
                if let Some((path, route)) = &metrics {
                    http.routes.entry(*path).or_insert_with(|| route.clone());
                }
            }
        }
        if let (Some(route), Some(listener)) = (metrics, metrics_listener) {
            tokio::spawn(async move {
                if let Err(e) = serve_routes(listener, [route], std::future::pending()).await {
                    tracing::warn!(error = %e, "metrics listener stopped");
                }
            });
        }
        let layers = A2ALayers::new(&self.config.stack, &core);
        let url = self.config.public_url();
        let contact = first_contact::FirstContact {
            addr,
            url: &url,
            playground,
            question: self.self_test.as_ref().map(|(q, _)| q.as_str()),
            credentials: credentials.as_ref(),
            store: &store,
            stack: match self.custom_stack {
                Some(_) => first_contact::StackChoice::Custom,
                None => first_contact::StackChoice::Default,
            },
        };
        tracing::info!(%addr, %url, "{}", contact.line(&self.config));
        if let Some(listener) = &grpc_listener {
            tracing::info!(addr = %listener.local_addr()?, "serving gRPC on its own port too");
        }
        let listeners = Listeners {
            api: listener,
            grpc: grpc_listener,
        };
        let (drain, mut limits) = (self.config.drain(), self.config.serve_options());
        limits.tls = tls;
        let result = match self.custom_stack {
            Some(build) => {
                let app = HttpApp::new(build(core, &layers), served, http);
                serve_app(listeners, app, credentials, shutdown, drain, &limits).await
            }
            None => {
                let app = HttpApp::new(layers.default_stack(core), served, http);
                serve_app(listeners, app, credentials, shutdown, drain, &limits).await
            }
        };
        drop(admin_stop);
        result
    }
}

/// The API port's listener and the optional one of `--grpc-port`.
struct Listeners {
    api: TcpListener,
    grpc: Option<TcpListener>,
}

/// Serves `app` on every listener until `shutdown` resolves, with the same
/// TLS and authentication on each.
async fn serve_app<S>(
    listeners: Listeners,
    app: HttpApp<S>,
    credentials: Option<Credentials>,
    shutdown: impl Future<Output = ()>,
    drain: std::time::Duration,
    limits: &crate::http::ServeOptions,
) -> std::io::Result<()>
where
    S: tower::Service<crate::protocol::A2ARequest, Response = crate::protocol::A2AResponse>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<tower::BoxError>,
    S::Future: Send,
{
    let Some(grpc) = listeners.grpc else {
        return serve_one(listeners.api, app, credentials, shutdown, drain, limits).await;
    };
    let shutdown = shutdown.shared();
    let (api, grpc) = tokio::join!(
        serve_one(
            listeners.api,
            app.clone(),
            credentials.clone(),
            shutdown.clone(),
            drain,
            limits
        ),
        serve_one(grpc, app, credentials, shutdown, drain, limits),
    );
    api.and(grpc)
}

/// Serves `app` on `listener`, behind the authentication layer when
/// credentials are configured (the peer then travels in each request's
/// extensions).
async fn serve_one<S>(
    listener: TcpListener,
    app: HttpApp<S>,
    credentials: Option<Credentials>,
    shutdown: impl Future<Output = ()>,
    drain: std::time::Duration,
    limits: &crate::http::ServeOptions,
) -> std::io::Result<()>
where
    S: tower::Service<crate::protocol::A2ARequest, Response = crate::protocol::A2AResponse>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<tower::BoxError>,
    S::Future: Send,
{
    let Some(credentials) = credentials else {
        return crate::http::serve_app(listener, app, shutdown, drain, limits).await;
    };
    let playground = app.playground();
    let guarded = AuthLayer::new(credentials)
        .public(move |parts| crate::auth::is_public(parts) || playground.is_public(parts))
        .on_reject(|parts, rejection| {
            // The reason, never the credential.
            tracing::info!(method = %parts.method, path = parts.uri.path(), reason = rejection.reason(), "request not authenticated");
        })
        .layer(app);
    crate::http::serve_with(listener, guarded, shutdown, drain, limits).await
}
