//! Indicators (考评指标) and the composite (综合得分), all in basis points (10000 = 100%).
//!
//! # The response rule (响应)
//! A call is *due* for the response indicator once its check-in window has closed
//! (CHECK_IN_CLOSED). It is *responded* when, at that point, the call was signed at or
//! before its sign deadline (CALL_SIGNED with `on_time`, never CALL_SIGN_OVERDUE) AND
//! every person the requirement asked for checked in on time: no CHECK_IN_LATE, no
//! CHECK_IN_ABSENT and no shortfall (required people never designated). Otherwise the
//! record carries its worst failure: NOT_SIGNED > SIGNED_LATE > CHECK_IN_ABSENT >
//! CHECK_IN_LATE.
//!
//! # The completion rule (办结)
//! A call is *due* for completion once it has at least one regular task and every regular
//! task of it is completed (TASK_COMPLETED) or past its window (TASK_OVERDUE). It is
//! *completed* when every such task was completed with feedback submitted within its
//! window (`on_time`) and none went overdue first. Rectification tasks do not count.

use serde::{Deserialize, Serialize};

/// Full marks.
pub const FULL: i64 = 10_000;

/// `numerator × 10000 / denominator`, rounded half up; `None` for a zero denominator.
pub fn rate(numerator: i64, denominator: i64) -> Option<i32> {
    if denominator <= 0 {
        return None;
    }
    Some(((numerator * FULL * 2 + denominator) / (denominator * 2)) as i32)
}

/// The indicator weights of a period, basis points summing to 10000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    /// 响应率.
    pub response: i32,
    /// 办结率.
    pub completion: i32,
    /// 满意率.
    pub satisfaction: i32,
}

impl Weights {
    /// 10% / 40% / 50%.
    pub const DEFAULT: Weights = Weights { response: 1000, completion: 4000, satisfaction: 5000 };
}

/// What a department's records add up to in a period (the SQL aggregation's row).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Counts {
    /// The department.
    pub department_id: String,
    /// Calls received (withdrawn excluded).
    pub calls: i64,
    /// Signed on time.
    pub signed_on_time: i64,
    /// Signed late.
    pub signed_late: i64,
    /// Not signed.
    pub unsigned: i64,
    /// People on time.
    pub check_in_on_time: i64,
    /// People late.
    pub check_in_late: i64,
    /// People absent, shortfall included.
    pub check_in_absent: i64,
    /// People present but inactive.
    pub inaction: i64,
    /// Calls due for response.
    pub response_due: i64,
    /// Calls responded.
    pub responded: i64,
    /// Calls due for completion.
    pub completion_due: i64,
    /// Calls completed on time.
    pub completed: i64,
    /// Calls completed, some late.
    pub completed_late: i64,
    /// Current ratings.
    pub rated: i64,
    /// 满意.
    pub satisfied: i64,
    /// 基本满意.
    pub basically_satisfied: i64,
    /// 不满意.
    pub dissatisfied: i64,
    /// Rectifications required.
    pub rectifications: i64,
}

/// The three rates and the composite; `None` where there is no data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// 响应率.
    pub response: Option<i32>,
    /// 办结率.
    pub completion: Option<i32>,
    /// 满意率 = (满意 + 基本满意) / 参评数.
    pub satisfaction: Option<i32>,
    /// 综合得分.
    pub composite: Option<i32>,
}

impl Counts {
    /// The rates under `weights`.
    pub fn rates(&self, weights: Weights) -> Rates {
        let response = rate(self.responded, self.response_due);
        let completion = rate(self.completed, self.completion_due);
        let satisfaction = rate(self.satisfied + self.basically_satisfied, self.rated);
        Rates { response, completion, satisfaction, composite: composite(response, completion, satisfaction, weights) }
    }
}

/// Σ rate × weight over the indicators with data, the weights re-normalised to those
/// indicators (a missing indicator's weight is shared in proportion), rounded half up.
pub fn composite(
    response: Option<i32>,
    completion: Option<i32>,
    satisfaction: Option<i32>,
    weights: Weights,
) -> Option<i32> {
    let parts = [(response, weights.response), (completion, weights.completion), (satisfaction, weights.satisfaction)];
    let (mut sum, mut weight) = (0i64, 0i64);
    for (r, w) in parts {
        if let Some(r) = r {
            sum += i64::from(r) * i64::from(w);
            weight += i64::from(w);
        }
    }
    if weight == 0 {
        return None;
    }
    Some(((sum * 2 + weight) / (weight * 2)) as i32)
}

