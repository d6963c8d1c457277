//! Working time: deadlines measured in working hours or working days ("3个工作日内签收").
//!
//! Pure computation, no I/O. A district configures its calendar ([`CalendarConfig`],
//! deserializable from its config file): the UTC offset (China Standard Time, +08:00, by
//! default; a fixed offset is exact for China, which has no daylight saving), the working
//! hours of a day as a list of intervals (09:00–12:00 and 13:30–17:30 by default), the
//! weekend, the public holidays, and the make-up working days (调休) — weekend days that are
//! worked in exchange for a longer holiday. Each year's holidays are published by the State
//! Council; a district adds them to its configuration when they are announced.
//!
//! ```
//! use minhu_deadlines::{CalendarConfig, WorkCalendar};
//!
//! let config: CalendarConfig = serde_json::from_str(r#"{
//!     "working_hours": [{"start": "09:00", "end": "12:00"}, {"start": "13:30", "end": "17:30"}],
//!     "holidays": ["2030-10-01", "2030-10-02", "2030-10-03"],
//!     "make_up_days": ["2030-09-29"]
//! }"#).unwrap();
//! let calendar = WorkCalendar::new(&config).unwrap();
//! assert!(!calendar.is_working_day("2030-10-02".parse().unwrap()));
//! assert!(calendar.is_working_day("2030-09-29".parse().unwrap())); // a Sunday, worked
//! ```

use std::{collections::BTreeSet, time::Duration};

use chrono::{DateTime, Datelike as _, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::DeadlineError;

/// A district's working-time calendar, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// Local time's offset from UTC in minutes (480 for China Standard Time).
    #[serde(default = "china_standard_time")]
    pub utc_offset_minutes: i32,
    /// The working intervals of a working day, local time, e.g. `{"start": "09:00", "end":
    /// "12:00"}`. Each ends on the day it starts.
    #[serde(default = "office_hours")]
    pub working_hours: Vec<WorkingHours>,
    /// Days off every week unless listed in `make_up_days` (`["Sat", "Sun"]` by default).
    #[serde(default = "saturday_and_sunday")]
    pub weekend: Vec<Weekday>,
    /// Public holidays: days off even when they fall on a weekday.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Make-up working days (调休): weekend days that are working days.
    #[serde(default)]
    pub make_up_days: Vec<NaiveDate>,
}

/// One working interval of a day, local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// When it begins.
    pub start: NaiveTime,
    /// When it ends (after `start`, the same day).
    pub end: NaiveTime,
}

fn china_standard_time() -> i32 {
    8 * 60
}

fn office_hours() -> Vec<WorkingHours> {
    let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
    vec![WorkingHours { start: at(9, 0), end: at(12, 0) }, WorkingHours { start: at(13, 30), end: at(17, 30) }]
}

fn saturday_and_sunday() -> Vec<Weekday> {
    vec![Weekday::Sat, Weekday::Sun]
}

impl Default for CalendarConfig {
    /// China Standard Time, 09:00–12:00 and 13:30–17:30, Saturday and Sunday off, no
    /// holidays configured.
    fn default() -> Self {
        Self {
            utc_offset_minutes: china_standard_time(),
            working_hours: office_hours(),
            weekend: saturday_and_sunday(),
            holidays: Vec::new(),
            make_up_days: Vec::new(),
        }
    }
}

/// A validated working-time calendar.
#[derive(Debug, Clone)]
pub struct WorkCalendar {
    offset: FixedOffset,
    /// Sorted, non-overlapping, non-empty.
    hours: Vec<(NaiveTime, NaiveTime)>,
    /// Indexed by `Weekday::num_days_from_monday`.
    weekend: [bool; 7],
    holidays: BTreeSet<NaiveDate>,
    make_up_days: BTreeSet<NaiveDate>,
}

impl TryFrom<&CalendarConfig> for WorkCalendar {
    type Error = DeadlineError;

    fn try_from(config: &CalendarConfig) -> Result<Self, Self::Error> {
        Self::new(config)
    }
}

impl WorkCalendar {
    /// Validates `config`: a real UTC offset, at least one working interval, intervals that
    /// do not overlap, at least one working weekday (so that every working-time sum ends), and
    /// no date both a holiday and a make-up day.
    pub fn new(config: &CalendarConfig) -> Result<Self, DeadlineError> {
        let invalid = |message: String| Err(DeadlineError::Calendar(message));
        let Some(offset) = FixedOffset::east_opt(config.utc_offset_minutes.saturating_mul(60)) else {
            return invalid(format!("utc_offset_minutes {} is not a UTC offset", config.utc_offset_minutes));
        };
        let mut hours: Vec<(NaiveTime, NaiveTime)> = config.working_hours.iter().map(|h| (h.start, h.end)).collect();
        hours.sort();
        if hours.is_empty() {
            return invalid("working_hours is empty".into());
        }
        if let Some((start, end)) = hours.iter().find(|(start, end)| start >= end) {
            return invalid(format!("working interval {start}–{end} does not end after it starts"));
        }
        if let Some(pair) = hours.windows(2).find(|pair| pair[0].1 > pair[1].0) {
            return invalid(format!(
                "working intervals {}–{} and {}–{} overlap",
                pair[0].0, pair[0].1, pair[1].0, pair[1].1
            ));
        }
        let mut weekend = [false; 7];
        for day in &config.weekend {
            weekend[day.num_days_from_monday() as usize] = true;
        }
        if weekend.iter().all(|&off| off) {
            return invalid("every day of the week is weekend".into());
        }
        let holidays: BTreeSet<NaiveDate> = config.holidays.iter().copied().collect();
        let make_up_days: BTreeSet<NaiveDate> = config.make_up_days.iter().copied().collect();
        if let Some(date) = holidays.intersection(&make_up_days).next() {
            return invalid(format!("{date} is both a holiday and a make-up working day"));
        }
        Ok(Self { offset, hours, weekend, holidays, make_up_days })
    }

