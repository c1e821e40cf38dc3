//! Building the agent card and serving it from pre-serialized bytes.

use crate::protocol::types::{
    AgentCapabilities, AgentCard, AgentExtension, AgentInterface, AgentProvider, AgentSkill,
    TRANSPORT_PROTOCOL_GRPC, TRANSPORT_PROTOCOL_HTTP_JSON, TRANSPORT_PROTOCOL_JSONRPC,
};
use crate::protocol::PROTOCOL_VERSION;
use bytes::Bytes;
use http::HeaderValue;

pub mod sign;

/// URI of the WebSocket streaming extension declared in agent cards.
pub const WEBSOCKET_EXTENSION: &str = "urn:abacus:websocket-stream:v1";

/// Builds an [`AgentCard`] with sensible defaults: streaming on, push
/// notifications off, text in and out. The JSON-RPC interface URL is filled
/// in by the server from its public URL.
///
/// ```
/// use abacus::card::CardBuilder;
///
/// let card = CardBuilder::new("calc", "does sums")
///     .skill("sum", "Sum", "adds numbers", &["math"], &["1 + 2"])
///     .build();
/// assert_eq!(card.skills.len(), 1);
/// assert_eq!(card.capabilities.streaming, Some(true));
/// ```
#[derive(Debug, Clone)]
pub struct CardBuilder {
    card: AgentCard,
}

