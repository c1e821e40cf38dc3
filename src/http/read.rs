//! Reading a request body within the edge's limits, the same way for every
//! binding: at most `max_body_bytes` (a larger `Content-Length` is refused
//! before reading), all of it within `body_timeout`.

use super::HttpOptions;
use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Limited};
use std::future::Future;
use std::task::Poll;
use std::time::Duration;
use tower::BoxError;

/// Why a body was not read; each binding answers it in its own format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Larger than the limit (413).
    TooLarge(usize),
    /// Not all of it arrived within the deadline (408; close the connection).
    TimedOut(Duration),
    /// The connection failed while reading.
    Unreadable,
}

impl BodyError {
    /// The HTTP status that goes with the error.
    pub(crate) fn status(self) -> http::StatusCode {
        match self {
            BodyError::TooLarge(_) => http::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut(_) => http::StatusCode::REQUEST_TIMEOUT,
            BodyError::Unreadable => http::StatusCode::BAD_REQUEST,
        }
    }

    /// What the client is told.
    pub(crate) fn message(self) -> String {
        match self {
            BodyError::TooLarge(max) => format!("request body larger than {max} bytes"),
            BodyError::TimedOut(limit) => {
                format!("request body not received within {} ms", limit.as_millis())
            }
            BodyError::Unreadable => "request body could not be read".to_string(),
        }
    }
}

/// The whole body of a request whose head is `parts`.
pub(crate) async fn read_body<B>(
    parts: &http::request::Parts,
    body: B,
    opts: &HttpOptions,
) -> Result<Bytes, BodyError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let max = opts.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    let mut collect = std::pin::pin!(Limited::new(body, max).collect());
    // A small body is usually in by now: the deadline's timer only for the rest.
    let first = std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await;
    let collected = match first {
        Poll::Ready(r) => Ok(r),
        Poll::Pending => tokio::time::timeout(opts.body_timeout, collect).await,
    };
    match collected {
        Err(_) => Err(BodyError::TimedOut(opts.body_timeout)),
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(max)),
        Ok(Err(_)) => Err(BodyError::Unreadable),
    }
}
