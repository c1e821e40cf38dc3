//! Error codes and how every binding reports them: one table from the A2A
//! error code to its reason, HTTP status and gRPC status, and
//! [`ToRpcError`], which gives the layers' typed errors their A2A codes.

use a2a::{error_code, A2AError};
use abacus_layers::cache::CacheError;
use abacus_layers::circuit_breaker::CircuitBreakerError;
use abacus_layers::concurrency::ConcurrencyLimitError;
use abacus_layers::rate_limit::{RateLimitError, RateLimited};
use abacus_layers::retry::RetryError;
use abacus_layers::timeout::{Elapsed, TimeoutError};
use http::StatusCode;
use std::convert::Infallible;

/// JSON-RPC codes of this server's own failures, in the implementation-defined
/// server-error range (-32000 to -32099) outside the codes A2A assigns.
pub mod server_error {
    /// The request ran past its deadline (timeout layer).
    pub const TIMEOUT: i32 = -32060;
    /// Too many requests in flight; retry later (concurrency layer).
    pub const OVERLOADED: i32 = -32061;
    /// A dependency is failing and its circuit breaker is open.
    pub const UNAVAILABLE: i32 = -32062;
    /// The task store could not save (or read) a task's state: the request
    /// did not take effect durably; retry once the store is back.
    pub const STORE_UNAVAILABLE: i32 = -32063;
    /// The caller used up its rate limit (rate-limit layer); retry after the
    /// wait in the error's data: a `google.rpc.RetryInfo` (`retryDelay`) and
    /// `retryAfterSeconds` in the `ErrorInfo` metadata.
    pub const RATE_LIMITED: i32 = -32064;

    /// The whole seconds a [`RATE_LIMITED`] error asks the client to wait
    /// (its `ErrorInfo` metadata `retryAfterSeconds`), as a `Retry-After`
    /// header wants them; `None` for other errors.
    ///
    /// ```
    /// use abacus::protocol::{server_error, ToRpcError};
    /// use abacus_layers::rate_limit::RateLimited;
    /// let e = RateLimited { retry_after: std::time::Duration::from_millis(2100) }.to_rpc_error();
    /// assert_eq!(server_error::retry_after_secs(&e), Some(3));
    /// ```
    pub fn retry_after_secs(e: &super::A2AError) -> Option<u64> {
        if e.code != RATE_LIMITED {
            return None;
        }
        e.details
            .iter()
            .flatten()
            .filter(|d| d.type_url == a2a::errordetails::ERROR_INFO_TYPE)
            .find_map(|d| {
                d.value
                    .get("metadata")?
                    .get(super::RETRY_AFTER_SECONDS)?
                    .as_str()?
                    .parse()
                    .ok()
            })
    }
}

/// The `ErrorInfo` metadata key of a rate-limited error's wait, in whole seconds.
const RETRY_AFTER_SECONDS: &str = "retryAfterSeconds";

/// The `@type` of `google.rpc.RetryInfo`.
const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// How one error code is reported on each binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind {
    /// The JSON-RPC error code.
    pub code: i32,
    /// The upper-case reason (`ErrorInfo.reason`, the metric label).
    pub reason: &'static str,
    /// The HTTP status of the HTTP+JSON binding.
    pub http_status: StatusCode,
    /// The gRPC status code name.
    pub grpc_status: &'static str,
}

const fn kind(
    code: i32,
    reason: &'static str,
    http_status: StatusCode,
    grpc_status: &'static str,
) -> ErrorKind {
    ErrorKind {
        code,
        reason,
        http_status,
        grpc_status,
    }
}

/// A revision of the A2A specification's error table (§5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorTableRevision {
    /// Specification 1.0.0, which the pinned conformance suite checks
    /// (TaskNotCancelable is HTTP 409, ContentTypeNotSupported 415 ...).
    V1_0_0,
    /// Specification 1.0.1: see [`V1_0_1_CHANGES`].
    V1_0_1,
}

/// The revision [`ERROR_KINDS`] follows: switching to 1.0.1 is this one change.
///
/// ```
/// use abacus::protocol::{error_kind, ErrorTableRevision, ERROR_TABLE_REVISION};
/// assert_eq!(ERROR_TABLE_REVISION, ErrorTableRevision::V1_0_0);
/// assert_eq!(error_kind(-32002).http_status, http::StatusCode::CONFLICT);
/// ```
pub const ERROR_TABLE_REVISION: ErrorTableRevision = ErrorTableRevision::V1_0_0;

