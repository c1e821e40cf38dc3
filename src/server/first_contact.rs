//! The start-up line: where to go first (the playground, a first question
//! from the command line), and which store, cache and limits are on.

use crate::auth::Credentials;
use crate::config::{Config, StackConfig};
use crate::http::Playground;
use crate::store::Backend;

/// The URL `abacus send` talks to without `--url`.
const CLIENT_DEFAULT_URL: &str = "http://127.0.0.1:8002/";

/// Whose stack serves the requests: the cache and limits are ours only in
/// the default one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StackChoice {
    /// [`crate::stack::A2ALayers::default_stack`].
    Default,
    /// One built by [`crate::Server::stack`].
    Custom,
}

/// What the line says, gathered while the server starts.
pub(super) struct FirstContact<'a> {
    /// The address listened on.
    pub addr: std::net::SocketAddr,
    /// The public URL.
    pub url: &'a str,
    /// Whether the page is served.
    pub playground: Playground,
    /// The self-test question, a question the agent surely answers.
    pub question: Option<&'a str>,
    /// The authentication configured.
    pub credentials: Option<&'a Credentials>,
    /// The store, from [`store`].
    pub store: &'a str,
    /// The stack serving the requests.
    pub stack: StackChoice,
}

impl FirstContact<'_> {
    /// The line: `serving A2A on ADDR — open URL or try: abacus send "2 + 2";
    /// store: …; cache: …; limits: …`.
    pub(super) fn line(&self, config: &Config) -> String {
        let (cache, limits) = match self.stack {
            StackChoice::Default => (cache(&config.stack), limits(config)),
            StackChoice::Custom => (
                "as the custom stack has it".into(),
                "as the custom stack has them".into(),
            ),
        };
        format!(
            "serving A2A on {} — {}; store: {}; cache: {cache}; limits: {limits}",
            self.addr,
            self.hint(),
            self.store
        )
    }

    /// `open URL or try: abacus send "2 + 2"`, the URL and credential flags
    /// included when the client needs them.
    fn hint(&self) -> String {
        let mut send = String::from("abacus send");
        if self.url != CLIENT_DEFAULT_URL {
            send.push_str(" --url ");
            send.push_str(&shell_quote(self.url));
        }
        match self.credentials {
            Some(c) if c.has_api_keys() => send.push_str(" --api-key KEY"),
            Some(_) => send.push_str(" --bearer-token TOKEN"),
            None => {}
        }
        match self.question {
            Some(q) => {
                send.push(' ');
                send.push_str(&shell_quote(q));
            }
            None => send = send.replacen("abacus send", "abacus card", 1),
        }
        match self.playground {
            Playground::Served => format!("open {} or try: {send}", self.url),
            Playground::Off => format!("try: {send}"),
        }
    }
}

/// The store, without secrets: `SQLite ./data/abacus.db`,
/// `PostgreSQL db.internal:5432/abacus`, `memory (…)`.
pub(super) fn store(backend: &Backend, config: &Config) -> String {
    match backend {
        Backend::Sqlite(db) => format!("SQLite {}", db.path().display()),
        Backend::Postgres(_) => match config.database_url.as_deref().and_then(postgres_target) {
            Some(target) => format!("PostgreSQL {target}"),
            None => "PostgreSQL".into(),
        },
        Backend::Memory => format!(
            "memory ({} tasks at most, finished ones kept {})",
            config.memory_capacity,
            seconds(config.memory_ttl_secs)
        ),
    }
}

/// `host[:port]/database` of a PostgreSQL URL, never its user or password.
fn postgres_target(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority.rsplit('@').next().unwrap_or_default();
    (!host.is_empty()).then(|| format!("{host}/{database}"))
}

