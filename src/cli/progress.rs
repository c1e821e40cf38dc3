//! A stream's events as they arrive: a spinner and a status line on a
//! terminal, one line per event when piped, JSON lines with `--json`.

use super::{exit_of, render, state_note, Exit, Failure};
use abacus::client::EventStream;
use abacus::protocol::types::{StreamResponse, TaskState};
use futures_util::StreamExt;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A person watches: spinner and status line (stderr), answers on stdout.
    Terminal,
    /// Another program reads: one line per event.
    Lines,
    /// `--json`: one JSON document per event.
    Json,
}

/// What the terminal shows between events.
struct Screen {
    state: TaskState,
    status: String,
    started: Instant,
    frame: usize,
    /// An artifact chunk was printed without its line end (more follow).
    open_line: bool,
    drawn: bool,
    printed_answer: bool,
}

impl Screen {
    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }

    fn draw(&mut self) {
        if self.open_line {
            return;
        }
        self.frame = (self.frame + 1) % SPINNER.len();
        let status = if self.status.is_empty() {
            String::new()
        } else {
            format!(" — {}", self.status)
        };
        eprint!(
            "\r\x1b[2K{} {}{status} ({:.1} s)",
            SPINNER[self.frame],
            render::state_name(&self.state),
            self.started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
        self.drawn = true;
    }

    fn show(&mut self, event: &StreamResponse) {
        match event {
            StreamResponse::Task(t) => {
                self.state = t.status.state.clone();
            }
            StreamResponse::StatusUpdate(s) => {
                self.state = s.status.state.clone();
                if let Some(m) = &s.status.message {
                    self.status = render::parts(&m.parts)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                }
            }
            StreamResponse::ArtifactUpdate(a) => {
                self.clear();
                let text = render::parts(&a.artifact.parts);
                if a.append == Some(true) && self.open_line {
                    print!("{text}");
                } else {
                    if self.open_line {
                        println!();
                    }
                    print!("{text}");
                }
                self.open_line = a.last_chunk == Some(false);
                if !self.open_line {
                    println!();
                }
                let _ = std::io::stdout().flush();
                self.printed_answer = true;
            }
            StreamResponse::Message(m) => {
                self.clear();
                println!("{}", render::parts(&m.parts));
                self.printed_answer = true;
            }
        }
    }
}

/// Follows `events` to their end; the exit code of how the task ended.
pub async fn follow(mut events: EventStream, json: bool) -> Result<Exit, Failure> {
    let mode = if json {
        Mode::Json
    } else if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        Mode::Terminal
    } else {
        Mode::Lines
    };
    let mut screen = Screen {
        state: TaskState::Submitted,
        status: String::new(),
        started: Instant::now(),
        frame: 0,
        open_line: false,
        drawn: false,
        printed_answer: false,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last: Option<StreamResponse> = None;
    let mut task_id = String::new();
    loop {
        let next = if mode == Mode::Terminal {
            tokio::select! {
                e = events.next() => e,
                _ = tick.tick() => {
                    screen.draw();
                    continue;
                }
            }
        } else {
            events.next().await
        };
        let Some(item) = next else { break };
        let event = match item {
            Ok(e) => e.response,
            Err(e) => {
                screen.clear();
                if screen.open_line {
                    println!();
                }
                return Err(Failure::client(&e));
            }
        };
        if let StreamResponse::Task(t) = &event {
            task_id.clone_from(&t.id);
        }
        if let StreamResponse::StatusUpdate(s) = &event {
            task_id.clone_from(&s.task_id);
        }
        match mode {
            Mode::Json => println!("{}", serde_json::to_string(&event).unwrap_or_default()),
            Mode::Lines => println!("{}", render::event_line(&event)),
            Mode::Terminal => screen.show(&event),
        }
        last = Some(event);
    }
    screen.clear();
    if screen.open_line {
        println!();
    }
    let state = match &last {
        Some(StreamResponse::Message(_)) | None => return Ok(Exit::Ok),
        Some(StreamResponse::Task(t)) => {
            if mode == Mode::Terminal && !screen.printed_answer {
                let answer = render::answer(t);
                if !answer.is_empty() {
                    println!("{answer}");
                }
            }
            t.status.state.clone()
        }
        Some(StreamResponse::StatusUpdate(s)) => {
            if mode == Mode::Terminal {
                if let Some(m) = &s.status.message {
                    let text = render::parts(&m.parts);
                    if !text.is_empty() && !s.status.state.is_terminal() {
                        // The agent's question.
                        println!("{text}");
                    } else if !text.is_empty() && s.status.state != TaskState::Completed {
                        eprintln!("{text}");
                    } else if !text.is_empty() && !screen.printed_answer {
                        // No artifact came: the final message is the answer.
                        println!("{text}");
                    }
                }
            }
            s.status.state.clone()
        }
        Some(StreamResponse::ArtifactUpdate(_)) => screen.state.clone(),
    };
    match (mode, state_note(&task_id, &state)) {
        (Mode::Json, _) => {}
        (_, Some(note)) => eprintln!("abacus: {note}"),
        (Mode::Terminal, None) => eprintln!(
            "✓ {} in {:.1} s",
            render::state_name(&state),
            screen.started.elapsed().as_secs_f64()
        ),
        (Mode::Lines, None) => {}
    }
    Ok(exit_of(&state))
}
