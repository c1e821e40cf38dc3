//! Keyset page tokens shared by every backend.
//!
//! A token names the last task of the previous page by its sort key
//! (status key, id); the next page starts strictly after it. Unlike an
//! offset, a keyset position neither skips nor repeats tasks when other
//! tasks are inserted while a client pages, and the SQL backends seek to it
//! through an index instead of counting rows. The encoding is
//! `v1.<status key>.<hex of the id's UTF-8 bytes>`: opaque to clients and
//! safe in URLs.

use super::{StoreError, TaskPage};
use a2a::Task;

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageKey {
    /// [`super::status_key`] of the last task of the previous page.
    pub status_key: i64,
    /// Id of the last task of the previous page.
    pub id: String,
}

/// A page of keyset-paginated results: `tasks` in order, whether rows
/// follow, the status key of the last task, and the total match count.
pub(crate) fn finish_page(
    tasks: Vec<Task>,
    has_more: bool,
    last_status_key: Option<i64>,
    total: i64,
) -> TaskPage {
    let next_page_token = match (has_more, last_status_key, tasks.last()) {
        (true, Some(status_key), Some(task)) => Some(
            PageKey {
                status_key,
                id: task.id.clone(),
            }
            .encode(),
        ),
        _ => None,
    };
    TaskPage {
        tasks,
        next_page_token,
        total_size: usize::try_from(total).unwrap_or(0),
    }
}

impl PageKey {
    /// The opaque token for this position.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(24 + self.id.len() * 2);
        out.push_str("v1.");
        out.push_str(&self.status_key.to_string());
        out.push('.');
        for b in self.id.as_bytes() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }

    /// Parses a token made by [`PageKey::encode`].
    pub fn decode(token: &str) -> Result<Self, StoreError> {
        let rest = token
            .strip_prefix("v1.")
            .ok_or(StoreError::InvalidPageToken)?;
        let (key, hex) = rest.split_once('.').ok_or(StoreError::InvalidPageToken)?;
        let status_key = key
            .parse::<i64>()
            .map_err(|_| StoreError::InvalidPageToken)?;
        if hex.len() % 2 != 0 {
            return Err(StoreError::InvalidPageToken);
        }
        let mut bytes = Vec::with_capacity(hex.len() / 2);
        for pair in hex.as_bytes().chunks_exact(2) {
            let hi = nibble(pair[0])?;
            let lo = nibble(pair[1])?;
            bytes.push(hi << 4 | lo);
        }
        let id = String::from_utf8(bytes).map_err(|_| StoreError::InvalidPageToken)?;
        Ok(Self { status_key, id })
    }

    /// Decodes an optional token.
    pub fn decode_opt(token: Option<&str>) -> Result<Option<Self>, StoreError> {
        token.map(Self::decode).transpose()
    }

    /// Whether this position precedes a task with the given sort key in list
    /// order (status key descending, then id ascending), i.e. whether that
    /// task belongs to a later page.
    pub fn precedes(&self, status_key: i64, id: &str) -> bool {
        status_key < self.status_key || (status_key == self.status_key && id > self.id.as_str())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> Result<u8, StoreError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(StoreError::InvalidPageToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for (k, id) in [(0, ""), (i64::MIN, "a.b"), (i64::MAX, "täsk-ü/1")] {
            let key = PageKey {
                status_key: k,
                id: id.to_string(),
            };
            assert_eq!(PageKey::decode(&key.encode()).ok(), Some(key));
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "", "10", "v1.", "v1.x.00", "v1.1.0", "v1.1.zz", "v1.1.ff", "v2.1.61",
        ] {
            assert!(
                matches!(PageKey::decode(bad), Err(StoreError::InvalidPageToken)),
                "{bad}"
            );
        }
    }
}
