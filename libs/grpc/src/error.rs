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
//! | `FailedPrecondition` | FAILED_PRECONDITION | `PreconditionFailure`, `ErrorInfo`         |
//! | `PermissionDenied`   | PERMISSION_DENIED   | `ErrorInfo`                                |
//! | `Unauthenticated`    | UNAUTHENTICATED     | `ErrorInfo`                                |
//! | `ResourceExhausted`  | RESOURCE_EXHAUSTED  | `ErrorInfo`                                |
//! | `Unavailable`        | UNAVAILABLE         | `ErrorInfo`                                |
//! | `Internal`           | INTERNAL            | none: the cause is logged, not sent        |
//!
//! A caller's mistake is never `Internal`.

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
    /// The request is well-formed but the state does not allow it.
    #[error("{description}")]
    FailedPrecondition {
        /// UPPER_SNAKE_CASE machine-readable reason, e.g. `CALL_ALREADY_SIGNED`.
        reason: &'static str,
        /// What the precondition is about, e.g. `calls/42`.
        subject: String,
        /// Why, for a person, lowercase.
        description: String,
    },
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
        Self::FailedPrecondition { reason, subject: subject.into(), description: description.into() }
    }

    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::AlreadyExists { .. } => Code::AlreadyExists,
            Self::FailedPrecondition { .. } => Code::FailedPrecondition,
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
            Self::NotFound { .. } => "NOT_FOUND",
            Self::AlreadyExists { .. } => "ALREADY_EXISTS",
            Self::FailedPrecondition { reason, .. } => reason,
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
        match &error {
            ApiError::InvalidArgument(violations) => {
                for v in violations.violations() {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
            }
            ApiError::NotFound { resource, id } | ApiError::AlreadyExists { resource, id } => {
                details.set_resource_info(*resource, id.clone(), "", error.to_string());
            }
            ApiError::FailedPrecondition { reason, subject, description } => {
                details.add_precondition_failure_violation(*reason, subject.clone(), description.clone());
            }
            ApiError::Internal(cause) => {
                // The whole chain goes to the log with the request's span; the caller
                // learns only that it was not their fault.
                let mut chain = cause.to_string();
                let mut source = cause.source();
                while let Some(s) = source {
                    chain.push_str(": ");
                    chain.push_str(&s.to_string());
                    source = s.source();
                }
                tracing::error!(error = %chain, "internal error");
                return Status::internal("internal error");
            }
            _ => {}
        }
        Status::with_error_details(code, error.to_string(), details)
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
    }
}
