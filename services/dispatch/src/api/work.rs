//! The work and the end of a case: consultation (协商) and tasks, progress (进度), feedback
//! (反馈) and review (审核), the case report (办理报告), callback (回访), ratings (评价),
//! rectification (整改) and close (办结).

use minhu_grpc::{FieldViolations, Principal};
use minhu_proto::dispatch::v1::{self as pb, event::Payload};
use serde_json::json;
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use super::{Dispatch, Entry, caller, cases::present, convert, readable_case, require_street, uuid, RPCS, write};
use crate::{
    domain::events::EventKind,
    deadlines as scheduled,
    domain::{
        Refusal, access,
        deadlines::{self, Timeliness},
        model::{
            CallState, Callback, CaseReport, CaseState, Consultation, DepartmentResult, Feedback, FeedbackState, Place,
            Rating, Rectification, RectificationState, ReviewDecision, Satisfaction, Task, TaskKind, TaskState,
        },
        state,
    },
    error::DispatchError,
    events::{code, ts},
    store::{calls, cases::CaseRow, closing, tasks},
};

/// A task, locked with its case, that `p` may read.
async fn locked_task(conn: &mut PgConnection, p: &Principal, id: Uuid) -> Result<(CaseRow, Task), DispatchError> {
    let case_id = tasks::case_of(conn, id).await?.ok_or_else(|| DispatchError::not_found("task", id))?;
    let (row, _) = readable_case(conn, p, case_id, true).await.map_err(|e| e.not_found_as("task", id))?;
    let task = tasks::get(conn, id, true).await?.ok_or_else(|| DispatchError::not_found("task", id))?;
    Ok((row, task))
}

fn satisfaction(field: &str, value: i32) -> Result<Satisfaction, DispatchError> {
    pb::Satisfaction::try_from(value)
        .ok()
        .and_then(|s| Satisfaction::parse(s.as_str_name()))
        .ok_or_else(|| DispatchError::field(field, "must be SATISFIED, BASICALLY_SATISFIED or DISSATISFIED"))
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
                    kind: code(pb::TaskKind::from_str_name(t.kind.as_str())),
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
async fn case_files(
    conn: &mut PgConnection,
    case_id: Uuid,
    ids: &[String],
) -> Result<Vec<crate::domain::model::AttachmentRef>, DispatchError> {
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let field = format!("attachment_ids[{i}]");
        let id = Uuid::parse_str(id).map_err(|_| DispatchError::field(&field, "is not a valid id"))?;
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
            let (mut row, mut task) =
                locked_task(tx, &p, task_id).await.map_err(|e| e.not_found_as("feedback", id))?;
            require_street(&p, &row.case, "review feedback")?;
            let mut feedback =
                tasks::feedback(tx, id).await?.ok_or_else(|| DispatchError::not_found("feedback", id))?;
            if feedback.state != FeedbackState::Submitted {
                return Err(Refusal::new(
                    "FEEDBACK_ALREADY_REVIEWED",
                    format!("feedback/{id}"),
                    "the feedback was already reviewed",
                )
                .into());
            }
            let before =
                json!({"task": {"id": task_id, "state": task.state}, "feedback": {"id": id, "state": feedback.state}});
            task.state = state::review(task.state, decision)?;
            feedback.state =
                if decision == ReviewDecision::Accept { FeedbackState::Accepted } else { FeedbackState::Returned };
            feedback.review_comment = comment.clone();
            feedback.reviewed_by = Some(convert::person(&p));
            feedback.review_time = Some(now);
            tasks::save_feedback(tx, &feedback).await?;
            if decision == ReviewDecision::Accept {
                task.completed_on_time = feedback.on_time;
                task.complete_time = Some(now);
            }
            task.update_time = now;
            tasks::update(tx, &task).await?;
            sync_rectification(tx, &task, now).await?;
            match decision {
                ReviewDecision::Accept => {
                    w.cancel(tx, scheduled::TASK, task_id).await?;
                    if let Some(rect_id) = task.rectification_id {
                        w.cancel(tx, scheduled::RECTIFICATION, rect_id).await?;
                    }
                }
                // Sent back: not done, so its window counts again (at once if it has ended).
                ReviewDecision::Return => w.schedule(tx, scheduled::task(&task, now)).await?,
            }
            let (event_type, payload) = match decision {
                ReviewDecision::Accept => (
                    EventKind::TaskCompleted,
                    Payload::TaskCompleted(pb::TaskCompleted {
                        task_id: task_id.to_string(),
                        feedback_id: id.to_string(),
                        on_time: feedback.on_time,
                        window_end_time: ts(task.window_end),
                        feedback_submit_time: ts(feedback.submit_time),
                        kind: code(pb::TaskKind::from_str_name(task.kind.as_str())),
                        rectification_id: task.rectification_id.map(|r| r.to_string()).unwrap_or_default(),
                    }),
                ),
                ReviewDecision::Return => (
                    EventKind::FeedbackReturned,
                    Payload::FeedbackReturned(pb::FeedbackReturned {
                        task_id: task_id.to_string(),
                        feedback_id: id.to_string(),
                        reason: comment,
                        is_rectification: feedback.is_rectification,
                    }),
                ),
            };
            let after =
                json!({"task": {"id": task_id, "state": task.state}, "feedback": {"id": id, "state": feedback.state}});
            let entry = Entry {
                event_type,
                call_id: Some(task.call_id),
                department_id: task.department_id.clone(),
                before,
                after,
                payload,
            };
            w.record(tx, &mut row.case, &convert::actor(&p), entry).await?;
            Ok(convert::feedback_pb(&feedback))
        })
    });
    write.await
}

