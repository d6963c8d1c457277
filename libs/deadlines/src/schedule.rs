//! Scheduling, rescheduling and cancelling: row changes in the caller's transaction, index
//! changes after it commits.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use sqlx::PgConnection;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{Clock, Deadline, DeadlineError, DeadlineState, NewDeadline, SystemClock, clock::due_score, index::Index};

/// The scheduling side of deadlines, for request handlers; cheap to clone.
///
/// Row changes ([`schedule`](Self::schedule), [`reschedule`](Self::reschedule),
/// [`cancel`](Self::cancel)) run in the caller's transaction, so a deadline commits or rolls
/// back with the state change that made it. Once that transaction has committed, pass the
/// returned deadlines to [`index`](Self::index): a deadline that never reaches the index —
/// the process died in between, Redis was down — is indexed by the engine's next
/// reconcile, and a cancelled one left in the index is dropped when firing finds its row
/// no longer pending.
///
/// ```no_run
/// # use minhu_deadlines::{Deadlines, NewDeadline};
/// # async fn sign_requested(
/// #     pool: sqlx::PgPool,
/// #     deadlines: Deadlines,
/// #     call_id: &str,
/// #     due_at: chrono::DateTime<chrono::Utc>,
/// # ) -> Result<(), Box<dyn std::error::Error>> {
/// let mut tx = pool.begin().await?;
/// /* … the call changes state in `tx` … */
/// let deadline = deadlines.schedule(&mut tx, NewDeadline::new("dispatch.sign", call_id, due_at)).await?;
/// tx.commit().await?;
/// if let Err(error) = deadlines.index(&[deadline]).await {
///     tracing::warn!(%error, "deadline not indexed yet; the next reconcile will");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Deadlines {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) index: Index,
    pub(crate) clock: Arc<dyn Clock>,
    /// Wakes a running engine that is sleeping past a newly indexed due time.
    pub(crate) wake: Notify,
    /// The unix millis a running engine's sleep ends at (`i64::MAX`: not sleeping yet).
    pub(crate) next_wake: AtomicI64,
}

impl std::fmt::Debug for Deadlines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadlines").field("due", &self.shared.index.due).finish_non_exhaustive()
    }
}

impl Deadlines {
    /// Deadlines indexed under `namespace` (e.g. `minhu:dispatch:deadlines:`; the keys are
    /// `<namespace>due` and `<namespace>inflight`) on the system clock. Each service uses its
    /// own namespace: the index names rows of the service's own database.
    pub fn new(redis: ConnectionManager, namespace: &str) -> Self {
        Self::with_clock(redis, namespace, Arc::new(SystemClock))
    }

