//! TLS on the listener, certificate reload, mutual TLS and verified
//! outbound TLS, with a CA and certificates made by rcgen for each test.

use crate::common::{bound_memory_config, get, send_body, texts};
use abacus::agent::{Agent, RequestContext, TaskUpdater};
use abacus::external::{ExternalConfig, ExternalError, ExternalMath};
use abacus::http::tls::{ServerTls, TlsFiles};
use abacus::http::{serve_with, ServeOptions};
use abacus::protocol::types::{A2AError, Part};
use abacus::protocol::A2ARequest;
use abacus::stack::ToRpcError;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};
use tokio_rustls::client::TlsStream;
use tower::{ServiceBuilder, ServiceExt};

/// A test certificate authority.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A certificate signed by a [`TestCa`], and its key.
struct Leaf {
    cert: String,
    key: String,
    der: Vec<u8>,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(&self, cn: Option<&str>, usage: ExtendedKeyUsagePurpose, serial: u64) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        match cn {
            Some(cn) => params.distinguished_name.push(DnType::CommonName, cn),
            None => {
                params
                    .distinguished_name
                    .push(DnType::OrganizationName, "Abacus Tests");
                params
                    .distinguished_name
                    .push(DnType::OrganizationalUnitName, "robots");
            }
        }
        params.extended_key_usages = vec![usage];
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    fn server(&self, serial: u64) -> Leaf {
        self.leaf(
            Some("abacus.test"),
            ExtendedKeyUsagePurpose::ServerAuth,
            serial,
        )
    }

    fn client(&self, cn: Option<&str>) -> Leaf {
        self.leaf(cn, ExtendedKeyUsagePurpose::ClientAuth, 1)
    }
}

/// The PEM files of a server: certificate, key and CA bundles.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the server's pair as a renewal does: key and certificate
    /// replaced by renaming complete files over them.
    fn install(&self, leaf: &Leaf) -> TlsFiles {
        for (name, pem) in [("tls.key", &leaf.key), ("tls.crt", &leaf.cert)] {
            let tmp = self.path(&format!("{name}.new"));
            std::fs::write(&tmp, pem).unwrap();
            std::fs::rename(&tmp, self.path(name)).unwrap();
        }
        TlsFiles::new(self.path("tls.crt"), self.path("tls.key"))
    }

    fn write(&self, name: &str, pem: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, pem).unwrap();
        path
    }
}

/// Answers "42"; a message "wait" holds its task working until the gate
/// gets a permit.
struct Gated(Arc<Semaphore>);

#[async_trait::async_trait]
impl Agent for Gated {
    async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        if ctx.text() == "wait" {
            up.start_work().await?;
            let _ = self.0.acquire().await;
        }
        let answer = up.agent_message(vec![Part::text("42")]);
        up.complete(Some(answer)).await
    }
}

/// A `Gated` agent served by `abacus::Server` over TLS.
struct Running {
    addr: SocketAddr,
    url: String,
    gate: Arc<Semaphore>,
    /// The principal of every A2A request the core saw.
    principals: Arc<Mutex<Vec<Option<String>>>>,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(files: &TlsFiles, config_for: impl FnOnce(&mut abacus::config::Config)) -> Self {
        let (listener, mut config) = bound_memory_config().await;
        let addr = listener.local_addr().unwrap();
        config.tls_cert = Some(files.cert.clone());
        config.tls_key = Some(files.key.clone());
        config.tls_client_ca = files.client_ca.clone();
        config_for(&mut config);
        let gate = Arc::new(Semaphore::new(0));
        let principals = Arc::new(Mutex::new(Vec::new()));
        let seen = principals.clone();
        let card = abacus::card::CardBuilder::new("gated", "answers 42").build();
        let server = abacus::Server::new(Gated(gate.clone()), card)
            .config(config)
            .stack(move |core, _| {
                let record = move |req: A2ARequest| {
                    let who = req.meta.principal.subject().map(String::from);
                    seen.lock().unwrap().push(who);
                    req
                };
                let svc = ServiceBuilder::new()
                    .map_request(record)
                    .service(core)
                    .map_err(|e| e.to_rpc_error());
                tower::util::BoxCloneSyncService::new(svc)
            });
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run_on(listener, async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            url: format!("https://127.0.0.1:{}/", addr.port()),
            gate,
            principals,
            stop: Some(stop),
            handle,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.handle.await.unwrap().unwrap();
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting `ca`, presenting `cert` if given, offering `alpn`.
fn client_config(ca: &str, cert: Option<&Leaf>, alpn: &[&[u8]]) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(leaf.der.clone())],
                PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A TLS connection to `addr` (verified as 127.0.0.1).
async fn connect(addr: SocketAddr, config: ClientConfig) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The end-entity certificate a new connection to `addr` is shown.
async fn served_cert(addr: SocketAddr, ca: &str) -> Vec<u8> {
    let tls = connect(addr, client_config(ca, None, &[b"http/1.1"]))
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// One request over `tls`, in the protocol ALPN chose: status, headers, body.
async fn exchange(
    tls: TlsStream<TcpStream>,
    req: http::Request<Full<Bytes>>,
) -> Result<(u16, http::HeaderMap, Bytes), String> {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let resp = if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await
    }
    .map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, headers, body))
}

