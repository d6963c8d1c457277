//! Escalations (督办), as recorded when a deadline passed.

use sqlx::{PgConnection, types::Json};

use super::Position;
use crate::domain::model::{Escalation, EscalationKind};

/// Records an escalation.
pub async fn insert(tx: &mut PgConnection, e: &Escalation) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO escalations (id, kind, decision_id, plan_id, department_id, street_id, escalate_time, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(e.id)
    .bind(e.kind.as_str())
    .bind(e.decision_id)
    .bind(e.plan_id)
    .bind(&e.department_id)
    .bind(&e.street_id)
    .bind(e.escalate_time)
    .bind(Json(e))
    .execute(tx)
    .await?;
    Ok(())
}

/// Every escalation (the report).
pub async fn all(conn: &mut PgConnection) -> Result<Vec<Escalation>, sqlx::Error> {
    let rows: Vec<(Json<Escalation>,)> =
        sqlx::query_as("SELECT doc FROM escalations ORDER BY escalate_time, id").fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(Json(e),)| e).collect())
}

/// What ListEscalations filters on.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Of this department.
    pub department_id: Option<String>,
    /// Of this street.
    pub street_id: Option<String>,
    /// Of this kind.
    pub kind: Option<EscalationKind>,
    /// Of this decision.
    pub decision_id: Option<uuid::Uuid>,
    /// Of this plan.
    pub plan_id: Option<uuid::Uuid>,
}

const WHERE: &str = "($1::text IS NULL OR department_id = $1) AND ($2::text IS NULL OR street_id = $2) \
     AND ($3::text IS NULL OR kind = $3) AND ($4::uuid IS NULL OR decision_id = $4) \
     AND ($5::text IS NULL OR street_id = $5) AND ($6::text IS NULL OR department_id = $6) \
     AND ($7::uuid IS NULL OR plan_id = $7)";

/// A page of escalations, oldest first, and the total.
pub async fn list(
    conn: &mut PgConnection,
    scope: (Option<String>, Option<String>),
    filter: &Filter,
    after: Option<Position>,
    limit: i64,
) -> Result<(Vec<Escalation>, i64), sqlx::Error> {
    let (total,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM escalations WHERE {WHERE}")))
            .bind(&filter.department_id)
            .bind(&filter.street_id)
            .bind(filter.kind.map(EscalationKind::as_str))
            .bind(filter.decision_id)
            .bind(&scope.0)
            .bind(&scope.1)
            .bind(filter.plan_id)
            .fetch_one(&mut *conn)
            .await?;
    let rows: Vec<(Json<Escalation>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT doc FROM escalations WHERE {WHERE} AND ($8::timestamptz IS NULL OR (escalate_time, id) > ($8, $9)) \
         ORDER BY escalate_time, id LIMIT $10"
    )))
    .bind(&filter.department_id)
    .bind(&filter.street_id)
    .bind(filter.kind.map(EscalationKind::as_str))
    .bind(filter.decision_id)
    .bind(&scope.0)
    .bind(&scope.1)
    .bind(filter.plan_id)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok((rows.into_iter().map(|(Json(e),)| e).collect(), total))
}
