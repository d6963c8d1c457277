//! The stored calendar days (工作日历).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use crate::domain::calendar::{CalendarDay, CalendarDayKind};

/// Where a stored day came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The State Council's schedule shipped with the service.
    Seed,
    /// SetCalendarDays.
    Api,
    /// ImportCalendar.
    Ics,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Seed => "SEED",
            Self::Api => "API",
            Self::Ics => "ICS",
        }
    }
}

type Row = (NaiveDate, String, String, String, DateTime<Utc>);

fn day(row: Row) -> Option<(CalendarDay, String, DateTime<Utc>)> {
    let (date, kind, name, source, updated) = row;
    Some((CalendarDay { date, kind: CalendarDayKind::parse(&kind)?, name }, source, updated))
}

/// Every stored day (a few dozen a year: the calendar is read whole).
pub async fn all(conn: &mut PgConnection) -> Result<Vec<CalendarDay>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as("SELECT day, kind, name, source, updated_at FROM calendar_days ORDER BY day")
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().filter_map(day).map(|d| d.0).collect())
}

/// The widest range of dates Postgres and chrono both represent, for "every day".
pub fn ever() -> (NaiveDate, NaiveDate) {
    (NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default(), NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default())
}

/// The stored days in `[from, to)`, by date, with their source and last change.
pub async fn between(
    conn: &mut PgConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(CalendarDay, String, DateTime<Utc>)>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT day, kind, name, source, updated_at FROM calendar_days WHERE day >= $1 AND day < $2 ORDER BY day",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().filter_map(day).collect())
}

/// Stores `days` (replacing what was stored for their dates); with `keep_existing`, dates
/// already stored are left alone (the seed never overrides the district).
pub async fn put(
    tx: &mut PgConnection,
    days: &[CalendarDay],
    source: Source,
    now: DateTime<Utc>,
    keep_existing: bool,
) -> Result<(), sqlx::Error> {
    let sql = if keep_existing {
        "INSERT INTO calendar_days (day, kind, name, source, updated_at) \
         SELECT d, k, n, $4, $5 FROM unnest($1::date[], $2::text[], $3::text[]) AS u (d, k, n) \
         ON CONFLICT (day) DO NOTHING"
    } else {
        "INSERT INTO calendar_days (day, kind, name, source, updated_at) \
         SELECT d, k, n, $4, $5 FROM unnest($1::date[], $2::text[], $3::text[]) AS u (d, k, n) \
         ON CONFLICT (day) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name, source = EXCLUDED.source, \
         updated_at = EXCLUDED.updated_at"
    };
    sqlx::query(sql)
        .bind(days.iter().map(|d| d.date).collect::<Vec<_>>())
        .bind(days.iter().map(|d| d.kind.as_str().to_owned()).collect::<Vec<_>>())
        .bind(days.iter().map(|d| d.name.clone()).collect::<Vec<_>>())
        .bind(source.as_str())
        .bind(now)
        .execute(tx)
        .await?;
    Ok(())
}

/// Removes the stored days of `dates` (they follow the configured week again).
pub async fn remove(tx: &mut PgConnection, dates: &[NaiveDate]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM calendar_days WHERE day = ANY($1)").bind(dates.to_vec()).execute(tx).await?;
    Ok(())
}
