//! Domain records to contract messages, and contract enums to domain codes.

use chrono::{DateTime, Utc};
use minhu_grpc::Principal;
use minhu_proto::{common::v1 as common, consultation::v1 as pb};
use prost_types::Timestamp;

use crate::domain::model::{
    Actor, AdoptionResult, Answer, ComplianceIssue, Decision, DecisionKind, DecisionOpinion, DecisionState, Escalation,
    EscalationKind, Flag, Plan, PlanKind, PlanOpinion, PlanStage, Stance, Verdict,
};

/// A protobuf timestamp.
pub fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// The actor the trail keeps for `p`.
pub fn actor(p: &Principal) -> Actor {
    Actor { id: p.subject.clone(), name: p.name.clone(), organization: p.organization.to_string() }
}

fn person(a: &Actor) -> common::PersonRef {
    common::PersonRef {
        id: a.id.clone(),
        name: a.name.clone(),
        department_id: a.department_id().to_owned(),
        station_id: String::new(),
    }
}

fn answer_pb(a: &Answer) -> pb::Adoption {
    pb::Adoption {
        result: adoption_pb(a.result) as i32,
        reason: a.reason.clone(),
        recorded_by: Some(person(&a.recorded_by)),
        record_time: Some(ts(a.record_time)),
    }
}

fn stage_pb(s: PlanStage) -> pb::PlanStage {
    match s {
        PlanStage::Drafting => pb::PlanStage::Drafting,
        PlanStage::Construction => pb::PlanStage::Construction,
        PlanStage::Acceptance => pb::PlanStage::Acceptance,
        PlanStage::Completed => pb::PlanStage::Completed,
    }
}

fn stance_pb(s: Stance) -> common::OpinionStance {
    match s {
        Stance::Agree => common::OpinionStance::Agree,
        Stance::Disagree => common::OpinionStance::Disagree,
        Stance::Conditional => common::OpinionStance::Conditional,
    }
}

fn adoption_pb(r: AdoptionResult) -> pb::AdoptionResult {
    match r {
        AdoptionResult::Adopted => pb::AdoptionResult::Adopted,
        AdoptionResult::PartiallyAdopted => pb::AdoptionResult::PartiallyAdopted,
        AdoptionResult::NotAdopted => pb::AdoptionResult::NotAdopted,
    }
}

/// A plan as the contract shows it.
pub fn plan_pb(p: &Plan) -> pb::Plan {
    pb::Plan {
        id: p.id.to_string(),
        name: p.name.clone(),
        kind: match p.kind {
            PlanKind::CommunityConstruction => pb::PlanKind::CommunityConstruction,
            PlanKind::PublicServiceFacility => pb::PlanKind::PublicServiceFacility,
        } as i32,
        department_id: p.department_id.clone(),
        street_ids: p.street_ids.clone(),
        description: p.description.clone(),
        stage: stage_pb(p.stage) as i32,
        opinion_deadline: p.opinion_deadline.map(ts),
        pending_street_ids: p.pending_street_ids.clone(),
        stage_history: p
            .history
            .iter()
            .map(|t| pb::StageTransition {
                from_stage: stage_pb(t.from) as i32,
                to_stage: stage_pb(t.to) as i32,
                advanced_by: Some(person(&t.by)),
                advance_time: Some(ts(t.time)),
                note: t.note.clone(),
            })
            .collect(),
        created_by: Some(person(&p.created_by)),
        create_time: Some(ts(p.create_time)),
        update_time: Some(ts(p.update_time)),
        objections: p.objections.iter().map(plan_opinion_pb).collect(),
        unanswered_opinion_count: p.unanswered as i32,
    }
}

/// A plan opinion as the contract shows it.
pub fn plan_opinion_pb(o: &PlanOpinion) -> pb::PlanOpinion {
    pb::PlanOpinion {
        id: o.id.to_string(),
        plan_id: o.plan_id.to_string(),
        street_id: o.street_id.clone(),
        stage: stage_pb(o.stage) as i32,
        stance: o.stance.map_or(0, |s| stance_pb(s) as i32),
        text: o.text.clone(),
        participation: o.participation.clone(),
        signed_by: Some(person(&o.signed_by)),
        create_time: Some(ts(o.create_time)),
        answer: o.answer.as_ref().map(answer_pb),
        no_opinion: o.no_opinion,
        acceptance: match o.acceptance {
            None => pb::AcceptanceVerdict::Unspecified,
            Some(Verdict::SignedOff) => pb::AcceptanceVerdict::SignedOff,
            Some(Verdict::Objected) => pb::AcceptanceVerdict::Objected,
        } as i32,
        answer_deadline: o.answer_deadline.map(ts),
        answer_overdue: o.answer_overdue,
    }
}

