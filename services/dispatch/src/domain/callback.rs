//! The callback rule (街道回访诉求人): the seed's order is report → callback → rating, so
//! a case is rated and closed only once the reporter was called back, or once the street
//! has recorded why that is impossible.
//!
//! | recorded callbacks                                   | outcome       |
//! |------------------------------------------------------|---------------|
//! | one attempt reached the reporter                     | `REACHED`     |
//! | else: the street recorded the reporter is anonymous  | `ANONYMOUS`   |
//! | else: at least N attempts, none reached (N = policy) | `UNREACHABLE` |
//! | otherwise                                            | `PENDING`     |
//!
//! Every attempt is its own record (method, time, who); ANONYMOUS and UNREACHABLE cases
//! are what the district reviews (ListCases with `callback_outcomes`).

use super::{
    Refusal,
    model::{Callback, CallbackOutcome},
};

/// The outcome of `callbacks` when `attempts_required` unreached attempts excuse the
/// callback (at least one attempt is always required).
pub fn outcome(callbacks: &[Callback], attempts_required: u32) -> CallbackOutcome {
    if callbacks.iter().any(|c| c.reached) {
        return CallbackOutcome::Reached;
    }
    if callbacks.iter().any(|c| c.reporter_anonymous) {
        return CallbackOutcome::Anonymous;
    }
    let attempts = callbacks.iter().filter(|c| !c.reporter_anonymous).count();
    if attempts >= attempts_required.max(1) as usize {
        return CallbackOutcome::Unreachable;
    }
    CallbackOutcome::Pending
}

/// Rating and closing: refused with `CALLBACK_REQUIRED` while the outcome is PENDING.
pub fn require_callback(outcome: CallbackOutcome, attempts_required: u32) -> Result<(), Refusal> {
    if outcome == CallbackOutcome::Pending {
        return Err(refusal(attempts_required));
    }
    Ok(())
}

/// The refusal of a rating or a close before the callback.
pub fn refusal(attempts_required: u32) -> Refusal {
    Refusal::new(
        "CALLBACK_REQUIRED",
        "callback",
        format!(
            "the reporter must be called back first (回访): reached, recorded as anonymous, or {} attempts not reached",
            attempts_required.max(1)
        ),
    )
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::domain::model::Actor;

    fn attempt(reached: bool, anonymous: bool) -> Callback {
        Callback {
            id: Uuid::now_v7(),
            case_id: Uuid::nil(),
            method: "CALLBACK_METHOD_PHONE".into(),
            reached,
            reporter_satisfaction: None,
            reporter_opinion: String::new(),
            callback_time: Utc::now(),
            reporter_anonymous: anonymous,
            recorded_by: Actor::dispatch_service(),
            create_time: Utc::now(),
        }
    }

    #[test]
    fn unreached_attempts_excuse_the_callback_only_at_the_configured_number() {
        let two = [attempt(false, false), attempt(false, false)];
        assert_eq!(outcome(&two, 3), CallbackOutcome::Pending);
        assert!(require_callback(outcome(&two, 3), 3).is_err());
        let three = [attempt(false, false), attempt(false, false), attempt(false, false)];
        assert_eq!(outcome(&three, 3), CallbackOutcome::Unreachable);
        assert_eq!(outcome(&two, 2), CallbackOutcome::Unreachable);
        assert_eq!(outcome(&[], 0), CallbackOutcome::Pending, "zero still needs one attempt");
    }

    #[test]
    fn a_reached_reporter_wins_over_earlier_failures_and_anonymity_needs_no_attempt() {
        assert_eq!(outcome(&[attempt(false, false), attempt(true, false)], 3), CallbackOutcome::Reached);
        assert_eq!(outcome(&[attempt(false, true)], 3), CallbackOutcome::Anonymous);
        assert!(require_callback(CallbackOutcome::Anonymous, 3).is_ok());
    }
}
