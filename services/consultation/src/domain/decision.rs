//! A decision consultation's rules (决策建议): who is consulted, when a street may still
//! reply, what an answer needs, how the state moves by itself, and what a final decision
//! recorded out of order is flagged with.
//!
//! | from | to | when |
//! |---|---|---|
//! | SOLICITING | AWAITING_ADOPTION | every consulted street replied, or the reply deadline passed |
//! | AWAITING_ADOPTION | CONCLUDED | every item answered (also at once when none was given) |
//! | any but FINALIZED | FINALIZED | FinalizeDecision, flagged when out of order |

use chrono::{DateTime, Utc};

use super::{
    Refusal,
    model::{AdoptionResult, Answer, ComplianceIssue, Decision, DecisionOpinion, DecisionState, Flag, distinct},
};

/// The streets to consult: those named by hand and those the places lie in, without repeats.
pub fn consulted(named: &[String], affected: &[String]) -> Vec<String> {
    distinct(named.iter().chain(affected).cloned())
}

/// Whether `street_id` may still give an opinion item at `now`.
pub fn may_reply(decision: &Decision, street_id: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
    let subject = format!("decisions/{}", decision.id);
    if !decision.street_ids.iter().any(|s| s == street_id) {
        return Err(Refusal::new("STREET_NOT_AFFECTED", subject, format!("street `{street_id}` is not consulted")));
    }
    if decision.state != DecisionState::Soliciting || now > decision.reply_deadline {
        return Err(Refusal::new("SOLICITATION_CLOSED", subject, "the decision no longer takes opinions"));
    }
    Ok(())
}

/// The department's answer to an item: refused when already given; a partial or
/// non-adoption without its reason is a bad request (`REASON_REQUIRED`, handled by the
/// caller's validation), so here only the state.
pub fn answer(opinion: &DecisionOpinion, answer: Answer) -> Result<Answer, Refusal> {
    if opinion.adoption.is_some() {
        return Err(Refusal::new(
            "ALREADY_RECORDED",
            format!("decisionOpinions/{}", opinion.id),
            "the answer to this opinion was already recorded",
        ));
    }
    Ok(answer)
}

/// Whether an answer of `result` needs a reason (不予采纳的，应予以反馈).
pub fn reason_required(result: AdoptionResult) -> bool {
    result != AdoptionResult::Adopted
}

/// Recomputes the derived fields and the automatic transitions from the items.
pub fn settle(decision: &mut Decision, opinions: &[DecisionOpinion], now: DateTime<Utc>) {
    decision.pending_street_ids =
        decision.street_ids.iter().filter(|s| !opinions.iter().any(|o| &o.street_id == *s)).cloned().collect();
    if decision.state == DecisionState::Soliciting
        && (decision.pending_street_ids.is_empty() || now > decision.reply_deadline)
    {
        decision.state = DecisionState::AwaitingAdoption;
    }
    if decision.state == DecisionState::AwaitingAdoption && opinions.iter().all(|o| o.adoption.is_some()) {
        decision.state = DecisionState::Concluded;
    }
}

