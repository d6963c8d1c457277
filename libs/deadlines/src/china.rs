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

/// 2026 (国办发明电〔2025〕 holiday arrangement): 元旦 1–3 Jan, 春节 15–23 Feb, 清明 4–6 Apr,
/// 劳动节 1–5 May, 端午 19–21 Jun, 中秋 25–27 Sep, 国庆 1–7 Oct off; Sun 4 Jan, Sat 14 Feb,
/// Sat 28 Feb, Sat 9 May, Sun 20 Sep and Sat 10 Oct worked. China Standard Time, 09:00–12:00
/// and 13:30–17:30, Saturday and Sunday off otherwise.
pub fn china_2026() -> CalendarConfig {
    let mut holidays = Vec::new();
    for (month, from, to) in [(1, 1, 3), (2, 15, 23), (4, 4, 6), (5, 1, 5), (6, 19, 21), (9, 25, 27), (10, 1, 7)] {
        holidays.extend(span(2026, month, from, to));
    }
    CalendarConfig {
        holidays: dates(&holidays),
        make_up_days: dates(&[(2026, 1, 4), (2026, 2, 14), (2026, 2, 28), (2026, 5, 9), (2026, 9, 20), (2026, 10, 10)]),
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
