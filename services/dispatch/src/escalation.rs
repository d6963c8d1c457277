//! Escalations (deadline handlers): what the service records by itself when a deadline
//! passes — a sign deadline (签收超时), a check-in window (不到位 and the tally), a task
//! window (任务超时), a rectification's due time. Each takes the transaction and the time
//! it runs at, is idempotent (a second run finds nothing to do and records nothing), and
//! writes the event and trail entry with the dispatch service as actor. The durable
//! deadlines of [`crate::deadlines`] fire them; each decides again, from the rows it locks,
//! whether there is anything left to record.
//!
//! Each escalation is a `dispatch.escalate` span (inside the engine's `deadline.fire`):
//! its kind, the call/task/rectification and the case ids, and whether it recorded
//! anything — ids only, never a reporter's data.

use chrono::{DateTime, Utc};
use minhu_proto::dispatch::v1::{self as pb, event::Payload};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::{
        deadlines::passed,
        model::{Actor, CallState, CheckInStatus, RectificationState, TaskKind, TaskState},
        state,
    },
    error::DispatchError,
    events::ToProto as _,
    events::{call_payload, code, encode, ts},
    store::{
        calls, cases, closing,
        journal::{self, Change},
        tasks,
    },
};

/// Recomputes the automatic transitions of a case and returns its (possibly new) state:
/// three statements, one per kind of child, whatever the case holds.
pub async fn settle(
    tx: &mut PgConnection,
    case: &mut crate::domain::model::Case,
) -> Result<crate::domain::model::CaseState, sqlx::Error> {
    let calls = calls::states_of_case(tx, case.id).await?;
    let tasks = tasks::bare_of_case(tx, case.id).await?;
    let rects = closing::rectifications(tx, case.id).await?;
    let active: Vec<_> = calls.iter().filter(|(state, _)| *state != CallState::Withdrawn).collect();
    let regular: Vec<_> = tasks.iter().filter(|t| t.kind == TaskKind::Regular).collect();
    let facts = state::CaseFacts {
        active_calls: active.len(),
        gathered_calls: active.iter().filter(|(state, closed)| state.is_signed() && *closed).count(),
        tasks: regular.len(),
        open_tasks: regular.iter().filter(|t| t.is_open()).count(),
        open_rectifications: rects.iter().filter(|r| r.state != RectificationState::Closed).count(),
    };
    case.state = state::settle(case.state, facts);
    case.overdue = active.iter().any(|(state, _)| *state == CallState::SignOverdue)
        || tasks.iter().any(|t| t.overdue && t.state != TaskState::Accepted)
        || rects
            .iter()
            .any(|r| r.overdue && !matches!(r.state, RectificationState::Accepted | RectificationState::Closed));
    Ok(case.state)
}

