//! Decisions (决策建议): a department opens a consultation with every affected street,
//! the streets reply with opinion items, the department answers each, and records its
//! decision as final (flagged when out of order).

use minhu_grpc::FieldViolations;
use minhu_proto::consultation::v1::{self as pb, ConsultationEventType as Ev, watch_consultations_response::Record};
use serde_json::json;
use tonic::Request;
use uuid::Uuid;

use super::{
    Consultation, DECISION_OPINION, RPCS, caller,
    convert::{self, decision_opinion_pb, decision_pb},
    readable_decision, require_department, require_street_leader, uuid,
};
use crate::{
    clients::{Roster, RosterFailure},
    deadlines,
    domain::{
        Refusal, access, decision,
        model::{Actor, Answer, Decision, DecisionOpinion, DecisionState, Place, distinct},
        validate::{self, PlaceInput, TEXT_MAX},
    },
    error::ConsultationError,
    store::{
        decisions as store,
        journal::{self, Change, Subject},
        scope_filters,
    },
};

/// The street of each place, through the roster; a place in no street is a bad field.
pub(super) async fn resolve_places(
    roster: &Roster,
    field: &str,
    places: &[PlaceInput],
) -> Result<Vec<Place>, ConsultationError> {
    let mut v = FieldViolations::new();
    let mut out = Vec::new();
    for (i, (name, latitude, longitude)) in places.iter().enumerate() {
        match roster.resolve_location(*latitude, *longitude).await {
            Ok(r) => out.push(Place {
                name: name.clone(),
                latitude: *latitude,
                longitude: *longitude,
                street_id: r.street_id,
            }),
            Err(RosterFailure::NotFound | RosterFailure::Invalid(_)) => {
                v.add(format!("{field}[{i}].location"), "lies in no street of the district");
            }
            Err(RosterFailure::Other(e)) => return Err(e),
        }
    }
    v.into_result()?;
    Ok(out)
}

/// Checks that the streets exist (a bad field otherwise) and are active (STREET_INACTIVE).
pub(super) async fn check_streets(roster: &Roster, field: &str, ids: &[String]) -> Result<(), ConsultationError> {
    let mut v = FieldViolations::new();
    let mut inactive = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        match roster.street(id).await {
            Ok(street) if !street.active => inactive.push(Refusal::new(
                "STREET_INACTIVE",
                format!("streets/{id}"),
                format!("street `{id}` is no longer active"),
            )),
            Ok(_) => {}
            Err(RosterFailure::NotFound | RosterFailure::Invalid(_)) => {
                v.add(format!("{field}[{i}]"), "is not a street")
            }
            Err(RosterFailure::Other(e)) => return Err(e),
        }
    }
    v.into_result()?;
    if inactive.is_empty() { Ok(()) } else { Err(ConsultationError::FailedPrecondition(inactive)) }
}

/// The journal entry of a change to `d`.
fn change(
    d: &Decision,
    street_id: &str,
    event_type: Ev,
    actor: &Actor,
    before: serde_json::Value,
    after: serde_json::Value,
    record: Record,
) -> Change {
    Change {
        subject: Subject::Decision(d.id),
        department_id: d.department_id.clone(),
        street_ids: d.street_ids.clone(),
        street_id: street_id.to_owned(),
        event_type,
        actor: actor.clone(),
        occur_time: d.update_time,
        before,
        after,
        record,
    }
}