fn get_req(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(format!("https://127.0.0.1{path}"))
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn send_req(text: &str) -> http::Request<Full<Bytes>> {
    http::Request::post("https://127.0.0.1/")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("a2a-version", "1.0")
        .body(Full::new(Bytes::from(send_body("SendMessage", text))))
        .unwrap()
}

/// Connects with `config` and makes one request.
async fn request(
    addr: SocketAddr,
    config: ClientConfig,
    req: http::Request<Full<Bytes>>,
) -> Result<(u16, http::HeaderMap, Bytes), String> {
    let tls = connect(addr, config).await.map_err(|e| e.to_string())?;
    exchange(tls, req).await
}

#[tokio::test]
async fn https_serves_http1_and_h2_by_alpn() {
    let ca = TestCa::new("Abacus Test CA");
    let files = Files::new();
    let tls = files.install(&ca.server(1));
    let s = Running::start(&tls, |_| {}).await;

    for (alpn, expect) in [(&b"h2"[..], &b"h2"[..]), (b"http/1.1", b"http/1.1")] {
        let tls = connect(s.addr, client_config(&ca.pem, None, &[alpn]))
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(expect));
        let (status, _, body) = exchange(tls, send_req("6 * 7")).await.unwrap();
        assert_eq!(status, 200);
        let reply: Value = serde_json::from_slice(&body).unwrap();
        assert!(texts(&reply).contains(&"42".to_string()), "{reply}");

        let tls = connect(s.addr, client_config(&ca.pem, None, &[alpn]))
            .await
            .unwrap();
        let (status, _, body) = exchange(tls, get_req("/.well-known/agent-card.json"))
            .await
            .unwrap();
        assert_eq!(status, 200);
        let card: Value = serde_json::from_slice(&body).unwrap();
        // The card advertises the https URL.
        let urls = card.to_string();
        assert!(urls.contains(&s.url), "{card}");
    }
    // The crate's own client speaks https too.
    let ca_path = files.write("ca.pem", &ca.pem);
    let client = abacus::client::JsonRpcClient::with_ca(&s.url, Some(&ca_path)).unwrap();
    let reply = client
        .call(
            "SendMessage",
            abacus::client::JsonRpcClient::text_params("6 * 7"),
        )
        .await
        .unwrap();
    assert!(texts(&reply).contains(&"42".to_string()), "{reply}");
    s.stop().await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_fails_and_silent_clients_are_cut() {
    let ca = TestCa::new("Abacus Test CA");
    let files = Files::new();
    let tls = files.install(&ca.server(1));
    let s = Running::start(&tls, |c| {
        c.idle_timeout_ms = 1500;
        c.max_connections = 1;
    })
    .await;

    // Plain HTTP: an error, not a hang until the client's own deadline.
    let e = get(&format!("http://{}/health", s.addr)).await.unwrap_err();
    assert!(!e.contains("no answer"), "{e}");

    // A client that opens TCP and says nothing holds the only slot, then
    // is cut after the handshake timeout.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let early = tokio::time::timeout(
        Duration::from_millis(300),
        connect(s.addr, client_config(&ca.pem, None, &[b"http/1.1"])),
    )
    .await;
    assert!(early.is_err(), "a handshake got past the connection limit");
    let mut buf = [0u8; 16];
    let cut = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buf)).await;
    assert!(
        matches!(cut, Ok(Ok(0)) | Ok(Err(_))),
        "the silent client was not cut: {cut:?}"
    );
    // Its slot is free again.
    let served = tokio::time::timeout(
        Duration::from_secs(20),
        request(
            s.addr,
            client_config(&ca.pem, None, &[b"http/1.1"]),
            get_req("/health"),
        ),
    )
    .await
    .expect("served after the silent client left");
    assert_eq!(served.unwrap().0, 200);
    s.stop().await;
}

