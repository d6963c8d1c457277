//! Durable deadlines (签收时限, 报到时间, 任务时间段, 整改时限): what dispatch schedules with
//! `minhu-deadlines`, when, and what fires when one passes.
//!
//! | kind | subject | due | fires | scheduled by | cancelled by |
//! |---|---|---|---|---|---|
//! | `dispatch.sign` | call | just after `sign_deadline` | [`escalation::mark_sign_overdue`] | StartCall | SignCall, WithdrawCall, CloseCase |
//! | `dispatch.check_in` | call | `check_in_close_time` | [`escalation::close_check_in`] | StartCall | WithdrawCall, CloseCase |
//! | `dispatch.task` | task | just after the window end | [`escalation::mark_task_overdue`] | RecordConsultation, RequireRectification (its task), ReviewFeedback RETURN | ReviewFeedback ACCEPT, RerateDepartment, CloseCase |
//! | `dispatch.rectification` | rectification | just after `due_time` | [`escalation::mark_rectification_overdue`] | RequireRectification | ReviewFeedback ACCEPT, RerateDepartment, CloseCase |
//!
//! "Just after" is one microsecond after: a deadline is met *at* its instant
//! ([`passed`](crate::domain::deadlines::passed)), so a firing exactly at it would find
//! nothing to record and be spent. The check-in window is exclusive at its close, so that
//! one fires at the close itself.
//!
//! **Scheduling** happens in the request's own transaction, beside the state change and its
//! journal entry, through [`Staged`]; once the transaction has committed the staged rows are
//! indexed in Redis (best effort: the engine's reconcile indexes whatever a crash or a Redis
//! outage left out). A returned feedback schedules its task's deadline again, at the window
//! end or at once if that has passed: a task the street sends back after its window is a
//! task not completed in it.
//!
//! **Firing**: each handler first locks the case and then the call, task or rectification
//! (`lock_subject`, before the engine locks the deadline row: the order of every request,
//! so a SignCall at the deadline's instant waits for the firing or the firing for it, never
//! both), then calls its escalation hook in the engine's transaction with the service's
//! [`Clock`]'s time. The hooks re-read under those locks, and record nothing when
//! there is nothing left to do (signed meanwhile, withdrawn, accepted, already marked), so a
//! deadline that fires after the change that should have cancelled it is harmless; the
//! cancel only makes it moot.
//!
//! **Time**: sign and check-in deadlines and task windows are wall-clock — the city does not
//! stop at night, a street sets a task's window as the times it means, and minutes matter
//! on the street. Working time ([`WorkCalendar`]: working hours, weekends, public holidays,
//! make-up working days 调休) measures what is given in working days: the default due time of
//! a rectification (整改时限) when the street names none, `rectification_working_days` after
//! the request, at the close of that working day (the request's own day not counted).

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use minhu_deadlines::{
    Deadline, DeadlineEngine, DeadlineError, Deadlines, EngineConfig, Handler, HandlerError, NewDeadline,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    clock::Clock,
    domain::{
        events::DeadlineKind,
        model::{Call, Rectification, Task},
    },
    error::DispatchError,
    escalation,
    store::{calls, cases, closing, tasks},
};

/// A call's sign deadline (签收时限).
pub const SIGN: &str = "dispatch.sign";
/// A call's check-in window closing (报到).
pub const CHECK_IN: &str = "dispatch.check_in";
/// A task's window ending (任务时间段).
pub const TASK: &str = "dispatch.task";
/// A rectification's due time (整改时限).
pub const RECTIFICATION: &str = "dispatch.rectification";

fn just_after(t: DateTime<Utc>) -> DateTime<Utc> {
    t + TimeDelta::microseconds(1)
}

/// The kind name of a domain deadline.
pub fn kind_name(kind: DeadlineKind) -> &'static str {
    match kind {
        DeadlineKind::Sign => SIGN,
        DeadlineKind::CheckIn => CHECK_IN,
        DeadlineKind::Task => TASK,
        DeadlineKind::Rectification => RECTIFICATION,
    }
}

/// The deadline of `kind` for `subject` that is met at `at`: it fires just after (a
/// check-in window at its close), and not before `now`.
pub fn firing(kind: DeadlineKind, subject: Uuid, at: DateTime<Utc>, now: DateTime<Utc>) -> NewDeadline {
    let due = if kind == DeadlineKind::CheckIn { at } else { just_after(at) };
    NewDeadline::new(kind_name(kind), subject.to_string(), due.max(now))
}

/// The sign deadline of `call`.
pub fn sign(call: &Call) -> NewDeadline {
    NewDeadline::new(SIGN, call.id.to_string(), just_after(call.sign_deadline))
}

/// The check-in close of `call`.
pub fn check_in(call: &Call) -> NewDeadline {
    NewDeadline::new(CHECK_IN, call.id.to_string(), call.check_in_close_time)
}

