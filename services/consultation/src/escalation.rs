//! Escalations (督办): what the service records by itself when a deadline passes — a
//! street silent at the reply deadline (逾期未回复), an opinion item unanswered at its
//! answer deadline (逾期未反馈). Each hook takes the transaction and the time it runs at,
//! locks the decision first (then its items), decides again from what it reads, and
//! records nothing when there is nothing left to do: a deadline firing after the change
//! that should have cancelled it is harmless.

use chrono::{DateTime, Utc};
use minhu_proto::consultation::v1::{ConsultationEventType as Ev, watch_consultations_response::Record};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    api::convert::{decision_pb, escalation_pb},
    domain,
    domain::{
        decision,
        model::{Actor, DecisionState, Escalation, EscalationKind},
    },
    error::ConsultationError,
    store::{
        decisions, escalations,
        journal::{self, Change, Subject},
        plans,
    },
};

/// The district, as an escalation's addressee.
pub const DISTRICT: &str = "district";

/// The reply deadline of `decision_id` passed at `now`: one escalation per silent street
/// (addressed to its leaders, the department's and the district), the decision marked
/// reply-overdue and moved on. Returns whether anything was recorded.
pub async fn reply_overdue(
    tx: &mut PgConnection,
    decision_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, ConsultationError> {
    let Some(mut d) = decisions::get(tx, decision_id, true).await? else { return Ok(false) };
    if d.state != DecisionState::Soliciting || now <= d.reply_deadline {
        return Ok(false);
    }
    let opinions = decisions::opinions(tx, decision_id, true).await?;
    let before = json!({"state": d.state, "reply_overdue": d.reply_overdue});
    decision::settle(&mut d, &opinions, now);
    let silent = std::mem::take(&mut d.pending_street_ids);
    for street in &silent {
        let e = Escalation {
            id: Uuid::now_v7(),
            kind: EscalationKind::ReplyOverdue,
            decision_id: Some(decision_id),
            plan_id: None,
            opinion_id: None,
            department_id: d.department_id.clone(),
            street_id: street.clone(),
            due_time: d.reply_deadline,
            escalate_time: now,
            addressed_to: vec![
                format!("street/{street}/leaders"),
                format!("department/{}/leaders", d.department_id),
                DISTRICT.into(),
            ],
        };
        escalations::insert(tx, &e).await?;
        journal::record(
            tx,
            Change {
                subject: Subject::Decision(decision_id),
                department_id: d.department_id.clone(),
                street_ids: d.street_ids.clone(),
                street_id: street.clone(),
                event_type: Ev::ReplyOverdue,
                actor: Actor::service(),
                occur_time: now,
                before: json!({}),
                after: json!({"escalation": e}),
                record: Record::Escalation(escalation_pb(&e)),
            },
        )
        .await?;
    }
    d.pending_street_ids = silent;
    d.reply_overdue = !d.pending_street_ids.is_empty();
    d.update_time = now;
    decisions::update(tx, &d).await?;
    journal::record(
        tx,
        Change {
            subject: Subject::Decision(decision_id),
            department_id: d.department_id.clone(),
            street_ids: d.street_ids.clone(),
            street_id: String::new(),
            event_type: Ev::DecisionStateChanged,
            actor: Actor::service(),
            occur_time: now,
            before,
            after: json!({"state": d.state, "reply_overdue": d.reply_overdue}),
            record: Record::Decision(decision_pb(&d)),
        },
    )
    .await?;
    Ok(true)
}

/// The answer deadline of opinion `opinion_id` passed at `now` unanswered: an escalation
/// addressed to the department's leaders and the district, the item marked overdue.
/// Returns whether anything was recorded.
pub async fn answer_overdue(
    tx: &mut PgConnection,
    opinion_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, ConsultationError> {
    let Some(decision_id) = decisions::decision_of_opinion(tx, opinion_id).await? else { return Ok(false) };
    let Some(d) = decisions::get(tx, decision_id, true).await? else { return Ok(false) };
    let opinions = decisions::opinions(tx, decision_id, true).await?;
    let Some(mut o) = opinions.into_iter().find(|o| o.id == opinion_id) else { return Ok(false) };
    if o.adoption.is_some() || o.answer_overdue || now <= o.answer_deadline {
        return Ok(false);
    }
    o.answer_overdue = true;
    decisions::update_opinion(tx, &o).await?;
    let e = Escalation {
        id: Uuid::now_v7(),
        kind: EscalationKind::AnswerOverdue,
        decision_id: Some(decision_id),
        plan_id: None,
        opinion_id: Some(o.id),
        department_id: d.department_id.clone(),
        street_id: o.street_id.clone(),
        due_time: o.answer_deadline,
        escalate_time: now,
        addressed_to: vec![format!("department/{}/leaders", d.department_id), DISTRICT.into()],
    };
    escalations::insert(tx, &e).await?;
    journal::record(
        tx,
        Change {
            subject: Subject::Decision(decision_id),
            department_id: d.department_id.clone(),
            street_ids: d.street_ids.clone(),
            street_id: o.street_id.clone(),
            event_type: Ev::AnswerOverdue,
            actor: Actor::service(),
            occur_time: now,
            before: json!({"opinion": {"id": o.id, "answer_overdue": false}}),
            after: json!({"opinion": {"id": o.id, "answer_overdue": true}, "escalation": e}),
            record: Record::Escalation(escalation_pb(&e)),
        },
    )
    .await?;
    Ok(true)
}

/// The answer deadline of plan item `opinion_id` passed at `now` unanswered: an escalation
/// addressed to the plan's department's leaders and the district, the item marked overdue.
/// Returns whether anything was recorded.
pub async fn plan_answer_overdue(
    tx: &mut PgConnection,
    opinion_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, ConsultationError> {
    let Some(plan_id) = plans::plan_of_opinion(tx, opinion_id).await? else { return Ok(false) };
    let Some(mut plan) = plans::get(tx, plan_id, true).await? else { return Ok(false) };
    let mut opinions = plans::opinions(tx, plan_id, true).await?;
    let Some(o) = opinions.iter_mut().find(|o| o.id == opinion_id) else { return Ok(false) };
    let Some(due) = o.answer_deadline else { return Ok(false) };
    if o.answer.is_some() || o.answer_overdue || now <= due {
        return Ok(false);
    }
    o.answer_overdue = true;
    let o = o.clone();
    plans::update_opinion(tx, &o).await?;
    // The plan's copy of its objections carries the flag too.
    domain::plan::settle(&mut plan, &opinions);
    plans::update(tx, &plan).await?;
    let e = Escalation {
        id: Uuid::now_v7(),
        kind: EscalationKind::AnswerOverdue,
        decision_id: None,
        plan_id: Some(plan_id),
        opinion_id: Some(o.id),
        department_id: plan.department_id.clone(),
        street_id: o.street_id.clone(),
        due_time: due,
        escalate_time: now,
        addressed_to: vec![format!("department/{}/leaders", plan.department_id), DISTRICT.into()],
    };
    escalations::insert(tx, &e).await?;
    journal::record(
        tx,
        Change {
            subject: Subject::Plan(plan_id),
            department_id: plan.department_id.clone(),
            street_ids: plan.street_ids.clone(),
            street_id: o.street_id.clone(),
            event_type: Ev::AnswerOverdue,
            actor: Actor::service(),
            occur_time: now,
            before: json!({"opinion": {"id": o.id, "answer_overdue": false}}),
            after: json!({"opinion": {"id": o.id, "answer_overdue": true}, "escalation": e}),
            record: Record::Escalation(escalation_pb(&e)),
        },
    )
    .await?;
    Ok(true)
}
