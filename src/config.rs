//! The typed server configuration: every knob is a flag and an environment variable.

use crate::store::{StoreConfig, StoreKind};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Every flag's default, written once: clap's `default_value_t` and the
/// `Default` impls both read these.
pub mod defaults {
    use crate::store::{SqliteSync, StoreKind};

    /// `--host`.
    pub const HOST: &str = "127.0.0.1";
    /// `--port`.
    pub const PORT: u16 = 8002;
    /// `--max-body-bytes`: 1 MiB.
    pub const MAX_BODY_BYTES: usize = 1 << 20;
    /// `--body-timeout-ms`.
    pub const BODY_TIMEOUT_MS: u64 = 30_000;
    /// `--idle-timeout-ms`.
    pub const IDLE_TIMEOUT_MS: u64 = 60_000;
    /// `--max-connections`.
    pub const MAX_CONNECTIONS: usize = 10_000;
    /// `--shutdown-drain-secs`.
    pub const SHUTDOWN_DRAIN_SECS: f64 = 10.0;
    /// `--log-format`.
    pub const LOG_FORMAT: &str = "text";
    /// `--store`.
    pub const STORE: StoreKind = StoreKind::Auto;
    /// `--data-dir`.
    pub const DATA_DIR: &str = "./data";
    /// `--memory-capacity`.
    pub const MEMORY_CAPACITY: usize = 10_000;
    /// `--memory-ttl-secs`.
    pub const MEMORY_TTL_SECS: u64 = 3600;
    /// `--sqlite-sync`.
    pub const SQLITE_SYNC: SqliteSync = SqliteSync::Normal;
    /// `--health-cpu-max`, percent; 0 = only reported.
    pub const HEALTH_CPU_MAX: f32 = 0.0;
    /// `--health-memory-max`, percent; 0 = only reported.
    pub const HEALTH_MEMORY_MAX: f32 = 0.0;
    /// `--health-disk-max`, percent.
    pub const HEALTH_DISK_MAX: f32 = 90.0;

    /// `--rate-limit-max-keys`.
    pub const RATE_LIMIT_MAX_KEYS: usize = 100_000;
    /// `--concurrency-limit`.
    pub const CONCURRENCY_LIMIT: usize = 1024;
    /// `--load-shed`.
    pub const LOAD_SHED: bool = true;
    /// `--request-timeout-ms`.
    pub const REQUEST_TIMEOUT_MS: u64 = 30_000;
    /// `--max-client-timeout-ms`.
    pub const MAX_CLIENT_TIMEOUT_MS: u64 = 300_000;
    /// `--stream-first-event-ms`.
    pub const STREAM_FIRST_EVENT_MS: u64 = 10_000;
    /// `--stream-idle-ms`.
    pub const STREAM_IDLE_MS: u64 = 120_000;
    /// `--cache`.
    pub const CACHE: bool = true;
    /// `--cache-capacity`.
    pub const CACHE_CAPACITY: u64 = 10_000;
    /// `--cache-ttl-secs`.
    pub const CACHE_TTL_SECS: u64 = 3600;
    /// `--cache-namespace`.
    pub const CACHE_NAMESPACE: &str = "abacus";
    /// `--redis-timeout-ms`.
    pub const REDIS_TIMEOUT_MS: u64 = 50;
    /// `--breaker-failure-rate`.
    pub const BREAKER_FAILURE_RATE: f64 = 0.5;
    /// `--breaker-min-calls`.
    pub const BREAKER_MIN_CALLS: u64 = 20;
    /// `--breaker-window-secs`.
    pub const BREAKER_WINDOW_SECS: u64 = 30;
    /// `--breaker-open-secs`.
    pub const BREAKER_OPEN_SECS: u64 = 10;