pub(super) async fn submit_case_report(
    s: &Dispatch,
    r: Request<pb::SubmitCaseReportRequest>,
) -> Result<pb::CaseReport, DispatchError> {
    let (p, req) = caller(r)?;
    let report = req.report.clone().unwrap_or_default();
    let case_id = uuid("report.case_id", &report.case_id)?;
    let mut v = FieldViolations::new();
    let summary = v.required_text("report.summary", &report.summary, 10000).to_owned();
    v.into_result()?;
    let key = RPCS.idempotency("SubmitCaseReport", &p, &req.request_id, &req)?;
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, _) = readable_case(tx, &p, case_id, true).await?;
            require_street(&p, &row.case, "submit the case report")?;
            let all = tasks::of_case(tx, case_id).await?;
            let unaccepted: Vec<String> =
                all.iter().filter(|t| t.state != TaskState::Accepted).map(|t| t.id.to_string()).collect();
            let exists = closing::report(tx, case_id).await?.is_some();
            let next = state::submit_report(row.case.state, exists, &unaccepted)?;
            let mut with_tasks: Vec<String> = all.iter().map(|t| t.department_id.clone()).collect();
            with_tasks.sort();
            with_tasks.dedup();
            let mut given: Vec<String> = report.department_results.iter().map(|d| d.department_id.clone()).collect();
            given.sort();
            if given != with_tasks {
                return Err(DispatchError::field(
                    "report.department_results",
                    format!("must hold one result per department with tasks: {}", with_tasks.join(", ")),
                ));
            }
            let mut results = Vec::new();
            for (i, d) in report.department_results.iter().enumerate() {
                let mut ids = Vec::new();
                for f in &d.feedback_ids {
                    ids.push(Uuid::parse_str(f).map_err(|_| {
                        DispatchError::field(
                            format!("report.department_results[{i}].feedback_ids"),
                            "is not a valid id",
                        )
                    })?);
                }
                results.push(DepartmentResult {
                    department_id: d.department_id.clone(),
                    summary: d.summary.trim().to_owned(),
                    feedback_ids: ids,
                });
            }
            let files = case_files(tx, case_id, &req.attachment_ids).await?;
            let saved = CaseReport {
                case_id,
                summary,
                department_results: results,
                attachments: files,
                submitted_by: convert::person(&p),
                submit_time: now,
            };
            closing::insert_report(tx, &saved).await?;
            let before = json!({"case": {"state": row.case.state}});
            row.case.state = next;
            let payload = Payload::CaseReportSubmitted(pb::CaseReportSubmitted { department_ids: with_tasks });
            let entry = Entry {
                event_type: EventKind::CaseReportSubmitted,
                call_id: None,
                department_id: String::new(),
                before,
                after: json!({"report": saved, "case": {"state": next}}),
                payload,
            };
            w.record(tx, &mut row.case, &convert::actor(&p), entry).await?;
            Ok(convert::report_pb(&saved))
        })
    })
    .await
}

