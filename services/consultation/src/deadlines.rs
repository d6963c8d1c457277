//! Durable deadlines (回复时限, 反馈时限): what consultation schedules with
//! `minhu-deadlines`, when, and what fires when one passes.
//!
//! | kind | subject | due | fires | scheduled by | cancelled by |
//! |---|---|---|---|---|---|
//! | `consultation.reply` | decision | just after `reply_deadline` | [`escalation::reply_overdue`] | CreateDecision | the last street's reply, FinalizeDecision |
//! | `consultation.answer` | decision opinion | just after `answer_deadline` | [`escalation::answer_overdue`] | SubmitDecisionOpinion | RecordAdoption |
//! | `consultation.plan_answer` | plan opinion needing an answer | just after `answer_deadline` | [`escalation::plan_answer_overdue`] | SubmitPlanOpinion | AnswerPlanOpinion |
//!
//! Reply times given in working days and every answer deadline are counted on the
//! working-time calendar ([`WorkCalendar`](minhu_deadlines::WorkCalendar)): the close of the
//! n-th working day after the day it starts. Scheduling happens in the request's own
//! transaction through [`Staged`]; once it commits the rows are indexed in Redis. Firing runs
//! the escalation hook in the engine's transaction, which locks the decision first, re-reads
//! and records nothing when there is nothing left to do.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use minhu_deadlines::{
    Clock, Deadline, DeadlineEngine, DeadlineError, Deadlines, EngineConfig, Handler, HandlerError, NewDeadline,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    error::{ConsultationError, deadline_error},
    escalation,
    store::{decisions, plans},
};

/// A decision's reply deadline (回复时限).
pub const REPLY: &str = "consultation.reply";
/// A decision opinion item's answer deadline (反馈时限).
pub const ANSWER: &str = "consultation.answer";
/// A plan opinion item's answer deadline (答复时限).
pub const PLAN_ANSWER: &str = "consultation.plan_answer";

/// A deadline is met *at* its instant: firing one microsecond later finds it passed.
fn just_after(t: DateTime<Utc>) -> DateTime<Utc> {
    t + TimeDelta::microseconds(1)
}

/// The reply deadline of decision `id`.
pub fn reply(id: Uuid, due: DateTime<Utc>) -> NewDeadline {
    NewDeadline::new(REPLY, id.to_string(), just_after(due))
}

/// The answer deadline of decision opinion `id`.
pub fn answer(id: Uuid, due: DateTime<Utc>) -> NewDeadline {
    NewDeadline::new(ANSWER, id.to_string(), just_after(due))
}

/// The answer deadline of plan opinion `id`.
pub fn plan_answer(id: Uuid, due: DateTime<Utc>) -> NewDeadline {
    NewDeadline::new(PLAN_ANSWER, id.to_string(), just_after(due))
}

#[derive(Debug, Clone, Copy)]
enum Hook {
    Reply,
    Answer,
    PlanAnswer,
}

/// Fires one kind of deadline by running its escalation hook.
struct Escalate {
    hook: Hook,
    clock: Arc<dyn Clock>,
}

impl Handler for Escalate {
    /// The decision or plan first, as every request that cancels one of its deadlines locks
    /// it before the deadline row: taking them in the other order could deadlock with an
    /// opinion or an answer arriving at the deadline.
    async fn lock_subject(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        let Ok(id) = Uuid::parse_str(&deadline.subject) else { return Ok(()) };
        match self.hook {
            Hook::Reply => {
                decisions::get(tx, id, true).await?;
            }
            Hook::Answer => {
                if let Some(decision_id) = decisions::decision_of_opinion(tx, id).await? {
                    decisions::get(tx, decision_id, true).await?;
                }
            }
            Hook::PlanAnswer => {
                if let Some(plan_id) = plans::plan_of_opinion(tx, id).await? {
                    plans::get(tx, plan_id, true).await?;
                }
            }
        }
        Ok(())
    }

    async fn fire(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        let Ok(id) = Uuid::parse_str(&deadline.subject) else {
            tracing::error!(deadline.id = %deadline.id, subject = %deadline.subject, "deadline subject is not an id");
            return Ok(());
        };
        let now = crate::to_micros(self.clock.now());
        let recorded = match self.hook {
            Hook::Reply => escalation::reply_overdue(tx, id, now).await?,
            Hook::Answer => escalation::answer_overdue(tx, id, now).await?,
            Hook::PlanAnswer => escalation::plan_answer_overdue(tx, id, now).await?,
        };
        tracing::debug!(deadline.kind = %deadline.kind, subject = %id, recorded, "deadline escalated");
        Ok(())
    }
}

/// The engine firing consultation's deadlines from `pool`.
pub fn engine(pool: PgPool, deadlines: Deadlines, clock: Arc<dyn Clock>) -> Result<DeadlineEngine, DeadlineError> {
    // Half the pool at most: requests keep connections while deadlines fire.
    let connections = pool.options().get_max_connections() as usize;
    let config = EngineConfig { concurrency: (connections / 2).clamp(1, 8), ..EngineConfig::default() };
    DeadlineEngine::builder(pool, deadlines)
        .config(config)
        .handler(REPLY, Escalate { hook: Hook::Reply, clock: clock.clone() })
        .handler(ANSWER, Escalate { hook: Hook::Answer, clock: clock.clone() })
        .handler(PLAN_ANSWER, Escalate { hook: Hook::PlanAnswer, clock })
        .build()
}

/// The deadlines one request schedules and cancels in its transaction, to index once it
/// has committed.
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

    /// Schedules (or moves) a deadline in `tx`.
    pub async fn schedule(&self, tx: &mut PgConnection, new: NewDeadline) -> Result<(), ConsultationError> {
        let deadline = self.deadlines.schedule(tx, new).await.map_err(deadline_error)?;
        self.keep(deadline);
        Ok(())
    }

    /// Cancels the pending deadline of `kind` for `subject` in `tx`, if there is one.
    pub async fn cancel(&self, tx: &mut PgConnection, kind: &str, subject: Uuid) -> Result<(), ConsultationError> {
        if let Some(deadline) = self.deadlines.cancel(tx, kind, &subject.to_string()).await.map_err(deadline_error)? {
            self.keep(deadline);
        }
        Ok(())
    }

    /// Indexes what was staged; call it once the transaction has committed. A failure is
    /// only logged: the rows are the truth and the engine's reconcile indexes them.
    pub async fn index(self) {
        let changed = std::mem::take(&mut *self.changed.lock().unwrap_or_else(PoisonError::into_inner));
        if changed.is_empty() {
            return;
        }
        if let Err(error) = self.deadlines.index(&changed).await {
            tracing::warn!(%error, deadlines = changed.len(), "deadlines not indexed yet; the next reconcile will");
        }
    }
}
