//! Plans and their stage opinions.

use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use super::Position;
use crate::domain::model::{Plan, PlanKind, PlanOpinion, PlanStage};

/// Inserts a new plan.
pub async fn insert(tx: &mut PgConnection, plan: &Plan) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO plans (id, department_id, street_ids, stage, kind, pending, create_time, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(plan.id)
    .bind(&plan.department_id)
    .bind(&plan.street_ids)
    .bind(plan.stage.as_str())
    .bind(plan.kind.as_str())
    .bind(!plan.pending_street_ids.is_empty())
    .bind(plan.create_time)
    .bind(Json(plan))
    .execute(tx)
    .await?;
    Ok(())
}

/// Saves a changed plan.
pub async fn update(tx: &mut PgConnection, plan: &Plan) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE plans SET street_ids = $2, stage = $3, pending = $4, doc = $5 WHERE id = $1")
        .bind(plan.id)
        .bind(&plan.street_ids)
        .bind(plan.stage.as_str())
        .bind(!plan.pending_street_ids.is_empty())
        .bind(Json(plan))
        .execute(tx)
        .await?;
    Ok(())
}

/// A plan, locked for the transaction when `lock`.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Plan>, sqlx::Error> {
    let sql =
        if lock { "SELECT doc FROM plans WHERE id = $1 FOR UPDATE" } else { "SELECT doc FROM plans WHERE id = $1" };
    let row: Option<(Json<Plan>,)> = sqlx::query_as(sql).bind(id).fetch_optional(conn).await?;
    Ok(row.map(|(Json(p),)| p))
}

/// Every plan (the report).
pub async fn all(conn: &mut PgConnection) -> Result<Vec<Plan>, sqlx::Error> {
    let rows: Vec<(Json<Plan>,)> =
        sqlx::query_as("SELECT doc FROM plans ORDER BY create_time, id").fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(Json(p),)| p).collect())
}

/// What ListPlans filters on.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Involving this street.
    pub street_id: Option<String>,
    /// Of this department.
    pub department_id: Option<String>,
    /// In this stage.
    pub stage: Option<PlanStage>,
    /// Of this kind.
    pub kind: Option<PlanKind>,
    /// Only with a street's participation missing.
    pub pending_only: bool,
}

const WHERE: &str = "($1::text IS NULL OR $1 = ANY(street_ids)) AND ($2::text IS NULL OR department_id = $2) \
     AND ($3::text IS NULL OR stage = $3) AND ($4::text IS NULL OR kind = $4) AND (NOT $5 OR pending) \
     AND ($6::text IS NULL OR $6 = ANY(street_ids)) AND ($7::text IS NULL OR department_id = $7)";

/// A page of plans matching `filter` within the scope's filters, newest first, and the total.
pub async fn list(
    conn: &mut PgConnection,
    scope: (Option<String>, Option<String>),
    filter: &Filter,
    after: Option<Position>,
    limit: i64,
) -> Result<(Vec<Plan>, i64), sqlx::Error> {
    let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM plans WHERE {WHERE}")))
        .bind(&filter.street_id)
        .bind(&filter.department_id)
        .bind(filter.stage.map(PlanStage::as_str))
        .bind(filter.kind.map(PlanKind::as_str))
        .bind(filter.pending_only)
        .bind(&scope.0)
        .bind(&scope.1)
        .fetch_one(&mut *conn)
        .await?;
    let rows: Vec<(Json<Plan>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT doc FROM plans WHERE {WHERE} AND ($8::timestamptz IS NULL OR (create_time, id) < ($8, $9)) \
         ORDER BY create_time DESC, id DESC LIMIT $10"
    )))
    .bind(&filter.street_id)
    .bind(&filter.department_id)
    .bind(filter.stage.map(PlanStage::as_str))
    .bind(filter.kind.map(PlanKind::as_str))
    .bind(filter.pending_only)
    .bind(&scope.0)
    .bind(&scope.1)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok((rows.into_iter().map(|(Json(p),)| p).collect(), total))
}

