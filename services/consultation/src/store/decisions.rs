//! Decisions and their streets' opinion items.

use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use super::Position;
use crate::domain::model::{Decision, DecisionKind, DecisionOpinion};

/// Inserts a new decision.
pub async fn insert(tx: &mut PgConnection, d: &Decision) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO decisions (id, department_id, street_ids, state, kind, create_time, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(d.id)
    .bind(&d.department_id)
    .bind(&d.street_ids)
    .bind(d.state.as_str())
    .bind(d.kind.as_str())
    .bind(d.create_time)
    .bind(Json(d))
    .execute(tx)
    .await?;
    Ok(())
}

/// Saves a changed decision.
pub async fn update(tx: &mut PgConnection, d: &Decision) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE decisions SET street_ids = $2, state = $3, doc = $4 WHERE id = $1")
        .bind(d.id)
        .bind(&d.street_ids)
        .bind(d.state.as_str())
        .bind(Json(d))
        .execute(tx)
        .await?;
    Ok(())
}

/// A decision, locked for the transaction when `lock`.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Decision>, sqlx::Error> {
    let sql = if lock {
        "SELECT doc FROM decisions WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT doc FROM decisions WHERE id = $1"
    };
    let row: Option<(Json<Decision>,)> = sqlx::query_as(sql).bind(id).fetch_optional(conn).await?;
    Ok(row.map(|(Json(d),)| d))
}

/// Every decision (the report).
pub async fn all(conn: &mut PgConnection) -> Result<Vec<Decision>, sqlx::Error> {
    let rows: Vec<(Json<Decision>,)> =
        sqlx::query_as("SELECT doc FROM decisions ORDER BY create_time, id").fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(Json(d),)| d).collect())
}

/// What ListDecisions filters on.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Affecting this street.
    pub street_id: Option<String>,
    /// Of this department.
    pub department_id: Option<String>,
    /// In one of these states (`DECISION_STATE_*` names); empty for all.
    pub states: Vec<String>,
    /// Of this kind.
    pub kind: Option<DecisionKind>,
}

const WHERE: &str = "($1::text IS NULL OR $1 = ANY(street_ids)) AND ($2::text IS NULL OR department_id = $2) \
     AND (cardinality($3::text[]) = 0 OR state = ANY($3)) AND ($4::text IS NULL OR kind = $4) \
     AND ($5::text IS NULL OR $5 = ANY(street_ids)) AND ($6::text IS NULL OR department_id = $6)";

/// A page of decisions matching `filter` within the scope's filters, newest first, and the total.
pub async fn list(
    conn: &mut PgConnection,
    scope: (Option<String>, Option<String>),
    filter: &Filter,
    after: Option<Position>,
    limit: i64,
) -> Result<(Vec<Decision>, i64), sqlx::Error> {
    let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM decisions WHERE {WHERE}")))
        .bind(&filter.street_id)
        .bind(&filter.department_id)
        .bind(&filter.states)
        .bind(filter.kind.map(DecisionKind::as_str))
        .bind(&scope.0)
        .bind(&scope.1)
        .fetch_one(&mut *conn)
        .await?;
    let rows: Vec<(Json<Decision>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT doc FROM decisions WHERE {WHERE} AND ($7::timestamptz IS NULL OR (create_time, id) < ($7, $8)) \
         ORDER BY create_time DESC, id DESC LIMIT $9"
    )))
    .bind(&filter.street_id)
    .bind(&filter.department_id)
    .bind(&filter.states)
    .bind(filter.kind.map(DecisionKind::as_str))
    .bind(&scope.0)
    .bind(&scope.1)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok((rows.into_iter().map(|(Json(d),)| d).collect(), total))
}

/// Inserts an opinion item.
pub async fn insert_opinion(tx: &mut PgConnection, o: &DecisionOpinion) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO decision_opinions (id, decision_id, street_id, answered, create_time, doc) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(o.id)
    .bind(o.decision_id)
    .bind(&o.street_id)
    .bind(o.adoption.is_some())
    .bind(o.create_time)
    .bind(Json(o))
    .execute(tx)
    .await?;
    Ok(())
}

/// Saves a changed item.
pub async fn update_opinion(tx: &mut PgConnection, o: &DecisionOpinion) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE decision_opinions SET answered = $2, doc = $3 WHERE id = $1")
        .bind(o.id)
        .bind(o.adoption.is_some())
        .bind(Json(o))
        .execute(tx)
        .await?;
    Ok(())
}

/// The decision an item belongs to (unlocked: the caller locks the decision next).
pub async fn decision_of_opinion(conn: &mut PgConnection, opinion_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(Uuid,)> = sqlx::query_as("SELECT decision_id FROM decision_opinions WHERE id = $1")
        .bind(opinion_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.0))
}

/// Every item of a decision, oldest first (locked when `lock`).
pub async fn opinions(
    conn: &mut PgConnection,
    decision_id: Uuid,
    lock: bool,
) -> Result<Vec<DecisionOpinion>, sqlx::Error> {
    let sql = if lock {
        "SELECT doc FROM decision_opinions WHERE decision_id = $1 ORDER BY create_time, id FOR UPDATE"
    } else {
        "SELECT doc FROM decision_opinions WHERE decision_id = $1 ORDER BY create_time, id"
    };
    let rows: Vec<(Json<DecisionOpinion>,)> = sqlx::query_as(sql).bind(decision_id).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(Json(o),)| o).collect())
}

/// Every item (the report).
pub async fn all_opinions(conn: &mut PgConnection) -> Result<Vec<DecisionOpinion>, sqlx::Error> {
    let rows: Vec<(Json<DecisionOpinion>,)> =
        sqlx::query_as("SELECT doc FROM decision_opinions ORDER BY create_time, id").fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(Json(o),)| o).collect())
}

/// A page of a decision's items (by street, then time), and the total.
pub async fn list_opinions(
    conn: &mut PgConnection,
    decision_id: Uuid,
    street_id: Option<&str>,
    pending_only: bool,
    after: Option<(String, Position)>,
    limit: i64,
) -> Result<(Vec<DecisionOpinion>, i64), sqlx::Error> {
    const WHERE: &str = "decision_id = $1 AND ($2::text IS NULL OR street_id = $2) AND (NOT $3 OR NOT answered)";
    let (total,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM decision_opinions WHERE {WHERE}")))
            .bind(decision_id)
            .bind(street_id)
            .bind(pending_only)
            .fetch_one(&mut *conn)
            .await?;
    let (street, position) = after.map_or((None, None), |(s, p)| (Some(s), Some(p)));
    let rows: Vec<(Json<DecisionOpinion>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT doc FROM decision_opinions WHERE {WHERE} \
         AND ($4::text IS NULL OR (street_id, create_time, id) > ($4, $5, $6)) ORDER BY street_id, create_time, id LIMIT $7"
    )))
    .bind(decision_id)
    .bind(street_id)
    .bind(pending_only)
    .bind(street)
    .bind(position.map(|p| p.0))
    .bind(position.map(|p| p.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok((rows.into_iter().map(|(Json(o),)| o).collect(), total))
}
