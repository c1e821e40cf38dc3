//! The `abacus` client commands as a real process against a math agent
//! served in this process: what they print, piped and on a terminal, and
//! the exit codes scripts branch on.

use crate::common::{abacus, TestServer};
use abacus::agent::{Agent, RequestContext, TaskUpdater};
use abacus::math::{Limits, MathAgent};
use abacus::protocol::types::{A2AError, Part};
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Two 11-digit primes: Pollard rho takes a few hundred milliseconds, long
/// enough for the spinner to draw a frame, far inside the CPU budget.
const SLOW: &str = "prime factors 300000000580000000019";
const SLOW_ANSWER: &str = "10000000019 × 30000000001";

/// 3 × 311 × a 57-digit cofactor Pollard rho does not split: runs until canceled.
const HARD: &str = "prime factors 671998030559713968361666935769282348564453734211131263736711";

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// How long one CLI run may take before the test gives up on it (a guard
/// against a hang, not a timing assertion).
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// What one run of the CLI printed and how it exited.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Stdout as one JSON document.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    #[track_caller]
    fn assert_code(&self, code: i32) {
        assert_eq!(self.code, Some(code), "{self:?}");
    }
}

/// The math agent with a roomy CPU budget, so a loaded test machine cannot
/// turn a slow question into a timeout.
async fn math_server() -> TestServer {
    let limits = Limits {
        cpu_time: Duration::from_secs(60),
        ..Limits::default()
    };
    TestServer::start(MathAgent::new(limits), MathAgent::card()).await
}

/// `abacus <args> --url <url>`, stdout and stderr piped.
async fn run(url: &str, args: &[&str]) -> Run {
    let mut cmd = abacus();
    cmd.args(args).args(["--url", url]);
    output(cmd).await
}

