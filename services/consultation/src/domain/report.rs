//! The district's figures (per department and per street) from the records themselves.

use std::collections::BTreeMap;

use super::model::{
    AdoptionResult, Decision, DecisionOpinion, DecisionState, Escalation, EscalationKind, Plan, PlanOpinion, Verdict,
};

/// One department's or street's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Consultations opened / received.
    pub consultations: i32,
    /// Streets consulted, summed.
    pub streets_consulted: i32,
    /// Opinion items.
    pub opinions: i32,
    /// Adopted.
    pub adopted: i32,
    /// Partly adopted.
    pub partially_adopted: i32,
    /// Not adopted.
    pub not_adopted: i32,
    /// Not answered yet.
    pub unanswered: i32,
    /// Answers past their deadline.
    pub answers_overdue: i32,
    /// Replies past their deadline.
    pub replies_overdue: i32,
    /// Decisions finalised.
    pub decisions_finalized: i32,
    /// Finalised with flags.
    pub decisions_flagged: i32,
    /// Plans.
    pub plans: i32,
    /// Acceptance objections.
    pub plan_objections: i32,
}

impl Figures {
    /// (adopted + partly) / answered; 0 when nothing was answered.
    pub fn adoption_rate(&self) -> f64 {
        let answered = self.adopted + self.partially_adopted + self.not_adopted;
        if answered == 0 { 0.0 } else { f64::from(self.adopted + self.partially_adopted) / f64::from(answered) }
    }

    fn count_item(&mut self, o: &DecisionOpinion) {
        self.opinions += 1;
        match o.adoption.as_ref().map(|a| a.result) {
            Some(AdoptionResult::Adopted) => self.adopted += 1,
            Some(AdoptionResult::PartiallyAdopted) => self.partially_adopted += 1,
            Some(AdoptionResult::NotAdopted) => self.not_adopted += 1,
            None => self.unanswered += 1,
        }
    }
}

/// Per department and per street, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// By department.
    pub departments: BTreeMap<String, Figures>,
    /// By street.
    pub streets: BTreeMap<String, Figures>,
}

/// The figures of these records (already limited to the report's period).
pub fn compute(
    decisions: &[Decision],
    opinions: &[DecisionOpinion],
    plans: &[Plan],
    plan_opinions: &[PlanOpinion],
    escalations: &[Escalation],
) -> Report {
    let mut r = Report::default();
    for d in decisions {
        let dept = r.departments.entry(d.department_id.clone()).or_default();
        dept.consultations += 1;
        dept.streets_consulted += d.street_ids.len() as i32;
        if d.state == DecisionState::Finalized {
            dept.decisions_finalized += 1;
            dept.decisions_flagged += i32::from(!d.flags.is_empty());
        }
        for s in &d.street_ids {
            let street = r.streets.entry(s.clone()).or_default();
            street.consultations += 1;
            street.streets_consulted += 1;
            if d.state == DecisionState::Finalized {
                street.decisions_finalized += 1;
                street.decisions_flagged += i32::from(!d.flags.is_empty());
            }
        }
    }
    for o in opinions {
        r.departments.entry(o.department_id.clone()).or_default().count_item(o);
        r.streets.entry(o.street_id.clone()).or_default().count_item(o);
    }
    for e in escalations {
        let (dept, street) = match e.kind {
            EscalationKind::AnswerOverdue => (1, 0),
            EscalationKind::ReplyOverdue => (0, 1),
        };
        let d = r.departments.entry(e.department_id.clone()).or_default();
        d.answers_overdue += dept;
        d.replies_overdue += street;
        let s = r.streets.entry(e.street_id.clone()).or_default();
        s.answers_overdue += dept;
        s.replies_overdue += street;
    }
    for p in plans {
        r.departments.entry(p.department_id.clone()).or_default().plans += 1;
        for s in &p.street_ids {
            r.streets.entry(s.clone()).or_default().plans += 1;
        }
    }
    for o in plan_opinions.iter().filter(|o| o.acceptance == Some(Verdict::Objected)) {
        if let Some(p) = plans.iter().find(|p| p.id == o.plan_id) {
            r.departments.entry(p.department_id.clone()).or_default().plan_objections += 1;
        }
        r.streets.entry(o.street_id.clone()).or_default().plan_objections += 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adoption_rate_counts_partial_adoption_as_adoption_over_answered_items() {
        let f = Figures { adopted: 1, partially_adopted: 1, not_adopted: 2, unanswered: 5, ..Figures::default() };
        assert!((f.adoption_rate() - 0.5).abs() < 1e-9);
        assert_eq!(Figures::default().adoption_rate(), 0.0);
    }
}
