//! Opinion solicitation (事先书面征求街道意见): a department files, the street replies in
//! writing, the department decides referring to the opinion; withdrawals.

use minhu_grpc::{FieldViolations, Principal, Role};
use minhu_proto::{common::v1 as common, personnel::v1 as pb};
use sqlx::{PgConnection, types::Json};
use tonic::Request;
use uuid::Uuid;

use super::{MAX_TEXT, Personnel, caller, code, convert, id, key, me, page, scope, total, uuid};
use crate::{
    deadlines,
    domain::{self, State},
    error::PersonnelError,
    store::{self, Attachment, SolicitationRow},
};

const RESOURCE: &str = "minhu.personnel.v1.OpinionSolicitation";
const MAX_ATTACHMENTS: usize = 20;

/// The positions a solicitation may concern.
pub(super) fn leadership_position(v: &mut FieldViolations, field: &str, value: i32) -> &'static str {
    match common::Position::try_from(value) {
        Ok(common::Position::StationHead) => "POSITION_STATION_HEAD",
        Ok(common::Position::StationLeadershipMember) => "POSITION_STATION_LEADERSHIP_MEMBER",
        _ => {
            v.add(field, "must be STATION_HEAD or STATION_LEADERSHIP_MEMBER");
            ""
        }
    }
}

pub(super) fn matter(v: &mut FieldViolations, field: &str, value: i32) -> &'static str {
    match pb::PersonnelMatter::try_from(value) {
        Ok(pb::PersonnelMatter::Unspecified) | Err(_) => {
            v.add(field, "must be a personnel matter");
            ""
        }
        Ok(m) => m.as_str_name(),
    }
}

/// The station named, checked against the street and the caller's department: the caller
/// must lead the station's department; the station must be active and lie in or serve the
/// street.
pub(super) async fn station_for(
    s: &Personnel,
    p: &Principal,
    station_id: &str,
    street_id: &str,
) -> Result<minhu_proto::roster::v1::Station, PersonnelError> {
    let station =
        s.d.roster
            .station(station_id)
            .await?
            .ok_or_else(|| PersonnelError::not_found("minhu.roster.v1.Station", station_id))?;
    domain::require_department(p, &station.department_id)?;
    if !station.active {
        return Err(PersonnelError::refused(
            "STATION_INACTIVE",
            format!("stations/{station_id}"),
            "the station is inactive",
        ));
    }
    if station.street_id != street_id && !station.served_street_ids.iter().any(|s| s == street_id) {
        return Err(PersonnelError::refused(
            "STATION_NOT_SERVING_STREET",
            format!("stations/{station_id}"),
            format!("station `{station_id}` neither lies in nor serves street `{street_id}`"),
        ));
    }
    Ok(station)
}

