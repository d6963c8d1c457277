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
}
