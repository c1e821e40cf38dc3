//! The browser playground: one HTML page, its script and its style sheet,
//! embedded in the binary and served at `GET /` to browsers.
//!
//! `GET /` is content-negotiated: a request whose `Accept` names
//! `text/html` gets the page, any other keeps the answer it had before (405,
//! `Allow: POST`: `/` is the JSON-RPC endpoint). The page talks to the agent
//! over the JSON-RPC binding of the same origin, so it needs no CORS, and
//! loads nothing from elsewhere: it works offline, under a strict
//! `Content-Security-Policy` without inline script or style.

use super::body::ResponseBody;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use std::sync::OnceLock;

/// Whether the edge serves the playground page (see the module docs).
///
/// [`HttpOptions::playground`](super::HttpOptions::playground) says which;
/// `abacus::Server` decides from `--playground` and the authentication
/// configured ([`Config::playground`](crate::config::Config::playground)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Playground {
    /// `GET /` with `Accept: text/html`, `/playground.js` and
    /// `/playground.css` are served.
    Served,
    /// None of them: `GET /` is 405 whatever it accepts.
    #[default]
    Off,
}

impl Playground {
    /// True for a request of the playground's files when they are served:
    /// with authentication configured they are public, as the agent card
    /// is (a browser cannot add credentials to a page load; the page itself
    /// sends them with each call it makes).
    ///
    /// ```
    /// use abacus::http::Playground;
    /// let (page, _) = http::Request::get("/")
    ///     .header("accept", "text/html")
    ///     .body(())
    ///     .unwrap()
    ///     .into_parts();
    /// assert!(Playground::Served.is_public(&page));
    /// assert!(!Playground::Off.is_public(&page));
    /// let (rpc, _) = http::Request::post("/").body(()).unwrap().into_parts();
    /// assert!(!Playground::Served.is_public(&rpc));
    /// ```
    pub fn is_public(self, parts: &Parts) -> bool {
        if self == Playground::Off || !matches!(parts.method, Method::GET | Method::HEAD) {
            return false;
        }
        match Asset::at(parts.uri.path()) {
            Some(Asset::Page) => accepts_html(&parts.headers),
            Some(_) => true,
            None => false,
        }
    }
}

/// One of the playground's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asset {
    /// The page, at `/`.
    Page,
    /// `/playground.js`.
    Script,
    /// `/playground.css`.
    Style,
}

impl Asset {
    /// Every asset with its path.
    pub(crate) const ROUTES: [(&'static str, Asset); 3] = [
        ("/", Asset::Page),
        ("/playground.js", Asset::Script),
        ("/playground.css", Asset::Style),
    ];

    /// The asset served at `path`.
    fn at(path: &str) -> Option<Asset> {
        Self::ROUTES
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, asset)| *asset)
    }

    fn bytes(self) -> &'static [u8] {
        match self {
            Asset::Page => include_bytes!("playground/index.html"),
            Asset::Script => include_bytes!("playground/playground.js"),
            Asset::Style => include_bytes!("playground/playground.css"),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Asset::Page => "text/html; charset=utf-8",
            Asset::Script => "text/javascript; charset=utf-8",
            Asset::Style => "text/css; charset=utf-8",
        }
    }

    /// The strong ETag of the file's bytes, computed once.
    fn etag(self) -> &'static HeaderValue {
        static TAGS: OnceLock<[HeaderValue; 3]> = OnceLock::new();
        let tags = TAGS.get_or_init(|| {
            [Asset::Page, Asset::Script, Asset::Style].map(|a| {
                HeaderValue::from_str(&format!("\"{:016x}\"", fnv1a(a.bytes())))
                    .unwrap_or(HeaderValue::from_static("\"playground\""))
            })
        });
        &tags[self as usize]
    }
}

/// What the page may load and do: its own script, style and calls, the
/// images a user picks (previewed from `blob:` URLs), nothing else, and it
/// may not be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

/// Answers a request routed to `asset`.
pub(crate) fn respond<B>(asset: Asset, req: &Request<B>) -> Response<ResponseBody> {
    if asset == Asset::Page && !accepts_html(req.headers()) {
        // `/` stays the JSON-RPC endpoint for everything but a browser.
        let mut resp = super::routes::plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        let h = resp.headers_mut();
        h.insert(header::ALLOW, HeaderValue::from_static("POST"));
        h.insert(header::VARY, HeaderValue::from_static("accept"));
        return resp;
    }
    let etag = asset.etag();
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes() || v == "*");
    let mut resp = if fresh {
        let mut r = Response::new(ResponseBody::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else if req.method() == Method::HEAD {
        Response::new(ResponseBody::empty())
    } else {
        Response::new(ResponseBody::from(bytes::Bytes::from_static(asset.bytes())))
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type()),
    );
    h.insert(header::ETAG, etag.clone());
    // Revalidated on every load (a 304 is cheap): a new binary's page is
    // never hidden behind an old one.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if asset == Asset::Page {
        h.insert(header::VARY, HeaderValue::from_static("accept"));
    }
    resp
}

/// True when `Accept` names `text/html` (browsers' page loads do; API
/// clients send `application/json` or nothing), with a quality above 0.
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut params = range.split(';').map(str::trim);
            let media = params.next().unwrap_or_default();
            let refused = params.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("text/html") && !refused
        })
}

/// FNV-1a, 64 bits: the files' ETags (stable for the same bytes, no
/// dependency for it).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        accepts_html(&headers)
    }

    #[test]
    fn only_an_accept_naming_html_gets_the_page() {
        assert!(accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(accept("Text/HTML; q=0.5"));
        assert!(!accept("application/json"));
        assert!(!accept("*/*"));
        assert!(!accept("text/html;q=0, application/json"));
        assert!(!accepts_html(&HeaderMap::new()));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_nothing_inline() {
        let page = std::str::from_utf8(Asset::Page.bytes()).unwrap();
        assert!(page.contains(r#"<script src="/playground.js" defer></script>"#));
        assert!(page.contains(r#"<link rel="stylesheet" href="/playground.css">"#));
        for asset in [Asset::Page, Asset::Script, Asset::Style] {
            let text = std::str::from_utf8(asset.bytes()).unwrap();
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{asset:?} names another origin"
            );
        }
        assert!(
            !page.contains("<script>") && !page.contains("style="),
            "inline script or style"
        );
    }

    #[test]
    fn each_file_has_its_own_etag() {
        let tags: Vec<_> = Asset::ROUTES
            .iter()
            .map(|(_, a)| a.etag().clone())
            .collect();
        assert!(tags[0] != tags[1] && tags[1] != tags[2]);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
