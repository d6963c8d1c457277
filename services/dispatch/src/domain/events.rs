//! What a change decides: the typed event to journal (its kind, the records before and
//! after as the trail keeps them) and the deadlines it schedules or cancels. Aggregate
//! methods ([`super::call`]) return a [`Decision`]; the write path journals its event and
//! applies its deadline effects, so no handler picks an event type or a deadline kind.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{
    model::{Call, CallState, CaseState, CheckInStatus, Designation, Feedback, FeedbackState, Task, TaskState},
    named_enum,
};

named_enum! {
    /// The kind of a journalled change (events.proto `EventType`).
    EventKind {
        CaseCreated = "EVENT_TYPE_CASE_CREATED",
        CaseUpdated = "EVENT_TYPE_CASE_UPDATED",
        CasesLinked = "EVENT_TYPE_CASES_LINKED",
        CasesUnlinked = "EVENT_TYPE_CASES_UNLINKED",
        CaseTriaged = "EVENT_TYPE_CASE_TRIAGED",
        CallStarted = "EVENT_TYPE_CALL_STARTED",
        CallWithdrawn = "EVENT_TYPE_CALL_WITHDRAWN",
        CallSigned = "EVENT_TYPE_CALL_SIGNED",
        CallSignOverdue = "EVENT_TYPE_CALL_SIGN_OVERDUE",
        RespondersDesignated = "EVENT_TYPE_RESPONDERS_DESIGNATED",
        CheckInOnTime = "EVENT_TYPE_CHECK_IN_ON_TIME",
        CheckInLate = "EVENT_TYPE_CHECK_IN_LATE",
        CheckInAbsent = "EVENT_TYPE_CHECK_IN_ABSENT",
        CheckInClosed = "EVENT_TYPE_CHECK_IN_CLOSED",
        ContactShared = "EVENT_TYPE_CONTACT_SHARED",
        InactionRecorded = "EVENT_TYPE_INACTION_RECORDED",
        ConsultationRecorded = "EVENT_TYPE_CONSULTATION_RECORDED",
        TaskCreated = "EVENT_TYPE_TASK_CREATED",
        ProgressReported = "EVENT_TYPE_PROGRESS_REPORTED",
        FeedbackSubmitted = "EVENT_TYPE_FEEDBACK_SUBMITTED",
        FeedbackReturned = "EVENT_TYPE_FEEDBACK_RETURNED",
        TaskCompleted = "EVENT_TYPE_TASK_COMPLETED",
        TaskOverdue = "EVENT_TYPE_TASK_OVERDUE",
        CaseReportSubmitted = "EVENT_TYPE_CASE_REPORT_SUBMITTED",
        CallbackRecorded = "EVENT_TYPE_CALLBACK_RECORDED",
        RatingGiven = "EVENT_TYPE_RATING_GIVEN",
        RatingReplaced = "EVENT_TYPE_RATING_REPLACED",
        RectificationRequired = "EVENT_TYPE_RECTIFICATION_REQUIRED",
        RectificationOverdue = "EVENT_TYPE_RECTIFICATION_OVERDUE",
        AttachmentAdded = "EVENT_TYPE_ATTACHMENT_ADDED",
        CaseClosed = "EVENT_TYPE_CASE_CLOSED",
        CaseDetachedFromCluster = "EVENT_TYPE_CASE_DETACHED_FROM_CLUSTER",
        ClustersMerged = "EVENT_TYPE_CLUSTERS_MERGED",
    }
}

/// A durable deadline of a call, task or rectification ([`crate::deadlines`] has the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineKind {
    /// 签收时限.
    Sign,
    /// 报到: the check-in window's close.
    CheckIn,
    /// 任务时间段's end.
    Task,
    /// 整改时限.
    Rectification,
}

/// What a change does to deadlines, in its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadlineEffect {
    /// Schedules (or moves) the deadline of `kind` for `subject`, due at `due`.
    Schedule { kind: DeadlineKind, subject: Uuid, due: DateTime<Utc> },
    /// Cancels it, if pending.
    Cancel { kind: DeadlineKind, subject: Uuid },
    /// Cancels every pending deadline of the case's calls, tasks and rectifications.
    CancelAll,
}

/// A call's state as the trail shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallView {
    /// The call.
    pub id: Uuid,
    /// Its state.
    pub state: CallState,
    /// Signed after the deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_late: Option<bool>,
    /// Why withdrawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdraw_reason: Option<String>,
}

/// A change of a call, typed: what the journal writes to the trail (before and after) and
/// to the feed (the event's details).
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// 签收.
    Signed {
        before: CallState,
        call: CallView,
        sign_deadline: DateTime<Utc>,
        signed_time: DateTime<Utc>,
        sign_duration: TimeDelta,
    },
    /// 签收超时.
    SignOverdue { before: CallState, call: CallView, sign_deadline: DateTime<Utc> },
    /// 拟定人选: the call before and after.
    Designated { before: Box<Call>, after: Box<Call>, replaced: bool },
    /// 报到, on time or late.
    CheckedIn { before: Box<Designation>, after: Box<Designation>, report_time: DateTime<Utc>, lateness: TimeDelta },
    /// 推送群众联系方式.
    ContactShared { call: Uuid },
    /// 到位不作为.
    InactionRecorded { person_id: String, note: String },
}

/// One change decided by an aggregate: its event and its deadline effects.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision<E = CallEvent> {
    /// What to journal.
    pub event: E,
    /// What to schedule and cancel with it.
    pub deadlines: Vec<DeadlineEffect>,
}

/// `{"call": …, "case": {"overdue": …}}`.
#[derive(Serialize)]
struct OfCall<T> {
    call: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    case: Option<CaseOverdue>,
}

#[derive(Serialize)]
struct CaseOverdue {
    overdue: bool,
}

