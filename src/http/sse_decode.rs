//! An incremental `text/event-stream` parser, as the HTML standard's
//! "interpreting an event stream" describes it.
//!
//! Hand-written: the SSE crates on crates.io either own the HTTP client or
//! lack a bound on event size; this is the whole algorithm in one screen.
//! Lines end with LF, CRLF or CR (also when a CR and its LF arrive in two
//! chunks), a leading BOM is skipped, `data` lines join with LF, comments are
//! ignored, `id` (without NUL) and `retry` (digits only) are kept across
//! events, and an event not ended by a blank line when the stream ends is
//! dropped.

use std::time::Duration;

/// Default bound on one line and on one event's data, in bytes.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// One dispatched event.
///
/// ```
/// use abacus::http::SseDecoder;
///
/// let mut sse = SseDecoder::new();
/// let mut events = Vec::new();
/// sse.feed(b"id: 7\r\ndata: a\r\ndata: b\r\n\r\n", &mut events).unwrap();
/// assert_eq!(events[0].data, "a\nb");
/// assert_eq!(events[0].id, "7");
/// assert_eq!(events[0].event, "message");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field, `message` when none was given.
    pub event: String,
    /// The `data` lines, joined with LF.
    pub data: String,
    /// The last event id seen so far (it carries over to later events).
    pub id: String,
}

/// A stream that broke the size bound.
///
/// ```
/// use abacus::http::{SseDecoder, SseError};
///
/// let mut sse = SseDecoder::new().max_event_bytes(4);
/// let err = sse.feed(b"data: too long\n\n", &mut Vec::new()).unwrap_err();
/// assert_eq!(err, SseError::TooLarge { limit: 4 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line or an event's data grew past the bound.
    #[error("server-sent event larger than {limit} bytes")]
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
}

/// The parser's state between chunks.
///
/// ```
/// use abacus::http::SseDecoder;
///
/// let mut sse = SseDecoder::new();
/// let mut events = Vec::new();
/// sse.feed(b": keep-alive\n\ndata: {\"x\"", &mut events).unwrap();
/// assert!(events.is_empty());
/// sse.feed(b":1}\n\n", &mut events).unwrap();
/// assert_eq!(events[0].data, r#"{"x":1}"#);
/// ```
#[derive(Debug, Clone)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF first in this one ends nothing.
    after_cr: bool,
    /// Nothing seen yet: a BOM may still come.
    at_start: bool,
    data: String,
    event: String,
    id: String,
    retry: Option<Duration>,
    max: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::new()
    }
}

impl SseDecoder {
    /// A parser bounded by [`DEFAULT_MAX_EVENT_BYTES`].
    ///
    /// ```
    /// let sse = abacus::http::SseDecoder::new();
    /// assert_eq!(sse.last_event_id(), "");
    /// ```
    pub fn new() -> Self {
        SseDecoder {
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            data: String::new(),
            event: String::new(),
            id: String::new(),
            retry: None,
            max: DEFAULT_MAX_EVENT_BYTES,
        }
    }

    /// Sets the bound on one line and on one event's data.
    ///
    /// ```
    /// let sse = abacus::http::SseDecoder::new().max_event_bytes(1024);
    /// # let _ = sse;
    /// ```
    pub fn max_event_bytes(mut self, limit: usize) -> Self {
        self.max = limit;
        self
    }

    /// The id to resume from (`Last-Event-ID`).
    ///
    /// ```
    /// let mut sse = abacus::http::SseDecoder::new();
    /// sse.feed(b"id: 42\n\n", &mut Vec::new()).unwrap();
    /// assert_eq!(sse.last_event_id(), "42");
    /// ```
    pub fn last_event_id(&self) -> &str {
        &self.id
    }

