//! The state machines of cases, calls, tasks and rectifications (the diagrams in
//! case.proto, call.proto and task.proto), as pure functions: given the current state
//! (and the facts a rule needs), the next state or the [`Refusal`] that names the rule.
//!
//! "Auto" transitions (CALLING → IN_CONSULTATION, HANDLING ↔ UNDER_REVIEW, …) are
//! computed by [`settle`] after every change, so every RPC and every escalation applies
//! them the same way.

use super::{
    Refusal,
    model::{
        Call, CallState, CaseState, CheckInStatus, FeedbackState, RectificationState, ReviewDecision, TaskState,
        TriageDecision,
    },
};

fn case_subject(state: CaseState) -> String {
    format!("case in {}", state.as_str())
}

/// TriageCase: allowed in RECEIVED and TRIAGED (a triage may be revised before any call).
pub fn triage(state: CaseState, decision: TriageDecision) -> Result<CaseState, Refusal> {
    if !matches!(state, CaseState::Received | CaseState::Triaged) {
        return Err(Refusal::new(
            "CASE_ALREADY_TRIAGED",
            case_subject(state),
            "the case can only be triaged while received or triaged, before any call goes out",
        ));
    }
    Ok(match decision {
        TriageDecision::StartCall => CaseState::Triaged,
        TriageDecision::SolveAtStreet => CaseState::SolvingAtStreet,
        TriageDecision::Decline => CaseState::Declined,
    })
}

/// Corrections and additions (UpdateCase, links, withdrawals, inaction, files) need a case
/// that is not closed or declined.
pub fn require_open(state: CaseState) -> Result<(), Refusal> {
    if state.is_final() {
        return Err(Refusal::new("CASE_FINISHED", case_subject(state), "the case is closed or declined"));
    }
    Ok(())
}

/// StartCall: → CALLING, or stays HANDLING for a supplementary call.
pub fn start_call(state: CaseState) -> Result<CaseState, Refusal> {
    match state {
        CaseState::Triaged | CaseState::SolvingAtStreet | CaseState::Calling | CaseState::InConsultation => {
            Ok(CaseState::Calling)
        }
        CaseState::Handling => Ok(CaseState::Handling),
        other => Err(Refusal::new(
            "CASE_NOT_CALLABLE",
            case_subject(other),
            "calls can only start after triage and before review (TRIAGED, SOLVING_AT_STREET, CALLING, IN_CONSULTATION, HANDLING)",
        )),
    }
}

/// RecordConsultation: allowed from CALLING to UNDER_REVIEW; with tasks → HANDLING.
pub fn consult(state: CaseState, with_tasks: bool) -> Result<CaseState, Refusal> {
    match state {
        CaseState::Calling | CaseState::InConsultation | CaseState::Handling | CaseState::UnderReview => {
            Ok(if with_tasks { CaseState::Handling } else { state })
        }
        other => Err(Refusal::new(
            "CASE_NOT_IN_CALL",
            case_subject(other),
            "a consultation needs the call procedure under way (CALLING to UNDER_REVIEW)",
        )),
    }
}

/// SubmitCaseReport: UNDER_REVIEW → REPORTED, with every task accepted and no report yet.
pub fn submit_report(state: CaseState, report_exists: bool, unaccepted_tasks: &[String]) -> Result<CaseState, Refusal> {
    if report_exists {
        return Err(Refusal::new("CASE_REPORT_EXISTS", case_subject(state), "the case report was already submitted"));
    }
    if state != CaseState::UnderReview {
        return Err(Refusal::new(
            "CASE_NOT_UNDER_REVIEW",
            case_subject(state),
            "the case report is submitted once every task has feedback (UNDER_REVIEW)",
        ));
    }
    if !unaccepted_tasks.is_empty() {
        return Err(Refusal::new(
            "TASKS_NOT_ACCEPTED",
            unaccepted_tasks.join(","),
            format!("{} task(s) are not accepted yet", unaccepted_tasks.len()),
        ));
    }
    Ok(CaseState::Reported)
}

/// RecordCallback: allowed in SOLVING_AT_STREET, REPORTED, RATING, RECTIFYING; REPORTED →
/// RATING once the callback is done (`callback_done`: reached, anonymous, or the last
/// unreached attempt the policy asks for — see [`super::callback`]).
pub fn callback(state: CaseState, callback_done: bool) -> Result<CaseState, Refusal> {
    match state {
        CaseState::Reported if callback_done => Ok(CaseState::Rating),
        CaseState::SolvingAtStreet | CaseState::Reported | CaseState::Rating | CaseState::Rectifying => Ok(state),
        other => Err(Refusal::new(
            "CASE_NOT_REPORTED",
            case_subject(other),
            "a callback follows the case report (or the street's own handling)",
        )),
    }
}

