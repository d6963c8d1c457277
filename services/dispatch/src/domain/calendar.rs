//! The district's working-time calendar as it stands (工作日历): the configured base
//! (hours, weekend, time zone) with the days the district stored over it — public holidays
//! (法定节假日) and make-up working days (调休上班) — set through the API, imported from an
//! ICS file, or seeded from the State Council's 2026 schedule. A stored day wins over the
//! configuration for its date.
//!
//! ICS files (RFC 5545, the format Chinese holiday calendars are distributed in) are read
//! event by event: an all-day event covers DTSTART up to DTEND (exclusive; one day without
//! DTEND); its SUMMARY names the festival and says which kind of day it is — a summary
//! with 班 (补班, 上班) marks working days, anything else (休, 假, a bare festival name)
//! days off.

use std::collections::BTreeMap;

use chrono::{Datelike as _, NaiveDate, TimeDelta};
use icalendar::{CalendarDateTime, Component as _, DatePerhapsTime};
use minhu_deadlines::{CalendarConfig, DeadlineError, WorkCalendar};
use serde::{Deserialize, Serialize};

use super::named_enum;

named_enum! {
    /// What a stored day is.
    CalendarDayKind {
        /// 法定节假日: off even on a weekday.
        Holiday = "CALENDAR_DAY_KIND_HOLIDAY",
        /// 调休上班: worked even on a weekend.
        Workday = "CALENDAR_DAY_KIND_WORKDAY",
    }
}

/// One stored day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarDay {
    /// The date (local).
    pub date: NaiveDate,
    /// Holiday or working day.
    pub kind: CalendarDayKind,
    /// The festival or reason, e.g. 春节.
    pub name: String,
}

/// Most days one ICS import may carry (a few years of holidays).
pub const MAX_IMPORT_DAYS: usize = 2000;

/// The calendar of `base` with `days` over it: a stored holiday is off and a stored
/// working day worked, whatever the configuration said of that date.
pub fn merged(base: &CalendarConfig, days: &[CalendarDay]) -> Result<WorkCalendar, DeadlineError> {
    let mut config = base.clone();
    let stored: BTreeMap<NaiveDate, CalendarDayKind> = days.iter().map(|d| (d.date, d.kind)).collect();
    config.holidays.retain(|d| !stored.contains_key(d));
    config.make_up_days.retain(|d| !stored.contains_key(d));
    for (date, kind) in stored {
        match kind {
            CalendarDayKind::Holiday => config.holidays.push(date),
            CalendarDayKind::Workday => config.make_up_days.push(date),
        }
    }
    WorkCalendar::new(&config)
}

/// The 2026 schedule ([`minhu_deadlines::china::CHINA_2026`]) as stored days.
pub fn china_2026() -> Vec<CalendarDay> {
    minhu_deadlines::china::china_2026_days()
        .into_iter()
        .map(|(date, holiday, name)| CalendarDay {
            date,
            kind: if holiday { CalendarDayKind::Holiday } else { CalendarDayKind::Workday },
            name: name.to_owned(),
        })
        .collect()
}

fn local_date(at: DatePerhapsTime) -> NaiveDate {
    match at {
        DatePerhapsTime::Date(d) => d,
        DatePerhapsTime::DateTime(CalendarDateTime::Floating(t)) => t.date(),
        // China Standard Time: the district's dates.
        DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)) => (t + TimeDelta::hours(8)).date_naive(),
        DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { date_time, .. }) => date_time.date(),
    }
}

/// The days an ICS file declares (see the module docs), sorted by date; a later event for
/// the same date wins. An error says what is wrong with which event.
pub fn parse_ics(text: &str) -> Result<Vec<CalendarDay>, String> {
    let calendar: icalendar::Calendar = text.parse().map_err(|e: String| format!("is not an ICS calendar: {e}"))?;
    let mut days = BTreeMap::new();
    for (i, event) in calendar.events().enumerate() {
        let summary = event.get_summary().unwrap_or_default().trim().to_owned();
        let start = event.get_start().map(local_date).ok_or_else(|| format!("event {} has no DTSTART", i + 1))?;
        let end = event.get_end().map(local_date).unwrap_or(start + TimeDelta::days(1));
        // DTEND of an all-day event is exclusive; a same-day DATE-TIME end still covers its day.
        let end = if end <= start { start + TimeDelta::days(1) } else { end };
        if end - start > TimeDelta::days(31) {
            return Err(format!("event {} (`{summary}`) spans more than a month", i + 1));
        }
        let kind = if summary.contains('班') { CalendarDayKind::Workday } else { CalendarDayKind::Holiday };
        let name = festival(&summary);
        let mut date = start;
        while date < end {
            days.insert(date, CalendarDay { date, kind, name: name.clone() });
            date += TimeDelta::days(1);
        }
        if days.len() > MAX_IMPORT_DAYS {
            return Err(format!("declares more than {MAX_IMPORT_DAYS} days"));
        }
    }
    if days.is_empty() {
        return Err("declares no day (no VEVENT with a DTSTART)".into());
    }
    Ok(days.into_values().collect())
}

/// The festival's name in a summary such as `春节 休` or `国庆节 补班`: its first word.
fn festival(summary: &str) -> String {
    let name = summary.split_whitespace().next().unwrap_or_default();
    let name: String = name.chars().take(50).collect();
    if name.is_empty() { "节假日".into() } else { name }
}

/// The years `days` fall in, for a reply that says what was imported.
pub fn years(days: &[CalendarDay]) -> Vec<i32> {
    let mut years: Vec<i32> = days.iter().map(|d| d.date.year()).collect();
    years.dedup();
    years
}

#[cfg(test)]
mod tests {
    use super::*;

    const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//holidays//CN\r\n\
BEGIN:VEVENT\r\nUID:a\r\nDTSTART;VALUE=DATE:20270101\r\nDTEND;VALUE=DATE:20270104\r\nSUMMARY:元旦 休\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:b\r\nDTSTART;VALUE=DATE:20270207\r\nSUMMARY:春节 补班\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn an_ics_file_gives_its_holidays_and_make_up_days() {
        let days = parse_ics(ICS).unwrap();
        let kinds: Vec<(String, CalendarDayKind)> = days.iter().map(|d| (d.date.to_string(), d.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("2027-01-01".into(), CalendarDayKind::Holiday),
                ("2027-01-02".into(), CalendarDayKind::Holiday),
                ("2027-01-03".into(), CalendarDayKind::Holiday),
                ("2027-02-07".into(), CalendarDayKind::Workday),
            ]
        );
        assert_eq!(days[0].name, "元旦");
        assert_eq!(years(&days), [2027]);
        assert!(parse_ics("not a calendar").is_err());
    }

    #[test]
    fn a_stored_day_wins_over_the_configuration() {
        let base = minhu_deadlines::china::china_2026();
        let sat = NaiveDate::from_ymd_opt(2026, 2, 14).unwrap();
        assert!(merged(&base, &[]).unwrap().is_working_day(sat));
        let off = CalendarDay { date: sat, kind: CalendarDayKind::Holiday, name: "调整".into() };
        assert!(!merged(&base, &[off]).unwrap().is_working_day(sat));
    }
}
