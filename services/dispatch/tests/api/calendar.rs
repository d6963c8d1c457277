//! The working-time calendar (工作日历) stored in Postgres: the State Council's 2026
//! schedule from the first start, further years imported from ICS or set through the API,
//! and a rectification's default due date counted on it.

use chrono::{DateTime, Utc};
use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

/// A rectification required now with no due time named: due in the policy's five working
/// days.
async fn default_due(app: &TestApp) -> DateTime<Utc> {
    let (_, rects) = app.rectifying_case_due(&["gongan"], None).await;
    time(rects[0].due_time.unwrap())
}

async fn days_of(app: &TestApp, year: i32) -> Vec<pb::CalendarDay> {
    app.street()
        .list_calendar_days(pb::ListCalendarDaysRequest { year, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .days
}

#[tokio::test]
async fn a_rectification_due_date_skips_the_2026_spring_festival_and_counts_its_make_up_saturday() {
    // No holidays configured: the 2026 schedule comes from the stored calendar alone.
    let app = TestApp::spawn().await;
    // Thursday 12 February 2026, 10:00 in Wuhan.
    app.clock.set(at("2026-02-12T10:00:00+08:00"));
    // Fri 13, Sat 14 (worked, 调休), then 春节 15–23 off, Tue 24, Wed 25, Thu 26.
    assert_eq!(default_due(&app).await, at("2026-02-26T17:30:00+08:00"));

    let stored = days_of(&app, 2026).await;
    let day = |date: &str| stored.iter().find(|d| d.date == date).cloned();
    let saturday = day("2026-02-14").expect("the make-up Saturday is stored");
    assert_eq!((saturday.kind, saturday.name.as_str()), (pb::CalendarDayKind::Workday as i32, "春节"));
    assert_eq!(saturday.source, "SEED");
    assert_eq!(day("2026-02-16").unwrap().kind, pb::CalendarDayKind::Holiday as i32);
    assert!(day("2026-02-24").is_none(), "an ordinary Tuesday is not stored");
    // 2026: 33 days off and 6 make-up working days, as the notice lists them.
    let count = |k: pb::CalendarDayKind| stored.iter().filter(|d| d.kind == k as i32).count();
    assert_eq!((count(pb::CalendarDayKind::Holiday), count(pb::CalendarDayKind::Workday)), (33, 6));
}

/// A test fixture in the shape Chinese holiday calendars are distributed in (not an
/// official schedule): 元旦 2027 off from Friday 1 to Sunday 3 January.
const ICS_2027: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//minhu//test holidays//ZH\r\n\
BEGIN:VEVENT\r\nUID:2027-yuandan@minhu.test\r\nDTSTAMP:20261201T000000Z\r\n\
DTSTART;VALUE=DATE:20270101\r\nDTEND;VALUE=DATE:20270104\r\nSUMMARY:元旦 休\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

#[tokio::test]
async fn an_imported_ics_year_and_a_day_set_through_the_api_move_the_due_date() {
    let app = TestApp::spawn().await;
    let admin = app.client(&tokens::district_admin());
    let import = |ics: &str| pb::ImportCalendarRequest { ics: ics.as_bytes().to_vec(), request_id: request_id() };

    for who in [tokens::district_operator(), tokens::street_leader(STREET)] {
        let e = app.client(&who).import_calendar(import(ICS_2027)).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "only the district admin");
    }
    let e = admin.clone().import_calendar(import("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.get_details_bad_request().unwrap().field_violations[0].field, "ics");
    assert!(days_of(&app, 2027).await.is_empty(), "a refused import stores nothing");

    let imported = admin.clone().import_calendar(import(ICS_2027)).await.unwrap().into_inner();
    assert_eq!(imported.years, [2027]);
    let dates: Vec<&str> = imported.days.iter().map(|d| d.date.as_str()).collect();
    assert_eq!(dates, ["2027-01-01", "2027-01-02", "2027-01-03"]);
    assert!(imported.days.iter().all(|d| d.source == "ICS" && d.name == "元旦"));

    // The district gives Monday 4 January off as well.
    let e = admin
        .clone()
        .set_calendar_days(pb::SetCalendarDaysRequest {
            days: vec![pb::CalendarDay { date: "2027-01-32".into(), ..Default::default() }],
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.get_details_bad_request().unwrap().field_violations[0].field, "days[0].date");
    let set = admin
        .clone()
        .set_calendar_days(pb::SetCalendarDaysRequest {
            days: vec![pb::CalendarDay {
                date: "2027-01-04".into(),
                kind: pb::CalendarDayKind::Holiday as i32,
                name: "元旦调休".into(),
                ..Default::default()
            }],
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.days[0].source, "API");
    // Thursday 31 December 2026, 10:00: 1–3 January off (ICS), 4 January off (API), then Tue 5
    // to Mon 11. Either day missing would give Friday 8; both missing Thursday 7.
    app.clock.set(at("2026-12-31T10:00:00+08:00"));
    assert_eq!(default_due(&app).await, at("2027-01-11T17:30:00+08:00"));

    // REGULAR removes the stored day again.
    admin
        .clone()
        .set_calendar_days(pb::SetCalendarDaysRequest {
            days: vec![pb::CalendarDay {
                date: "2027-01-04".into(),
                kind: pb::CalendarDayKind::Regular as i32,
                ..Default::default()
            }],
            request_id: request_id(),
        })
        .await
        .unwrap();
    assert_eq!(days_of(&app, 2027).await.len(), 3);
}
