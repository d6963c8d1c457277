//! The end of a case: the case report (办理报告), callbacks (回访), ratings (评价) and
//! rectifications (整改).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder, types::Json};
use uuid::Uuid;

use crate::domain::model::{Callback, CaseReport, Rating, Rectification};

/// Inserts the case report; `false` when one exists.
pub async fn insert_report(tx: &mut PgConnection, r: &CaseReport) -> Result<bool, sqlx::Error> {
    let n =
        sqlx::query("INSERT INTO case_reports (case_id, created_at, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(r.case_id)
            .bind(r.submit_time)
            .bind(Json(r))
            .execute(tx)
            .await?
            .rows_affected();
    Ok(n == 1)
}

/// A case's report.
pub async fn report(conn: &mut PgConnection, case_id: Uuid) -> Result<Option<CaseReport>, sqlx::Error> {
    let row: Option<(Json<CaseReport>,)> =
        sqlx::query_as("SELECT doc FROM case_reports WHERE case_id = $1").bind(case_id).fetch_optional(conn).await?;
    Ok(row.map(|r| r.0.0))
}

/// Inserts a callback.
pub async fn insert_callback(tx: &mut PgConnection, c: &Callback) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO callbacks (id, case_id, created_at, doc) VALUES ($1, $2, $3, $4)")
        .bind(c.id)
        .bind(c.case_id)
        .bind(c.create_time)
        .bind(Json(c))
        .execute(tx)
        .await?;
    Ok(())
}

/// A case's callbacks, oldest first.
pub async fn callbacks(conn: &mut PgConnection, case_id: Uuid) -> Result<Vec<Callback>, sqlx::Error> {
    let rows: Vec<(Json<Callback>,)> =
        sqlx::query_as("SELECT doc FROM callbacks WHERE case_id = $1 ORDER BY created_at, id")
            .bind(case_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|r| r.0.0).collect())
}

/// Inserts or saves a rating.
pub async fn save_rating(tx: &mut PgConnection, r: &Rating) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ratings (id, case_id, street_id, department_id, current, created_at, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET current = EXCLUDED.current, doc = EXCLUDED.doc",
    )
    .bind(r.id)
    .bind(r.case_id)
    .bind(&r.street_id)
    .bind(&r.department_id)
    .bind(r.current)
    .bind(r.create_time)
    .bind(Json(r))
    .execute(tx)
    .await?;
    Ok(())
}

/// A case's ratings, newest first.
pub async fn ratings(conn: &mut PgConnection, case_id: Uuid) -> Result<Vec<Rating>, sqlx::Error> {
    let rows: Vec<(Json<Rating>,)> =
        sqlx::query_as("SELECT doc FROM ratings WHERE case_id = $1 ORDER BY created_at DESC, id DESC")
            .bind(case_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|r| r.0.0).collect())
}

/// Ratings across cases, newest first (ListRatings); `street_id`/`department_id` empty
/// for any, `case_ids` restricts to readable cases when given.
pub async fn list_ratings(
    conn: &mut PgConnection,
    case_id: Option<Uuid>,
    department_id: &str,
    street_id: &str,
    include_superseded: bool,
    scope: &super::Scope,
) -> Result<Vec<Rating>, sqlx::Error> {
    let mut q = sqlx::QueryBuilder::new("SELECT r.doc FROM ratings r JOIN cases c ON c.id = r.case_id WHERE true");
    scope.push(&mut q);
    if let Some(id) = case_id {
        q.push(" AND r.case_id = ").push_bind(id);
    }
    if !department_id.is_empty() {
        q.push(" AND r.department_id = ").push_bind(department_id.to_owned());
    }
    if !street_id.is_empty() {
        q.push(" AND r.street_id = ").push_bind(street_id.to_owned());
    }
    if !include_superseded {
        q.push(" AND r.current");
    }
    q.push(" ORDER BY r.created_at DESC, r.id DESC LIMIT 5000");
    let rows: Vec<(Json<Rating>,)> = q.build_query_as().fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| r.0.0).collect())
}

/// Inserts or saves a rectification.
pub async fn save_rectification(tx: &mut PgConnection, r: &Rectification) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rectifications (id, case_id, department_id, state, overdue, due_time, created_at, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, overdue = EXCLUDED.overdue, doc = EXCLUDED.doc",
    )
    .bind(r.id)
    .bind(r.case_id)
    .bind(&r.department_id)
    .bind(r.state.as_str())
    .bind(r.overdue)
    .bind(r.due_time)
    .bind(r.create_time)
    .bind(Json(r))
    .execute(tx)
    .await?;
    Ok(())
}

/// A rectification.
pub async fn rectification(conn: &mut PgConnection, id: Uuid) -> Result<Option<Rectification>, sqlx::Error> {
    let row: Option<(Json<Rectification>,)> =
        sqlx::query_as("SELECT doc FROM rectifications WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(row.map(|r| r.0.0))
}

/// A case's rectifications, newest first.
pub async fn rectifications(conn: &mut PgConnection, case_id: Uuid) -> Result<Vec<Rectification>, sqlx::Error> {
    let rows: Vec<(Json<Rectification>,)> =
        sqlx::query_as("SELECT doc FROM rectifications WHERE case_id = $1 ORDER BY created_at DESC, id DESC")
            .bind(case_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|r| r.0.0).collect())
}

/// ListRectifications filters.
#[derive(Debug, Clone, Default)]
pub struct RectificationQuery {
    /// Case, if any.
    pub case_id: Option<Uuid>,
    /// Department, or empty.
    pub department_id: String,
    /// `RECTIFICATION_STATE_*`; empty: any.
    pub states: Vec<String>,
    /// Only overdue.
    pub overdue_only: bool,
}

fn rectifications_filtered(select: &str, scope: &super::Scope, f: &RectificationQuery) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(select);
    q.push(" FROM rectifications r JOIN cases c ON c.id = r.case_id WHERE true");
    scope.push(&mut q);
    if let Some(id) = f.case_id {
        q.push(" AND r.case_id = ").push_bind(id);
    }
    if !f.department_id.is_empty() {
        q.push(" AND r.department_id = ").push_bind(f.department_id.clone());
    }
    if !f.states.is_empty() {
        q.push(" AND r.state = ANY(").push_bind(f.states.clone()).push(")");
    }
    if f.overdue_only {
        q.push(" AND r.overdue");
    }
    q
}

/// One page of rectifications of readable cases, newest first, after `after` (create
/// time, id), and the total (ListRectifications).
pub async fn list_rectifications(
    conn: &mut PgConnection,
    scope: &super::Scope,
    f: &RectificationQuery,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<(Vec<Rectification>, i64), sqlx::Error> {
    let (total,): (i64,) =
        rectifications_filtered("SELECT count(*)", scope, f).build_query_as().fetch_one(&mut *conn).await?;
    let mut q = rectifications_filtered("SELECT r.doc", scope, f);
    if let Some((t, id)) = after {
        q.push(" AND (r.created_at, r.id) < (").push_bind(t).push(", ").push_bind(id).push(")");
    }
    q.push(" ORDER BY r.created_at DESC, r.id DESC LIMIT ").push_bind(limit);
    let rows: Vec<(Json<Rectification>,)> = q.build_query_as().fetch_all(conn).await?;
    Ok((rows.into_iter().map(|r| r.0.0).collect(), total))
}
