//! Attachments (附件) as they arrive: the declared file checked against the limits before
//! any content is accepted, then the content taken chunk by chunk and checked against the
//! declaration (size, SHA-256) at the end. Nothing here stores anything: a refused upload
//! leaves no trace.

use chrono::{DateTime, Utc};
use minhu_grpc::FieldViolations;
use minhu_trail::hex;
use sha2::{Digest as _, Sha256};

use super::model::Attachment;
use crate::AttachmentLimits;

/// Staged-file eligibility: a file uploaded before its case exists may join the case
/// `subject` records at `now` when it is on no case yet, `subject` uploaded it, and it has
/// not expired.
pub fn staged_for(file: &Attachment, subject: &str, now: DateTime<Utc>) -> bool {
    file.case_id.is_none() && file.uploader_subject == subject && file.expire_time.is_none_or(|t| t >= now)
}

/// Longest file name accepted, in characters.
const MAX_FILE_NAME: usize = 255;

/// What an upload declares in its first message, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// The original file name, without any path.
    pub file_name: String,
    /// An accepted media type.
    pub content_type: String,
    /// The announced size, within the limit.
    pub size_bytes: i64,
    /// The announced SHA-256, lowercase hex.
    pub sha256: String,
}

impl FileSpec {
    /// Checks a declaration against `limits`; every bad field is named.
    pub fn parse(
        file_name: &str,
        content_type: &str,
        size_bytes: i64,
        sha256: &str,
        limits: &AttachmentLimits,
    ) -> Result<Self, FieldViolations> {
        let mut v = FieldViolations::new();
        let name = v.required_text("metadata.file_name", file_name, MAX_FILE_NAME);
        v.check(
            !name.contains(['/', '\\']) && !name.chars().any(char::is_control) && name != "." && name != "..",
            "metadata.file_name",
            "must be a plain file name, without path separators or control characters",
        );
        let content_type = content_type.trim().to_ascii_lowercase();
        if !limits.content_types.contains(&content_type) {
            v.add(
                "metadata.content_type",
                format!("`{content_type}` is not accepted (accepted: {})", limits.content_types.join(", ")),
            );
        }
        if size_bytes <= 0 {
            v.add("metadata.size_bytes", "must be positive");
        } else if size_bytes > limits.max_bytes {
            v.add("metadata.size_bytes", format!("exceeds the limit of {} bytes", limits.max_bytes));
        }
        let sha256 = sha256.trim().to_ascii_lowercase();
        v.check(
            sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()),
            "metadata.sha256",
            "must be the SHA-256 digest in hex (64 characters)",
        );
        if !v.is_empty() {
            return Err(v);
        }
        Ok(Self { file_name: name.to_owned(), content_type, size_bytes, sha256 })
    }
}

/// Why received content is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentError {
    /// A chunk above the chunk limit.
    ChunkTooLarge {
        /// The limit.
        max: usize,
    },
    /// More bytes than declared (refused as soon as it happens), or fewer at the end.
    SizeMismatch {
        /// Declared.
        declared: i64,
        /// Received so far.
        received: u64,
    },
    /// The content's digest is not the declared one.
    DigestMismatch {
        /// What the content hashes to.
        actual: String,
    },
}

/// Content being received for a [`FileSpec`]: counted and hashed as it passes, never kept
/// here (the caller spools it), so an upload costs one chunk of memory however large.
#[derive(Debug)]
pub struct Receiving {
    spec: FileSpec,
    max_chunk: usize,
    received: u64,
    hasher: Sha256,
}

impl Receiving {
    /// Ready for the content of `spec`.
    pub fn new(spec: FileSpec, limits: &AttachmentLimits) -> Self {
        Self { spec, max_chunk: limits.max_chunk_bytes, received: 0, hasher: Sha256::new() }
    }