impl CardBuilder {
    /// A card named `name`.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        CardBuilder {
            card: AgentCard {
                name: name.into(),
                description: description.into(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                supported_interfaces: Vec::new(),
                capabilities: AgentCapabilities {
                    streaming: Some(true),
                    push_notifications: Some(false),
                    extensions: None,
                    extended_agent_card: Some(false),
                },
                default_input_modes: vec!["text/plain".into()],
                default_output_modes: vec!["text/plain".into()],
                skills: Vec::new(),
                provider: None,
                documentation_url: None,
                icon_url: None,
                security_schemes: None,
                security_requirements: None,
                signatures: None,
            },
        }
    }

    /// The agent's version string.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.card.version = version.into();
        self
    }

    /// Whether SendStreamingMessage and SubscribeToTask are served.
    pub fn streaming(mut self, on: bool) -> Self {
        self.card.capabilities.streaming = Some(on);
        self
    }

    /// The organization behind the agent.
    pub fn provider(mut self, organization: impl Into<String>, url: impl Into<String>) -> Self {
        self.card.provider = Some(AgentProvider {
            organization: organization.into(),
            url: url.into(),
        });
        self
    }

    /// Media types the agent accepts and produces by default.
    pub fn modes(mut self, input: &[&str], output: &[&str]) -> Self {
        self.card.default_input_modes = input.iter().map(|s| s.to_string()).collect();
        self.card.default_output_modes = output.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Declares the WebSocket `/stream` endpoint as the extension
    /// [`WEBSOCKET_EXTENSION`].
    pub fn websocket_extension(mut self) -> Self {
        let params = [(
            "path".to_string(),
            serde_json::Value::String("/stream".into()),
        )]
        .into();
        self.card
            .capabilities
            .extensions
            .get_or_insert_with(Vec::new)
            .push(AgentExtension {
                uri: WEBSOCKET_EXTENSION.into(),
                description: Some(
                    "WebSocket streaming at /stream: send {\"message\": {...}}, receive \
                     message_part frames, then complete (or error)"
                        .into(),
                ),
                required: Some(false),
                params: Some(params),
            });
        self
    }

    /// Adds a skill.
    pub fn skill(
        mut self,
        id: &str,
        name: &str,
        description: &str,
        tags: &[&str],
        examples: &[&str],
    ) -> Self {
        self.card.skills.push(AgentSkill {
            id: id.into(),
            name: name.into(),
            description: description.into(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            examples: (!examples.is_empty())
                .then(|| examples.iter().map(|s| s.to_string()).collect()),
            input_modes: None,
            output_modes: None,
            security_requirements: None,
        });
        self
    }

    /// The card.
    pub fn build(self) -> AgentCard {
        self.card
    }
}

/// The interfaces of a server at `public_url`, in order of preference:
/// JSON-RPC at `public_url`, HTTP+JSON at `public_url` without its trailing
/// slash (clients append `/message:send`), gRPC at `grpc_url` or else at
/// the host and port of `public_url` (`host:port` without `http://`, as gRPC
/// clients take a target; an `https://` URL is kept, meaning TLS).
///
/// ```
/// let ifaces = abacus::card::interfaces("http://127.0.0.1:8002/", None);
/// let urls: Vec<_> = ifaces.iter().map(|i| (i.protocol_binding.as_str(), i.wire_url())).collect();
/// assert_eq!(urls, [
///     ("JSONRPC", "http://127.0.0.1:8002/".to_string()),
///     ("HTTP+JSON", "http://127.0.0.1:8002".to_string()),
///     ("GRPC", "127.0.0.1:8002".to_string()),
/// ]);
/// let grpc = abacus::card::interfaces("https://a.example/a2a/", Some("https://a.example:50051"));
/// assert_eq!(grpc[1].url, "https://a.example/a2a");
/// assert_eq!(grpc[2].url, "https://a.example:50051");
/// ```
pub fn interfaces(public_url: &str, grpc_url: Option<&str>) -> Vec<AgentInterface> {
    let grpc = match grpc_url {
        Some(url) => url.to_string(),
        None => origin(public_url).to_string(),
    };
    let interface = |url: String, binding: &str| AgentInterface {
        url,
        protocol_binding: binding.to_string(),
        protocol_version: PROTOCOL_VERSION.to_string(),
        tenant: None,
    };
    vec![
        interface(public_url.to_string(), TRANSPORT_PROTOCOL_JSONRPC),
        interface(
            public_url.trim_end_matches('/').to_string(),
            TRANSPORT_PROTOCOL_HTTP_JSON,
        ),
        interface(
            grpc.strip_prefix("http://").unwrap_or(&grpc).to_string(),
            TRANSPORT_PROTOCOL_GRPC,
        ),
    ]
}

/// `scheme://host:port` of a URL, without its path.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

/// The card as served: JSON bytes plus caching validators, computed once.
///
/// ```
/// use abacus::card::{CardBuilder, ServedCard};
/// let served = ServedCard::new(CardBuilder::new("a", "b").build(), "http://127.0.0.1:8002/");
/// assert!(served.etag().to_str().unwrap().starts_with('"'));
/// ```
#[derive(Debug, Clone)]
pub struct ServedCard {
    card: AgentCard,
    bytes: Bytes,
    etag: HeaderValue,
    last_modified: HeaderValue,
}

impl ServedCard {
    /// Serializes the card, first filling its interfaces, when it names
    /// none, with the three bindings served at `public_url` ([`interfaces`]).
    pub fn new(mut card: AgentCard, public_url: &str) -> Self {
        if card.supported_interfaces.is_empty() {
            card.supported_interfaces = interfaces(public_url, None);
        }
        let bytes = Bytes::from(serde_json::to_vec(&card).unwrap_or_default());
        Self::from_bytes(card, bytes)
    }

    fn from_bytes(card: AgentCard, bytes: Bytes) -> Self {
        let etag = format!("\"{:016x}\"", fnv1a(&bytes));
        let last_modified = httpdate::fmt_http_date(std::time::SystemTime::now());
        ServedCard {
            card,
            bytes,
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
            last_modified: HeaderValue::from_str(&last_modified)
                .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT")),
        }
    }

    /// The card signed with every key of `keys` ([`sign`], A2A §8.4), once,
    /// after everything else that changes it. The served JSON is the card
    /// with its default values removed plus `signatures`: the bytes a client
    /// canonicalizes, with or without removing defaults itself, are the bytes
    /// signed. No keys: the card as it is.
    ///
    /// ```
    /// use abacus::card::{sign, CardBuilder, ServedCard};
    /// # let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
    /// let key = sign::SigningKey::from_pem("k1", pem)?;
    /// let served = ServedCard::new(CardBuilder::new("a", "b").build(), "http://127.0.0.1:8002/")
    ///     .signed(&[key.clone()])?;
    /// let json: serde_json::Value = serde_json::from_slice(served.bytes())?;
    /// assert_eq!(sign::verify(&json, &[key.verifying_key()])?, "k1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn signed(self, keys: &[sign::SigningKey]) -> Result<Self, sign::SignError> {
        if keys.is_empty() {
            return Ok(self);
        }
        let mut json = serde_json::to_value(&self.card)
            .map_err(|e| sign::SignError::Canonical(e.to_string()))?;
        let signatures = sign::sign(&json, keys)?;
        let Some(obj) = json.as_object_mut() else {
            return Err(sign::SignError::NotAnObject);
        };
        obj.remove(sign::SIGNATURES);
        sign::strip_defaults(&mut json);
        json[sign::SIGNATURES] = serde_json::to_value(&signatures)
            .map_err(|e| sign::SignError::Canonical(e.to_string()))?;
        let bytes =
            serde_json::to_vec(&json).map_err(|e| sign::SignError::Canonical(e.to_string()))?;
        let mut card = self.card;
        card.signatures = Some(signatures);
        Ok(Self::from_bytes(card, Bytes::from(bytes)))
    }

    /// The card with its interfaces filled in.
    pub fn card(&self) -> &AgentCard {
        &self.card
    }

    /// The serialized card.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The strong validator of the serialized bytes.
    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }

    /// When the card was built (server start).
    pub fn last_modified(&self) -> &HeaderValue {
        &self.last_modified
    }
}

/// FNV-1a: a content hash for the ETag; no crypto needed for a validator.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
