//! Appraisal periods (考核周期) and the annual weight (年度考核权重), parsed from requests
//! into values that are valid by construction.

use chrono::{DateTime, TimeZone, Utc};
use minhu_grpc::FieldViolations;

use super::score::Weights;

/// The floor of the annual weight: the reform's "at least 30%".
pub const ANNUAL_WEIGHT_MIN: i32 = 3000;
/// The ceiling: the whole assessment.
pub const ANNUAL_WEIGHT_MAX: i32 = 10_000;

/// A period's editable values, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodInput {
    /// Display name.
    pub name: String,
    /// MONTH, QUARTER, YEAR or CUSTOM (the proto enum's name).
    pub kind: String,
    /// First instant.
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// Indicator weights.
    pub weights: Weights,
}

/// Checks a name.
pub fn name(v: &mut FieldViolations, field: &str, value: &str) -> String {
    v.required_text(field, value, 100).to_owned()
}

/// Checks a range: both bounds, end after start.
pub fn range(
    v: &mut FieldViolations,
    field: &str,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    match (start, end) {
        (Some(s), Some(e)) if e > s => (s, e),
        (Some(_), Some(_)) => {
            v.add(format!("{field}.end_time"), "must be after start_time");
            (DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH)
        }
        (s, e) => {
            if s.is_none() {
                v.add(format!("{field}.start_time"), "is required");
            }
            if e.is_none() {
                v.add(format!("{field}.end_time"), "is required");
            }
            (DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH)
        }
    }
}

/// Checks weights: all zero means the defaults; otherwise none negative and summing to
/// 10000.
pub fn weights(v: &mut FieldViolations, field: &str, w: Weights) -> Weights {
    if w == (Weights { response: 0, completion: 0, satisfaction: 0 }) {
        return Weights::DEFAULT;
    }
    for (name, value) in
        [("response_bp", w.response), ("completion_bp", w.completion), ("satisfaction_bp", w.satisfaction)]
    {
        v.check(value >= 0, &format!("{field}.{name}"), "must not be negative");
    }
    let sum = i64::from(w.response) + i64::from(w.completion) + i64::from(w.satisfaction);
    v.check(sum == 10_000, field, format!("must sum to 10000 basis points, not {sum}"));
    w
}

/// Checks an annual weight: 3000..=10000 basis points. Below the floor the description
/// starts with the reason `WEIGHT_BELOW_MINIMUM`.
pub fn annual_weight(v: &mut FieldViolations, weight_bp: i32) {
    if weight_bp < ANNUAL_WEIGHT_MIN {
        v.add("weight_bp", "WEIGHT_BELOW_MINIMUM: must be at least 3000 basis points (30%, the reform's floor)");
    } else if weight_bp > ANNUAL_WEIGHT_MAX {
        v.add("weight_bp", "must be at most 10000 basis points");
    }
}

/// Checks a year.
pub fn year(v: &mut FieldViolations, year: i32) {
    v.check((2000..=2200).contains(&year), "year", "must be a year between 2000 and 2200");
}

/// The calendar year's bounds in UTC+8 (the district's time), as a YEAR period must span.
pub fn year_bounds(year: i32) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let tz = chrono::FixedOffset::east_opt(8 * 3600)?;
    let start = tz.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single()?.with_timezone(&Utc);
    let end = tz.with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0).single()?.with_timezone(&Utc);
    Some((start, end))
}

/// Whether `[start, end)` is exactly calendar year `year`, in UTC+8 (the district's time)
/// or in UTC.
pub fn spans_year(start: DateTime<Utc>, end: DateTime<Utc>, year: i32) -> bool {
    let utc =
        Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single().zip(Utc.with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0).single());
    year_bounds(year) == Some((start, end)) || utc == Some((start, end))
}

/// Where the feed consumer stood when a period was asked to close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPosition {
    /// The stored cursor: the last event applied.
    pub applied: i64,
    /// The occurrence time of that event.
    pub last_event_time: Option<DateTime<Utc>>,
    /// Dispatch's head as last reported (0 before any message).
    pub head: i64,
    /// When that report arrived.
    pub head_time: Option<DateTime<Utc>>,
    /// Subscribed right now.
    pub connected: bool,
    /// A rebuild is replaying the feed (its commit may still change the figures).
    pub rebuilding: bool,
}

/// Whether a period ending at `end` may be frozen (FEED_LAGGING otherwise, with the lag in
/// words): only once the feed is consumed past the end. That is proven by an applied event
/// that occurred at or after the end (the feed is in commit order, so everything before it
/// is applied too), or, on a quiet feed, by a live subscription that has applied everything
/// up to a head dispatch reported after the end. Never during a rebuild.
pub fn feed_consumed_past(end: DateTime<Utc>, f: &FeedPosition) -> Result<(), String> {
    let lag = (f.head - f.applied).max(0);
    let settled = !f.rebuilding
        && (f.last_event_time.is_some_and(|t| t >= end)
            || (f.connected && lag == 0 && f.head_time.is_some_and(|t| t >= end)));
    if settled {
        return Ok(());
    }
    let last = f.last_event_time.map_or_else(|| "none".to_owned(), |t| t.to_rfc3339());
    let why = if f.rebuilding {
        "a rebuild of the scores is running"
    } else if !f.connected {
        "the feed subscription is disconnected"
    } else {
        "events up to the period end may still be in flight"
    };
    Err(format!(
        "the feed is not consumed past the period end {}: {why}; applied up to sequence {} (last event {last}), \
         dispatch's head {} as last reported, lag {lag} events",
        end.to_rfc3339(),
        f.applied,
        f.head,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_freezes_only_once_the_feed_is_consumed_past_its_end() {
        let end = Utc.with_ymd_and_hms(2019, 5, 31, 16, 0, 0).unwrap();
        let before = end - chrono::TimeDelta::hours(1);
        let after = end + chrono::TimeDelta::hours(1);
        let quiet = FeedPosition {
            applied: 7,
            last_event_time: Some(before),
            head: 7,
            head_time: Some(after),
            connected: true,
            rebuilding: false,
        };
        assert!(feed_consumed_past(end, &quiet).is_ok());
        let behind = FeedPosition { head: 9, ..quiet.clone() };
        assert!(feed_consumed_past(end, &behind).unwrap_err().contains("lag 2 events"));
        let stale = FeedPosition { head_time: Some(before), ..quiet.clone() };
        assert!(feed_consumed_past(end, &stale).is_err());
        let cut = FeedPosition { connected: false, ..quiet.clone() };
        assert!(feed_consumed_past(end, &cut).unwrap_err().contains("disconnected"));
        let past = FeedPosition { last_event_time: Some(end), connected: false, head: 30, ..quiet.clone() };
        assert!(feed_consumed_past(end, &past).is_ok());
        let rebuilding = FeedPosition { rebuilding: true, ..past };
        assert!(feed_consumed_past(end, &rebuilding).is_err());
    }
}