pub(super) async fn get_case_report(
    s: &Dispatch,
    r: Request<pb::GetCaseReportRequest>,
) -> Result<pb::CaseReport, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("case_id", &req.case_id)?;
    let mut conn = s.d.pool.acquire().await?;
    readable_case(&mut conn, &p, id, false).await?;
    let report = closing::report(&mut conn, id).await?.ok_or_else(|| DispatchError::not_found("case report", id))?;
    Ok(convert::report_pb(&report))
}

pub(super) async fn record_callback(
    s: &Dispatch,
    r: Request<pb::RecordCallbackRequest>,
) -> Result<pb::Callback, DispatchError> {
    let (p, req) = caller(r)?;
    let case_id = uuid("case_id", &req.case_id)?;
    let c = req.callback.clone().unwrap_or_default();
    let mut v = FieldViolations::new();
    let method = pb::CallbackMethod::try_from(c.method).ok().filter(|m| *m != pb::CallbackMethod::Unspecified);
    v.check(method.is_some(), "callback.method", "must be PHONE, VISIT or SMS");
    let when = convert::time(c.callback_time.as_ref());
    v.check(when.is_some(), "callback.callback_time", "is required");
    let reporter_satisfaction =
        pb::Satisfaction::try_from(c.reporter_satisfaction).ok().and_then(|s| Satisfaction::parse(s.as_str_name()));
    v.check(
        !c.reached || reporter_satisfaction.is_some(),
        "callback.reporter_satisfaction",
        "is required when the reporter was reached",
    );
    let opinion = v.optional_text("callback.reporter_opinion", &c.reporter_opinion, 5000).to_owned();
    v.into_result()?;
    let key = RPCS.idempotency("RecordCallback", &p, &req.request_id, &req)?;
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, _) = readable_case(tx, &p, case_id, true).await?;
            require_street(&p, &row.case, "record callbacks")?;
            let next = state::callback(row.case.state)?;
            let actor = convert::actor(&p);
            let callback = Callback {
                id: Uuid::now_v7(),
                case_id,
                method: method.map(|m| m.as_str_name().to_owned()).unwrap_or_default(),
                reached: c.reached,
                reporter_satisfaction: if c.reached { reporter_satisfaction } else { None },
                reporter_opinion: opinion,
                callback_time: when.unwrap_or(now),
                recorded_by: actor.clone(),
                create_time: now,
            };
            closing::insert_callback(tx, &callback).await?;
            let before = json!({"case": {"state": row.case.state}});
            row.case.state = next;
            let payload = Payload::CallbackRecorded(pb::CallbackRecorded {
                callback_id: callback.id.to_string(),
                reached: callback.reached,
                reporter_satisfaction: callback.reporter_satisfaction.map_or(0, convert::satisfaction_pb),
            });
            let entry = Entry {
                event_type: EventKind::CallbackRecorded,
                call_id: None,
                department_id: String::new(),
                before,
                after: json!({"callback": callback, "case": {"state": next}}),
                payload,
            };
            w.record(tx, &mut row.case, &actor, entry).await?;
            Ok(convert::callback_pb(&callback))
        })
    })
    .await
}

/// The department's non-withdrawn calls in the case.
async fn department_calls(
    tx: &mut PgConnection,
    case_id: Uuid,
    department_id: &str,
) -> Result<Vec<Uuid>, DispatchError> {
    Ok(calls::of_case(tx, case_id)
        .await?
        .into_iter()
        .filter(|c| c.department_id == department_id && c.state != CallState::Withdrawn)
        .map(|c| c.id)
        .collect())
}

