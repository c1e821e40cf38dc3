//! The message `abacus send` sends: its text, `--data` files as data
//! parts, `--file` files as file parts with their media type.

use super::SendArgs;
use abacus::protocol::types::{Message, Part, Role};
use std::path::Path;

/// Largest file `--file` or `--data` reads, in bytes (servers refuse
/// larger bodies anyway; better said here than as a 413).
const MAX_FILE: u64 = 8 * 1024 * 1024;

/// The user message of `args`.
pub fn message(args: &SendArgs) -> Result<Message, String> {
    let mut parts = Vec::new();
    if let Some(text) = &args.text {
        parts.push(Part::text(text.clone()));
    }
    for path in &args.data {
        let bytes = read(path)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        parts.push(Part::data(value));
    }
    for path in &args.file {
        let bytes = read(path)?;
        let mut part = Part::raw(bytes).with_media_type(media_type(path));
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            part = part.with_filename(name);
        }
        parts.push(part);
    }
    if parts.is_empty() {
        return Err("nothing to send: give a text, --data FILE or --file PATH".into());
    }
    let mut message = Message::new(Role::User, parts);
    message.task_id.clone_from(&args.task);
    message.context_id.clone_from(&args.context);
    Ok(message)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_FILE {
        return Err(format!(
            "{} is {} bytes; at most {MAX_FILE} can be sent",
            path.display(),
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The media type of a file, by its extension.
pub fn media_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "txt" | "text" => "text/plain",
        "md" => "text/markdown",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_follow_the_extension() {
        assert_eq!(media_type(Path::new("a/b.CSV")), "text/csv");
        assert_eq!(media_type(Path::new("plot.png")), "image/png");
        assert_eq!(media_type(Path::new("noext")), "application/octet-stream");
    }
}
