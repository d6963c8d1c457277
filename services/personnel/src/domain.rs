//! The rules, pure: who may do what, where a solicitation may go next, what a decision's
//! compliance is, the interview scope a promotion needs, statutory leave, and the
//! commendation quota. No I/O: the api layer looks things up, the store writes.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use minhu_deadlines::WorkCalendar;
use minhu_grpc::{OrgKind, Principal, Role};

use crate::error::{PersonnelError, Refusal};

/// Where a solicitation stands (stored by its proto name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// 待回复.
    AwaitingOpinion,
    /// 已回复.
    OpinionReceived,
    /// 逾期未回复.
    NoReply,
    /// 已决定. Final.
    Decided,
    /// 撤回. Final.
    Withdrawn,
}

impl State {
    /// The stored (proto) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingOpinion => "SOLICITATION_STATE_AWAITING_OPINION",
            Self::OpinionReceived => "SOLICITATION_STATE_OPINION_RECEIVED",
            Self::NoReply => "SOLICITATION_STATE_NO_REPLY",
            Self::Decided => "SOLICITATION_STATE_DECIDED",
            Self::Withdrawn => "SOLICITATION_STATE_WITHDRAWN",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::AwaitingOpinion, Self::OpinionReceived, Self::NoReply, Self::Decided, Self::Withdrawn]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

fn subject(id: impl std::fmt::Display) -> String {
    format!("solicitations/{id}")
}

fn final_refusal(state: State, id: impl std::fmt::Display) -> Option<Refusal> {
    match state {
        State::Decided => Some(Refusal::new("ALREADY_DECIDED", subject(&id), "the department has already decided")),
        State::Withdrawn => Some(Refusal::new("WITHDRAWN", subject(&id), "the solicitation was withdrawn")),
        _ => None,
    }
}

/// Whether the street's reply is late at `now` (a reply *at* the deadline is on time).
pub fn late(now: DateTime<Utc>, deadline: DateTime<Utc>) -> bool {
    now > deadline
}

/// The street replies: allowed until the department decides, even after the deadline
/// (then late). Returns whether it is late.
pub fn submit_opinion(
    state: State,
    id: impl std::fmt::Display,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
) -> Result<bool, Refusal> {
    if let Some(r) = final_refusal(state, &id) {
        return Err(r);
    }
    if state == State::OpinionReceived {
        return Err(Refusal::new("ALREADY_ANSWERED", subject(&id), "the street has already replied"));
    }
    Ok(late(now, deadline))
}

/// The department decides: only once the street replied or its deadline passed (the
/// opinion comes first). Not adopting a received opinion needs a reason.
pub fn record_decision(
    state: State,
    id: impl std::fmt::Display,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
    opinion_adopted: bool,
    reason: &str,
) -> Result<(), PersonnelError> {
    if let Some(r) = final_refusal(state, &id) {
        return Err(r.into());
    }
    if state == State::AwaitingOpinion && !late(now, deadline) {
        return Err(Refusal::new(
            "OPINION_PENDING",
            subject(&id),
            "the street has not replied and its reply deadline has not passed: its opinion comes first",
        )
        .into());
    }
    if state == State::OpinionReceived && !opinion_adopted && reason.trim().is_empty() {
        let mut v = minhu_grpc::FieldViolations::new();
        v.add("reason", "is required when the street's opinion is not adopted (应予以反馈)");
        return Err(PersonnelError::Rejected { reason: "REASON_REQUIRED", violations: v });
    }
    Ok(())
}

