//! [`RequestMeta`] from an HTTP request, the same way for every binding.

use crate::protocol::{A2AError, Binding, Principal, RequestMeta, PROTOCOL_VERSION};
use http::HeaderName;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The client's address, put in the request extensions by [`serve`](super::serve)
/// (insert it yourself when you serve [`HttpApp`](super::HttpApp) from
/// another server).
///
/// ```
/// let peer = abacus::http::PeerAddr("127.0.0.1:5000".parse().unwrap());
/// assert_eq!(peer.0.port(), 5000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The header a client sets its deadline with, in milliseconds.
pub const TIMEOUT_HEADER: &str = "x-timeout-ms";
/// The header naming the protocol version the client speaks.
pub const VERSION_HEADER: &str = "a2a-version";
/// The header listing the extensions the client asks for.
pub const EXTENSIONS_HEADER: &str = "a2a-extensions";
/// The header a reconnecting SSE client names the last event it saw with.
pub const LAST_EVENT_ID_HEADER: &str = "last-event-id";

// Parsed once: a lookup by `&str` parses and checks the name every time.
static TIMEOUT_NAME: HeaderName = HeaderName::from_static(TIMEOUT_HEADER);
static VERSION_NAME: HeaderName = HeaderName::from_static(VERSION_HEADER);
static EXTENSIONS_NAME: HeaderName = HeaderName::from_static(EXTENSIONS_HEADER);
static LAST_EVENT_ID_NAME: HeaderName = HeaderName::from_static(LAST_EVENT_ID_HEADER);

static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh server-assigned request id.
pub(crate) fn next_request_id() -> u64 {
    NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed)
}

/// What an HTTP request tells about an A2A call besides the call itself:
/// a fresh request id, the deadline of `X-Timeout-Ms`, `A2A-Version`, the
/// extension URIs of `A2A-Extensions` (comma-separated, repeatable), the
/// peer, and the caller an authentication layer in front put in the
/// request extensions as a [`Principal`] (anonymous otherwise), and the
/// `binding` the request came in on, and `Last-Event-ID`. The tenant is left to the binding,
/// which finds it in the parameters or the path.
///
/// ```
/// let req = http::Request::builder()
///     .header("x-timeout-ms", "1500")
///     .header("a2a-version", " 1.0 ")
///     .header("a2a-extensions", "urn:a, urn:b")
///     .body(())
///     .unwrap();
/// let (parts, ()) = req.into_parts();
/// let meta = abacus::http::request_meta(&parts, None, abacus::protocol::Binding::Rest);
/// assert_eq!(meta.timeout, Some(std::time::Duration::from_millis(1500)));
/// assert_eq!(meta.version.as_deref(), Some("1.0"));
/// assert_eq!(meta.extensions, ["urn:a", "urn:b"]);
/// assert!(meta.principal.is_anonymous());
/// assert_eq!(meta.binding, abacus::protocol::Binding::Rest);
/// ```
pub fn request_meta(
    parts: &http::request::Parts,
    peer: Option<SocketAddr>,
    binding: Binding,
) -> RequestMeta {
    let headers = &parts.headers;
    let text = |name: &HeaderName| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
    };
    RequestMeta {
        request_id: next_request_id(),
        timeout: text(&TIMEOUT_NAME)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis),
        version: text(&VERSION_NAME).map(|v| v.trim().to_string()),
        extensions: headers
            .get_all(&EXTENSIONS_NAME)
            .iter()
            .flat_map(|v| list_items(v.as_bytes()))
            .collect(),
        tenant: None,
        peer: peer.or_else(|| parts.extensions.get::<PeerAddr>().map(|p| p.0)),
        principal: parts
            .extensions
            .get::<Principal>()
            .cloned()
            .unwrap_or_default(),
        binding,
        last_event_id: text(&LAST_EVENT_ID_NAME).map(|v| v.trim().to_string()),
    }
}

/// Checks the `A2A-Version` a client speaks, the same way on every binding:
/// 1.0 and its patch releases are served; no header means 0.3 (A2A §6.4).
pub(crate) fn check_version(version: Option<&str>) -> Result<(), A2AError> {
    match version {
        Some(v) if v == PROTOCOL_VERSION || v.starts_with("1.0.") => Ok(()),
        Some(v) => Err(A2AError::version_not_supported(v)),
        None => Err(A2AError::version_not_supported(
            "0.3 (no A2A-Version header; this server speaks 1.0)",
        )),
    }
}

/// The items of a comma-separated header value, trimmed, empty ones left out.
fn list_items(value: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(value)
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_and_the_peer_comes_from_the_extensions() {
        let mut req = http::Request::new(());
        let addr: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        req.extensions_mut().insert(PeerAddr(addr));
        req.extensions_mut().insert(Principal::new("alice"));
        let (parts, ()) = req.into_parts();
        let a = request_meta(&parts, None, Binding::JsonRpc);
        let b = request_meta(&parts, None, Binding::JsonRpc);
        assert_ne!(a.request_id, b.request_id);
        assert_eq!(a.peer, Some(addr));
        assert_eq!(a.principal.subject(), Some("alice"));
        assert_eq!(a.timeout, None);
        assert!(a.extensions.is_empty());
    }
}
