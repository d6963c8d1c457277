//! Personnel's errors, and their one mapping to gRPC statuses (through
//! [`minhu_grpc::ApiError`], except a refusal whose `ErrorInfo` reason names the whole
//! apart from its violations — an incomplete interview scope, one violation per missing
//! person — see [`crate::shell_wish`]).

use std::collections::HashMap;

use minhu_grpc::{ApiError, FieldViolations, error::ERROR_DOMAIN};
use minhu_store::StoreError;
use tonic_types::{ErrorDetails, StatusExt as _};

pub use minhu_grpc::Refusal;

/// Everything a personnel RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PersonnelError {
    /// The request is malformed; nothing changed.
    #[error("invalid argument: {0}")]
    InvalidArgument(FieldViolations),
    /// Malformed in a way with its own name (`REASON_REQUIRED`); nothing changed.
    #[error("invalid argument: {violations}")]
    Rejected {
        /// UPPER_SNAKE_CASE reason.
        reason: &'static str,
        /// The bad fields.
        violations: FieldViolations,
    },
    /// Missing, or not the caller's to know of: both answer alike.
    #[error("{resource} `{id}` not found")]
    NotFound {
        /// Resource type.
        resource: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The state does not allow it. With several refusals, `reason` names the whole
    /// (`INTERVIEW_SCOPE_INCOMPLETE`) and each refusal one violation.
    #[error("{}", .refusals.iter().map(|r| r.description.as_str()).collect::<Vec<_>>().join("; "))]
    FailedPrecondition {
        /// The `ErrorInfo` reason.
        reason: &'static str,
        /// The violations.
        refusals: Vec<Refusal>,
    },
    /// The caller may see this but not do that.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The roster is unreachable or refuses us.
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

impl PersonnelError {
    /// A single bad field.
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(FieldViolations::single_violations(field, description))
    }

    /// NOT_FOUND of `resource` `id`.
    pub fn not_found(resource: &'static str, id: impl ToString) -> Self {
        Self::NotFound { resource, id: id.to_string() }
    }

    /// PERMISSION_DENIED saying what the caller may not do.
    pub fn denied(what: impl Into<String>) -> Self {
        Self::PermissionDenied(what.into())
    }

    /// One refusal.
    pub fn refused(reason: &'static str, subject: impl Into<String>, description: impl Into<String>) -> Self {
        Refusal::new(reason, subject, description).into()
    }
}

/// `FieldViolations` with one entry (the library's `single` returns an `ApiError`).
trait Single {
    fn single_violations(field: impl Into<String>, description: impl Into<String>) -> Self;
}

impl Single for FieldViolations {
    fn single_violations(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = FieldViolations::new();
        v.add(field, description);
        v
    }
}

impl From<Refusal> for PersonnelError {
    fn from(refusal: Refusal) -> Self {
        Self::FailedPrecondition { reason: refusal.reason, refusals: vec![refusal] }
    }
}

impl From<sqlx::Error> for PersonnelError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

impl From<minhu_deadlines::DeadlineError> for PersonnelError {
    fn from(error: minhu_deadlines::DeadlineError) -> Self {
        match error {
            minhu_deadlines::DeadlineError::Database(e) => e.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<PersonnelError> for tonic::Status {
    fn from(error: PersonnelError) -> Self {
        let api = match error {
            PersonnelError::InvalidArgument(v) => ApiError::InvalidArgument(v),
            PersonnelError::Rejected { reason, violations } => ApiError::Rejected { reason, violations },
            PersonnelError::NotFound { resource, id } => ApiError::NotFound { resource, id },
            PersonnelError::FailedPrecondition { reason, refusals }
                if refusals.first().is_some_and(|r| r.reason == reason) =>
            {
                ApiError::FailedPrecondition(refusals)
            }
            // The contract names the whole (INTERVIEW_SCOPE_INCOMPLETE) apart from its
            // violations (MISSING_*): see `shell_wish`.
            PersonnelError::FailedPrecondition { reason, refusals } => {
                let message = refusals.iter().map(|r| r.description.as_str()).collect::<Vec<_>>().join("; ");
                let mut details = ErrorDetails::new();
                details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
                for r in refusals {
                    details.add_precondition_failure_violation(r.reason, r.subject, r.description);
                }
                return tonic::Status::with_error_details(tonic::Code::FailedPrecondition, message, details);
            }
            PersonnelError::PermissionDenied(m) => ApiError::PermissionDenied(m),
            PersonnelError::Unavailable(m) => ApiError::Unavailable(m),
            PersonnelError::Api(api) => api,
            PersonnelError::Store(store) => store.into(),
            PersonnelError::Internal(m) => ApiError::internal(m),
        };
        api.into()
    }
}
