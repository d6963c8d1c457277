//! Event payloads (events.proto): the typed details each change carries, encoded for the
//! outbox. Built here, from domain records, by the api and the escalations alike.

use chrono::{DateTime, TimeDelta, Utc};
use minhu_proto::dispatch::v1::{self as pb, event::Payload};
use prost::Message as _;

use crate::domain::{
    events::{CallEvent, CaseEvent, TaskEvent},
    model::CaseState,
};

/// Timestamp of a time.
pub fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

/// Duration between two times.
pub fn duration(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<prost_types::Duration> {
    let d = to - from;
    Some(prost_types::Duration { seconds: d.num_seconds(), nanos: d.subsec_nanos() })
}

/// A domain code as its proto enum's number: the names are the same (see
/// [`named_enum`](crate::domain)), so the mapping is generated here once per enum.
pub trait ToProto {
    /// The proto number (0, UNSPECIFIED, for a name the contract lacks).
    fn to_proto(self) -> i32;
}

macro_rules! to_proto {
    ($($domain:ident => $pb:ty),+ $(,)?) => {
        $(impl ToProto for crate::domain::model::$domain {
            fn to_proto(self) -> i32 {
                <$pb>::from_str_name(self.as_str()).map_or(0, Into::into)
            }
        })+
    };
}

to_proto! {
    CaseState => pb::CaseState,
    Urgency => pb::Urgency,
    TriageDecision => pb::TriageDecision,
    CallState => pb::CallState,
    CheckInStatus => pb::CheckInStatus,
    TaskKind => pb::TaskKind,
    TaskState => pb::TaskState,
    FeedbackState => pb::FeedbackState,
    ReviewDecision => pb::ReviewDecision,
    Satisfaction => pb::Satisfaction,
    RectificationState => pb::RectificationState,
}

/// A proto enum's number from its name (0 for an unknown name).
pub fn code<E: Into<i32>>(e: Option<E>) -> i32 {
    e.map(Into::into).unwrap_or(0)
}

/// The outbox bytes of `payload`: an `Event` carrying only its details (the rest lives in
/// columns).
pub fn encode(payload: Payload) -> Vec<u8> {
    pb::Event { payload: Some(payload), ..Default::default() }.encode_to_vec()
}

/// `CASE_STATE_*` as its proto number.
pub fn case_state(s: CaseState) -> i32 {
    s.to_proto()
}

/// The feed's details of a call's change.
pub fn call_payload(event: &CallEvent) -> Payload {
    match event {
        CallEvent::Signed { call: view, sign_deadline, signed_time, sign_duration, .. } => {
            Payload::CallSigned(pb::CallSigned {
                on_time: view.signed_late != Some(true),
                sign_deadline: ts(*sign_deadline),
                signed_time: ts(*signed_time),
                sign_duration: delta(*sign_duration),
            })
        }
        CallEvent::SignOverdue { sign_deadline, .. } => {
            Payload::CallSignOverdue(pb::CallSignOverdue { sign_deadline: ts(*sign_deadline) })
        }
        CallEvent::Designated { after, replaced, .. } => Payload::RespondersDesignated(pb::RespondersDesignated {
            person_ids: after.designations.iter().map(|d| d.person.id.clone()).collect(),
            required_count: after.staff_requirement.count,
            replaced: *replaced,
        }),
        CallEvent::CheckedIn { after, report_time, lateness, .. } => Payload::CheckIn(pb::CheckInResult {
            person_id: after.person.id.clone(),
            status: after.check_in_status.to_proto(),
            report_time: ts(*report_time),
            check_in_time: after.check_in_time.and_then(ts),
            lateness: delta(*lateness),
            distance_meters: after.check_in_distance_meters,
        }),
        CallEvent::ContactShared { .. } => Payload::ContactShared(pb::ContactShared {}),
        CallEvent::InactionRecorded { person_id, note } => {
            Payload::InactionRecorded(pb::InactionRecorded { person_id: person_id.clone(), note: note.clone() })
        }
    }
}

fn delta(d: TimeDelta) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds: d.num_seconds(), nanos: d.subsec_nanos() })
}

/// The feed's details of a change of the case itself.
pub fn case_payload(event: &CaseEvent) -> Payload {
    match event {
        CaseEvent::Closed { solved_alone, departments, duration, .. } => Payload::CaseClosed(pb::CaseClosed {
            solved_by_street_alone: *solved_alone,
            department_ids: departments.clone(),
            duration: delta(*duration),
        }),
    }
}

/// The feed's details of a change of a task.
pub fn task_payload(event: &TaskEvent) -> Payload {
    match event {
        TaskEvent::Completed { task, feedback, .. } => Payload::TaskCompleted(pb::TaskCompleted {
            task_id: task.id.to_string(),
            feedback_id: feedback.id.to_string(),
            on_time: feedback.on_time,
            window_end_time: ts(task.window_end),
            feedback_submit_time: ts(feedback.submit_time),
            kind: task.kind.to_proto(),
            rectification_id: task.rectification_id.map(|r| r.to_string()).unwrap_or_default(),
        }),
        TaskEvent::Returned { task, feedback, .. } => Payload::FeedbackReturned(pb::FeedbackReturned {
            task_id: task.id.to_string(),
            feedback_id: feedback.id.to_string(),
            reason: feedback.review_comment.clone(),
            is_rectification: feedback.is_rectification,
        }),
    }
}