/// The sign deadline of `call_id` passed unsigned at `now`: PENDING_SIGN → SIGN_OVERDUE.
/// Returns whether anything was recorded.
#[tracing::instrument(
    name = "dispatch.escalate",
    skip_all,
    fields(
        minhu.escalation.kind = "sign_overdue",
        minhu.call.id = %call_id,
        minhu.case.id = tracing::field::Empty,
        minhu.escalation.recorded = false,
    )
)]
pub async fn mark_sign_overdue(
    tx: &mut PgConnection,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DispatchError> {
    let Some(case_id) = calls::case_of(tx, call_id).await? else { return Ok(false) };
    tracing::Span::current().record("minhu.case.id", tracing::field::display(case_id));
    let Some(mut row) = cases::get(tx, case_id, true).await? else { return Ok(false) };
    let Some(mut call) = calls::get(tx, call_id, true).await? else { return Ok(false) };
    let Some(decision) = call.mark_sign_overdue(now) else { return Ok(false) };
    calls::update(tx, &call).await?;
    settle(tx, &mut row.case).await?;
    row.case.update_time = now;
    cases::update(tx, &row.case, None).await?;
    let event = &decision.event;
    journal::record(
        tx,
        Change {
            case_id,
            street_id: call.street_id.clone(),
            call_id: Some(call.id),
            department_id: call.department_id.clone(),
            event_type: event.kind().as_str(),
            actor: Actor::dispatch_service(),
            occur_time: now,
            case_state: row.case.state,
            before: event.before(),
            after: event.after(row.case.overdue),
            payload: encode(call_payload(event)),
        },
    )
    .await?;
    tracing::Span::current().record("minhu.escalation.recorded", true);
    Ok(true)
}

/// The check-in window of `call_id` closed at `now`: every pending person is absent
/// (不到位, one event each), then the tally (one CHECK_IN_CLOSED event); the case may move
/// on to consultation. Returns whether anything was recorded.
#[tracing::instrument(
    name = "dispatch.escalate",
    skip_all,
    fields(
        minhu.escalation.kind = "check_in_closed",
        minhu.call.id = %call_id,
        minhu.case.id = tracing::field::Empty,
        minhu.escalation.recorded = false,
    )
)]
pub async fn close_check_in(tx: &mut PgConnection, call_id: Uuid, now: DateTime<Utc>) -> Result<bool, DispatchError> {
    let Some(case_id) = calls::case_of(tx, call_id).await? else { return Ok(false) };
    tracing::Span::current().record("minhu.case.id", tracing::field::display(case_id));
    let Some(mut row) = cases::get(tx, case_id, true).await? else { return Ok(false) };
    let Some(mut call) = calls::get(tx, call_id, true).await? else { return Ok(false) };
    if call.check_in_closed
        || call.state == crate::domain::model::CallState::Withdrawn
        || now < call.check_in_close_time
    {
        return Ok(false);
    }
    let actor = Actor::dispatch_service();
    let mut changes = Vec::new();
    let pending: Vec<usize> = (0..call.designations.len())
        .filter(|&i| call.designations[i].check_in_status == CheckInStatus::Pending)
        .collect();
    for i in pending {
        call.designations[i].check_in_status = CheckInStatus::Absent;
        call.update_time = now;
        calls::update(tx, &call).await?;
        let person_id = call.designations[i].person.id.clone();
        let payload = Payload::CheckIn(pb::CheckInResult {
            person_id: person_id.clone(),
            status: code(pb::CheckInStatus::from_str_name("CHECK_IN_STATUS_ABSENT")),
            report_time: ts(call.report_time),
            ..Default::default()
        });
        changes.push(Change {
            case_id,
            street_id: call.street_id.clone(),
            call_id: Some(call.id),
            department_id: call.department_id.clone(),
            event_type: pb::EventType::CheckInAbsent.as_str_name(),
            actor: actor.clone(),
            occur_time: now,
            case_state: row.case.state,
            before: json!({"designation": {"person_id": person_id, "check_in_status": CheckInStatus::Pending}}),
            after: json!({"designation": {"person_id": person_id, "check_in_status": CheckInStatus::Absent}}),
            payload: encode(payload),
        });
    }
    let required = call.staff_requirement.count;
    let count = |s: CheckInStatus| call.designations.iter().filter(|d| d.check_in_status == s).count() as i32;
    let (on_time, late, absent) =
        (count(CheckInStatus::OnTime), count(CheckInStatus::Late), count(CheckInStatus::Absent));
    call.check_in_closed = true;
    call.shortfall_count = (required - call.designations.len() as i32).max(0);
    call.update_time = now;
    calls::update(tx, &call).await?;
    let before_state = row.case.state;
    settle(tx, &mut row.case).await?;
    row.case.update_time = now;
    cases::update(tx, &row.case, None).await?;
    let payload = Payload::CheckInClosed(pb::CheckInClosed {
        required_count: required,
        on_time_count: on_time,
        late_count: late,
        absent_count: absent,
        shortfall_count: call.shortfall_count,
        signed_on_time: call.state.is_signed() && !call.signed_late,
    });
    changes.push(Change {
        case_id,
        street_id: call.street_id.clone(),
        call_id: Some(call.id),
        department_id: call.department_id.clone(),
        event_type: pb::EventType::CheckInClosed.as_str_name(),
        actor,
        occur_time: now,
        case_state: row.case.state,
        before: json!({"call": {"id": call.id, "check_in_closed": false}, "case": {"state": before_state}}),
        after: json!({"call": {"id": call.id, "check_in_closed": true, "shortfall_count": call.shortfall_count},
                          "case": {"state": row.case.state}}),
        payload: encode(payload),
    });
    // The absences and the tally, with the feed counter taken once, last.
    journal::record_all(tx, changes).await?;
    tracing::Span::current().record("minhu.escalation.recorded", true);
    Ok(true)
}

