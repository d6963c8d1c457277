//! The one table from what went wrong to what the caller receives.
//!
//! Each service has its own error enum whose variants mean something in its domain; it
//! converts into [`ApiError`], and `ApiError` into `tonic::Status` here, once. Details travel
//! as `google.rpc` messages (via tonic-types) so any gRPC client can read them:
//!
//! | variant              | code                | details                                   |
//! |----------------------|---------------------|-------------------------------------------|
//! | `InvalidArgument`    | INVALID_ARGUMENT    | `BadRequest` field violations, `ErrorInfo` |
//! | `NotFound`           | NOT_FOUND           | `ResourceInfo`, `ErrorInfo`                |
//! | `AlreadyExists`      | ALREADY_EXISTS      | `ResourceInfo`, `ErrorInfo`                |
//! | `Rejected`           | INVALID_ARGUMENT    | `BadRequest`, `ErrorInfo` with its reason  |
//! | `FailedPrecondition` | FAILED_PRECONDITION | `PreconditionFailure` (one violation per refusal), `ErrorInfo` |
//! | `OutOfRange`         | OUT_OF_RANGE        | `ErrorInfo`                                |
//! | `PermissionDenied`   | PERMISSION_DENIED   | `ErrorInfo`                                |
//! | `Unauthenticated`    | UNAUTHENTICATED     | `ErrorInfo`                                |
//! | `ResourceExhausted`  | RESOURCE_EXHAUSTED  | `ErrorInfo`                                |
//! | `Unavailable`        | UNAVAILABLE         | `ErrorInfo` (retry later)                  |
//! | `DataLoss`           | DATA_LOSS           | `ErrorInfo`; the cause is logged, not sent |
//! | `Internal`           | INTERNAL            | `ErrorInfo`; the cause chain is logged, not sent |
//!
//! A caller's mistake is never `Internal`; a database fault is never `NotFound` (see
//! [`From<sqlx::Error>`](#impl-From<Error>-for-ApiError)): deadlocks, serialization failures,
//! lock timeouts and lost connections are UNAVAILABLE, because a retry may succeed.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// The `ErrorInfo.domain` of every Minhu error.
pub const ERROR_DOMAIN: &str = "minhu.gov";

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field, e.g. `case.location.latitude`.
    pub field: String,
    /// What is wrong with it, lowercase, no trailing period.
    pub description: String,
}

/// Field violations collected while validating a request; empty means valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldViolations(Vec<FieldViolation>);

impl FieldViolations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation { field: field.into(), description: description.into() });
    }

    /// Records a violation unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, description: impl Into<String>) {
        if !ok {
            self.add(field, description);
        }
    }

    /// Checks that `value` is non-blank and at most `max_chars` characters; returns it trimmed.
    pub fn required_text<'a>(&mut self, field: &str, value: &'a str, max_chars: usize) -> &'a str {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.add(field, "must not be empty");
        } else {
            self.optional_text(field, trimmed, max_chars);
        }
        trimmed
    }

    /// Checks that `value` is at most `max_chars` characters; returns it trimmed.
    pub fn optional_text<'a>(&mut self, field: &str, value: &'a str, max_chars: usize) -> &'a str {
        let count = value.chars().count();
        if count > max_chars {
            self.add(field, format!("must be at most {max_chars} characters, got {count}"));
        }
        value.trim()
    }

    /// The violations so far.
    pub fn violations(&self) -> &[FieldViolation] {
        &self.0
    }

    /// Whether nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when empty, otherwise INVALID_ARGUMENT with every violation.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() { Ok(()) } else { Err(ApiError::InvalidArgument(self)) }
    }

    /// A single violation as an error.
    pub fn single(field: impl Into<String>, description: impl Into<String>) -> ApiError {
        let mut v = Self::new();
        v.add(field, description);
        ApiError::InvalidArgument(v)
    }
}

impl std::fmt::Display for FieldViolations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|v| format!("{}: {}", v.field, v.description)).collect();
        f.write_str(&parts.join("; "))
    }
}

