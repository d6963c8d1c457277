//! The end of a case: the case report (办理报告), callback (回访) and close (办结).

use minhu_grpc::FieldViolations;
use minhu_proto::dispatch::v1::{self as pb, event::Payload};
use serde_json::json;
use tonic::Request;
use uuid::Uuid;

use super::{Dispatch, Entry, RPCS, caller, cases::present, convert, readable_case, require_street, uuid, write};
use crate::{
    domain::events::EventKind,
    domain::{
        callback,
        model::{Callback, CallbackOutcome, CaseReport, DepartmentResult, RectificationState, Satisfaction, TaskState},
        state,
    },
    error::DispatchError,
    store::{calls, closing, tasks},
};

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
                for (j, f) in d.feedback_ids.iter().enumerate() {
                    let field = format!("report.department_results[{i}].feedback_ids[{j}]");
                    let id = minhu_grpc::uuid(&field, f)?;
                    // Feedback of this case from this department only: another case's (or
                    // another department's) feedback is named as not found, whoever owns it.
                    let ours = crate::store::tasks::feedback(tx, id)
                        .await?
                        .is_some_and(|fb| fb.case_id == case_id && fb.department_id == d.department_id);
                    if !ours {
                        return Err(DispatchError::field(
                            field,
                            format!("is not feedback of department `{}` on this case", d.department_id),
                        ));
                    }
                    ids.push(id);
                }
                results.push(DepartmentResult {
                    department_id: d.department_id.clone(),
                    summary: d.summary.trim().to_owned(),
                    feedback_ids: ids,
                });
            }
            let files = super::tasks::case_files(tx, case_id, &req.attachment_ids).await?;
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
    // An anonymous reporter (匿名) is recorded in place of an attempt: no method, no time.
    let anonymous = c.reporter_anonymous;
    v.check(anonymous || method.is_some(), "callback.method", "must be PHONE, VISIT or SMS");
    v.check(!(anonymous && c.reached), "callback.reached", "an anonymous reporter cannot have been reached");
    let when = convert::time(c.callback_time.as_ref());
    v.check(anonymous || when.is_some(), "callback.callback_time", "is required");
    let reporter_satisfaction =
        pb::Satisfaction::try_from(c.reporter_satisfaction).ok().and_then(|s| Satisfaction::parse(s.as_str_name()));
    v.check(
        !c.reached || reporter_satisfaction.is_some(),
        "callback.reporter_satisfaction",
        "is required when the reporter was reached",
    );
    let opinion = v.optional_text("callback.reporter_opinion", &c.reporter_opinion, 5000).to_owned();
    v.check(!anonymous || !opinion.is_empty(), "callback.reporter_opinion", "must say why the reporter is anonymous");
    v.into_result()?;
    let attempts = s.d.deadlines.callback_attempts;
    let key = RPCS.idempotency("RecordCallback", &p, &req.request_id, &req)?;
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, _) = readable_case(tx, &p, case_id, true).await?;
            require_street(&p, &row.case, "record callbacks")?;
            let actor = convert::actor(&p);
            let callback = Callback {
                id: Uuid::now_v7(),
                case_id,
                method: method.map(|m| m.as_str_name().to_owned()).unwrap_or_default(),
                reached: c.reached,
                reporter_satisfaction: if c.reached { reporter_satisfaction } else { None },
                reporter_opinion: opinion,
                callback_time: when.unwrap_or(now),
                reporter_anonymous: anonymous,
                recorded_by: actor.clone(),
                create_time: now,
            };
            let mut all = closing::callbacks(tx, case_id).await?;
            all.push(callback.clone());
            let outcome = callback::outcome(&all, attempts);
            let next = state::callback(row.case.state, outcome != CallbackOutcome::Pending)?;
            closing::insert_callback(tx, &callback).await?;
            let before = json!({"case": {"state": row.case.state, "callback_outcome": row.case.callback_outcome}});
            row.case.state = next;
            row.case.callback_outcome = outcome;
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
                after: json!({"callback": callback, "case": {"state": next, "callback_outcome": outcome}}),
                payload,
            };
            w.record(tx, &mut row.case, &actor, entry).await?;
            Ok(convert::callback_pb(&callback))
        })
    })
    .await
}

/// The department's non-withdrawn calls in the case.
pub(super) async fn close_case(s: &Dispatch, r: Request<pb::CloseCaseRequest>) -> Result<pb::Case, DispatchError> {
    let (p, req) = caller(r)?;
    let case_id = uuid("case_id", &req.case_id)?;
    let mut v = FieldViolations::new();
    let summary = v.required_text("summary", &req.summary, 5000).to_owned();
    v.into_result()?;
    let attempts = s.d.deadlines.callback_attempts;
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
                callback_missing: callback::require_callback(row.case.callback_outcome, attempts)
                    .is_err()
                    .then_some(attempts),
            };
            let decision = row.case.close(summary, &facts, &audience.departments, now)?;
            for mut call in calls::of_case(tx, case_id).await? {
                let completed = state::complete_call(call.state);
                if completed != call.state {
                    call.state = completed;
                    call.update_time = now;
                    calls::update(tx, &call).await?;
                }
            }
            w.decide_case(tx, &mut row.case, &convert::actor(&p), decision).await?;
            present(&dispatch, tx, &p, case_id).await
        })
    });
    write.await
}