/// Competition ranks (1, 2, 2, 4) for composites already sorted descending; unranked (no
/// composite) get 0.
pub fn ranks(sorted: &[Option<i32>]) -> Vec<i32> {
    let mut out = Vec::with_capacity(sorted.len());
    for (i, c) in sorted.iter().enumerate() {
        let rank = match c {
            None => 0,
            Some(_) if i > 0 && sorted[i - 1] == *c => out[i - 1],
            Some(_) => i as i32 + 1,
        };
        out.push(rank);
    }
    out
}

/// Orders a table: composite descending, unranked last, then by department id.
pub fn order<T>(rows: &mut [T], key: impl Fn(&T) -> (Option<i32>, &str)) {
    rows.sort_by(|a, b| {
        let (ca, da) = key(a);
        let (cb, db) = key(b);
        match (ca, cb) {
            (Some(x), Some(y)) => y.cmp(&x).then_with(|| da.cmp(db)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => da.cmp(db),
        }
    });
}

/// The response outcome of a call whose check-in window closed, from what the feed told.
pub fn response_outcome(signed_on_time: bool, signed: bool, late: i32, absent: i32, shortfall: i32) -> &'static str {
    if !signed {
        "NOT_SIGNED"
    } else if !signed_on_time {
        "SIGNED_LATE"
    } else if absent > 0 || shortfall > 0 {
        "CHECK_IN_ABSENT"
    } else if late > 0 {
        "CHECK_IN_LATE"
    } else {
        "RESPONDED"
    }
}

/// The state of one regular task, as completion sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskFacts {
    /// Completed with on-time feedback.
    pub on_time: bool,
    /// Completed (on time or not).
    pub completed: bool,
    /// Went past its window before completion.
    pub overdue: bool,
}

/// The completion outcome of a call from its regular tasks.
pub fn completion_outcome(tasks: &[TaskFacts]) -> &'static str {
    if tasks.is_empty() || tasks.iter().any(|t| !t.completed && !t.overdue) {
        "PENDING"
    } else if tasks.iter().any(|t| !t.completed) {
        "NOT_COMPLETED"
    } else if tasks.iter().all(|t| t.on_time && !t.overdue) {
        "ON_TIME"
    } else {
        "LATE"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_round_half_up_and_zero_denominators_are_unset() {
        assert_eq!(rate(2, 3), Some(6667));
        assert_eq!(rate(1, 3), Some(3333));
        assert_eq!(rate(1, 8), Some(1250));
        assert_eq!(rate(1, 16), Some(625));
        assert_eq!(rate(1, 32), Some(313)); // 312.5 rounds up
        assert_eq!(rate(0, 0), None);
    }

    #[test]
    fn a_missing_indicator_shares_its_weight() {
        let w = Weights::DEFAULT;
        assert_eq!(composite(Some(10000), Some(5000), Some(8000), w), Some(7000));
        // Only response and completion: 1000/5000 and 4000/5000.
        assert_eq!(composite(Some(10000), Some(5000), None, w), Some(6000));
        assert_eq!(composite(None, None, None, w), None);
    }

    #[test]
    fn ties_share_a_rank() {
        assert_eq!(ranks(&[Some(9000), Some(8000), Some(8000), Some(7000), None]), [1, 2, 2, 4, 0]);
    }

    #[test]
    fn the_worst_failure_names_the_response_outcome() {
        assert_eq!(response_outcome(false, false, 1, 1, 0), "NOT_SIGNED");
        assert_eq!(response_outcome(false, true, 1, 1, 0), "SIGNED_LATE");
        assert_eq!(response_outcome(true, true, 1, 0, 1), "CHECK_IN_ABSENT");
        assert_eq!(response_outcome(true, true, 1, 0, 0), "CHECK_IN_LATE");
        assert_eq!(response_outcome(true, true, 0, 0, 0), "RESPONDED");
    }

    #[test]
    fn completion_waits_for_every_task() {
        let done = TaskFacts { on_time: true, completed: true, overdue: false };
        let open = TaskFacts { on_time: false, completed: false, overdue: false };
        let overdue = TaskFacts { on_time: false, completed: false, overdue: true };
        let late = TaskFacts { on_time: false, completed: true, overdue: true };
        assert_eq!(completion_outcome(&[]), "PENDING");
        assert_eq!(completion_outcome(&[done, open]), "PENDING");
        assert_eq!(completion_outcome(&[done, overdue]), "NOT_COMPLETED");
        assert_eq!(completion_outcome(&[done, late]), "LATE");
        assert_eq!(completion_outcome(&[done, done]), "ON_TIME");
    }
}