pub(super) async fn create(
    s: &Personnel,
    r: Request<pb::CreateOpinionSolicitationRequest>,
) -> Result<pb::OpinionSolicitation, PersonnelError> {
    let (p, req) = caller(r)?;
    let given = req.solicitation.clone().unwrap_or_default();
    let now = s.now();
    let mut v = FieldViolations::new();
    let station_id = code(&mut v, "solicitation.station_id", &given.station_id);
    let street_id = code(&mut v, "solicitation.street_id", &given.street_id);
    let person_id = uuid(&mut v, "solicitation.person_id", &given.person_id).to_string();
    let position = leadership_position(&mut v, "solicitation.position", given.position);
    let matter = matter(&mut v, "solicitation.matter", given.matter);
    let proposal = v.required_text("solicitation.proposal", &given.proposal, MAX_TEXT).to_owned();
    let deadline = match &given.reply_deadline {
        Some(t) => {
            let at = convert::from_ts(t);
            v.check(at.is_some_and(|at| at > now), "solicitation.reply_deadline", "must be in the future");
            at.unwrap_or(now)
        }
        None => s.d.calendar.add_working_days(now, s.d.reply_working_days),
    };
    v.check(given.attachments.len() <= MAX_ATTACHMENTS, "solicitation.attachments", "at most 20 attachments");
    for (i, a) in given.attachments.iter().enumerate() {
        v.check(!a.id.trim().is_empty(), &format!("solicitation.attachments[{i}].id"), "must not be empty");
    }
    v.into_result()?;
    if !p.has_any_role(&[Role::DepartmentLeader, Role::PersonnelOfficer]) {
        return Err(PersonnelError::denied("only a department's leaders file solicitations"));
    }
    let key = key("CreateOpinionSolicitation", &p, &req.request_id, &req)?;

    // The roster first, outside the transaction, and not at all on a replay.
    let lookups = async {
        let station = station_for(s, &p, &station_id, &street_id).await?;
        let person =
            s.d.roster
                .person(&person_id)
                .await?
                .ok_or_else(|| PersonnelError::not_found("minhu.roster.v1.Person", &person_id))?;
        if !person.active {
            return Err(PersonnelError::refused(
                "PERSON_INACTIVE",
                format!("people/{person_id}"),
                "the person is inactive",
            ));
        }
        let kind = s.d.roster.department(&station.department_id).await?.map(|d| d.kind).unwrap_or_default();
        let escalate_to: Vec<String> = s
            .d
            .roster
            .street_leaders(&street_id)
            .await?
            .into_iter()
            .filter(|l| l.position() == common::Position::StreetPrincipalLeader || l.areas_in_charge.contains(&kind))
            .map(|l| l.person_id)
            .collect();

        let row = SolicitationRow {
            id: Uuid::now_v7(),
            department_id: station.department_id.clone(),
            station_id,
            street_id,
            person_id,
            position: position.into(),
            matter: matter.into(),
            proposal,
            attachments: Json(
                given
                    .attachments
                    .iter()
                    .map(|a| Attachment {
                        id: a.id.trim().to_owned(),
                        file_name: a.file_name.clone(),
                        content_type: a.content_type.clone(),
                        size_bytes: a.size_bytes,
                        sha256: a.sha256.clone(),
                    })
                    .collect(),
            ),
            reply_deadline: minhu_time(deadline),
            state: State::AwaitingOpinion.as_str().into(),
            escalate_to,
            opinion_stance: None,
            opinion_text: None,
            opinion_signed_by: None,
            opinion_time: None,
            opinion_late: false,
            decision: None,
            opinion_adopted: false,
            decision_reason: String::new(),
            decided_by: None,
            decide_time: None,
            withdraw_reason: String::new(),
            escalate_time: None,
            created_by: Json(me(&p)),
            create_time: now,
            update_time: now,
        };
        Ok::<_, PersonnelError>(row)
    };
    let staged = s.staged();
    let st = staged.clone();
    let out = s
        .write_after(&key, lookups, move |tx, row| {
            Box::pin(async move {
                store::insert_solicitation(tx, &row).await?;
                st.schedule(tx, deadlines::reply(row.id, row.reply_deadline)).await?;
                Ok(convert::solicitation(row))
            })
        })
        .await?;
    staged.index().await;
    Ok(out)
}

/// Postgres keeps microseconds: a deadline is stored as it will be read back.
fn minhu_time(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The solicitation, locked, if `p` may read it; NOT_FOUND alike when missing or foreign.
async fn readable(
    tx: &mut PgConnection,
    p: &Principal,
    id: Uuid,
    lock: bool,
) -> Result<SolicitationRow, PersonnelError> {
    store::solicitation(tx, id, lock)
        .await?
        .filter(|r| domain::may_read(p, &r.department_id, &r.street_id))
        .ok_or_else(|| PersonnelError::not_found(RESOURCE, id))
}

pub(super) async fn get(
    s: &Personnel,
    r: Request<pb::GetOpinionSolicitationRequest>,
) -> Result<pb::OpinionSolicitation, PersonnelError> {
    let (p, req) = caller(r)?;
    let id = id("solicitation_id", &req.solicitation_id)?;
    let mut conn = s.d.pool.acquire().await?;
    Ok(convert::solicitation(readable(&mut conn, &p, id, false).await?))
}

pub(super) async fn list(
    s: &Personnel,
    r: Request<pb::ListOpinionSolicitationsRequest>,
) -> Result<pb::ListOpinionSolicitationsResponse, PersonnelError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let states: Vec<String> = req
        .states
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match pb::SolicitationState::try_from(*n) {
            Ok(pb::SolicitationState::Unspecified) | Err(_) => {
                v.add(format!("states[{i}]"), "must be a solicitation state");
                None
            }
            Ok(s) => Some(s.as_str_name().to_owned()),
        })
        .collect();
    let matter = match pb::PersonnelMatter::try_from(req.matter) {
        Ok(pb::PersonnelMatter::Unspecified) => "",
        Ok(m) => m.as_str_name(),
        Err(_) => {
            v.add("matter", "must be a personnel matter");
            ""
        }
    };
    v.into_result()?;
    let joined = states.join(",");
    let q = [req.street_id.as_str(), &req.department_id, &req.station_id, &req.person_id, &joined, matter];
    let page = page::<(chrono::DateTime<chrono::Utc>, Uuid)>(req.page_size, &req.page_token, &q)?;
    let Some(scope) = scope(&p, &req.street_id, &req.department_id)? else {
        return Ok(pb::ListOpinionSolicitationsResponse::default());
    };
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, count) = store::list_solicitations(
        &mut conn,
        &scope,
        req.station_id.trim(),
        req.person_id.trim(),
        &states,
        matter,
        page.after,
        page.limit(),
    )
    .await?;
    let next_page_token = page.finish(&mut rows, |r| (r.create_time, r.id));
    Ok(pb::ListOpinionSolicitationsResponse {
        solicitations: rows.into_iter().map(convert::solicitation).collect(),
        next_page_token,
        total_size: total(count),
    })
}

