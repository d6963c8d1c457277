//! The working-time calendar (工作日历): the district admin sets days or imports an ICS
//! file; everyone reads; working-day deadlines count on [`Dispatch::calendar`].

use chrono::{NaiveDate, Utc};
use minhu_deadlines::WorkCalendar;
use minhu_grpc::{FieldViolations, Principal, Role};
use minhu_proto::dispatch::v1 as pb;
use sqlx::PgConnection;
use tonic::Request;

use super::{Dispatch, RPCS, caller, write};
use crate::{
    domain::calendar::{self, CalendarDay, CalendarDayKind},
    error::DispatchError,
    events::ts,
    store::calendar::{self as store, Source},
};

/// Most days one SetCalendarDays carries.
const MAX_SET: usize = 400;
/// Largest ICS file accepted.
const MAX_ICS_BYTES: usize = 1024 * 1024;

impl Dispatch {
    /// The calendar as it stands: the configured week with the stored days over it.
    pub(super) async fn calendar(&self, conn: &mut PgConnection) -> Result<WorkCalendar, DispatchError> {
        let days = store::all(conn).await?;
        Ok(calendar::merged(&self.d.calendar_base, &days)?)
    }
}

fn require_district_admin(p: &Principal) -> Result<(), DispatchError> {
    if p.is_district() && p.has_role(Role::DistrictAdmin) {
        Ok(())
    } else {
        Err(DispatchError::denied("only the district admin changes the working-time calendar"))
    }
}

fn day_pb(d: &CalendarDay, source: &str, updated: chrono::DateTime<Utc>) -> pb::CalendarDay {
    pb::CalendarDay {
        date: d.date.to_string(),
        kind: pb::CalendarDayKind::from_str_name(d.kind.as_str()).map_or(0, Into::into),
        name: d.name.clone(),
        source: source.to_owned(),
        update_time: ts(updated),
    }
}

/// The stored days in `[from, to)` as the contract shows them.
async fn shown(conn: &mut PgConnection, from: NaiveDate, to: NaiveDate) -> Result<Vec<pb::CalendarDay>, DispatchError> {
    Ok(store::between(conn, from, to).await?.iter().map(|(d, s, u)| day_pb(d, s, *u)).collect())
}

fn span(days: &[NaiveDate]) -> (NaiveDate, NaiveDate) {
    let (first, last) = store::ever();
    let from = days.iter().min().copied().unwrap_or(first);
    let to = days.iter().max().and_then(|d| d.succ_opt()).unwrap_or(last);
    (from, to)
}

pub(super) async fn set_calendar_days(
    s: &Dispatch,
    r: Request<pb::SetCalendarDaysRequest>,
) -> Result<pb::SetCalendarDaysResponse, DispatchError> {
    let (p, req) = caller(r)?;
    require_district_admin(&p)?;
    let mut v = FieldViolations::new();
    v.check(!req.days.is_empty() && req.days.len() <= MAX_SET, "days", "must hold 1 to 400 days");
    let (mut set, mut removed) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for (i, d) in req.days.iter().enumerate() {
        let f = |name: &str| format!("days[{i}].{name}");
        let Ok(date) = NaiveDate::parse_from_str(d.date.trim(), "%Y-%m-%d") else {
            v.add(f("date"), "must be a date, YYYY-MM-DD");
            continue;
        };
        if !seen.insert(date) {
            v.add(f("date"), "appears twice");
        }
        match pb::CalendarDayKind::try_from(d.kind) {
            Ok(pb::CalendarDayKind::Regular) => removed.push(date),
            Ok(k) if k != pb::CalendarDayKind::Unspecified => {
                let name = v.required_text(&f("name"), &d.name, 50).to_owned();
                let kind = CalendarDayKind::parse(k.as_str_name()).unwrap_or(CalendarDayKind::Holiday);
                set.push(CalendarDay { date, kind, name });
            }
            _ => v.add(f("kind"), "must be HOLIDAY, WORKDAY or REGULAR"),
        }
    }
    v.into_result()?;
    let key = RPCS.idempotency("SetCalendarDays", &p, &req.request_id, &req)?;
    let base = s.d.calendar_base.clone();
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            store::remove(tx, &removed).await?;
            store::put(tx, &set, Source::Api, w.now(), false).await?;
            // The result must still be a calendar that works (a week with some working day).
            calendar::merged(&base, &store::all(tx).await?)?;
            let dates: Vec<NaiveDate> = set.iter().map(|d| d.date).collect();
            let (from, to) = span(&dates);
            let days = if dates.is_empty() { Vec::new() } else { shown(tx, from, to).await? };
            let days = days.into_iter().filter(|d| set.iter().any(|x| x.date.to_string() == d.date)).collect();
            Ok(pb::SetCalendarDaysResponse { days })
        })
    })
    .await
}