/// RateDepartment: allowed in RATING and RECTIFYING. A REPORTED case has not had its
/// callback yet (回访 before 评价): `CALLBACK_REQUIRED`. The once-per-department rule is
/// checked by the caller ([`first_rating`]).
pub fn rate(state: CaseState, attempts_required: u32) -> Result<CaseState, Refusal> {
    match state {
        CaseState::Rating | CaseState::Rectifying => Ok(state),
        CaseState::Reported => Err(super::callback::refusal(attempts_required)),
        other => Err(Refusal::new(
            "CASE_NOT_REPORTED",
            case_subject(other),
            "departments are rated after the case report is submitted and the feedback accepted",
        )),
    }
}

/// 一事一评: a first rating only when the department has none.
pub fn first_rating(department_id: &str, has_current_rating: bool) -> Result<(), Refusal> {
    if has_current_rating {
        return Err(Refusal::new(
            "ALREADY_RATED",
            format!("departments/{department_id}"),
            "the department is already rated in this case; only a rectification allows a new rating",
        ));
    }
    Ok(())
}

/// RequireRectification: RATING | RECTIFYING → RECTIFYING, of a dissatisfying department
/// without an open rectification.
pub fn require_rectification(
    state: CaseState,
    department_id: &str,
    current_dissatisfied: bool,
    open_rectification: bool,
) -> Result<CaseState, Refusal> {
    if !matches!(state, CaseState::Rating | CaseState::Rectifying) {
        return Err(Refusal::new("CASE_NOT_RATING", case_subject(state), "rectification follows rating"));
    }
    let subject = format!("departments/{department_id}");
    if !current_dissatisfied {
        return Err(Refusal::new(
            "RATING_NOT_DISSATISFIED",
            subject,
            "rectification is required of a department whose current rating is dissatisfied",
        ));
    }
    if open_rectification {
        return Err(Refusal::new("RECTIFICATION_OPEN", subject, "a rectification is already open for the department"));
    }
    Ok(CaseState::Rectifying)
}

/// RerateDepartment: the open rectification must be settled (accepted, or overdue).
pub fn rerate(state: CaseState, open: Option<(RectificationState, bool)>) -> Result<(), Refusal> {
    if !matches!(state, CaseState::Rating | CaseState::Rectifying) {
        return Err(Refusal::new("NO_RECTIFICATION", case_subject(state), "the case has no rectification to re-rate"));
    }
    match open {
        None => Err(Refusal::new("NO_RECTIFICATION", case_subject(state), "the department has no open rectification")),
        Some((RectificationState::Accepted, _)) | Some((_, true)) => Ok(()),
        Some((other, false)) => Err(Refusal::new(
            "RECTIFICATION_NOT_SETTLED",
            other.as_str(),
            "the rectification is neither accepted nor overdue",
        )),
    }
}

/// What CloseCase needs to know besides the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseFacts {
    /// Tasks not accepted (rectification tasks of closed rectifications excluded).
    pub open_task_ids: Vec<String>,
    /// Whether the case report exists.
    pub report_exists: bool,
    /// Called departments without a current rating.
    pub unrated_departments: Vec<String>,
    /// Departments with an open rectification.
    pub open_rectifications: Vec<String>,
    /// The callback is still pending (回访): refused with `CALLBACK_REQUIRED` from either
    /// closable state; the number of attempts that would excuse it.
    pub callback_missing: Option<u32>,
}

