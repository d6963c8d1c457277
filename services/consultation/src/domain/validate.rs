//! Parse, don't validate: requests become these input values or field violations (every
//! bad field at once). Enum numbers the contract does not define never get here (the shell
//! screens them); `*_UNSPECIFIED`, blanks, lengths, ranges and times are checked here.

use chrono::{DateTime, Utc};
use minhu_grpc::{ApiError, FieldViolations};
use minhu_proto::{common::v1 as common, consultation::v1 as pb};
use prost_types::Timestamp;

use super::model::{AdoptionResult, DecisionKind, Document, EscalationKind, PlanKind, PlanStage, Stance, Verdict};

/// A time from a protobuf timestamp (cut to microseconds, as Postgres keeps it); `None`
/// when out of range.
pub fn time(t: &Timestamp) -> Option<DateTime<Utc>> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    DateTime::from_timestamp(t.seconds, t.nanos as u32).map(crate::to_micros)
}

/// Names and short texts.
pub const NAME_MAX: usize = 200;
/// Descriptions, opinions, reasons.
pub const TEXT_MAX: usize = 5000;

/// A text field, trimmed; `required` refuses blank. Postgres cannot store U+0000.
pub fn text(v: &mut FieldViolations, field: &str, value: &str, max: usize, required: bool) -> String {
    if value.contains('\0') {
        v.add(field, "must not contain U+0000");
    }
    let trimmed = if required { v.required_text(field, value, max) } else { v.optional_text(field, value, max) };
    trimmed.to_owned()
}

/// Street ids: each non-blank, at most 64 characters, no repeats.
pub fn street_ids(v: &mut FieldViolations, field: &str, ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let id = text(v, &f, id, 64, true);
        if out.contains(&id) {
            v.add(f, "is listed twice");
        } else if !id.is_empty() {
            out.push(id);
        }
    }
    out
}

/// A checked place: name, latitude, longitude.
pub type PlaceInput = (String, f64, f64);

/// Places: a name and a valid WGS-84 point each.
pub fn places(v: &mut FieldViolations, field: &str, places: &[pb::DecisionPlace]) -> Vec<PlaceInput> {
    places
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = text(v, &format!("{field}[{i}].name"), &p.name, NAME_MAX, true);
            let (lat, lon) = match &p.location {
                None => {
                    v.add(format!("{field}[{i}].location"), "is required");
                    (0.0, 0.0)
                }
                Some(l) => {
                    v.check(
                        l.latitude.is_finite() && (-90.0..=90.0).contains(&l.latitude),
                        &format!("{field}[{i}].location.latitude"),
                        "must be between -90 and 90",
                    );
                    v.check(
                        l.longitude.is_finite() && (-180.0..=180.0).contains(&l.longitude),
                        &format!("{field}[{i}].location.longitude"),
                        "must be between -180 and 180",
                    );
                    (l.latitude, l.longitude)
                }
            };
            (name, lat, lon)
        })
        .collect()
}

/// An optional time that, when set, must be valid and after `now`.
pub fn future_time(
    v: &mut FieldViolations,
    field: &str,
    value: Option<&prost_types::Timestamp>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let t = value?;
    match time(t) {
        None => {
            v.add(field, "is not a valid time");
            None
        }
        Some(t) if t <= now => {
            v.add(field, "must be in the future");
            None
        }
        Some(t) => Some(t),
    }
}

/// What CreateDecision asks for, parsed.
pub struct NewDecision {
    /// Decision or project.
    pub kind: DecisionKind,
    /// Subject.
    pub subject: String,
    /// Description.
    pub description: String,
    /// Streets named by hand.
    pub named: Vec<String>,
    /// Places, to resolve.
    pub places: Vec<PlaceInput>,
    /// Documents.
    pub documents: Vec<Document>,
    /// An explicit reply deadline.
    pub reply_deadline: Option<DateTime<Utc>>,
    /// Or the reply time in working days.
    pub reply_working_days: u32,
}