/// Inserts a stage opinion.
pub async fn insert_opinion(tx: &mut PgConnection, o: &PlanOpinion) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO plan_opinions (id, plan_id, street_id, stage, create_time, doc) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(o.id)
    .bind(o.plan_id)
    .bind(&o.street_id)
    .bind(o.stage.as_str())
    .bind(o.create_time)
    .bind(Json(o))
    .execute(tx)
    .await?;
    Ok(())
}

/// Saves a changed opinion (its answer).
pub async fn update_opinion(tx: &mut PgConnection, o: &PlanOpinion) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE plan_opinions SET doc = $2 WHERE id = $1").bind(o.id).bind(Json(o)).execute(tx).await?;
    Ok(())
}

/// The plan an opinion belongs to (unlocked: the caller locks the plan next).
pub async fn plan_of_opinion(conn: &mut PgConnection, opinion_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(Uuid,)> =
        sqlx::query_as("SELECT plan_id FROM plan_opinions WHERE id = $1").bind(opinion_id).fetch_optional(conn).await?;
    Ok(row.map(|r| r.0))
}

/// Every opinion of a plan, oldest first (locked when `lock`).
pub async fn opinions(conn: &mut PgConnection, plan_id: Uuid, lock: bool) -> Result<Vec<PlanOpinion>, sqlx::Error> {
    let sql = if lock {
        "SELECT doc FROM plan_opinions WHERE plan_id = $1 ORDER BY create_time, id FOR UPDATE"
    } else {
        "SELECT doc FROM plan_opinions WHERE plan_id = $1 ORDER BY create_time, id"
    };
    let rows: Vec<(Json<PlanOpinion>,)> = sqlx::query_as(sql).bind(plan_id).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(Json(o),)| o).collect())
}

/// Every plan opinion (the report).
pub async fn all_opinions(conn: &mut PgConnection) -> Result<Vec<PlanOpinion>, sqlx::Error> {
    let rows: Vec<(Json<PlanOpinion>,)> =
        sqlx::query_as("SELECT doc FROM plan_opinions ORDER BY create_time, id").fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(Json(o),)| o).collect())
}

/// A page of a plan's opinions (by stage, then time), and the total.
pub async fn list_opinions(
    conn: &mut PgConnection,
    plan_id: Uuid,
    street_id: Option<&str>,
    stage: Option<PlanStage>,
    after: Option<(i32, Position)>,
    limit: i64,
) -> Result<(Vec<PlanOpinion>, i64), sqlx::Error> {
    // Stages sort by their order, not their names.
    const RANK: &str =
        "array_position(ARRAY['PLAN_STAGE_DRAFTING','PLAN_STAGE_CONSTRUCTION','PLAN_STAGE_ACCEPTANCE'], stage)";
    const WHERE: &str = "plan_id = $1 AND ($2::text IS NULL OR street_id = $2) AND ($3::text IS NULL OR stage = $3)";
    let (total,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM plan_opinions WHERE {WHERE}")))
            .bind(plan_id)
            .bind(street_id)
            .bind(stage.map(PlanStage::as_str))
            .fetch_one(&mut *conn)
            .await?;
    let rows: Vec<(Json<PlanOpinion>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT doc FROM plan_opinions WHERE {WHERE} \
         AND ($4::int IS NULL OR ({RANK}, create_time, id) > ($4, $5, $6)) ORDER BY {RANK}, create_time, id LIMIT $7"
    )))
    .bind(plan_id)
    .bind(street_id)
    .bind(stage.map(PlanStage::as_str))
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1.0))
    .bind(after.map(|a| a.1.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok((rows.into_iter().map(|(Json(o),)| o).collect(), total))
}

/// The rank [`list_opinions`] sorts stages by.
pub fn stage_rank(stage: PlanStage) -> i32 {
    match stage {
        PlanStage::Drafting => 1,
        PlanStage::Construction => 2,
        PlanStage::Acceptance => 3,
        PlanStage::Completed => 4,
    }
}