    /// `--max-expression-len`, bytes.
    pub const MAX_EXPRESSION_LEN: usize = 4096;
    /// `--max-depth`.
    pub const MAX_DEPTH: usize = 64;
    /// `--max-sequence-n`.
    pub const MAX_SEQUENCE_N: u64 = 100_000;
    /// `--max-result-digits`.
    pub const MAX_RESULT_DIGITS: usize = 100_000;
    /// `--max-factor-digits`.
    pub const MAX_FACTOR_DIGITS: usize = 60;
    /// `--cpu-time-ms`.
    pub const CPU_TIME_MS: u64 = 5000;
    /// `--external-timeout-ms`.
    pub const EXTERNAL_TIMEOUT_MS: u64 = 3000;
    /// `--external-deadline-ms`.
    pub const EXTERNAL_DEADLINE_MS: u64 = 8000;
    /// `--external-breaker-failures`.
    pub const EXTERNAL_BREAKER_FAILURES: u64 = 5;
    /// `--external-breaker-failure-rate`.
    pub const EXTERNAL_BREAKER_FAILURE_RATE: f64 = 0.8;
    /// `--external-breaker-min-calls`.
    pub const EXTERNAL_BREAKER_MIN_CALLS: u64 = 20;
    /// `--external-breaker-window-secs`.
    pub const EXTERNAL_BREAKER_WINDOW_SECS: u64 = 30;
    /// `--external-breaker-open-secs`.
    pub const EXTERNAL_BREAKER_OPEN_SECS: u64 = 30;
    /// `--llm-timeout-secs`.
    pub const LLM_TIMEOUT_SECS: u64 = 30;
    /// `--llm-deadline-secs`.
    pub const LLM_DEADLINE_SECS: u64 = 120;
    /// `--llm-breaker-failures`.
    pub const LLM_BREAKER_FAILURES: u32 = 3;
    /// `--llm-breaker-open-secs`.
    pub const LLM_BREAKER_OPEN_SECS: u64 = 300;
    /// `--llm-max-concurrency`.
    pub const LLM_MAX_CONCURRENCY: usize = 4;
    /// `--history-retention`.
    pub const HISTORY_RETENTION: usize = 100_000;
    /// `--cpu-queue`.
    pub const CPU_QUEUE: usize = 64;
    /// `--push`.
    pub const PUSH: bool = true;
    /// `--push-deadline-secs`.
    pub const PUSH_DEADLINE_SECS: u64 = 3600;
    /// `--push-attempt-timeout-ms`.
    pub const PUSH_ATTEMPT_TIMEOUT_MS: u64 = 10_000;
    /// `--push-host-concurrency`.
    pub const PUSH_HOST_CONCURRENCY: usize = 8;
    /// `--lease-secs`.
    pub const LEASE_SECS: u64 = 30;
    /// `--event-log-retention-secs`.
    pub const EVENT_LOG_RETENTION_SECS: u64 = 86_400;
}

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
#[command(next_help_heading = "Server")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "A2A_HOST", default_value = defaults::HOST)]
    pub host: String,

    /// Port to listen on (0 picks a free port).
    #[arg(long, env = "A2A_PORT", default_value_t = defaults::PORT)]
    pub port: u16,

    /// URL advertised in the agent card (default: http://HOST:PORT/).
    #[arg(long, env = "A2A_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "ABACUS_MAX_BODY_BYTES", default_value_t = defaults::MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Deadline for receiving a whole request body, in ms (408 after it).
    #[arg(long, env = "ABACUS_BODY_TIMEOUT_MS", default_value_t = defaults::BODY_TIMEOUT_MS)]
    pub body_timeout_ms: u64,

    /// A connection with no request in progress (before its first byte
    /// too) is closed after this long, in ms.
    #[arg(long, env = "ABACUS_IDLE_TIMEOUT_MS", default_value_t = defaults::IDLE_TIMEOUT_MS)]
    pub idle_timeout_ms: u64,

    /// Most connections open at once; further clients wait to be accepted.
    #[arg(long, env = "ABACUS_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Seconds to let in-flight requests and streams finish on shutdown.
    #[arg(long, env = "ABACUS_SHUTDOWN_DRAIN_SECS", default_value_t = defaults::SHUTDOWN_DRAIN_SECS)]
    pub shutdown_drain_secs: f64,

    /// Worker threads of the runtime (default: one per core).
    #[arg(long, env = "ABACUS_WORKER_THREADS")]
    pub worker_threads: Option<usize>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "ABACUS_LOG_FORMAT", default_value = defaults::LOG_FORMAT)]
    pub log_format: String,

    /// Serve the browser playground at `GET /` (for `Accept: text/html`; JSON-RPC clients are unaffected): on by default, off when authentication is configured unless `true` is given
    #[arg(long, env = "ABACUS_PLAYGROUND", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub playground: Option<bool>,

    /// Task store: `auto` (PostgreSQL when DATABASE_URL is set, else
    /// SQLite), `sqlite`, `postgres` or `memory`.
    #[arg(long = "store", env = "ABACUS_STORE", default_value_t = defaults::STORE)]
    pub store_kind: StoreKind,

    /// Directory of the SQLite database file.
    #[arg(long, env = "ABACUS_DATA_DIR", default_value = defaults::DATA_DIR)]
    pub data_dir: PathBuf,

    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Tasks kept by the memory store.
    #[arg(long, env = "ABACUS_MEMORY_CAPACITY", default_value_t = defaults::MEMORY_CAPACITY)]
    pub memory_capacity: usize,

    /// Seconds the memory store keeps a finished task.
    #[arg(long, env = "ABACUS_MEMORY_TTL_SECS", default_value_t = defaults::MEMORY_TTL_SECS)]
    pub memory_ttl_secs: u64,

    /// SQLite commit durability: `normal` survives a killed process, `full`
    /// also an OS crash (one fsync per commit batch).
    #[arg(long, env = "ABACUS_SQLITE_SYNC", default_value_t = defaults::SQLITE_SYNC)]
    pub sqlite_sync: crate::store::SqliteSync,

    /// Serve `/metrics` and `/health/detailed` on this address (e.g. `127.0.0.1:9090`) instead of the API port; `/health` stays on both
    #[arg(long, env = "ABACUS_ADMIN_ADDR")]
    pub admin_addr: Option<std::net::SocketAddr>,

    /// Also serve `/metrics` on this port, a listener of its own (none by default).
    #[arg(long, env = "ABACUS_METRICS_PORT")]
    pub metrics_port: Option<u16>,

    /// Also serve the gRPC binding on this port of the same host, with the API port's TLS and authentication (the card's gRPC interface then names it); gRPC is served on the API port in any case
    #[arg(long, env = "ABACUS_GRPC_PORT")]
    pub grpc_port: Option<u16>,

    /// Readiness fails above this host CPU usage, in percent (0: only
    /// reported, as a warning above 90).
    #[arg(long, env = "ABACUS_HEALTH_CPU_MAX", default_value_t = defaults::HEALTH_CPU_MAX)]
    pub health_cpu_max: f32,

    /// Readiness fails above this host memory usage, in percent (0: only
    /// reported, as a warning above 90).
    #[arg(long, env = "ABACUS_HEALTH_MEMORY_MAX", default_value_t = defaults::HEALTH_MEMORY_MAX)]
    pub health_memory_max: f32,

    /// Readiness fails above this usage of the data directory's
    /// filesystem, in percent (0: only reported).
    #[arg(long, env = "ABACUS_HEALTH_DISK_MAX", default_value_t = defaults::HEALTH_DISK_MAX)]
    pub health_disk_max: f32,

    /// API keys: comma-separated `principal:key` pairs, or `@PATH` of a file with one pair per line; clients send `X-API-Key: KEY`
    #[arg(long, env = "ABACUS_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,

    /// Bearer tokens: comma-separated `principal:token` pairs, or `@PATH` of a file with one pair per line; clients send `Authorization: Bearer TOKEN`
    #[arg(long, env = "ABACUS_BEARER_TOKENS", hide_env_values = true)]
    pub bearer_tokens: Option<String>,

    /// Sign the agent card: comma-separated `KID=PATH` entries, each a PKCS#8 PEM private key (P-256 signs ES256, Ed25519 EdDSA); one signature per key
    #[arg(long, env = "ABACUS_CARD_SIGNING_KEY")]
    pub card_signing_key: Option<String>,

    /// TLS certificate chain (PEM) to serve HTTPS with; needs --tls-key; reloaded when the file changes
    #[arg(long, env = "ABACUS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert
    #[arg(long, env = "ABACUS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// CA bundle (PEM): clients may present a certificate signed by it, whose subject CN becomes the principal (mutual TLS)
    #[arg(long, env = "ABACUS_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,

    /// CA bundle (PEM) that outbound https servers are verified against instead of the system's trust store
    #[arg(long, env = "ABACUS_OUTBOUND_CA")]
    pub outbound_ca: Option<PathBuf>,

    /// JWTs: the JWK set that verifies them, a file path (re-read when it changes) or an `http(s)://` URL (cached, refreshed); clients send `Authorization: Bearer JWT`, the principal is its `sub`
    #[arg(long, env = "ABACUS_JWT_JWKS")]
    pub jwt_jwks: Option<String>,

    /// The `iss` every JWT must carry (with `--jwt-jwks`)
    #[arg(long, env = "ABACUS_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// An `aud` every JWT must carry (with `--jwt-jwks`)
    #[arg(long, env = "ABACUS_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// The tower stack.
    #[command(flatten)]
    pub stack: StackConfig,

    /// Push notifications.
    #[command(flatten)]
    pub push: PushConfig,

    /// Replicas: leases and the task event log.
    #[command(flatten)]
    pub replica: ReplicaConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: defaults::HOST.into(),
            port: defaults::PORT,
            public_url: None,
            max_body_bytes: defaults::MAX_BODY_BYTES,
            body_timeout_ms: defaults::BODY_TIMEOUT_MS,
            idle_timeout_ms: defaults::IDLE_TIMEOUT_MS,
            max_connections: defaults::MAX_CONNECTIONS,
            shutdown_drain_secs: defaults::SHUTDOWN_DRAIN_SECS,
            worker_threads: None,
            log_format: defaults::LOG_FORMAT.into(),
            playground: None,
            store_kind: defaults::STORE,
            data_dir: PathBuf::from(defaults::DATA_DIR),
            database_url: None,
            memory_capacity: defaults::MEMORY_CAPACITY,
            memory_ttl_secs: defaults::MEMORY_TTL_SECS,
            sqlite_sync: defaults::SQLITE_SYNC,
            admin_addr: None,
            metrics_port: None,
            grpc_port: None,
            health_cpu_max: defaults::HEALTH_CPU_MAX,
            health_memory_max: defaults::HEALTH_MEMORY_MAX,
            health_disk_max: defaults::HEALTH_DISK_MAX,
            api_keys: None,
            bearer_tokens: None,
            card_signing_key: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            outbound_ca: None,
            jwt_jwks: None,
            jwt_issuer: None,
            jwt_audience: None,
            stack: StackConfig::default(),
            push: PushConfig::default(),
            replica: ReplicaConfig::default(),
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
                let scheme = if self.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{host}:{}/", self.port)
            }
        }
    }

    /// The gRPC target the agent card names when `--grpc-port` is set: the
    /// public URL's host at that port (`host:port`, or `https://host:port`
    /// with TLS); `None` without the flag (gRPC is then named at the API
    /// port, see [`crate::card::interfaces`]).
    ///
    /// ```
    /// let mut config = abacus::config::Config::default();
    /// assert_eq!(config.grpc_url(), None);
    /// config.grpc_port = Some(50051);
    /// assert_eq!(config.grpc_url().as_deref(), Some("http://127.0.0.1:50051"));
    /// config.public_url = Some("https://agent.example/a2a/".into());
    /// assert_eq!(config.grpc_url().as_deref(), Some("https://agent.example:50051"));
    /// ```
    pub fn grpc_url(&self) -> Option<String> {
        let port = self.grpc_port?;
        let public = self.public_url();
        let uri: http::Uri = public.parse().ok()?;
        let scheme = uri.scheme_str().unwrap_or("http");
        Some(format!("{scheme}://{}:{port}", uri.host()?))
    }

    /// The listener's TLS files: `None` for plain HTTP; an error when only
    /// one of `--tls-cert` and `--tls-key` is given, or a client CA
    /// without them.
    ///
    /// ```
    /// let mut config = abacus::config::Config::default();
    /// assert_eq!(config.tls_files(), Ok(None));
    /// config.tls_cert = Some("tls.crt".into());
    /// assert!(config.tls_files().is_err());
    /// config.tls_key = Some("tls.key".into());
    /// assert!(config.tls_files().unwrap().is_some());
    /// assert!(config.public_url().starts_with("https://"));
    /// ```
    pub fn tls_files(&self) -> Result<Option<crate::http::tls::TlsFiles>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let files = crate::http::tls::TlsFiles::new(cert, key);
                Ok(Some(match &self.tls_client_ca {
                    Some(ca) => files.client_ca(ca),
                    None => files,
                }))
            }
            (None, None) if self.tls_client_ca.is_some() => {
                Err("--tls-client-ca needs --tls-cert and --tls-key".into())
            }
            (None, None) => Ok(None),
            (Some(_), None) => Err("--tls-cert needs --tls-key".into()),
            (None, Some(_)) => Err("--tls-key needs --tls-cert".into()),
        }
    }

    /// Whether the playground is served: as `--playground` says when
    /// given; unset, it is unless requests must authenticate
    /// (`credentials`): a page open to anyone is then a choice to make.
    ///
    /// ```
    /// use abacus::auth::Credentials;
    /// use abacus::http::Playground;
    /// let creds = Credentials::from_config(Some("alice:k1"), None).unwrap();
    /// let mut config = abacus::config::Config::default();
    /// assert_eq!(config.playground(None), Playground::Served);
    /// assert_eq!(config.playground(creds.as_ref()), Playground::Off);
    /// config.playground = Some(true);
    /// assert_eq!(config.playground(creds.as_ref()), Playground::Served);
    /// config.playground = Some(false);
    /// assert_eq!(config.playground(None), Playground::Off);
    /// ```
    pub fn playground(
        &self,
        credentials: Option<&crate::auth::Credentials>,
    ) -> crate::http::Playground {
        use crate::http::Playground;
        match (self.playground, credentials) {
            (Some(true), _) | (None, None) => Playground::Served,
            (Some(false), _) | (None, Some(_)) => Playground::Off,
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

    /// The store settings.
    pub fn store(&self) -> StoreConfig {
        StoreConfig {
            kind: self.store_kind,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            memory_capacity: self.memory_capacity,
            memory_ttl: Duration::from_secs(self.memory_ttl_secs),
            sqlite_sync: self.sqlite_sync,
        }
    }

    /// The shutdown drain deadline.
    pub fn drain(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_drain_secs.max(0.0))
    }

    /// The deadline for receiving a request body.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    /// The connection limits of the listener (its TLS, files to load, is
    /// [`Config::tls_files`]).
    pub fn serve_options(&self) -> crate::http::ServeOptions {
        crate::http::ServeOptions {
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            max_connections: self.max_connections,
            tls: None,
        }
    }
}

