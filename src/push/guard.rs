//! The SSRF guard for outbound push-notification webhooks.
//!
//! A client registers a URL and the server POSTs task events to it. Without
//! a guard that is a server-side request forgery: any client could make the
//! server post to `http://169.254.169.254/` (cloud metadata), to
//! `http://127.0.0.1:5432/` or to anything else on the operator's network.
//! The [`Guard`] refuses such targets unless the operator's allow-list
//! (`--push-allow`) names them, and refuses `http://` unless
//! `--push-allow-http` is given.
//!
//! Two checks, at two times:
//!
//! * **At config creation** the caller runs [`Guard::check_url`] and then
//!   [`Guard::resolve`], and turns a [`Refusal`] into an InvalidParams error.
//!   A name that does not resolve ([`Refusal::is_unresolvable`]) is accepted
//!   then (receivers are often registered before their DNS exists, and the
//!   conformance suite registers `https://example.com/...` on machines
//!   without DNS); a name that resolves only to refused addresses is not.
//! * **At delivery** the caller runs [`Guard::check_url`] again and connects
//!   through a connector built on [`GuardedResolver`], so the name is
//!   resolved once and the connection goes to exactly the addresses that
//!   passed the check: a DNS answer that changes between the check and the
//!   connect (DNS rebinding) cannot slip a private address in. Deliveries
//!   must not follow redirects (hyper's client does not): a redirect's
//!   target was never checked.
//!
//! [`classify`] says which special-purpose block an address belongs to; the
//! blocks follow the IANA IPv4 and IPv6 special-purpose address registries.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, Uri};
use hyper_util::client::legacy::connect::dns::Name;

mod allow;
mod class;
#[cfg(test)]
mod tests;

pub use allow::{AllowList, AllowListError};
pub use class::{classify, AddressClass};

/// How long [`Guard::resolve`] waits for the system resolver by default.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The hint appended to a refusal the operator can lift.
const ALLOW_HINT: &str = " (allow it with --push-allow)";

/// Whether `http://` receivers are accepted (`--push-allow-http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllowHttp {
    /// Only `https://` receivers (the default).
    #[default]
    No,
    /// `http://` receivers too.
    Yes,
}

/// The scheme of a checked [`Target`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`, only with [`AllowHttp::Yes`].
    Http,
    /// `https://`.
    Https,
}

impl Scheme {
    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// The scheme as written in a URL, without `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of host a [`Target`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// An IP literal (`10.0.0.1`, `[::1]`), already checked by
    /// [`Guard::check_url`].
    Ip(IpAddr),
    /// A host name, checked when it is resolved ([`Guard::resolve`],
    /// [`GuardedResolver`]).
    Name,
}

/// A push-notification URL that passed [`Guard::check_url`].
///
/// Only `check_url` makes one, so [`Guard::resolve`] only sees checked URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    scheme: Scheme,
    host: String,
    port: u16,
    kind: HostKind,
}

impl Target {
    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host as given, lowercased, an IPv6 literal without its brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port: the URL's, or the scheme's default (80, 443).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the host is an IP literal or a name.
    pub fn kind(&self) -> HostKind {
        self.kind
    }
}

/// Why a name did not resolve; see [`Refusal::Unresolvable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// The resolver answered with no addresses.
    NoAddresses,
    /// The resolver failed; its message.
    Lookup(String),
    /// The resolver did not answer in time.
    TimedOut(Duration),
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unresolved::NoAddresses => f.write_str("has no addresses"),
            Unresolved::Lookup(message) => write!(f, "does not resolve ({message})"),
            Unresolved::TimedOut(limit) => write!(f, "did not resolve within {limit:?}"),
        }
    }
}