/// CreateDecision's decision, or every bad field.
pub fn new_decision(d: Option<&pb::Decision>, now: DateTime<Utc>) -> Result<NewDecision, ApiError> {
    let Some(d) = d else { return Err(ApiError::field("decision", "is required")) };
    let mut v = FieldViolations::new();
    let kind = decision_kind(d.kind);
    v.check(kind.is_some(), "decision.kind", "must be a decision or a project");
    let subject = text(&mut v, "decision.subject", &d.subject, NAME_MAX, true);
    let description = text(&mut v, "decision.description", &d.description, TEXT_MAX, true);
    let named = street_ids(&mut v, "decision.street_ids", &d.street_ids);
    let places = places(&mut v, "decision.places", &d.places);
    if d.street_ids.is_empty() && d.places.is_empty() {
        v.add("decision.street_ids", "name at least one street or place");
    }
    let documents = d
        .documents
        .iter()
        .enumerate()
        .map(|(i, x)| Document {
            id: text(&mut v, &format!("decision.documents[{i}].id"), &x.id, 64, true),
            file_name: text(&mut v, &format!("decision.documents[{i}].file_name"), &x.file_name, NAME_MAX, true),
            content_type: text(&mut v, &format!("decision.documents[{i}].content_type"), &x.content_type, 100, false),
            size_bytes: x.size_bytes.max(0),
            sha256: text(&mut v, &format!("decision.documents[{i}].sha256"), &x.sha256, 64, false),
        })
        .collect();
    let reply_deadline = future_time(&mut v, "decision.reply_deadline", d.reply_deadline.as_ref(), now);
    match (d.reply_deadline.is_some(), d.reply_working_days) {
        (true, 0) | (false, 1..=60) => {}
        (true, _) => v.add("decision.reply_working_days", "give the reply deadline or working days, not both"),
        (false, 0) => v.add("decision.reply_deadline", "a reply deadline or reply_working_days is required"),
        (false, _) => v.add("decision.reply_working_days", "must be between 1 and 60"),
    }
    v.into_result()?;
    Ok(NewDecision {
        kind: kind.expect("checked"),
        subject,
        description,
        named,
        places,
        documents,
        reply_deadline,
        reply_working_days: d.reply_working_days.max(0) as u32,
    })
}

/// An answer (采纳/答复): the result, and the reason unless adopted — a partial or
/// non-adoption without one is INVALID_ARGUMENT `REASON_REQUIRED` on `reason`
/// (不予采纳的，应予以反馈).
pub fn answer(result: i32, reason: &str) -> Result<(AdoptionResult, String), ApiError> {
    let mut v = FieldViolations::new();
    let parsed = adoption(result);
    v.check(parsed.is_some(), "result", "must be adopted, partially adopted or not adopted");
    let reason = text(&mut v, "reason", reason, TEXT_MAX, false);
    v.into_result()?;
    let result = parsed.expect("checked above");
    if result != AdoptionResult::Adopted && reason.is_empty() {
        let mut violations = FieldViolations::new();
        violations.add("reason", "is required unless the opinion is adopted (不予采纳的，应予以反馈)");
        return Err(ApiError::Rejected { reason: "REASON_REQUIRED", violations });
    }
    Ok((result, reason))
}

/// A decision opinion item: its stance and text, both required.
pub fn decision_opinion(stance_value: i32, text_value: &str) -> Result<(Stance, String), ApiError> {
    let mut v = FieldViolations::new();
    let parsed = stance(stance_value);
    v.check(parsed.is_some(), "stance", "must be agree, disagree or conditional");
    let t = text(&mut v, "text", text_value, TEXT_MAX, true);
    v.into_result()?;
    Ok((parsed.expect("checked above"), t))
}

/// The domain stage of a contract stage; `None` for UNSPECIFIED or unknown.
pub fn stage(value: i32) -> Option<PlanStage> {
    match pb::PlanStage::try_from(value).ok()? {
        pb::PlanStage::Drafting => Some(PlanStage::Drafting),
        pb::PlanStage::Construction => Some(PlanStage::Construction),
        pb::PlanStage::Acceptance => Some(PlanStage::Acceptance),
        pb::PlanStage::Completed => Some(PlanStage::Completed),
        pb::PlanStage::Unspecified => None,
    }
}