/// Knobs of the tower stack (see [`crate::stack`]).
///
/// ```
/// let s = abacus::config::StackConfig::default();
/// assert_eq!(s.request_timeout().as_secs(), 30);
/// assert!(s.cache);
/// ```
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Stack")]
pub struct StackConfig {
    /// Requests per client: a rate (`100/s`, `6000/min`, `10/h`), then optional `principal=RATE` overrides, comma-separated (`100/s,alice=1000/s`); a client is its principal, else its IP address (no limit when unset)
    #[arg(long, env = "ABACUS_RATE_LIMIT")]
    pub rate_limit: Option<RateLimitSpec>,
    /// Requests a client may send at once (default: one second of the rate, at least 1; a `principal=RATE` override always gets one second of its own rate)
    #[arg(long, env = "ABACUS_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,
    /// Most clients tracked by the rate limiter at once (idle ones are forgotten first, then those closest to idle)
    #[arg(long, env = "ABACUS_RATE_LIMIT_MAX_KEYS", default_value_t = defaults::RATE_LIMIT_MAX_KEYS)]
    pub rate_limit_max_keys: usize,
    /// Most requests (and open streams) in flight at once.
    #[arg(long, env = "ABACUS_CONCURRENCY_LIMIT", default_value_t = defaults::CONCURRENCY_LIMIT)]
    pub concurrency_limit: usize,
    /// Refuse requests beyond the limit at once (true) instead of queueing them.
    #[arg(long, env = "ABACUS_LOAD_SHED", default_value_t = defaults::LOAD_SHED, action = clap::ArgAction::Set)]
    pub load_shed: bool,
    /// Deadline of a request until its reply (or the start of its stream), in ms.
    #[arg(long, env = "ABACUS_REQUEST_TIMEOUT_MS", default_value_t = defaults::REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,
    /// Largest deadline a client may ask for with `X-Timeout-Ms`, in ms.
    #[arg(long, env = "ABACUS_MAX_CLIENT_TIMEOUT_MS", default_value_t = defaults::MAX_CLIENT_TIMEOUT_MS)]
    pub max_client_timeout_ms: u64,
    /// Time from request to the first event of a stream, in ms.
    #[arg(long, env = "ABACUS_STREAM_FIRST_EVENT_MS", default_value_t = defaults::STREAM_FIRST_EVENT_MS)]
    pub stream_first_event_ms: u64,
    /// Longest quiet gap between two events of a stream, in ms.
    #[arg(long, env = "ABACUS_STREAM_IDLE_MS", default_value_t = defaults::STREAM_IDLE_MS)]
    pub stream_idle_ms: u64,
    /// Cache direct replies to deterministic questions.
    #[arg(long, env = "ABACUS_CACHE", default_value_t = defaults::CACHE, action = clap::ArgAction::Set)]
    pub cache: bool,
    /// Entries kept by the response cache.
    #[arg(long, env = "ABACUS_CACHE_CAPACITY", default_value_t = defaults::CACHE_CAPACITY)]
    pub cache_capacity: u64,
    /// Lifetime of a cached reply, in seconds.
    #[arg(long, env = "ABACUS_CACHE_TTL_SECS", default_value_t = defaults::CACHE_TTL_SECS)]
    pub cache_ttl_secs: u64,
    /// Redis of the shared second cache tier (`redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`): a reply computed by one replica is a hit on the others; kept `--cache-ttl-secs` (in this process only when unset)
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of the cache's Redis keys: replicas with the same one share replies.
    #[arg(long, env = "ABACUS_CACHE_NAMESPACE", default_value = defaults::CACHE_NAMESPACE)]
    pub cache_namespace: String,
    /// Deadline of one Redis call, in ms (then the request goes on without Redis).
    #[arg(long, env = "ABACUS_REDIS_TIMEOUT_MS", default_value_t = defaults::REDIS_TIMEOUT_MS)]
    pub redis_timeout_ms: u64,
    /// Failure ratio (0..1) over the window that opens the core breaker.
    #[arg(long, env = "ABACUS_BREAKER_FAILURE_RATE", default_value_t = defaults::BREAKER_FAILURE_RATE)]
    pub breaker_failure_rate: f64,
    /// Calls in the window before the failure ratio counts.
    #[arg(long, env = "ABACUS_BREAKER_MIN_CALLS", default_value_t = defaults::BREAKER_MIN_CALLS)]
    pub breaker_min_calls: u64,
    /// Length of the breaker's sliding window, in seconds.
    #[arg(long, env = "ABACUS_BREAKER_WINDOW_SECS", default_value_t = defaults::BREAKER_WINDOW_SECS)]
    pub breaker_window_secs: u64,
    /// How long the breaker stays open before probing, in seconds.
    #[arg(long, env = "ABACUS_BREAKER_OPEN_SECS", default_value_t = defaults::BREAKER_OPEN_SECS)]
    pub breaker_open_secs: u64,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            rate_limit: None,
            rate_limit_burst: None,
            rate_limit_max_keys: defaults::RATE_LIMIT_MAX_KEYS,
            concurrency_limit: defaults::CONCURRENCY_LIMIT,
            load_shed: defaults::LOAD_SHED,
            request_timeout_ms: defaults::REQUEST_TIMEOUT_MS,
            max_client_timeout_ms: defaults::MAX_CLIENT_TIMEOUT_MS,
            stream_first_event_ms: defaults::STREAM_FIRST_EVENT_MS,
            stream_idle_ms: defaults::STREAM_IDLE_MS,
            cache: defaults::CACHE,
            cache_capacity: defaults::CACHE_CAPACITY,
            cache_ttl_secs: defaults::CACHE_TTL_SECS,
            redis_url: None,
            cache_namespace: defaults::CACHE_NAMESPACE.to_string(),
            redis_timeout_ms: defaults::REDIS_TIMEOUT_MS,
            breaker_failure_rate: defaults::BREAKER_FAILURE_RATE,
            breaker_min_calls: defaults::BREAKER_MIN_CALLS,
            breaker_window_secs: defaults::BREAKER_WINDOW_SECS,
            breaker_open_secs: defaults::BREAKER_OPEN_SECS,
        }
    }
}