/// Runs `cmd` to its end with no input.
async fn output(mut cmd: Command) -> Run {
    cmd.stdin(Stdio::null());
    let out = tokio::time::timeout(RUN_LIMIT, tokio::task::spawn_blocking(move || cmd.output()))
        .await
        .expect("the CLI did not exit")
        .unwrap()
        .expect("run the CLI");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

/// Whether util-linux `script` is here to give the CLI a pseudo-terminal.
fn have_script() -> bool {
    Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `abacus <args> --url <url>` on a pseudo-terminal (stdout and stderr
/// both), through `script`; its output is the terminal's, both streams.
async fn run_on_terminal(url: &str, args: &[&str]) -> Run {
    let base = abacus();
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = quote(&base.get_program().to_string_lossy());
    for a in args.iter().copied().chain(["--url", url]) {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"]);
    // The same environment as a direct run: no A2A_* from the caller.
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    output(cmd).await
}

/// SendMessage with returnImmediately: the id of the task, still running.
async fn start_task(s: &TestServer, text: &str) -> String {
    let params = json!({
        "message": {"messageId": uuid::Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": text}]},
        "configuration": {"returnImmediately": true},
    });
    let r = s.client.call("SendMessage", params).await.unwrap();
    r["result"]["task"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {r}"))
        .to_string()
}

/// A temporary file holding `content`, named `name`.
fn temp_file(name: &str, content: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    (dir, path.to_string_lossy().into_owned())
}

#[tokio::test]
async fn send_prints_the_answer_or_one_json_document() {
    let s = math_server().await;
    let r = run(&s.url, &["send", "6 * 7"]).await;
    r.assert_code(0);
    assert_eq!(r.stdout, "42\n", "{r:?}");

    let r = run(&s.url, &["send", "--json", "6 * 7"]).await;
    r.assert_code(0);
    assert_eq!(r.lines().len(), 1, "{r:?}");
    assert_eq!(r.json()["message"]["parts"][0]["text"], "42", "{r:?}");

    // The URL from the environment instead of --url.
    let mut cmd = abacus();
    cmd.args(["send", "6 * 7"]).env("A2A_URL", &s.url);
    let r = output(cmd).await;
    r.assert_code(0);
    assert_eq!(r.stdout, "42\n", "{r:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_piped_stream_is_one_line_per_event_on_every_binding() {
    let s = math_server().await;
    for binding in ["jsonrpc", "rest", "grpc"] {
        let r = run(
            &s.url,
            &["send", "--stream", "--binding", binding, "factorial 20"],
        )
        .await;
        r.assert_code(0);
        let lines = r.lines();
        assert!(
            lines[0].starts_with("[task submitted] "),
            "{binding}: {r:?}"
        );
        let artifact = lines
            .iter()
            .position(|l| l.starts_with("[artifact ") && l.ends_with("] 2432902008176640000"));
        assert!(artifact.is_some(), "{binding}: {r:?}");
        let last = lines.last().copied().unwrap_or_default();
        assert!(last.starts_with("[completed]"), "{binding}: {r:?}");
        assert!(artifact < Some(lines.len() - 1), "{binding}: {r:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_json_stream_is_one_stream_response_per_line() {
    let s = math_server().await;
    let r = run(&s.url, &["send", "--stream", "--json", "factorial 20"]).await;
    r.assert_code(0);
    let events: Vec<Value> = r
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(events[0]["task"]["id"].is_string(), "{r:?}");
    assert!(
        events
            .iter()
            .any(|e| e["artifactUpdate"]["artifact"]["parts"][0]["text"] == "2432902008176640000"),
        "{r:?}"
    );
    let last = events.last().unwrap();
    assert_eq!(
        last["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{r:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_terminal_gets_a_spinner_and_a_pipe_gets_plain_lines() {
    if !have_script() {
        eprintln!("skipped: no `script` to run the CLI on a pseudo-terminal");
        return;
    }
    let s = math_server().await;
    let r = run_on_terminal(&s.url, &["send", "--stream", SLOW]).await;
    r.assert_code(0);
    let screen = &r.stdout;
    assert!(screen.contains("\r\x1b[2K"), "{r:?}");
    assert!(screen.contains(SPINNER), "{r:?}");
    assert!(screen.contains(SLOW_ANSWER), "{r:?}");
    assert!(screen.contains("✓ completed"), "{r:?}");
    // The status line is cleared before the answer is printed.
    let answer = screen.find(SLOW_ANSWER).unwrap();
    assert!(screen[..answer].ends_with("\r\x1b[2K"), "{r:?}");

    let r = run(&s.url, &["send", "--stream", SLOW]).await;
    r.assert_code(0);
    assert!(!r.stdout.contains('\x1b'), "{r:?}");
    assert!(!r.stderr.contains('\x1b'), "{r:?}");
    assert!(
        r.lines()
            .contains(&format!("[artifact result] {SLOW_ANSWER}").as_str()),
        "{r:?}"
    );
    s.stop().await;
}

/// Answers every question with a task whose only answer is its final
/// status message (no artifact), as some agents do.
struct StatusOnly;

#[async_trait::async_trait]
impl Agent for StatusOnly {
    async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        up.start_work().await?;
        let answer = format!("echo: {}", ctx.text());
        up.complete(Some(up.agent_message(vec![Part::text(answer)])))
            .await
    }
}

#[tokio::test]
async fn a_terminal_shows_an_answer_given_only_in_the_final_status() {
    if !have_script() {
        eprintln!("skipped: no `script` to run the CLI on a pseudo-terminal");
        return;
    }
    let s = TestServer::start(StatusOnly, MathAgent::card()).await;
    let r = run_on_terminal(&s.url, &["send", "--stream", "hello"]).await;
    r.assert_code(0);
    assert!(r.stdout.contains("echo: hello"), "{r:?}");
    assert!(r.stdout.contains("✓ completed"), "{r:?}");
    s.stop().await;
}

#[tokio::test]
async fn nothing_listening_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let r = run(&url, &["send", "6 * 7"]).await;
    r.assert_code(3);
    assert!(r.stderr.contains("cannot connect to"), "{r:?}");
    assert!(r.stderr.contains("connection refused"), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
}

#[tokio::test]
async fn an_unknown_task_is_a_protocol_error() {
    let s = math_server().await;
    let r = run(&s.url, &["task", "get", "no-such-task"]).await;
    r.assert_code(4);
    assert!(r.stderr.contains("TASK_NOT_FOUND"), "{r:?}");

    let r = run(&s.url, &["task", "get", "--json", "no-such-task"]).await;
    r.assert_code(4);
    assert_eq!(r.json()["error"]["reason"], "TASK_NOT_FOUND", "{r:?}");
    assert_eq!(r.json()["error"]["class"], "protocol", "{r:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_wrong_command_line_is_a_usage_error() {
    let s = math_server().await;
    let r = run(&s.url, &["send"]).await;
    r.assert_code(2);
    assert!(r.stderr.contains("nothing to send"), "{r:?}");

    let r = run(&s.url, &["send", "--binding", "carrier-pigeon", "1 + 1"]).await;
    r.assert_code(2);
    assert!(r.stderr.contains("unknown binding"), "{r:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_failed_or_rejected_task_exits_1_with_the_reason() {
    let s = math_server().await;
    let r = run(&s.url, &["send", "1/0"]).await;
    r.assert_code(1);
    assert_eq!(r.stdout, "division by zero\n", "{r:?}");
    assert!(r.stderr.contains("ended failed"), "{r:?}");

    // Over the index limit: rejected before any work, streamed.
    let r = run(&s.url, &["send", "--stream", "fibonacci 1000000"]).await;
    r.assert_code(1);
    let last = r.lines().last().copied().unwrap_or_default();
    assert!(last.starts_with("[rejected] limit exceeded"), "{r:?}");
    assert!(r.stderr.contains("ended rejected"), "{r:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_task_that_needs_input_exits_5_and_continues_with_task() {
    let s = math_server().await;
    let r = run(&s.url, &["send", "--json", "tell me a joke"]).await;
    r.assert_code(5);
    let task = r.json();
    assert_eq!(
        task["task"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
        "{r:?}"
    );
    let id = task["task"]["id"].as_str().unwrap().to_string();
    let r = run(&s.url, &["send", "tell me a joke"]).await;
    r.assert_code(5);
    assert!(r.stderr.contains("abacus send --task"), "{r:?}");

    let r = run(&s.url, &["send", "--task", &id, "6 * 7"]).await;
    r.assert_code(0);
    assert_eq!(r.stdout, "42\n", "{r:?}");
    s.stop().await;
}

#[tokio::test]
async fn data_and_file_parts_are_analysed() {
    let s = math_server().await;
    // Each part's artifact: a summary in words and the numbers as data.
    let artifact = |r: &Run| r.json()["task"]["artifacts"][0]["parts"].clone();

    let (_d1, numbers) = temp_file("numbers.json", r#"{"dataset": [1, 2, 6]}"#);
    let r = run(&s.url, &["send", "--data", &numbers]).await;
    r.assert_code(0);
    assert!(r.lines()[0].starts_with("Dataset: 3 records"), "{r:?}");
    assert!(r.lines()[0].contains("value: mean 3, median 2"), "{r:?}");
    let r = run(&s.url, &["send", "--json", "--data", &numbers]).await;
    r.assert_code(0);
    let parts = artifact(&r);
    assert_eq!(parts[1]["data"]["kind"], "dataset", "{r:?}");
    assert_eq!(parts[1]["data"]["numeric"]["value"]["sum"], 9.0, "{r:?}");

    let (_d2, equation) = temp_file("equation.json", r#"{"equation": "2x + 3 = 11"}"#);
    let r = run(&s.url, &["send", "--data", &equation]).await;
    r.assert_code(0);
    assert_eq!(r.lines()[0], "2x + 3 = 11: x = 4", "{r:?}");

    let (_d3, csv) = temp_file("data.csv", "name,score\na,1\nb,2\nc,6\n");
    let r = run(&s.url, &["send", "--file", &csv]).await;
    r.assert_code(0);
    assert!(
        r.lines()[0].starts_with("CSV file data.csv: 3 records"),
        "{r:?}"
    );
    assert!(r.lines()[0].contains("score: mean 3, median 2"), "{r:?}");
    let r = run(&s.url, &["send", "--json", "--file", &csv]).await;
    r.assert_code(0);
    let parts = artifact(&r);
    assert_eq!(parts[1]["data"]["kind"], "csv", "{r:?}");
    assert_eq!(parts[1]["data"]["media_type"], "text/csv", "{r:?}");
    assert_eq!(parts[1]["data"]["numeric"]["score"]["mean"], 3.0, "{r:?}");

    // A text and a file in one message: one artifact each, and piped
    // every event stays on one line even where parts span several.
    let r = run(&s.url, &["send", "--stream", "2^10", "--file", &csv]).await;
    r.assert_code(0);
    for line in r.lines() {
        assert!(line.starts_with('['), "{line:?} in {r:?}");
    }
    assert!(
        r.lines()
            .iter()
            .any(|l| l.starts_with("[artifact part-1] 2^10 = 1024")),
        "{r:?}"
    );
    assert!(
        r.lines()
            .iter()
            .any(|l| l.starts_with("[artifact part-2] CSV file data.csv")),
        "{r:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn task_list_and_get_show_the_tasks_sent() {
    let s = math_server().await;
    let mut ids = Vec::new();
    for q in [
        "factorial 20",
        "fibonacci 100",
        "prime factors 600851475143",
    ] {
        let r = run(&s.url, &["send", "--json", q]).await;
        r.assert_code(0);
        ids.push(r.json()["task"]["id"].as_str().unwrap().to_string());
    }
    let r = run(&s.url, &["task", "list"]).await;
    r.assert_code(0);
    let listed: Vec<&str> = r
        .lines()
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed.len(), ids.len(), "{r:?}");
    for id in &ids {
        assert!(listed.contains(&id.as_str()), "{id} not listed: {r:?}");
    }

    let id = &ids[2];
    let r = run(&s.url, &["task", "get", id]).await;
    r.assert_code(0);
    assert!(r.stdout.contains(&format!("task     {id}\n")), "{r:?}");
    assert!(r.stdout.contains("state    completed\n"), "{r:?}");
    assert!(r.stdout.contains("71 × 839 × 1471 × 6857"), "{r:?}");

    let r = run(&s.url, &["task", "get", id, "--json"]).await;
    r.assert_code(0);
    let task = r.json();
    assert_eq!(task["id"], id.as_str(), "{r:?}");
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{r:?}");
    s.stop().await;
}

#[tokio::test]
async fn task_cancel_cancels_a_running_task() {
    let s = math_server().await;
    let id = start_task(&s, HARD).await;
    let r = run(&s.url, &["task", "cancel", &id]).await;
    r.assert_code(0);
    assert_eq!(r.stdout, format!("task {id} canceled\n"), "{r:?}");

    let r = run(&s.url, &["task", "get", &id]).await;
    r.assert_code(0);
    assert!(r.stdout.contains("state    canceled\n"), "{r:?}");

    // A finished task cannot be canceled again: the server's error.
    let r = run(&s.url, &["task", "cancel", &id]).await;
    r.assert_code(4);
    assert!(r.stderr.contains("TASK_NOT_CANCELABLE"), "{r:?}");
    s.stop().await;
}

#[tokio::test]
async fn task_subscribe_follows_a_running_task_to_its_end() {
    let s = math_server().await;
    let id = start_task(&s, HARD).await;
    let mut cmd = abacus();
    cmd.args(["task", "subscribe", &id, "--url", &s.url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Its lines as they come, read on a thread of their own.
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = tokio::time::timeout(RUN_LIMIT, lines.recv())
        .await
        .expect("no event")
        .unwrap_or_default();
    assert!(
        first.starts_with("[task ") && first.ends_with(&format!("] {id}")),
        "{first}"
    );

    // Subscribed: end the task, and the stream follows it there.
    let c = s
        .client
        .call("CancelTask", json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(c["result"]["status"]["state"], "TASK_STATE_CANCELED", "{c}");
    let mut rest = Vec::new();
    while let Some(line) = tokio::time::timeout(RUN_LIMIT, lines.recv())
        .await
        .expect("the stream did not end")
    {
        rest.push(line);
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    let last = rest.last().map(String::as_str).unwrap_or_default();
    assert!(last.starts_with("[canceled]"), "{rest:?}");
    s.stop().await;
}

#[tokio::test]
async fn card_prints_a_summary_or_the_json() {
    let s = math_server().await;
    let r = run(&s.url, &["card"]).await;
    r.assert_code(0);
    assert!(r.stdout.starts_with("abacus math agent "), "{r:?}");
    assert!(r.stdout.contains("\ninterfaces\n"), "{r:?}");
    for binding in ["JSONRPC", "HTTP+JSON", "GRPC"] {
        assert!(r.stdout.contains(&format!("  {binding} ")), "{r:?}");
    }
    assert!(r.stdout.contains("prime factors 600851475143"), "{r:?}");

    let r = run(&s.url, &["card", "--json"]).await;
    r.assert_code(0);
    let card = r.json();
    assert_eq!(card["name"], "abacus math agent", "{r:?}");
    let interfaces = card["supportedInterfaces"].as_array().unwrap();
    assert!(
        interfaces.iter().any(|i| i["url"] == s.url.as_str()),
        "{r:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_transport_error() {
    // Bound and never accepting: connections complete in the backlog, and
    // no byte ever comes back.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    for args in [
        &["send", "6 * 7", "--timeout-secs", "1"][..],
        &["card", "--timeout-secs", "1"],
    ] {
        let r = run(&url, args).await;
        r.assert_code(3);
        assert!(r.stderr.contains("no answer from"), "{args:?}: {r:?}");
    }
    drop(silent);
}
