//! Consultation (协商) and its tasks: progress (进度), feedback (反馈) and its review (审核).

use minhu_grpc::{FieldViolations, Principal};
use minhu_proto::dispatch::v1::{self as pb, event::Payload};
use serde_json::json;
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use super::{Dispatch, Entry, RPCS, caller, cases::present, convert, readable_case, require_street, uuid, write};
use crate::{
    deadlines as scheduled,
    domain::events::EventKind,
    domain::{
        access,
        deadlines::{self, Timeliness},
        model::{
            Consultation, Feedback, FeedbackState, Place, RectificationState, ReviewDecision, Task, TaskKind, TaskState,
        },
        state,
    },
    error::DispatchError,
    events::ToProto as _,
    store::{calls, cases::CaseRow, closing, tasks},
};

/// A task, locked with its case, that `p` may read.
async fn locked_task(conn: &mut PgConnection, p: &Principal, id: Uuid) -> Result<(CaseRow, Task), DispatchError> {
    let case_id = tasks::case_of(conn, id).await?.ok_or_else(|| DispatchError::not_found("task", id))?;
    let (row, _) = readable_case(conn, p, case_id, true).await.map_err(|e| e.not_found_as("task", id))?;
    let task = tasks::get(conn, id, true).await?.ok_or_else(|| DispatchError::not_found("task", id))?;
    Ok((row, task))
}