impl StackConfig {
    /// The default request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    /// The cap on client-requested deadlines.
    pub fn max_client_timeout(&self) -> Duration {
        Duration::from_millis(self.max_client_timeout_ms)
    }
    /// Time to the first event of a stream.
    pub fn stream_first_event_timeout(&self) -> Duration {
        Duration::from_millis(self.stream_first_event_ms)
    }
    /// Quiet gap allowed inside a stream.
    pub fn stream_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.stream_idle_ms)
    }
    /// Lifetime of a cached reply.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_secs)
    }
    /// Deadline of one Redis call.
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }
}

/// Push notifications: whether they are served, which receivers may be
/// targeted, how long delivery is tried (see [`crate::push`]).
///
/// ```
/// use clap::Parser;
/// #[derive(Parser)]
/// struct Cli { #[command(flatten)] push: abacus::config::PushConfig }
/// let cli = Cli::parse_from(["abacus", "--push-allow", "127.0.0.1/32,hooks.internal", "--push-allow-http"]);
/// let settings = cli.push.settings(None);
/// assert_eq!(settings.allow, ["127.0.0.1/32", "hooks.internal"]);
/// assert_eq!(settings.allow_http, abacus::push::guard::AllowHttp::Yes);
/// assert!(cli.push.push);
/// ```
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Push notifications")]
pub struct PushConfig {
    /// Serve the push-notification config methods and deliver task events to webhooks (`false`: the card declares no push support and the methods answer PushNotificationNotSupported)
    #[arg(long = "push", env = "ABACUS_PUSH", default_value_t = defaults::PUSH, action = clap::ArgAction::Set)]
    pub push: bool,
    /// Comma-separated CIDRs or host names that webhooks may target although private or loopback (e.g. `127.0.0.1/32`)
    #[arg(long, env = "ABACUS_PUSH_ALLOW", value_delimiter = ',')]
    pub push_allow: Vec<String>,
    /// Also accept `http://` webhook URLs (development; the default is https only)
    #[arg(long, env = "ABACUS_PUSH_ALLOW_HTTP")]
    pub push_allow_http: bool,
    /// How long a notification is retried before it is given up (dead), in seconds from its event
    #[arg(long, env = "ABACUS_PUSH_DEADLINE_SECS", default_value_t = defaults::PUSH_DEADLINE_SECS)]
    pub push_deadline_secs: u64,
    /// Deadline of one delivery attempt (connect, send, answer), in ms
    #[arg(long, env = "ABACUS_PUSH_ATTEMPT_TIMEOUT_MS", default_value_t = defaults::PUSH_ATTEMPT_TIMEOUT_MS)]
    pub push_attempt_timeout_ms: u64,
    /// Delivery attempts in flight per receiver host at most
    #[arg(long, env = "ABACUS_PUSH_HOST_CONCURRENCY", default_value_t = defaults::PUSH_HOST_CONCURRENCY)]
    pub push_host_concurrency: usize,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            push: defaults::PUSH,
            push_allow: Vec::new(),
            push_allow_http: false,
            push_deadline_secs: defaults::PUSH_DEADLINE_SECS,
            push_attempt_timeout_ms: defaults::PUSH_ATTEMPT_TIMEOUT_MS,
            push_host_concurrency: defaults::PUSH_HOST_CONCURRENCY,
        }
    }
}