/// CloseCase: SOLVING_AT_STREET | RATING → CLOSED; otherwise one refusal per unmet rule.
pub fn close(state: CaseState, facts: &CloseFacts) -> Result<CaseState, Vec<Refusal>> {
    let mut refusals = Vec::new();
    if !matches!(state, CaseState::SolvingAtStreet | CaseState::Rating) {
        refusals.push(Refusal::new(
            "CASE_NOT_CLOSABLE",
            case_subject(state),
            "a case closes from SOLVING_AT_STREET or RATING",
        ));
    }
    // Only a closable state asks for it: elsewhere CASE_NOT_CLOSABLE says enough.
    if let Some(attempts) = facts.callback_missing
        && matches!(state, CaseState::SolvingAtStreet | CaseState::Rating)
    {
        refusals.push(super::callback::refusal(attempts));
    }
    if !facts.open_task_ids.is_empty() {
        refusals.push(Refusal::new(
            "TASKS_OPEN",
            facts.open_task_ids.join(","),
            format!("{} task(s) are not completed", facts.open_task_ids.len()),
        ));
    }
    if state == CaseState::Rating {
        if !facts.report_exists {
            refusals.push(Refusal::new("CASE_REPORT_MISSING", case_subject(state), "the case report is missing"));
        }
        if !facts.unrated_departments.is_empty() {
            refusals.push(Refusal::new(
                "DEPARTMENTS_UNRATED",
                facts.unrated_departments.join(","),
                "every called department must be rated (谁呼谁评)",
            ));
        }
        if !facts.open_rectifications.is_empty() {
            refusals.push(Refusal::new(
                "RECTIFICATION_OPEN",
                facts.open_rectifications.join(","),
                "a rectification is still open",
            ));
        }
    }
    if refusals.is_empty() { Ok(CaseState::Closed) } else { Err(refusals) }
}

/// What the automatic transitions look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaseFacts {
    /// Non-withdrawn calls.
    pub active_calls: usize,
    /// Non-withdrawn calls that are signed and whose check-in window has closed.
    pub gathered_calls: usize,
    /// Regular tasks.
    pub tasks: usize,
    /// Regular tasks OPEN or RETURNED.
    pub open_tasks: usize,
    /// Rectifications not CLOSED.
    pub open_rectifications: usize,
}

/// The automatic transitions, applied after every change until nothing moves:
/// CALLING → IN_CONSULTATION once every active call is signed and gathered; CALLING →
/// TRIAGED when the last active call was withdrawn; HANDLING → UNDER_REVIEW when no task is
/// open; UNDER_REVIEW → HANDLING when one is again (returned feedback); RECTIFYING → RATING
/// when no rectification is open.
pub fn settle(state: CaseState, facts: CaseFacts) -> CaseState {
    match state {
        CaseState::Calling if facts.active_calls == 0 => CaseState::Triaged,
        CaseState::Calling if facts.gathered_calls == facts.active_calls => CaseState::InConsultation,
        CaseState::Handling if facts.tasks > 0 && facts.open_tasks == 0 => CaseState::UnderReview,
        CaseState::UnderReview if facts.open_tasks > 0 => CaseState::Handling,
        CaseState::Rectifying if facts.open_rectifications == 0 => CaseState::Rating,
        other => other,
    }
}

fn call_subject(state: CallState) -> String {
    format!("call in {}", state.as_str())
}

/// SignCall: PENDING_SIGN | SIGN_OVERDUE → SIGNED.
pub fn sign(state: CallState) -> Result<CallState, Refusal> {
    match state {
        CallState::PendingSign | CallState::SignOverdue => Ok(CallState::Signed),
        CallState::Withdrawn => Err(Refusal::new("CALL_WITHDRAWN", call_subject(state), "the call was withdrawn")),
        other => Err(Refusal::new("CALL_ALREADY_SIGNED", call_subject(other), "the call was already signed")),
    }
}

/// WithdrawCall: PENDING_SIGN | SIGN_OVERDUE → WITHDRAWN.
pub fn withdraw(state: CallState) -> Result<CallState, Refusal> {
    match state {
        CallState::PendingSign | CallState::SignOverdue => Ok(CallState::Withdrawn),
        CallState::Withdrawn => {
            Err(Refusal::new("CALL_WITHDRAWN", call_subject(state), "the call was already withdrawn"))
        }
        other => Err(Refusal::new("CALL_ALREADY_SIGNED", call_subject(other), "a signed call cannot be withdrawn")),
    }
}

/// The sign deadline passed: PENDING_SIGN → SIGN_OVERDUE; anything else is left alone
/// (`None`: nothing to escalate).
pub fn sign_overdue(state: CallState) -> Option<CallState> {
    (state == CallState::PendingSign).then_some(CallState::SignOverdue)
}