/// Where specification 1.0.1's error table differs from 1.0.0's: the code,
/// then its HTTP status and gRPC status in 1.0.1 (every other row, and
/// every JSON-RPC code, is the same).
pub const V1_0_1_CHANGES: [(i32, StatusCode, &str); 6] = [
    (
        error_code::TASK_NOT_CANCELABLE,
        StatusCode::BAD_REQUEST,
        "FAILED_PRECONDITION",
    ),
    (
        error_code::PUSH_NOTIFICATION_NOT_SUPPORTED,
        StatusCode::BAD_REQUEST,
        "FAILED_PRECONDITION",
    ),
    (
        error_code::UNSUPPORTED_OPERATION,
        StatusCode::BAD_REQUEST,
        "FAILED_PRECONDITION",
    ),
    (
        error_code::CONTENT_TYPE_NOT_SUPPORTED,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
    ),
    (
        error_code::INVALID_AGENT_RESPONSE,
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
    ),
    (
        error_code::VERSION_NOT_SUPPORTED,
        StatusCode::BAD_REQUEST,
        "FAILED_PRECONDITION",
    ),
];

/// `table` as the revision `revision` of the specification has it.
const fn revised(mut table: [ErrorKind; 19], revision: ErrorTableRevision) -> [ErrorKind; 19] {
    if matches!(revision, ErrorTableRevision::V1_0_0) {
        return table;
    }
    let mut i = 0;
    while i < table.len() {
        let mut j = 0;
        while j < V1_0_1_CHANGES.len() {
            let (code, http_status, grpc_status) = V1_0_1_CHANGES[j];
            if table[i].code == code {
                table[i].http_status = http_status;
                table[i].grpc_status = grpc_status;
            }
            j += 1;
        }
        i += 1;
    }
    table
}

/// Every error code this server sends, with its mapping on each binding
/// (the A2A specification's error table in [`ERROR_TABLE_REVISION`], then
/// the server's own codes). Every binding maps errors through this table
/// only: JSON-RPC by code, HTTP+JSON by `http_status`, gRPC by `grpc_status`.
pub const ERROR_KINDS: [ErrorKind; 19] = revised(SPEC_1_0_0_KINDS, ERROR_TABLE_REVISION);

/// The table as specification 1.0.0 has it.
const SPEC_1_0_0_KINDS: [ErrorKind; 19] = [
    kind(
        error_code::TASK_NOT_FOUND,
        "TASK_NOT_FOUND",
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    ),
    kind(
        error_code::TASK_NOT_CANCELABLE,
        "TASK_NOT_CANCELABLE",
        StatusCode::CONFLICT,
        "FAILED_PRECONDITION",
    ),
    kind(
        error_code::PUSH_NOTIFICATION_NOT_SUPPORTED,
        "PUSH_NOTIFICATION_NOT_SUPPORTED",
        StatusCode::BAD_REQUEST,
        "UNIMPLEMENTED",
    ),
    kind(
        error_code::UNSUPPORTED_OPERATION,
        "UNSUPPORTED_OPERATION",
        StatusCode::BAD_REQUEST,
        "UNIMPLEMENTED",
    ),
    kind(
        error_code::CONTENT_TYPE_NOT_SUPPORTED,
        "CONTENT_TYPE_NOT_SUPPORTED",
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "INVALID_ARGUMENT",
    ),
    kind(
        error_code::INVALID_AGENT_RESPONSE,
        "INVALID_AGENT_RESPONSE",
        StatusCode::BAD_GATEWAY,
        "INTERNAL",
    ),
    kind(
        error_code::EXTENDED_CARD_NOT_CONFIGURED,
        "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
        StatusCode::BAD_REQUEST,
        "FAILED_PRECONDITION",
    ),
    kind(
        error_code::EXTENSION_SUPPORT_REQUIRED,
        "EXTENSION_SUPPORT_REQUIRED",
        StatusCode::BAD_REQUEST,
        "FAILED_PRECONDITION",
    ),
    kind(
        error_code::VERSION_NOT_SUPPORTED,
        "VERSION_NOT_SUPPORTED",
        StatusCode::BAD_REQUEST,
        "UNIMPLEMENTED",
    ),
    kind(
        error_code::PARSE_ERROR,
        "PARSE_ERROR",
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
    ),
    kind(
        error_code::INVALID_REQUEST,
        "INVALID_REQUEST",
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
    ),
    kind(
        error_code::METHOD_NOT_FOUND,
        "METHOD_NOT_FOUND",
        StatusCode::NOT_FOUND,
        "UNIMPLEMENTED",
    ),
    kind(
        error_code::INVALID_PARAMS,
        "INVALID_PARAMS",
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
    ),
    kind(
        error_code::INTERNAL_ERROR,
        "INTERNAL_ERROR",
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
    ),
    kind(
        server_error::TIMEOUT,
        "DEADLINE_EXCEEDED",
        StatusCode::GATEWAY_TIMEOUT,
        "DEADLINE_EXCEEDED",
    ),
    kind(
        server_error::OVERLOADED,
        "OVERLOADED",
        StatusCode::SERVICE_UNAVAILABLE,
        "RESOURCE_EXHAUSTED",
    ),
    kind(
        server_error::UNAVAILABLE,
        "UNAVAILABLE",
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
    ),
    kind(
        server_error::STORE_UNAVAILABLE,
        "STORE_UNAVAILABLE",
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
    ),
    kind(
        server_error::RATE_LIMITED,
        "RATE_LIMITED",
        StatusCode::TOO_MANY_REQUESTS,
        "RESOURCE_EXHAUSTED",
    ),
];

