//! Rows to resources.

use chrono::{DateTime, NaiveDate, Utc};
use minhu_proto::{common::v1 as common, personnel::v1 as pb};

use crate::store::{
    AssessmentRow, Attachment, EscalationRow, EvaluationRow, FindingRow, LeaveRow, PlanRow, Ref, ReportRow,
    SolicitationRow, StoredInterviewee,
};

pub(super) fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

pub(super) fn from_ts(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

pub(super) fn date(d: NaiveDate) -> common::Date {
    use chrono::Datelike as _;
    common::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
}

pub(super) fn person(r: &Ref) -> common::PersonRef {
    common::PersonRef {
        id: r.id.clone(),
        name: r.name.clone(),
        department_id: r.department_id.clone(),
        station_id: r.station_id.clone(),
    }
}

fn position(name: &str) -> i32 {
    common::Position::from_str_name(name).map(|p| p as i32).unwrap_or_default()
}

fn matter(name: &str) -> i32 {
    pb::PersonnelMatter::from_str_name(name).map(|m| m as i32).unwrap_or_default()
}

fn grade(name: &str) -> i32 {
    pb::AssessmentGrade::from_str_name(name).map(|g| g as i32).unwrap_or_default()
}

pub(super) fn attachment(a: &Attachment) -> common::AttachmentRef {
    common::AttachmentRef {
        id: a.id.clone(),
        file_name: a.file_name.clone(),
        content_type: a.content_type.clone(),
        size_bytes: a.size_bytes,
        sha256: a.sha256.clone(),
    }
}

pub(super) fn solicitation(r: SolicitationRow) -> pb::OpinionSolicitation {
    let opinion = r.opinion_time.map(|t| pb::StreetOpinion {
        stance: r
            .opinion_stance
            .as_deref()
            .and_then(common::OpinionStance::from_str_name)
            .map(|s| s as i32)
            .unwrap_or_default(),
        text: r.opinion_text.clone().unwrap_or_default(),
        signed_by: r.opinion_signed_by.as_ref().map(|b| person(b)),
        submit_time: Some(ts(t)),
        late: r.opinion_late,
    });
    let decision = r.decide_time.map(|t| pb::PersonnelDecision {
        decision: r.decision.clone().unwrap_or_default(),
        opinion_adopted: r.opinion_adopted,
        reason: r.decision_reason.clone(),
        decided_by: r.decided_by.as_ref().map(|b| person(b)),
        decide_time: Some(ts(t)),
    });
    pb::OpinionSolicitation {
        id: r.id.to_string(),
        department_id: r.department_id,
        station_id: r.station_id,
        street_id: r.street_id,
        person_id: r.person_id,
        position: position(&r.position),
        matter: matter(&r.matter),
        proposal: r.proposal,
        reply_deadline: Some(ts(r.reply_deadline)),
        state: pb::SolicitationState::from_str_name(&r.state).map(|s| s as i32).unwrap_or_default(),
        opinion,
        decision,
        withdraw_reason: r.withdraw_reason,
        created_by: Some(person(&r.created_by)),
        create_time: Some(ts(r.create_time)),
        update_time: Some(ts(r.update_time)),
        attachments: r.attachments.iter().map(attachment).collect(),
        escalate_time: r.escalate_time.map(ts),
    }
}

pub(super) fn escalation(r: EscalationRow) -> pb::Escalation {
    pb::Escalation {
        id: r.id.to_string(),
        solicitation_id: r.solicitation_id.to_string(),
        street_id: r.street_id,
        department_id: r.department_id,
        recipient_person_ids: r.recipients,
        district_notified: true,
        reply_deadline: Some(ts(r.reply_deadline)),
        escalate_time: Some(ts(r.escalate_time)),
    }
}

pub(super) fn report(r: ReportRow) -> pb::DecisionReport {
    pb::DecisionReport {
        id: r.id.to_string(),
        department_id: r.department_id,
        station_id: r.station_id,
        street_id: r.street_id,
        person_id: r.person_id,
        position: position(&r.position),
        matter: matter(&r.matter),
        decision: r.decision,
        solicitation_id: r.solicitation_id.map(|s| s.to_string()).unwrap_or_default(),
        compliant: r.finding.is_none(),
        finding: r.finding.as_deref().and_then(pb::FindingKind::from_str_name).map(|f| f as i32).unwrap_or_default(),
        decided_by: Some(person(&r.decided_by)),
        decide_time: Some(ts(r.decide_time)),
    }
}

pub(super) fn finding(r: FindingRow) -> pb::ComplianceFinding {
    let id = |u: Option<uuid::Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
    pb::ComplianceFinding {
        id: r.id.to_string(),
        kind: pb::FindingKind::from_str_name(&r.kind).map(|k| k as i32).unwrap_or_default(),
        department_id: r.department_id,
        station_id: r.station_id,
        street_id: r.street_id,
        person_id: r.person_id,
        solicitation_id: id(r.solicitation_id),
        decision_report_id: id(r.decision_report_id),
        interview_plan_id: id(r.interview_plan_id),
        leadership_change_sequence: r.change_sequence.unwrap_or_default(),
        description: r.description,
        detect_time: Some(ts(r.detect_time)),
    }
}

pub(super) fn interviewee(i: &StoredInterviewee) -> pb::Interviewee {
    pb::Interviewee { person: Some(person(&i.person)), position: position(&i.position) }
}

pub(super) fn plan(r: PlanRow) -> pb::InterviewPlan {
    pb::InterviewPlan {
        id: r.id.to_string(),
        department_id: r.department_id,
        station_id: r.station_id,
        street_id: r.street_id,
        candidate_person_id: r.candidate_person_id,
        proposed_post: r.proposed_post,
        interviewees: r.interviewees.iter().map(interviewee).collect(),
        note: r.note,
        created_by: Some(person(&r.created_by)),
        create_time: Some(ts(r.create_time)),
        required_interviewees: r.required.iter().map(interviewee).collect(),
        held_interviews: r
            .held
            .iter()
            .map(|h| pb::HeldInterview {
                person: Some(person(&h.person)),
                held_date: Some(date(h.held_date)),
                note: h.note.clone(),
                recorded_by: Some(person(&h.recorded_by)),
            })
            .collect(),
        promotion_decision: r.promotion_decision,
        promotion_time: r.promotion_time.map(ts),
        missing_interviewee_person_ids: r.missing,
        promotion_flagged: r.flagged,
    }
}

pub(super) fn leave(r: LeaveRow) -> pb::LeaveApplication {
    pb::LeaveApplication {
        id: r.id.to_string(),
        person_id: r.person_id,
        secondment_id: r.secondment_id,
        street_id: r.street_id,
        department_id: r.department_id,
        start_date: Some(date(r.start_date)),
        end_date: Some(date(r.end_date)),
        days: r.days,
        reason: r.reason,
        state: pb::LeaveState::from_str_name(&r.state).map(|s| s as i32).unwrap_or_default(),
        decided_by: r.decided_by.as_ref().map(|b| person(b)),
        decision_comment: r.decision_comment,
        decide_time: r.decide_time.map(ts),
        created_by: Some(person(&r.created_by)),
        create_time: Some(ts(r.create_time)),
        update_time: Some(ts(r.update_time)),
        entitlement_year: r.year,
    }
}

pub(super) fn evaluation(r: EvaluationRow) -> pb::SecondeeEvaluation {
    pb::SecondeeEvaluation {
        id: r.id.to_string(),
        secondment_id: r.secondment_id,
        person_id: r.person_id,
        street_id: r.street_id,
        kind: pb::EvaluationKind::from_str_name(&r.kind).map(|k| k as i32).unwrap_or_default(),
        year: r.year,
        month: r.month,
        grade: grade(&r.grade),
        comment: r.comment,
        evaluated_by: Some(person(&r.evaluated_by)),
        create_time: Some(ts(r.create_time)),
        coefficient_bp: r.coefficient_bp,
    }
}

pub(super) fn assessment(r: AssessmentRow) -> pb::IncentiveAssessment {
    let subject = if r.station_id.is_empty() {
        pb::incentive_assessment::Subject::PersonId(r.person_id)
    } else {
        pb::incentive_assessment::Subject::StationId(r.station_id)
    };
    pb::IncentiveAssessment {
        id: r.id.to_string(),
        street_id: r.street_id,
        year: r.year,
        subject: Some(subject),
        department_id: r.department_id,
        grade: grade(&r.grade),
        comment: r.comment,
        assessed_by: Some(person(&r.assessed_by)),
        create_time: Some(ts(r.create_time)),
        coefficient_bp: r.coefficient_bp,
    }
}
