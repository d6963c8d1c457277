//! Dispatch's write path, the one every mutating RPC takes ([`Dispatch::write`]):
//!
//! 1. the handler parses the request into domain types (nothing below sees a bad value);
//! 2. a stored first result for its `request_id` is returned, before anything else;
//! 3. its look-ups (the roster, unlocked reads) run outside any transaction, so no row lock
//!    ever waits on another service;
//! 4. in one transaction the body locks in the one order — the case, then its calls, tasks
//!    and rectifications, then deadline rows ([`crate::deadlines`] fires in the same order)
//!    — lets the domain decide, saves the rows, [`Write::record`]s each change and stages
//!    its deadlines with [`Write::schedule`] / [`Write::cancel`];
//! 5. the journal is written last ([`journal::record_all`]): the trail entries and the
//!    events of the whole request, with the feed counter — the lock every write of the
//!    district queues on — taken once, just before the commit;
//! 6. after the commit, the staged deadlines are indexed in Redis.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use minhu_deadlines::NewDeadline;
use minhu_proto::dispatch::v1::event::Payload;
use minhu_store::{Idempotency, TxFuture};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Dispatch;
use crate::{
    deadlines::{self, Staged},
    domain::{
        events::{CaseDecision, DeadlineEffect, Decision, EventKind, TaskDecision, TaskEvent},
        model::{Actor, Call, Case},
    },
    error::DispatchError,
    escalation,
    events::{self, encode},
    store::{
        cases as case_store,
        journal::{self, Change},
    },
};

/// One change to journal: its kind, the call and department it concerns, the records
/// before and after, and the event's details.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) event_type: EventKind,
    pub(crate) call_id: Option<Uuid>,
    pub(crate) department_id: String,
    pub(crate) before: Value,
    pub(crate) after: Value,
    pub(crate) payload: Payload,
}

/// One request's write in progress: the time it happens at, the journal entries it has
/// recorded (written together at the end) and the deadlines it staged. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Write {
    now: DateTime<Utc>,
    staged: Staged,
    journal: Arc<Mutex<Vec<Change>>>,
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Write").field("now", &self.now).finish_non_exhaustive()
    }
}

impl Write {
    pub(crate) fn new(now: DateTime<Utc>, staged: Staged) -> Self {
        Self { now, staged, journal: Arc::default() }
    }

    /// The request's time.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Schedules (or moves) a deadline with the change.
    pub(crate) async fn schedule(&self, tx: &mut PgConnection, new: NewDeadline) -> Result<(), DispatchError> {
        self.staged.schedule(tx, new).await
    }

    /// Cancels a pending deadline with the change.
    pub(crate) async fn cancel(&self, tx: &mut PgConnection, kind: &str, subject: Uuid) -> Result<(), DispatchError> {
        self.staged.cancel(tx, kind, subject).await
    }

    /// Cancels whatever is pending for the case's calls, tasks and rectifications.
    pub(crate) async fn cancel_case(&self, tx: &mut PgConnection, case_id: Uuid) -> Result<(), DispatchError> {
        self.staged.cancel_case(tx, case_id).await
    }

    /// A call's change that its aggregate decided: its deadline effects staged, the case
    /// settled and saved, its event kept for the journal.
    pub(crate) async fn decide(
        &self,
        tx: &mut PgConnection,
        case: &mut Case,
        actor: &Actor,
        call: &Call,
        decision: Decision,
    ) -> Result<(), DispatchError> {
        self.apply(tx, case.id, &decision.deadlines).await?;
        self.settle(tx, case).await?;
        let event = &decision.event;
        let entry = Entry {
            event_type: event.kind(),
            call_id: Some(call.id),
            department_id: call.department_id.clone(),
            before: event.before(),
            after: event.after(case.overdue),
            payload: events::call_payload(event),
        };
        self.journal(case, actor, entry);
        Ok(())
    }

    /// A change of the case itself that its aggregate decided.
    pub(crate) async fn decide_case(
        &self,
        tx: &mut PgConnection,
        case: &mut Case,
        actor: &Actor,
        decision: CaseDecision,
    ) -> Result<(), DispatchError> {
        self.settle(tx, case).await?;
        let event = &decision.event;
        let entry = Entry {
            event_type: event.kind(),
            call_id: None,
            department_id: String::new(),
            before: event.before(),
            after: event.after(),
            payload: events::case_payload(event),
        };
        self.journal(case, actor, entry);
        // After the case, its children and their rows: deadline rows come last.
        self.apply(tx, case.id, &decision.deadlines).await
    }

