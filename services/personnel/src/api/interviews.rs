//! Interview scope (谈话范围): the people a station head considered for promotion must be
//! discussed with, computed from the roster (the street's principal leaders, its leaders in
//! charge of the department's line of work, the heads of the sections working closely with
//! the station); the interviews held; the promotion, flagged when the scope was not met.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use minhu_grpc::{FieldViolations, Principal};
use minhu_proto::{common::v1 as common, personnel::v1 as pb};
use sqlx::{PgConnection, types::Json};
use tonic::Request;
use uuid::Uuid;

use super::{Personnel, caller, code, convert, id, key, me, page, required_date, scope, solicitations, total, uuid};
use crate::{
    domain::{self, Leader},
    error::PersonnelError,
    store::{self, NewFinding, PlanRow, Ref, StoredHeld, StoredInterviewee},
};

const RESOURCE: &str = "minhu.personnel.v1.InterviewPlan";

pub(super) async fn create(
    s: &Personnel,
    r: Request<pb::CreateInterviewPlanRequest>,
) -> Result<pb::InterviewPlan, PersonnelError> {
    let (p, req) = caller(r)?;
    let given = req.plan.clone().unwrap_or_default();
    let mut v = FieldViolations::new();
    let station_id = code(&mut v, "plan.station_id", &given.station_id);
    let street_id = code(&mut v, "plan.street_id", &given.street_id);
    let candidate = uuid(&mut v, "plan.candidate_person_id", &given.candidate_person_id).to_string();
    let post = v.required_text("plan.proposed_post", &given.proposed_post, 200).to_owned();
    let note = v.optional_text("plan.note", &given.note, 2000).to_owned();
    let mut listed: Vec<String> = Vec::new();
    for (i, person) in given.interviewees.iter().enumerate() {
        let id = person.person.as_ref().map(|p| p.id.as_str()).unwrap_or_default();
        let id = uuid(&mut v, &format!("plan.interviewees[{i}].person.id"), id).to_string();
        if !listed.contains(&id) {
            listed.push(id);
        }
    }
    v.into_result()?;
    let key = key("CreateInterviewPlan", &p, &req.request_id, &req)?;

    // The roster, outside the transaction, and not at all on a replay.
    let lookups = async {
        let station = solicitations::station_for(s, &p, &station_id, &street_id).await?;
        if station.head_person_id != candidate {
            return Err(PersonnelError::refused(
                "NOT_STATION_HEAD",
                format!("people/{candidate}"),
                format!("the candidate is not the head of station `{station_id}`"),
            ));
        }
        let kind = s.d.roster.department(&station.department_id).await?.map(|d| d.kind).unwrap_or_default();
        let leaders: Vec<Leader> =
            s.d.roster
                .street_leaders(&street_id)
                .await?
                .into_iter()
                .map(|l| Leader {
                    principal: l.position() == common::Position::StreetPrincipalLeader,
                    person_id: l.person_id,
                    areas: l.areas_in_charge,
                })
                .collect();
        let section_heads: Vec<String> =
            s.d.roster
                .sections(&street_id, &station_id)
                .await?
                .into_iter()
                .filter(|s| !s.head_person_id.is_empty())
                .map(|s| s.head_person_id)
                .collect();
        let required = domain::interview_scope(&leaders, kind, &section_heads);
        if listed.is_empty() {
            listed = required.iter().map(|r| r.person_id.clone()).collect();
        }
        let missing = domain::missing_from_scope(&required, &listed.iter().cloned().collect::<BTreeSet<_>>());
        if !missing.is_empty() {
            return Err(PersonnelError::FailedPrecondition { reason: "INTERVIEW_SCOPE_INCOMPLETE", refusals: missing });
        }
        let everyone: Vec<String> = listed
            .iter()
            .chain(required.iter().map(|r| &r.person_id))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let people =
            s.d.roster
                .people(&everyone)
                .await?
                .ok_or_else(|| PersonnelError::field("plan.interviewees", "names a person the roster does not know"))?;
        let stored = |id: &String| -> StoredInterviewee {
            let person = people.iter().find(|p| &p.id == id);
            StoredInterviewee {
                person: Ref {
                    id: id.clone(),
                    name: person.map(|p| p.name.clone()).unwrap_or_default(),
                    department_id: person.map(|p| p.department_id.clone()).unwrap_or_default(),
                    station_id: person.map(|p| p.station_id.clone()).unwrap_or_default(),
                },
                position: person
                    .and_then(|p| common::Position::try_from(p.position).ok())
                    .unwrap_or_default()
                    .as_str_name()
                    .to_owned(),
            }
        };
        let row = PlanRow {
            id: Uuid::now_v7(),
            department_id: station.department_id.clone(),
            station_id,
            street_id,
            candidate_person_id: candidate,
            proposed_post: post,
            interviewees: Json(listed.iter().map(stored).collect()),
            required: Json(required.iter().map(|r| stored(&r.person_id)).collect()),
            held: Json(Vec::new()),
            note,
            promotion_decision: String::new(),
            promotion_time: None,
            missing: Vec::new(),
            flagged: false,
            created_by: Json(me(&p)),
            create_time: s.now(),
        };
        Ok::<_, PersonnelError>(row)
    };
    if req.validate_only {
        let mut plan = convert::plan(lookups.await?);
        plan.id.clear();
        return Ok(plan);
    }
    s.write_after(&key, lookups, move |tx, row| {
        Box::pin(async move {
            store::insert_plan(tx, &row).await?;
            Ok(convert::plan(row))
        })
    })
    .await
}

