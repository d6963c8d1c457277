//! Plans (规划参与): a department's plan through drafting, construction and acceptance,
//! with every covered street's participation in each stage and the department's answer to
//! every item.

use minhu_grpc::{FieldViolations, UpdatePaths};
use minhu_proto::consultation::v1::{self as pb, ConsultationEventType as Ev, watch_consultations_response::Record};
use serde_json::json;
use tonic::Request;
use uuid::Uuid;

use super::{
    Consultation, PLAN_OPINION, RPCS, caller,
    convert::{self, plan_opinion_pb, plan_pb},
    decisions::check_streets,
    readable_plan, require_department, require_street_leader, uuid,
};
use crate::{
    deadlines,
    domain::{
        access,
        model::{Actor, Answer, Plan, PlanOpinion, PlanStage, StageTransition, Verdict},
        plan,
        validate::{self, NAME_MAX, TEXT_MAX},
    },
    error::ConsultationError,
    store::{
        journal::{self, Change, Subject},
        plans as store, scope_filters,
    },
};

/// The journal entry of a change to `plan`.
fn change(
    plan: &Plan,
    street_id: &str,
    event_type: Ev,
    actor: &Actor,
    before: serde_json::Value,
    after: serde_json::Value,
    record: Record,
) -> Change {
    Change {
        subject: Subject::Plan(plan.id),
        department_id: plan.department_id.clone(),
        street_ids: plan.street_ids.clone(),
        street_id: street_id.to_owned(),
        event_type,
        actor: actor.clone(),
        occur_time: plan.update_time,
        before,
        after,
        record,
    }
}

pub(super) async fn create_plan(
    s: &Consultation,
    r: Request<pb::CreatePlanRequest>,
) -> Result<pb::Plan, ConsultationError> {
    let (p, req) = caller(r)?;
    let department_id = access::department_of(&p)
        .ok_or_else(|| ConsultationError::denied("only a department creates a plan"))?
        .to_owned();
    let now = s.now();
    let Some(input) = req.plan.as_ref() else { return Err(ConsultationError::field("plan", "is required")) };
    let mut v = FieldViolations::new();
    let name = validate::text(&mut v, "plan.name", &input.name, NAME_MAX, true);
    let kind = validate::plan_kind(input.kind);
    v.check(kind.is_some(), "plan.kind", "must be community construction or public-service facility");
    let description = validate::text(&mut v, "plan.description", &input.description, TEXT_MAX, true);
    let street_ids = validate::street_ids(&mut v, "plan.street_ids", &input.street_ids);
    v.check(!input.street_ids.is_empty(), "plan.street_ids", "at least one street is required");
    let opinion_deadline = validate::future_time(&mut v, "plan.opinion_deadline", input.opinion_deadline.as_ref(), now);
    v.into_result()?;
    let key = RPCS.idempotency("CreatePlan", &p, &req.request_id, &req)?;
    let roster = s.d.roster.clone();
    let streets = street_ids.clone();
    let lookups = async move { check_streets(&roster, "plan.street_ids", &streets).await };
    minhu_store::write(&s.d.pool, &key, lookups, move |tx, ()| {
        Box::pin(async move {
            let actor = convert::actor(&p);
            let mut plan = Plan {
                id: Uuid::now_v7(),
                name,
                kind: kind.expect("checked"),
                department_id,
                street_ids,
                description,
                stage: PlanStage::Drafting,
                opinion_deadline,
                history: vec![],
                created_by: actor.clone(),
                create_time: now,
                update_time: now,
                pending_street_ids: vec![],
                unanswered: 0,
                objections: vec![],
            };
            plan::settle(&mut plan, &[]);
            store::insert(tx, &plan).await?;
            let after = json!({"plan": plan});
            journal::record(
                tx,
                change(&plan, "", Ev::PlanCreated, &actor, json!({}), after, Record::Plan(plan_pb(&plan))),
            )
            .await?;
            Ok(plan_pb(&plan))
        })
    })
    .await
}

pub(super) async fn get_plan(s: &Consultation, r: Request<pb::GetPlanRequest>) -> Result<pb::Plan, ConsultationError> {
    let (p, req) = caller(r)?;
    let id = uuid("plan_id", &req.plan_id)?;
    let mut conn = s.d.pool.acquire().await?;
    Ok(plan_pb(&readable_plan(&mut conn, &p, id, false).await?))
}