/// The row of `code`; codes outside the table are internal errors.
///
/// ```
/// use abacus::protocol::error_kind;
/// assert_eq!(error_kind(-32001).http_status, http::StatusCode::NOT_FOUND);
/// assert_eq!(error_kind(-1).reason, "INTERNAL_ERROR");
/// ```
pub fn error_kind(code: i32) -> &'static ErrorKind {
    ERROR_KINDS
        .iter()
        .find(|k| k.code == code)
        .unwrap_or(&ERROR_KINDS[INTERNAL_ROW])
}

/// The row of `INTERNAL_ERROR` in [`ERROR_KINDS`] (a test checks it).
const INTERNAL_ROW: usize = 13;

/// A short upper-case name for an error code (`TASK_NOT_FOUND`, `OVERLOADED`).
///
/// ```
/// assert_eq!(abacus::protocol::error_reason(-32001), "TASK_NOT_FOUND");
/// assert_eq!(abacus::protocol::error_reason(abacus::protocol::server_error::TIMEOUT), "DEADLINE_EXCEEDED");
/// ```
pub fn error_reason(code: i32) -> &'static str {
    error_kind(code).reason
}

/// The JSON-RPC `error` member of `e`, its `ErrorInfo.reason` taken from
/// [`ERROR_KINDS`] (the official types know only the A2A codes and call
/// every other code `INTERNAL_ERROR`).
///
/// ```
/// use abacus::protocol::{server_error, wire_error, A2AError};
/// let e = A2AError::new(server_error::OVERLOADED, "busy");
/// let wire = serde_json::to_value(wire_error(&e)).unwrap();
/// assert_eq!(wire["data"][0]["reason"], "OVERLOADED");
/// ```
pub fn wire_error(e: &A2AError) -> a2a::JsonRpcError {
    let mut wire = e.to_jsonrpc_error();
    let reason = error_reason(e.code);
    if reason != a2a::error_reason(e.code) {
        if let Some(serde_json::Value::Array(details)) = wire.data.as_mut() {
            for detail in details {
                if detail.get("@type").and_then(|t| t.as_str())
                    == Some(a2a::errordetails::ERROR_INFO_TYPE)
                {
                    detail["reason"] = serde_json::Value::from(reason);
                }
            }
        }
    }
    wire
}

