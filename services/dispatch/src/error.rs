//! Dispatch's errors. Every outcome a caller can act on is an [`ApiError`] (the one table
//! from error to gRPC status, in `libs/grpc`); what dispatch adds is the request stream of an
//! upload failing underneath it, passed on as the transport reported it.

use minhu_grpc::{ApiError, FieldViolations, Refusal};
use minhu_store::StoreError;

/// Everything a dispatch RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Invalid input, a refusal of the case's rules, NOT_FOUND, a database fault (retriable
    /// or internal, with its cause chain), …: see [`ApiError`].
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request stream itself failed (the client cancelled, a message did not decode).
    #[error("request stream: {0}")]
    Stream(tonic::Status),
}

impl DispatchError {
    /// A single bad field.
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        ApiError::field(field, description).into()
    }

    /// NOT_FOUND of `resource` `id`.
    pub fn not_found(resource: &'static str, id: impl std::fmt::Display) -> Self {
        ApiError::not_found(resource, id).into()
    }

    /// PERMISSION_DENIED saying what the caller may not do.
    pub fn denied(what: impl Into<String>) -> Self {
        ApiError::denied(what).into()
    }

    /// A bug or a broken invariant, with its cause.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::internal(cause).into()
    }

    /// A NOT_FOUND (of the case a record belongs to) as NOT_FOUND of the `resource` `id`
    /// asked for; any other error — a database fault above all — as it is.
    pub fn not_found_as(self, resource: &'static str, id: impl std::fmt::Display) -> Self {
        if self.is_not_found() { Self::not_found(resource, id) } else { self }
    }

    /// Whether this is a NOT_FOUND.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api(ApiError::NotFound { .. }))
    }
}

impl From<Refusal> for DispatchError {
    fn from(refusal: Refusal) -> Self {
        ApiError::from(refusal).into()
    }
}

impl From<Vec<Refusal>> for DispatchError {
    fn from(refusals: Vec<Refusal>) -> Self {
        ApiError::refused(refusals).into()
    }
}

impl From<FieldViolations> for DispatchError {
    fn from(violations: FieldViolations) -> Self {
        ApiError::InvalidArgument(violations).into()
    }
}

impl From<StoreError> for DispatchError {
    fn from(error: StoreError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<sqlx::Error> for DispatchError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::from(error).into()
    }
}

impl From<minhu_deadlines::DeadlineError> for DispatchError {
    fn from(error: minhu_deadlines::DeadlineError) -> Self {
        match error {
            minhu_deadlines::DeadlineError::Database(e) => e.into(),
            // Scheduling never touches the index (that happens after the commit): anything
            // else is a deadline dispatch built wrongly.
            other => Self::internal(other),
        }
    }
}

impl From<DispatchError> for tonic::Status {
    fn from(error: DispatchError) -> Self {
        match error {
            DispatchError::Api(api) => api.into(),
            DispatchError::Stream(status) => status,
        }
    }
}
