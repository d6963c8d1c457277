//! Durable deadlines for Minhu services: sign and check-in deadlines, task windows,
//! opinion replies.
//!
//! A deadline is a row in the owning service's Postgres (`minhu_deadlines`: kind, subject,
//! due time, state) — the truth — and an entry in a Redis sorted set scored by due time —
//! the index that fires it.
//!
//! - **Scheduling** ([`Deadlines`]) writes the row in the caller's transaction, so it commits
//!   with the state change that caused it, and indexes it after the commit. Cancelling and
//!   rescheduling are one `UPDATE` each. One deadline is pending per kind and subject.
//! - **Firing** ([`DeadlineEngine`]) claims due ids with one Lua script, so among any number of
//!   replicas each claim goes to one of them, and leases them. Each firing is a Postgres
//!   transaction that marks the row fired only if it is still pending and due, and runs the
//!   [`Handler`] registered for its kind in that same transaction: a duplicate or late
//!   delivery has no second effect. The handler locks its subject
//!   ([`Handler::lock_subject`]) before the engine locks the deadline row, the order the
//!   service's own requests lock them in. A failed attempt is recorded and retried with a backoff;
//!   a firer that dies mid-firing leaves a lease that expires, and the id fires again.
//! - **Rebuilding** ([`DeadlineEngine::reconcile`], at start and periodically) re-adds every
//!   pending row to the index: flushing or restarting Redis loses nothing.
//! - **Time** comes from an injectable [`Clock`]; with a [`ManualClock`] tests run months of
//!   deadlines in milliseconds.
//! - **Working time** ([`calendar`]): deadlines measured in working hours or days, skipping
//!   weekends and a district's public holidays and honouring its make-up working days (调休).
//!
//! A service adds [`MIGRATOR`] to its migration sets, gives its request handlers a
//! [`Deadlines`], and runs one [`DeadlineEngine`] per replica:
//!
//! ```no_run
//! use minhu_deadlines::{DeadlineEngine, Deadlines, EngineConfig};
//! # struct SignOverdue;
//! # impl minhu_deadlines::Handler for SignOverdue {
//! #     async fn fire(
//! #         &self,
//! #         _: &mut sqlx::PgConnection,
//! #         _: &minhu_deadlines::Deadline,
//! #     ) -> Result<(), minhu_deadlines::HandlerError> {
//! #         Ok(())
//! #     }
//! # }
//! # async fn serve(
//! #     config: minhu_store::DatabaseConfig,
//! #     redis_url: &str,
//! #     shutdown: tokio::sync::oneshot::Receiver<()>,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! let pool = minhu_store::connect_and_migrate(&config, &[&minhu_deadlines::MIGRATOR /*, the service's own */]).await?;
//! let redis = minhu_store::connect_redis(redis_url).await?;
//! let deadlines = Deadlines::new(redis, "minhu:dispatch:deadlines:");
//! let engine = DeadlineEngine::builder(pool.clone(), deadlines.clone())
//!     .config(EngineConfig::default())
//!     .handler("dispatch.sign", SignOverdue)
//!     .build()?;
//! let firing = tokio::spawn(engine.run(async {
//!     let _ = shutdown.await;
//! }));
//! // … serve, with `deadlines` in the request handlers' state …
//! firing.await?;
//! # Ok(())
//! # }
//! ```
//!
//! Redis must be 6.2 or newer (`ZADD … LT`).

/// The column list of every query returning a [`Deadline`], in its field order. A macro
/// rather than a `const` so that `concat!` can build `'static` query strings from it.
macro_rules! columns {
    () => {
        "id, kind, subject, due_at, payload, state, attempts, last_error, last_attempt_at, created_at, fired_at, \
         cancelled_at, trace_parent, trace_state"
    };
}

pub mod calendar;
pub mod china;
mod clock;
mod engine;
mod handler;
mod index;
mod model;
mod schedule;

pub use calendar::{CalendarConfig, WorkCalendar, WorkingHours};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{DeadlineEngine, EngineBuilder, EngineConfig, RetryPolicy};
pub use handler::{Handler, HandlerError};
pub use model::{Deadline, DeadlineState, NewDeadline};
pub use schedule::Deadlines;

/// The `minhu_deadlines` table, versions 2–3 in the range reserved for libraries; list it in
/// the service's `connect_and_migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why a deadline operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeadlineError {
    /// Postgres failed.
    #[error("deadline database: {0}")]
    Database(#[from] sqlx::Error),
    /// The Redis index failed. Scheduling has already committed by the time the index is
    /// touched, so this never loses a deadline: the next reconcile indexes it.
    #[error("deadline index: {0}")]
    Index(#[from] redis::RedisError),
    /// A deadline or an engine configuration that cannot work.
    #[error("invalid deadline: {0}")]
    Invalid(String),
    /// A working-time calendar configuration that cannot work.
    #[error("invalid working-time calendar: {0}")]
    Calendar(String),
}
