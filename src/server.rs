//! Wiring: config + agent + store + stack + HTTP into a running server.

use crate::agent::Agent;
use crate::card::ServedCard;
use crate::config::Config;
use crate::core::Core;
use crate::http::{serve, shutdown_signal, HttpApp, HttpOptions};
use crate::protocol::types::AgentCard;
use crate::store::TaskStore;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A ready-to-run A2A server for one agent.
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
    agent: Box<dyn FnOnce(AgentCard, Option<Arc<dyn TaskStore>>) -> Core + Send>,
    card: AgentCard,
    config: Config,
    store: Option<Arc<dyn TaskStore>>,
    http: HttpOptions,
}

impl Server {
    /// A server for `agent` described by `card`, with the default config.
    pub fn new(agent: impl Agent, card: AgentCard) -> Self {
        Server {
            agent: Box::new(move |card, store| {
                let b = Core::builder(agent, card);
                match store {
                    Some(s) => b.store(s).build(),
                    None => b.build(),
                }
            }),
            card,
            config: Config::default(),
            store: None,
            http: HttpOptions::default(),
        }
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Uses `store` for tasks.
    pub fn store(mut self, store: Arc<dyn TaskStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Replaces the HTTP adapter options (extra routes, limits).
    pub fn http_options(mut self, opts: HttpOptions) -> Self {
        self.http = opts;
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
        let core = (self.agent)(self.card, self.store);
        let served = ServedCard::new(core.card().clone(), &self.config.public_url());
        let mut http = self.http;
        http.max_body_bytes = self.config.max_body_bytes;
        let app = HttpApp::new(core, served, http);
        tracing::info!(%addr, url = %self.config.public_url(), "serving A2A");
        serve(listener, app, shutdown, self.config.drain()).await
    }
}