/// An error a gRPC caller can act on (or, for `Internal`, cannot).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is wrong; nothing was changed.
    #[error("invalid argument: {0}")]
    InvalidArgument(FieldViolations),
    /// A referenced resource does not exist (or is not visible to the caller).
    #[error("{resource} `{id}` not found")]
    NotFound {
        /// Resource type, e.g. `minhu.dispatch.v1.Case`.
        resource: &'static str,
        /// The id asked for.
        id: String,
    },
    /// Creating something that is already there.
    #[error("{resource} `{id}` already exists")]
    AlreadyExists {
        /// Resource type.
        resource: &'static str,
        /// The conflicting id or key.
        id: String,
    },
    /// The request is malformed in a way with its own name (`DIGEST_MISMATCH`,
    /// `REASON_REQUIRED`), given as the `ErrorInfo` reason beside the field violations.
    #[error("invalid argument: {violations}")]
    Rejected {
        /// UPPER_SNAKE_CASE reason.
        reason: &'static str,
        /// The bad fields.
        violations: FieldViolations,
    },
    /// The request is well-formed but the state does not allow it: one or more rules, each
    /// with its reason (the first is the `ErrorInfo` reason).
    #[error("{}", .0.iter().map(|r| r.description.as_str()).collect::<Vec<_>>().join("; "))]
    FailedPrecondition(Vec<Refusal>),
    /// A position past the end (a feed cursor beyond the head).
    #[error("{0}")]
    OutOfRange(String),
    /// Stored data no longer matches what was recorded (a digest); nothing of it is served.
    #[error("data loss: {0}")]
    DataLoss(String),
    /// The caller is known but may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The caller is not (validly) identified.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// A limit was hit (message size, quota, load).
    #[error("{0}")]
    ResourceExhausted(String),
    /// A dependency is down; retrying later may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Our fault. The cause is logged; the caller sees only that it failed.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// An internal error from any cause.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    /// A failed precondition.
    pub fn precondition(reason: &'static str, subject: impl Into<String>, description: impl Into<String>) -> Self {
        Refusal::new(reason, subject, description).into()
    }

    /// Several refusals at once (e.g. every missing interviewee of a scope).
    pub fn refused(refusals: Vec<Refusal>) -> Self {
        Self::FailedPrecondition(refusals)
    }

    /// A single bad field.
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolations::single(field, description)
    }

    /// NOT_FOUND of `resource` `id`.
    pub fn not_found(resource: &'static str, id: impl std::fmt::Display) -> Self {
        Self::NotFound { resource, id: id.to_string() }
    }

    /// PERMISSION_DENIED saying what the caller may not do.
    pub fn denied(what: impl Into<String>) -> Self {
        Self::PermissionDenied(what.into())
    }

    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) | Self::Rejected { .. } => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::AlreadyExists { .. } => Code::AlreadyExists,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::OutOfRange(_) => Code::OutOfRange,
            Self::DataLoss(_) => Code::DataLoss,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Internal(_) => Code::Internal,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::Rejected { reason, .. } => reason,
            Self::NotFound { .. } => "NOT_FOUND",
            Self::AlreadyExists { .. } => "ALREADY_EXISTS",
            Self::FailedPrecondition(refusals) => refusals.first().map_or("FAILED_PRECONDITION", |r| r.reason),
            Self::OutOfRange(_) => "OUT_OF_RANGE",
            Self::DataLoss(_) => "DATA_LOSS",
            Self::PermissionDenied(_) => "PERMISSION_DENIED",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::ResourceExhausted(_) => "RESOURCE_EXHAUSTED",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let code = error.code();
        let mut details = ErrorDetails::new();
        let metadata = HashMap::new();
        details.set_error_info(error.reason(), ERROR_DOMAIN, metadata);
        // Everything below may echo the caller's input (an id 60 KB long, CJK that
        // percent-encodes to three times its size): clipped, so that the status always fits
        // in the headers every HTTP/2 client accepts, instead of the client seeing a
        // protocol error where a NOT_FOUND was sent.
        match &error {
            ApiError::InvalidArgument(violations) | ApiError::Rejected { violations, .. } => {
                for v in violations.violations().iter().take(MAX_DETAILS) {
                    details.add_bad_request_violation(clip(&v.field, MAX_ECHO), clip(&v.description, MAX_ECHO));
                }
            }
            ApiError::NotFound { resource, id } | ApiError::AlreadyExists { resource, id } => {
                details.set_resource_info(*resource, clip(id, MAX_ECHO), "", clip(&error.to_string(), MAX_ECHO));
            }
            ApiError::FailedPrecondition(refusals) => {
                for r in refusals.iter().take(MAX_DETAILS) {
                    details.add_precondition_failure_violation(
                        r.reason,
                        clip(&r.subject, MAX_ECHO),
                        clip(&r.description, MAX_ECHO),
                    );
                }
            }
            ApiError::DataLoss(what) => {
                // Our stored bytes changed under us: worth an alarm, not a detail for the caller.
                tracing::error!(error = %what, "stored data failed its integrity check");
                return Status::with_error_details(code, "the stored content failed its integrity check", details);
            }
            ApiError::Internal(cause) => {
                // The whole chain goes to the log with the request's span; the caller
                // learns only that it was not their fault.
                tracing::error!(error = %chain(cause.as_ref()), "internal error");
                return Status::with_error_details(code, "internal error", details);
            }
            _ => {}
        }
        Status::with_error_details(code, clip(&error.to_string(), MAX_MESSAGE), details)
    }
}

/// The longest piece of the caller's input an error repeats, in UTF-8 bytes.
const MAX_ECHO: usize = 128;
/// The longest status message, in UTF-8 bytes (percent-encoded in `grpc-message`, a CJK
/// character takes nine bytes there).
const MAX_MESSAGE: usize = 512;
/// The most violations or refusals listed in one status: with the clips above, a status
/// stays well under the 16 KiB of headers HTTP/2 clients accept by default.
const MAX_DETAILS: usize = 20;