/// Why the guard refused a push-notification URL.
///
/// The message is meant for the API caller (an InvalidParams error); it
/// never repeats the URL, so credentials in it cannot leak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The URL does not parse.
    #[error("push notification URL refused: not a valid URL")]
    InvalidUrl,
    /// The URL has no scheme.
    #[error("push notification URL refused: the URL needs a scheme (https://)")]
    MissingScheme,
    /// The scheme is neither `http` nor `https`.
    #[error("push notification URL refused: scheme {scheme} is not http(s)")]
    Scheme {
        /// The scheme, lowercased.
        scheme: String,
    },
    /// An `http://` URL without [`AllowHttp::Yes`].
    #[error("push notification URL refused: http:// receivers need --push-allow-http")]
    Http,
    /// The URL has no host.
    #[error("push notification URL refused: the URL has no host")]
    MissingHost,
    /// The URL carries userinfo (`user:pass@`).
    #[error(
        "push notification URL refused: credentials in the URL (user:pass@) are not accepted; \
         put them in the config's authentication"
    )]
    Credentials,
    /// The port is not a number from 1 to 65535.
    #[error("push notification URL refused: the port is not a number from 1 to 65535")]
    InvalidPort,
    /// The host is neither a host name nor an IP literal.
    #[error("push notification URL refused: {host} is not a valid host name or IP address")]
    InvalidHost {
        /// The host as given, lowercased.
        host: String,
    },
    /// A host like `2130706433`, `0x7f000001` or `127.1`, which some URL
    /// parsers and resolvers read as an IPv4 address.
    #[error(
        "push notification URL refused: {host} is an IPv4 address in a non-standard \
         spelling; write it as a.b.c.d"
    )]
    NumericHost {
        /// The host as given, lowercased.
        host: String,
    },
    /// The address, or every address the name resolves to, is refused.
    #[error("push notification URL refused: {}", describe_address(.name.as_deref(), *.ip, *.class))]
    Address {
        /// The host name that resolved to `ip`; `None` for an IP literal.
        name: Option<String>,
        /// The (first) refused address.
        ip: IpAddr,
        /// Its class.
        class: AddressClass,
    },
    /// The name does not resolve (in time).
    #[error("push notification URL refused: {host} {why}")]
    Unresolvable {
        /// The host name.
        host: String,
        /// What the resolver said.
        why: Unresolved,
    },
}

fn describe_address(name: Option<&str>, ip: IpAddr, class: AddressClass) -> String {
    let (phrase, hint) = (class.phrase(), class.hint());
    match name {
        Some(name) => format!("{name} resolves to {ip}, {phrase}{hint}"),
        None => format!("{ip} is {phrase}{hint}"),
    }
}

impl Refusal {
    /// Whether the URL was refused only because its name did not resolve:
    /// acceptable at config creation, checked again at delivery.
    pub fn is_unresolvable(&self) -> bool {
        matches!(self, Refusal::Unresolvable { .. })
    }

    /// The refusal somewhere in an error's source chain, such as a
    /// `hyper_util` client error whose connector used a [`GuardedResolver`].
    ///
    /// `io::Error::source` skips the error it wraps, so each link that is an
    /// `io::Error` is looked into as well.
    pub fn find_in<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e Refusal> {
        let mut next = Some(error);
        while let Some(error) = next {
            if let Some(refusal) = error.downcast_ref::<Refusal>() {
                return Some(refusal);
            }
            let wrapped = error
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
                .and_then(|inner| inner.downcast_ref::<Refusal>());
            if wrapped.is_some() {
                return wrapped;
            }
            next = error.source();
        }
        None
    }
}

impl From<Refusal> for io::Error {
    fn from(refusal: Refusal) -> Self {
        let kind = match &refusal {
            Refusal::Unresolvable {
                why: Unresolved::TimedOut(_),
                ..
            } => io::ErrorKind::TimedOut,
            Refusal::Unresolvable { .. } => io::ErrorKind::NotFound,
            _ => io::ErrorKind::PermissionDenied,
        };
        io::Error::new(kind, refusal)
    }
}

/// The SSRF guard: decides whether the server may POST a push notification
/// to a URL.
///
/// ```
/// use abacus::push::guard::{AllowHttp, Guard};
///
/// let allow = ["10.0.0.0/8".to_string(), "hooks.internal".to_string()];
/// let guard = Guard::new(&allow, AllowHttp::No)?;
///
/// assert_eq!(guard.check_url("https://10.1.2.3/hook")?.port(), 443);
/// assert!(guard.check_url("https://192.168.1.1/hook").is_err());
/// assert!(guard.check_url("http://10.1.2.3/hook").is_err()); // https only
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Guard {
    allow: AllowList,
    http: AllowHttp,
    resolve_timeout: Duration,
}

