//! The JWK set of `--jwt-jwks`, kept fresh in the handle the JWT scheme
//! verifies with: a file is re-read when it changes (a revoked key is gone
//! within seconds, without a restart); an `http://` URL is fetched at
//! start, then again when its `Cache-Control: max-age` runs out (clamped to
//! 1 min .. 1 h, 5 min without one), and early when a token names an
//! unknown key id (a rotation), at most once per 30 s.

use abacus_layers::auth::{Jwks, JwksHandle};
use bytes::Bytes;
use futures_util::FutureExt;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::time::{sleep, sleep_until, Instant};

/// How often a JWK set file's modification time is looked at.
const FILE_POLL: Duration = Duration::from_secs(2);
/// Refresh interval of a URL without `Cache-Control: max-age`.
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// Bounds of the refresh interval a `max-age` sets.
const MIN_REFRESH: Duration = Duration::from_secs(60);
const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// Unknown key ids cannot make us fetch more often than this.
const EARLY_REFRESH_GAP: Duration = Duration::from_secs(30);
/// First retry after a failed fetch; doubled up to [`MIN_REFRESH`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// A whole fetch: connect, answer and body.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JWK set document read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Where the JWK set comes from.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Url(Uri),
}

impl Source {
    fn parse(value: &str) -> Result<Self, String> {
        if value.starts_with("http://") || value.starts_with("https://") {
            let uri: Uri = value.parse().map_err(|e| format!("invalid URL: {e}"))?;
            if uri.authority().is_none() {
                return Err("the URL has no host".into());
            }
            return Ok(Source::Url(uri));
        }
        if value.is_empty() {
            return Err("empty".into());
        }
        Ok(Source::File(PathBuf::from(value)))
    }
}

/// Keeps the JWK set fresh until dropped (the server holds it while it serves).
#[derive(Debug)]
pub struct JwksRefresh(tokio::task::JoinHandle<()>);

impl Drop for JwksRefresh {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Loads the set `value` names into a new handle and starts keeping it
/// fresh. A file must be readable and hold a usable key; a URL that cannot
/// be fetched yet leaves the set empty (every JWT rejected) while retries
/// go on, so an identity provider's outage does not keep the server down.
pub(super) async fn load(
    value: &str,
    outbound_ca: Option<&std::path::Path>,
) -> Result<(JwksHandle, JwksRefresh), String> {
    let handle = JwksHandle::default();
    let task = match Source::parse(value)? {
        Source::File(path) => {
            let (jwks, stamp) = read_file(&path)?;
            if jwks.is_empty() {
                return Err(format!(
                    "{} has no usable signature key ({} left out: no kid, not for signatures, \
                     or an unsupported key type)",
                    path.display(),
                    jwks.skipped()
                ));
            }
            tracing::info!(path = %path.display(), keys = jwks.len(), skipped = jwks.skipped(), "JWK set loaded");
            handle.set(jwks);
            tokio::spawn(watch_file(handle.clone(), path, stamp))
        }
        Source::Url(uri) => {
            let client = jwks_client(outbound_ca)?;
            let next = match fetch(&client, &uri).await {
                Ok((jwks, max_age)) => {
                    tracing::info!(url = %uri, keys = jwks.len(), skipped = jwks.skipped(), "JWK set fetched");
                    handle.set(jwks);
                    Ok(refresh_interval(max_age))
                }
                Err(e) => {
                    tracing::warn!(url = %uri, error = %e, "JWK set not fetched: JWTs are rejected until it is; retrying");
                    Err(FIRST_RETRY)
                }
            };
            tokio::spawn(refresh_url(handle.clone(), client, uri, next))
        }
    };
    Ok((handle, JwksRefresh(task)))
}

/// What tells a changed file: its modification time and length.
type Stamp = (Option<SystemTime>, u64);

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.modified().ok(), meta.len()))
}

fn read_file(path: &Path) -> Result<(Jwks, Stamp), String> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot read {}: {e}", path.display());
    let stamp = stamp(path).map_err(|e| cannot(&e))?;
    let bytes = std::fs::read(path).map_err(|e| cannot(&e))?;
    let jwks = Jwks::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((jwks, stamp))
}

/// Re-reads the file when its stamp changes; a file that went missing or
/// became unreadable keeps the last good set (and says so once).
async fn watch_file(handle: JwksHandle, path: PathBuf, last: Stamp) {
    let mut last = Some(last);
    loop {
        sleep(FILE_POLL).await;
        let now = stamp(&path).ok();
        if now == last {
            continue;
        }
        last = now;
        match read_file(&path) {
            Ok((jwks, _)) => {
                tracing::info!(path = %path.display(), keys = jwks.len(), skipped = jwks.skipped(), "JWK set reloaded");
                handle.set(jwks);
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWK set not reloaded; the previous one stays")
            }
        }
    }
}

