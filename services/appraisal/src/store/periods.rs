//! Appraisal periods (考核周期) and annual weights (年度考核权重).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use super::{Counted, page_sql, split_total};
use crate::domain::period::PeriodInput;

/// A period as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PeriodRow {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// PERIOD_KIND_* name.
    pub kind: String,
    /// Start.
    pub start_time: DateTime<Utc>,
    /// End (exclusive).
    pub end_time: DateTime<Utc>,
    /// Response weight.
    pub response_bp: i32,
    /// Completion weight.
    pub completion_bp: i32,
    /// Satisfaction weight.
    pub satisfaction_bp: i32,
    /// Closed (frozen).
    pub closed: bool,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Changed.
    pub update_time: DateTime<Utc>,
    /// Closed at.
    pub close_time: Option<DateTime<Utc>>,
    /// The cursor when closed.
    pub frozen_sequence: Option<i64>,
}

impl PeriodRow {
    /// Its weights.
    pub fn weights(&self) -> crate::domain::Weights {
        crate::domain::Weights {
            response: self.response_bp,
            completion: self.completion_bp,
            satisfaction: self.satisfaction_bp,
        }
    }
}

/// Inserts a period.
pub async fn insert(conn: &mut PgConnection, id: Uuid, p: &PeriodInput, now: DateTime<Utc>) -> sqlx::Result<PeriodRow> {
    sqlx::query_as(
        "INSERT INTO periods (id, name, kind, start_time, end_time, response_bp, completion_bp, satisfaction_bp, \
         create_time, update_time) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$9) RETURNING *",
    )
    .bind(id)
    .bind(&p.name)
    .bind(&p.kind)
    .bind(p.start)
    .bind(p.end)
    .bind(p.weights.response)
    .bind(p.weights.completion)
    .bind(p.weights.satisfaction)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// A period; with `lock`, held until the transaction ends.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> sqlx::Result<Option<PeriodRow>> {
    let sql =
        if lock { "SELECT * FROM periods WHERE id = $1 FOR UPDATE" } else { "SELECT * FROM periods WHERE id = $1" };
    sqlx::query_as(sql).bind(id).fetch_optional(conn).await
}

/// Replaces a period's name, range and weights.
pub async fn update(conn: &mut PgConnection, id: Uuid, p: &PeriodInput, now: DateTime<Utc>) -> sqlx::Result<PeriodRow> {
    sqlx::query_as(
        "UPDATE periods SET name = $2, start_time = $3, end_time = $4, response_bp = $5, completion_bp = $6, \
         satisfaction_bp = $7, update_time = $8 WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(&p.name)
    .bind(p.start)
    .bind(p.end)
    .bind(p.weights.response)
    .bind(p.weights.completion)
    .bind(p.weights.satisfaction)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Marks a period closed at `now` with its figures as of `sequence`.
pub async fn close(conn: &mut PgConnection, id: Uuid, now: DateTime<Utc>, sequence: i64) -> sqlx::Result<PeriodRow> {
    sqlx::query_as(
        "UPDATE periods SET closed = true, close_time = $2, update_time = $2, frozen_sequence = $3 WHERE id = $1 \
         RETURNING *",
    )
    .bind(id)
    .bind(now)
    .bind(sequence)
    .fetch_one(conn)
    .await
}

/// Closed periods (a rebuild that includes them re-freezes them).
pub async fn closed(conn: &mut PgConnection) -> sqlx::Result<Vec<PeriodRow>> {
    sqlx::query_as("SELECT * FROM periods WHERE closed").fetch_all(conn).await
}

/// The filters of ListPeriods.
#[derive(Debug, Clone, Default)]
pub struct PeriodFilter {
    /// Kind name or empty.
    pub kind: String,
    /// Closed or not; `None` for both.
    pub closed: Option<bool>,
    /// Overlapping this range.
    pub overlaps: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// A page of periods, latest start first, after `(start_time, id)`.
pub async fn list(
    conn: &mut PgConnection,
    f: &PeriodFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<PeriodRow>, i64)> {
    let sql = page_sql(
        "SELECT * FROM periods WHERE ($1 = '' OR kind = $1) AND ($2::boolean IS NULL OR closed = $2) \
         AND ($3::timestamptz IS NULL OR (start_time < $4 AND end_time > $3))",
        "($5::timestamptz IS NULL OR (m.start_time, m.id) < ($5, $6))",
        "m.start_time DESC, m.id DESC",
        "$7",
    );
    let (after_time, after_id) = after.map_or((None, Uuid::nil()), |(t, id)| (Some(t), id));
    let rows: Vec<Counted<PeriodRow>> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&f.kind)
        .bind(f.closed)
        .bind(f.overlaps.map(|o| o.0))
        .bind(f.overlaps.map(|o| o.1))
        .bind(after_time)
        .bind(after_id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(split_total(rows))
}

/// Every YEAR period, oldest first (candidates for a calendar year).
pub async fn year_periods(conn: &mut PgConnection) -> sqlx::Result<Vec<PeriodRow>> {
    sqlx::query_as("SELECT * FROM periods WHERE kind = 'PERIOD_KIND_YEAR' ORDER BY create_time").fetch_all(conn).await
}

/// An annual weight as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AnnualWeightRow {
    /// Year.
    pub year: i32,
    /// Basis points.
    pub weight_bp: i32,
    /// Who set it (an Actor as JSON).
    pub updated_by: Json<serde_json::Value>,
    /// When.
    pub update_time: DateTime<Utc>,
}

/// Sets a year's weight.
pub async fn set_weight(
    conn: &mut PgConnection,
    year: i32,
    weight_bp: i32,
    by: serde_json::Value,
    now: DateTime<Utc>,
) -> sqlx::Result<AnnualWeightRow> {
    sqlx::query_as(
        "INSERT INTO annual_weights (year, weight_bp, updated_by, update_time) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (year) DO UPDATE SET weight_bp = $2, updated_by = $3, update_time = $4 RETURNING *",
    )
    .bind(year)
    .bind(weight_bp)
    .bind(Json(by))
    .bind(now)
    .fetch_one(conn)
    .await
}

/// A year's weight, if set.
pub async fn weight(conn: &mut PgConnection, year: i32) -> sqlx::Result<Option<AnnualWeightRow>> {
    sqlx::query_as("SELECT * FROM annual_weights WHERE year = $1").bind(year).fetch_optional(conn).await
}
