//! The case aggregate's own rules (案件): closing it.

use chrono::{DateTime, Utc};

use super::{
    Refusal,
    events::{CaseDecision, CaseEvent, DeadlineEffect},
    model::{Case, CaseState},
    state::{self, CloseFacts},
};

impl Case {
    /// 办结 with `summary` at `now`, given what CloseCase found (`facts`) and the departments
    /// the case called: CLOSED, every call's part over, every deadline of the case moot; or
    /// every rule still unmet.
    pub fn close(
        &mut self,
        summary: String,
        facts: &CloseFacts,
        departments: &[String],
        now: DateTime<Utc>,
    ) -> Result<CaseDecision, Vec<Refusal>> {
        let next = state::close(self.state, facts)?;
        let before = self.state;
        let solved_alone = before == CaseState::SolvingAtStreet && departments.is_empty();
        self.state = next;
        self.close_time = Some(now);
        self.close_summary = summary;
        Ok(CaseDecision {
            event: CaseEvent::Closed {
                before,
                after: next,
                close_summary: self.close_summary.clone(),
                solved_alone,
                departments: departments.to_vec(),
                duration: now - self.create_time,
            },
            deadlines: vec![DeadlineEffect::CancelAll],
        })
    }
}
