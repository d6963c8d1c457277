//! Durable reply deadlines (回复时限): what personnel schedules with `minhu-deadlines`, and
//! what fires when one passes.
//!
//! | kind | subject | due | fires | scheduled by | cancelled by |
//! |---|---|---|---|---|---|
//! | `personnel.reply` | solicitation | just after `reply_deadline` | [`reply_overdue`] | CreateOpinionSolicitation | SubmitOpinion, RecordDecision, WithdrawOpinionSolicitation |
//!
//! A reply *at* the deadline is on time, so the deadline fires one microsecond after it.
//! The handler locks the solicitation (the aggregate first, then the engine takes the
//! deadline row), re-reads it and records nothing unless it still awaits the street's
//! opinion: a firing after the reply that should have cancelled it is harmless. What it
//! records: the state NO_REPLY, an escalation addressed to the street's leaders (as the
//! roster named them when the solicitation was filed: no roster call under a lock) and the
//! district, and a REPLY_OVERDUE finding — all in the engine's transaction.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use minhu_deadlines::{
    Clock, Deadline, DeadlineEngine, DeadlineError, Deadlines, EngineConfig, Handler, HandlerError, NewDeadline,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{domain, error::PersonnelError, store};

/// A solicitation's reply deadline.
pub const REPLY: &str = "personnel.reply";

/// The reply deadline of solicitation `id`.
pub fn reply(id: Uuid, deadline: DateTime<Utc>) -> NewDeadline {
    NewDeadline::new(REPLY, id.to_string(), deadline + TimeDelta::microseconds(1))
}

/// Marks solicitation `id` overdue and escalates it, if it still awaits the street at `now`.
/// Whether anything was recorded.
pub async fn reply_overdue(tx: &mut PgConnection, id: Uuid, now: DateTime<Utc>) -> Result<bool, PersonnelError> {
    let Some(row) = store::solicitation(tx, id, true).await? else { return Ok(false) };
    let state = domain::State::parse(&row.state).ok_or_else(|| PersonnelError::Internal(row.state.clone()))?;
    if !domain::reply_overdue(state, now, row.reply_deadline) {
        return Ok(false);
    }
    store::mark_no_reply(tx, &row, now).await?;
    Ok(true)
}

struct ReplyOverdue {
    clock: Arc<dyn Clock>,
}

impl Handler for ReplyOverdue {
    /// The solicitation first, as every request that cancels its deadline locks it before
    /// the deadline row: taking them in the other order could deadlock with a reply.
    async fn lock_subject(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        if let Ok(id) = Uuid::parse_str(&deadline.subject) {
            store::solicitation(tx, id, true).await?;
        }
        Ok(())
    }

    async fn fire(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        let Ok(id) = Uuid::parse_str(&deadline.subject) else {
            tracing::error!(deadline.id = %deadline.id, subject = %deadline.subject, "reply deadline subject is not an id");
            return Ok(());
        };
        let recorded = reply_overdue(tx, id, self.clock.now()).await.map_err(HandlerError::msg)?;
        tracing::debug!(solicitation.id = %id, recorded, "reply deadline fired");
        Ok(())
    }
}

/// The engine firing personnel's deadlines from `pool`, on `clock`.
pub fn engine(pool: PgPool, deadlines: Deadlines, clock: Arc<dyn Clock>) -> Result<DeadlineEngine, DeadlineError> {
    let connections = pool.options().get_max_connections() as usize;
    let config = EngineConfig { concurrency: (connections / 2).clamp(1, 4), ..EngineConfig::default() };
    DeadlineEngine::builder(pool, deadlines).config(config).handler(REPLY, ReplyOverdue { clock }).build()
}

/// The deadlines one request schedules and cancels in its transaction, indexed once it has
/// committed.
#[derive(Clone)]
pub struct Staged {
    deadlines: Deadlines,
    changed: Arc<Mutex<Vec<Deadline>>>,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged").finish_non_exhaustive()
    }
}

impl Staged {
    /// Nothing staged yet.
    pub fn new(deadlines: Deadlines) -> Self {
        Self { deadlines, changed: Arc::default() }
    }

    fn keep(&self, deadline: Deadline) {
        self.changed.lock().unwrap_or_else(PoisonError::into_inner).push(deadline);
    }

    /// Schedules a deadline in `tx`.
    pub async fn schedule(&self, tx: &mut PgConnection, new: NewDeadline) -> Result<(), PersonnelError> {
        let deadline = self.deadlines.schedule(tx, new).await?;
        self.keep(deadline);
        Ok(())
    }

    /// Cancels the pending reply deadline of `subject` in `tx`, if any.
    pub async fn cancel_reply(&self, tx: &mut PgConnection, subject: Uuid) -> Result<(), PersonnelError> {
        if let Some(deadline) = self.deadlines.cancel(tx, REPLY, &subject.to_string()).await? {
            self.keep(deadline);
        }
        Ok(())
    }

    /// Indexes what was staged, after the commit. A failure is only logged: the rows are the
    /// truth and the engine's reconcile indexes them.
    pub async fn index(self) {
        let changed = std::mem::take(&mut *self.changed.lock().unwrap_or_else(PoisonError::into_inner));
        if changed.is_empty() {
            return;
        }
        if let Err(error) = self.deadlines.index(&changed).await {
            tracing::warn!(%error, "deadlines not indexed yet; the next reconcile will");
        }
    }
}
