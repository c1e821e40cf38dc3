//! TLS with rustls (the `ring` provider): the listener's certificate,
//! reloaded when its files change, optional client certificates (mutual
//! TLS), and the verified client configuration of every outbound client.
//!
//! * **Serving**: [`ServerTls`] holds the current `ServerConfig` (ALPN `h2`
//!   and `http/1.1`). Every new connection takes the config in force when
//!   it was accepted, so a swap never touches an open connection. The
//!   accept loop polls the files' modification times every
//!   [`RELOAD_POLL`] (and reloads on `SIGHUP`); a new pair that does not
//!   load (half written, key of another certificate) is logged and the old
//!   one kept.
//! * **Mutual TLS**: with a client CA, a client may present a certificate;
//!   one that does not chain to the CA fails the handshake, none at all is
//!   allowed (probes, the public card) and the request is left to the
//!   authentication layer. The verified certificate's subject common name
//!   (or its whole RFC 4514 subject) reaches every request of the
//!   connection as [`TlsClientIdentity`].
//! * **Outbound**: [`client_config`] and [`https_connector`] verify servers
//!   against the system's trust store (`rustls-native-certs`) or, when
//!   given, a CA bundle (`--outbound-ca`).

use abacus_layers::auth::TlsClientIdentity;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

/// How often the certificate files are checked for a renewal.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// A TLS file or configuration that cannot be used.
///
/// ```
/// let e = abacus::http::tls::client_config(Some("/nonexistent/ca.pem".as_ref())).unwrap_err();
/// assert!(e.to_string().contains("/nonexistent/ca.pem"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// The files of the listener's TLS: certificate chain and private key
/// (PEM), and the CA bundle client certificates are verified against.
///
/// ```
/// let files = abacus::http::tls::TlsFiles::new("tls.crt", "tls.key");
/// assert!(files.client_ca.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, end entity first (`--tls-cert`).
    pub cert: PathBuf,
    /// Its private key: PKCS#8, PKCS#1 or SEC1 (`--tls-key`).
    pub key: PathBuf,
    /// Client certificates are asked for and verified against these CAs
    /// (`--tls-client-ca`).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// A certificate and key, no client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsFiles {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        }
    }

    /// Also asks for client certificates signed by the CAs in `ca`.
    ///
    /// ```
    /// let files = abacus::http::tls::TlsFiles::new("tls.crt", "tls.key").client_ca("clients.pem");
    /// assert!(files.client_ca.is_some());
    /// ```
    pub fn client_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(ca.into());
        self
    }

    /// The files watched for a change: modification time and length.
    fn stamps(&self) -> [Option<(SystemTime, u64)>; 3] {
        let stamp = |p: &Path| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        };
        [
            stamp(&self.cert),
            stamp(&self.key),
            self.client_ca.as_deref().and_then(stamp),
        ]
    }
}

/// The listener's TLS: the config new connections get, swapped when the
/// files are renewed. Clones share it.
///
/// ```no_run
/// use abacus::http::tls::{ServerTls, TlsFiles};
/// let tls = ServerTls::load(TlsFiles::new("tls.crt", "tls.key")).unwrap();
/// let opts = abacus::http::ServeOptions { tls: Some(tls), ..Default::default() };
/// # let _ = opts;
/// ```
#[derive(Clone)]
pub struct ServerTls(Arc<Inner>);

struct Inner {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    /// The files as last loaded (or tried).
    stamps: Mutex<[Option<(SystemTime, u64)>; 3]>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.0.files)
            .finish()
    }
}

/// The same listener TLS (one shared state), not equal files.
impl PartialEq for ServerTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ServerTls {}