pub(super) async fn submit_opinion(
    s: &Personnel,
    r: Request<pb::SubmitOpinionRequest>,
) -> Result<pb::OpinionSolicitation, PersonnelError> {
    let (p, req) = caller(r)?;
    let id = id("solicitation_id", &req.solicitation_id)?;
    let mut v = FieldViolations::new();
    let stance = match common::OpinionStance::try_from(req.stance) {
        Ok(common::OpinionStance::Unspecified) | Err(_) => {
            v.add("stance", "must be AGREE, DISAGREE or CONDITIONAL");
            common::OpinionStance::Unspecified
        }
        Ok(s) => s,
    };
    let text = if stance == common::OpinionStance::Agree {
        v.optional_text("text", &req.text, MAX_TEXT)
    } else {
        v.required_text("text", &req.text, MAX_TEXT)
    }
    .to_owned();
    v.into_result()?;
    let key = key("SubmitOpinion", &p, &req.request_id, &req)?;
    let now = s.now();
    let staged = s.staged();
    let st = staged.clone();
    let out = s
        .write(&key, move |tx| {
            Box::pin(async move {
                let row = readable(tx, &p, id, true).await?;
                domain::require_street_leader(&p, &row.street_id)?;
                let late = domain::submit_opinion(row.state(), id, now, row.reply_deadline)?;
                let saved = store::save_opinion(tx, id, stance.as_str_name(), &text, &me(&p), now, late).await?;
                st.cancel_reply(tx, id).await?;
                Ok(convert::solicitation(saved))
            })
        })
        .await?;
    staged.index().await;
    Ok(out)
}

pub(super) async fn record_decision(
    s: &Personnel,
    r: Request<pb::RecordDecisionRequest>,
) -> Result<pb::OpinionSolicitation, PersonnelError> {
    let (p, req) = caller(r)?;
    let id = id("solicitation_id", &req.solicitation_id)?;
    let mut v = FieldViolations::new();
    let decision = v.required_text("decision", &req.decision, MAX_TEXT).to_owned();
    let reason = v.optional_text("reason", &req.reason, MAX_TEXT).to_owned();
    v.into_result()?;
    let key = key("RecordDecision", &p, &req.request_id, &req)?;
    let now = s.now();
    let adopted = req.opinion_adopted;
    let staged = s.staged();
    let st = staged.clone();
    let out = s
        .write(&key, move |tx| {
            Box::pin(async move {
                let row = readable(tx, &p, id, true).await?;
                domain::require_department(&p, &row.department_id)?;
                let state = row.state();
                domain::record_decision(state, id, now, row.reply_deadline, adopted, &reason)?;
                // Without an opinion there is nothing to adopt.
                let adopted = adopted && state == State::OpinionReceived;
                let saved = store::save_decision(tx, id, &decision, adopted, &reason, &me(&p), now).await?;
                st.cancel_reply(tx, id).await?;
                Ok(convert::solicitation(saved))
            })
        })
        .await?;
    staged.index().await;
    Ok(out)
}

pub(super) async fn withdraw(
    s: &Personnel,
    r: Request<pb::WithdrawOpinionSolicitationRequest>,
) -> Result<pb::OpinionSolicitation, PersonnelError> {
    let (p, req) = caller(r)?;
    let id = id("solicitation_id", &req.solicitation_id)?;
    let mut v = FieldViolations::new();
    let reason = v.required_text("reason", &req.reason, MAX_TEXT).to_owned();
    v.into_result()?;
    let key = key("WithdrawOpinionSolicitation", &p, &req.request_id, &req)?;
    let now = s.now();
    let staged = s.staged();
    let st = staged.clone();
    let out = s
        .write(&key, move |tx| {
            Box::pin(async move {
                let row = readable(tx, &p, id, true).await?;
                domain::require_department(&p, &row.department_id)?;
                domain::withdraw(row.state(), id)?;
                let saved = store::save_withdrawal(tx, id, &reason, now).await?;
                st.cancel_reply(tx, id).await?;
                Ok(convert::solicitation(saved))
            })
        })
        .await?;
    staged.index().await;
    Ok(out)
}