/// `{"designation": …}`.
#[derive(Serialize)]
struct OfDesignation<T> {
    designation: T,
}

/// A call with its designations (kept in their own table, so not in the call's document).
#[derive(Serialize)]
struct WithDesignations<'a> {
    #[serde(flatten)]
    call: &'a Call,
    designations: &'a [Designation],
}

#[derive(Serialize)]
struct ContactView {
    id: Uuid,
    contact_shared: bool,
}

#[derive(Serialize)]
struct InactionView<'a> {
    person_id: &'a str,
    inaction_recorded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    inaction_note: Option<&'a str>,
}

fn value(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

fn of_call<T: Serialize>(call: T) -> Value {
    value(OfCall { call, case: None })
}

fn full(c: &Call) -> Value {
    of_call(WithDesignations { call: c, designations: &c.designations })
}

impl CallEvent {
    /// Its kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Signed { .. } => EventKind::CallSigned,
            Self::SignOverdue { .. } => EventKind::CallSignOverdue,
            Self::Designated { .. } => EventKind::RespondersDesignated,
            Self::CheckedIn { after, .. } if after.check_in_status == CheckInStatus::Late => EventKind::CheckInLate,
            Self::CheckedIn { .. } => EventKind::CheckInOnTime,
            Self::ContactShared { .. } => EventKind::ContactShared,
            Self::InactionRecorded { .. } => EventKind::InactionRecorded,
        }
    }

    /// The changed records before, as the trail keeps them.
    pub fn before(&self) -> Value {
        match self {
            Self::Signed { before, call, .. } | Self::SignOverdue { before, call, .. } => {
                of_call(CallView { id: call.id, state: *before, signed_late: None, withdraw_reason: None })
            }
            Self::Designated { before, .. } => full(before),
            Self::CheckedIn { before, .. } => value(OfDesignation { designation: before }),
            Self::ContactShared { call } => of_call(ContactView { id: *call, contact_shared: false }),
            Self::InactionRecorded { person_id, .. } => value(OfDesignation {
                designation: InactionView { person_id, inaction_recorded: false, inaction_note: None },
            }),
        }
    }

    /// The changed records after; `case_overdue` is the case's flag once settled.
    pub fn after(&self, case_overdue: bool) -> Value {
        match self {
            Self::Signed { call, .. } => of_call(call),
            Self::SignOverdue { call, .. } => value(OfCall { call, case: Some(CaseOverdue { overdue: case_overdue }) }),
            Self::Designated { after, .. } => full(after),
            Self::CheckedIn { after, .. } => value(OfDesignation { designation: after }),
            Self::ContactShared { call } => of_call(ContactView { id: *call, contact_shared: true }),
            Self::InactionRecorded { person_id, note } => value(OfDesignation {
                designation: InactionView { person_id, inaction_recorded: true, inaction_note: Some(note) },
            }),
        }
    }
}

/// A change of the case itself, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseEvent {
    /// 办结.
    Closed {
        before: CaseState,
        after: CaseState,
        close_summary: String,
        /// Solved at the street, no department called.
        solved_alone: bool,
        /// The departments the case called.
        departments: Vec<String>,
        /// From intake to close.
        duration: TimeDelta,
    },
}

/// A change of the case decided by [`Case`](super::model::Case)'s rules.
pub type CaseDecision = Decision<CaseEvent>;

#[derive(Serialize)]
struct OfCase<T> {
    case: T,
}

#[derive(Serialize)]
struct StateView<'a> {
    state: CaseState,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_summary: Option<&'a str>,
}

impl CaseEvent {
    /// Its kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Closed { .. } => EventKind::CaseClosed,
        }
    }

    /// The case before, as the trail keeps it.
    pub fn before(&self) -> Value {
        match self {
            Self::Closed { before, .. } => value(OfCase { case: StateView { state: *before, close_summary: None } }),
        }
    }

    /// The case after.
    pub fn after(&self) -> Value {
        match self {
            Self::Closed { after, close_summary, .. } => {
                value(OfCase { case: StateView { state: *after, close_summary: Some(close_summary) } })
            }
        }
    }
}

/// A change of a task, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskEvent {
    /// 审核: the feedback accepted, the task completed.
    Completed { task: Box<Task>, feedback: Box<Feedback>, before: (TaskState, FeedbackState) },
    /// 审核: the feedback returned, the task open again.
    Returned { task: Box<Task>, feedback: Box<Feedback>, before: (TaskState, FeedbackState) },
}

/// A change of a task decided by its rules.
pub type TaskDecision = Decision<TaskEvent>;

#[derive(Serialize)]
struct ReviewView {
    task: IdState<TaskState>,
    feedback: IdState<FeedbackState>,
}

#[derive(Serialize)]
struct IdState<S> {
    id: Uuid,
    state: S,
}

impl TaskEvent {
    fn parts(&self) -> (&Task, &Feedback, (TaskState, FeedbackState)) {
        match self {
            Self::Completed { task, feedback, before } | Self::Returned { task, feedback, before } => {
                (task, feedback, *before)
            }
        }
    }

    /// Its kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Completed { .. } => EventKind::TaskCompleted,
            Self::Returned { .. } => EventKind::FeedbackReturned,
        }
    }

    /// The task and feedback states before.
    pub fn before(&self) -> Value {
        let (task, feedback, (t, f)) = self.parts();
        value(ReviewView { task: IdState { id: task.id, state: t }, feedback: IdState { id: feedback.id, state: f } })
    }

    /// And after.
    pub fn after(&self) -> Value {
        let (task, feedback, _) = self.parts();
        value(ReviewView {
            task: IdState { id: task.id, state: task.state },
            feedback: IdState { id: feedback.id, state: feedback.state },
        })
    }
}
