//! Referrals (线索移送): which trail events prove which kind of non-performance, and how a
//! referral's overall state follows from its recipients'.

/// Whether an event of `event_type` (with its shortfall, for CHECK_IN_CLOSED) is evidence
/// of `kind` (ABSENT, LATE or INACTIVE): CHECK_IN_ABSENT or a CHECK_IN_CLOSED shortfall
/// for ABSENT; CHECK_IN_LATE or CALL_SIGN_OVERDUE for LATE; INACTION_RECORDED or
/// TASK_OVERDUE for INACTIVE.
pub fn proves(kind: &str, event_type: &str, shortfall: i64) -> bool {
    match kind {
        "REFERRAL_KIND_ABSENT" => {
            event_type == "EVENT_TYPE_CHECK_IN_ABSENT" || (event_type == "EVENT_TYPE_CHECK_IN_CLOSED" && shortfall > 0)
        }
        "REFERRAL_KIND_LATE" => matches!(event_type, "EVENT_TYPE_CHECK_IN_LATE" | "EVENT_TYPE_CALL_SIGN_OVERDUE"),
        "REFERRAL_KIND_INACTIVE" => matches!(event_type, "EVENT_TYPE_INACTION_RECORDED" | "EVENT_TYPE_TASK_OVERDUE"),
        _ => false,
    }
}

/// What a referral is about: evidence must be trail entries of this call of this case,
/// for this department (an event of the call's department that names no call, such as a
/// department-level one of the case, still counts).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The referred case.
    pub case_id: &'a str,
    /// The referred call.
    pub call_id: &'a str,
    /// The department it was addressed to.
    pub department_id: &'a str,
}

impl Subject<'_> {
    /// Whether an event of `case_id`, `call_id` and `department_id` is about this referral.
    pub fn covers(&self, case_id: &str, call_id: &str, department_id: &str) -> bool {
        case_id == self.case_id
            && department_id == self.department_id
            && (call_id.is_empty() || call_id == self.call_id)
    }
}

/// The first referred person no cited entry is about: every person named must be the
/// subject of evidence (a person cannot be referred on a colleague's absence).
pub fn uncited_person<'a>(person_ids: &'a [String], cited: &std::collections::BTreeSet<String>) -> Option<&'a str> {
    person_ids.iter().find(|p| !cited.contains(*p)).map(String::as_str)
}

/// The incident kind an event records for suggestions, if any.
pub fn incident_kind(event_type: &str, shortfall: i64) -> Option<&'static str> {
    ["REFERRAL_KIND_ABSENT", "REFERRAL_KIND_LATE", "REFERRAL_KIND_INACTIVE"]
        .into_iter()
        .find(|k| proves(k, event_type, shortfall))
}

/// The overall state: HANDLED when every recipient handled it, RECEIVED when at least one
/// received it, otherwise SENT.
pub fn overall<'a>(states: impl IntoIterator<Item = &'a str> + Clone) -> &'static str {
    if states.clone().into_iter().all(|s| s == "HANDLED") {
        "HANDLED"
    } else if states.into_iter().any(|s| s != "SENT") {
        "RECEIVED"
    } else {
        "SENT"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_must_match_the_kind() {
        assert!(proves("REFERRAL_KIND_ABSENT", "EVENT_TYPE_CHECK_IN_ABSENT", 0));
        assert!(proves("REFERRAL_KIND_ABSENT", "EVENT_TYPE_CHECK_IN_CLOSED", 1));
        assert!(!proves("REFERRAL_KIND_ABSENT", "EVENT_TYPE_CHECK_IN_CLOSED", 0));
        assert!(!proves("REFERRAL_KIND_LATE", "EVENT_TYPE_CHECK_IN_ABSENT", 0));
        assert_eq!(overall(["HANDLED", "RECEIVED"]), "RECEIVED");
        assert_eq!(overall(["HANDLED", "HANDLED"]), "HANDLED");
        assert_eq!(overall(["SENT"]), "SENT");
    }

    #[test]
    fn evidence_must_be_about_the_referred_call_and_people() {
        let about = Subject { case_id: "c", call_id: "k", department_id: "guihua" };
        assert!(about.covers("c", "k", "guihua"));
        assert!(!about.covers("d", "k", "guihua"));
        assert!(!about.covers("c", "k2", "guihua"));
        assert!(!about.covers("c", "k", "gongan"));
        let cited = ["p1".to_owned()].into_iter().collect();
        assert_eq!(uncited_person(&["p1".into(), "p2".into()], &cited), Some("p2"));
        assert_eq!(uncited_person(&["p1".into()], &cited), None);
    }
}