/// `text`, cut at a character boundary to at most `max` bytes, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `cause: its source: its source…`, the whole chain on one line.
pub fn chain(cause: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = cause.to_string();
    let mut source = cause.source();
    while let Some(s) = source {
        let next = s.to_string();
        // Wrappers often repeat their source's message (`#[error(transparent)]`).
        if !chain.ends_with(&next) {
            chain.push_str(": ");
            chain.push_str(&next);
        }
        source = s.source();
    }
    chain
}

/// One rule a request broke, named: the `PreconditionFailure` violation a client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// UPPER_SNAKE_CASE, e.g. `CALL_ALREADY_SIGNED`.
    pub reason: &'static str,
    /// What it is about, e.g. `calls/42`.
    pub subject: String,
    /// Why, for a person: lowercase, no trailing period.
    pub description: String,
}

impl Refusal {
    /// A refusal for `reason` about `subject`.
    pub fn new(reason: &'static str, subject: impl Into<String>, description: impl Into<String>) -> Self {
        Self { reason, subject: subject.into(), description: description.into() }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        Self::FailedPrecondition(vec![refusal])
    }
}

/// SQLSTATEs after which the same request may well succeed: serialization failure,
/// deadlock, lock timeout, statement cancelled by a timeout, and the server going away.
const RETRIABLE_SQLSTATES: [&str; 7] = ["40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"];

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        let retriable = match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|c| RETRIABLE_SQLSTATES.contains(&c.as_ref())),
            _ => false,
        };
        if retriable {
            tracing::warn!(error = %error, "database fault; the caller may retry");
            Self::Unavailable("the database is busy or unreachable; retry later".into())
        } else {
            Self::internal(error)
        }
    }
}

impl From<minhu_store::StoreError> for ApiError {
    fn from(error: minhu_store::StoreError) -> Self {
        use minhu_store::StoreError;
        match error {
            StoreError::RequestIdReused(_) => {
                FieldViolations::single("request_id", "was already used for a different request")
            }
            StoreError::RequestIdTooLong(n) => {
                FieldViolations::single("request_id", format!("must be at most 128 characters, got {n}"))
            }
            StoreError::Database(e) => e.into(),
            StoreError::Connect { .. } => Self::Unavailable("the database is not reachable; retry later".into()),
            other => Self::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_violations_reach_the_client_as_bad_request_details() {
        let mut v = FieldViolations::new();
        v.required_text("case.title", "   ", 100);
        v.optional_text("case.description", &"x".repeat(11), 10);
        let status = Status::from(v.into_result().unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.get_details_bad_request().expect("bad request details");
        let fields: Vec<_> = bad.field_violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["case.title", "case.description"]);
        assert_eq!(status.get_details_error_info().unwrap().domain, ERROR_DOMAIN);
    }

    #[test]
    fn a_failed_precondition_names_its_reason() {
        let status =
            Status::from(ApiError::precondition("CALL_ALREADY_SIGNED", "calls/7", "the call was already signed"));
        assert_eq!(status.message(), "the call was already signed");
        assert_eq!(status.code(), Code::FailedPrecondition);
        let failure = status.get_details_precondition_failure().unwrap();
        assert_eq!(failure.violations[0].r#type, "CALL_ALREADY_SIGNED");
        assert_eq!(status.get_details_error_info().unwrap().reason, "CALL_ALREADY_SIGNED");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status = Status::from(ApiError::internal(std::io::Error::other("disk on fire at /var/lib/pg")));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("disk"));
        assert_eq!(status.get_details_error_info().unwrap().reason, "INTERNAL");
    }

    #[test]
    fn an_echoed_id_is_clipped_so_the_status_fits_in_headers() {
        let status = Status::from(ApiError::not_found("street", "街".repeat(20_000)));
        assert!(status.message().len() <= 515, "{}", status.message().len());
        let info = status.get_details_resource_info().unwrap();
        assert!(info.resource_name.len() <= 131);
        assert!(status.details().len() < 4_096, "details of {} bytes", status.details().len());
    }

    #[test]
    fn several_refusals_travel_together() {
        let status = Status::from(ApiError::refused(vec![
            Refusal::new("MISSING_PRINCIPAL_LEADER", "people/1", "the street's secretary is not in the scope"),
            Refusal::new("MISSING_SECTION_HEAD", "streets/z", "no section head is in the scope"),
        ]));
        let failure = status.get_details_precondition_failure().unwrap();
        assert_eq!(failure.violations.len(), 2);
        assert_eq!(status.get_details_error_info().unwrap().reason, "MISSING_PRINCIPAL_LEADER");
    }

    #[test]
    fn a_deadlock_is_worth_a_retry_not_a_not_found() {
        let status = Status::from(ApiError::from(sqlx::Error::PoolTimedOut));
        assert_eq!(status.code(), Code::Unavailable);
        let status = Status::from(ApiError::from(sqlx::Error::RowNotFound));
        assert_eq!(status.code(), Code::Internal);
    }
}
