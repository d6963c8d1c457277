//! Scores by SQL aggregation over the call and rating records of a period, the drill-down
//! records behind them, and the frozen figures of closed periods.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use super::{Counted, page_sql, split_total};
use crate::domain::Counts;

/// What to aggregate: a period's range, optionally one calling street and one department.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// First instant (CALL_STARTED time).
    pub start: DateTime<Utc>,
    /// End, exclusive.
    pub end: DateTime<Utc>,
    /// Calling street; empty for all.
    pub street_id: &'a str,
    /// Department; empty for all.
    pub department_id: &'a str,
}

const FILTER: &str = "start_time >= $1 AND start_time < $2 AND ($3 = '' OR street_id = $3) \
                      AND ($4 = '' OR department_id = $4)";

/// Every department's counts in `scope`, by department id: one statement, two grouped
/// scans (calls for response and completion, current ratings for satisfaction).
pub async fn aggregate(conn: &mut PgConnection, scope: &Scope<'_>) -> sqlx::Result<Vec<Counts>> {
    let sql = format!(
        "WITH c AS (
           SELECT department_id,
             count(*) AS calls,
             count(*) FILTER (WHERE sign_state = 'ON_TIME') AS signed_on_time,
             count(*) FILTER (WHERE sign_state = 'LATE') AS signed_late,
             count(*) FILTER (WHERE sign_state = 'UNSIGNED') AS unsigned,
             sum(on_time_count)::bigint AS check_in_on_time,
             sum(late_count)::bigint AS check_in_late,
             sum(absent_count + shortfall_count)::bigint AS check_in_absent,
             sum(inaction_count)::bigint AS inaction,
             count(*) FILTER (WHERE response_outcome <> 'PENDING') AS response_due,
             count(*) FILTER (WHERE response_outcome = 'RESPONDED') AS responded,
             count(*) FILTER (WHERE completion_outcome <> 'PENDING') AS completion_due,
             count(*) FILTER (WHERE completion_outcome = 'ON_TIME') AS completed,
             count(*) FILTER (WHERE completion_outcome = 'LATE') AS completed_late
           FROM call_records WHERE NOT withdrawn AND {FILTER} GROUP BY department_id),
         r AS (
           SELECT department_id,
             count(*) FILTER (WHERE satisfaction <> 'PENDING') AS rated,
             count(*) FILTER (WHERE satisfaction = 'SATISFIED') AS satisfied,
             count(*) FILTER (WHERE satisfaction = 'BASICALLY_SATISFIED') AS basically_satisfied,
             count(*) FILTER (WHERE satisfaction = 'DISSATISFIED') AS dissatisfied,
             sum(rectification_count)::bigint AS rectifications
           FROM rating_records WHERE {FILTER} GROUP BY department_id)
         SELECT department_id,
           coalesce(c.calls, 0) AS calls, coalesce(c.signed_on_time, 0) AS signed_on_time,
           coalesce(c.signed_late, 0) AS signed_late, coalesce(c.unsigned, 0) AS unsigned,
           coalesce(c.check_in_on_time, 0) AS check_in_on_time, coalesce(c.check_in_late, 0) AS check_in_late,
           coalesce(c.check_in_absent, 0) AS check_in_absent, coalesce(c.inaction, 0) AS inaction,
           coalesce(c.response_due, 0) AS response_due, coalesce(c.responded, 0) AS responded,
           coalesce(c.completion_due, 0) AS completion_due, coalesce(c.completed, 0) AS completed,
           coalesce(c.completed_late, 0) AS completed_late,
           coalesce(r.rated, 0) AS rated, coalesce(r.satisfied, 0) AS satisfied,
           coalesce(r.basically_satisfied, 0) AS basically_satisfied,
           coalesce(r.dissatisfied, 0) AS dissatisfied, coalesce(r.rectifications, 0) AS rectifications
         FROM c FULL JOIN r USING (department_id) ORDER BY department_id"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.start)
        .bind(scope.end)
        .bind(scope.street_id)
        .bind(scope.department_id)
        .fetch_all(conn)
        .await
}

/// The calling streets with records in a range (the per-street tables frozen at close).
pub async fn streets_in(
    conn: &mut PgConnection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT street_id FROM call_records WHERE start_time >= $1 AND start_time < $2 ORDER BY street_id",
    )
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(s,)| s).collect())
}