pub(super) async fn import_calendar(
    s: &Dispatch,
    r: Request<pb::ImportCalendarRequest>,
) -> Result<pb::ImportCalendarResponse, DispatchError> {
    let (p, req) = caller(r)?;
    require_district_admin(&p)?;
    if req.ics.len() > MAX_ICS_BYTES {
        return Err(DispatchError::field("ics", "must be at most 1 MiB"));
    }
    let text = std::str::from_utf8(&req.ics).map_err(|e| DispatchError::field("ics", format!("is not UTF-8: {e}")))?;
    let days = calendar::parse_ics(text).map_err(|e| DispatchError::field("ics", e))?;
    let key = RPCS.idempotency("ImportCalendar", &p, &req.request_id, &req)?;
    let base = s.d.calendar_base.clone();
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            store::put(tx, &days, Source::Ics, w.now(), false).await?;
            calendar::merged(&base, &store::all(tx).await?)?;
            let dates: Vec<NaiveDate> = days.iter().map(|d| d.date).collect();
            let (from, to) = span(&dates);
            let stored = shown(tx, from, to).await?;
            let stored = stored.into_iter().filter(|d| days.iter().any(|x| x.date.to_string() == d.date)).collect();
            Ok(pb::ImportCalendarResponse { days: stored, years: calendar::years(&days) })
        })
    })
    .await
}

pub(super) async fn list_calendar_days(
    s: &Dispatch,
    r: Request<pb::ListCalendarDaysRequest>,
) -> Result<pb::ListCalendarDaysResponse, DispatchError> {
    let (_, req) = caller(r)?;
    let (from, to) = match req.year {
        0 => store::ever(),
        y => {
            match (NaiveDate::from_ymd_opt(y, 1, 1), y.checked_add(1).and_then(|n| NaiveDate::from_ymd_opt(n, 1, 1))) {
                (Some(from), Some(to)) if (1..9999).contains(&y) => (from, to),
                _ => return Err(DispatchError::field("year", "is not a year")),
            }
        }
    };
    let page = RPCS.page::<NaiveDate>(req.page_size, &req.page_token, &["calendar", &req.year.to_string()])?;
    let from = page.after.and_then(|d| d.succ_opt()).unwrap_or(from).max(from);
    let mut conn = s.d.pool.acquire().await?;
    let mut days = store::between(&mut conn, from, to).await?;
    days.truncate(page.limit() as usize);
    let next_page_token = page.finish(&mut days, |(d, _, _)| d.date);
    Ok(pb::ListCalendarDaysResponse { days: days.iter().map(|(d, s, u)| day_pb(d, s, *u)).collect(), next_page_token })
}

/// Stores the 2026 schedule unless the district already set those dates.
pub(crate) async fn seed(conn: &mut PgConnection, now: chrono::DateTime<Utc>) -> Result<(), sqlx::Error> {
    store::put(conn, &calendar::china_2026(), Source::Seed, now, true).await
}