pub(super) async fn list_plans(
    s: &Consultation,
    r: Request<pb::ListPlansRequest>,
) -> Result<pb::ListPlansResponse, ConsultationError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let stage = validate::stage(req.stage);
    v.check(req.stage == 0 || stage.is_some(), "stage", "is not a plan stage");
    let kind = validate::plan_kind(req.kind);
    v.check(req.kind == 0 || kind.is_some(), "kind", "is not a plan kind");
    v.into_result()?;
    let (stage_key, kind_key, pending_key) =
        (req.stage.to_string(), req.kind.to_string(), req.opinions_pending_only.to_string());
    let paging = RPCS.page::<(chrono::DateTime<chrono::Utc>, Uuid)>(
        req.page_size,
        &req.page_token,
        &["plans", &req.street_id, &req.department_id, &stage_key, &kind_key, &pending_key],
    )?;
    let Some(scope) = scope_filters(&access::scope(&p)) else { return Ok(pb::ListPlansResponse::default()) };
    let filter = store::Filter {
        street_id: Some(req.street_id.trim().to_owned()).filter(|x| !x.is_empty()),
        department_id: Some(req.department_id.trim().to_owned()).filter(|x| !x.is_empty()),
        stage,
        kind,
        pending_only: req.opinions_pending_only,
    };
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, total) = store::list(&mut conn, scope, &filter, paging.after, paging.limit()).await?;
    let next_page_token = paging.finish(&mut rows, |p| (p.create_time, p.id));
    Ok(pb::ListPlansResponse { plans: rows.iter().map(plan_pb).collect(), next_page_token, total_size: total as i32 })
}

pub(super) async fn update_plan(
    s: &Consultation,
    r: Request<pb::UpdatePlanRequest>,
) -> Result<pb::Plan, ConsultationError> {
    let (p, req) = caller(r)?;
    let Some(input) = req.plan.as_ref() else { return Err(ConsultationError::field("plan", "is required")) };
    let id = uuid("plan.id", &input.id)?;
    let paths = UpdatePaths::new(req.update_mask.as_ref(), &["name", "description", "street_ids", "opinion_deadline"])?;
    let now = s.now();
    let mut v = FieldViolations::new();
    let name = paths
        .wants("name", !input.name.is_empty())
        .then(|| validate::text(&mut v, "plan.name", &input.name, NAME_MAX, true));
    let description = paths
        .wants("description", !input.description.is_empty())
        .then(|| validate::text(&mut v, "plan.description", &input.description, TEXT_MAX, true));
    let street_ids = paths.wants("street_ids", !input.street_ids.is_empty()).then(|| {
        v.check(!input.street_ids.is_empty(), "plan.street_ids", "at least one street is required");
        validate::street_ids(&mut v, "plan.street_ids", &input.street_ids)
    });
    let deadline = paths
        .wants("opinion_deadline", input.opinion_deadline.is_some())
        .then(|| validate::future_time(&mut v, "plan.opinion_deadline", input.opinion_deadline.as_ref(), now));
    v.into_result()?;
    let key = RPCS.idempotency("UpdatePlan", &p, &req.request_id, &req)?;
    let roster = s.d.roster.clone();
    let streets = street_ids.clone().unwrap_or_default();
    let lookups = async move { check_streets(&roster, "plan.street_ids", &streets).await };
    minhu_store::write(&s.d.pool, &key, lookups, move |tx, ()| {
        Box::pin(async move {
            let mut plan = readable_plan(tx, &p, id, true).await?;
            require_department(&p, &plan.department_id, "update its plan")?;
            if plan.stage == PlanStage::Completed {
                return Err(crate::domain::Refusal::new("PLAN_COMPLETED", format!("plans/{id}"), "the plan is completed").into());
            }
            let opinions = store::opinions(tx, id, true).await?;
            let before = json!({"name": plan.name, "description": plan.description, "street_ids": plan.street_ids, "opinion_deadline": plan.opinion_deadline});
            if let Some(name) = name {
                plan.name = name;
            }
            if let Some(description) = description {
                plan.description = description;
            }
            if let Some(street_ids) = street_ids {
                plan.street_ids = street_ids;
            }
            if let Some(deadline) = deadline {
                plan.opinion_deadline = deadline;
            }
            plan::settle(&mut plan, &opinions);
            plan.update_time = now;
            store::update(tx, &plan).await?;
            let after = json!({"name": plan.name, "description": plan.description, "street_ids": plan.street_ids, "opinion_deadline": plan.opinion_deadline});
            let actor = convert::actor(&p);
            journal::record(tx, change(&plan, "", Ev::PlanUpdated, &actor, before, after, Record::Plan(plan_pb(&plan)))).await?;
            Ok(plan_pb(&plan))
        })
    })
    .await
}