    /// Takes the next chunk; refuses it (and so the upload) when too large or beyond the
    /// declared size, so an over-long upload is cut off before it is stored anywhere.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ContentError> {
        if chunk.len() > self.max_chunk {
            return Err(ContentError::ChunkTooLarge { max: self.max_chunk });
        }
        let received = self.received + chunk.len() as u64;
        if received > self.spec.size_bytes as u64 {
            return Err(ContentError::SizeMismatch { declared: self.spec.size_bytes, received });
        }
        self.hasher.update(chunk);
        self.received = received;
        Ok(())
    }

    /// The declaration, once the content's size and digest are the declared ones.
    pub fn finish(self) -> Result<FileSpec, ContentError> {
        if self.received != self.spec.size_bytes as u64 {
            return Err(ContentError::SizeMismatch { declared: self.spec.size_bytes, received: self.received });
        }
        let actual = hex(&self.hasher.finalize());
        if actual != self.spec.sha256 {
            return Err(ContentError::DigestMismatch { actual });
        }
        Ok(self.spec)
    }
}

/// Whether stored content of `stored_len` bytes hashing to `stored_sha256` is still what
/// was recorded: served only then.
pub fn intact(stored_len: i64, stored_sha256: &str, size_bytes: i64, sha256: &str) -> bool {
    stored_len == size_bytes && stored_sha256 == sha256
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    fn spec(size: i64, sha: &str) -> FileSpec {
        FileSpec::parse("现场.jpg", "image/jpeg", size, sha, &AttachmentLimits::default()).unwrap()
    }

    fn fields(e: FieldViolations) -> Vec<String> {
        e.violations().iter().map(|v| v.field.clone()).collect()
    }

    #[test]
    fn a_declaration_within_the_limits_is_accepted_and_normalised() {
        let s =
            FileSpec::parse(" a.PDF ", "Application/PDF", 10, &"AB".repeat(32), &AttachmentLimits::default()).unwrap();
        assert_eq!((s.file_name.as_str(), s.content_type.as_str()), ("a.PDF", "application/pdf"));
        assert_eq!(s.sha256, "ab".repeat(32));
    }

    #[test]
    fn every_bad_field_of_a_declaration_is_named() {
        let limits = AttachmentLimits::default();
        let e = FileSpec::parse("../etc/passwd", "text/html", limits.max_bytes + 1, "xyz", &limits).unwrap_err();
        assert_eq!(
            fields(e),
            ["metadata.file_name", "metadata.content_type", "metadata.size_bytes", "metadata.sha256"]
        );
        let e = FileSpec::parse("", "image/png", 0, &"0".repeat(64), &limits).unwrap_err();
        assert_eq!(fields(e), ["metadata.file_name", "metadata.size_bytes"]);
        assert!(FileSpec::parse("x.mp4", "video/mp4", limits.max_bytes, &"0".repeat(64), &limits).is_ok());
    }

    #[test]
    fn content_matching_its_declaration_is_taken() {
        let content = b"photo of the pump room";
        let mut r = Receiving::new(spec(content.len() as i64, &digest(content)), &AttachmentLimits::default());
        r.push(&content[..5]).unwrap();
        r.push(&content[5..]).unwrap();
        let s = r.finish().unwrap();
        assert!(intact(content.len() as i64, &digest(content), s.size_bytes, &s.sha256));
        assert!(!intact(content.len() as i64, &digest(b"photo of the pump roon"), s.size_bytes, &s.sha256));
        assert!(!intact(5, &digest(content), s.size_bytes, &s.sha256));
    }

    #[test]
    fn content_beyond_its_size_or_with_another_digest_is_refused() {
        let limits = AttachmentLimits::default();
        let mut r = Receiving::new(spec(4, &digest(b"abcd")), &limits);
        r.push(b"abc").unwrap();
        assert_eq!(r.push(b"de"), Err(ContentError::SizeMismatch { declared: 4, received: 5 }));
        let mut r = Receiving::new(spec(4, &digest(b"abcd")), &limits);
        r.push(b"abc").unwrap();
        assert!(matches!(r.finish(), Err(ContentError::SizeMismatch { declared: 4, received: 3 })));
        let mut r = Receiving::new(spec(4, &digest(b"abcd")), &limits);
        r.push(b"abce").unwrap();
        assert!(matches!(r.finish(), Err(ContentError::DigestMismatch { .. })));
        let mut r = Receiving::new(spec(limits.max_bytes, &digest(b"")), &limits);
        assert_eq!(
            r.push(&vec![0; limits.max_chunk_bytes + 1]),
            Err(ContentError::ChunkTooLarge { max: limits.max_chunk_bytes })
        );
    }
}
