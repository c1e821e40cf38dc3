//! The JSON-RPC 2.0 envelope: decoding a request body into an [`A2ARequest`]
//! and encoding replies and stream events, straight into byte buffers.

use super::method::Method;
use super::request::A2ARequest;
use super::response::Reply;
use a2a::{A2AError, JsonRpcId};
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

/// Decodes a JSON-RPC request body into its id and a typed [`A2ARequest`].
///
/// The id stays with the JSON-RPC adapter, which stamps it on the reply and
/// on every stream event; the request itself knows nothing of JSON-RPC.
/// Errors carry the exact JSON-RPC code: -32700 for malformed JSON, -32600
/// for a well-formed body that is not a JSON-RPC 2.0 request, -32601 for an
/// unknown method and -32602 for parameters of the wrong shape, with a
/// message naming the offending field.
///
/// ```
/// use abacus::protocol::jsonrpc::decode_request;
/// use abacus::protocol::{JsonRpcId, Method};
///
/// let body = br#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"t1"}}"#;
/// let (id, req) = decode_request(body).unwrap();
/// assert_eq!(id, JsonRpcId::Number(1));
/// assert_eq!(req.call.method(), Method::GetTask);
///
/// let (_, err) = decode_request(br#"{"jsonrpc":"2.0","id":1,"method":"Nope"}"#).unwrap_err();
/// assert_eq!(err.code, -32601);
/// ```
pub fn decode_request(body: &[u8]) -> Result<(JsonRpcId, A2ARequest), DecodeError> {
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
    let method = Method::from_name(&method).ok_or_else(|| {
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
    match method.decode(params) {
        Ok(call) => Ok((id, A2ARequest::new(call))),
        Err(e) => Err((id, e)),
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
            let _ = serde_json::to_writer(&mut *out, &super::errors::wire_error(e));
        }
    }
    out.push(b'}');
}

/// Appends one stream event as a JSON-RPC reply to `out`.
pub fn encode_event(out: &mut Vec<u8>, id: &JsonRpcId, item: &super::StreamItem) {
    write_head(out, id);
    match item {
        Ok(ev) => {
            out.extend_from_slice(br#","result":"#);
            let _ = serde_json::to_writer(&mut *out, &ev.response);
        }
        Err(e) => {
            out.extend_from_slice(br#","error":"#);
            let _ = serde_json::to_writer(&mut *out, &super::errors::wire_error(e));
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Call;

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
        match decode_request(body.as_bytes()).unwrap().1.call {
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