pub(super) async fn record_consultation(
    s: &Dispatch,
    r: Request<pb::RecordConsultationRequest>,
) -> Result<pb::RecordConsultationResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let case_id = uuid("case_id", &req.case_id)?;
    let now = s.now();
    let c = req.consultation.clone().unwrap_or_default();
    let mut v = FieldViolations::new();
    let meeting = convert::time(c.meeting_time.as_ref());
    v.check(meeting.is_some(), "consultation.meeting_time", "is required");
    v.check(!c.attendee_person_ids.is_empty(), "consultation.attendee_person_ids", "must name who attended");
    let analysis = v.required_text("consultation.analysis", &c.analysis, 5000).to_owned();
    let plan = v.optional_text("consultation.plan", &c.plan, 5000).to_owned();
    let mut specs = Vec::new();
    for (i, t) in req.tasks.iter().enumerate() {
        let f = |n: &str| format!("tasks[{i}].{n}");
        let call_id = Uuid::parse_str(&t.call_id).ok();
        v.check(call_id.is_some(), &f("call_id"), "is not a valid call id");
        let description = v.required_text(&f("description"), &t.description, 2000).to_owned();
        let window = t.window.unwrap_or_default();
        let (start, end) = (convert::time(window.start_time.as_ref()), convert::time(window.end_time.as_ref()));
        v.check(start.is_some(), &f("window.start_time"), "is required");
        match (start, end) {
            (_, None) => v.add(f("window.end_time"), "is required"),
            (Some(a), Some(b)) if b <= a => v.add(f("window.end_time"), "must be after the start"),
            (_, Some(b)) if b <= now => v.add(f("window.end_time"), "must be in the future"),
            _ => {}
        }
        if let (Some(call_id), Some(start), Some(end)) = (call_id, start, end) {
            specs.push((call_id, description, start, end));
        }
    }
    v.into_result()?;
    let meeting = meeting.unwrap_or(now);
    let key = RPCS.idempotency("RecordConsultation", &p, &req.request_id, &req)?;
    let dispatch = s.clone();
    let write = s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, _) = readable_case(tx, &p, case_id, true).await?;
            require_street(&p, &row.case, "record consultations")?;
            let next = state::consult(row.case.state, !specs.is_empty())?;
            let actor = convert::actor(&p);
            let mut consultation = Consultation {
                id: Uuid::now_v7(),
                case_id,
                meeting_time: meeting,
                place: c.place.as_ref().map_or_else(Place::default, |pl| Place {
                    address: pl.address.clone(),
                    location: pl.location.as_ref().map(convert::point),
                }),
                attendee_person_ids: c.attendee_person_ids.clone(),
                analysis,
                plan,
                task_ids: vec![],
                recorded_by: actor.clone(),
                create_time: now,
            };
            let mut new_tasks = Vec::new();
            for (i, (call_id, description, start, end)) in specs.into_iter().enumerate() {
                let call = calls::get(tx, call_id, false).await?.filter(|k| k.case_id == case_id);
                let Some(call) = call else {
                    return Err(DispatchError::field(format!("tasks[{i}].call_id"), "is not a call of this case"));
                };
                state::require_signed(call.state)?;
                new_tasks.push(Task {
                    id: Uuid::now_v7(),
                    case_id,
                    call_id,
                    department_id: call.department_id.clone(),
                    kind: TaskKind::Regular,
                    consultation_id: Some(consultation.id),
                    rectification_id: None,
                    description,
                    window_start: start,
                    window_end: end,
                    state: TaskState::Open,
                    overdue: false,
                    completed_on_time: false,
                    progress_reports: vec![],
                    feedback: vec![],
                    create_time: now,
                    update_time: now,
                    complete_time: None,
                });
            }
            consultation.task_ids = new_tasks.iter().map(|t| t.id).collect();
            tasks::insert_consultation(tx, &consultation).await?;
            let before = json!({"case": {"state": row.case.state}});
            row.case.state = next;
            let payload = Payload::ConsultationRecorded(pb::ConsultationRecorded {
                consultation_id: consultation.id.to_string(),
                attendee_person_ids: consultation.attendee_person_ids.clone(),
                task_ids: consultation.task_ids.iter().map(|t| t.to_string()).collect(),
            });
            let after = json!({"consultation": consultation, "case": {"state": next}});
            let entry = Entry {
                event_type: EventKind::ConsultationRecorded,
                call_id: None,
                department_id: String::new(),
                before,
                after,
                payload,
            };
            // The tasks exist before the consultation is journaled, so its settle (→ HANDLING) sees them.
            for t in &new_tasks {
                tasks::insert(tx, t).await?;
                w.schedule(tx, scheduled::task(t, now)).await?;
            }
            w.record(tx, &mut row.case, &actor, entry).await?;
            for t in &new_tasks {
                let payload = Payload::TaskCreated(pb::TaskCreated {
                    task_id: t.id.to_string(),
                    kind: t.kind.to_proto(),
                    rectification_id: String::new(),
                    window: Some(convert::range_pb(t.window_start, t.window_end)),
                });
                let entry = Entry {
                    event_type: EventKind::TaskCreated,
                    call_id: Some(t.call_id),
                    department_id: t.department_id.clone(),
                    before: json!({}),
                    after: json!({"task": t}),
                    payload,
                };
                w.record(tx, &mut row.case, &actor, entry).await?;
            }
            Ok(pb::RecordConsultationResponse {
                consultation: Some(convert::consultation_pb(&consultation)),
                tasks: new_tasks.iter().map(convert::task_pb).collect(),
                case: Some(present(&dispatch, tx, &p, case_id).await?),
            })
        })
    });
    write.await
}

pub(super) async fn get_task(s: &Dispatch, r: Request<pb::GetTaskRequest>) -> Result<pb::Task, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("task_id", &req.task_id)?;
    let mut conn = s.d.pool.acquire().await?;
    let case_id = tasks::case_of(&mut conn, id).await?.ok_or_else(|| DispatchError::not_found("task", id))?;
    readable_case(&mut conn, &p, case_id, false).await.map_err(|e| e.not_found_as("task", id))?;
    let task = tasks::get(&mut conn, id, false).await?.ok_or_else(|| DispatchError::not_found("task", id))?;
    Ok(convert::task_pb(&task))
}