/// Fetches again when the interval runs out, or early (rate-limited) when
/// a token named an unknown key id; after a failure, with doubling delays.
async fn refresh_url(
    handle: JwksHandle,
    client: JwksClient,
    uri: Uri,
    first: Result<Duration, Duration>,
) {
    let (mut wait, mut retry) = match first {
        Ok(interval) => (interval, FIRST_RETRY),
        Err(retry) => (retry, retry),
    };
    // The first early refresh may come at once: a rotation right after start.
    let mut early_allowed = Instant::now();
    loop {
        let due = Instant::now() + wait;
        tokio::select! {
            () = sleep_until(due) => {}
            () = handle.refresh_requested() => {
                // Never sooner than the gap since the last early fetch.
                sleep_until(early_allowed.min(due)).await;
                early_allowed = Instant::now() + EARLY_REFRESH_GAP;
            }
        }
        match fetch(&client, &uri).await {
            Ok((jwks, max_age)) => {
                tracing::info!(url = %uri, keys = jwks.len(), skipped = jwks.skipped(), "JWK set refreshed");
                handle.set(jwks);
                wait = refresh_interval(max_age);
                retry = FIRST_RETRY;
                // Requests that came during the fetch were for the old set.
                let _ = handle.refresh_requested().now_or_never();
            }
            Err(e) => {
                tracing::warn!(url = %uri, error = %e, retry_secs = retry.as_secs(), "JWK set not refreshed; the previous one stays");
                wait = retry;
                retry = (retry * 2).min(MIN_REFRESH);
            }
        }
    }
}

/// The interval a `max-age` asks for, within bounds.
fn refresh_interval(max_age: Option<Duration>) -> Duration {
    max_age.map_or(DEFAULT_REFRESH, |a| a.clamp(MIN_REFRESH, MAX_REFRESH))
}

/// `max-age` of a `Cache-Control` value (`no-cache`, `no-store`: zero).
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').map(str::trim).find_map(|directive| {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        let secs = lower.strip_prefix("max-age=")?.trim_matches('"');
        secs.parse().ok().map(Duration::from_secs)
    })
}

type JwksClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The client JWK sets are fetched with: `http://`, or `https://` verified
/// against the system's roots or `--outbound-ca`.
fn jwks_client(outbound_ca: Option<&std::path::Path>) -> Result<JwksClient, String> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(FETCH_TIMEOUT));
    let connector = crate::http::tls::https_connector(outbound_ca, connector)
        .map_err(|e| format!("--outbound-ca: {e}"))?;
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1)
        .build(connector))
}

/// One fetch: the set and the answer's `max-age`.
async fn fetch(client: &JwksClient, uri: &Uri) -> Result<(Jwks, Option<Duration>), String> {
    let request = Request::get(uri.clone())
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .body(Empty::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let fetched = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("cannot fetch: {e}"))?;
        if response.status() != StatusCode::OK {
            return Err(format!("HTTP {}", response.status()));
        }
        let max_age = response
            .headers()
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(max_age);
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| format!("cannot read the body: {e}"))?
            .to_bytes();
        Ok((body, max_age))
    };
    let (body, max_age) = tokio::time::timeout(FETCH_TIMEOUT, fetched)
        .await
        .map_err(|_| format!("no JWK set within {}s", FETCH_TIMEOUT.as_secs()))??;
    let jwks = Jwks::parse(&body).map_err(|e| e.to_string())?;
    Ok((jwks, max_age))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_sets_the_interval_within_bounds() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("Max-Age=\"30\""), Some(Duration::from_secs(30)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(refresh_interval(None), DEFAULT_REFRESH);
        assert_eq!(refresh_interval(Some(Duration::ZERO)), MIN_REFRESH);
        assert_eq!(
            refresh_interval(Some(Duration::from_secs(86400))),
            MAX_REFRESH
        );
        assert_eq!(
            refresh_interval(Some(Duration::from_secs(600))),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn sources_are_files_or_plain_http_urls() {
        assert!(matches!(
            Source::parse("/etc/jwks.json"),
            Ok(Source::File(_))
        ));
        assert!(matches!(
            Source::parse("http://idp.internal/jwks"),
            Ok(Source::Url(_))
        ));
        assert!(matches!(
            Source::parse("https://idp.example/jwks"),
            Ok(Source::Url(_))
        ));
        assert!(Source::parse("").is_err());
    }
}
