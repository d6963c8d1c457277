//! Ratings (评价, 谁呼谁评、一事一评), rectifications (整改) and re-ratings.

use minhu_grpc::FieldViolations;
use minhu_proto::dispatch::v1::{self as pb, event::Payload};
use serde_json::json;
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use super::{Dispatch, Entry, RPCS, caller, convert, readable_case, require_street, uuid, write};
use crate::{
    deadlines as scheduled,
    domain::events::EventKind,
    domain::{
        model::{CallState, Rating, Rectification, RectificationState, Satisfaction, Task, TaskKind, TaskState},
        state,
    },
    error::DispatchError,
    events::ToProto as _,
    events::ts,
    store::{calls, closing, tasks},
};

fn satisfaction(field: &str, value: i32) -> Result<Satisfaction, DispatchError> {
    pb::Satisfaction::try_from(value)
        .ok()
        .and_then(|s| Satisfaction::parse(s.as_str_name()))
        .ok_or_else(|| DispatchError::field(field, "must be SATISFIED, BASICALLY_SATISFIED or DISSATISFIED"))
}

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
    let attempts = s.d.deadlines.callback_attempts;
    let key = RPCS.idempotency("RateDepartment", &p, &req.request_id, &req)?;
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, _) = readable_case(tx, &p, case_id, true).await?;
            require_street(&p, &row.case, "rate departments (谁呼谁评)")?;
            let next = state::rate(row.case.state, attempts)?;
            let call_ids = department_calls(tx, case_id, &department_id).await?;
            state::rated_was_called(&department_id, call_ids.len())?;
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
            let call_id = *rating.call_ids.first().ok_or_else(|| DispatchError::internal("rating without calls"))?;
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
                kind: task.kind.to_proto(),
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

pub(super) async fn get_rectification(
    s: &Dispatch,
    r: Request<pb::GetRectificationRequest>,
) -> Result<pb::Rectification, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("rectification_id", &req.rectification_id)?;
    let mut conn = s.d.pool.acquire().await?;
    let rect =
        closing::rectification(&mut conn, id).await?.ok_or_else(|| DispatchError::not_found("rectification", id))?;
    readable_case(&mut conn, &p, rect.case_id, false).await.map_err(|e| e.not_found_as("rectification", id))?;
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