impl Default for Guard {
    /// Nothing allowed beyond public `https://` receivers.
    fn default() -> Self {
        Guard::from_allow_list(AllowList::default(), AllowHttp::No)
    }
}

impl Guard {
    /// The guard from the operator's settings: the `--push-allow` entries
    /// (each may be comma-separated) and `--push-allow-http`.
    pub fn new(allow: &[String], http: AllowHttp) -> Result<Self, AllowListError> {
        Ok(Guard::from_allow_list(
            AllowList::from_entries(allow)?,
            http,
        ))
    }

    /// The guard from a parsed allow-list.
    pub fn from_allow_list(allow: AllowList, http: AllowHttp) -> Self {
        Guard {
            allow,
            http,
            resolve_timeout: RESOLVE_TIMEOUT,
        }
    }

    /// How long a resolution may take before it counts as unresolvable
    /// (default [`RESOLVE_TIMEOUT`]).
    pub fn with_resolve_timeout(mut self, limit: Duration) -> Self {
        self.resolve_timeout = limit;
        self
    }

    /// The allow-list.
    pub fn allow_list(&self) -> &AllowList {
        &self.allow
    }

    /// Whether `http://` receivers are accepted.
    pub fn allow_http(&self) -> AllowHttp {
        self.http
    }

    /// Checks a URL without resolving it: the scheme (`https`, or `http`
    /// with [`AllowHttp::Yes`]), a host, no userinfo, the port, and an
    /// IP-literal host's address. `localhost` and `*.localhost` are loopback
    /// without asking a resolver. A host name is otherwise checked when it
    /// is resolved.
    ///
    /// Run it at config creation (then [`resolve`](Self::resolve)) and again
    /// at delivery: hyper-util's `HttpConnector` connects to an IP-literal
    /// host without calling its resolver, so a [`GuardedResolver`] never
    /// sees those and this is their only check.
    ///
    /// ```
    /// use abacus::push::guard::{AddressClass, AllowHttp, Guard, HostKind, Refusal};
    ///
    /// let guard = Guard::new(&[], AllowHttp::No)?;
    /// let target = guard.check_url("https://Hooks.Example.com:8443/a2a")?;
    /// assert_eq!((target.host(), target.port()), ("hooks.example.com", 8443));
    /// assert_eq!(target.kind(), HostKind::Name);
    ///
    /// let refusal = guard.check_url("https://[::ffff:127.0.0.1]/").unwrap_err();
    /// assert!(matches!(refusal, Refusal::Address { class: AddressClass::Loopback, .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_url(&self, url: &str) -> Result<Target, Refusal> {
        let uri: Uri = url.parse().map_err(|_| Refusal::InvalidUrl)?;
        let scheme = self.scheme(&uri)?;
        let authority = uri.authority().ok_or(Refusal::MissingHost)?;
        if authority.as_str().contains('@') {
            return Err(Refusal::Credentials);
        }
        let raw_host = authority.host();
        if raw_host.is_empty() {
            return Err(Refusal::MissingHost);
        }
        let port = port(authority, scheme)?;
        let (host, kind) = host(raw_host)?;
        match kind {
            HostKind::Ip(ip) => self.check_ip(ip)?,
            HostKind::Name if is_localhost(&host) => {
                self.localhost(&host, port)?;
            }
            HostKind::Name => {}
        }
        Ok(Target {
            scheme,
            host,
            port,
            kind,
        })
    }

    fn scheme(&self, uri: &Uri) -> Result<Scheme, Refusal> {
        match uri.scheme_str() {
            None => Err(Refusal::MissingScheme),
            Some(s) if s.eq_ignore_ascii_case("https") => Ok(Scheme::Https),
            Some(s) if s.eq_ignore_ascii_case("http") => match self.http {
                AllowHttp::Yes => Ok(Scheme::Http),
                AllowHttp::No => Err(Refusal::Http),
            },
            Some(other) => Err(Refusal::Scheme {
                scheme: other.to_ascii_lowercase(),
            }),
        }
    }

    /// Checks one address: refused if [`classify`] gives it a class and
    /// the allow-list's networks do not contain it.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        match self.refused_class(ip) {
            None => Ok(()),
            Some(class) => Err(Refusal::Address {
                name: None,
                ip,
                class,
            }),
        }
    }

    /// Resolves a checked target once and returns the addresses that may be
    /// connected to, in the resolver's order; refused addresses are dropped.
    ///
    /// An IP-literal target gives its address. `localhost` and `*.localhost`
    /// give 127.0.0.1 and ::1 without asking a resolver. A name on the
    /// allow-list gives all its addresses. Otherwise the system resolver
    /// (so `/etc/hosts` too) answers, within the guard's resolve timeout.
    ///
    /// Errors: [`Refusal::Address`] naming the first refused address when
    /// every address is refused, [`Refusal::Unresolvable`] when the name
    /// does not resolve in time. At config creation the caller accepts the
    /// latter ([`Refusal::is_unresolvable`]) and refuses the former; at
    /// delivery both stop the attempt. To connect to exactly these
    /// addresses, deliver through a [`GuardedResolver`].
    pub async fn resolve(&self, target: &Target) -> Result<Vec<SocketAddr>, Refusal> {
        match target.kind {
            HostKind::Ip(ip) => {
                self.check_ip(ip)?;
                Ok(vec![SocketAddr::new(ip, target.port)])
            }
            HostKind::Name => self.resolve_name(&target.host, target.port).await,
        }
    }

    /// Resolves a host as a connector hands it over: an IP literal (in
    /// case a connector asks about one) or a name, unchecked otherwise. A
    /// numeric spelling such as `2130706433` is left to the resolver, whose
    /// answer is then classified.
    async fn resolve_host(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match literal.parse::<IpAddr>() {
            Ok(ip) => {
                self.check_ip(ip)?;
                Ok(vec![SocketAddr::new(ip, port)])
            }
            Err(_) => self.resolve_name(host, port).await,
        }
    }

    async fn resolve_name(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        if is_localhost(host) {
            return self.localhost(host, port);
        }
        let lookup = async { Ok(tokio::net::lookup_host((host, port)).await?.collect()) };
        self.screen(host, lookup).await
    }

    /// Waits for a lookup's answer, within the resolve timeout, and keeps
    /// the allowed addresses (all of them for a name on the allow-list).
    async fn screen(
        &self,
        host: &str,
        lookup: impl Future<Output = io::Result<Vec<SocketAddr>>>,
    ) -> Result<Vec<SocketAddr>, Refusal> {
        let addrs = match tokio::time::timeout(self.resolve_timeout, lookup).await {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(error)) => {
                return Err(unresolvable(host, Unresolved::Lookup(error.to_string())))
            }
            // A blocking getaddrinfo call may finish later; its answer is dropped.
            Err(_) => {
                return Err(unresolvable(
                    host,
                    Unresolved::TimedOut(self.resolve_timeout),
                ))
            }
        };
        if !self.allow.allows_name(host) {
            return self.filter(host, addrs);
        }
        if addrs.is_empty() {
            return Err(unresolvable(host, Unresolved::NoAddresses));
        }
        Ok(addrs)
    }

    /// `localhost` names are loopback by definition (RFC 6761): never asked
    /// of a resolver that might say otherwise.
    fn localhost(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let addrs = [
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        ];
        if self.allow.allows_name(host) {
            return Ok(addrs.to_vec());
        }
        self.filter(host, addrs)
    }

    /// Keeps the allowed addresses; refuses with the first refused one when
    /// none is.
    fn filter(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Refusal> {
        let mut allowed = Vec::new();
        let mut first_refused = None;
        for addr in addrs {
            match self.refused_class(addr.ip()) {
                None if !allowed.contains(&addr) => allowed.push(addr),
                None => {}
                Some(class) => {
                    first_refused.get_or_insert((addr.ip(), class));
                }
            }
        }
        match (allowed.is_empty(), first_refused) {
            (false, _) => Ok(allowed),
            (true, Some((ip, class))) => Err(Refusal::Address {
                name: Some(host.to_owned()),
                ip,
                class,
            }),
            (true, None) => Err(unresolvable(host, Unresolved::NoAddresses)),
        }
    }

    fn refused_class(&self, ip: IpAddr) -> Option<AddressClass> {
        if self.allow.allows_ip(ip) {
            return None;
        }
        classify(ip)
    }
}

