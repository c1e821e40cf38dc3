//! How tasks, parts, events and cards read for a person.

use abacus::protocol::types::{Part, PartContent, StreamResponse, Task, TaskState};
use serde_json::Value;

/// `completed`, `input-required` …
pub fn state_name(state: &TaskState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
        .trim_start_matches("TASK_STATE_")
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// A state as a person types it: `working`, `input-required`,
/// `TASK_STATE_COMPLETED` …
pub fn parse_state(s: &str) -> Result<TaskState, String> {
    let upper = s.trim().to_ascii_uppercase().replace('-', "_");
    let wire = if upper.starts_with("TASK_STATE_") {
        upper
    } else {
        format!("TASK_STATE_{upper}")
    };
    serde_json::from_value(Value::String(wire)).map_err(|_| {
        format!("unknown task state {s:?} (working, completed, failed, canceled, input-required …)")
    })
}

/// Parts as lines: text as is, data as compact JSON, files by name. A
/// data part that comes with text is the text's machine form: a person
/// reads the text alone (`--json` has both).
pub fn parts(parts: &[Part]) -> String {
    let has_text = parts
        .iter()
        .any(|p| matches!(p.content, PartContent::Text(_)));
    parts
        .iter()
        .filter(|p| !(has_text && matches!(p.content, PartContent::Data(_))))
        .map(|p| match &p.content {
            PartContent::Text(t) => t.clone(),
            PartContent::Data(v) => v.to_string(),
            PartContent::Raw(bytes) => format!(
                "[file {} ({}, {} bytes)]",
                p.filename.as_deref().unwrap_or("unnamed"),
                p.media_type
                    .as_deref()
                    .unwrap_or("application/octet-stream"),
                bytes.len()
            ),
            PartContent::Url(u) => format!("[file {u}]"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A task's answer: its artifacts, else its status message.
pub fn answer(t: &Task) -> String {
    let artifacts: Vec<String> = t
        .artifacts
        .iter()
        .flatten()
        .map(|a| parts(&a.parts))
        .filter(|s| !s.is_empty())
        .collect();
    if !artifacts.is_empty() {
        return artifacts.join("\n");
    }
    status_text(t)
}

fn status_text(t: &Task) -> String {
    t.status
        .message
        .as_ref()
        .map(|m| parts(&m.parts))
        .unwrap_or_default()
}

/// One line of `task list`.
pub fn task_line(t: &Task) -> String {
    let when = t
        .status
        .timestamp
        .map(|ts| ts.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into());
    let summary = first_line(&status_text(t));
    format!(
        "{}  {:<14}  {when}  {summary}",
        t.id,
        state_name(&t.status.state)
    )
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    match line.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

/// `task get`: the task, its status message and artifacts.
pub fn task_detail(t: &Task) -> String {
    let mut out = format!(
        "task     {}\ncontext  {}\nstate    {}",
        t.id,
        t.context_id,
        state_name(&t.status.state)
    );
    if let Some(ts) = t.status.timestamp {
        out.push_str(&format!("\nupdated  {}", ts.to_rfc3339()));
    }
    let status = status_text(t);
    if !status.is_empty() {
        out.push_str(&format!("\nstatus   {}", indent(&status)));
    }
    for a in t.artifacts.iter().flatten() {
        let name = a.name.as_deref().unwrap_or(&a.artifact_id);
        out.push_str(&format!(
            "\nartifact {name}\n  {}",
            indent(&parts(&a.parts))
        ));
    }
    out
}

fn indent(s: &str) -> String {
    s.replace('\n', "\n  ")
}

/// One line per event, for a stream that is not on a terminal: the lines
/// of a multi-line text or of several parts are joined with spaces, so a
/// script reading line by line sees every event start with `[`.
pub fn event_line(e: &StreamResponse) -> String {
    let line = match e {
        StreamResponse::Task(t) => format!("[task {}] {}", state_name(&t.status.state), t.id),
        StreamResponse::Message(m) => format!("[message] {}", parts(&m.parts)),
        StreamResponse::StatusUpdate(s) => {
            let text = s
                .status
                .message
                .as_ref()
                .map(|m| parts(&m.parts))
                .unwrap_or_default();
            format!("[{}] {text}", state_name(&s.status.state))
                .trim_end()
                .to_string()
        }
        StreamResponse::ArtifactUpdate(a) => {
            let name = a.artifact.name.as_deref().unwrap_or("artifact");
            format!("[artifact {name}] {}", parts(&a.artifact.parts))
        }
    };
    line.lines().collect::<Vec<_>>().join(" ")
}

/// `abacus card`: who the agent is, where and how to reach it, its skills.
pub fn card(card: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut out = format!(
        "{} {}\n{}",
        s(&card["name"]),
        s(&card["version"]),
        s(&card["description"])
    );
    out.push_str("\n\ninterfaces");
    for i in card["supportedInterfaces"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n  {:<10} {}  (A2A {})",
            s(&i["protocolBinding"]),
            s(&i["url"]),
            s(&i["protocolVersion"])
        ));
    }
    let caps = &card["capabilities"];
    let on: Vec<&str> = ["streaming", "pushNotifications", "extendedAgentCard"]
        .into_iter()
        .filter(|c| caps[*c].as_bool() == Some(true))
        .collect();
    if !on.is_empty() {
        out.push_str(&format!("\ncapabilities  {}", on.join(", ")));
    }
    if let Some(schemes) = card["securitySchemes"].as_object() {
        let names: Vec<&String> = schemes.keys().collect();
        if !names.is_empty() {
            out.push_str(&format!(
                "\nauthentication  {}",
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let skills = card["skills"].as_array().cloned().unwrap_or_default();
    if !skills.is_empty() {
        out.push_str("\n\nskills");
        for skill in &skills {
            out.push_str(&format!(
                "\n  {:<18} {}",
                s(&skill["id"]),
                s(&skill["description"])
            ));
            if let Some(ex) = skill["examples"].as_array().and_then(|e| e.first()) {
                out.push_str(&format!("\n  {:<18} e.g. {}", "", s(ex)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_as_people_type_them() {
        assert_eq!(state_name(&TaskState::InputRequired), "input-required");
        assert_eq!(parse_state("input-required"), Ok(TaskState::InputRequired));
        assert_eq!(parse_state("TASK_STATE_WORKING"), Ok(TaskState::Working));
        assert!(parse_state("sleeping").is_err());
    }

    #[test]
    fn a_data_part_beside_text_is_left_to_json_output() {
        let with_text = [
            Part::text("2 + 2 = 4"),
            Part::data(serde_json::json!({"result": "4"})),
        ];
        assert_eq!(parts(&with_text), "2 + 2 = 4");
        let alone = [Part::data(serde_json::json!({"result": "4"}))];
        assert_eq!(parts(&alone), r#"{"result":"4"}"#);
    }
}