    /// The reconnection delay the server asked for, if any.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut sse = abacus::http::SseDecoder::new();
    /// sse.feed(b"retry: 1500\n", &mut Vec::new()).unwrap();
    /// assert_eq!(sse.retry(), Some(Duration::from_millis(1500)));
    /// ```
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Parses the next chunk of the stream, pushing every event it completes.
    ///
    /// ```
    /// let mut sse = abacus::http::SseDecoder::new();
    /// let mut events = Vec::new();
    /// sse.feed(b"event: ping\rdata: 1\r\r", &mut events).unwrap();
    /// assert_eq!((events[0].event.as_str(), events[0].data.as_str()), ("ping", "1"));
    /// ```
    pub fn feed(&mut self, mut chunk: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.push_line_bytes(&chunk[..end])?;
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, events)?;
            self.line = line;
            self.line.clear();
            let cr = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if cr {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.push_line_bytes(chunk)
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.max {
            return Err(SseError::TooLarge { limit: self.max });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn line_done(&mut self, raw: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut raw = raw;
        if self.at_start {
            self.at_start = false;
            raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        }
        // Line ends are ASCII, so decoding line by line equals decoding the
        // whole stream.
        let line = String::from_utf8_lossy(raw);
        if line.is_empty() {
            self.dispatch(events);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > self.max {
                    return Err(SseError::TooLarge { limit: self.max });
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => value.clone_into(&mut self.id),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Digits beyond u64 are a delay no one waits for: saturate.
                let ms = value.parse::<u64>().unwrap_or(u64::MAX);
                self.retry = Some(Duration::from_millis(ms));
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the LF after the last data line
        events.push(SseEvent {
            event: if event.is_empty() {
                "message".to_string()
            } else {
                event
            },
            data,
            id: self.id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Vec<SseEvent> {
        let mut sse = SseDecoder::new();
        let mut events = Vec::new();
        sse.feed(input, &mut events).unwrap();
        events
    }

    fn datas(input: &[u8]) -> Vec<String> {
        parse(input).into_iter().map(|e| e.data).collect()
    }

    #[test]
    fn every_line_ending_ends_a_line() {
        for input in [
            &b"data: 1\n\ndata: 2\n\n"[..],
            b"data: 1\r\n\r\ndata: 2\r\n\r\n",
            b"data: 1\r\rdata: 2\r\r",
            b"data: 1\r\n\ndata: 2\n\r\n",
        ] {
            assert_eq!(datas(input), ["1", "2"], "{input:?}");
        }
    }

    #[test]
    fn any_split_of_the_input_gives_the_same_events() {
        let input = b"\xEF\xBB\xBFid: 1\r\ndata: a\r\ndata:b\r\r: c\r\nevent: x\ndata\n\n";
        let whole = parse(input);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].data, "a\nb");
        assert_eq!(whole[1].data, "");
        assert_eq!(whole[1].event, "x");
        for cut in 0..=input.len() {
            for cut2 in cut..=input.len() {
                let mut sse = SseDecoder::new();
                let mut events = Vec::new();
                for part in [&input[..cut], &input[cut..cut2], &input[cut2..]] {
                    sse.feed(part, &mut events).unwrap();
                }
                assert_eq!(events, whole, "cuts {cut} {cut2}");
            }
        }
    }

    #[test]
    fn fields_follow_the_standard() {
        let ev = parse(b"data:  two spaces\nid: a\0b\nretry: 1x\nunknown: 1\n\n");
        assert_eq!(ev[0].data, " two spaces");
        assert_eq!(ev[0].id, "", "an id with NUL is ignored");
        let mut sse = SseDecoder::new();
        sse.feed(b"retry: 1x\nretry: 20\nretry: \n", &mut Vec::new())
            .unwrap();
        assert_eq!(sse.retry(), Some(Duration::from_millis(20)));
    }

    #[test]
    fn the_id_carries_over_and_an_unended_event_is_dropped() {
        let ev = parse(b"id: 5\ndata: a\n\ndata: b\n\ndata: c");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].id, "5");
    }

    #[test]
    fn lines_and_data_are_bounded() {
        let mut sse = SseDecoder::new().max_event_bytes(8);
        let err = sse.feed(b"data: 123", &mut Vec::new());
        assert_eq!(err, Err(SseError::TooLarge { limit: 8 }));
        let mut sse = SseDecoder::new().max_event_bytes(8);
        let mut events = Vec::new();
        sse.feed(b"data:1234\ndata:1234\n", &mut events)
            .expect_err("two lines of 4 with their LFs exceed 8");
    }
}