/// The HTTP+JSON binding's error body of `e` (A2A §11.6, AIP-193): a
/// `google.rpc.Status` as JSON, `code` the HTTP status of [`ERROR_KINDS`],
/// `status` its gRPC code name, and the same `details` as the JSON-RPC
/// error's data (among them the `ErrorInfo` with the reason).
///
/// ```
/// use abacus::protocol::{http_error_body, A2AError};
/// let body = http_error_body(&A2AError::task_not_found("t-1"));
/// let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
/// assert_eq!(v["error"]["code"], 404);
/// assert_eq!(v["error"]["status"], "NOT_FOUND");
/// assert_eq!(v["error"]["details"][0]["reason"], "TASK_NOT_FOUND");
/// assert_eq!(v["error"]["details"][0]["domain"], "a2a-protocol.org");
/// ```
pub fn http_error_body(e: &A2AError) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        error: Status<'a>,
    }
    #[derive(serde::Serialize)]
    struct Status<'a> {
        code: u16,
        status: &'static str,
        message: &'a str,
        details: serde_json::Value,
    }
    let kind = error_kind(e.code);
    let details = wire_error(e)
        .data
        .filter(serde_json::Value::is_array)
        .unwrap_or_else(|| serde_json::Value::Array(Vec::new()));
    let body = Body {
        error: Status {
            code: kind.http_status.as_u16(),
            status: kind.grpc_status,
            message: &e.message,
            details,
        },
    };
    // Serializing strings, numbers and a JSON value into a Vec cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Maps an error of the stack to the A2A error the client gets.
///
/// The layers know nothing of A2A; this is where their errors get codes.
///
/// ```
/// use abacus::protocol::ToRpcError;
/// use abacus_layers::concurrency::ConcurrencyLimitError;
/// let e: ConcurrencyLimitError<std::convert::Infallible> = ConcurrencyLimitError::Overloaded;
/// assert_eq!(e.to_rpc_error().code, abacus::protocol::server_error::OVERLOADED);
/// ```
pub trait ToRpcError {
    /// The A2A error.
    fn to_rpc_error(&self) -> A2AError;
}

impl ToRpcError for Infallible {
    fn to_rpc_error(&self) -> A2AError {
        match *self {}
    }
}

impl ToRpcError for A2AError {
    fn to_rpc_error(&self) -> A2AError {
        self.clone()
    }
}

impl ToRpcError for tower::BoxError {
    fn to_rpc_error(&self) -> A2AError {
        rpc_error_for_ref(self.as_ref())
    }
}

