//! Proto-JSON parameters: the request messages of A2A v1.0 as JSON, shared
//! by every binding that carries JSON (JSON-RPC `params`, HTTP+JSON bodies).

use a2a::A2AError;
use serde::de::DeserializeOwned;

/// Proto field names that ProtoJSON also accepts instead of their camelCase
/// JSON names (clients generated from the proto send them).
const PROTO_NAMES: [(&str, &str); 16] = [
    ("message_id", "messageId"),
    ("context_id", "contextId"),
    ("task_id", "taskId"),
    ("reference_task_ids", "referenceTaskIds"),
    ("media_type", "mediaType"),
    ("history_length", "historyLength"),
    ("page_size", "pageSize"),
    ("page_token", "pageToken"),
    ("status_timestamp_after", "statusTimestampAfter"),
    ("include_artifacts", "includeArtifacts"),
    ("return_immediately", "returnImmediately"),
    ("accepted_output_modes", "acceptedOutputModes"),
    (
        "task_push_notification_config",
        "taskPushNotificationConfig",
    ),
    ("push_notification_config", "pushNotificationConfig"),
    ("artifact_id", "artifactId"),
    ("last_chunk", "lastChunk"),
];

/// Renames proto field names to their JSON names, leaving free-form
/// `data` and `metadata` values untouched.
fn camel_case_keys(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let renames: Vec<(String, &str)> = map
                .keys()
                .filter_map(|k| {
                    PROTO_NAMES
                        .iter()
                        .find(|(snake, _)| snake == k)
                        .map(|(_, camel)| (k.clone(), *camel))
                })
                .collect();
            for (from, to) in renames {
                if let Some(val) = map.remove(&from) {
                    map.entry(to.to_string()).or_insert(val);
                }
            }
            for (k, val) in map.iter_mut() {
                if k != "data" && k != "metadata" {
                    camel_case_keys(val);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(camel_case_keys),
        _ => {}
    }
}

/// Deserializes params, naming the failing field in the error message.
pub(crate) fn params<T: DeserializeOwned>(params: &str) -> Result<T, A2AError> {
    // Fast path: camelCase only. Proto names are rare, so pay for a rewrite
    // through `Value` only when one may be present.
    let has_proto_name = may_have_proto_name(params);
    if has_proto_name {
        if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(params) {
            camel_case_keys(&mut v);
            return serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                params_error(&path, &e.into_inner().to_string())
            });
        }
    }
    // Decode without path tracking first (the common, valid case); only a
    // failure is decoded again to name the offending field.
    if let Ok(v) = serde_json::from_str(params) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_str(params);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        params_error(&path, &e.into_inner().to_string())
    })
}

/// Whether a word with an underscore in `params` is a proto field name.
/// One pass over the bytes: values such as `ROLE_USER` have underscores
/// too, and sixteen substring searches per request showed in profiles.
fn may_have_proto_name(params: &str) -> bool {
    let bytes = params.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut from = 0;
    while let Some(i) = bytes[from..].iter().position(|&b| b == b'_') {
        let at = from + i;
        // Every proto name continues in lower case after an underscore;
        // enum values (`ROLE_USER`) do not: skip those at once.
        if !bytes.get(at + 1).is_some_and(u8::is_ascii_lowercase) {
            from = at + 1;
            continue;
        }
        let start = bytes[..at]
            .iter()
            .rposition(|&b| !is_word(b))
            .map_or(0, |p| p + 1);
        let end = bytes[at..]
            .iter()
            .position(|&b| !is_word(b))
            .map_or(bytes.len(), |p| at + p);
        let word = &params[start..end];
        if PROTO_NAMES.iter().any(|(snake, _)| *snake == word) {
            return true;
        }
        from = end;
    }
    false
}

fn params_error(path: &str, inner: &str) -> A2AError {
    let msg = if path == "." {
        format!("invalid params: {inner}")
    } else {
        format!("invalid params: field `{path}`: {inner}")
    };
    A2AError::invalid_params(strip_position(&msg))
}

/// serde_json appends " at line L column C"; useful for parse errors, noise here.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn proto_names_are_found_as_whole_words_only() {
        use super::may_have_proto_name;
        assert!(may_have_proto_name(r#"{"message":{"message_id":"a"}}"#));
        assert!(may_have_proto_name(
            r#"{"configuration":{"history_length":1}}"#
        ));
        assert!(!may_have_proto_name(r#"{"message":{"role":"ROLE_USER"}}"#));
        assert!(!may_have_proto_name(r#"{"text":"my_message_id_x"}"#));
        assert!(!may_have_proto_name("_"));
        assert!(!may_have_proto_name(""));
    }
}