    /// The local time's offset from UTC.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// Whether `date` (local) is a working day: a make-up day, or neither a holiday nor a
    /// weekend day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.make_up_days.contains(&date) {
            return true;
        }
        !self.holidays.contains(&date) && !self.weekend[date.weekday().num_days_from_monday() as usize]
    }

    /// Whether `at` falls within the working hours of a working day (an interval includes its
    /// start and excludes its end).
    pub fn is_working_time(&self, at: DateTime<Utc>) -> bool {
        let local = self.local(at);
        self.is_working_day(local.date())
            && self.hours.iter().any(|&(start, end)| start <= local.time() && local.time() < end)
    }

    /// The moment `duration` of working time after `start`: time outside working hours and
    /// on days off does not count. A start outside working hours counts from the next
    /// working moment; a sum that ends exactly at the end of an interval ends there (a
    /// three-hour task started at 09:00 is due at 12:00, not 13:30).
    pub fn add_working_duration(&self, start: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
        if duration.is_zero() {
            return start;
        }
        let mut remaining = TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX);
        let mut at = self.local(start);
        loop {
            let date = at.date();
            if self.is_working_day(date) {
                for &(start, end) in &self.hours {
                    let (start, end) = (date.and_time(start), date.and_time(end));
                    if at >= end {
                        continue;
                    }
                    let from = at.max(start);
                    let available = end - from;
                    if remaining <= available {
                        return self.utc(from + remaining);
                    }
                    remaining -= available;
                    at = end;
                }
            }
            match date.succ_opt() {
                Some(next) => at = next.and_time(NaiveTime::MIN),
                None => return DateTime::<Utc>::MAX_UTC,
            }
        }
    }

    /// The end of working hours on the `days`-th working day after `start`'s (local) date.
    /// The start date itself does not count (期间开始之日不计算在内): one working day from
    /// any time on a Friday is Monday's close, or the next working day's after a holiday.
    /// Zero days is the close of the day of `start` if that is a working day not yet over,
    /// else of the next working day.
    pub fn add_working_days(&self, start: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let local = self.local(start);
        let close = self.hours.last().map_or(NaiveTime::MIN, |&(_, end)| end);
        let mut date = local.date();
        let mut counted = 0;
        if days == 0 && self.is_working_day(date) && local.time() < close {
            return self.utc(date.and_time(close));
        }
        loop {
            let Some(next) = date.succ_opt() else { return DateTime::<Utc>::MAX_UTC };
            date = next;
            if self.is_working_day(date) {
                counted += 1;
                if counted >= days {
                    return self.utc(date.and_time(close));
                }
            }
        }
    }

    fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.offset).naive_local()
    }

    fn utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        (local - TimeDelta::seconds(i64::from(self.offset.local_minus_utc()))).and_utc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_reads_times_without_seconds_weekday_names_and_dates() {
        let config: CalendarConfig = serde_json::from_str(
            r#"{"utc_offset_minutes": 480,
                "working_hours": [{"start": "13:30", "end": "17:30"}, {"start": "09:00", "end": "12:00:00"}],
                "weekend": ["Sat", "sunday"],
                "holidays": ["2030-10-01"],
                "make_up_days": ["2030-09-29"]}"#,
        )
        .expect("a valid config");
        assert_eq!(config.working_hours[0].start, NaiveTime::from_hms_opt(13, 30, 0).unwrap());
        assert_eq!(config.weekend, vec![Weekday::Sat, Weekday::Sun]);
        let defaults: CalendarConfig = serde_json::from_str("{}").expect("every field has a default");
        assert_eq!(defaults, CalendarConfig::default());
        assert!(WorkCalendar::new(&config).is_ok());
    }

    #[test]
    fn a_calendar_that_cannot_work_is_refused() {
        let at = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
        let cases = [
            CalendarConfig { working_hours: vec![], ..CalendarConfig::default() },
            CalendarConfig {
                working_hours: vec![
                    WorkingHours { start: at(9), end: at(12) },
                    WorkingHours { start: at(11), end: at(14) },
                ],
                ..CalendarConfig::default()
            },
            CalendarConfig {
                working_hours: vec![WorkingHours { start: at(12), end: at(9) }],
                ..CalendarConfig::default()
            },
            CalendarConfig {
                weekend: vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                    Weekday::Sat,
                    Weekday::Sun,
                ],
                ..CalendarConfig::default()
            },
            CalendarConfig {
                holidays: vec![NaiveDate::from_ymd_opt(2030, 10, 1).unwrap()],
                make_up_days: vec![NaiveDate::from_ymd_opt(2030, 10, 1).unwrap()],
                ..CalendarConfig::default()
            },
            CalendarConfig { utc_offset_minutes: 25 * 60, ..CalendarConfig::default() },
        ];
        for config in cases {
            assert!(matches!(WorkCalendar::new(&config), Err(DeadlineError::Calendar(_))), "{config:?}");
        }
    }
}