pub(super) async fn list_tasks(
    s: &Dispatch,
    r: Request<pb::ListTasksRequest>,
) -> Result<pb::ListTasksResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let scope = super::cases::scope(&p)?;
    let opt = |field: &str, v: &str| if v.is_empty() { Ok(None) } else { uuid(field, v).map(Some) };
    let mut states = Vec::new();
    for (i, st) in req.states.iter().enumerate() {
        match pb::TaskState::try_from(*st).ok().filter(|s| *s != pb::TaskState::Unspecified) {
            Some(s) => states.push(s.as_str_name().to_owned()),
            None => return Err(DispatchError::field(format!("states[{i}]"), "is not a known state")),
        }
    }
    let range = req.window_end_range.as_ref();
    let q = tasks::TaskQuery {
        case_id: opt("case_id", &req.case_id)?,
        department_id: req.department_id.clone(),
        call_id: opt("call_id", &req.call_id)?,
        states,
        kind: pb::TaskKind::try_from(req.kind)
            .ok()
            .filter(|k| *k != pb::TaskKind::Unspecified)
            .map(|k| k.as_str_name().to_owned())
            .unwrap_or_default(),
        overdue_only: req.overdue_only,
        window_end_from: convert::time(range.and_then(|r| r.start_time.as_ref())),
        window_end_to: convert::time(range.and_then(|r| r.end_time.as_ref())),
    };
    let fingerprint = format!("{q:?}");
    let page =
        RPCS.page::<(chrono::DateTime<chrono::Utc>, Uuid)>(req.page_size, &req.page_token, &["tasks", &fingerprint])?;
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, total) = tasks::list(&mut conn, &scope, &q, page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |t| (t.window_end, t.id));
    Ok(pb::ListTasksResponse {
        tasks: rows.iter().map(convert::task_pb).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

/// The attachments of this case named by `ids` (INVALID_ARGUMENT for any other).
pub(super) async fn case_files(
    conn: &mut PgConnection,
    case_id: Uuid,
    ids: &[String],
) -> Result<Vec<crate::domain::model::AttachmentRef>, DispatchError> {
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let field = format!("attachment_ids[{i}]");
        let id = minhu_grpc::uuid(&field, id)?;
        match crate::store::attachments::get(conn, id).await? {
            Some(a) if a.case_id == Some(case_id) => out.push(a.file),
            _ => return Err(DispatchError::field(field, "is not an attachment of this case")),
        }
    }
    Ok(out)
}

pub(super) async fn report_progress(
    s: &Dispatch,
    r: Request<pb::ReportProgressRequest>,
) -> Result<pb::Task, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("task_id", &req.task_id)?;
    let mut v = FieldViolations::new();
    let text = v.required_text("text", &req.text, 5000).to_owned();
    v.into_result()?;
    let key = RPCS.idempotency("ReportProgress", &p, &req.request_id, &req)?;
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, mut task) = locked_task(tx, &p, id).await?;
            if !access::is_department_of(&p, &task.department_id) {
                return Err(DispatchError::denied("only the task's department reports progress"));
            }
            state::report_progress(task.state)?;
            let files = case_files(tx, row.case.id, &req.attachment_ids).await?;
            let note = crate::domain::model::ProgressReport {
                id: Uuid::now_v7(),
                text,
                attachments: files,
                reported_by: convert::person(&p),
                create_time: now,
            };
            tasks::insert_progress(tx, id, &note).await?;
            task.update_time = now;
            tasks::update(tx, &task).await?;
            let payload = Payload::ProgressReported(pb::ProgressReported {
                task_id: id.to_string(),
                progress_report_id: note.id.to_string(),
            });
            let entry = Entry {
                event_type: EventKind::ProgressReported,
                call_id: Some(task.call_id),
                department_id: task.department_id.clone(),
                before: json!({}),
                after: json!({"progress_report": note}),
                payload,
            };
            w.record(tx, &mut row.case, &convert::actor(&p), entry).await?;
            let task = tasks::get(tx, id, false).await?.ok_or_else(|| DispatchError::not_found("task", id))?;
            Ok(convert::task_pb(&task))
        })
    })
    .await
}

