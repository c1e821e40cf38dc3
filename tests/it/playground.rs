//! The browser playground at `GET /`: served to `Accept: text/html` only,
//! with its strict headers; JSON-RPC at `POST /` and every other `GET /`
//! unchanged; `--playground false` and authentication turn it off (the
//! latter unless it is asked for); and the start-up line of the real binary,
//! which says where to go and carries no colour codes when piped.

use crate::common::{abacus_serve, free_port, raw_request, send_body, serve_math};
use bytes::Bytes;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn get(url: &str, accept: Option<&str>) -> (u16, http::HeaderMap, Bytes) {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    raw_request(url, "GET", Bytes::new(), &headers).await
}

/// `GET /` as a JSON-RPC endpoint answers it: 405, `Allow: POST`.
fn assert_not_the_page(status: u16, headers: &http::HeaderMap, body: &[u8]) {
    assert_eq!(status, 405, "{}", String::from_utf8_lossy(body));
    assert_eq!(headers["allow"], "POST");
    assert!(!String::from_utf8_lossy(body).contains("<html"));
}

#[tokio::test]
async fn a_browser_gets_the_page_and_every_other_client_what_it_got_before() {
    let (base, stop, handle) = serve_math(|_| {}, None).await;

    let (status, headers, body) = get(&base, Some(BROWSER_ACCEPT)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["vary"], "accept");
    assert_eq!(headers["cache-control"], "no-cache");
    let page = String::from_utf8(body.to_vec()).unwrap();
    assert!(page.contains("<script src=\"/playground.js\" defer></script>"));

    // Revalidation: the same ETag is a 304 without a body.
    let etag = headers["etag"].to_str().unwrap().to_string();
    let (status, _, body) = raw_request(
        &base,
        "GET",
        Bytes::new(),
        &[("accept", "text/html"), ("if-none-match", &etag)],
    )
    .await;
    assert_eq!((status, body.len()), (304, 0));

    for (path, ctype) in [
        ("playground.js", "text/javascript; charset=utf-8"),
        ("playground.css", "text/css; charset=utf-8"),
    ] {
        let (status, headers, body) = get(&format!("{base}{path}"), None).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["content-type"], ctype, "{path}");
        assert!(headers.contains_key("content-security-policy"), "{path}");
        assert!(!body.is_empty(), "{path}");
    }

    // API clients: unchanged.
    for accept in [Some("application/json"), Some("*/*"), None] {
        let (status, headers, body) = get(&base, accept).await;
        assert_not_the_page(status, &headers, &body);
    }
    let (status, _, body) = raw_request(
        &base,
        "POST",
        Bytes::from(send_body("SendMessage", "2 + 2")),
        &[
            ("content-type", "application/json"),
            ("a2a-version", "1.0"),
            ("accept", BROWSER_ACCEPT),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        reply["result"]["message"]["parts"][0]["text"], "4",
        "{reply}"
    );

    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn playground_false_serves_no_page() {
    let (base, stop, handle) = serve_math(|c| c.playground = Some(false), None).await;
    let (status, headers, body) = get(&base, Some(BROWSER_ACCEPT)).await;
    assert_not_the_page(status, &headers, &body);
    let (status, _, _) = get(&format!("{base}playground.js"), None).await;
    assert_eq!(status, 404);
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn with_authentication_the_page_is_off_unless_asked_for() {
    let keys = Some("alice:k-alice".to_string());
    let (base, stop, handle) = serve_math(|c| c.api_keys = keys.clone(), None).await;
    let (status, _, body) = get(&base, Some(BROWSER_ACCEPT)).await;
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = get(&format!("{base}playground.js"), None).await;
    assert_eq!(status, 401);
    let _ = stop.send(());
    handle.await.unwrap().unwrap();

    let (base, stop, handle) = serve_math(
        |c| {
            c.api_keys = keys.clone();
            c.playground = Some(true);
        },
        None,
    )
    .await;
    // The page and its files are public, as the card is ...
    let (status, headers, _) = get(&base, Some(BROWSER_ACCEPT)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let (status, _, _) = get(&format!("{base}playground.js"), None).await;
    assert_eq!(status, 200);
    // ... the calls it makes are not.
    let rpc = Bytes::from(send_body("SendMessage", "2 + 2"));
    let json = [("content-type", "application/json"), ("a2a-version", "1.0")];
    let (status, _, _) = raw_request(&base, "POST", rpc.clone(), &json).await;
    assert_eq!(status, 401);
    let (status, _, _) = get(&base, Some("application/json")).await;
    assert_eq!(status, 401, "only a page load is public");
    let with_key = [json[0], json[1], ("x-api-key", "k-alice")];
    let (status, _, _) = raw_request(&base, "POST", rpc, &with_key).await;
    assert_eq!(status, 200);
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real binary's standard output (piped), up to its start-up line.
fn startup_output(args: &[&str]) -> String {
    let port = free_port();
    let mut child = Kill(
        abacus_serve(port)
            .args(["--store", "memory"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start abacus"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        out.push_str(&line);
        out.push('\n');
        if line.contains("serving A2A") {
            return out.replace(&port.to_string(), "PORT");
        }
    }
    panic!("no start-up line: {out}");
}

#[test]
fn the_start_up_line_says_where_to_go_and_what_is_on_without_colour_codes() {
    let out = startup_output(&[]);
    assert!(!out.contains('\x1b'), "ANSI codes in piped logs: {out:?}");
    assert!(
        out.contains(
            "serving A2A on 127.0.0.1:PORT — open http://127.0.0.1:PORT/ or try: \
             abacus send --url \"http://127.0.0.1:PORT/\" \"2 + 2\"; "
        ),
        "{out}"
    );
    assert!(
        out.contains("store: memory (10000 tasks at most, finished ones kept 3600 s)"),
        "{out}"
    );
    assert!(
        out.contains("cache: in-process (10000 entries, 3600 s)"),
        "{out}"
    );
    assert!(
        out.contains(
            "limits: 1024 requests in flight (more refused), 30 s a request, no rate limit"
        ),
        "{out}"
    );

    let out = startup_output(&[
        "--playground",
        "false",
        "--cache",
        "false",
        "--concurrency-limit",
        "8",
        "--rate-limit",
        "100/s",
    ]);
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(
        out.contains("— try: abacus send --url \"http://127.0.0.1:PORT/\" \"2 + 2\"; "),
        "{out}"
    );
    assert!(!out.contains("open http"), "{out}");
    assert!(
        out.contains("cache: off; limits: 8 requests in flight"),
        "{out}"
    );
    assert!(out.contains("100/s per client"), "{out}");
}