impl PushConfig {
    /// The delivery settings; `https://` receivers are verified against
    /// `ca` (`--outbound-ca`) or the system's trust store.
    pub fn settings(&self, ca: Option<&std::path::Path>) -> crate::push::PushSettings {
        use crate::push::guard::AllowHttp;
        let mut settings = crate::push::PushSettings {
            allow: self
                .push_allow
                .iter()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect(),
            allow_http: if self.push_allow_http {
                AllowHttp::Yes
            } else {
                AllowHttp::No
            },
            deadline: Duration::from_secs(self.push_deadline_secs.max(1)),
            ca: ca.map(std::path::Path::to_path_buf),
            ..crate::push::PushSettings::default()
        };
        settings.delivery.attempt_timeout =
            Duration::from_millis(self.push_attempt_timeout_ms.max(1));
        settings.delivery.host_concurrency = self.push_host_concurrency.max(1);
        settings
    }
}

/// What makes several replicas act as one server: the name each holds its
/// task leases under, how long a lease lasts, and how long the task event
/// log (the replay of `Last-Event-ID`) is kept.
///
/// ```
/// use clap::Parser;
/// #[derive(Parser)]
/// struct Cli { #[command(flatten)] replica: abacus::config::ReplicaConfig }
/// let cli = Cli::parse_from(["abacus", "--replica-id", "a", "--lease-secs", "5"]);
/// assert_eq!(cli.replica.replica_id(), "a");
/// assert_eq!(cli.replica.lease(), std::time::Duration::from_secs(5));
/// let default = Cli::parse_from(["abacus"]).replica;
/// assert!(default.replica_id().ends_with(&format!("-{}", std::process::id())));
/// ```
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Replicas")]
pub struct ReplicaConfig {
    /// Name of this replica in task leases and logs (default: host name and process id, `host-1234`)
    #[arg(long, env = "ABACUS_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// How long a replica's hold on a running task lasts unrenewed; a task whose replica died is ended by another within about this time
    #[arg(long, env = "ABACUS_LEASE_SECS", default_value_t = defaults::LEASE_SECS)]
    pub lease_secs: u64,
    /// How long each task event is kept for replay to reconnecting subscribers (`Last-Event-ID`), in seconds
    #[arg(long, env = "ABACUS_EVENT_LOG_RETENTION_SECS", default_value_t = defaults::EVENT_LOG_RETENTION_SECS)]
    pub event_log_retention_secs: u64,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            replica_id: None,
            lease_secs: defaults::LEASE_SECS,
            event_log_retention_secs: defaults::EVENT_LOG_RETENTION_SECS,
        }
    }
}

impl ReplicaConfig {
    /// `--replica-id`, or the host name and process id.
    pub fn replica_id(&self) -> String {
        match self.replica_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .or_else(|| std::env::var("HOSTNAME").ok())
                    .unwrap_or_else(|| "abacus".to_string());
                format!("{host}-{}", std::process::id())
            }
        }
    }

    /// `--lease-secs`, at least one second.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs.max(1))
    }

    /// `--event-log-retention-secs`, at least one second.
    pub fn event_log_retention(&self) -> Duration {
        Duration::from_secs(self.event_log_retention_secs.max(1))
    }
}

