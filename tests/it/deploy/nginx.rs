//! deploy/nginx/nginx.conf, the compose load balancer, parsed simply into
//! directives (name, arguments, block), and what it must say about the
//! abacus replicas behind it.

use std::collections::{BTreeMap, BTreeSet};

/// The file docker-compose.yml mounts into the nginx service.
pub(super) const NGINX_CONF: &str = "deploy/nginx/nginx.conf";
/// How long an SSE stream may stay quiet through the proxy, at least.
const STREAM_READ_SECS: f64 = 3600.0;

/// One directive: `name args...;` or `name args... { block }`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Directive {
    pub(super) name: String,
    pub(super) args: Vec<String>,
    pub(super) block: Option<Vec<Directive>>,
}

impl Directive {
    fn children(&self) -> &[Directive] {
        self.block.as_deref().unwrap_or(&[])
    }

    fn arg(&self, i: usize) -> &str {
        self.args.get(i).map_or("", String::as_str)
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Open,
    Close,
    End,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => while chars.next_if(|&c| c != '\n').is_some() {},
            c if c.is_whitespace() => {}
            '{' => out.push(Token::Open),
            '}' => out.push(Token::Close),
            ';' => out.push(Token::End),
            '\'' | '"' => {
                let mut word = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => word.extend(chars.next()),
                        Some(q) if q == c => break,
                        Some(x) => word.push(x),
                        None => return Err(format!("unterminated quote {c}")),
                    }
                }
                out.push(Token::Word(word));
            }
            _ => {
                let mut word = String::from(c);
                while let Some(n) =
                    chars.next_if(|&n| !n.is_whitespace() && !matches!(n, '{' | '}' | ';'))
                {
                    word.push(n);
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

fn directives(
    tokens: &mut std::vec::IntoIter<Token>,
    nested: bool,
) -> Result<Vec<Directive>, String> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let head = |words: &mut Vec<String>| -> Result<(String, Vec<String>), String> {
        let mut all = std::mem::take(words).into_iter();
        let name = all.next().ok_or("a `;` or `{` without a directive name")?;
        Ok((name, all.collect()))
    };
    loop {
        match tokens.next() {
            Some(Token::Word(w)) => words.push(w),
            Some(Token::End) => {
                let (name, args) = head(&mut words)?;
                out.push(Directive {
                    name,
                    args,
                    block: None,
                });
            }
            Some(Token::Open) => {
                let (name, args) = head(&mut words)?;
                let block = directives(tokens, true)?;
                out.push(Directive {
                    name,
                    args,
                    block: Some(block),
                });
            }
            Some(Token::Close) if nested && words.is_empty() => return Ok(out),
            Some(Token::Close) if nested => return Err(format!("missing `;` after {words:?}")),
            Some(Token::Close) => return Err("a `}` closes no block".into()),
            None if nested => return Err("a `{` is never closed".into()),
            None if words.is_empty() => return Ok(out),
            None => return Err(format!("missing `;` after {words:?}")),
        }
    }
}

/// An nginx time (`3600s`, `1h`, `500ms`, `60`) in seconds.
fn seconds(v: &str) -> Option<f64> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return None,
    };
    Some(n * scale)
}

/// `host:port` (port 80 when absent) of an upstream `server` address.
fn host_port(addr: &str) -> Option<(&str, u16)> {
    if addr.starts_with("unix:") {
        return None;
    }
    match addr.rsplit_once(':') {
        Some((host, port)) => Some((host, port.parse().ok()?)),
        None => Some((addr, 80)),
    }
}

/// A parsed nginx.conf.
pub(super) struct NginxConf {
    top: Vec<Directive>,
}

/// A directive and the blocks it sits in, outermost first.
type Placed<'a> = (Vec<&'a Directive>, &'a Directive);

