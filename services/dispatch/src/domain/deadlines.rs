//! Deadlines and lateness (签收时限, 报到, 任务时间段, 整改时限): the defaults per urgency,
//! and the verdicts RPCs and escalations share. Durable firing is [`crate::deadlines`]; its
//! handlers call [`crate::escalation`], which decides with these functions.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::model::Urgency;

/// The configurable deadline defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlinePolicy {
    /// Time to sign an EMERGENCY call.
    pub sign_emergency: Duration,
    /// Time to sign an URGENT call.
    pub sign_urgent: Duration,
    /// Time to sign a NORMAL call.
    pub sign_normal: Duration,
    /// From report time to the close of the check-in window (慢到位 within it).
    pub check_in_window: Duration,
    /// Default check-in radius, metres.
    pub check_in_radius_meters: f64,
    /// A rectification's time when the street names no due time, in working days (整改时限,
    /// counted with the working-time calendar).
    pub rectification_working_days: u32,
    /// Unreached callback attempts (回访) after which the reporter counts as unreachable and
    /// the case may be rated and closed without a callback (at least 1).
    pub callback_attempts: u32,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        Self {
            sign_emergency: Duration::from_secs(15 * 60),
            sign_urgent: Duration::from_secs(60 * 60),
            sign_normal: Duration::from_secs(4 * 60 * 60),
            check_in_window: Duration::from_secs(30 * 60),
            check_in_radius_meters: 200.0,
            rectification_working_days: 5,
            callback_attempts: 3,
        }
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl DeadlinePolicy {
    /// The sign deadline of a call sent at `sent` for a case of `urgency`.
    pub fn sign_deadline(&self, urgency: Urgency, sent: DateTime<Utc>) -> DateTime<Utc> {
        let d = match urgency {
            Urgency::Emergency => self.sign_emergency,
            Urgency::Urgent => self.sign_urgent,
            Urgency::Normal => self.sign_normal,
        };
        sent + delta(d)
    }

    /// When the check-in window of a call reporting at `report_time` closes.
    pub fn check_in_close(&self, report_time: DateTime<Utc>) -> DateTime<Utc> {
        report_time + delta(self.check_in_window)
    }
}

/// How far ahead a call's times (report, sign deadline, check-in close) may lie: a call is
/// about the days to come, and every deadline computed from them stays representable.
pub const HORIZON: TimeDelta = TimeDelta::days(366);

/// Whether `t` lies within the [`HORIZON`] of `now`.
pub fn within_horizon(now: DateTime<Utc>, t: DateTime<Utc>) -> bool {
    t <= now + HORIZON
}

/// On time or late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeliness {
    /// At or before the deadline.
    OnTime,
    /// After it.
    Late,
}

/// Signing at `signed_at` against `deadline` (签收).
pub fn sign_outcome(signed_at: DateTime<Utc>, deadline: DateTime<Utc>) -> Timeliness {
    if signed_at <= deadline { Timeliness::OnTime } else { Timeliness::Late }
}

/// Feedback at `submitted_at` against the task's window end.
pub fn feedback_outcome(submitted_at: DateTime<Utc>, window_end: DateTime<Utc>) -> Timeliness {
    sign_outcome(submitted_at, window_end)
}

/// A check-in's verdict (报到).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckInOutcome {
    /// 按时到位.
    OnTime,
    /// 慢到位, by this much.
    Late(TimeDelta),
    /// The window has closed: the person is (or will be marked) absent (不到位).
    Closed,
}

/// A check-in at server time `at` for a call reporting at `report_time` whose window
/// closes at `close_time` (exclusive).
pub fn check_in_outcome(at: DateTime<Utc>, report_time: DateTime<Utc>, close_time: DateTime<Utc>) -> CheckInOutcome {
    if at <= report_time {
        CheckInOutcome::OnTime
    } else if at < close_time {
        CheckInOutcome::Late(at - report_time)
    } else {
        CheckInOutcome::Closed
    }
}

/// Whether a deadline at `due` has passed at `now` (a deadline is met *at* its instant).
pub fn passed(due: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now > due
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minutes * 60, 0).unwrap()
    }

    #[test]
    fn signing_at_the_deadline_is_on_time_and_after_it_late() {
        assert_eq!(sign_outcome(t(10), t(10)), Timeliness::OnTime);
        assert_eq!(sign_outcome(t(11), t(10)), Timeliness::Late);
    }

    #[test]
    fn check_in_is_on_time_then_late_then_closed() {
        assert_eq!(check_in_outcome(t(0), t(0), t(30)), CheckInOutcome::OnTime);
        assert_eq!(check_in_outcome(t(5), t(0), t(30)), CheckInOutcome::Late(TimeDelta::minutes(5)));
        assert_eq!(check_in_outcome(t(30), t(0), t(30)), CheckInOutcome::Closed);
    }

    #[test]
    fn urgency_sets_the_sign_deadline() {
        let p = DeadlinePolicy::default();
        assert_eq!(p.sign_deadline(Urgency::Emergency, t(0)), t(15));
        assert_eq!(p.sign_deadline(Urgency::Urgent, t(0)), t(60));
        assert_eq!(p.sign_deadline(Urgency::Normal, t(0)), t(240));
        assert_eq!(p.check_in_close(t(0)), t(30));
        assert!(passed(t(0), t(1)) && !passed(t(0), t(0)));
    }
}