pub(super) async fn rate_department(
    s: &Dispatch,
    r: Request<pb::RateDepartmentRequest>,
) -> Result<pb::Rating, DispatchError> {
    let (p, req) = caller(r)?;
    let case_id = uuid("case_id", &req.case_id)?;
    let sat = satisfaction("satisfaction", req.satisfaction)?;
    let mut v = FieldViolations::new();
    let department_id = v.required_text("department_id", &req.department_id, 64).to_owned();
    let comment = v.optional_text("comment", &req.comment, 2000).to_owned();
    v.check(sat != Satisfaction::Dissatisfied || !comment.is_empty(), "comment", "is required when dissatisfied");
    v.into_result()?;
    let key = RPCS.idempotency("RateDepartment", &p, &req.request_id, &req)?;
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, _) = readable_case(tx, &p, case_id, true).await?;
            require_street(&p, &row.case, "rate departments (谁呼谁评)")?;
            let next = state::rate(row.case.state)?;
            let call_ids = department_calls(tx, case_id, &department_id).await?;
            if call_ids.is_empty() {
                return Err(Refusal::new(
                    "DEPARTMENT_NOT_CALLED",
                    format!("departments/{department_id}"),
                    "the department has no call in the case",
                )
                .into());
            }
            let ratings = closing::ratings(tx, case_id).await?;
            state::first_rating(&department_id, ratings.iter().any(|r| r.department_id == department_id && r.current))?;
            let rating = Rating {
                id: Uuid::now_v7(),
                case_id,
                street_id: row.case.street_id.clone(),
                department_id: department_id.clone(),
                call_ids,
                satisfaction: sat,
                comment,
                rated_by: convert::person(&p),
                create_time: now,
                supersedes_rating_id: None,
                rectification_id: None,
                superseded_by_rating_id: None,
                current: true,
            };
            closing::save_rating(tx, &rating).await?;
            let before = json!({"case": {"state": row.case.state}});
            row.case.state = next;
            let payload = Payload::RatingRecorded(pb::RatingRecorded {
                rating_id: rating.id.to_string(),
                satisfaction: convert::satisfaction_pb(sat),
                call_ids: rating.call_ids.iter().map(|c| c.to_string()).collect(),
                ..Default::default()
            });
            let entry = Entry {
                event_type: EventKind::RatingGiven,
                call_id: None,
                department_id,
                before,
                after: json!({"rating": rating, "case": {"state": next}}),
                payload,
            };
            w.record(tx, &mut row.case, &convert::actor(&p), entry).await?;
            Ok(convert::rating_pb(&rating))
        })
    })
    .await
}

pub(super) async fn list_ratings(
    s: &Dispatch,
    r: Request<pb::ListRatingsRequest>,
) -> Result<pb::ListRatingsResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let scope = super::cases::scope(&p)?;
    let case_id = if req.case_id.is_empty() { None } else { Some(uuid("case_id", &req.case_id)?) };
    let page = RPCS.page::<usize>(
        req.page_size,
        &req.page_token,
        &["ratings", &req.case_id, &req.department_id, &req.street_id, &req.include_superseded.to_string()],
    )?;
    let mut conn = s.d.pool.acquire().await?;
    let all =
        closing::list_ratings(&mut conn, case_id, &req.department_id, &req.street_id, req.include_superseded, &scope)
            .await?;
    let start = page.after.unwrap_or(0);
    let mut rows: Vec<(usize, Rating)> =
        all.iter().cloned().enumerate().skip(start).take(page.limit() as usize).collect();
    let next_page_token = page.finish(&mut rows, |(i, _)| i + 1);
    Ok(pb::ListRatingsResponse {
        ratings: rows.iter().map(|(_, r)| convert::rating_pb(r)).collect(),
        next_page_token,
        total_size: all.len() as i32,
    })
}

