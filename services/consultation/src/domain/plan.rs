//! A plan's rules (规划参与, 全程参与): every covered street takes part in every stage —
//! opinion items the department answers, or an explicit "no opinion" by a street leader —
//! and acceptance needs each street's sign-off or objection. A stage is completed
//! (AdvancePlanStage) only when every covered street has its participation record and every
//! item of the stage is answered.

use super::{
    Refusal,
    model::{Plan, PlanOpinion, PlanStage, Verdict},
};

/// Whether `street_id` may give an opinion on the plan's current stage, and whether the
/// verdict fits the stage.
pub fn may_submit(plan: &Plan, street_id: &str, acceptance: Option<Verdict>) -> Result<(), Refusal> {
    let subject = format!("plans/{}", plan.id);
    if plan.stage == PlanStage::Completed {
        return Err(Refusal::new("PLAN_COMPLETED", subject, "the plan is completed"));
    }
    if !plan.street_ids.iter().any(|s| s == street_id) {
        return Err(Refusal::new("STREET_NOT_INVOLVED", subject, format!("street `{street_id}` is not covered")));
    }
    match (plan.stage, acceptance) {
        (PlanStage::Acceptance, None) => {
            Err(Refusal::new("ACCEPTANCE_VERDICT_REQUIRED", subject, "in acceptance a street signs off or objects"))
        }
        (PlanStage::Drafting | PlanStage::Construction, Some(_)) => {
            Err(Refusal::new("STAGE_MISMATCH", subject, "an acceptance verdict is given only in acceptance"))
        }
        _ => Ok(()),
    }
}

/// Whether `street_id` has its participation record on `stage`.
pub fn took_part(opinions: &[PlanOpinion], street_id: &str, stage: PlanStage) -> bool {
    opinions.iter().any(|o| o.street_id == street_id && o.stage == stage)
}

/// Recomputes the derived fields of `plan` from all its opinions.
pub fn settle(plan: &mut Plan, opinions: &[PlanOpinion]) {
    // A completed plan waits for nobody.
    plan.pending_street_ids = if plan.stage == PlanStage::Completed {
        Vec::new()
    } else {
        plan.street_ids.iter().filter(|s| !took_part(opinions, s, plan.stage)).cloned().collect()
    };
    plan.unanswered =
        opinions.iter().filter(|o| o.stage == plan.stage && o.needs_answer() && o.answer.is_none()).count();
    plan.objections = opinions.iter().filter(|o| o.acceptance == Some(Verdict::Objected)).cloned().collect();
}

/// Completes the current stage: the stage entered, or every reason it cannot be.
pub fn advance(plan: &Plan, opinions: &[PlanOpinion], expected: PlanStage) -> Result<PlanStage, Vec<Refusal>> {
    let subject = format!("plans/{}", plan.id);
    let Some(next) = plan.stage.next() else {
        return Err(vec![Refusal::new("PLAN_COMPLETED", subject, "the plan is completed")]);
    };
    if expected != plan.stage {
        return Err(vec![Refusal::new(
            "STAGE_MISMATCH",
            subject,
            format!("the plan is in {}, not {}", plan.stage.as_str(), expected.as_str()),
        )]);
    }
    let mut refusals: Vec<Refusal> = plan
        .street_ids
        .iter()
        .filter(|s| !took_part(opinions, s, plan.stage))
        .map(|s| {
            Refusal::new(
                "OPINIONS_MISSING",
                format!("streets/{s}"),
                format!("street `{s}` has not taken part in this stage"),
            )
        })
        .collect();
    refusals.extend(opinions.iter().filter(|o| o.stage == plan.stage && o.needs_answer() && o.answer.is_none()).map(
        |o| {
            Refusal::new(
                "OPINIONS_UNANSWERED",
                format!("planOpinions/{}", o.id),
                format!("the opinion of street `{}` is not answered", o.street_id),
            )
        },
    ));
    if refusals.is_empty() { Ok(next) } else { Err(refusals) }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::domain::model::{Actor, PlanKind};

    fn plan(stage: PlanStage) -> Plan {
        let now = Utc::now();
        Plan {
            id: Uuid::nil(),
            name: "n".into(),
            kind: PlanKind::CommunityConstruction,
            department_id: "guihua".into(),
            street_ids: vec!["a".into(), "b".into()],
            description: "d".into(),
            stage,
            opinion_deadline: None,
            history: vec![],
            created_by: Actor::service(),
            create_time: now,
            update_time: now,
            pending_street_ids: vec![],
            unanswered: 0,
            objections: vec![],
        }
    }

    fn opinion(street: &str, stage: PlanStage, no_opinion: bool) -> PlanOpinion {
        PlanOpinion {
            id: Uuid::now_v7(),
            plan_id: Uuid::nil(),
            street_id: street.into(),
            stage,
            stance: None,
            text: if no_opinion { String::new() } else { "t".into() },
            participation: String::new(),
            signed_by: Actor::service(),
            create_time: Utc::now(),
            answer: None,
            no_opinion,
            acceptance: None,
            answer_deadline: None,
            answer_overdue: false,
        }
    }

    #[test]
    fn a_stage_is_refused_once_per_silent_street_and_per_unanswered_item() {
        let p = plan(PlanStage::Drafting);
        let refusals = advance(&p, &[opinion("a", PlanStage::Drafting, false)], PlanStage::Drafting).unwrap_err();
        let reasons: Vec<_> = refusals.iter().map(|r| r.reason).collect();
        assert_eq!(reasons, ["OPINIONS_MISSING", "OPINIONS_UNANSWERED"]);
        let ok = [opinion("a", PlanStage::Drafting, true), opinion("b", PlanStage::Drafting, true)];
        assert_eq!(advance(&p, &ok, PlanStage::Drafting), Ok(PlanStage::Construction));
        assert_eq!(advance(&p, &ok, PlanStage::Construction).unwrap_err()[0].reason, "STAGE_MISMATCH");
    }

    #[test]
    fn acceptance_needs_a_verdict_and_only_acceptance_takes_one() {
        assert_eq!(
            may_submit(&plan(PlanStage::Acceptance), "a", None).unwrap_err().reason,
            "ACCEPTANCE_VERDICT_REQUIRED"
        );
        assert_eq!(
            may_submit(&plan(PlanStage::Drafting), "a", Some(Verdict::SignedOff)).unwrap_err().reason,
            "STAGE_MISMATCH"
        );
        assert_eq!(may_submit(&plan(PlanStage::Drafting), "z", None).unwrap_err().reason, "STREET_NOT_INVOLVED");
    }
}
