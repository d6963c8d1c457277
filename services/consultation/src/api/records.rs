//! What the district reads: trails (留痕) and their verification, escalations (督办), and
//! the figures per department and street.

use minhu_proto::consultation::v1 as pb;
use tonic::Request;

use super::{
    Consultation, RPCS, caller,
    convert::{decision_pb, escalation_pb, plan_opinion_pb, ts},
    readable_subject, uuid,
};
use crate::{
    domain::{
        access,
        model::{DecisionState, Verdict},
        report::{self, Figures},
        validate,
    },
    error::ConsultationError,
    store::{decisions, escalations, journal, plans, scope_filters},
};

pub(super) async fn list_trail_entries(
    s: &Consultation,
    r: Request<pb::ListTrailEntriesRequest>,
) -> Result<pb::ListTrailEntriesResponse, ConsultationError> {
    let (p, req) = caller(r)?;
    let paging = RPCS.page::<i64>(req.page_size, &req.page_token, &["trail", &req.subject_id])?;
    let mut conn = s.d.pool.acquire().await?;
    let id = uuid("subject_id", &req.subject_id)?;
    readable_subject(&mut conn, &p, id).await?;
    let subject = id.to_string();
    let total = journal::trail_count(&mut conn, &subject).await?;
    let mut rows = journal::trail(&mut conn, &subject, paging.after.unwrap_or(0), paging.limit()).await?;
    let next_page_token = paging.finish(&mut rows, |e| e.sequence);
    Ok(pb::ListTrailEntriesResponse {
        entries: rows
            .into_iter()
            .map(|e| pb::TrailEntry {
                sequence: e.sequence,
                event_type: e.event_type,
                event_sequence: e.event_sequence,
                actor_json: e.actor_json,
                occur_time: Some(ts(e.occur_time)),
                before_json: e.before_json,
                after_json: e.after_json,
                prev_hash: e.prev_hash,
                hash: e.hash,
            })
            .collect(),
        next_page_token,
        total_size: total as i32,
    })
}

pub(super) async fn verify_trail(
    s: &Consultation,
    r: Request<pb::VerifyTrailRequest>,
) -> Result<pb::VerifyTrailResponse, ConsultationError> {
    let (p, req) = caller(r)?;
    let mut conn = s.d.pool.acquire().await?;
    let id = uuid("subject_id", &req.subject_id)?;
    readable_subject(&mut conn, &p, id).await?;
    let subject = id.to_string();
    let entries = journal::trail(&mut conn, &subject, 0, i64::MAX).await?;
    let v = minhu_trail::verify(&subject, &entries);
    Ok(pb::VerifyTrailResponse {
        verified: v.verified,
        entries_checked: v.entries_checked,
        first_broken_sequence: v.first_broken_sequence,
        reason: v.reason,
        head_hash: v.head_hash,
    })
}

pub(super) async fn list_escalations(
    s: &Consultation,
    r: Request<pb::ListEscalationsRequest>,
) -> Result<pb::ListEscalationsResponse, ConsultationError> {
    let (p, req) = caller(r)?;
    let kind = validate::escalation_kind(req.kind);
    let decision_id =
        if req.decision_id.trim().is_empty() { None } else { Some(uuid("decision_id", &req.decision_id)?) };
    let kind_key = req.kind.to_string();
    let paging = RPCS.page::<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>(
        req.page_size,
        &req.page_token,
        &["escalations", &req.department_id, &req.street_id, &kind_key, &req.decision_id, &req.plan_id],
    )?;
    let Some(scope) = scope_filters(&access::scope(&p)) else { return Ok(pb::ListEscalationsResponse::default()) };
    let filter = escalations::Filter {
        department_id: Some(req.department_id.trim().to_owned()).filter(|x| !x.is_empty()),
        street_id: Some(req.street_id.trim().to_owned()).filter(|x| !x.is_empty()),
        kind,
        decision_id,
        plan_id: minhu_grpc::optional_uuid("plan_id", &req.plan_id)?,
    };
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, total) = escalations::list(&mut conn, scope, &filter, paging.after, paging.limit()).await?;
    let next_page_token = paging.finish(&mut rows, |e| (e.escalate_time, e.id));
    Ok(pb::ListEscalationsResponse {
        escalations: rows.iter().map(escalation_pb).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

fn figures_pb(organization_id: &str, f: &Figures) -> pb::ConsultationFigures {
    pb::ConsultationFigures {
        organization_id: organization_id.to_owned(),
        consultations: f.consultations,
        streets_consulted: f.streets_consulted,
        opinions: f.opinions,
        adopted: f.adopted,
        partially_adopted: f.partially_adopted,
        not_adopted: f.not_adopted,
        unanswered: f.unanswered,
        adoption_rate: f.adoption_rate(),
        answers_overdue: f.answers_overdue,
        replies_overdue: f.replies_overdue,
        decisions_finalized: f.decisions_finalized,
        decisions_flagged: f.decisions_flagged,
        plans: f.plans,
        plan_objections: f.plan_objections,
    }
}

pub(super) async fn get_consultation_report(
    s: &Consultation,
    r: Request<pb::GetConsultationReportRequest>,
) -> Result<pb::ConsultationReport, ConsultationError> {
    let (p, req) = caller(r)?;
    if !p.is_district() {
        return Err(ConsultationError::denied("only the district reads the consultation report"));
    }
    let start = req
        .start_time
        .as_ref()
        .map(|t| validate::time(t).ok_or_else(|| ConsultationError::field("start_time", "is not a valid time")))
        .transpose()?;
    let end = req
        .end_time
        .as_ref()
        .map(|t| validate::time(t).ok_or_else(|| ConsultationError::field("end_time", "is not a valid time")))
        .transpose()?;
    let within = |t: chrono::DateTime<chrono::Utc>| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t < e);
    let mut conn = s.d.pool.acquire().await?;
    let ds: Vec<_> = decisions::all(&mut conn).await?.into_iter().filter(|d| within(d.create_time)).collect();
    let os: Vec<_> = decisions::all_opinions(&mut conn)
        .await?
        .into_iter()
        .filter(|o| ds.iter().any(|d| d.id == o.decision_id))
        .collect();
    let ps: Vec<_> = plans::all(&mut conn).await?.into_iter().filter(|p| within(p.create_time)).collect();
    let pos: Vec<_> =
        plans::all_opinions(&mut conn).await?.into_iter().filter(|o| ps.iter().any(|p| p.id == o.plan_id)).collect();
    let es: Vec<_> = escalations::all(&mut conn)
        .await?
        .into_iter()
        .filter(|e| ds.iter().any(|d| Some(d.id) == e.decision_id) || ps.iter().any(|p| Some(p.id) == e.plan_id))
        .collect();
    let report = report::compute(&ds, &os, &ps, &pos, &es);
    Ok(pb::ConsultationReport {
        departments: report.departments.iter().map(|(id, f)| figures_pb(id, f)).collect(),
        streets: report.streets.iter().map(|(id, f)| figures_pb(id, f)).collect(),
        objections: pos.iter().filter(|o| o.acceptance == Some(Verdict::Objected)).map(plan_opinion_pb).collect(),
        flagged_decisions: ds
            .iter()
            .filter(|d| d.state == DecisionState::Finalized && !d.flags.is_empty())
            .map(decision_pb)
            .collect(),
    })
}