pub(super) async fn require_rectification(
    s: &Dispatch,
    r: Request<pb::RequireRectificationRequest>,
) -> Result<pb::Rectification, DispatchError> {
    let (p, req) = caller(r)?;
    let case_id = uuid("case_id", &req.case_id)?;
    let now = s.now();
    let mut v = FieldViolations::new();
    let department_id = v.required_text("department_id", &req.department_id, 64).to_owned();
    let requirement = v.required_text("requirement", &req.requirement, 5000).to_owned();
    let due = convert::time(req.due_time.as_ref());
    v.check(due.is_none_or(|d| d > now), "due_time", "must be in the future");
    let consultation_id =
        if req.consultation_id.is_empty() { None } else { Uuid::parse_str(&req.consultation_id).ok() };
    v.check(req.consultation_id.is_empty() || consultation_id.is_some(), "consultation_id", "is not a valid id");
    v.into_result()?;
    // None named: the policy's working days, by the district's calendar.
    let due = due.unwrap_or_else(|| s.d.calendar.add_working_days(now, s.d.deadlines.rectification_working_days));
    let key = RPCS.idempotency("RequireRectification", &p, &req.request_id, &req)?;
    let write = s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, _) = readable_case(tx, &p, case_id, true).await?;
            require_street(&p, &row.case, "require rectification")?;
            let ratings = closing::ratings(tx, case_id).await?;
            let current = ratings.iter().find(|r| r.department_id == department_id && r.current).cloned();
            let open = closing::rectifications(tx, case_id)
                .await?
                .iter()
                .any(|r| r.department_id == department_id && r.state != RectificationState::Closed);
            let next = state::require_rectification(
                row.case.state,
                &department_id,
                current.as_ref().is_some_and(|r| r.satisfaction == Satisfaction::Dissatisfied),
                open,
            )?;
            let rating = current.ok_or_else(|| DispatchError::internal("dissatisfied rating vanished"))?;
            let call_id =
                *rating.call_ids.first().ok_or_else(|| DispatchError::internal("rating without calls"))?;
            let consultation_id = match consultation_id {
                Some(id) => Some(id),
                None => tasks::consultations(tx, case_id).await?.last().map(|c| c.id),
            };
            let rect_id = Uuid::now_v7();
            let task = Task {
                id: Uuid::now_v7(),
                case_id,
                call_id,
                department_id: department_id.clone(),
                kind: TaskKind::Rectification,
                consultation_id: None,
                rectification_id: Some(rect_id),
                description: requirement.clone(),
                window_start: now,
                window_end: due,
                state: TaskState::Open,
                overdue: false,
                completed_on_time: false,
                progress_reports: vec![],
                feedback: vec![],
                create_time: now,
                update_time: now,
                complete_time: None,
            };
            let rect = Rectification {
                id: rect_id,
                case_id,
                department_id: department_id.clone(),
                rating_id: rating.id,
                consultation_id,
                requirement,
                due_time: due,
                state: RectificationState::Open,
                task_id: task.id,
                overdue: false,
                rerating_id: None,
                required_by: convert::person(&p),
                create_time: now,
                update_time: now,
            };
            tasks::insert(tx, &task).await?;
            closing::save_rectification(tx, &rect).await?;
            w.schedule(tx, scheduled::task(&task, now)).await?;
            w.schedule(tx, scheduled::rectification(&rect)).await?;
            let before = json!({"case": {"state": row.case.state}});
            row.case.state = next;
            let payload = Payload::RectificationRequired(pb::RectificationRequired {
                rectification_id: rect_id.to_string(),
                rating_id: rating.id.to_string(),
                task_id: task.id.to_string(),
                due_time: ts(due),
            });
            let actor = convert::actor(&p);
            let entry = Entry {
                event_type: EventKind::RectificationRequired,
                call_id: Some(call_id),
                department_id: department_id.clone(),
                before,
                after: json!({"rectification": rect, "case": {"state": next}}),
                payload,
            };
            w.record(tx, &mut row.case, &actor, entry).await?;
            let payload = Payload::TaskCreated(pb::TaskCreated {
                task_id: task.id.to_string(),
                kind: code(pb::TaskKind::from_str_name(task.kind.as_str())),
                rectification_id: rect_id.to_string(),
                window: Some(convert::range_pb(now, due)),
            });
            let entry = Entry {
                event_type: EventKind::TaskCreated,
                call_id: Some(call_id),
                department_id,
                before: json!({}),
                after: json!({"task": task}),
                payload,
            };
            w.record(tx, &mut row.case, &actor, entry).await?;
            Ok(convert::rectification_pb(&rect))
        })
    });
    write.await
}

