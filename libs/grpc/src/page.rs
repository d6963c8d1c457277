//! Pagination for every `List` method (AIP-158): a page size with a default and a ceiling,
//! and opaque page tokens that carry the position after the last item returned.
//!
//! A token is bound to the query it came from: reusing it with different filters is
//! INVALID_ARGUMENT rather than a silently wrong page.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{ApiError, FieldViolations};

/// The page size to use: `default` for 0, `max` for anything above it, and
/// INVALID_ARGUMENT on `page_size` for a negative value.
pub fn page_size(requested: i32, default: u32, max: u32) -> Result<u32, ApiError> {
    match requested {
        n if n < 0 => Err(FieldViolations::single("page_size", "must not be negative")),
        0 => Ok(default.min(max)),
        n => Ok((n as u32).min(max)),
    }
}

/// One `List` request's paging: its size, its token codec and the decoded position.
///
/// Query one row more than [`PageRequest::size`] ([`PageRequest::limit`]) and hand the rows
/// to [`PageRequest::finish`], which trims them to the page and returns the next token.
#[derive(Debug, Clone)]
pub struct PageRequest<K> {
    /// Rows on the page.
    pub size: u32,
    /// Where the previous page ended; `None` on the first page.
    pub after: Option<K>,
    codec: PageToken,
}

impl<K: Serialize + DeserializeOwned> PageRequest<K> {
    /// Parses `page_size` (0: `default`, above `max`: `max`) and `page_token`, which must come
    /// from the query described by `query_parts` (filters and order, not the size).
    pub fn new(
        page_size_requested: i32,
        token: &str,
        default: u32,
        max: u32,
        query_parts: &[&str],
    ) -> Result<Self, ApiError> {
        let size = page_size(page_size_requested, default, max)?;
        let codec = PageToken::for_query(query_parts);
        let after = codec.decode(token)?;
        Ok(Self { size, after, codec })
    }

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn limit(&self) -> i64 {
        i64::from(self.size) + 1
    }

    /// Trims `rows` to the page and returns the next page's token, empty on the last page.
    pub fn finish<R>(&self, rows: &mut Vec<R>, position: impl Fn(&R) -> K) -> String {
        if rows.len() > self.size as usize {
            rows.truncate(self.size as usize);
            rows.last().map(|r| self.codec.encode(&position(r))).unwrap_or_default()
        } else {
            String::new()
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope<K> {
    /// Fingerprint of the query the token belongs to.
    q: u64,
    /// The position: the sort key of the last item returned.
    k: K,
}

/// Encodes and decodes page tokens whose position is a `K` (typically the sort key of the
/// last item, e.g. `(create_time, id)`).
#[derive(Debug, Clone, Copy)]
pub struct PageToken {
    query: u64,
}

impl PageToken {
    /// A token codec for the query described by `query_parts` (its filters and order, not
    /// its page size): tokens of one query are refused by another.
    pub fn for_query(query_parts: &[&str]) -> Self {
        Self { query: fnv1a(query_parts) }
    }

    /// The token that resumes after `position`.
    pub fn encode<K: Serialize>(&self, position: &K) -> String {
        let json = serde_json::to_vec(&Envelope { q: self.query, k: position }).expect("page positions serialize");
        URL_SAFE_NO_PAD.encode(json)
    }

    /// The position in `token`; `None` for the empty token (the first page).
    pub fn decode<K: DeserializeOwned>(&self, token: &str) -> Result<Option<K>, ApiError> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || FieldViolations::single("page_token", "is not a page token of this query");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let envelope: Envelope<K> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if envelope.q != self.query {
            return Err(invalid());
        }
        Ok(Some(envelope.k))
    }
}

/// FNV-1a over the parts, with a separator so that `["ab", "c"]` and `["a", "bc"]` differ.
/// Stable across builds and platforms, unlike `DefaultHasher`.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0x1f)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_resumes_where_the_last_page_ended() {
        let codec = PageToken::for_query(&["street=zhongnanlu", "state=open"]);
        let token = codec.encode(&("2026-11-27T10:00:00Z", "case-9"));
        let position: (String, String) = codec.decode(&token).unwrap().unwrap();
        assert_eq!(position, ("2026-11-27T10:00:00Z".to_owned(), "case-9".to_owned()));
    }

    #[test]
    fn a_token_from_another_query_is_invalid_argument() {
        let token = PageToken::for_query(&["street=zhongnanlu"]).encode(&42);
        let err = PageToken::for_query(&["street=shuiguohu"]).decode::<i64>(&token).unwrap_err();
        assert!(matches!(err, ApiError::InvalidArgument(v) if v.violations()[0].field == "page_token"));
    }

    #[test]
    fn garbage_is_invalid_argument_not_internal() {
        assert!(matches!(PageToken::for_query(&[]).decode::<i64>("%%%not-base64"), Err(ApiError::InvalidArgument(_))));
    }

    #[test]
    fn page_size_defaults_caps_and_refuses_negatives() {
        assert_eq!(page_size(0, 50, 500).unwrap(), 50);
        assert_eq!(page_size(10_000, 50, 500).unwrap(), 500);
        assert_eq!(page_size(7, 50, 500).unwrap(), 7);
        assert!(page_size(-1, 50, 500).is_err());
    }
}
