//! Consultation's tables: plans and decisions as documents beside the columns their lists
//! filter on, their opinions, escalations, and the journal (trail + outbox). Lock order,
//! everywhere: the aggregate's row (plan or decision) first, then its opinions, then
//! deadline rows.

pub mod decisions;
pub mod escalations;
pub mod journal;
pub mod plans;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::access::Scope;

/// The position of a row in a newest-first or oldest-first list.
pub type Position = (DateTime<Utc>, Uuid);

/// The scope as the two filters it adds: a street every row must involve, a department
/// every row must belong to. `None` for a caller who may see nothing.
pub fn scope_filters(scope: &Scope) -> Option<(Option<String>, Option<String>)> {
    match scope {
        Scope::District => Some((None, None)),
        Scope::Department(d) => Some((None, Some(d.clone()))),
        Scope::Street(s) => Some((Some(s.clone()), None)),
        Scope::Nothing => None,
    }
}