/// The window end of `task`, or `now` when that has already passed.
pub fn task(task: &Task, now: DateTime<Utc>) -> NewDeadline {
    NewDeadline::new(TASK, task.id.to_string(), just_after(task.window_end).max(now))
}

/// The due time of `rect`.
pub fn rectification(rect: &Rectification) -> NewDeadline {
    NewDeadline::new(RECTIFICATION, rect.id.to_string(), just_after(rect.due_time))
}

/// Dispatch's clock as the engine's, so that the engine decides what is due by the same
/// time the handlers and the hooks record (a [`ManualClock`](crate::ManualClock) in tests).
#[derive(Debug)]
pub struct EngineClock(pub Arc<dyn Clock>);

impl minhu_deadlines::Clock for EngineClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

#[derive(Debug, Clone, Copy)]
enum Hook {
    SignOverdue,
    CloseCheckIn,
    TaskOverdue,
    RectificationOverdue,
}

/// Fires one kind of deadline by running its escalation hook.
struct Escalate {
    hook: Hook,
    clock: Arc<dyn Clock>,
}

impl Hook {
    fn child(self) -> cases::Child {
        match self {
            Self::SignOverdue | Self::CloseCheckIn => cases::Child::Call,
            Self::TaskOverdue => cases::Child::Task,
            Self::RectificationOverdue => cases::Child::Rectification,
        }
    }
}

impl Handler for Escalate {
    /// The case, then the call, task or rectification: before the engine locks the
    /// deadline row, as every request that meets or cancels the deadline does.
    async fn lock_subject(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        if let Ok(id) = Uuid::parse_str(&deadline.subject) {
            cases::lock_with_child(tx, self.hook.child(), id).await?;
        }
        Ok(())
    }

    async fn fire(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        let Ok(id) = Uuid::parse_str(&deadline.subject) else {
            // Retrying cannot help a subject that is not an id; drop it loudly.
            tracing::error!(deadline.id = %deadline.id, deadline.kind = %deadline.kind, subject = %deadline.subject,
                "deadline subject is not an id; nothing to escalate");
            return Ok(());
        };
        let now = self.clock.now();
        let recorded = match self.hook {
            Hook::SignOverdue => escalation::mark_sign_overdue(tx, id, now).await?,
            Hook::CloseCheckIn => escalation::close_check_in(tx, id, now).await?,
            Hook::TaskOverdue => escalation::mark_task_overdue(tx, id, now).await?,
            Hook::RectificationOverdue => escalation::mark_rectification_overdue(tx, id, now).await?,
        };
        tracing::debug!(deadline.kind = %deadline.kind, subject = %id, recorded, "deadline escalated");
        Ok(())
    }
}

/// The engine firing dispatch's four kinds of deadline from `pool`.
pub fn engine(pool: PgPool, deadlines: Deadlines, clock: Arc<dyn Clock>) -> Result<DeadlineEngine, DeadlineError> {
    // Half the pool at most: requests keep connections to work with while deadlines fire.
    let connections = pool.options().get_max_connections() as usize;
    let config = EngineConfig { concurrency: (connections / 2).clamp(1, 8), ..EngineConfig::default() };
    let handler = |hook| Escalate { hook, clock: clock.clone() };
    DeadlineEngine::builder(pool, deadlines)
        .config(config)
        .handler(SIGN, handler(Hook::SignOverdue))
        .handler(CHECK_IN, handler(Hook::CloseCheckIn))
        .handler(TASK, handler(Hook::TaskOverdue))
        .handler(RECTIFICATION, handler(Hook::RectificationOverdue))
        .build()
}

/// The deadlines one request schedules and cancels in its transaction, to index once it has
/// committed. Cheap to clone into the transaction's closure.
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
    pub async fn schedule(&self, tx: &mut PgConnection, new: NewDeadline) -> Result<(), DispatchError> {
        let deadline = self.deadlines.schedule(tx, new).await?;
        self.keep(deadline);
        Ok(())
    }

    /// Cancels the pending deadline of `kind` for `subject` in `tx`, if there is one.
    pub async fn cancel(&self, tx: &mut PgConnection, kind: &str, subject: Uuid) -> Result<(), DispatchError> {
        if let Some(deadline) = self.deadlines.cancel(tx, kind, &subject.to_string()).await? {
            self.keep(deadline);
        }
        Ok(())
    }

    /// Cancels whatever is still pending for the calls, tasks and rectifications of a case.
    pub async fn cancel_case(&self, tx: &mut PgConnection, case_id: Uuid) -> Result<(), DispatchError> {
        for call in calls::of_case(tx, case_id).await? {
            self.cancel(tx, SIGN, call.id).await?;
            self.cancel(tx, CHECK_IN, call.id).await?;
        }
        for task in tasks::of_case(tx, case_id).await? {
            self.cancel(tx, TASK, task.id).await?;
        }
        for rect in closing::rectifications(tx, case_id).await? {
            self.cancel(tx, RECTIFICATION, rect.id).await?;
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
