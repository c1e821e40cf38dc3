//! The JSON-RPC 2.0 envelope: decoding a request body into an [`A2ARequest`]
//! and encoding replies and stream events, straight into byte buffers.

use super::request::{A2ARequest, Call};
use super::response::Reply;
use a2a::{A2AError, JsonRpcId, StreamResponse};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// A request that could not be decoded: the id to answer with (null when
/// unknown) and the JSON-RPC error.
pub type DecodeError = (JsonRpcId, A2AError);

/// Decodes a JSON-RPC request body into a typed [`A2ARequest`].
///
/// Errors carry the exact JSON-RPC code: -32700 for malformed JSON, -32600
/// for a well-formed body that is not a JSON-RPC 2.0 request, -32601 for an
/// unknown method and -32602 for parameters of the wrong shape, with a
/// message naming the offending field.
///
/// ```
/// use abacus::protocol::jsonrpc::decode_request;
///
/// let body = br#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"t1"}}"#;
/// let req = decode_request(body).unwrap();
/// assert_eq!(req.call.method(), "GetTask");
///
/// let (_, err) = decode_request(br#"{"jsonrpc":"2.0","id":1,"method":"Nope"}"#).unwrap_err();
/// assert_eq!(err.code, -32601);
/// ```
pub fn decode_request(body: &[u8]) -> Result<A2ARequest, DecodeError> {
    let env: Envelope<'_> = serde_json::from_slice(body).map_err(|e| {
        let err = match e.classify() {
            serde_json::error::Category::Data => {
                A2AError::invalid_request("request must be a JSON-RPC 2.0 object")
            }
            _ => A2AError::parse_error(format!("invalid JSON: {e}")),
        };
        (JsonRpcId::Null, err)
    })?;
    let id = match env.id {
        None => JsonRpcId::Null,
        Some(raw) => serde_json::from_str::<JsonRpcId>(raw.get()).map_err(|_| {
            (
                JsonRpcId::Null,
                A2AError::invalid_request("\"id\" must be a string, an integer or null"),
            )
        })?,
    };
    let invalid = |msg: &str| (id.clone(), A2AError::invalid_request(msg));
    match env.jsonrpc.map(RawValue::get) {
        Some("\"2.0\"") => {}
        Some(_) => return Err(invalid("\"jsonrpc\" must be exactly \"2.0\"")),
        None => return Err(invalid("missing \"jsonrpc\": \"2.0\"")),
    }
    let method_raw = env.method.ok_or_else(|| invalid("missing \"method\""))?;
    let method: std::borrow::Cow<'_, str> = serde_json::from_str(method_raw.get())
        .map_err(|_| invalid("\"method\" must be a string"))?;
    let name = Call::from_method_name(&method).ok_or_else(|| {
        (
            id.clone(),
            A2AError::method_not_found(&truncate(&method, 64)),
        )
    })?;
    let params = env.params.map(RawValue::get).unwrap_or("{}");
    if !params.trim_start().starts_with('{') {
        return Err((
            id.clone(),
            A2AError::invalid_params("\"params\" must be an object"),
        ));
    }
    let call = decode_call(name, params).map_err(|e| (id.clone(), e))?;
    Ok(A2ARequest::new(id, call))
}