impl NginxConf {
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = tokens(text)?.into_iter();
        Ok(NginxConf {
            top: directives(&mut tokens, false)?,
        })
    }

    pub(super) fn load() -> Self {
        let file = super::manifests::path(NGINX_CONF);
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {NGINX_CONF}: {e}"));
        Self::parse(&text).unwrap_or_else(|e| panic!("{NGINX_CONF}: {e}"))
    }

    /// Every directive with its enclosing blocks.
    fn all(&self) -> Vec<Placed<'_>> {
        fn walk<'a>(
            ds: &'a [Directive],
            above: &mut Vec<&'a Directive>,
            out: &mut Vec<Placed<'a>>,
        ) {
            for d in ds {
                out.push((above.clone(), d));
                if let Some(block) = &d.block {
                    above.push(d);
                    walk(block, above, out);
                    above.pop();
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.top, &mut Vec::new(), &mut out);
        out
    }

    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Placed<'a>> + 'a {
        self.all().into_iter().filter(move |(_, d)| d.name == name)
    }

    /// The `name` directives in effect inside `above` (innermost block
    /// first): those of the nearest level that has any, as nginx inherits.
    fn effective<'a>(&'a self, above: &[&'a Directive], name: &str) -> Vec<&'a Directive> {
        let levels = above
            .iter()
            .rev()
            .map(|d| d.children())
            .chain([self.top.as_slice()]);
        for level in levels {
            let found: Vec<&Directive> = level.iter().filter(|d| d.name == name).collect();
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }

    /// `upstream` blocks: name -> (host, port) of each `server`.
    pub(super) fn upstreams(&self) -> BTreeMap<String, Vec<(String, u16)>> {
        self.named("upstream")
            .map(|(_, up)| {
                let servers = up
                    .children()
                    .iter()
                    .filter(|d| d.name == "server")
                    .map(|d| {
                        let (host, port) = host_port(d.arg(0)).unwrap_or((d.arg(0), 0));
                        (host.to_string(), port)
                    })
                    .collect();
                (up.arg(0).to_string(), servers)
            })
            .collect()
    }

    /// The ports of the `listen` directives.
    pub(super) fn listen_ports(&self) -> BTreeSet<u16> {
        self.named("listen")
            .filter_map(|(_, d)| {
                let addr = d.arg(0);
                let port = addr.rsplit(':').next().unwrap_or(addr);
                port.parse().ok()
            })
            .collect()
    }

    /// What is wrong for balancing the compose `replicas` (service name ->
    /// A2A port) whose API port also serves gRPC under `/{grpc_service}/`.
    pub(super) fn problems(
        &self,
        replicas: &BTreeMap<String, u16>,
        grpc_service: &str,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let upstreams = self.upstreams();
        if upstreams.is_empty() {
            problems.push("no upstream block".to_string());
        }
        for (name, servers) in &upstreams {
            let mut named = BTreeSet::new();
            for (host, port) in servers {
                match replicas.get(host) {
                    None => problems.push(format!(
                        "upstream {name}: server {host}:{port} is not an abacus replica service of docker-compose.yml ({:?})",
                        replicas.keys().collect::<Vec<_>>()
                    )),
                    Some(want) if want != port => problems.push(format!(
                        "upstream {name}: server {host}:{port}, but {host} serves A2A on port {want}"
                    )),
                    Some(_) => {}
                }
                named.insert(host.as_str());
            }
            for replica in replicas.keys() {
                if !named.contains(replica.as_str()) {
                    problems.push(format!("upstream {name} lacks the replica {replica}"));
                }
            }
            let keepalive = self.named("upstream").any(|(_, up)| {
                up.arg(0) == name && up.children().iter().any(|d| d.name == "keepalive")
            });
            if !keepalive {
                problems.push(format!("upstream {name}: no keepalive connections"));
            }
        }

        // Nothing names a replica directly, past the balancing.
        let mut passes = 0;
        for (kind, prefix) in [("proxy_pass", "proxy"), ("grpc_pass", "grpc")] {
            for (above, d) in self.named(kind) {
                passes += 1;
                let target = d.arg(0);
                let name = target.split_once("://").map_or(target, |(_, rest)| rest);
                let name = name.split(['/', ':']).next().unwrap_or("");
                if !upstreams.contains_key(name) {
                    problems.push(format!(
                        "{kind} {target}: {name:?} is not an upstream block"
                    ));
                }
                let read = self.effective(&above, &format!("{prefix}_read_timeout"));
                let read = read.first().and_then(|d| seconds(d.arg(0))).unwrap_or(60.0);
                if read < STREAM_READ_SECS {
                    problems.push(format!(
                        "{kind} {target}: {prefix}_read_timeout is {read} s; SSE streams need {STREAM_READ_SECS} s"
                    ));
                }
                if kind == "proxy_pass" {
                    let buffering = self.effective(&above, "proxy_buffering");
                    if buffering.first().map(|d| d.arg(0)) != Some("off") {
                        problems.push(format!(
                            "proxy_pass {target}: proxy_buffering is not off, so SSE events are held back"
                        ));
                    }
                    let version = self.effective(&above, "proxy_http_version");
                    if version.first().map(|d| d.arg(0)) != Some("1.1") {
                        problems.push(format!(
                            "proxy_pass {target}: proxy_http_version is not 1.1 (no keepalive to the replicas)"
                        ));
                    }
                    let headers = self.effective(&above, "proxy_set_header");
                    if !headers
                        .iter()
                        .any(|h| h.arg(0).eq_ignore_ascii_case("connection"))
                    {
                        problems.push(format!(
                            "proxy_pass {target}: no proxy_set_header Connection, so every upstream connection is closed"
                        ));
                    }
                }
            }
        }
        if passes == 0 {
            problems.push("no proxy_pass or grpc_pass".to_string());
        }

        // A POST that reached a replica is never sent to a second one.
        for (_, d) in self.all() {
            if d.name.ends_with("_next_upstream") && d.args.iter().any(|a| a == "non_idempotent") {
                problems.push(format!(
                    "{} {}: non_idempotent would send a SendMessage twice",
                    d.name,
                    d.args.join(" ")
                ));
            }
        }

        // gRPC rides the API port: its path prefix goes over h2c, from an
        // HTTP/2-enabled server.
        let prefix = format!("/{grpc_service}/");
        let grpc = self
            .named("location")
            .find(|(_, l)| l.args.last().map(String::as_str) == Some(prefix.as_str()));
        match grpc {
            None => problems.push(format!("no `location {prefix}` for the gRPC binding")),
            Some((above, location)) => {
                if !location.children().iter().any(|d| d.name == "grpc_pass") {
                    problems.push(format!("location {prefix}: no grpc_pass"));
                }
                let server = above.iter().rev().find(|d| d.name == "server");
                let http2 = server.is_some_and(|s| {
                    s.children().iter().any(|d| {
                        (d.name == "http2" && d.arg(0) == "on")
                            || (d.name == "listen" && d.args.iter().any(|a| a == "http2"))
                    })
                }) || self
                    .effective(&above, "http2")
                    .first()
                    .is_some_and(|d| d.arg(0) == "on");
                if !http2 {
                    problems.push(format!(
                        "location {prefix}: its server does not accept HTTP/2 (`http2 on`), which gRPC needs"
                    ));
                }
            }
        }
        problems
    }
}

#[test]
fn the_nginx_parser_and_checks_catch_what_they_should() {
    let conf = NginxConf::parse(
        "# a comment\nhttp { map $x $y { default upgrade; '' ''; }\n upstream u { server a:8002 max_fails=1; server b:8002; keepalive 8; }\n\
         server { listen 0.0.0.0:8002; http2 on; proxy_buffering off; proxy_read_timeout 1h;\n\
           location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_next_upstream error timeout; }\n\
           location /s.S/ { grpc_pass grpc://u; grpc_read_timeout 3600s; } } }",
    )
    .unwrap();
    assert_eq!(
        conf.upstreams(),
        BTreeMap::from([(
            "u".to_string(),
            vec![("a".to_string(), 8002), ("b".to_string(), 8002)]
        )])
    );
    assert_eq!(conf.listen_ports(), BTreeSet::from([8002]));
    let replicas = BTreeMap::from([("a".to_string(), 8002), ("b".to_string(), 8002)]);
    assert_eq!(conf.problems(&replicas, "s.S"), Vec::<String>::new());

    // A replica missing from the upstream, a server that is no replica, a
    // replica on another port.
    let more = BTreeMap::from([
        ("a".to_string(), 8002),
        ("c".to_string(), 8002),
        ("b".to_string(), 9000),
    ]);
    let problems = conf.problems(&more, "s.S");
    for want in ["lacks the replica c", "b serves A2A on port 9000"] {
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "{want}: {problems:?}"
        );
    }
    let fewer = BTreeMap::from([("a".to_string(), 8002)]);
    let problems = conf.problems(&fewer, "s.S");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("server b:8002 is not an abacus replica")),
        "{problems:?}"
    );
    assert!(conf
        .problems(&replicas, "other.S")
        .iter()
        .any(|p| p.contains("no `location /other.S/`")),);

    let bad = NginxConf::parse(
        "upstream u { server a:8002; }\nserver { listen 8002;\n\
         location / { proxy_pass http://a:8002; proxy_next_upstream error timeout non_idempotent; proxy_read_timeout 60s; } }",
    )
    .unwrap();
    let problems = bad.problems(&fewer, "s.S");
    for want in [
        "no keepalive",
        "\"a\" is not an upstream block",
        "non_idempotent",
        "proxy_read_timeout is 60 s",
        "proxy_buffering is not off",
        "proxy_http_version is not 1.1",
        "no proxy_set_header Connection",
        "no `location /s.S/`",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "{want}: {problems:?}"
        );
    }

    for broken in ["http { server { }", "http { listen 80 }", "a; }", "x 'y;"] {
        assert!(NginxConf::parse(broken).is_err(), "{broken:?} parsed");
    }
    assert_eq!(seconds("1h"), Some(3600.0));
    assert_eq!(seconds("500ms"), Some(0.5));
    assert_eq!(seconds("x"), None);
}