/// A request rate: `count` requests per `per` (`100/s`, `6000/min`, `10/h`).
///
/// ```
/// use abacus::config::Rate;
/// use std::time::Duration;
/// let r: Rate = "6000/min".parse().unwrap();
/// assert_eq!((r.count, r.per), (6000, Duration::from_secs(60)));
/// assert_eq!(r.one_second(), 100);
/// assert_eq!("10/h".parse::<Rate>().unwrap().one_second(), 1);
/// assert!("0/s".parse::<Rate>().is_err() && "5/day".parse::<Rate>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in each period.
    pub count: u32,
    /// The period: a second, a minute or an hour.
    pub per: Duration,
}

impl Rate {
    /// Requests in one second at this rate, rounded down, at least 1: the
    /// default burst.
    pub fn one_second(&self) -> u32 {
        let per_second = u128::from(self.count) * 1_000_000_000 / self.per.as_nanos().max(1);
        u32::try_from(per_second).unwrap_or(u32::MAX).max(1)
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("{s:?} is not a rate: write COUNT/s, COUNT/min or COUNT/h (e.g. 100/s)");
        let (count, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(format!("{s:?}: the rate must be at least 1"));
        }
        Ok(Rate { count, per })
    }
}

/// `--rate-limit`: the rate of every client, then the principals with a
/// rate of their own (`100/s,alice=1000/s,batch=6000/min`).
///
/// ```
/// use abacus::config::RateLimitSpec;
/// let spec: RateLimitSpec = "100/s, alice=1000/s".parse().unwrap();
/// assert_eq!(spec.default.count, 100);
/// assert_eq!(spec.overrides[0].0, "alice");
/// assert!("alice=5/s".parse::<RateLimitSpec>().is_err(), "the default comes first");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSpec {
    /// The rate of every client without an override.
    pub default: Rate,
    /// `principal=RATE` pairs, in the order given.
    pub overrides: Vec<(String, Rate)>,
}

impl std::str::FromStr for RateLimitSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut items = s.split(',').map(str::trim).filter(|i| !i.is_empty());
        let first = items
            .next()
            .ok_or("empty: write a rate such as 100/s, then optional principal=RATE overrides")?;
        if first.contains('=') {
            return Err(format!(
                "{first:?}: the first item is the rate of every client (e.g. 100/s), then principal=RATE overrides"
            ));
        }
        let default = first.parse()?;
        let mut overrides: Vec<(String, Rate)> = Vec::new();
        for item in items {
            let (name, rate) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: after the first rate, write principal=RATE"))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("{item:?}: no principal before '='"));
            }
            if overrides.iter().any(|(n, _)| n == name) {
                return Err(format!("{name:?} has two rates"));
            }
            overrides.push((name.to_string(), rate.parse()?));
        }
        Ok(RateLimitSpec { default, overrides })
    }
}

/// Limits of the math agent (see [`crate::math::Limits`]).
///
/// ```
/// use clap::Parser;
/// #[derive(Parser)]
/// struct Cli { #[command(flatten)] math: abacus::config::MathConfig }
/// let cli = Cli::parse_from(["abacus", "--max-sequence-n", "500"]);
/// assert_eq!(cli.math.limits().max_sequence_n, 500);
/// ```
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Math limits")]
pub struct MathConfig {
    /// Longest accepted question, in bytes.
    #[arg(long, env = "ABACUS_MAX_EXPRESSION_LEN", default_value_t = defaults::MAX_EXPRESSION_LEN)]
    pub max_expression_len: usize,
    /// Deepest nesting of parentheses and functions.
    #[arg(long, env = "ABACUS_MAX_DEPTH", default_value_t = defaults::MAX_DEPTH)]
    pub max_depth: usize,
    /// Largest N for fibonacci and factorial, and longest series.
    #[arg(long, env = "ABACUS_MAX_SEQUENCE_N", default_value_t = defaults::MAX_SEQUENCE_N)]
    pub max_sequence_n: u64,
    /// Most decimal digits of any integer result.
    #[arg(long, env = "ABACUS_MAX_RESULT_DIGITS", default_value_t = defaults::MAX_RESULT_DIGITS)]
    pub max_result_digits: usize,
    /// Most digits of a number to factor or test for primality.
    #[arg(long, env = "ABACUS_MAX_FACTOR_DIGITS", default_value_t = defaults::MAX_FACTOR_DIGITS)]
    pub max_factor_digits: usize,
    /// CPU time allowed per question, in milliseconds.
    #[arg(long, env = "ABACUS_CPU_TIME_MS", default_value_t = defaults::CPU_TIME_MS)]
    pub cpu_time_ms: u64,

    /// Questions computed at once on worker threads (default: one per core).
    #[arg(long, env = "ABACUS_CPU_WORKERS")]
    pub cpu_workers: Option<usize>,

    /// CPU-heavy questions waiting for a worker; more are refused (-32061).
    #[arg(long, env = "ABACUS_CPU_QUEUE", default_value_t = defaults::CPU_QUEUE)]
    pub cpu_queue: usize,

    /// Base URL of a mathjs-style service (`GET <url>?expr=`).
    #[arg(long, env = "ABACUS_MATHJS_URL")]
    pub mathjs_url: Option<String>,

    /// Base URL of a Wolfram|Alpha-style short-answer service (`GET <url>?appid=&i=`).
    #[arg(long, env = "ABACUS_WOLFRAM_URL")]
    pub wolfram_url: Option<String>,

    /// App id for the Wolfram-style service (a secret: never logged).
    #[arg(long, env = "ABACUS_WOLFRAM_APPID", hide_env_values = true)]
    pub wolfram_appid: Option<String>,

    /// Timeout of one attempt at an external service, in milliseconds.
    #[arg(long, env = "ABACUS_EXTERNAL_TIMEOUT_MS", default_value_t = defaults::EXTERNAL_TIMEOUT_MS)]
    pub external_timeout_ms: u64,

    /// Deadline for an external answer, retries included, in milliseconds.
    #[arg(long, env = "ABACUS_EXTERNAL_DEADLINE_MS", default_value_t = defaults::EXTERNAL_DEADLINE_MS)]
    pub external_deadline_ms: u64,