fn unresolvable(host: &str, why: Unresolved) -> Refusal {
    Refusal::Unresolvable {
        host: host.to_owned(),
        why,
    }
}

/// The URL's port, or the scheme's. `Authority::port` is `None` for an
/// out-of-range port, which would silently become the default: read it here.
fn port(authority: &Authority, scheme: Scheme) -> Result<u16, Refusal> {
    match authority.as_str().strip_prefix(authority.host()) {
        Some("" | ":") => Ok(scheme.default_port()),
        Some(rest) => match rest.strip_prefix(':').map(str::parse::<u16>) {
            Some(Ok(port)) if port != 0 => Ok(port),
            _ => Err(Refusal::InvalidPort),
        },
        None => Err(Refusal::InvalidUrl),
    }
}

/// The host lowercased (an IPv6 literal without brackets) and its kind.
fn host(raw: &str) -> Result<(String, HostKind), Refusal> {
    let host = raw.to_ascii_lowercase();
    if let Some(bracketed) = host.strip_prefix('[') {
        let inner = bracketed.strip_suffix(']').unwrap_or(bracketed);
        return match inner.parse::<Ipv6Addr>() {
            Ok(ip) => Ok((inner.to_owned(), HostKind::Ip(IpAddr::V6(ip)))),
            Err(_) => Err(Refusal::InvalidHost { host }),
        };
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok((host, HostKind::Ip(IpAddr::V4(ip))));
    }
    if is_numeric_host(&normalize_name(&host)) {
        return Err(Refusal::NumericHost { host });
    }
    if !is_host_name(&host) {
        return Err(Refusal::InvalidHost { host });
    }
    Ok((host, HostKind::Name))
}

