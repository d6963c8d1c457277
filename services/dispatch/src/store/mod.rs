//! Dispatch's SQL. Functions take a connection (inside the caller's transaction for
//! writes) and return domain records; generated protobuf types never reach here (event
//! payloads arrive already encoded, as bytes).

pub mod attachments;
pub mod calendar;
pub mod calls;
pub mod cases;
pub mod catalogue;
pub mod closing;
pub mod journal;
pub mod spool;
pub mod tasks;

/// Whether `error` is a unique violation of `constraint`.
pub fn is_unique_violation(error: &sqlx::Error, constraint: &str) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") && db.constraint() == Some(constraint))
}

/// Which cases a caller may see, as SQL understands it (mirrors `domain::access::may_read`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (district, services).
    All,
    /// One street's cases.
    Street(String),
    /// Cases calling a department (its dispatchers and leaders).
    Department(String),
    /// Cases whose calls name a person (field officers).
    Person(String),
}

impl Scope {
    /// `AND …` restricting `cases c` to the scope; binds through the builder.
    pub(crate) fn push(&self, q: &mut sqlx::QueryBuilder<sqlx::Postgres>) {
        match self {
            Self::All => {}
            Self::Street(s) => {
                q.push(" AND c.street_id = ").push_bind(s.clone());
            }
            Self::Department(d) => {
                q.push(" AND EXISTS (SELECT 1 FROM calls k WHERE k.case_id = c.id AND k.state <> 'CALL_STATE_WITHDRAWN' AND k.department_id = ")
                    .push_bind(d.clone())
                    .push(")");
            }
            Self::Person(p) => {
                q.push(" AND EXISTS (SELECT 1 FROM calls k JOIN designations g ON g.call_id = k.id WHERE k.case_id = c.id AND g.person_id = ")
                    .push_bind(p.clone())
                    .push(")");
            }
        }
    }
}
