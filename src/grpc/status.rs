//! A2A errors as gRPC statuses.

use crate::protocol::{error_code, error_kind, wire_error, A2AError};
use a2a::errordetails::{BAD_REQUEST_TYPE, ERROR_INFO_TYPE};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tonic_types::{BadRequest, ErrorDetail, ErrorInfo, FieldViolation, RetryInfo, StatusExt};

/// The `@type` of `google.rpc.RetryInfo`.
const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The gRPC status of `e`: its code from the error table
/// ([`ErrorKind::grpc_code`](crate::protocol::ErrorKind::grpc_code)), its
/// message, and in `grpc-status-details-bin` a `google.rpc.Status` with the
/// details the JSON-RPC binding puts in `error.data` ([`wire_error`]): the
/// `ErrorInfo` (reason, domain `a2a-protocol.org`, metadata), and a
/// `RetryInfo` or `BadRequest` when the error has one. Details of other
/// types have no protobuf form here and are left out.
///
/// ```
/// use tonic_types::StatusExt;
/// let s = abacus::grpc::status(&abacus::protocol::A2AError::task_not_found("t-1"));
/// assert_eq!(s.code(), tonic::Code::NotFound);
/// let info = s.get_details_error_info().unwrap();
/// assert_eq!((info.reason.as_str(), info.domain.as_str()), ("TASK_NOT_FOUND", "a2a-protocol.org"));
/// ```
pub fn status(e: &A2AError) -> tonic::Status {
    let code = error_kind(e.code).grpc_code();
    let wire = wire_error(e);
    let details = match &wire.data {
        Some(Value::Array(details)) => details.iter().filter_map(detail).collect(),
        _ => Vec::new(),
    };
    tonic::Status::with_error_details_vec(code, e.message.clone(), details)
}

/// [`status`], counted in `a2a_errors_total` (every error a client is sent
/// goes through here); an internal error is logged.
pub(crate) fn fail(e: &A2AError) -> tonic::Status {
    crate::http::record_error(e);
    if e.code == error_code::INTERNAL_ERROR {
        tracing::warn!(code = e.code, error = %e.message, "gRPC request failed");
    }
    status(e)
}

/// One proto-JSON detail (`{"@type": ..., ...}`) as a protobuf detail.
fn detail(d: &Value) -> Option<ErrorDetail> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match d.get("@type")?.as_str()? {
        ERROR_INFO_TYPE => {
            let metadata: HashMap<String, String> = d
                .get("metadata")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                .unwrap_or_default();
            let field = |name: &str| d.get(name).map(text).unwrap_or_default();
            Some(ErrorInfo::new(field("reason"), field("domain"), metadata).into())
        }
        RETRY_INFO_TYPE => {
            let delay = d
                .get("retryDelay")
                .and_then(Value::as_str)
                .and_then(proto_duration);
            Some(RetryInfo::new(delay).into())
        }
        BAD_REQUEST_TYPE => {
            let violations = d
                .get("fieldViolations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|v| {
                    let field = |name: &str| v.get(name).map(text).unwrap_or_default();
                    FieldViolation::new(field("field"), field("description"))
                })
                .collect::<Vec<_>>();
            Some(BadRequest::new(violations).into())
        }
        _ => None,
    }
}

/// A proto-JSON duration (`"1.250s"`).
fn proto_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{server_error, ToRpcError, ERROR_KINDS};
    use abacus_layers::rate_limit::RateLimited;

    #[test]
    fn every_code_of_the_table_gets_its_grpc_code_and_reason() {
        for kind in &ERROR_KINDS {
            let s = status(&A2AError::new(kind.code, "boom"));
            assert_eq!(s.code(), kind.grpc_code(), "{}", kind.reason);
            assert_eq!(s.message(), "boom");
            let info = s.get_details_error_info().unwrap();
            assert_eq!(info.reason, kind.reason);
            assert_eq!(info.domain, "a2a-protocol.org");
            assert!(info.metadata.contains_key("timestamp"), "{info:?}");
        }
        // Outside the table: an internal error.
        assert_eq!(
            status(&A2AError::new(-1, "?")).code(),
            tonic::Code::Internal
        );
    }

    #[test]
    fn a_rate_limited_status_carries_its_retry_info_and_wait() {
        let e = RateLimited {
            retry_after: Duration::from_millis(1250),
        }
        .to_rpc_error();
        let s = status(&e);
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        let retry = s.get_details_retry_info().unwrap();
        assert_eq!(retry.retry_delay, Some(Duration::from_millis(1250)));
        let info = s.get_details_error_info().unwrap();
        assert_eq!(info.reason, "RATE_LIMITED");
        assert_eq!(info.metadata["retryAfterSeconds"], "2");
        assert_eq!(e.code, server_error::RATE_LIMITED);
    }

    #[test]
    fn bad_request_field_violations_survive() {
        let e = A2AError::invalid_params("bad").with_details(vec![
            a2a::errordetails::TypedDetail::bad_request(vec![a2a::errordetails::FieldViolation {
                field: "message.parts".into(),
                description: "must not be empty".into(),
            }]),
        ]);
        let s = status(&e);
        let bad = s.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations[0].field, "message.parts");
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
    }
}