/// A resolver for hyper-util's `HttpConnector` that resolves through a
/// [`Guard`]: the connector connects to exactly the addresses the guard
/// allowed, so DNS rebinding between a check and the connect is moot.
///
/// ```
/// use std::sync::Arc;
/// use abacus::push::guard::{Guard, GuardedResolver};
/// use hyper_util::client::legacy::connect::HttpConnector;
///
/// let connector = HttpConnector::new_with_resolver(GuardedResolver::new(Arc::new(Guard::default())));
/// ```
///
/// The connector does not call its resolver for an IP-literal host, so
/// [`Guard::check_url`] must pass before each delivery. A refusal is the
/// resolver's error: an `io::Error` wrapping the [`Refusal`] (find it with
/// [`Refusal::find_in`]). The addresses carry port 0, which the connector
/// replaces with the URL's port. For `https://` receivers, wrap the
/// connector in a TLS one (hyper-rustls) after `enforce_http(false)`.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: Arc<Guard>,
}

impl GuardedResolver {
    /// A resolver checking with `guard`.
    pub fn new(guard: Arc<Guard>) -> Self {
        GuardedResolver { guard }
    }
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = Arc::clone(&self.guard);
        Box::pin(async move {
            let addrs = guard.resolve_host(name.as_str(), 0).await?;
            Ok(addrs.into_iter())
        })
    }
}

/// Lowercased, without one trailing dot (`LOCALHOST.` is `localhost`).
fn normalize_name(name: &str) -> String {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.to_ascii_lowercase()
}

fn is_localhost(host: &str) -> bool {
    let name = normalize_name(host);
    name == "localhost" || name.ends_with(".localhost")
}

/// Letters, digits, `-` (not first or last) and `_` in dot-separated
/// labels of at most 63 bytes, 253 in all, one trailing dot allowed. IDNs
/// arrive as punycode.
fn is_host_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A name whose last label is a number (`2130706433`, `127.1`,
/// `0x7f000001`): the WHATWG URL standard and `inet_aton` read it as IPv4.
fn is_numeric_host(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let hex = last
        .strip_prefix("0x")
        .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}
