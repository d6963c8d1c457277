//! Dispatch's errors, and their one mapping to gRPC statuses (through
//! [`minhu_grpc::ApiError`], except a refusal with several violations, which carries them
//! all in one `PreconditionFailure`).

use std::collections::HashMap;

use minhu_grpc::{ApiError, FieldViolations, error::ERROR_DOMAIN};
use minhu_store::StoreError;
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::domain::Refusal;

/// Everything a dispatch RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
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
    /// The channel's ticket number was already recorded.
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
    /// The caller may read the case but not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A cursor beyond the feed's head.
    #[error("{0}")]
    OutOfRange(String),
    /// Stored data no longer matches what was recorded (an attachment's digest); nothing of
    /// it is served.
    #[error("data loss: {0}")]
    DataLoss(String),
    /// The request stream itself failed (the client cancelled, a message did not decode):
    /// passed on as the transport reported it.
    #[error("request stream: {0}")]
    Stream(tonic::Status),
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

impl DispatchError {
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

impl From<Refusal> for DispatchError {
    fn from(refusal: Refusal) -> Self {
        Self::FailedPrecondition(vec![refusal])
    }
}

impl From<sqlx::Error> for DispatchError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

impl From<minhu_deadlines::DeadlineError> for DispatchError {
    fn from(error: minhu_deadlines::DeadlineError) -> Self {
        match error {
            minhu_deadlines::DeadlineError::Database(e) => e.into(),
            // Scheduling never touches the index (that happens after the commit): anything
            // else is a deadline dispatch built wrongly.
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<DispatchError> for tonic::Status {
    fn from(error: DispatchError) -> Self {
        let api = match error {
            DispatchError::InvalidArgument(v) => ApiError::InvalidArgument(v),
            DispatchError::Rejected { reason, violations } => {
                let mut details = ErrorDetails::new();
                details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
                for v in violations.violations() {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                let message = format!("invalid argument: {violations}");
                return tonic::Status::with_error_details(tonic::Code::InvalidArgument, message, details);
            }
            DispatchError::NotFound { resource, id } => ApiError::NotFound { resource, id },
            DispatchError::AlreadyExists { resource, id } => ApiError::AlreadyExists { resource, id },
            DispatchError::FailedPrecondition(mut refusals) if refusals.len() == 1 => {
                let r = refusals.remove(0);
                minhu_grpc::Refusal::new(r.reason, r.subject, r.description).into()
            }
            DispatchError::FailedPrecondition(refusals) => {
                let message = refusals.iter().map(|r| r.description.as_str()).collect::<Vec<_>>().join("; ");
                let mut details = ErrorDetails::new();
                let reason = refusals.first().map_or("FAILED_PRECONDITION", |r| r.reason);
                details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
                for r in refusals {
                    details.add_precondition_failure_violation(r.reason, r.subject, r.description);
                }
                return tonic::Status::with_error_details(tonic::Code::FailedPrecondition, message, details);
            }
            DispatchError::PermissionDenied(m) => ApiError::PermissionDenied(m),
            DispatchError::OutOfRange(m) => return tonic::Status::out_of_range(m),
            DispatchError::DataLoss(m) => {
                // Our stored bytes changed under us: worth an alarm, not a detail for the caller.
                tracing::error!(error = %m, "stored data failed its integrity check");
                return tonic::Status::data_loss("the stored content failed its integrity check");
            }
            DispatchError::Stream(status) => return status,
            DispatchError::Unavailable(m) => ApiError::Unavailable(m),
            DispatchError::Api(api) => api,
            DispatchError::Store(store) => store.into(),
            DispatchError::Internal(m) => ApiError::internal(m),
        };
        api.into()
    }
}