/// A task's window ended at `now` before completion (任务超时): flagged overdue, for good.
/// Returns whether anything was recorded.
#[tracing::instrument(
    name = "dispatch.escalate",
    skip_all,
    fields(
        minhu.escalation.kind = "task_overdue",
        minhu.task.id = %task_id,
        minhu.case.id = tracing::field::Empty,
        minhu.escalation.recorded = false,
    )
)]
pub async fn mark_task_overdue(
    tx: &mut PgConnection,
    task_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DispatchError> {
    let Some(case_id) = tasks::case_of(tx, task_id).await? else { return Ok(false) };
    tracing::Span::current().record("minhu.case.id", tracing::field::display(case_id));
    let Some(mut row) = cases::get(tx, case_id, true).await? else { return Ok(false) };
    let Some(mut task) = tasks::get(tx, task_id, true).await? else { return Ok(false) };
    if task.overdue || !passed(task.window_end, now) || !task.is_open() {
        return Ok(false);
    }
    task.overdue = true;
    task.update_time = now;
    tasks::update(tx, &task).await?;
    settle(tx, &mut row.case).await?;
    row.case.update_time = now;
    cases::update(tx, &row.case, None).await?;
    let payload = Payload::TaskOverdue(pb::TaskOverdue {
        task_id: task.id.to_string(),
        window_end_time: ts(task.window_end),
        kind: task.kind.to_proto(),
    });
    journal::record(
        tx,
        Change {
            case_id,
            street_id: row.case.street_id.clone(),
            call_id: Some(task.call_id),
            department_id: task.department_id.clone(),
            event_type: pb::EventType::TaskOverdue.as_str_name(),
            actor: Actor::dispatch_service(),
            occur_time: now,
            case_state: row.case.state,
            before: json!({"task": {"id": task.id, "overdue": false}}),
            after: json!({"task": {"id": task.id, "overdue": true}, "case": {"overdue": row.case.overdue}}),
            payload: encode(payload),
        },
    )
    .await?;
    tracing::Span::current().record("minhu.escalation.recorded", true);
    Ok(true)
}

/// A rectification's due time (整改时限) passed at `now` before the street accepted it:
/// flagged overdue, for good, which also lets the street re-rate the department. Returns
/// whether anything was recorded.
#[tracing::instrument(
    name = "dispatch.escalate",
    skip_all,
    fields(
        minhu.escalation.kind = "rectification_overdue",
        minhu.rectification.id = %rectification_id,
        minhu.case.id = tracing::field::Empty,
        minhu.escalation.recorded = false,
    )
)]
pub async fn mark_rectification_overdue(
    tx: &mut PgConnection,
    rectification_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DispatchError> {
    let Some(found) = closing::rectification(tx, rectification_id).await? else { return Ok(false) };
    tracing::Span::current().record("minhu.case.id", tracing::field::display(found.case_id));
    // The case row's lock serializes this with every request on the case; re-read under it.
    let Some(mut row) = cases::get(tx, found.case_id, true).await? else { return Ok(false) };
    let Some(mut rect) = closing::rectification(tx, rectification_id).await? else { return Ok(false) };
    if rect.overdue
        || !passed(rect.due_time, now)
        || matches!(rect.state, RectificationState::Accepted | RectificationState::Closed)
    {
        return Ok(false);
    }
    rect.overdue = true;
    rect.update_time = now;
    closing::save_rectification(tx, &rect).await?;
    settle(tx, &mut row.case).await?;
    row.case.update_time = now;
    cases::update(tx, &row.case, None).await?;
    let call_id = tasks::get(tx, rect.task_id, false).await?.map(|t| t.call_id);
    let payload = Payload::RectificationOverdue(pb::RectificationOverdue {
        rectification_id: rect.id.to_string(),
        due_time: ts(rect.due_time),
    });
    journal::record(
        tx,
        Change {
            case_id: rect.case_id,
            street_id: row.case.street_id.clone(),
            call_id,
            department_id: rect.department_id.clone(),
            event_type: pb::EventType::RectificationOverdue.as_str_name(),
            actor: Actor::dispatch_service(),
            occur_time: now,
            case_state: row.case.state,
            before: json!({"rectification": {"id": rect.id, "overdue": false}}),
            after: json!({"rectification": {"id": rect.id, "overdue": true}, "case": {"overdue": row.case.overdue}}),
            payload: encode(payload),
        },
    )
    .await?;
    tracing::Span::current().record("minhu.escalation.recorded", true);
    Ok(true)
}
