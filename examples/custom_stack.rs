//! The math agent behind a stack of your own order, with a custom layer.
//!
//! Here the timeout wraps everything (so queueing counts against the
//! deadline), the cache sits outermost-but-one so hits skip the limiter,
//! and a small custom layer refuses `ListTasks` on this deployment.
//!
//! ```text
//! A2A_PORT=8003 cargo run --example custom_stack
//! ```

use abacus::config::Config;
use abacus::math::{Limits, MathAgent};
use abacus::protocol::{A2AError, A2ARequest, A2AResponse, Call, Method};
use abacus::stack::ToRpcError;
use abacus::Server;
use clap::Parser;
use std::task::{Context, Poll};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

/// Refuses the methods it is given, before they reach the core.
#[derive(Clone)]
pub struct DenyMethods(pub &'static [Method]);

impl<S> Layer<S> for DenyMethods {
    type Service = Deny<S>;
    fn layer(&self, inner: S) -> Deny<S> {
        Deny {
            inner,
            methods: self.0,
        }
    }
}

/// The service of [`DenyMethods`].
#[derive(Clone)]
pub struct Deny<S> {
    inner: S,
    methods: &'static [Method],
}

impl<S> Service<A2ARequest> for Deny<S>
where
    S: Service<A2ARequest, Response = A2AResponse>,
    S::Future: Send + 'static,
{
    type Response = A2AResponse;
    type Error = S::Error;
    type Future =
        futures_util::future::Either<std::future::Ready<Result<A2AResponse, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: A2ARequest) -> Self::Future {
        if self.methods.contains(&req.call.method()) && !matches!(req.call, Call::SendMessage(_)) {
            let err = A2AError::unsupported_operation(format!(
                "{} is disabled on this deployment",
                req.call.method()
            ));
            return futures_util::future::Either::Left(std::future::ready(Ok(A2AResponse::error(
                err,
            ))));
        }
        futures_util::future::Either::Right(self.inner.call(req))
    }
}

/// The math agent with the custom stack.
pub fn server(config: Config) -> Server {
    Server::new(MathAgent::new(Limits::default()), MathAgent::card())
        .config(config)
        .stack(|core, layers| {
            let svc = ServiceBuilder::new()
                .layer(layers.timeout)
                .layer(layers.metrics.clone())
                .layer(layers.restamp)
                .layer(layers.cache.clone())
                .layer(layers.concurrency.clone())
                .layer(DenyMethods(&[Method::ListTasks]))
                .service(core)
                .map_err(|e| e.to_rpc_error());
            tower::util::BoxCloneSyncService::new(svc)
        })
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

#[allow(dead_code)] // the integration test includes this file for `server`
#[tokio::main]
async fn main() -> std::io::Result<()> {
    abacus::telemetry::init_logging("text");
    server(Cli::parse().config).run().await
}