/// The department withdraws.
pub fn withdraw(state: State, id: impl std::fmt::Display) -> Result<(), Refusal> {
    match final_refusal(state, &id) {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

/// Whether the reply deadline, firing at `now`, finds a reply overdue.
pub fn reply_overdue(state: State, now: DateTime<Utc>, deadline: DateTime<Utc>) -> bool {
    state == State::AwaitingOpinion && late(now, deadline)
}

/// Compliance findings (stored by their proto names).
pub mod finding {
    /// 未事先征求意见.
    pub const WITHOUT_SOLICITATION: &str = "FINDING_KIND_DECISION_WITHOUT_SOLICITATION";
    /// Decided before the reply and its deadline.
    pub const BEFORE_REPLY: &str = "FINDING_KIND_DECISION_BEFORE_REPLY";
    /// A roster leadership change without a decision.
    pub const ROSTER_CHANGE: &str = "FINDING_KIND_ROSTER_CHANGE_WITHOUT_DECISION";
    /// A promotion without every required interview.
    pub const PROMOTION: &str = "FINDING_KIND_PROMOTION_WITHOUT_FULL_INTERVIEWS";
    /// The street did not reply in time.
    pub const REPLY_OVERDUE: &str = "FINDING_KIND_REPLY_OVERDUE";
}

/// The finding of a reported decision: none when it cites a solicitation of the same
/// person and station that the street answered (or let lapse) first.
pub fn decision_finding(cited: Option<(State, DateTime<Utc>)>, now: DateTime<Utc>) -> Option<&'static str> {
    match cited {
        None => Some(finding::WITHOUT_SOLICITATION),
        Some((State::Withdrawn, _)) => Some(finding::WITHOUT_SOLICITATION),
        Some((State::AwaitingOpinion, deadline)) if !late(now, deadline) => Some(finding::BEFORE_REPLY),
        Some(_) => None,
    }
}

/// What the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller<'a> {
    /// The district (organisation/personnel included): reads everything.
    District,
    /// A street office.
    Street(&'a str),
    /// A department.
    Department(&'a str),
    /// Anyone else (services, discipline inspection).
    Other,
}

/// The caller as the rules see them.
pub fn caller(p: &Principal) -> Caller<'_> {
    match p.organization.kind {
        OrgKind::District | OrgKind::OrganizationPersonnel => Caller::District,
        OrgKind::Street => Caller::Street(&p.organization.id),
        OrgKind::Department => Caller::Department(&p.organization.id),
        _ => Caller::Other,
    }
}

/// Whether `p` may read something of `department` concerning `street`.
pub fn may_read(p: &Principal, department: &str, street: &str) -> bool {
    match caller(p) {
        Caller::District => true,
        Caller::Street(s) => s == street,
        Caller::Department(d) => d == department,
        Caller::Other => false,
    }
}

/// A department's leader or personnel officer, acting for `department`: files
/// solicitations, decides, plans interviews.
pub fn require_department(p: &Principal, department: &str) -> Result<(), PersonnelError> {
    if p.acts_for(OrgKind::Department, department) && p.has_any_role(&[Role::DepartmentLeader, Role::PersonnelOfficer])
    {
        Ok(())
    } else {
        Err(PersonnelError::denied(format!("only a leader or personnel officer of `{department}` may do this")))
    }
}

/// A leader of `street`: replies, evaluates, manages leave.
pub fn require_street_leader(p: &Principal, street: &str) -> Result<(), PersonnelError> {
    if p.acts_for(OrgKind::Street, street) && p.has_role(Role::StreetLeader) {
        Ok(())
    } else {
        Err(PersonnelError::denied(format!("only a leader of street `{street}` may do this")))
    }
}

/// The district's organisation/personnel officers and admins: ratios and coefficients, the
/// roster check.
pub fn require_district_setter(p: &Principal) -> Result<(), PersonnelError> {
    if caller(p) == Caller::District && p.has_any_role(&[Role::PersonnelOfficer, Role::DistrictAdmin]) {
        Ok(())
    } else {
        Err(PersonnelError::denied("only the district's organisation/personnel officers may do this"))
    }
}

/// One required interviewee and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Required {
    /// The person.
    pub person_id: String,
    /// Their position (proto name).
    pub position: &'static str,
    /// The violation type when missing.
    pub missing: &'static str,
}

/// A street leader as the roster gives it.
#[derive(Debug, Clone)]
pub struct Leader {
    /// The person.
    pub person_id: String,
    /// Principal (主要领导) rather than in charge (分管).
    pub principal: bool,
    /// Lines of work in charge of (`DepartmentKind` numbers).
    pub areas: Vec<i32>,
}

/// The interview scope (谈话范围) of a station head of a department of `department_kind`:
/// every principal leader, every leader in charge of that line of work, and the heads of the
/// sections working closely with the station.
pub fn interview_scope(leaders: &[Leader], department_kind: i32, section_heads: &[String]) -> Vec<Required> {
    let mut scope = Vec::new();
    for l in leaders.iter().filter(|l| l.principal) {
        scope.push(Required {
            person_id: l.person_id.clone(),
            position: "POSITION_STREET_PRINCIPAL_LEADER",
            missing: "MISSING_PRINCIPAL_LEADER",
        });
    }
    for l in leaders.iter().filter(|l| !l.principal && l.areas.contains(&department_kind)) {
        scope.push(Required {
            person_id: l.person_id.clone(),
            position: "POSITION_STREET_LEADER_IN_CHARGE",
            missing: "MISSING_LEADER_IN_CHARGE",
        });
    }
    for head in section_heads {
        if scope.iter().all(|r| &r.person_id != head) {
            scope.push(Required {
                person_id: head.clone(),
                position: "POSITION_STREET_SECTION_HEAD",
                missing: "MISSING_SECTION_HEAD",
            });
        }
    }
    scope
}

/// The required people missing from `given`, one refusal each.
pub fn missing_from_scope(required: &[Required], given: &BTreeSet<String>) -> Vec<Refusal> {
    required
        .iter()
        .filter(|r| !given.contains(&r.person_id))
        .map(|r| Refusal::new(r.missing, r.person_id.clone(), format!("{} must be interviewed", r.person_id)))
        .collect()
}