async fn readable(tx: &mut PgConnection, p: &Principal, id: Uuid, lock: bool) -> Result<PlanRow, PersonnelError> {
    store::plan(tx, id, lock)
        .await?
        .filter(|r| domain::may_read(p, &r.department_id, &r.street_id))
        .ok_or_else(|| PersonnelError::not_found(RESOURCE, id))
}

pub(super) async fn get(
    s: &Personnel,
    r: Request<pb::GetInterviewPlanRequest>,
) -> Result<pb::InterviewPlan, PersonnelError> {
    let (p, req) = caller(r)?;
    let id = id("interview_plan_id", &req.interview_plan_id)?;
    let mut conn = s.d.pool.acquire().await?;
    Ok(convert::plan(readable(&mut conn, &p, id, false).await?))
}

pub(super) async fn list(
    s: &Personnel,
    r: Request<pb::ListInterviewPlansRequest>,
) -> Result<pb::ListInterviewPlansResponse, PersonnelError> {
    let (p, req) = caller(r)?;
    let q = [req.street_id.as_str(), &req.department_id, &req.station_id, &req.candidate_person_id];
    let page = page::<(DateTime<Utc>, Uuid)>(req.page_size, &req.page_token, &q)?;
    let Some(scope) = scope(&p, &req.street_id, &req.department_id)? else {
        return Ok(Default::default());
    };
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, count) = store::list_plans(
        &mut conn,
        &scope,
        req.station_id.trim(),
        req.candidate_person_id.trim(),
        page.after,
        page.limit(),
    )
    .await?;
    let next_page_token = page.finish(&mut rows, |r| (r.create_time, r.id));
    Ok(pb::ListInterviewPlansResponse {
        plans: rows.into_iter().map(convert::plan).collect(),
        next_page_token,
        total_size: total(count),
    })
}

fn promoted(row: &PlanRow) -> Result<(), PersonnelError> {
    if row.promotion_time.is_some() {
        return Err(PersonnelError::refused(
            "ALREADY_PROMOTED",
            format!("interviewPlans/{}", row.id),
            "the promotion has already been recorded",
        ));
    }
    Ok(())
}

pub(super) async fn record_interview(
    s: &Personnel,
    r: Request<pb::RecordInterviewRequest>,
) -> Result<pb::InterviewPlan, PersonnelError> {
    let (p, req) = caller(r)?;
    let id = id("interview_plan_id", &req.interview_plan_id)?;
    let mut v = FieldViolations::new();
    let person = uuid(&mut v, "person_id", &req.person_id).to_string();
    let held = required_date(&mut v, "held_date", req.held_date.as_ref());
    v.check(held <= s.today(), "held_date", "must not be in the future");
    let note = v.optional_text("note", &req.note, 2000).to_owned();
    v.into_result()?;
    let key = key("RecordInterview", &p, &req.request_id, &req)?;
    s.write(&key, move |tx| {
        Box::pin(async move {
            let row = readable(tx, &p, id, true).await?;
            domain::require_department(&p, &row.department_id)?;
            promoted(&row)?;
            let Some(who) = row
                .interviewees
                .iter()
                .chain(row.required.iter())
                .find(|i| i.person.id == person)
                .map(|i| i.person.clone())
            else {
                return Err(PersonnelError::field("person_id", "is not an interviewee of the plan"));
            };
            let mut all = row.held.0.clone();
            all.retain(|h| h.person.id != person);
            all.push(StoredHeld { person: who, held_date: held, note, recorded_by: me(&p) });
            Ok(convert::plan(store::save_held(tx, id, &all).await?))
        })
    })
    .await
}

pub(super) async fn record_promotion(
    s: &Personnel,
    r: Request<pb::RecordPromotionRequest>,
) -> Result<pb::InterviewPlan, PersonnelError> {
    let (p, req) = caller(r)?;
    let id = id("interview_plan_id", &req.interview_plan_id)?;
    let mut v = FieldViolations::new();
    let decision = v.required_text("decision", &req.decision, 2000).to_owned();
    v.into_result()?;
    let key = key("RecordPromotion", &p, &req.request_id, &req)?;
    let now = s.now();
    s.write(&key, move |tx| {
        Box::pin(async move {
            let row = readable(tx, &p, id, true).await?;
            domain::require_department(&p, &row.department_id)?;
            promoted(&row)?;
            let held: BTreeSet<&str> = row.held.iter().map(|h| h.person.id.as_str()).collect();
            let missing: Vec<String> = row
                .required
                .iter()
                .filter(|r| !held.contains(r.person.id.as_str()))
                .map(|r| r.person.id.clone())
                .collect();
            let saved = store::save_promotion(tx, id, &decision, &missing, now).await?;
            if !missing.is_empty() {
                let f = NewFinding {
                    kind: domain::finding::PROMOTION,
                    department_id: &row.department_id,
                    station_id: &row.station_id,
                    street_id: &row.street_id,
                    person_id: &row.candidate_person_id,
                    interview_plan_id: Some(row.id),
                    description: format!("提拔前谈话范围未覆盖：缺少 {} 人的谈话", missing.len()),
                    ..NewFinding::default()
                };
                store::insert_finding(tx, &f, now).await?;
            }
            Ok(convert::plan(saved))
        })
    })
    .await
}