    /// Stages deadline effects.
    async fn apply(
        &self,
        tx: &mut PgConnection,
        case_id: Uuid,
        effects: &[DeadlineEffect],
    ) -> Result<(), DispatchError> {
        for effect in effects {
            match *effect {
                DeadlineEffect::Schedule { kind, subject, due } => {
                    self.schedule(tx, deadlines::firing(kind, subject, due, self.now)).await?;
                }
                DeadlineEffect::Cancel { kind, subject } => {
                    self.cancel(tx, deadlines::kind_name(kind), subject).await?
                }
                DeadlineEffect::CancelAll => self.cancel_case(tx, case_id).await?,
            }
        }
        Ok(())
    }

    /// A change of a task that its aggregate decided.
    pub(crate) async fn decide_task(
        &self,
        tx: &mut PgConnection,
        case: &mut Case,
        actor: &Actor,
        decision: TaskDecision,
    ) -> Result<(), DispatchError> {
        self.apply(tx, case.id, &decision.deadlines).await?;
        self.settle(tx, case).await?;
        let event = &decision.event;
        let task = match event {
            TaskEvent::Completed { task, .. } | TaskEvent::Returned { task, .. } => task,
        };
        let entry = Entry {
            event_type: event.kind(),
            call_id: Some(task.call_id),
            department_id: task.department_id.clone(),
            before: event.before(),
            after: event.after(),
            payload: events::task_payload(event),
        };
        self.journal(case, actor, entry);
        Ok(())
    }

    /// Applies the automatic transitions of `case` (locked) and saves it.
    async fn settle(&self, tx: &mut PgConnection, case: &mut Case) -> Result<(), DispatchError> {
        escalation::settle(tx, case).await?;
        case.update_time = self.now;
        case_store::update(tx, case, None).await?;
        Ok(())
    }

    /// A change of `case` (locked): applies the automatic transitions, saves the case and
    /// keeps the entry for the journal.
    pub(crate) async fn record(
        &self,
        tx: &mut PgConnection,
        case: &mut Case,
        actor: &Actor,
        entry: Entry,
    ) -> Result<(), DispatchError> {
        self.settle(tx, case).await?;
        self.journal(case, actor, entry);
        Ok(())
    }

    /// Keeps the entry for the journal, with `case` as it is now (already saved).
    pub(crate) fn journal(&self, case: &Case, actor: &Actor, entry: Entry) {
        let change = Change {
            case_id: case.id,
            street_id: case.street_id.clone(),
            call_id: entry.call_id,
            department_id: entry.department_id,
            event_type: entry.event_type.as_str(),
            actor: actor.clone(),
            occur_time: self.now,
            case_state: case.state,
            before: entry.before,
            after: entry.after,
            payload: encode(entry.payload),
        };
        self.journal.lock().unwrap_or_else(PoisonError::into_inner).push(change);
    }

    /// Writes the journal: the request's last statements before the commit.
    async fn flush(&self, tx: &mut PgConnection) -> Result<(), DispatchError> {
        let changes = std::mem::take(&mut *self.journal.lock().unwrap_or_else(PoisonError::into_inner));
        journal::record_all(tx, changes).await?;
        Ok(())
    }
}

/// No look-ups.
pub(super) async fn none() -> Result<(), DispatchError> {
    Ok(())
}

impl Dispatch {
    /// Runs one mutating request down the write path (see the module docs): `lookups`
    /// unless `key` replays a first result, then `body` in the transaction that journals
    /// it and stores its result.
    pub(super) async fn write<M, L, LF, F>(&self, key: &Idempotency, lookups: LF, body: F) -> Result<M, DispatchError>
    where
        M: prost::Message + Default + Send + 'static,
        L: Send + 'static,
        LF: Future<Output = Result<L, DispatchError>>,
        F: for<'c> FnOnce(&'c mut PgConnection, Write, L) -> TxFuture<'c, M, DispatchError> + Send + 'static,
    {
        let write = Write::new(self.now(), Staged::new(self.d.scheduler.clone()));
        let in_tx = write.clone();
        // First results carry the street's unmasked view of the reporter: sealed at rest
        // with the reporter key, like the reporter column itself.
        let key = key.clone().sealed(std::sync::Arc::new(self.d.cipher.clone()));
        let result = minhu_store::write(&self.d.pool, &key, lookups, move |tx, looked_up| {
            Box::pin(async move {
                let result = body(&mut *tx, in_tx.clone(), looked_up).await?;
                in_tx.flush(tx).await?;
                Ok(result)
            })
        })
        .await?;
        write.staged.index().await;
        Ok(result)
    }
}