/// Signed, or the reason a signed call is needed (designation, contact sharing, tasks).
pub fn require_signed(state: CallState) -> Result<(), Refusal> {
    match state {
        CallState::Signed | CallState::Designated => Ok(()),
        CallState::Withdrawn => Err(Refusal::new("CALL_NOT_SIGNED", call_subject(state), "the call was withdrawn")),
        CallState::Completed => Err(Refusal::new("CALL_COMPLETED", call_subject(state), "the case is closed")),
        other => Err(Refusal::new("CALL_NOT_SIGNED", call_subject(other), "the call is not signed yet")),
    }
}

/// DesignateResponders: SIGNED | DESIGNATED → DESIGNATED, before the report time.
pub fn designate(state: CallState, report_time_passed: bool) -> Result<CallState, Refusal> {
    require_signed(state)?;
    if report_time_passed {
        return Err(Refusal::new(
            "REPORT_TIME_PASSED",
            call_subject(state),
            "people can only be designated before the report time",
        ));
    }
    Ok(CallState::Designated)
}

/// The case closed: a signed call's part is over.
pub fn complete_call(state: CallState) -> CallState {
    if matches!(state, CallState::Signed | CallState::Designated) { CallState::Completed } else { state }
}

/// Whether a designated person may check in now.
pub fn may_check_in(status: CheckInStatus, person_id: &str) -> Result<(), Refusal> {
    let subject = format!("people/{person_id}");
    match status {
        CheckInStatus::Pending => Ok(()),
        CheckInStatus::OnTime | CheckInStatus::Late => {
            Err(Refusal::new("ALREADY_CHECKED_IN", subject, "the person has already checked in"))
        }
        CheckInStatus::Absent => {
            Err(Refusal::new("CHECK_IN_CLOSED", subject, "the check-in window closed; the person was marked absent"))
        }
    }
}

fn task_subject(state: TaskState) -> String {
    format!("task in {}", state.as_str())
}

/// SubmitFeedback: OPEN | RETURNED → FEEDBACK_SUBMITTED.
pub fn submit_feedback(state: TaskState) -> Result<TaskState, Refusal> {
    match state {
        TaskState::Open | TaskState::Returned => Ok(TaskState::FeedbackSubmitted),
        TaskState::FeedbackSubmitted => {
            Err(Refusal::new("FEEDBACK_PENDING", task_subject(state), "earlier feedback awaits the street's review"))
        }
        TaskState::Accepted => Err(Refusal::new("TASK_COMPLETED", task_subject(state), "the task is completed")),
    }
}

/// ReportProgress: anything but ACCEPTED.
pub fn report_progress(state: TaskState) -> Result<(), Refusal> {
    if state == TaskState::Accepted {
        return Err(Refusal::new("TASK_COMPLETED", task_subject(state), "the task is completed"));
    }
    Ok(())
}

/// ReviewFeedback on a task FEEDBACK_SUBMITTED: ACCEPT → ACCEPTED, RETURN → RETURNED.
pub fn review(state: TaskState, decision: ReviewDecision) -> Result<TaskState, Refusal> {
    if state != TaskState::FeedbackSubmitted {
        return Err(Refusal::new(
            "FEEDBACK_ALREADY_REVIEWED",
            task_subject(state),
            "the feedback was already reviewed",
        ));
    }
    Ok(match decision {
        ReviewDecision::Accept => TaskState::Accepted,
        ReviewDecision::Return => TaskState::Returned,
    })
}

/// A rectification follows its task: feedback submitted, returned (→ OPEN) or accepted.
pub fn rectification_after_task(task: TaskState) -> RectificationState {
    match task {
        TaskState::Open | TaskState::Returned => RectificationState::Open,
        TaskState::FeedbackSubmitted => RectificationState::FeedbackSubmitted,
        TaskState::Accepted => RectificationState::Accepted,
    }
}

/// StartCall: a department is called once per case while its call is live (neither
/// withdrawn nor completed).
pub fn may_call(existing: &[Call], department_id: &str) -> Result<(), Refusal> {
    let live = existing.iter().any(|e| {
        e.department_id == department_id && e.state != CallState::Withdrawn && e.state != CallState::Completed
    });
    if live {
        return Err(Refusal::new(
            "DEPARTMENT_ALREADY_CALLED",
            format!("departments/{department_id}"),
            "the department already has a call in the case",
        ));
    }
    Ok(())
}

/// StartCall: only an active department is called.
pub fn callable_department(department_id: &str, active: bool) -> Result<(), Refusal> {
    if !active {
        return Err(Refusal::new(
            "DEPARTMENT_INACTIVE",
            format!("departments/{department_id}"),
            "the department is inactive",
        ));
    }
    Ok(())
}