/// The response cache: in-process (moka), and the Redis tier when set.
fn cache(stack: &StackConfig) -> String {
    if !stack.cache {
        return "off".into();
    }
    let mut line = format!(
        "in-process ({} entries, {})",
        stack.cache_capacity,
        seconds(stack.cache_ttl_secs)
    );
    if let Some(url) = &stack.redis_url {
        let host = url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|a| a.rsplit('@').next())
            .unwrap_or("?");
        line.push_str(&format!(
            " + Redis {host} (namespace {})",
            stack.cache_namespace
        ));
    }
    line
}

/// The request limits of the default stack and the edge.
fn limits(config: &Config) -> String {
    let stack = &config.stack;
    let beyond = if stack.load_shed {
        "more refused"
    } else {
        "more queued"
    };
    let rate = match &stack.rate_limit {
        Some(spec) => {
            let r = spec.default;
            let unit = match r.per.as_secs() {
                1 => "s",
                60 => "min",
                _ => "h",
            };
            match spec.overrides.len() {
                0 => format!("{}/{unit} per client", r.count),
                n => format!("{}/{unit} per client ({n} overrides)", r.count),
            }
        }
        None => "no rate limit".into(),
    };
    format!(
        "{} requests in flight ({beyond}), {} a request, {rate}, bodies up to {} bytes",
        stack.concurrency_limit,
        millis(stack.request_timeout_ms),
        config.max_body_bytes
    )
}

fn seconds(secs: u64) -> String {
    format!("{secs} s")
}

fn millis(ms: u64) -> String {
    if ms % 1000 == 0 {
        seconds(ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

/// `text` as one shell word: in double quotes when nothing in it means
/// anything there, else in single quotes.
fn shell_quote(text: &str) -> String {
    if !text.contains(['"', '$', '`', '\\', '!']) {
        return format!("\"{text}\"");
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(url: &str, playground: Playground) -> FirstContact<'_> {
        FirstContact {
            addr: ([127, 0, 0, 1], 8002).into(),
            url,
            playground,
            question: Some("2 + 2"),
            credentials: None,
            store: "SQLite ./data/abacus.db",
            stack: StackChoice::Default,
        }
    }

    #[test]
    fn the_line_says_where_to_go_and_what_is_on() {
        let config = Config::default();
        let line = contact(CLIENT_DEFAULT_URL, Playground::Served).line(&config);
        assert_eq!(
            line,
            "serving A2A on 127.0.0.1:8002 — open http://127.0.0.1:8002/ or try: \
             abacus send \"2 + 2\"; store: SQLite ./data/abacus.db; cache: in-process \
             (10000 entries, 3600 s); limits: 1024 requests in flight (more refused), 30 s a \
             request, no rate limit, bodies up to 1048576 bytes"
        );
        let off = contact("http://127.0.0.1:9000/", Playground::Off).hint();
        assert_eq!(
            off,
            "try: abacus send --url \"http://127.0.0.1:9000/\" \"2 + 2\""
        );
        let creds = Credentials::from_config(Some("a:k"), None).unwrap();
        let with_key = FirstContact {
            credentials: creds.as_ref(),
            question: None,
            ..contact(CLIENT_DEFAULT_URL, Playground::Off)
        };
        assert_eq!(with_key.hint(), "try: abacus card --api-key KEY");
    }

    #[test]
    fn no_secret_reaches_the_line() {
        assert_eq!(
            postgres_target("postgres://u:secret@db.internal:5432/abacus?sslmode=require")
                .as_deref(),
            Some("db.internal:5432/abacus")
        );
        assert_eq!(postgres_target("host=db user=u"), None);
        let mut stack = StackConfig {
            redis_url: Some("redis://:pw@cache:6379/0".into()),
            ..StackConfig::default()
        };
        assert!(
            cache(&stack).ends_with("+ Redis cache:6379 (namespace abacus)"),
            "{}",
            cache(&stack)
        );
        stack.cache = false;
        assert_eq!(cache(&stack), "off");
    }

    #[test]
    fn questions_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("2 + 2"), "\"2 + 2\"");
        assert_eq!(shell_quote("it's $5"), r"'it'\''s $5'");
    }
}
