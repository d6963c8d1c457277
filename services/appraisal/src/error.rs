//! Appraisal's errors, and their one mapping to gRPC statuses (through
//! [`minhu_grpc::ApiError`]).

use minhu_grpc::{ApiError, FieldViolations};
use minhu_store::StoreError;

/// Everything an appraisal RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppraisalError {
    /// The request is malformed; nothing changed.
    #[error("invalid argument: {0}")]
    InvalidArgument(FieldViolations),
    /// A referenced record does not exist (or is not the caller's to see).
    #[error("{resource} `{id}` not found")]
    NotFound {
        /// Resource type.
        resource: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The records involved do not allow the change (closed period, unknown evidence, …).
    #[error("{description}")]
    FailedPrecondition {
        /// UPPER_SNAKE_CASE reason.
        reason: &'static str,
        /// What it is about.
        subject: String,
        /// Why, for a person.
        description: String,
    },
    /// The caller may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Dispatch's feed could not be read (a rebuild).
    #[error("dispatch unavailable: {0}")]
    Unavailable(String),
    /// Authentication or another shared-library refusal.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppraisalError {
    /// A failed precondition.
    pub fn precondition(reason: &'static str, subject: impl Into<String>, description: impl Into<String>) -> Self {
        Self::FailedPrecondition { reason, subject: subject.into(), description: description.into() }
    }

    /// A single bad field.
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = FieldViolations::new();
        v.add(field, description);
        Self::InvalidArgument(v)
    }
}

impl From<sqlx::Error> for AppraisalError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

impl From<AppraisalError> for ApiError {
    fn from(error: AppraisalError) -> Self {
        match error {
            AppraisalError::InvalidArgument(v) => ApiError::InvalidArgument(v),
            AppraisalError::NotFound { resource, id } => ApiError::NotFound { resource, id },
            AppraisalError::FailedPrecondition { reason, subject, description } => {
                minhu_grpc::Refusal::new(reason, subject, description).into()
            }
            AppraisalError::PermissionDenied(message) => ApiError::PermissionDenied(message),
            AppraisalError::Unavailable(message) => ApiError::Unavailable(message),
            AppraisalError::Api(api) => api,
            AppraisalError::Store(store) => store.into(),
        }
    }
}

impl From<AppraisalError> for tonic::Status {
    fn from(error: AppraisalError) -> Self {
        ApiError::from(error).into()
    }
}