pub(super) async fn advance_plan_stage(
    s: &Consultation,
    r: Request<pb::AdvancePlanStageRequest>,
) -> Result<pb::Plan, ConsultationError> {
    let (p, req) = caller(r)?;
    let id = uuid("plan_id", &req.plan_id)?;
    let now = s.now();
    let mut v = FieldViolations::new();
    let expected = validate::stage(req.expected_stage);
    v.check(expected.is_some(), "expected_stage", "must name the current stage");
    let note = validate::text(&mut v, "note", &req.note, TEXT_MAX, false);
    let next_deadline = validate::future_time(&mut v, "next_opinion_deadline", req.next_opinion_deadline.as_ref(), now);
    v.into_result()?;
    let key = RPCS.idempotency("AdvancePlanStage", &p, &req.request_id, &req)?;
    minhu_store::write(&s.d.pool, &key, async { Ok::<_, ConsultationError>(()) }, move |tx, ()| {
        Box::pin(async move {
            let mut plan = readable_plan(tx, &p, id, true).await?;
            require_department(&p, &plan.department_id, "complete a stage of its plan")?;
            let opinions = store::opinions(tx, id, true).await?;
            let next = plan::advance(&plan, &opinions, expected.expect("checked"))
                .map_err(ConsultationError::FailedPrecondition)?;
            let actor = convert::actor(&p);
            let from = plan.stage;
            plan.history.push(StageTransition { from, to: next, by: actor.clone(), time: now, note });
            plan.stage = next;
            plan.opinion_deadline = next_deadline;
            plan::settle(&mut plan, &opinions);
            plan.update_time = now;
            store::update(tx, &plan).await?;
            journal::record(
                tx,
                change(
                    &plan,
                    "",
                    Ev::PlanStageAdvanced,
                    &actor,
                    json!({"stage": from}),
                    json!({"stage": next}),
                    Record::Plan(plan_pb(&plan)),
                ),
            )
            .await?;
            Ok(plan_pb(&plan))
        })
    })
    .await
}

pub(super) async fn submit_plan_opinion(
    s: &Consultation,
    r: Request<pb::SubmitPlanOpinionRequest>,
) -> Result<pb::PlanOpinion, ConsultationError> {
    let (p, req) = caller(r)?;
    let id = uuid("plan_id", &req.plan_id)?;
    let mut v = FieldViolations::new();
    let stance = validate::stance(req.stance);
    let verdict = validate::verdict(req.acceptance);
    // "No opinion" and a sign-off may say nothing; everything else says what it means.
    let may_be_silent = req.no_opinion || verdict == Some(Verdict::SignedOff);
    let text = validate::text(&mut v, "text", &req.text, TEXT_MAX, !may_be_silent);
    v.check(req.stance == 0 || stance.is_some(), "stance", "is not an opinion stance");
    v.check(stance.is_some() || may_be_silent, "stance", "must be agree, disagree or conditional");
    v.check(!(req.no_opinion && verdict == Some(Verdict::Objected)), "no_opinion", "an objection is an opinion");
    let participation = validate::text(&mut v, "participation", &req.participation, TEXT_MAX, false);
    v.into_result()?;
    let key = RPCS.idempotency("SubmitPlanOpinion", &p, &req.request_id, &req)?;
    let (now, staged, calendar, days) = (s.now(), s.staged(), s.d.calendar.clone(), s.d.answer_working_days);
    let staged_tx = staged.clone();
    let out = minhu_store::write(&s.d.pool, &key, async { Ok::<_, ConsultationError>(()) }, move |tx, ()| {
        Box::pin(async move {
            let mut plan = readable_plan(tx, &p, id, true).await?;
            let street_id = require_street_leader(&p, "give a street's opinion on a plan")?.to_owned();
            plan::may_submit(&plan, &street_id, verdict)?;
            let mut opinions = store::opinions(tx, id, true).await?;
            let actor = convert::actor(&p);
            let mut o = PlanOpinion {
                id: Uuid::now_v7(),
                plan_id: id,
                street_id: street_id.clone(),
                stage: plan.stage,
                stance,
                text,
                participation,
                signed_by: actor.clone(),
                create_time: now,
                answer: None,
                no_opinion: req.no_opinion,
                acceptance: verdict,
                answer_deadline: None,
                answer_overdue: false,
            };
            // An item with something to say is owed an answer in working days.
            if o.needs_answer() {
                o.answer_deadline = Some(crate::to_micros(calendar.add_working_days(now, days)));
            }
            store::insert_opinion(tx, &o).await?;
            opinions.push(o.clone());
            plan::settle(&mut plan, &opinions);
            plan.update_time = now;
            store::update(tx, &plan).await?;
            journal::record(
                tx,
                change(
                    &plan,
                    &street_id,
                    Ev::PlanOpinionSubmitted,
                    &actor,
                    json!({}),
                    json!({"opinion": o}),
                    Record::PlanOpinion(plan_opinion_pb(&o)),
                ),
            )
            .await?;
            if let Some(due) = o.answer_deadline {
                staged_tx.schedule(tx, deadlines::plan_answer(o.id, due)).await?;
            }
            Ok(plan_opinion_pb(&o))
        })
    })
    .await?;
    staged.index().await;
    Ok(out)
}