/// [`ToRpcError`] for an error known only as `dyn Error`: an [`A2AError`]
/// inside keeps its code, anything else is an internal error.
///
/// ```
/// let e: tower::BoxError = "disk on fire".into();
/// assert_eq!(abacus::protocol::rpc_error_for_ref(e.as_ref()).code, -32603);
/// ```
pub fn rpc_error_for_ref(e: &(dyn std::error::Error + Send + Sync + 'static)) -> A2AError {
    if let Some(a2a) = e.downcast_ref::<A2AError>() {
        return a2a.clone();
    }
    if let Some(limited) = e.downcast_ref::<RateLimited>() {
        return limited.to_rpc_error();
    }
    A2AError::internal(format!("internal error: {e}"))
}

/// The error of a request that ran past its deadline.
pub(crate) fn timeout_error(e: &Elapsed) -> A2AError {
    crate::otel::decision("timed_out");
    A2AError::new(server_error::TIMEOUT, format!("request timed out: {e}"))
}

impl<E: ToRpcError> ToRpcError for ConcurrencyLimitError<E> {
    fn to_rpc_error(&self) -> A2AError {
        match self {
            ConcurrencyLimitError::Overloaded => {
                crate::otel::decision("shed");
                A2AError::new(
                    server_error::OVERLOADED,
                    "server overloaded: too many requests in flight; retry later",
                )
            }
            ConcurrencyLimitError::Inner(e) => e.to_rpc_error(),
        }
    }
}

impl<E: ToRpcError> ToRpcError for TimeoutError<E> {
    fn to_rpc_error(&self) -> A2AError {
        match self {
            TimeoutError::Elapsed(e) => timeout_error(e),
            TimeoutError::Inner(e) => e.to_rpc_error(),
        }
    }
}

impl<E: ToRpcError> ToRpcError for CacheError<E> {
    fn to_rpc_error(&self) -> A2AError {
        match self {
            CacheError::Inner(e) => e.to_rpc_error(),
            CacheError::Shared(e) => e.to_rpc_error(),
        }
    }
}

impl<E: ToRpcError> ToRpcError for CircuitBreakerError<E> {
    fn to_rpc_error(&self) -> A2AError {
        match self {
            CircuitBreakerError::Open => {
                crate::otel::decision("breaker_open");
                A2AError::new(
                    server_error::UNAVAILABLE,
                    "service unavailable: failing dependency, circuit breaker open; retry later",
                )
            }
            CircuitBreakerError::Inner(e) => e.to_rpc_error(),
        }
    }
}

/// `-32064 RATE_LIMITED`, its wait in the data twice: a
/// `google.rpc.RetryInfo` with `retryDelay` (proto-JSON, `"0.250s"`,
/// rounded up to the millisecond) and `retryAfterSeconds` in the
/// `ErrorInfo` metadata (whole seconds, rounded up, as in `Retry-After`).
///
/// ```
/// use abacus::protocol::{wire_error, ToRpcError};
/// use abacus_layers::rate_limit::RateLimited;
/// let e = RateLimited { retry_after: std::time::Duration::from_millis(250) }.to_rpc_error();
/// let data = serde_json::to_value(wire_error(&e)).unwrap()["data"].clone();
/// assert_eq!(data[0]["@type"], "type.googleapis.com/google.rpc.RetryInfo");
/// assert_eq!(data[0]["retryDelay"], "0.250s");
/// assert_eq!(data[1]["reason"], "RATE_LIMITED");
/// assert_eq!(data[1]["metadata"]["retryAfterSeconds"], "1");
/// ```
impl ToRpcError for RateLimited {
    fn to_rpc_error(&self) -> A2AError {
        use a2a::errordetails::{TypedDetail, PROTOCOL_DOMAIN};
        use std::collections::HashMap;
        let retry_info = TypedDetail::new(
            RETRY_INFO_TYPE,
            HashMap::from([(
                "retryDelay".to_string(),
                serde_json::Value::from(proto_duration(self.retry_after)),
            )]),
        );
        crate::otel::decision("rate_limited");
        let metadata = HashMap::from([(
            RETRY_AFTER_SECONDS.to_string(),
            self.retry_after_secs().to_string(),
        )]);
        let info = TypedDetail::error_info("RATE_LIMITED", PROTOCOL_DOMAIN, Some(metadata));
        A2AError::new(server_error::RATE_LIMITED, self.to_string())
            .with_details(vec![retry_info, info])
    }
}

/// A duration as proto-JSON writes one (`"1s"`, `"0.250s"`), rounded up
/// to the millisecond.
fn proto_duration(d: std::time::Duration) -> String {
    let ms = d.as_nanos().div_ceil(1_000_000);
    match ms % 1000 {
        0 => format!("{}s", ms / 1000),
        frac => format!("{}.{frac:03}s", ms / 1000),
    }
}

impl<E: ToRpcError> ToRpcError for RateLimitError<E> {
    fn to_rpc_error(&self) -> A2AError {
        match self {
            RateLimitError::Limited(limited) => limited.to_rpc_error(),
            RateLimitError::Inner(e) => e.to_rpc_error(),
        }
    }
}

impl<E: ToRpcError> ToRpcError for RetryError<E> {
    fn to_rpc_error(&self) -> A2AError {
        match self {
            RetryError::Inner(e) => e.to_rpc_error(),
            RetryError::Exhausted { error, .. } => error.to_rpc_error(),
        }
    }
}

impl ErrorKind {
    /// The [`tonic::Code`] of [`grpc_status`](ErrorKind::grpc_status), the
    /// status the gRPC binding answers this error with.
    ///
    /// ```
    /// use abacus::protocol::error_kind;
    /// assert_eq!(error_kind(-32001).grpc_code(), tonic::Code::NotFound);
    /// assert_eq!(error_kind(-32002).grpc_code(), tonic::Code::FailedPrecondition);
    /// ```
    pub fn grpc_code(&self) -> tonic::Code {
        grpc_code(self.grpc_status)
    }
}

/// The gRPC status code named `name` (`NOT_FOUND`); unknown names are `UNKNOWN`.
fn grpc_code(name: &str) -> tonic::Code {
    use tonic::Code;
    match name {
        "OK" => Code::Ok,
        "CANCELLED" => Code::Cancelled,
        "INVALID_ARGUMENT" => Code::InvalidArgument,
        "DEADLINE_EXCEEDED" => Code::DeadlineExceeded,
        "NOT_FOUND" => Code::NotFound,
        "ALREADY_EXISTS" => Code::AlreadyExists,
        "PERMISSION_DENIED" => Code::PermissionDenied,
        "RESOURCE_EXHAUSTED" => Code::ResourceExhausted,
        "FAILED_PRECONDITION" => Code::FailedPrecondition,
        "ABORTED" => Code::Aborted,
        "OUT_OF_RANGE" => Code::OutOfRange,
        "UNIMPLEMENTED" => Code::Unimplemented,
        "INTERNAL" => Code::Internal,
        "UNAVAILABLE" => Code::Unavailable,
        "DATA_LOSS" => Code::DataLoss,
        "UNAUTHENTICATED" => Code::Unauthenticated,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_agrees_with_the_official_reasons_and_has_no_duplicates() {
        for (i, k) in ERROR_KINDS.iter().enumerate() {
            assert!(
                ERROR_KINDS[..i].iter().all(|o| o.code != k.code),
                "{}",
                k.reason
            );
            if !(-32099..=-32060).contains(&k.code) {
                assert_eq!(a2a::error_reason(k.code), k.reason);
            }
        }
        assert_eq!(ERROR_KINDS[INTERNAL_ROW].code, error_code::INTERNAL_ERROR);
    }

    #[test]
    fn the_1_0_1_revision_changes_only_its_rows() {
        let v101 = revised(SPEC_1_0_0_KINDS, ErrorTableRevision::V1_0_1);
        let changed: Vec<i32> = SPEC_1_0_0_KINDS
            .iter()
            .zip(&v101)
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.code)
            .collect();
        let listed: Vec<i32> = V1_0_1_CHANGES.iter().map(|c| c.0).collect();
        assert_eq!(changed, listed);
        let cancel = v101
            .iter()
            .find(|k| k.code == error_code::TASK_NOT_CANCELABLE)
            .unwrap();
        assert_eq!(
            (cancel.http_status, cancel.grpc_status),
            (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION")
        );
        assert_eq!(
            revised(SPEC_1_0_0_KINDS, ErrorTableRevision::V1_0_0),
            SPEC_1_0_0_KINDS
        );
    }

    #[test]
    fn a_rate_limited_error_carries_its_wait_and_keeps_its_code_through_a_box() {
        use std::time::Duration;
        assert_eq!(proto_duration(Duration::from_secs(2)), "2s");
        assert_eq!(proto_duration(Duration::from_nanos(1)), "0.001s");
        assert_eq!(proto_duration(Duration::from_millis(61_500)), "61.500s");
        let limited = RateLimited {
            retry_after: Duration::from_millis(1200),
        };
        let boxed: tower::BoxError = Box::new(limited);
        let e = boxed.to_rpc_error();
        assert_eq!(e.code, server_error::RATE_LIMITED);
        assert_eq!(server_error::retry_after_secs(&e), Some(2));
        assert_eq!(
            error_kind(e.code).http_status,
            StatusCode::TOO_MANY_REQUESTS
        );
        let wire = serde_json::to_value(wire_error(&e)).unwrap();
        assert_eq!(wire["data"][0]["retryDelay"], "1.200s", "{wire}");
        assert_eq!(wire["data"][1]["reason"], "RATE_LIMITED", "{wire}");
        let other = A2AError::new(server_error::OVERLOADED, "busy");
        assert_eq!(server_error::retry_after_secs(&other), None);
    }

    #[test]
    fn every_grpc_status_name_is_a_grpc_code() {
        for k in &ERROR_KINDS {
            let code = k.grpc_code();
            assert_ne!(code, tonic::Code::Unknown, "{}", k.reason);
            // The name is the code's canonical upper-snake-case name.
            let canonical =
                format!("{code:?}")
                    .chars()
                    .enumerate()
                    .fold(String::new(), |mut out, (i, c)| {
                        if c.is_uppercase() && i > 0 {
                            out.push('_');
                        }
                        out.push(c.to_ascii_uppercase());
                        out
                    });
            assert_eq!(canonical, k.grpc_status, "{}", k.reason);
        }
    }
}
