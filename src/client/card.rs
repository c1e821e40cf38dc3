//! The agent card: read once, revalidated with its ETag, and the interface
//! a client uses picked from its `supportedInterfaces`.

use super::conn::{self, Http};
use super::error::ClientError;
use crate::protocol::types::{
    AgentCard, AgentInterface, TRANSPORT_PROTOCOL_GRPC, TRANSPORT_PROTOCOL_HTTP_JSON,
    TRANSPORT_PROTOCOL_JSONRPC,
};
use crate::protocol::Binding;
use std::sync::Mutex;
use std::time::Duration;

/// Reads an agent's card and keeps it with its `ETag`: later reads send
/// `If-None-Match` and a `304 Not Modified` costs no body.
///
/// ```no_run
/// # async fn run() -> Result<(), abacus::client::ClientError> {
/// let cards = abacus::client::CardResolver::new("http://127.0.0.1:8002/")?;
/// let card = cards.resolve().await?;
/// let again = cards.resolve().await?; // 304: the same card, not sent again
/// assert_eq!(card, again);
/// # Ok(()) }
/// ```
pub struct CardResolver {
    /// The agent's URL as the caller gave it: errors name it.
    base: String,
    url: String,
    http: Http,
    timeout: Duration,
    cached: Mutex<Option<(http::HeaderValue, AgentCard)>>,
}

impl std::fmt::Debug for CardResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardResolver")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// `base`'s card URL: `base` itself when it names a `.json` file.
fn card_url(base: &str) -> String {
    if base.ends_with(".json") {
        base.to_string()
    } else {
        format!("{}/.well-known/agent-card.json", base.trim_end_matches('/'))
    }
}

impl CardResolver {
    /// A resolver for the agent at `base` (system trust store, 30 s per read).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let connector = conn::connector(None, Duration::from_secs(5))?;
        let http = Http {
            pool: conn::pool(connector),
            headers: http::HeaderMap::new(),
            max_event_bytes: 0,
        };
        Ok(Self::with_http(base, http, Duration::from_secs(30)))
    }

    pub(crate) fn with_http(base: &str, http: Http, timeout: Duration) -> Self {
        CardResolver {
            base: base.to_string(),
            url: card_url(base),
            http,
            timeout,
            cached: Mutex::new(None),
        }
    }

    /// The card's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The card as the server has it now.
    pub async fn resolve(&self) -> Result<AgentCard, ClientError> {
        let etag = self
            .cached
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(e, _)| e.clone()));
        let mut req = conn::request(http::Method::GET, &self.url, None, "application/json")?;
        if let Some(etag) = &etag {
            req.headers_mut()
                .insert(http::header::IF_NONE_MATCH, etag.clone());
        }
        let fetch = async {
            let resp = self.http.send(req, &self.base).await?;
            let new_etag = resp.headers().get(http::header::ETAG).cloned();
            let (status, bytes) = conn::body(resp).await?;
            Ok::<_, ClientError>((status, new_etag, bytes))
        };
        let (status, new_etag, bytes) =
            tokio::time::timeout(self.timeout, fetch)
                .await
                .map_err(|_| ClientError::Timeout {
                    url: self.url.clone(),
                    after: self.timeout,
                })??;
        if status == http::StatusCode::NOT_MODIFIED {
            if let Some((_, card)) = self.cached.lock().ok().and_then(|c| c.clone()) {
                return Ok(card);
            }
        }
        if !status.is_success() {
            return Err(ClientError::Status(status, conn::snippet(&bytes)));
        }
        let value = conn::json(status, &bytes)?;
        if value.get("supportedInterfaces").is_none() && value.get("url").is_some() {
            return Err(ClientError::NoInterface(format!(
                "{} is an A2A 0.x card (a `url`, no `supportedInterfaces`); this client speaks A2A 1.0",
                self.url
            )));
        }
        let card: AgentCard = serde_path_to_error::deserialize(value).map_err(|e| {
            ClientError::Invalid(format!(
                "the agent card at {}: at {}: {}",
                self.url,
                e.path(),
                e.inner()
            ))
        })?;
        if let (Some(etag), Ok(mut cached)) = (new_etag, self.cached.lock()) {
            *cached = Some((etag, card.clone()));
        }
        Ok(card)
    }
}

/// The binding of a card's `protocolBinding`, if this client speaks it.
fn binding_of(protocol: &str) -> Option<Binding> {
    match protocol {
        TRANSPORT_PROTOCOL_JSONRPC => Some(Binding::JsonRpc),
        TRANSPORT_PROTOCOL_HTTP_JSON => Some(Binding::Rest),
        TRANSPORT_PROTOCOL_GRPC => Some(Binding::Grpc),
        _ => None,
    }
}

/// The interface to use: the first of `prefer` the card offers (any
/// binding, in the card's order, when `prefer` is empty), among those of
/// A2A 1.x.
///
/// ```
/// use abacus::card::{interfaces, CardBuilder};
/// use abacus::client::pick_interface;
/// use abacus::protocol::Binding;
/// let mut card = CardBuilder::new("a", "b").build();
/// card.supported_interfaces = interfaces("http://127.0.0.1:8002/", None);
/// let (binding, iface) = pick_interface(&card, &[Binding::Grpc]).unwrap();
/// assert_eq!((binding, iface.url.as_str()), (Binding::Grpc, "127.0.0.1:8002"));
/// let (binding, _) = pick_interface(&card, &[]).unwrap();
/// assert_eq!(binding, Binding::JsonRpc);
/// ```
pub fn pick_interface<'c>(
    card: &'c AgentCard,
    prefer: &[Binding],
) -> Result<(Binding, &'c AgentInterface), ClientError> {
    let usable = || {
        card.supported_interfaces.iter().filter_map(|i| {
            let v1 =
                i.protocol_version.is_empty() || i.protocol_version.split('.').next() == Some("1");
            binding_of(&i.protocol_binding)
                .filter(|_| v1)
                .map(|b| (b, i))
        })
    };
    let found = if prefer.is_empty() {
        usable().next()
    } else {
        prefer.iter().find_map(|p| usable().find(|(b, _)| b == p))
    };
    found.ok_or_else(|| {
        let offered: Vec<String> = card
            .supported_interfaces
            .iter()
            .map(|i| format!("{} {}", i.protocol_binding, i.protocol_version))
            .collect();
        let wanted: Vec<&str> = prefer.iter().map(|b| b.as_str()).collect();
        ClientError::NoInterface(format!(
            "the card offers [{}]{}",
            offered.join(", "),
            if wanted.is_empty() {
                String::new()
            } else {
                format!(", the caller wants [{}]", wanted.join(", "))
            }
        ))
    })
}
