//! The typed server configuration: every knob is a flag and an environment variable.

use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

/// Server configuration (flags override environment, which overrides defaults).
///
/// ```
/// use clap::Parser;
/// #[derive(Parser)]
/// struct Cli { #[command(flatten)] config: abacus::config::Config }
/// let cli = Cli::parse_from(["abacus", "--port", "9000"]);
/// assert_eq!(cli.config.port, 9000);
/// assert_eq!(cli.config.public_url(), "http://127.0.0.1:9000/");
/// ```
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "A2A_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0 picks a free port).
    #[arg(long, env = "A2A_PORT", default_value_t = 8002)]
    pub port: u16,

    /// URL advertised in the agent card (default: http://HOST:PORT/).
    #[arg(long, env = "A2A_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "ABACUS_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// Seconds to let in-flight requests and streams finish on shutdown.
    #[arg(long, env = "ABACUS_SHUTDOWN_DRAIN_SECS", default_value_t = 10.0)]
    pub shutdown_drain_secs: f64,

    /// Worker threads of the runtime (default: one per core).
    #[arg(long, env = "ABACUS_WORKER_THREADS")]
    pub worker_threads: Option<usize>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "ABACUS_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 8002,
            public_url: None,
            max_body_bytes: 1 << 20,
            shutdown_drain_secs: 10.0,
            worker_threads: None,
            log_format: "text".into(),
        }
    }
}

impl Config {
    /// The URL clients reach the JSON-RPC endpoint at.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) if u.ends_with('/') => u.clone(),
            Some(u) => format!("{u}/"),
            None => {
                let host = if self.host.contains(':') {
                    format!("[{}]", self.host)
                } else {
                    self.host.clone()
                };
                format!("http://{host}:{}/", self.port)
            }
        }
    }

    /// The socket address to bind.
    pub fn bind_addr(&self) -> std::io::Result<SocketAddr> {
        use std::net::ToSocketAddrs;
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("cannot resolve {}", self.host)))
    }

    /// The shutdown drain deadline.
    pub fn drain(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_drain_secs.max(0.0))
    }
}