    /// Consecutive failures that open an external service's breaker (0: never).
    #[arg(long, env = "ABACUS_EXTERNAL_BREAKER_FAILURES", default_value_t = defaults::EXTERNAL_BREAKER_FAILURES)]
    pub external_breaker_failures: u64,

    /// Failure ratio (0..1) over the window that also opens it (above 1: never).
    #[arg(long, env = "ABACUS_EXTERNAL_BREAKER_FAILURE_RATE", default_value_t = defaults::EXTERNAL_BREAKER_FAILURE_RATE)]
    pub external_breaker_failure_rate: f64,

    /// Calls in the window before that ratio counts.
    #[arg(long, env = "ABACUS_EXTERNAL_BREAKER_MIN_CALLS", default_value_t = defaults::EXTERNAL_BREAKER_MIN_CALLS)]
    pub external_breaker_min_calls: u64,

    /// Length of the external breakers' sliding window, in seconds.
    #[arg(long, env = "ABACUS_EXTERNAL_BREAKER_WINDOW_SECS", default_value_t = defaults::EXTERNAL_BREAKER_WINDOW_SECS)]
    pub external_breaker_window_secs: u64,

    /// How long an external breaker stays open before probing, in seconds.
    #[arg(long, env = "ABACUS_EXTERNAL_BREAKER_OPEN_SECS", default_value_t = defaults::EXTERNAL_BREAKER_OPEN_SECS)]
    pub external_breaker_open_secs: u64,

    /// Query-history rows kept (older rows are pruned).
    #[arg(long, env = "ABACUS_HISTORY_RETENTION", default_value_t = defaults::HISTORY_RETENTION)]
    pub history_retention: usize,

    /// Base URL of an OpenAI-compatible chat-completions API; sets the LLM path on.
    #[arg(long, env = "LLM_BASE_URL")]
    pub llm_base_url: Option<String>,

    /// Name of the LLM provider (the `provider` label of the metrics).
    #[arg(long, env = "LLM_PROVIDER", default_value = "openai")]
    pub llm_provider: String,

    /// Model asked for (required with --llm-base-url).
    #[arg(long, env = "LLM_MODEL")]
    pub llm_model: Option<String>,

    /// API key of the LLM provider (a secret: never logged).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,

    /// File holding the LLM provider's API key (instead of --llm-api-key).
    #[arg(long, env = "LLM_API_KEY_FILE")]
    pub llm_api_key_file: Option<std::path::PathBuf>,

    /// One LLM attempt: the whole answer, or a stream's first token and each gap, in seconds.
    #[arg(long, env = "ABACUS_LLM_TIMEOUT_SECS", default_value_t = defaults::LLM_TIMEOUT_SECS)]
    pub llm_timeout_secs: u64,

    /// A whole LLM call, retries and a streamed answer included, in seconds.
    #[arg(long, env = "ABACUS_LLM_DEADLINE_SECS", default_value_t = defaults::LLM_DEADLINE_SECS)]
    pub llm_deadline_secs: u64,

    /// Consecutive failures that open the LLM's breaker.
    #[arg(long, env = "ABACUS_LLM_BREAKER_FAILURES", default_value_t = defaults::LLM_BREAKER_FAILURES)]
    pub llm_breaker_failures: u32,

    /// How long the LLM's breaker stays open before probing, in seconds.
    #[arg(long, env = "ABACUS_LLM_BREAKER_OPEN_SECS", default_value_t = defaults::LLM_BREAKER_OPEN_SECS)]
    pub llm_breaker_open_secs: u64,

    /// LLM calls in flight at once; more wait.
    #[arg(long, env = "ABACUS_LLM_MAX_CONCURRENCY", default_value_t = defaults::LLM_MAX_CONCURRENCY)]
    pub llm_max_concurrency: usize,
}

impl Default for MathConfig {
    fn default() -> Self {
        MathConfig {
            max_expression_len: defaults::MAX_EXPRESSION_LEN,
            max_depth: defaults::MAX_DEPTH,
            max_sequence_n: defaults::MAX_SEQUENCE_N,
            max_result_digits: defaults::MAX_RESULT_DIGITS,
            max_factor_digits: defaults::MAX_FACTOR_DIGITS,
            cpu_time_ms: defaults::CPU_TIME_MS,
            cpu_workers: None,
            cpu_queue: defaults::CPU_QUEUE,
            mathjs_url: None,
            wolfram_url: None,
            wolfram_appid: None,
            external_timeout_ms: defaults::EXTERNAL_TIMEOUT_MS,
            external_deadline_ms: defaults::EXTERNAL_DEADLINE_MS,
            external_breaker_failures: defaults::EXTERNAL_BREAKER_FAILURES,
            external_breaker_failure_rate: defaults::EXTERNAL_BREAKER_FAILURE_RATE,
            external_breaker_min_calls: defaults::EXTERNAL_BREAKER_MIN_CALLS,
            external_breaker_window_secs: defaults::EXTERNAL_BREAKER_WINDOW_SECS,
            external_breaker_open_secs: defaults::EXTERNAL_BREAKER_OPEN_SECS,
            history_retention: defaults::HISTORY_RETENTION,
            llm_base_url: None,
            llm_provider: "openai".into(),
            llm_model: None,
            llm_api_key: None,
            llm_api_key_file: None,
            llm_timeout_secs: defaults::LLM_TIMEOUT_SECS,
            llm_deadline_secs: defaults::LLM_DEADLINE_SECS,
            llm_breaker_failures: defaults::LLM_BREAKER_FAILURES,
            llm_breaker_open_secs: defaults::LLM_BREAKER_OPEN_SECS,
            llm_max_concurrency: defaults::LLM_MAX_CONCURRENCY,
        }
    }
}

impl MathConfig {
    /// The external services' settings.
    pub fn external(&self) -> crate::external::ExternalConfig {
        crate::external::ExternalConfig {
            mathjs_url: self.mathjs_url.clone(),
            wolfram_url: self.wolfram_url.clone(),
            wolfram_appid: self.wolfram_appid.clone(),
            timeout: Duration::from_millis(self.external_timeout_ms),
            deadline: Duration::from_millis(self.external_deadline_ms),
            breaker_failures: self.external_breaker_failures,
            breaker_failure_rate: self.external_breaker_failure_rate,
            breaker_min_calls: self.external_breaker_min_calls,
            // As the core breaker's: at least a second.
            breaker_window: Duration::from_secs(self.external_breaker_window_secs.max(1)),
            breaker_open: Duration::from_secs(self.external_breaker_open_secs.max(1)),
            ..Default::default()
        }
    }

