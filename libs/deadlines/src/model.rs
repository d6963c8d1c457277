//! The deadline as stored in `minhu_deadlines`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Row as _, postgres::PgRow};
use uuid::Uuid;

use crate::DeadlineError;

/// Where a deadline is in its life. Only `Pending` ever fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineState {
    /// Waiting for its due time (or for a retry after a failed attempt).
    Pending,
    /// Its handler's effect committed.
    Fired,
    /// Called off before it fired.
    Cancelled,
}

impl DeadlineState {
    /// The value stored in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Fired => "fired",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(Self::Pending),
            "fired" => Some(Self::Fired),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A deadline: at `due_at`, the handler registered for `kind` runs for `subject`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deadline {
    /// Stable id; also the member in the Redis index. Kept when the deadline is rescheduled.
    pub id: Uuid,
    /// Which handler fires it, e.g. `dispatch.sign`.
    pub kind: String,
    /// What it is about, e.g. a call id. At most one pending deadline per kind and subject.
    pub subject: String,
    /// When it fires.
    pub due_at: DateTime<Utc>,
    /// Whatever the handler needs besides the subject.
    pub payload: serde_json::Value,
    /// Pending, fired or cancelled.
    pub state: DeadlineState,
    /// Firing attempts so far, failed ones included.
    pub attempts: i32,
    /// Why the last failed attempt failed.
    pub last_error: Option<String>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When it was first scheduled.
    pub created_at: DateTime<Utc>,
    /// When its handler's effect committed.
    pub fired_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// The W3C `traceparent` of the request that (last) scheduled it, which its firing span
    /// links to; `None` when scheduled outside an exported trace.
    pub trace_parent: Option<String>,
    /// The `tracestate` that came with it.
    pub trace_state: Option<String>,
}

impl<'r> FromRow<'r, PgRow> for Deadline {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let state: String = row.try_get("state")?;
        let state = DeadlineState::parse(&state).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "state".into(),
            source: format!("unknown deadline state `{state}`").into(),
        })?;
        Ok(Self {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            subject: row.try_get("subject")?,
            due_at: row.try_get("due_at")?,
            payload: row.try_get("payload")?,
            state,
            attempts: row.try_get("attempts")?,
            last_error: row.try_get("last_error")?,
            last_attempt_at: row.try_get("last_attempt_at")?,
            created_at: row.try_get("created_at")?,
            fired_at: row.try_get("fired_at")?,
            cancelled_at: row.try_get("cancelled_at")?,
            trace_parent: row.try_get("trace_parent")?,
            trace_state: row.try_get("trace_state")?,
        })
    }
}

/// What to schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadline {
    /// Which handler fires it.
    pub kind: String,
    /// What it is about.
    pub subject: String,
    /// When it fires; a time already past fires at the next pass.
    pub due_at: DateTime<Utc>,
    /// Whatever the handler needs besides the subject.
    pub payload: serde_json::Value,
}

impl NewDeadline {
    /// A deadline with an empty (`{}`) payload.
    pub fn new(kind: impl Into<String>, subject: impl Into<String>, due_at: DateTime<Utc>) -> Self {
        Self {
            kind: kind.into(),
            subject: subject.into(),
            due_at,
            payload: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// The same with `payload`.
    pub fn with_payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), DeadlineError> {
        if self.kind.trim().is_empty() {
            return Err(DeadlineError::Invalid("a deadline needs a kind".into()));
        }
        if self.subject.trim().is_empty() {
            return Err(DeadlineError::Invalid("a deadline needs a subject".into()));
        }
        Ok(())
    }
}