/// Stores a closed period's figures for one street filter ('' = all streets), replacing
/// any stored before.
pub async fn freeze(conn: &mut PgConnection, period_id: Uuid, street_id: &str, counts: &[Counts]) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM period_scores WHERE period_id = $1 AND street_id = $2")
        .bind(period_id)
        .bind(street_id)
        .execute(&mut *conn)
        .await?;
    for c in counts {
        sqlx::query("INSERT INTO period_scores (period_id, street_id, department_id, counts) VALUES ($1, $2, $3, $4)")
            .bind(period_id)
            .bind(street_id)
            .bind(&c.department_id)
            .bind(Json(c))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A closed period's stored figures for one street filter, optionally one department.
pub async fn frozen(
    conn: &mut PgConnection,
    period_id: Uuid,
    street_id: &str,
    department_id: &str,
) -> sqlx::Result<Vec<Counts>> {
    let rows: Vec<(Json<Counts>,)> = sqlx::query_as(
        "SELECT counts FROM period_scores WHERE period_id = $1 AND street_id = $2 AND ($3 = '' OR department_id = $3) \
         ORDER BY department_id",
    )
    .bind(period_id)
    .bind(street_id)
    .bind(department_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(j,)| j.0).collect())
}

/// One record behind a figure (考评明细).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordRow {
    /// Page position: the call id, or `case/department` for ratings.
    pub id: String,
    /// Case.
    pub case_id: String,
    /// Call (for satisfaction: the department's first call in the case).
    pub call_id: String,
    /// Calling street.
    pub street_id: String,
    /// Department.
    pub department_id: String,
    /// CALL_STARTED time.
    pub start_time: DateTime<Utc>,
    /// The stored outcome (PENDING, RESPONDED, …, ON_TIME, …, SATISFIED, …).
    pub outcome: String,
    /// Evidence events.
    pub sequences: Vec<i64>,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// Seconds signed after the deadline.
    pub sign_lateness_secs: i64,
    /// People late.
    pub late_count: i32,
    /// People absent (shortfall included).
    pub absent_count: i32,
}

/// Which record set and column a drill-down reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indicator {
    /// 响应.
    Response,
    /// 办结.
    Completion,
    /// 满意.
    Satisfaction,
}

/// A page of records, newest first, after `(start_time, id)`, and the total.
pub async fn records(
    conn: &mut PgConnection,
    scope: &Scope<'_>,
    indicator: Indicator,
    outcome: &str,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> sqlx::Result<(Vec<RecordRow>, i64)> {
    let matching = match indicator {
        Indicator::Response | Indicator::Completion => {
            let (o, s) = if indicator == Indicator::Response {
                ("response_outcome", "response_sequences")
            } else {
                ("completion_outcome", "completion_sequences")
            };
            format!(
                "SELECT call_id AS id, case_id, call_id, street_id, department_id, start_time, {o} AS outcome, \
                 {s} AS sequences, update_time, sign_lateness_secs, late_count, absent_count + shortfall_count AS \
                 absent_count FROM call_records WHERE NOT withdrawn AND {FILTER} AND ($5 = '' OR {o} = $5)"
            )
        }
        Indicator::Satisfaction => format!(
            "SELECT case_id || '/' || department_id AS id, case_id, first_call_id AS call_id, street_id, department_id, \
             start_time, satisfaction AS outcome, sequences, update_time, 0::bigint AS sign_lateness_secs, \
             0 AS late_count, 0 AS absent_count FROM rating_records WHERE {FILTER} AND ($5 = '' OR satisfaction = $5)"
        ),
    };
    let sql = page_sql(
        &matching,
        "($6::timestamptz IS NULL OR (m.start_time, m.id) < ($6, $7))",
        "m.start_time DESC, m.id DESC",
        "$8",
    );
    let (after_time, after_id) = after.map_or((None, String::new()), |(t, id)| (Some(t), id));
    let rows: Vec<Counted<RecordRow>> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.start)
        .bind(scope.end)
        .bind(scope.street_id)
        .bind(scope.department_id)
        .bind(outcome)
        .bind(after_time)
        .bind(after_id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(split_total(rows))
}
