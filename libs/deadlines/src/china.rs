//! China's working-time calendar as the State Council publishes it each year
//! (国务院办公厅关于节假日安排的通知): ready [`CalendarConfig`]s, for deadlines in working days
//! and for counting paid annual leave (带薪年休假: public holidays and rest days are not leave
//! days, make-up working days 调休 are).

use chrono::NaiveDate;

use crate::CalendarConfig;

fn dates(days: &[(i32, u32, u32)]) -> Vec<NaiveDate> {
    days.iter().filter_map(|&(y, m, d)| NaiveDate::from_ymd_opt(y, m, d)).collect()
}

fn span(year: i32, month: u32, from: u32, to: u32) -> Vec<(i32, u32, u32)> {
    (from..=to).map(|d| (year, month, d)).collect()
}

/// One festival of a year's State Council schedule: its name, its days off (month, first
/// day, last day) and the weekend days worked in exchange (调休上班, (month, day)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Festival {
    /// 元旦, 春节, …
    pub name: &'static str,
    /// The days off, inclusive: (month, from, to).
    pub days_off: (u32, u32, u32),
    /// The make-up working days (调休上班).
    pub make_up: &'static [(u32, u32)],
}

/// 2026, as published in 国务院办公厅关于2026年部分节假日安排的通知 (4 November 2025,
/// Xinhua): 元旦 1–3 Jan, Sun 4 Jan worked; 春节 15–23 Feb, Sat 14 Feb and Sat 28 Feb
/// worked; 清明 4–6 Apr; 劳动节 1–5 May, Sat 9 May worked; 端午 19–21 Jun; 中秋 25–27 Sep;
/// 国庆 1–7 Oct, Sun 20 Sep and Sat 10 Oct worked.
pub const CHINA_2026: [Festival; 7] = [
    Festival { name: "元旦", days_off: (1, 1, 3), make_up: &[(1, 4)] },
    Festival { name: "春节", days_off: (2, 15, 23), make_up: &[(2, 14), (2, 28)] },
    Festival { name: "清明节", days_off: (4, 4, 6), make_up: &[] },
    Festival { name: "劳动节", days_off: (5, 1, 5), make_up: &[(5, 9)] },
    Festival { name: "端午节", days_off: (6, 19, 21), make_up: &[] },
    Festival { name: "中秋节", days_off: (9, 25, 27), make_up: &[] },
    Festival { name: "国庆节", days_off: (10, 1, 7), make_up: &[(9, 20), (10, 10)] },
];

/// The days of [`CHINA_2026`]: (date, is a holiday (else a make-up working day), festival).
pub fn china_2026_days() -> Vec<(NaiveDate, bool, &'static str)> {
    let mut out = Vec::new();
    for f in CHINA_2026 {
        let (month, from, to) = f.days_off;
        out.extend(dates(&span(2026, month, from, to)).into_iter().map(|d| (d, true, f.name)));
        let make_up: Vec<(i32, u32, u32)> = f.make_up.iter().map(|&(m, d)| (2026, m, d)).collect();
        out.extend(dates(&make_up).into_iter().map(|d| (d, false, f.name)));
    }
    out
}

/// 2026 ([`CHINA_2026`]) as a calendar configuration: China Standard Time, 09:00–12:00 and
/// 13:30–17:30, Saturday and Sunday off otherwise.
pub fn china_2026() -> CalendarConfig {
    let days = china_2026_days();
    CalendarConfig {
        holidays: days.iter().filter(|d| d.1).map(|d| d.0).collect(),
        make_up_days: days.iter().filter(|d| !d.1).map(|d| d.0).collect(),
        ..CalendarConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WorkCalendar;

    #[test]
    fn the_2026_calendar_knows_the_spring_festival_and_its_make_up_saturdays() {
        let calendar = WorkCalendar::new(&china_2026()).unwrap();
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        assert!(!calendar.is_working_day(day(2, 16)), "a Monday of 春节");
        assert!(calendar.is_working_day(day(2, 14)), "a Saturday worked");
        assert!(calendar.is_working_day(day(1, 4)), "a Sunday worked");
        assert!(calendar.is_working_day(day(10, 8)), "the Thursday after 国庆");
        assert!(calendar.is_working_day(day(10, 9)), "a Friday after 国庆");
        assert!(!calendar.is_working_day(day(5, 5)), "劳动节");
    }
}