#[tokio::test]
async fn a_renewed_certificate_is_served_to_new_connections_while_open_streams_go_on() {
    let ca = TestCa::new("Abacus Test CA");
    let files = Files::new();
    let first = ca.server(1);
    let tls = files.install(&first);
    let s = Running::start(&tls, |_| {}).await;
    assert_eq!(served_cert(s.addr, &ca.pem).await, first.der);

    // A stream in progress over TLS.
    let ca_path = files.write("ca.pem", &ca.pem);
    let client = abacus::client::JsonRpcClient::with_ca(&s.url, Some(&ca_path)).unwrap();
    let mut events = client
        .stream(
            "SendStreamingMessage",
            abacus::client::JsonRpcClient::text_params("wait"),
        )
        .await
        .unwrap();
    let opened = events.next().await.unwrap().unwrap();
    assert!(opened.get("result").is_some(), "{opened}");

    // Renewal: a new key and certificate (new serial) over the old files.
    let renewed = ca.server(2);
    files.install(&renewed);
    let mut seen = Vec::new();
    for _ in 0..150 {
        seen = served_cert(s.addr, &ca.pem).await;
        if seen == renewed.der {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, renewed.der, "new connections never got the renewal");

    // The stream opened before the renewal still runs to its end.
    s.gate.add_permits(1);
    let mut last = opened;
    while let Some(ev) = events.next().await {
        last = ev.unwrap();
    }
    assert!(
        last.to_string().contains("TASK_STATE_COMPLETED"),
        "the stream did not complete: {last}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_bad_replacement_keeps_the_previous_certificate() {
    let ca = TestCa::new("Abacus Test CA");
    let files = Files::new();
    let first = ca.server(1);
    let tls = ServerTls::load(files.install(&first)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from("ok"))))
    });
    let opts = ServeOptions {
        tls: Some(tls.clone()),
        ..ServeOptions::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve_with(
            listener,
            app,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
            &opts,
        )
        .await
    });

    // A truncated certificate, then a key that is not the certificate's.
    std::fs::write(files.path("tls.crt"), &first.cert[..first.cert.len() / 2]).unwrap();
    let e = tls.reload().unwrap_err();
    assert!(e.to_string().contains("tls.crt"), "{e}");
    assert_eq!(served_cert(addr, &ca.pem).await, first.der);
    std::fs::write(files.path("tls.crt"), &first.cert).unwrap();
    std::fs::write(files.path("tls.key"), ca.server(3).key).unwrap();
    assert!(tls.reload().is_err(), "a key of another certificate loaded");
    assert_eq!(served_cert(addr, &ca.pem).await, first.der);
    let (status, _, body) = request(addr, client_config(&ca.pem, None, &[b"h2"]), get_req("/"))
        .await
        .unwrap();
    assert_eq!((status, &body[..]), (200, &b"ok"[..]));

    // A good pair again: taken.
    let renewed = ca.server(4);
    files.install(&renewed);
    tls.reload().unwrap();
    assert_eq!(served_cert(addr, &ca.pem).await, renewed.der);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn mutual_tls_makes_the_certificate_subject_the_principal() {
    let ca = TestCa::new("Abacus Test CA");
    let clients = TestCa::new("Abacus Clients CA");
    let stranger = TestCa::new("Some Other CA");
    let files = Files::new();
    let tls = files
        .install(&ca.server(1))
        .client_ca(files.write("clients.pem", &clients.pem));
    let s = Running::start(&tls, |_| {}).await;

    // A certificate of the client CA: accepted, its CN is the principal;
    // one without a CN is known by its whole subject.
    let billing = clients.client(Some("billing-service"));
    let (status, _, body) = request(
        s.addr,
        client_config(&ca.pem, Some(&billing), &[b"h2"]),
        send_req("6 * 7"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let nameless = clients.client(None);
    let (status, _, _) = request(
        s.addr,
        client_config(&ca.pem, Some(&nameless), &[b"http/1.1"]),
        send_req("6 * 7"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        *s.principals.lock().unwrap(),
        [
            Some("billing-service".to_string()),
            Some("OU=robots,O=Abacus Tests".to_string())
        ]
    );

    // A certificate of another CA fails the handshake.
    let intruder = stranger.client(Some("billing-service"));
    let refused = request(
        s.addr,
        client_config(&ca.pem, Some(&intruder), &[b"http/1.1"]),
        send_req("6 * 7"),
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");

    // No certificate: A2A calls get 401, the card and health stay public.
    let plain = || client_config(&ca.pem, None, &[b"http/1.1"]);
    let (status, headers, _) = request(s.addr, plain(), send_req("6 * 7")).await.unwrap();
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "MutualTLS");
    let (status, _, _) = request(s.addr, plain(), get_req("/health")).await.unwrap();
    assert_eq!(status, 200);
    let (status, _, body) = request(s.addr, plain(), get_req("/.well-known/agent-card.json"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let card: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        card["securitySchemes"]["mtls"]
            .get("mtlsSecurityScheme")
            .is_some(),
        "{card}"
    );
    assert_eq!(
        card["securityRequirements"],
        serde_json::json!([{"schemes": {"mtls": {"list": []}}}]),
        "{card}"
    );
    assert_eq!(
        s.principals.lock().unwrap().len(),
        2,
        "a 401 reached the core"
    );
    s.stop().await;
}

#[tokio::test]
async fn mutual_tls_is_one_more_scheme_beside_api_keys() {
    let ca = TestCa::new("Abacus Test CA");
    let files = Files::new();
    let tls = files
        .install(&ca.server(1))
        .client_ca(files.write("clients.pem", &ca.pem));
    let s = Running::start(&tls, |c| c.api_keys = Some("alice:k-alice".into())).await;
    let plain = || client_config(&ca.pem, None, &[b"http/1.1"]);
    let mut with_key = send_req("6 * 7");
    with_key
        .headers_mut()
        .insert("x-api-key", http::HeaderValue::from_static("k-alice"));
    assert_eq!(request(s.addr, plain(), with_key).await.unwrap().0, 200);
    let cert = ca.client(Some("ops-robot"));
    let with_cert = client_config(&ca.pem, Some(&cert), &[b"http/1.1"]);
    assert_eq!(
        request(s.addr, with_cert, send_req("6 * 7"))
            .await
            .unwrap()
            .0,
        200
    );
    let (status, headers, _) = request(s.addr, plain(), send_req("6 * 7")).await.unwrap();
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "ApiKey header=\"x-api-key\"");
    assert_eq!(
        *s.principals.lock().unwrap(),
        [Some("alice".to_string()), Some("ops-robot".to_string())]
    );
    s.stop().await;
}

#[tokio::test]
async fn one_tls_flag_alone_stops_the_server_from_starting() {
    let files = Files::new();
    let cert = files.write("tls.crt", &TestCa::new("CA").server(1).cert);
    let (listener, mut config) = bound_memory_config().await;
    config.tls_cert = Some(cert);
    let card = abacus::card::CardBuilder::new("gated", "answers 42").build();
    let e = abacus::Server::new(Gated(Arc::new(Semaphore::new(0))), card)
        .config(config)
        .run_on(listener, std::future::pending())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("--tls-key"), "{e}");
}

/// An https math.js-style service answering "42", certified by `ca`.
async fn https_mathjs(ca: &TestCa) -> (String, oneshot::Sender<()>) {
    let dir = Files::new();
    let tls = ServerTls::load(dir.install(&ca.server(7))).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/v4/",
        listener.local_addr().unwrap().port()
    );
    let app = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from("42"))))
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let opts = ServeOptions {
        tls: Some(tls),
        ..ServeOptions::default()
    };
    tokio::spawn(async move {
        // The files stay while it serves (the reloader watches them).
        let _dir = dir;
        serve_with(
            listener,
            app,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
            &opts,
        )
        .await
    });
    (url, stop)
}