fn flag_pb(f: &Flag) -> pb::ComplianceFlag {
    pb::ComplianceFlag {
        issue: match f.issue {
            ComplianceIssue::ItemsUnanswered => pb::ComplianceIssue::ItemsUnanswered,
            ComplianceIssue::StreetsSilent => pb::ComplianceIssue::StreetsSilent,
            ComplianceIssue::StreetNotConsulted => pb::ComplianceIssue::StreetNotConsulted,
        } as i32,
        subject: f.subject.clone(),
        description: f.description.clone(),
    }
}

/// A decision as the contract shows it.
pub fn decision_pb(d: &Decision) -> pb::Decision {
    pb::Decision {
        id: d.id.to_string(),
        department_id: d.department_id.clone(),
        street_ids: d.street_ids.clone(),
        kind: match d.kind {
            DecisionKind::MajorDecision => pb::DecisionKind::MajorDecision,
            DecisionKind::MajorProject => pb::DecisionKind::MajorProject,
        } as i32,
        subject: d.subject.clone(),
        description: d.description.clone(),
        reply_deadline: Some(ts(d.reply_deadline)),
        state: match d.state {
            DecisionState::Soliciting => pb::DecisionState::Soliciting,
            DecisionState::AwaitingAdoption => pb::DecisionState::AwaitingAdoption,
            DecisionState::Concluded => pb::DecisionState::Concluded,
            DecisionState::Finalized => pb::DecisionState::Finalized,
        } as i32,
        pending_street_ids: d.pending_street_ids.clone(),
        created_by: Some(person(&d.created_by)),
        create_time: Some(ts(d.create_time)),
        update_time: Some(ts(d.update_time)),
        places: d
            .places
            .iter()
            .map(|p| pb::DecisionPlace {
                name: p.name.clone(),
                location: Some(common::GeoPoint { latitude: p.latitude, longitude: p.longitude }),
                street_id: p.street_id.clone(),
            })
            .collect(),
        affected_street_ids: d.affected_street_ids.clone(),
        documents: d
            .documents
            .iter()
            .map(|x| common::AttachmentRef {
                id: x.id.clone(),
                file_name: x.file_name.clone(),
                content_type: x.content_type.clone(),
                size_bytes: x.size_bytes,
                sha256: x.sha256.clone(),
            })
            .collect(),
        reply_working_days: d.reply_working_days as i32,
        flags: d.flags.iter().map(flag_pb).collect(),
        finalize_time: d.finalize_time.map(ts),
        final_summary: d.final_summary.clone(),
        reply_overdue: d.reply_overdue,
    }
}

/// A decision opinion item as the contract shows it.
pub fn decision_opinion_pb(o: &DecisionOpinion) -> pb::DecisionOpinion {
    pb::DecisionOpinion {
        id: o.id.to_string(),
        decision_id: o.decision_id.to_string(),
        street_id: o.street_id.clone(),
        stance: stance_pb(o.stance) as i32,
        text: o.text.clone(),
        signed_by: Some(person(&o.signed_by)),
        create_time: Some(ts(o.create_time)),
        adoption: o.adoption.as_ref().map(answer_pb),
        answer_deadline: Some(ts(o.answer_deadline)),
        answer_overdue: o.answer_overdue,
    }
}

/// An escalation as the contract shows it.
pub fn escalation_pb(e: &Escalation) -> pb::Escalation {
    pb::Escalation {
        id: e.id.to_string(),
        kind: match e.kind {
            EscalationKind::ReplyOverdue => pb::EscalationKind::ReplyOverdue,
            EscalationKind::AnswerOverdue => pb::EscalationKind::AnswerOverdue,
        } as i32,
        decision_id: e.decision_id.map(|id| id.to_string()).unwrap_or_default(),
        plan_id: e.plan_id.map(|id| id.to_string()).unwrap_or_default(),
        opinion_id: e.opinion_id.map(|id| id.to_string()).unwrap_or_default(),
        department_id: e.department_id.clone(),
        street_id: e.street_id.clone(),
        due_time: Some(ts(e.due_time)),
        escalate_time: Some(ts(e.escalate_time)),
        addressed_to: e.addressed_to.clone(),
    }
}
