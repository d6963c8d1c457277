//! The roster's errors, and their one mapping to gRPC statuses (through
//! [`minhu_grpc::ApiError`]).

use minhu_grpc::{ApiError, FieldViolations};
use minhu_store::StoreError;

/// Everything a roster RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    /// The request is malformed; nothing changed.
    #[error("invalid argument: {0}")]
    InvalidArgument(FieldViolations),
    /// A referenced record does not exist.
    #[error("{resource} `{id}` not found")]
    NotFound {
        /// Resource type.
        resource: &'static str,
        /// The id asked for.
        id: String,
    },
    /// A code or employee number is taken.
    #[error("{resource} `{id}` already exists")]
    AlreadyExists {
        /// Resource type.
        resource: &'static str,
        /// The taken key.
        id: String,
    },
    /// The records involved do not allow the change (inactive, still in use, ended, …).
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
    /// Authentication or another shared-library refusal.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RosterError {
    /// A failed precondition.
    pub fn precondition(reason: &'static str, subject: impl Into<String>, description: impl Into<String>) -> Self {
        Self::FailedPrecondition { reason, subject: subject.into(), description: description.into() }
    }

    /// A record that is no longer active.
    pub fn inactive(resource: &'static str, id: &str) -> Self {
        let reason = match resource {
            "street" => "STREET_INACTIVE",
            "community" => "COMMUNITY_INACTIVE",
            "department" => "DEPARTMENT_INACTIVE",
            "station" => "STATION_INACTIVE",
            "person" => "PERSON_INACTIVE",
            _ => "RECORD_INACTIVE",
        };
        Self::precondition(reason, format!("{resource}s/{id}"), format!("{resource} `{id}` is inactive"))
    }

    /// A single bad field.
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = FieldViolations::new();
        v.add(field, description);
        Self::InvalidArgument(v)
    }
}

impl From<sqlx::Error> for RosterError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

impl From<RosterError> for ApiError {
    fn from(error: RosterError) -> Self {
        match error {
            RosterError::InvalidArgument(v) => ApiError::InvalidArgument(v),
            RosterError::NotFound { resource, id } => ApiError::NotFound { resource, id },
            RosterError::AlreadyExists { resource, id } => ApiError::AlreadyExists { resource, id },
            RosterError::FailedPrecondition { reason, subject, description } => {
                minhu_grpc::Refusal::new(reason, subject, description).into()
            }
            RosterError::PermissionDenied(message) => ApiError::PermissionDenied(message),
            RosterError::Api(api) => api,
            RosterError::Store(store) => store.into(),
        }
    }
}

impl From<RosterError> for tonic::Status {
    fn from(error: RosterError) -> Self {
        ApiError::from(error).into()
    }
}