pub(super) async fn answer_plan_opinion(
    s: &Consultation,
    r: Request<pb::AnswerPlanOpinionRequest>,
) -> Result<pb::PlanOpinion, ConsultationError> {
    let (p, req) = caller(r)?;
    let id = uuid("plan_opinion_id", &req.plan_opinion_id)?;
    let (result, reason) = validate::answer(req.result, &req.reason)?;
    let key = RPCS.idempotency("AnswerPlanOpinion", &p, &req.request_id, &req)?;
    let (now, staged) = (s.now(), s.staged());
    let staged_tx = staged.clone();
    let out = minhu_store::write(&s.d.pool, &key, async { Ok::<_, ConsultationError>(()) }, move |tx, ()| {
        Box::pin(async move {
            let missing = || ConsultationError::not_found(PLAN_OPINION, id);
            let plan_id = store::plan_of_opinion(tx, id).await?.ok_or_else(missing)?;
            let mut plan = readable_plan(tx, &p, plan_id, true).await.map_err(|e| match e {
                ConsultationError::NotFound { .. } => missing(),
                e => e,
            })?;
            require_department(&p, &plan.department_id, "answer the opinions on its plan")?;
            let mut opinions = store::opinions(tx, plan_id, true).await?;
            let o = opinions.iter_mut().find(|o| o.id == id).ok_or_else(missing)?;
            if o.answer.is_some() {
                return Err(crate::domain::Refusal::new(
                    "ALREADY_RECORDED",
                    format!("planOpinions/{id}"),
                    "the answer to this opinion was already recorded",
                )
                .into());
            }
            let actor = convert::actor(&p);
            o.answer = Some(Answer { result, reason, recorded_by: actor.clone(), record_time: now });
            let o = o.clone();
            store::update_opinion(tx, &o).await?;
            plan::settle(&mut plan, &opinions);
            plan.update_time = now;
            store::update(tx, &plan).await?;
            journal::record(
                tx,
                change(
                    &plan,
                    &o.street_id,
                    Ev::PlanOpinionAnswered,
                    &actor,
                    json!({"opinion": {"id": o.id, "answer": null}}),
                    json!({"opinion": {"id": o.id, "answer": o.answer}}),
                    Record::PlanOpinion(plan_opinion_pb(&o)),
                ),
            )
            .await?;
            staged_tx.cancel(tx, deadlines::PLAN_ANSWER, o.id).await?;
            Ok(plan_opinion_pb(&o))
        })
    })
    .await?;
    staged.index().await;
    Ok(out)
}

pub(super) async fn list_plan_opinions(
    s: &Consultation,
    r: Request<pb::ListPlanOpinionsRequest>,
) -> Result<pb::ListPlanOpinionsResponse, ConsultationError> {
    let (p, req) = caller(r)?;
    let id = uuid("plan_id", &req.plan_id)?;
    let stage = validate::stage(req.stage);
    if req.stage != 0 && stage.is_none() {
        return Err(ConsultationError::field("stage", "is not a plan stage"));
    }
    let stage_key = req.stage.to_string();
    let paging = RPCS.page::<(i32, (chrono::DateTime<chrono::Utc>, Uuid))>(
        req.page_size,
        &req.page_token,
        &["plan_opinions", &req.plan_id, &req.street_id, &stage_key],
    )?;
    let mut conn = s.d.pool.acquire().await?;
    readable_plan(&mut conn, &p, id, false).await?;
    let street = Some(req.street_id.trim()).filter(|x| !x.is_empty());
    let (mut rows, total) = store::list_opinions(&mut conn, id, street, stage, paging.after, paging.limit()).await?;
    let next_page_token = paging.finish(&mut rows, |o| (store::stage_rank(o.stage), (o.create_time, o.id)));
    Ok(pb::ListPlanOpinionsResponse {
        opinions: rows.iter().map(plan_opinion_pb).collect(),
        next_page_token,
        total_size: total as i32,
    })
}