    /// The same on `clock` (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(redis: ConnectionManager, namespace: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            shared: Arc::new(Shared {
                index: Index::new(redis, namespace),
                clock,
                wake: Notify::new(),
                next_wake: AtomicI64::new(i64::MAX),
            }),
        }
    }

    /// The clock every deadline time is compared with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// The sorted set of due times (member = id, score = unix millis), for operators and tests.
    pub fn due_key(&self) -> &str {
        &self.shared.index.due
    }

    /// The sorted set of claimed ids (score = lease expiry, unix millis), for operators and tests.
    pub fn inflight_key(&self) -> &str {
        &self.shared.index.inflight
    }

    /// Schedules a deadline in the caller's transaction. If one is already pending for the
    /// same kind and subject, it is rescheduled instead: same id, the new due time and
    /// payload, its failed attempts forgotten.
    ///
    /// The current span's trace context is stored with it, so the firing's span links to
    /// the request that scheduled it (the latest one, when rescheduled).
    pub async fn schedule(&self, conn: &mut PgConnection, new: NewDeadline) -> Result<Deadline, DeadlineError> {
        new.validate()?;
        let context = minhu_telemetry::current_context();
        let deadline = sqlx::query_as::<_, Deadline>(concat!(
            "INSERT INTO minhu_deadlines (id, kind, subject, due_at, payload, created_at, trace_parent, trace_state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (kind, subject) WHERE state = 'pending' DO UPDATE \
             SET due_at = EXCLUDED.due_at, payload = EXCLUDED.payload, \
                 attempts = 0, last_error = NULL, last_attempt_at = NULL, \
                 trace_parent = EXCLUDED.trace_parent, trace_state = EXCLUDED.trace_state \
             RETURNING ",
            columns!()
        ))
        .bind(Uuid::now_v7())
        .bind(&new.kind)
        .bind(&new.subject)
        .bind(new.due_at)
        .bind(&new.payload)
        .bind(self.shared.clock.now())
        .bind(context.as_ref().map(|c| c.traceparent.as_str()))
        .bind(context.as_ref().map(|c| c.tracestate.as_str()).filter(|s| !s.is_empty()))
        .fetch_one(conn)
        .await?;
        Ok(deadline)
    }

    /// Moves the pending deadline of `kind` and `subject` to `due_at`, forgetting its failed
    /// attempts. `None` if nothing of that kind is pending for the subject.
    pub async fn reschedule(
        &self,
        conn: &mut PgConnection,
        kind: &str,
        subject: &str,
        due_at: DateTime<Utc>,
    ) -> Result<Option<Deadline>, DeadlineError> {
        let deadline = sqlx::query_as::<_, Deadline>(concat!(
            "UPDATE minhu_deadlines SET due_at = $3, attempts = 0, last_error = NULL, last_attempt_at = NULL \
             WHERE kind = $1 AND subject = $2 AND state = 'pending' RETURNING ",
            columns!()
        ))
        .bind(kind)
        .bind(subject)
        .bind(due_at)
        .fetch_optional(conn)
        .await?;
        Ok(deadline)
    }

    /// Cancels the pending deadline of `kind` and `subject` (the department signed in time).
    /// `None` if nothing of that kind was pending for the subject. Once this commits the
    /// deadline never fires, whether or not [`index`](Self::index) removes it: firing re-checks
    /// the row.
    pub async fn cancel(
        &self,
        conn: &mut PgConnection,
        kind: &str,
        subject: &str,
    ) -> Result<Option<Deadline>, DeadlineError> {
        let deadline = sqlx::query_as::<_, Deadline>(concat!(
            "UPDATE minhu_deadlines SET state = 'cancelled', cancelled_at = $3 \
             WHERE kind = $1 AND subject = $2 AND state = 'pending' RETURNING ",
            columns!()
        ))
        .bind(kind)
        .bind(subject)
        .bind(self.shared.clock.now())
        .fetch_optional(conn)
        .await?;
        Ok(deadline)
    }

    /// The pending deadline of `kind` and `subject`, if any.
    pub async fn pending(
        &self,
        conn: &mut PgConnection,
        kind: &str,
        subject: &str,
    ) -> Result<Option<Deadline>, DeadlineError> {
        let deadline = sqlx::query_as::<_, Deadline>(concat!(
            "SELECT ",
            columns!(),
            " FROM minhu_deadlines WHERE kind = $1 AND subject = $2 AND state = 'pending'"
        ))
        .bind(kind)
        .bind(subject)
        .fetch_optional(conn)
        .await?;
        Ok(deadline)
    }

    /// The deadline with `id`, in whatever state.
    pub async fn get(&self, conn: &mut PgConnection, id: Uuid) -> Result<Option<Deadline>, DeadlineError> {
        let deadline =
            sqlx::query_as::<_, Deadline>(concat!("SELECT ", columns!(), " FROM minhu_deadlines WHERE id = $1"))
                .bind(id)
                .fetch_optional(conn)
                .await?;
        Ok(deadline)
    }

    /// Brings the Redis index in line with these rows, as they were when their transaction
    /// committed: pending ones are (re)indexed at their due time, fired and cancelled ones
    /// removed. Call it after the commit, never before — an index entry whose row then rolls
    /// back is harmless, but one indexed before its row is visible may be claimed, found
    /// missing and dropped. Best effort: on error the next reconcile catches up.
    pub async fn index(&self, deadlines: &[Deadline]) -> Result<(), DeadlineError> {
        let mut pending = Vec::new();
        let mut gone = Vec::new();
        for deadline in deadlines {
            match deadline.state {
                DeadlineState::Pending => pending.push((due_score(deadline.due_at), deadline.id)),
                DeadlineState::Fired | DeadlineState::Cancelled => gone.push(deadline.id),
            }
        }
        self.shared.index.put(&pending, &gone).await?;
        if let Some(earliest) = pending.iter().map(|(score, _)| *score).min() {
            self.shared.wake_if_sooner(earliest);
        }
        Ok(())
    }
}

impl Shared {
    /// Wakes a running engine whose sleep would outlast `score` (unix millis).
    pub(crate) fn wake_if_sooner(&self, score: i64) {
        if score < self.next_wake.load(Ordering::Relaxed) {
            // notify_one keeps a permit when nobody waits, so a wake-up sent while the engine
            // is busy firing is seen when it next goes to sleep.
            self.wake.notify_one();
        }
    }
}