fn external(url: &str, ca: Option<&Path>) -> ExternalMath {
    ExternalMath::new(ExternalConfig {
        mathjs_url: Some(url.to_string()),
        max_attempts: 1,
        outbound_ca: ca.map(Path::to_path_buf),
        ..ExternalConfig::default()
    })
}

#[tokio::test]
async fn the_external_client_verifies_https_services_against_the_outbound_ca() {
    let ca = TestCa::new("Abacus Test CA");
    let files = Files::new();
    let (url, stop) = https_mathjs(&ca).await;
    let ca_path = files.write("outbound.pem", &ca.pem);

    let answer = external(&url, Some(&ca_path)).query("x").await.unwrap();
    assert_eq!(answer.answer, "42");

    // Without the CA (the system's trust store), or with another CA: a
    // transport error that says why.
    let other = files.write("other.pem", &TestCa::new("Some Other CA").pem);
    for ca in [None, Some(other.as_path())] {
        match external(&url, ca).query("x").await {
            Err(ExternalError::Transport(why)) => {
                assert!(why.contains("certificate"), "{ca:?}: {why}")
            }
            other => panic!("{ca:?}: {other:?}"),
        }
    }
    // An unreadable bundle disables the services rather than trusting more.
    assert!(!external(&url, Some(Path::new("/nonexistent/ca.pem"))).is_enabled());
    let _ = stop.send(());
}