/// Full years of cumulative service on 1 January of `year` for someone who started working
/// on `start`.
pub fn service_years(start: NaiveDate, year: i32) -> i32 {
    let Some(jan1) = NaiveDate::from_ymd_opt(year, 1, 1) else { return 0 };
    if start > jan1 {
        return 0;
    }
    let mut years = jan1.year() - start.year();
    if (jan1.month(), jan1.day()) < (start.month(), start.day()) {
        years -= 1;
    }
    years.max(0)
}

/// The statutory annual leave (职工带薪年休假条例 art. 3) after `years` of cumulative
/// service: under 1 year none, 1 to under 10 years 5 days, 10 to under 20 years 10, 20 and
/// more 15.
pub fn statutory_leave_days(years: i32) -> i32 {
    match years {
        ..1 => 0,
        1..10 => 5,
        10..20 => 10,
        _ => 15,
    }
}

/// Whether leave starting on `start` may draw on the entitlement of `year`: that year, or
/// the one before (carried over one year at most, 条例 art. 5).
pub fn may_draw_on(year: i32, start: NaiveDate) -> bool {
    year == start.year() || year == start.year() - 1
}

/// The default entitlement when none was set (the contract's statutory minimum).
pub const DEFAULT_ENTITLEMENT: i32 = 5;

/// Leave days in `[start, end]`: the working days by `calendar` (public holidays and rest
/// days are not leave days; make-up working days are).
pub fn leave_days(calendar: &WorkCalendar, start: NaiveDate, end: NaiveDate) -> i32 {
    start.iter_days().take_while(|d| *d <= end).filter(|d| calendar.is_working_day(*d)).count() as i32
}

/// How many of `base` may be commended at `ratio_bp` basis points: rounded down.
pub fn commendation_quota(base: i32, ratio_bp: i32) -> i32 {
    ((i64::from(base) * i64::from(ratio_bp)) / 10_000) as i32
}

/// The default commendation ratio (15%).
pub const DEFAULT_RATIO_BP: i32 = 1500;

/// The default 五奖 coefficient of a grade (`AssessmentGrade` number).
pub fn default_coefficient_bp(grade: i32) -> i32 {
    match grade {
        1 => 12_000,
        2 => 10_000,
        3 => 8_000,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn statutory_leave_steps_at_one_ten_and_twenty_years() {
        assert_eq!(statutory_leave_days(service_years(day(2025, 6, 1), 2026)), 0);
        assert_eq!(statutory_leave_days(service_years(day(2025, 1, 1), 2026)), 5);
        assert_eq!(statutory_leave_days(service_years(day(2016, 1, 1), 2026)), 10);
        assert_eq!(statutory_leave_days(service_years(day(2016, 1, 2), 2026)), 5);
        assert_eq!(statutory_leave_days(service_years(day(2006, 1, 1), 2026)), 15);
    }

    #[test]
    fn a_decision_before_the_reply_and_its_deadline_is_refused_after_it_is_not() {
        let now = Utc::now();
        let deadline = now + TimeDelta::days(1);
        assert!(record_decision(State::AwaitingOpinion, 1, now, deadline, false, "").is_err());
        assert!(
            record_decision(State::AwaitingOpinion, 1, deadline + TimeDelta::seconds(1), deadline, false, "").is_ok()
        );
        assert!(matches!(
            record_decision(State::OpinionReceived, 1, now, deadline, false, " "),
            Err(PersonnelError::Rejected { reason: "REASON_REQUIRED", .. })
        ));
        assert_eq!(decision_finding(None, now), Some(finding::WITHOUT_SOLICITATION));
        assert_eq!(decision_finding(Some((State::AwaitingOpinion, deadline)), now), Some(finding::BEFORE_REPLY));
        assert_eq!(decision_finding(Some((State::OpinionReceived, deadline)), now), None);
    }

    #[test]
    fn the_scope_is_the_principal_leaders_those_in_charge_of_the_line_and_the_linked_section_heads() {
        let leader = |id: &str, principal: bool, areas: &[i32]| Leader {
            person_id: id.into(),
            principal,
            areas: areas.to_vec(),
        };
        let leaders = [leader("secretary", true, &[]), leader("politics", false, &[3, 7]), leader("city", false, &[2])];
        let scope = interview_scope(&leaders, 3, &["pingan".into(), "secretary".into()]);
        let ids: Vec<&str> = scope.iter().map(|r| r.person_id.as_str()).collect();
        assert_eq!(ids, ["secretary", "politics", "pingan"], "someone in two roles is interviewed once");
        let given: BTreeSet<String> = ["secretary".to_owned()].into();
        let missing: Vec<&str> = missing_from_scope(&scope, &given).iter().map(|r| r.reason).collect();
        assert_eq!(missing, ["MISSING_LEADER_IN_CHARGE", "MISSING_SECTION_HEAD"]);
    }

    #[test]
    fn the_quota_rounds_down() {
        assert_eq!(commendation_quota(9, 1500), 1);
        assert_eq!(commendation_quota(20, 1500), 3);
        assert_eq!(commendation_quota(0, 1500), 0);
    }
}