pub(super) async fn create_decision(
    s: &Consultation,
    r: Request<pb::CreateDecisionRequest>,
) -> Result<pb::Decision, ConsultationError> {
    let (p, req) = caller(r)?;
    let department_id = access::department_of(&p)
        .ok_or_else(|| ConsultationError::denied("only a department opens a decision consultation"))?
        .to_owned();
    let now = s.now();
    let input = validate::new_decision(req.decision.as_ref(), now)?;
    let key = RPCS.idempotency("CreateDecision", &p, &req.request_id, &req)?;
    let staged = s.staged();
    let (roster, calendar) = (s.d.roster.clone(), s.d.calendar.clone());
    let (staged_tx, actor) = (staged.clone(), convert::actor(&p));
    let lookups = async {
        check_streets(&roster, "decision.street_ids", &input.named).await?;
        let places = resolve_places(&roster, "decision.places", &input.places).await?;
        Ok::<_, ConsultationError>((input, places))
    };
    let out = minhu_store::write(&s.d.pool, &key, lookups, move |tx, (input, places)| {
        Box::pin(async move {
            let affected = distinct(places.iter().map(|p| p.street_id.clone()));
            let reply_deadline = input
                .reply_deadline
                .unwrap_or_else(|| crate::to_micros(calendar.add_working_days(now, input.reply_working_days)));
            let mut d = Decision {
                id: Uuid::now_v7(),
                department_id,
                street_ids: decision::consulted(&input.named, &affected),
                affected_street_ids: affected,
                places,
                kind: input.kind,
                subject: input.subject,
                description: input.description,
                documents: input.documents,
                reply_deadline,
                reply_working_days: input.reply_working_days,
                state: DecisionState::Soliciting,
                pending_street_ids: vec![],
                reply_overdue: false,
                flags: vec![],
                finalize_time: None,
                final_summary: String::new(),
                created_by: actor.clone(),
                create_time: now,
                update_time: now,
            };
            decision::settle(&mut d, &[], now);
            store::insert(tx, &d).await?;
            let after = json!({"decision": d});
            journal::record(
                tx,
                change(&d, "", Ev::DecisionCreated, &actor, json!({}), after, Record::Decision(decision_pb(&d))),
            )
            .await?;
            staged_tx.schedule(tx, deadlines::reply(d.id, d.reply_deadline)).await?;
            Ok(decision_pb(&d))
        })
    })
    .await?;
    staged.index().await;
    Ok(out)
}

pub(super) async fn get_decision(
    s: &Consultation,
    r: Request<pb::GetDecisionRequest>,
) -> Result<pb::Decision, ConsultationError> {
    let (p, req) = caller(r)?;
    let id = uuid("decision_id", &req.decision_id)?;
    let mut conn = s.d.pool.acquire().await?;
    Ok(decision_pb(&readable_decision(&mut conn, &p, id, false).await?))
}