/// The domain plan kind; `None` for UNSPECIFIED or unknown.
pub fn plan_kind(value: i32) -> Option<PlanKind> {
    match pb::PlanKind::try_from(value).ok()? {
        pb::PlanKind::CommunityConstruction => Some(PlanKind::CommunityConstruction),
        pb::PlanKind::PublicServiceFacility => Some(PlanKind::PublicServiceFacility),
        pb::PlanKind::Unspecified => None,
    }
}

/// The domain decision kind; `None` for UNSPECIFIED or unknown.
pub fn decision_kind(value: i32) -> Option<DecisionKind> {
    match pb::DecisionKind::try_from(value).ok()? {
        pb::DecisionKind::MajorDecision => Some(DecisionKind::MajorDecision),
        pb::DecisionKind::MajorProject => Some(DecisionKind::MajorProject),
        pb::DecisionKind::Unspecified => None,
    }
}

/// The domain stance; `None` for UNSPECIFIED or unknown.
pub fn stance(value: i32) -> Option<Stance> {
    match common::OpinionStance::try_from(value).ok()? {
        common::OpinionStance::Agree => Some(Stance::Agree),
        common::OpinionStance::Disagree => Some(Stance::Disagree),
        common::OpinionStance::Conditional => Some(Stance::Conditional),
        common::OpinionStance::Unspecified => None,
    }
}

/// The domain adoption result; `None` for UNSPECIFIED or unknown.
pub fn adoption(value: i32) -> Option<AdoptionResult> {
    match pb::AdoptionResult::try_from(value).ok()? {
        pb::AdoptionResult::Adopted => Some(AdoptionResult::Adopted),
        pb::AdoptionResult::PartiallyAdopted => Some(AdoptionResult::PartiallyAdopted),
        pb::AdoptionResult::NotAdopted => Some(AdoptionResult::NotAdopted),
        pb::AdoptionResult::Unspecified => None,
    }
}

/// The domain verdict; `None` for UNSPECIFIED (the shell's screen refuses unknown numbers
/// before a handler runs).
pub fn verdict(value: i32) -> Option<Verdict> {
    match pb::AcceptanceVerdict::try_from(value).ok()? {
        pb::AcceptanceVerdict::SignedOff => Some(Verdict::SignedOff),
        pb::AcceptanceVerdict::Objected => Some(Verdict::Objected),
        pb::AcceptanceVerdict::Unspecified => None,
    }
}

/// The domain escalation kind; `None` for UNSPECIFIED (unknown numbers are screened).
pub fn escalation_kind(value: i32) -> Option<EscalationKind> {
    match pb::EscalationKind::try_from(value).ok()? {
        pb::EscalationKind::ReplyOverdue => Some(EscalationKind::ReplyOverdue),
        pb::EscalationKind::AnswerOverdue => Some(EscalationKind::AnswerOverdue),
        pb::EscalationKind::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_or_non_adoption_without_a_reason_is_refused_by_name() {
        for result in [pb::AdoptionResult::PartiallyAdopted, pb::AdoptionResult::NotAdopted] {
            let Err(ApiError::Rejected { reason, violations }) = answer(result as i32, "  ") else { panic!() };
            assert_eq!(reason, "REASON_REQUIRED");
            assert_eq!(violations.violations()[0].field, "reason");
        }
        assert_eq!(answer(pb::AdoptionResult::Adopted as i32, "").unwrap(), (AdoptionResult::Adopted, String::new()));
        let Err(ApiError::InvalidArgument(v)) = answer(0, "x") else { panic!() };
        assert_eq!(v.violations()[0].field, "result");
    }

    #[test]
    fn a_decision_needs_streets_or_places_and_one_reply_time() {
        let now = Utc::now();
        let d = pb::Decision { kind: 1, subject: "s".into(), description: "d".into(), ..Default::default() };
        let Err(ApiError::InvalidArgument(v)) = new_decision(Some(&d), now) else { panic!() };
        let fields: Vec<_> = v.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["decision.street_ids", "decision.reply_deadline"]);
        let ok = pb::Decision { street_ids: vec!["a".into()], reply_working_days: 5, ..d };
        let parsed = new_decision(Some(&ok), now).unwrap();
        assert_eq!((parsed.named, parsed.reply_working_days, parsed.reply_deadline), (vec!["a".to_string()], 5, None));
    }
}