pub(super) async fn rerate_department(
    s: &Dispatch,
    r: Request<pb::RerateDepartmentRequest>,
) -> Result<pb::Rating, DispatchError> {
    let (p, req) = caller(r)?;
    let case_id = uuid("case_id", &req.case_id)?;
    let sat = satisfaction("satisfaction", req.satisfaction)?;
    let mut v = FieldViolations::new();
    let department_id = v.required_text("department_id", &req.department_id, 64).to_owned();
    let comment = v.optional_text("comment", &req.comment, 2000).to_owned();
    v.check(sat != Satisfaction::Dissatisfied || !comment.is_empty(), "comment", "is required when dissatisfied");
    v.into_result()?;
    let key = RPCS.idempotency("RerateDepartment", &p, &req.request_id, &req)?;
    let write = s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, _) = readable_case(tx, &p, case_id, true).await?;
            require_street(&p, &row.case, "re-rate departments")?;
            let mut rect = closing::rectifications(tx, case_id).await?.into_iter().find(|r| r.department_id == department_id && r.state != RectificationState::Closed);
            state::rerate(row.case.state, rect.as_ref().map(|r| (r.state, r.overdue)))?;
            let Some(rect) = rect.as_mut() else { return Err(DispatchError::internal("rectification vanished")) };
            let mut old = closing::ratings(tx, case_id).await?.into_iter().find(|r| r.department_id == department_id && r.current)
                .ok_or_else(|| DispatchError::internal("current rating vanished"))?;
            let rating = Rating {
                id: Uuid::now_v7(),
                case_id,
                street_id: row.case.street_id.clone(),
                department_id: department_id.clone(),
                call_ids: old.call_ids.clone(),
                satisfaction: sat,
                comment,
                rated_by: convert::person(&p),
                create_time: now,
                supersedes_rating_id: Some(old.id),
                rectification_id: Some(rect.id),
                superseded_by_rating_id: None,
                current: true,
            };
            old.current = false;
            old.superseded_by_rating_id = Some(rating.id);
            // The old one stops being current before the new one is, for the unique index.
            closing::save_rating(tx, &old).await?;
            closing::save_rating(tx, &rating).await?;
            rect.state = RectificationState::Closed;
            rect.rerating_id = Some(rating.id);
            rect.update_time = now;
            closing::save_rectification(tx, rect).await?;
            w.cancel(tx, scheduled::RECTIFICATION, rect.id).await?;
            w.cancel(tx, scheduled::TASK, rect.task_id).await?;
            let before = json!({"rating": {"id": old.id, "current": true}, "rectification": {"id": rect.id}, "case": {"state": row.case.state}});
            let payload = Payload::RatingRecorded(pb::RatingRecorded {
                rating_id: rating.id.to_string(),
                satisfaction: convert::satisfaction_pb(sat),
                call_ids: rating.call_ids.iter().map(|c| c.to_string()).collect(),
                supersedes_rating_id: old.id.to_string(),
                superseded_satisfaction: convert::satisfaction_pb(old.satisfaction),
                rectification_id: rect.id.to_string(),
            });
            let entry = Entry { event_type: EventKind::RatingReplaced, call_id: None, department_id, before, after: json!({"rating": rating, "rectification": {"id": rect.id, "state": rect.state}}), payload };
            w.record(tx, &mut row.case, &convert::actor(&p), entry).await?;
            Ok(convert::rating_pb(&rating))
        })
    });
    write.await
}

