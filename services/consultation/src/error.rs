//! Consultation's errors, and their one mapping to gRPC statuses (through
//! [`minhu_grpc::ApiError`], except a refusal with several violations, which carries them
//! all in one `PreconditionFailure`).

use std::collections::HashMap;

use minhu_grpc::{ApiError, FieldViolations, error::ERROR_DOMAIN};
use minhu_store::StoreError;
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::domain::Refusal;

/// Everything a consultation RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ConsultationError {
    /// The request is malformed; nothing changed.
    #[error("invalid argument: {0}")]
    InvalidArgument(FieldViolations),
    /// The request is malformed in a way with its own name (e.g. `DIGEST_MISMATCH`), given
    /// as the `ErrorInfo` reason beside the field violations; nothing changed.
    #[error("invalid argument: {violations}")]
    Rejected {
        /// UPPER_SNAKE_CASE reason.
        reason: &'static str,
        /// The bad fields.
        violations: FieldViolations,
    },
    /// A referenced record does not exist, or the caller may not know it does.
    #[error("{resource} `{id}` not found")]
    NotFound {
        /// Resource type.
        resource: &'static str,
        /// The id asked for.
        id: String,
    },
    /// Creating what exists.
    #[error("{resource} `{id}` already exists")]
    AlreadyExists {
        /// Resource type.
        resource: &'static str,
        /// The taken key.
        id: String,
    },
    /// The state does not allow the change; one or more rules named.
    #[error("{}", .0.iter().map(|r| r.description.as_str()).collect::<Vec<_>>().join("; "))]
    FailedPrecondition(Vec<Refusal>),
    /// The caller may read the record but not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A cursor beyond the feed's head.
    #[error("{0}")]
    OutOfRange(String),
    /// The roster (or another dependency) is unreachable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Authentication or another shared-library refusal.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or a broken invariant; logged, not explained.
    #[error("internal: {0}")]
    Internal(String),
}

impl ConsultationError {
    /// A single bad field.
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = FieldViolations::new();
        v.add(field, description);
        Self::InvalidArgument(v)
    }

    /// NOT_FOUND of `resource` `id`.
    pub fn not_found(resource: &'static str, id: impl ToString) -> Self {
        Self::NotFound { resource, id: id.to_string() }
    }

    /// PERMISSION_DENIED saying what the caller may not do.
    pub fn denied(what: impl Into<String>) -> Self {
        Self::PermissionDenied(what.into())
    }
}

impl From<Refusal> for ConsultationError {
    fn from(refusal: Refusal) -> Self {
        Self::FailedPrecondition(vec![refusal])
    }
}

impl From<sqlx::Error> for ConsultationError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

impl From<minhu_deadlines::DeadlineError> for ConsultationError {
    fn from(error: minhu_deadlines::DeadlineError) -> Self {
        match error {
            minhu_deadlines::DeadlineError::Database(e) => e.into(),
            // Scheduling never touches the index (that happens after the commit): anything
            // else is a deadline consultation built wrongly.
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ConsultationError> for tonic::Status {
    fn from(error: ConsultationError) -> Self {
        let api = match error {
            ConsultationError::InvalidArgument(v) => ApiError::InvalidArgument(v),
            ConsultationError::Rejected { reason, violations } => {
                let mut details = ErrorDetails::new();
                details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
                for v in violations.violations() {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                let message = format!("invalid argument: {violations}");
                return tonic::Status::with_error_details(tonic::Code::InvalidArgument, message, details);
            }
            ConsultationError::NotFound { resource, id } => ApiError::NotFound { resource, id },
            ConsultationError::AlreadyExists { resource, id } => ApiError::AlreadyExists { resource, id },
            ConsultationError::FailedPrecondition(mut refusals) if refusals.len() == 1 => {
                let r = refusals.remove(0);
                ApiError::FailedPrecondition { reason: r.reason, subject: r.subject, description: r.description }
            }
            ConsultationError::FailedPrecondition(refusals) => {
                let message = refusals.iter().map(|r| r.description.as_str()).collect::<Vec<_>>().join("; ");
                let mut details = ErrorDetails::new();
                let reason = refusals.first().map_or("FAILED_PRECONDITION", |r| r.reason);
                details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
                for r in refusals {
                    details.add_precondition_failure_violation(r.reason, r.subject, r.description);
                }
                return tonic::Status::with_error_details(tonic::Code::FailedPrecondition, message, details);
            }
            ConsultationError::PermissionDenied(m) => ApiError::PermissionDenied(m),
            ConsultationError::OutOfRange(m) => return tonic::Status::out_of_range(m),
            ConsultationError::Unavailable(m) => ApiError::Unavailable(m),
            ConsultationError::Api(api) => api,
            ConsultationError::Store(store) => store.into(),
            ConsultationError::Internal(m) => ApiError::internal(m),
        };
        api.into()
    }
}