pub(super) async fn list_decisions(
    s: &Consultation,
    r: Request<pb::ListDecisionsRequest>,
) -> Result<pb::ListDecisionsResponse, ConsultationError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let mut states = Vec::new();
    for (i, st) in req.states.iter().enumerate() {
        match pb::DecisionState::try_from(*st) {
            Ok(pb::DecisionState::Unspecified) | Err(_) => v.add(format!("states[{i}]"), "is not a decision state"),
            Ok(st) => states.push(st.as_str_name().to_owned()),
        }
    }
    let kind = validate::decision_kind(req.kind);
    v.check(req.kind == 0 || kind.is_some(), "kind", "is not a decision kind");
    v.into_result()?;
    let states_key = states.join(",");
    let kind_key = req.kind.to_string();
    let paging = RPCS.page::<(chrono::DateTime<chrono::Utc>, Uuid)>(
        req.page_size,
        &req.page_token,
        &["decisions", &req.street_id, &req.department_id, &states_key, &kind_key],
    )?;
    let filter = store::Filter {
        street_id: Some(req.street_id.trim().to_owned()).filter(|x| !x.is_empty()),
        department_id: Some(req.department_id.trim().to_owned()).filter(|x| !x.is_empty()),
        states,
        kind,
    };
    let Some(scope) = scope_filters(&access::scope(&p)) else {
        return Ok(pb::ListDecisionsResponse::default());
    };
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, total) = store::list(&mut conn, scope, &filter, paging.after, paging.limit()).await?;
    let next_page_token = paging.finish(&mut rows, |d| (d.create_time, d.id));
    Ok(pb::ListDecisionsResponse {
        decisions: rows.iter().map(decision_pb).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

pub(super) async fn submit_decision_opinion(
    s: &Consultation,
    r: Request<pb::SubmitDecisionOpinionRequest>,
) -> Result<pb::DecisionOpinion, ConsultationError> {
    let (p, req) = caller(r)?;
    let id = uuid("decision_id", &req.decision_id)?;
    let (stance, text) = validate::decision_opinion(req.stance, &req.text)?;
    let key = RPCS.idempotency("SubmitDecisionOpinion", &p, &req.request_id, &req)?;
    let (now, staged, calendar, days) = (s.now(), s.staged(), s.d.calendar.clone(), s.d.answer_working_days);
    let staged_tx = staged.clone();
    let out = minhu_store::write(&s.d.pool, &key, async { Ok::<_, ConsultationError>(()) }, move |tx, ()| {
        Box::pin(async move {
            let mut d = readable_decision(tx, &p, id, true).await?;
            let street_id = require_street_leader(&p, "give a street's opinion")?.to_owned();
            decision::may_reply(&d, &street_id, now)?;
            let mut opinions = store::opinions(tx, id, true).await?;
            let o = DecisionOpinion {
                id: Uuid::now_v7(),
                decision_id: id,
                department_id: d.department_id.clone(),
                street_id: street_id.clone(),
                stance,
                text,
                signed_by: convert::actor(&p),
                create_time: now,
                adoption: None,
                answer_deadline: crate::to_micros(calendar.add_working_days(now, days)),
                answer_overdue: false,
            };
            store::insert_opinion(tx, &o).await?;
            opinions.push(o.clone());
            let before_state = d.state;
            decision::settle(&mut d, &opinions, now);
            d.update_time = now;
            store::update(tx, &d).await?;
            let actor = convert::actor(&p);
            journal::record(
                tx,
                change(
                    &d,
                    &street_id,
                    Ev::DecisionOpinionSubmitted,
                    &actor,
                    json!({}),
                    json!({"opinion": o}),
                    Record::DecisionOpinion(decision_opinion_pb(&o)),
                ),
            )
            .await?;
            if d.state != before_state {
                journal::record(
                    tx,
                    change(
                        &d,
                        "",
                        Ev::DecisionStateChanged,
                        &actor,
                        json!({"state": before_state}),
                        json!({"state": d.state}),
                        Record::Decision(decision_pb(&d)),
                    ),
                )
                .await?;
            }
            staged_tx.schedule(tx, deadlines::answer(o.id, o.answer_deadline)).await?;
            if d.pending_street_ids.is_empty() {
                staged_tx.cancel(tx, deadlines::REPLY, d.id).await?;
            }
            Ok(decision_opinion_pb(&o))
        })
    })
    .await?;
    staged.index().await;
    Ok(out)
}

pub(super) async fn record_adoption(
    s: &Consultation,
    r: Request<pb::RecordAdoptionRequest>,
) -> Result<pb::DecisionOpinion, ConsultationError> {
    let (p, req) = caller(r)?;
    let id = uuid("decision_opinion_id", &req.decision_opinion_id)?;
    let (result, reason) = validate::answer(req.result, &req.reason)?;
    let key = RPCS.idempotency("RecordAdoption", &p, &req.request_id, &req)?;
    let (now, staged) = (s.now(), s.staged());
    let staged_tx = staged.clone();
    let out = minhu_store::write(&s.d.pool, &key, async { Ok::<_, ConsultationError>(()) }, move |tx, ()| {
        Box::pin(async move {
            let missing = || ConsultationError::not_found(DECISION_OPINION, id);
            let decision_id = store::decision_of_opinion(tx, id).await?.ok_or_else(missing)?;
            let mut d = readable_decision(tx, &p, decision_id, true).await.map_err(|e| match e {
                ConsultationError::NotFound { .. } => missing(),
                e => e,
            })?;
            require_department(&p, &d.department_id, "answer the opinions on its decision")?;
            let mut opinions = store::opinions(tx, decision_id, true).await?;
            let o = opinions.iter_mut().find(|o| o.id == id).ok_or_else(missing)?;
            let actor = convert::actor(&p);
            let answer = decision::answer(o, Answer { result, reason, recorded_by: actor.clone(), record_time: now })?;
            o.adoption = Some(answer);
            let o = o.clone();
            store::update_opinion(tx, &o).await?;
            let before_state = d.state;
            decision::settle(&mut d, &opinions, now);
            d.update_time = now;
            store::update(tx, &d).await?;
            journal::record(
                tx,
                change(
                    &d,
                    &o.street_id,
                    Ev::AdoptionRecorded,
                    &actor,
                    json!({"opinion": {"id": o.id, "adoption": null}}),
                    json!({"opinion": {"id": o.id, "adoption": o.adoption}}),
                    Record::DecisionOpinion(decision_opinion_pb(&o)),
                ),
            )
            .await?;
            if d.state != before_state {
                journal::record(
                    tx,
                    change(
                        &d,
                        "",
                        Ev::DecisionStateChanged,
                        &actor,
                        json!({"state": before_state}),
                        json!({"state": d.state}),
                        Record::Decision(decision_pb(&d)),
                    ),
                )
                .await?;
            }
            staged_tx.cancel(tx, deadlines::ANSWER, o.id).await?;
            Ok(decision_opinion_pb(&o))
        })
    })
    .await?;
    staged.index().await;
    Ok(out)
}

pub(super) async fn list_decision_opinions(
    s: &Consultation,
    r: Request<pb::ListDecisionOpinionsRequest>,
) -> Result<pb::ListDecisionOpinionsResponse, ConsultationError> {
    let (p, req) = caller(r)?;
    let id = uuid("decision_id", &req.decision_id)?;
    let pending = req.adoption_pending_only.to_string();
    let paging = RPCS.page::<(String, (chrono::DateTime<chrono::Utc>, Uuid))>(
        req.page_size,
        &req.page_token,
        &["decision_opinions", &req.decision_id, &req.street_id, &pending],
    )?;
    let mut conn = s.d.pool.acquire().await?;
    readable_decision(&mut conn, &p, id, false).await?;
    let street = Some(req.street_id.trim()).filter(|x| !x.is_empty());
    let (mut rows, total) =
        store::list_opinions(&mut conn, id, street, req.adoption_pending_only, paging.after.clone(), paging.limit())
            .await?;
    let next_page_token = paging.finish(&mut rows, |o| (o.street_id.clone(), (o.create_time, o.id)));
    Ok(pb::ListDecisionOpinionsResponse {
        opinions: rows.iter().map(decision_opinion_pb).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

pub(super) async fn finalize_decision(
    s: &Consultation,
    r: Request<pb::FinalizeDecisionRequest>,
) -> Result<pb::Decision, ConsultationError> {
    let (p, req) = caller(r)?;
    let id = uuid("decision_id", &req.decision_id)?;
    let mut v = FieldViolations::new();
    let summary = validate::text(&mut v, "summary", &req.summary, TEXT_MAX, true);
    let places = validate::places(&mut v, "places", &req.places);
    v.into_result()?;
    let key = RPCS.idempotency("FinalizeDecision", &p, &req.request_id, &req)?;
    let (now, staged, roster) = (s.now(), s.staged(), s.d.roster.clone());
    let staged_tx = staged.clone();
    let lookups = async move { resolve_places(&roster, "places", &places).await };
    let out = minhu_store::write(&s.d.pool, &key, lookups, move |tx, places| {
        Box::pin(async move {
            let mut d = readable_decision(tx, &p, id, true).await?;
            require_department(&p, &d.department_id, "record its decision as final")?;
            let opinions = store::opinions(tx, id, true).await?;
            let affected = distinct(d.affected_street_ids.iter().cloned().chain(places.iter().map(|p| p.street_id.clone())));
            let flags = decision::finalize(&d, &opinions, &affected, now)?;
            let before = json!({"state": d.state});
            d.state = DecisionState::Finalized;
            d.flags = flags;
            d.finalize_time = Some(now);
            d.final_summary = summary;
            d.places.extend(places);
            d.affected_street_ids = affected;
            d.update_time = now;
            store::update(tx, &d).await?;
            let actor = convert::actor(&p);
            let after = json!({"state": d.state, "flags": d.flags, "final_summary": d.final_summary, "affected_street_ids": d.affected_street_ids});
            journal::record(tx, change(&d, "", Ev::DecisionFinalized, &actor, before, after, Record::Decision(decision_pb(&d)))).await?;
            staged_tx.cancel(tx, deadlines::REPLY, d.id).await?;
            Ok(decision_pb(&d))
        })
    })
    .await?;
    staged.index().await;
    Ok(out)
}