pub(super) async fn close_case(s: &Dispatch, r: Request<pb::CloseCaseRequest>) -> Result<pb::Case, DispatchError> {
    let (p, req) = caller(r)?;
    let case_id = uuid("case_id", &req.case_id)?;
    let mut v = FieldViolations::new();
    let summary = v.required_text("summary", &req.summary, 5000).to_owned();
    v.into_result()?;
    let key = RPCS.idempotency("CloseCase", &p, &req.request_id, &req)?;
    let dispatch = s.clone();
    let write = s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, audience) = readable_case(tx, &p, case_id, true).await?;
            require_street(&p, &row.case, "close its cases")?;
            let all_tasks = tasks::of_case(tx, case_id).await?;
            let rects = closing::rectifications(tx, case_id).await?;
            let closed_rects: Vec<Uuid> =
                rects.iter().filter(|r| r.state == RectificationState::Closed).map(|r| r.id).collect();
            let ratings = closing::ratings(tx, case_id).await?;
            let facts = state::CloseFacts {
                open_task_ids: all_tasks
                    .iter()
                    .filter(|t| {
                        t.state != TaskState::Accepted && !t.rectification_id.is_some_and(|r| closed_rects.contains(&r))
                    })
                    .map(|t| t.id.to_string())
                    .collect(),
                report_exists: closing::report(tx, case_id).await?.is_some(),
                unrated_departments: audience
                    .departments
                    .iter()
                    .filter(|d| !ratings.iter().any(|r| &r.department_id == *d && r.current))
                    .cloned()
                    .collect(),
                open_rectifications: rects
                    .iter()
                    .filter(|r| r.state != RectificationState::Closed)
                    .map(|r| r.department_id.clone())
                    .collect(),
            };
            let next = state::close(row.case.state, &facts).map_err(DispatchError::from)?;
            let before = json!({"case": {"state": row.case.state}});
            let solved_alone = row.case.state == CaseState::SolvingAtStreet && audience.departments.is_empty();
            row.case.state = next;
            row.case.close_time = Some(now);
            row.case.close_summary = summary;
            for mut call in calls::of_case(tx, case_id).await? {
                let completed = state::complete_call(call.state);
                if completed != call.state {
                    call.state = completed;
                    call.update_time = now;
                    calls::update(tx, &call).await?;
                }
            }
            let payload = Payload::CaseClosed(pb::CaseClosed {
                solved_by_street_alone: solved_alone,
                department_ids: audience.departments.clone(),
                duration: crate::events::duration(row.case.create_time, now),
            });
            let after = json!({"case": {"state": next, "close_summary": row.case.close_summary}});
            let entry = Entry {
                event_type: EventKind::CaseClosed,
                call_id: None,
                department_id: String::new(),
                before,
                after,
                payload,
            };
            w.record(tx, &mut row.case, &convert::actor(&p), entry).await?;
            w.cancel_case(tx, case_id).await?;
            present(&dispatch, tx, &p, case_id).await
        })
    });
    write.await
}

pub(super) async fn get_rectification(
    s: &Dispatch,
    r: Request<pb::GetRectificationRequest>,
) -> Result<pb::Rectification, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("rectification_id", &req.rectification_id)?;
    let mut conn = s.d.pool.acquire().await?;
    let rect =
        closing::rectification(&mut conn, id).await?.ok_or_else(|| DispatchError::not_found("rectification", id))?;
    readable_case(&mut conn, &p, rect.case_id, false)
        .await
        .map_err(|e| e.not_found_as("rectification", id))?;
    Ok(convert::rectification_pb(&rect))
}

pub(super) async fn list_rectifications(
    s: &Dispatch,
    r: Request<pb::ListRectificationsRequest>,
) -> Result<pb::ListRectificationsResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let scope = super::cases::scope(&p)?;
    let case_id = if req.case_id.is_empty() { None } else { Some(uuid("case_id", &req.case_id)?) };
    let mut v = FieldViolations::new();
    let mut states = Vec::new();
    for (i, st) in req.states.iter().enumerate() {
        match pb::RectificationState::try_from(*st).ok().filter(|s| *s != pb::RectificationState::Unspecified) {
            Some(s) => states.push(s.as_str_name().to_owned()),
            None => v.add(format!("states[{i}]"), "is not a known state"),
        }
    }
    v.optional_text("department_id", &req.department_id, 64);
    v.into_result()?;
    let q = closing::RectificationQuery {
        case_id,
        department_id: req.department_id.trim().to_owned(),
        states,
        overdue_only: req.overdue_only,
    };
    let fingerprint = format!("{q:?}");
    let page = RPCS.page::<(chrono::DateTime<chrono::Utc>, Uuid)>(
        req.page_size,
        &req.page_token,
        &["rectifications", &fingerprint],
    )?;
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, total) = closing::list_rectifications(&mut conn, &scope, &q, page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| (r.create_time, r.id));
    Ok(pb::ListRectificationsResponse {
        rectifications: rows.iter().map(convert::rectification_pb).collect(),
        next_page_token,
        total_size: total as i32,
    })
}