/// Records the decision as final at `now`; the flags are what was out of order. `affected`
/// are the streets the final decision's places lie in (the consulted places' included).
pub fn finalize(
    decision: &Decision,
    opinions: &[DecisionOpinion],
    affected: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<Flag>, Refusal> {
    if decision.state == DecisionState::Finalized {
        return Err(Refusal::new(
            "DECISION_FINALIZED",
            format!("decisions/{}", decision.id),
            "the decision was already recorded as final",
        ));
    }
    let mut flags = Vec::new();
    for o in opinions.iter().filter(|o| o.adoption.is_none()) {
        flags.push(Flag {
            issue: ComplianceIssue::ItemsUnanswered,
            subject: format!("decisionOpinions/{}", o.id),
            description: format!("the opinion of street `{}` was not answered", o.street_id),
        });
    }
    if now <= decision.reply_deadline {
        for s in decision.street_ids.iter().filter(|s| !opinions.iter().any(|o| &o.street_id == *s)) {
            flags.push(Flag {
                issue: ComplianceIssue::StreetsSilent,
                subject: format!("streets/{s}"),
                description: format!("street `{s}` had not replied and its reply time had not passed"),
            });
        }
    }
    for s in distinct(affected.iter().cloned()).iter().filter(|s| !decision.street_ids.contains(s)) {
        flags.push(Flag {
            issue: ComplianceIssue::StreetNotConsulted,
            subject: format!("streets/{s}"),
            description: format!("street `{s}` is affected but was never consulted"),
        });
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use uuid::Uuid;

    use super::*;
    use crate::domain::model::{Actor, DecisionKind, Stance};

    fn decision(now: DateTime<Utc>) -> Decision {
        Decision {
            id: Uuid::nil(),
            department_id: "guihua".into(),
            street_ids: vec!["a".into(), "b".into()],
            affected_street_ids: vec!["a".into()],
            places: vec![],
            kind: DecisionKind::MajorProject,
            subject: "s".into(),
            description: "d".into(),
            documents: vec![],
            reply_deadline: now + TimeDelta::days(5),
            reply_working_days: 0,
            state: DecisionState::Soliciting,
            pending_street_ids: vec![],
            reply_overdue: false,
            flags: vec![],
            finalize_time: None,
            final_summary: String::new(),
            created_by: Actor::service(),
            create_time: now,
            update_time: now,
        }
    }

    fn item(street: &str, answered: bool, now: DateTime<Utc>) -> DecisionOpinion {
        DecisionOpinion {
            id: Uuid::now_v7(),
            decision_id: Uuid::nil(),
            department_id: "guihua".into(),
            street_id: street.into(),
            stance: Stance::Agree,
            text: "t".into(),
            signed_by: Actor::service(),
            create_time: now,
            adoption: answered.then(|| Answer {
                result: AdoptionResult::Adopted,
                reason: String::new(),
                recorded_by: Actor::service(),
                record_time: now,
            }),
            answer_deadline: now,
            answer_overdue: false,
        }
    }

    #[test]
    fn the_state_moves_on_when_every_street_replied_and_again_when_every_item_is_answered() {
        let now = Utc::now();
        let mut d = decision(now);
        settle(&mut d, &[item("a", false, now)], now);
        assert_eq!((d.state, d.pending_street_ids.clone()), (DecisionState::Soliciting, vec!["b".to_string()]));
        settle(&mut d, &[item("a", false, now), item("b", true, now)], now);
        assert_eq!(d.state, DecisionState::AwaitingAdoption);
        settle(&mut d, &[item("a", true, now), item("b", true, now)], now);
        assert_eq!(d.state, DecisionState::Concluded);
    }

    #[test]
    fn finalising_early_flags_each_unanswered_item_silent_street_and_unconsulted_affected_street() {
        let now = Utc::now();
        let d = decision(now);
        let flags = finalize(&d, &[item("a", false, now)], &["a".into(), "c".into()], now).unwrap();
        let issues: Vec<_> = flags.iter().map(|f| (f.issue, f.subject.as_str())).collect();
        assert_eq!(
            issues[1..],
            [(ComplianceIssue::StreetsSilent, "streets/b"), (ComplianceIssue::StreetNotConsulted, "streets/c")]
        );
        assert_eq!(issues[0].0, ComplianceIssue::ItemsUnanswered);
    }

    #[test]
    fn a_street_cannot_reply_after_the_deadline_or_when_not_consulted() {
        let now = Utc::now();
        let d = decision(now);
        assert_eq!(may_reply(&d, "c", now).unwrap_err().reason, "STREET_NOT_AFFECTED");
        assert_eq!(may_reply(&d, "a", now + TimeDelta::days(6)).unwrap_err().reason, "SOLICITATION_CLOSED");
        assert!(may_reply(&d, "a", now).is_ok());
    }
}