impl ServerTls {
    /// Loads `files`; an error names the file at fault.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let stamps = files.stamps();
        let config = server_config(&files)?;
        Ok(ServerTls(Arc::new(Inner {
            files,
            current: RwLock::new(Arc::new(config)),
            stamps: Mutex::new(stamps),
        })))
    }

    /// The config a connection accepted now gets.
    pub fn config(&self) -> Arc<ServerConfig> {
        match self.0.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether a client certificate is asked for.
    pub fn mutual(&self) -> bool {
        self.0.files.client_ca.is_some()
    }

    /// Reads the files again and, if they load, swaps the config in; on an
    /// error the current config stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamps = self.0.files.stamps();
        // Recorded first: a bad file is reported once, not at every poll.
        if let Ok(mut s) = self.0.stamps.lock() {
            *s = stamps;
        }
        let config = Arc::new(server_config(&self.0.files)?);
        match self.0.current.write() {
            Ok(mut c) => *c = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }

    /// [`reload`](Self::reload) if a file changed since the last load:
    /// `None` when none did.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let now = self.0.files.stamps();
        let changed = self.0.stamps.lock().map_or(true, |s| *s != now);
        changed.then(|| self.reload())
    }

    /// Reloads on a change seen every `every`, and on `SIGHUP`; runs until
    /// dropped.
    pub(crate) async fn watch(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let forced = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = async { hup.as_mut()?.recv().await } => true,
            };
            #[cfg(not(unix))]
            let forced = {
                tick.tick().await;
                false
            };
            let outcome = if forced {
                Some(self.reload())
            } else {
                self.reload_if_changed()
            };
            match outcome {
                Some(Ok(())) => {
                    tracing::info!(cert = %self.0.files.cert.display(), "TLS certificate reloaded")
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded; keeping the previous one")
                }
                None => {}
            }
        }
    }
}

/// The subject of a connection's verified client certificate: its common
/// name, or the whole subject (RFC 4514) when it has none.
pub(crate) fn client_identity(conn: &ServerConnection) -> Option<TlsClientIdentity> {
    let cert = conn.peer_certificates()?.first()?;
    subject_name(cert).map(TlsClientIdentity::new)
}

/// The common name of a DER certificate's subject, or the whole subject.
fn subject_name(der: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let subject = cert.tbs_certificate().subject();
    match subject.common_name() {
        Ok(Some(cn)) => Some(cn.value().into_owned()),
        _ => Some(subject.to_string()).filter(|s| !s.is_empty()),
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(path)? {
        roots
            .add(cert)
            .map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// The listener's config for `files`: ALPN `h2` and `http/1.1`, TLS 1.2
/// and 1.3, client certificates verified when a client CA is given.
///
/// ```no_run
/// let files = abacus::http::tls::TlsFiles::new("tls.crt", "tls.key");
/// let config = abacus::http::tls::server_config(&files).unwrap();
/// assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
/// ```
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let chain = certs(&files.cert)?;
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError(format!("{}: {e}", files.key.display())))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS versions: {e}")))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            // Without a certificate a client still connects (probes, the
            // public card); the auth layer decides what it may call.
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| TlsError(format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        TlsError(format!(
            "{} with {}: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The system's trust store, read once.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "reading the system's trust store");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(
                    ignored,
                    "no usable CA in the system's trust store: outbound https will fail \
                     unless --outbound-ca is given"
                );
            }
            Arc::new(roots)
        })
        .clone()
}

/// The config of an outbound TLS client: servers verified against the CAs
/// in the PEM bundle `ca`, or the system's trust store without one. ALPN is
/// left to the caller ([`https_connector`] offers `h2` and `http/1.1`).
///
/// ```
/// let config = abacus::http::tls::client_config(None).unwrap();
/// assert!(config.alpn_protocols.is_empty());
/// ```
pub fn client_config(ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let roots = match ca {
        Some(path) => Arc::new(roots(path)?),
        None => system_roots(),
    };
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An `http` and `https` connector over `http`, verifying servers as
/// [`client_config`] does, HTTP/1.1 and h2 by ALPN.
///
/// ```
/// use hyper_util::client::legacy::{connect::HttpConnector, Client};
/// let connector = abacus::http::tls::https_connector(None, HttpConnector::new()).unwrap();
/// let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
///     Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
/// # let _ = client;
/// ```
pub fn https_connector<R>(
    ca: Option<&Path>,
    mut http: HttpConnector<R>,
) -> Result<HttpsConnector<HttpConnector<R>>, TlsError> {
    http.enforce_http(false);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_config(ca)?)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_name_themselves() {
        let e =
            server_config(&TlsFiles::new("/nonexistent/c.pem", "/nonexistent/k.pem")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/c.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config(Some(&empty)).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }
}