fn decode_call(name: &'static str, params: &str) -> Result<Call, A2AError> {
    Ok(match name {
        "SendMessage" => Call::SendMessage(typed(params)?),
        "SendStreamingMessage" => Call::SendStreamingMessage(typed(params)?),
        "GetTask" => Call::GetTask(typed(params)?),
        "ListTasks" => Call::ListTasks(typed(params)?),
        "CancelTask" => Call::CancelTask(typed(params)?),
        "SubscribeToTask" => Call::SubscribeToTask(typed(params)?),
        "GetExtendedAgentCard" => Call::GetExtendedAgentCard,
        push => Call::PushConfig(push, typed(params)?),
    })
}

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
fn typed<T: DeserializeOwned>(params: &str) -> Result<T, A2AError> {
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

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn write_head(out: &mut Vec<u8>, id: &JsonRpcId) {
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    // Serializing an id into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, id);
}

/// Appends a complete JSON-RPC reply (`result` or `error`) to `out`.
///
/// ```
/// use abacus::protocol::jsonrpc::encode_reply;
/// use abacus::protocol::{A2AError, JsonRpcId};
///
/// let mut out = Vec::new();
/// encode_reply(&mut out, &JsonRpcId::Number(3), &Err(A2AError::task_not_found("x")));
/// let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
/// assert_eq!(v["id"], 3);
/// assert_eq!(v["error"]["code"], -32001);
/// ```
pub fn encode_reply(out: &mut Vec<u8>, id: &JsonRpcId, outcome: &Result<Reply, A2AError>) {
    write_head(out, id);
    match outcome {
        Ok(reply) => {
            out.extend_from_slice(br#","result":"#);
            if serde_json::to_writer(&mut *out, reply).is_err() {
                out.truncate(0);
                return encode_reply(
                    out,
                    id,
                    &Err(A2AError::internal("reply could not be serialized")),
                );
            }
        }
        Err(e) => {
            out.extend_from_slice(br#","error":"#);
            let _ = serde_json::to_writer(&mut *out, &e.to_jsonrpc_error());
        }
    }
    out.push(b'}');
}

/// Appends one stream event as a JSON-RPC reply to `out`.
pub fn encode_event(out: &mut Vec<u8>, id: &JsonRpcId, item: &Result<StreamResponse, A2AError>) {
    write_head(out, id);
    match item {
        Ok(ev) => {
            out.extend_from_slice(br#","result":"#);
            let _ = serde_json::to_writer(&mut *out, ev);
        }
        Err(e) => {
            out.extend_from_slice(br#","error":"#);
            let _ = serde_json::to_writer(&mut *out, &e.to_jsonrpc_error());
        }
    }
    out.push(b'}');
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

    use super::*;

    fn code(body: &str) -> i32 {
        decode_request(body.as_bytes()).unwrap_err().1.code
    }

    #[test]
    fn classifies_envelope_errors() {
        assert_eq!(code("{not json"), -32700);
        assert_eq!(code("[]"), -32600);
        assert_eq!(code("42"), -32600);
        assert_eq!(
            code(r#"{"jsonrpc":"1.0","id":1,"method":"GetTask"}"#),
            -32600
        );
        assert_eq!(code(r#"{"id":1,"method":"GetTask"}"#), -32600);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":{},"method":"GetTask"}"#),
            -32600
        );
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":5}"#), -32600);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"tasks/get"}"#),
            -32601
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":[]}"#),
            -32602
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{}}"#),
            -32602
        );
    }

    #[test]
    fn names_the_bad_field() {
        let body = r#"{"jsonrpc":"2.0","id":"a","method":"SendMessage","params":{"message":{"messageId":"m","role":"ROLE_USER","parts":[{"text":1}]}}}"#;
        let (id, err) = decode_request(body.as_bytes()).unwrap_err();
        assert_eq!(id, JsonRpcId::String("a".into()));
        assert_eq!(err.code, -32602);
        assert!(err.message.contains("message.parts"), "{}", err.message);
    }

    #[test]
    fn accepts_proto_field_names() {
        let body =
            r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"t","history_length":2}}"#;
        match decode_request(body.as_bytes()).unwrap().call {
            Call::GetTask(p) => assert_eq!(p.history_length, Some(2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tolerates_unknown_fields() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"SendMessage","extra":1,"params":{"x":1,"message":{"messageId":"m","role":"ROLE_USER","parts":[{"text":"hi","y":2}],"z":3}}}"#;
        assert!(decode_request(body.as_bytes()).is_ok());
    }
}