pub(super) async fn submit_feedback(
    s: &Dispatch,
    r: Request<pb::SubmitFeedbackRequest>,
) -> Result<pb::Feedback, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("task_id", &req.task_id)?;
    let mut v = FieldViolations::new();
    let text = v.required_text("text", &req.text, 5000).to_owned();
    let opinion = v.required_text("handling_opinion", &req.handling_opinion, 5000).to_owned();
    v.into_result()?;
    let key = RPCS.idempotency("SubmitFeedback", &p, &req.request_id, &req)?;
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, mut task) = locked_task(tx, &p, id).await?;
            if !access::is_department_of(&p, &task.department_id) {
                return Err(DispatchError::denied("only the task's department submits feedback"));
            }
            let before = json!({"task": {"id": id, "state": task.state}});
            task.state = state::submit_feedback(task.state)?;
            let files = case_files(tx, row.case.id, &req.attachment_ids).await?;
            let on_time = deadlines::feedback_outcome(now, task.window_end) == Timeliness::OnTime;
            let feedback = Feedback {
                id: Uuid::now_v7(),
                task_id: id,
                case_id: row.case.id,
                department_id: task.department_id.clone(),
                text,
                handling_opinion: opinion,
                attachments: files,
                is_rectification: task.kind == TaskKind::Rectification,
                state: FeedbackState::Submitted,
                on_time,
                submitted_by: convert::person(&p),
                submit_time: now,
                review_comment: String::new(),
                reviewed_by: None,
                review_time: None,
            };
            tasks::save_feedback(tx, &feedback).await?;
            task.update_time = now;
            tasks::update(tx, &task).await?;
            sync_rectification(tx, &task, now).await?;
            let payload = Payload::FeedbackSubmitted(pb::FeedbackSubmitted {
                task_id: id.to_string(),
                feedback_id: feedback.id.to_string(),
                on_time,
                is_rectification: feedback.is_rectification,
            });
            let after = json!({"task": {"id": id, "state": task.state}, "feedback": feedback});
            let entry = Entry {
                event_type: EventKind::FeedbackSubmitted,
                call_id: Some(task.call_id),
                department_id: task.department_id.clone(),
                before,
                after,
                payload,
            };
            w.record(tx, &mut row.case, &convert::actor(&p), entry).await?;
            Ok(convert::feedback_pb(&feedback))
        })
    })
    .await
}

/// A rectification task's state carries over to its rectification.
async fn sync_rectification(
    tx: &mut PgConnection,
    task: &Task,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DispatchError> {
    let Some(rid) = task.rectification_id else { return Ok(()) };
    if let Some(mut rect) = closing::rectification(tx, rid).await?
        && rect.state != RectificationState::Closed
    {
        rect.state = state::rectification_after_task(task.state);
        rect.update_time = now;
        closing::save_rectification(tx, &rect).await?;
    }
    Ok(())
}

pub(super) async fn review_feedback(
    s: &Dispatch,
    r: Request<pb::ReviewFeedbackRequest>,
) -> Result<pb::Feedback, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("feedback_id", &req.feedback_id)?;
    let decision = pb::ReviewDecision::try_from(req.decision).ok().and_then(|d| ReviewDecision::parse(d.as_str_name()));
    let Some(decision) = decision else { return Err(DispatchError::field("decision", "must be ACCEPT or RETURN")) };
    let mut v = FieldViolations::new();
    let comment = v.optional_text("comment", &req.comment, 2000).to_owned();
    v.check(decision != ReviewDecision::Return || !comment.is_empty(), "comment", "is required when returning");
    v.into_result()?;
    let key = RPCS.idempotency("ReviewFeedback", &p, &req.request_id, &req)?;
    let write = s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let task_id =
                tasks::feedback(tx, id).await?.ok_or_else(|| DispatchError::not_found("feedback", id))?.task_id;
            let (mut row, mut task) = locked_task(tx, &p, task_id).await.map_err(|e| e.not_found_as("feedback", id))?;
            require_street(&p, &row.case, "review feedback")?;
            let mut feedback =
                tasks::feedback(tx, id).await?.ok_or_else(|| DispatchError::not_found("feedback", id))?;
            let decision = task.review(&mut feedback, decision, comment, convert::person(&p), now)?;
            tasks::save_feedback(tx, &feedback).await?;
            tasks::update(tx, &task).await?;
            sync_rectification(tx, &task, now).await?;
            w.decide_task(tx, &mut row.case, &convert::actor(&p), decision).await?;
            Ok(convert::feedback_pb(&feedback))
        })
    });
    write.await
}