    /// The LLM client's settings; the key read from `--llm-api-key-file`
    /// when no key is given (an unreadable file is an error).
    pub fn llm(&self) -> Result<crate::llm::LlmConfig, String> {
        let api_key = match (&self.llm_api_key, &self.llm_api_key_file) {
            (Some(key), _) => Some(key.clone()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map(|k| k.trim().to_string())
                    .map_err(|e| format!("cannot read LLM_API_KEY_FILE {}: {e}", path.display()))?,
            ),
            (None, None) => None,
        };
        Ok(crate::llm::LlmConfig {
            provider: self.llm_provider.clone(),
            base_url: self.llm_base_url.clone(),
            model: self.llm_model.clone(),
            api_key,
            timeout: Duration::from_secs(self.llm_timeout_secs.max(1)),
            deadline: Duration::from_secs(self.llm_deadline_secs.max(1)),
            breaker_failures: self.llm_breaker_failures,
            breaker_open: Duration::from_secs(self.llm_breaker_open_secs.max(1)),
            max_concurrency: self.llm_max_concurrency.max(1),
            ..Default::default()
        })
    }

    /// The query history's settings.
    pub fn history(&self) -> crate::math::history::HistoryOptions {
        crate::math::history::HistoryOptions {
            retention: self.history_retention,
            ..Default::default()
        }
    }

    /// The pool CPU-heavy questions run on.
    pub fn cpu_pool(&self) -> crate::cpu::CpuPool {
        match self.cpu_workers {
            Some(n) => crate::cpu::CpuPool::new(n, self.cpu_queue),
            None => crate::cpu::CpuPool::per_core(self.cpu_queue),
        }
    }

    /// The engine limits.
    pub fn limits(&self) -> crate::math::Limits {
        crate::math::Limits {
            max_input_len: self.max_expression_len,
            max_depth: self.max_depth,
            max_sequence_n: self.max_sequence_n,
            max_result_digits: self.max_result_digits,
            max_factor_digits: self.max_factor_digits,
            cpu_time: Duration::from_millis(self.cpu_time_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
        #[command(flatten)]
        math: MathConfig,
    }

    /// Clap's defaults and the `Default` impls agree (both read [`defaults`]).
    #[test]
    fn parsed_defaults_equal_default() {
        // Without the environment: CI sets DATABASE_URL.
        let cmd = Cli::command().mut_args(|a| a.env(None));
        let cli = Cli::from_arg_matches(&cmd.get_matches_from(["abacus"])).unwrap();
        assert_eq!(
            format!("{:?}", cli.config),
            format!("{:?}", Config::default())
        );
        assert_eq!(
            format!("{:?}", cli.math),
            format!("{:?}", MathConfig::default())
        );
    }

    /// The math defaults are the engine's and the external client's own.
    #[test]
    fn math_defaults_equal_the_libraries_defaults() {
        let math = MathConfig::default();
        assert_eq!(math.limits(), crate::math::Limits::default());
        let (ours, theirs) = (math.external(), crate::external::ExternalConfig::default());
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
    }

    /// `--rate-limit` and its burst: parsed at start-up, clear errors.
    #[test]
    fn rate_limit_flags_parse_rates_overrides_and_the_burst() {
        let cli = Cli::parse_from([
            "abacus",
            "--rate-limit",
            "6000/min, alice=1000/s ,bob=10/h",
            "--rate-limit-burst",
            "7",
        ]);
        let spec = cli.config.stack.rate_limit.unwrap();
        assert_eq!(
            spec.default,
            Rate {
                count: 6000,
                per: Duration::from_secs(60)
            }
        );
        let names: Vec<_> = spec
            .overrides
            .iter()
            .map(|(n, r)| (n.as_str(), r.count))
            .collect();
        assert_eq!(names, [("alice", 1000), ("bob", 10)]);
        assert_eq!(cli.config.stack.rate_limit_burst, Some(7));
        assert_eq!(
            cli.config.stack.rate_limit_max_keys,
            defaults::RATE_LIMIT_MAX_KEYS
        );
        // One second's worth, at least 1.
        assert_eq!(spec.default.one_second(), 100);
        assert_eq!(spec.overrides[1].1.one_second(), 1);
        assert_eq!("3/s".parse::<Rate>().unwrap().one_second(), 3);
        for bad in [
            "",
            "100",
            "100/s/x",
            "x/s",
            "-1/s",
            "0/min",
            "5/m",
            "5/day",
            "alice=5/s",
            "5/s,alice",
            "5/s,=5/s",
            "5/s,a=1/s,a=2/s",
            "5/s,a=0/s",
        ] {
            let parsed = Cli::try_parse_from(["abacus", "--rate-limit", bad]);
            assert!(parsed.is_err(), "{bad:?} was accepted");
        }
        let e = "5/s,alice".parse::<RateLimitSpec>().unwrap_err();
        assert!(e.contains("principal=RATE"), "{e}");
        assert!(Cli::parse_from(["abacus"])
            .config
            .stack
            .rate_limit
            .is_none());
    }

    /// The external breaker's flags reach `ExternalConfig`.
    #[test]
    fn external_breaker_flags_reach_the_external_config() {
        let cli = Cli::parse_from([
            "abacus",
            "--external-breaker-failures",
            "2",
            "--external-breaker-failure-rate",
            "0.25",
            "--external-breaker-min-calls",
            "7",
            "--external-breaker-window-secs",
            "12",
            "--external-breaker-open-secs",
            "3",
        ]);
        let ext = cli.math.external();
        assert_eq!(ext.breaker_failures, 2);
        assert_eq!(ext.breaker_failure_rate, 0.25);
        assert_eq!(ext.breaker_min_calls, 7);
        assert_eq!(ext.breaker_window, Duration::from_secs(12));
        assert_eq!(ext.breaker_open, Duration::from_secs(3));
        // 0 s would mean never open (or no window): at least a second.
        let cli = Cli::parse_from(["abacus", "--external-breaker-open-secs", "0"]);
        assert_eq!(cli.math.external().breaker_open, Duration::from_secs(1));
    }
}