/// DesignateResponders: every person eligible (`ineligible`: person id and the roster's
/// reasons, one refusal each) and at least `required` of them.
pub fn designation_verdict(
    call: &str,
    ineligible: Vec<(String, String)>,
    eligible: i32,
    required: i32,
) -> Result<(), Vec<Refusal>> {
    if !ineligible.is_empty() {
        return Err(ineligible
            .into_iter()
            .map(|(person, reasons)| Refusal::new("DESIGNATION_INELIGIBLE", format!("people/{person}"), reasons))
            .collect());
    }
    if eligible < required {
        return Err(vec![Refusal::new(
            "REQUIREMENT_NOT_MET",
            format!("calls/{call}"),
            format!("{eligible} eligible people, {required} required"),
        )]);
    }
    Ok(())
}

/// RateDepartment (谁呼谁评): only a department the case called is rated.
pub fn rated_was_called(department_id: &str, calls: usize) -> Result<(), Refusal> {
    if calls == 0 {
        return Err(Refusal::new(
            "DEPARTMENT_NOT_CALLED",
            format!("departments/{department_id}"),
            "the department has no call in the case",
        ));
    }
    Ok(())
}

/// ReviewFeedback: a feedback is reviewed once.
pub fn may_review(feedback: &str, state: FeedbackState) -> Result<(), Refusal> {
    if state != FeedbackState::Submitted {
        return Err(Refusal::new(
            "FEEDBACK_ALREADY_REVIEWED",
            format!("feedback/{feedback}"),
            "the feedback was already reviewed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use CaseState::*;

    fn refused<T: std::fmt::Debug>(r: Result<T, Refusal>) -> &'static str {
        r.expect_err("should be refused").reason
    }

    #[test]
    fn triage_moves_a_received_case_to_each_decision() {
        assert_eq!(triage(Received, TriageDecision::StartCall), Ok(Triaged));
        assert_eq!(triage(Received, TriageDecision::SolveAtStreet), Ok(SolvingAtStreet));
        assert_eq!(triage(Received, TriageDecision::Decline), Ok(Declined));
        assert_eq!(triage(Triaged, TriageDecision::SolveAtStreet), Ok(SolvingAtStreet));
        assert_eq!(triage(Triaged, TriageDecision::Decline), Ok(Declined));
    }

    #[test]
    fn triage_is_refused_once_the_procedure_moved_on() {
        for state in CaseState::ALL.iter().copied().filter(|s| !matches!(s, Received | Triaged)) {
            assert_eq!(refused(triage(state, TriageDecision::StartCall)), "CASE_ALREADY_TRIAGED", "{state:?}");
        }
    }

    #[test]
    fn only_a_finished_case_refuses_corrections() {
        for state in CaseState::ALL.iter().copied() {
            let refused_here = require_open(state).is_err();
            assert_eq!(refused_here, matches!(state, Closed | Declined), "{state:?}");
        }
        assert_eq!(refused(require_open(Closed)), "CASE_FINISHED");
    }

    #[test]
    fn start_call_goes_to_calling_or_stays_handling() {
        for state in [Triaged, SolvingAtStreet, Calling, InConsultation] {
            assert_eq!(start_call(state), Ok(Calling));
        }
        assert_eq!(start_call(Handling), Ok(Handling));
        for state in [Received, UnderReview, Reported, Rating, Rectifying, Closed, Declined] {
            assert_eq!(refused(start_call(state)), "CASE_NOT_CALLABLE");
        }
    }

    #[test]
    fn consultation_with_tasks_goes_to_handling() {
        for state in [Calling, InConsultation, Handling, UnderReview] {
            assert_eq!(consult(state, true), Ok(Handling));
            assert_eq!(consult(state, false), Ok(state));
        }
        for state in [Received, Triaged, SolvingAtStreet, Reported, Rating, Rectifying, Closed, Declined] {
            assert_eq!(refused(consult(state, true)), "CASE_NOT_IN_CALL");
        }
    }

    #[test]
    fn the_report_needs_review_accepted_tasks_and_no_earlier_report() {
        assert_eq!(submit_report(UnderReview, false, &[]), Ok(Reported));
        assert_eq!(refused(submit_report(UnderReview, true, &[])), "CASE_REPORT_EXISTS");
        assert_eq!(refused(submit_report(UnderReview, false, &["t".into()])), "TASKS_NOT_ACCEPTED");
        assert_eq!(refused(submit_report(Handling, false, &[])), "CASE_NOT_UNDER_REVIEW");
        assert_eq!(refused(submit_report(Reported, true, &[])), "CASE_REPORT_EXISTS");
    }

    #[test]
    fn only_a_done_callback_moves_a_reported_case_to_rating() {
        assert_eq!(callback(Reported, true), Ok(Rating));
        assert_eq!(callback(Reported, false), Ok(Reported), "an unreached attempt short of the policy");
        assert_eq!(callback(SolvingAtStreet, true), Ok(SolvingAtStreet));
        assert_eq!(callback(Rectifying, true), Ok(Rectifying));
        assert_eq!(refused(callback(Handling, true)), "CASE_NOT_REPORTED");
        assert_eq!(refused(rate(Reported, 3)), "CALLBACK_REQUIRED", "回访 before 评价");
        assert_eq!(rate(Rating, 3), Ok(Rating));
        assert_eq!(rate(Rectifying, 3), Ok(Rectifying));
        for state in [Received, Triaged, SolvingAtStreet, Calling, InConsultation, Handling, UnderReview, Closed] {
            assert_eq!(refused(rate(state, 3)), "CASE_NOT_REPORTED");
        }
        assert_eq!(refused(first_rating("gongan", true)), "ALREADY_RATED");
        assert!(first_rating("gongan", false).is_ok());
    }

    #[test]
    fn rectification_needs_a_dissatisfied_rating_and_none_open() {
        assert_eq!(require_rectification(Rating, "d", true, false), Ok(Rectifying));
        assert_eq!(require_rectification(Rectifying, "d", true, false), Ok(Rectifying));
        assert_eq!(refused(require_rectification(Rating, "d", false, false)), "RATING_NOT_DISSATISFIED");
        assert_eq!(refused(require_rectification(Rating, "d", true, true)), "RECTIFICATION_OPEN");
        assert_eq!(refused(require_rectification(Reported, "d", true, false)), "CASE_NOT_RATING");
    }

    #[test]
    fn rerating_needs_a_settled_rectification() {
        assert!(rerate(Rectifying, Some((RectificationState::Accepted, false))).is_ok());
        assert!(rerate(Rectifying, Some((RectificationState::Open, true))).is_ok());
        assert_eq!(refused(rerate(Rectifying, Some((RectificationState::Open, false)))), "RECTIFICATION_NOT_SETTLED");
        assert_eq!(refused(rerate(Rating, None)), "NO_RECTIFICATION");
    }

    #[test]
    fn closing_lists_every_unmet_rule() {
        assert_eq!(close(SolvingAtStreet, &CloseFacts::default()), Ok(Closed));
        let done = CloseFacts { report_exists: true, ..Default::default() };
        assert_eq!(close(Rating, &done), Ok(Closed));
        let facts = CloseFacts {
            open_task_ids: vec!["t1".into()],
            report_exists: false,
            unrated_departments: vec!["gongan".into()],
            open_rectifications: vec!["guihua".into()],
            callback_missing: None,
        };
        let pending = CloseFacts { callback_missing: Some(3), ..Default::default() };
        assert_eq!(close(SolvingAtStreet, &pending).unwrap_err()[0].reason, "CALLBACK_REQUIRED");
        let reasons: Vec<_> = close(Rating, &facts).unwrap_err().iter().map(|r| r.reason).collect();
        assert_eq!(reasons, ["TASKS_OPEN", "CASE_REPORT_MISSING", "DEPARTMENTS_UNRATED", "RECTIFICATION_OPEN"]);
        let reasons: Vec<_> = close(Handling, &facts).unwrap_err().iter().map(|r| r.reason).collect();
        assert_eq!(reasons, ["CASE_NOT_CLOSABLE", "TASKS_OPEN"]);
        for state in [Received, Triaged, Calling, Reported, Rectifying, Closed, Declined] {
            assert_eq!(close(state, &done).unwrap_err()[0].reason, "CASE_NOT_CLOSABLE");
        }
    }

    #[test]
    fn automatic_transitions_follow_the_facts() {
        let f = |active_calls, gathered_calls, tasks, open_tasks, open_rectifications| CaseFacts {
            active_calls,
            gathered_calls,
            tasks,
            open_tasks,
            open_rectifications,
        };
        assert_eq!(settle(Calling, f(2, 1, 0, 0, 0)), Calling);
        assert_eq!(settle(Calling, f(2, 2, 0, 0, 0)), InConsultation);
        assert_eq!(settle(Calling, f(0, 0, 0, 0, 0)), Triaged);
        assert_eq!(settle(Handling, f(2, 2, 3, 1, 0)), Handling);
        assert_eq!(settle(Handling, f(2, 2, 3, 0, 0)), UnderReview);
        assert_eq!(settle(UnderReview, f(2, 2, 3, 1, 0)), Handling);
        assert_eq!(settle(Rectifying, f(2, 2, 3, 0, 1)), Rectifying);
        assert_eq!(settle(Rectifying, f(2, 2, 3, 0, 0)), Rating);
        assert_eq!(settle(Rating, f(2, 2, 3, 0, 0)), Rating);
    }

    #[test]
    fn calls_sign_once_and_withdraw_only_unsigned() {
        use CallState::*;
        assert_eq!(sign(PendingSign), Ok(Signed));
        assert_eq!(sign(SignOverdue), Ok(Signed));
        for state in [Signed, Designated, Completed] {
            assert_eq!(refused(sign(state)), "CALL_ALREADY_SIGNED");
        }
        assert_eq!(refused(sign(Withdrawn)), "CALL_WITHDRAWN");
        assert_eq!(withdraw(PendingSign), Ok(Withdrawn));
        assert_eq!(withdraw(SignOverdue), Ok(Withdrawn));
        assert_eq!(refused(withdraw(Signed)), "CALL_ALREADY_SIGNED");
        assert_eq!(refused(withdraw(Withdrawn)), "CALL_WITHDRAWN");
        assert_eq!(sign_overdue(PendingSign), Some(SignOverdue));
        assert_eq!(sign_overdue(Signed), None);
        assert_eq!(complete_call(Designated), Completed);
        assert_eq!(complete_call(Withdrawn), Withdrawn);
    }

    #[test]
    fn designation_needs_a_signed_call_before_the_report_time() {
        use CallState::*;
        assert_eq!(designate(Signed, false), Ok(Designated));
        assert_eq!(designate(Designated, false), Ok(Designated));
        assert_eq!(refused(designate(Signed, true)), "REPORT_TIME_PASSED");
        assert_eq!(refused(designate(PendingSign, false)), "CALL_NOT_SIGNED");
        assert_eq!(refused(designate(SignOverdue, false)), "CALL_NOT_SIGNED");
        assert_eq!(refused(designate(Withdrawn, false)), "CALL_NOT_SIGNED");
    }

    #[test]
    fn a_person_checks_in_once_and_not_after_absence() {
        assert!(may_check_in(CheckInStatus::Pending, "p").is_ok());
        assert_eq!(refused(may_check_in(CheckInStatus::OnTime, "p")), "ALREADY_CHECKED_IN");
        assert_eq!(refused(may_check_in(CheckInStatus::Late, "p")), "ALREADY_CHECKED_IN");
        assert_eq!(refused(may_check_in(CheckInStatus::Absent, "p")), "CHECK_IN_CLOSED");
    }

    #[test]
    fn tasks_take_feedback_then_review() {
        use TaskState::*;
        assert_eq!(submit_feedback(Open), Ok(FeedbackSubmitted));
        assert_eq!(submit_feedback(Returned), Ok(FeedbackSubmitted));
        assert_eq!(refused(submit_feedback(FeedbackSubmitted)), "FEEDBACK_PENDING");
        assert_eq!(refused(submit_feedback(Accepted)), "TASK_COMPLETED");
        assert_eq!(review(FeedbackSubmitted, ReviewDecision::Accept), Ok(Accepted));
        assert_eq!(review(FeedbackSubmitted, ReviewDecision::Return), Ok(Returned));
        for state in [Open, Returned, Accepted] {
            assert_eq!(refused(review(state, ReviewDecision::Accept)), "FEEDBACK_ALREADY_REVIEWED");
        }
        assert!(report_progress(Open).is_ok());
        assert_eq!(refused(report_progress(Accepted)), "TASK_COMPLETED");
        assert_eq!(rectification_after_task(Returned), RectificationState::Open);
        assert_eq!(rectification_after_task(FeedbackSubmitted), RectificationState::FeedbackSubmitted);
        assert_eq!(rectification_after_task(Accepted), RectificationState::Accepted);
    }
}
