//! Streets, communities and grids.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{AreaColumns, Counted, boundary_json, page_sql, split_total};
use crate::domain::validate::{CommunityInput, GridInput, StreetInput};

/// A street as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StreetRow {
    /// Code.
    pub id: String,
    /// Name.
    pub name: String,
    /// Area.
    #[sqlx(flatten)]
    pub area: AreaColumns,
    /// Active.
    pub active: bool,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
}

/// A community as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommunityRow {
    /// Code.
    pub id: String,
    /// Street.
    pub street_id: String,
    /// Name.
    pub name: String,
    /// Area.
    #[sqlx(flatten)]
    pub area: AreaColumns,
    /// Active.
    pub active: bool,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
}

/// A grid as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GridRow {
    /// Code.
    pub id: String,
    /// Community.
    pub community_id: String,
    /// Street of the community.
    pub street_id: String,
    /// Name.
    pub name: String,
    /// Area.
    #[sqlx(flatten)]
    pub area: AreaColumns,
    /// Grid workers.
    pub grid_worker_person_ids: Vec<Uuid>,
    /// Active.
    pub active: bool,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
}

const STREET: &str = "id, name, center_lat, center_lng, radius_meters, boundary, active, create_time, update_time";
const COMMUNITY: &str =
    "id, street_id, name, center_lat, center_lng, radius_meters, boundary, active, create_time, update_time";
const GRID: &str = "id, community_id, street_id, name, center_lat, center_lng, radius_meters, boundary, \
                    grid_worker_person_ids, active, create_time, update_time";

/// Inserts a street; `None` when the code is taken.
pub async fn insert_street(conn: &mut PgConnection, s: &StreetInput) -> sqlx::Result<Option<StreetRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO streets (id, name, center_lat, center_lng, radius_meters, boundary) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO NOTHING RETURNING {STREET}"
    )))
    .bind(&s.id)
    .bind(&s.name)
    .bind(s.area.center.lat)
    .bind(s.area.center.lng)
    .bind(s.area.radius_meters)
    .bind(boundary_json(&s.area))
    .fetch_optional(conn)
    .await
}

/// Replaces a street's mutable fields.
pub async fn update_street(conn: &mut PgConnection, s: &StreetInput) -> sqlx::Result<StreetRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE streets SET name = $2, center_lat = $3, center_lng = $4, radius_meters = $5, boundary = $6, \
         update_time = now() WHERE id = $1 RETURNING {STREET}"
    )))
    .bind(&s.id)
    .bind(&s.name)
    .bind(s.area.center.lat)
    .bind(s.area.center.lng)
    .bind(s.area.radius_meters)
    .bind(boundary_json(&s.area))
    .fetch_one(conn)
    .await
}

/// One street, with a row lock when `for_update`.
pub async fn get_street(conn: &mut PgConnection, id: &str, for_update: bool) -> sqlx::Result<Option<StreetRow>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {STREET} FROM streets WHERE id = $1{lock}")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// A page of streets after `after` (by code), and the total matching.
pub async fn list_streets(
    conn: &mut PgConnection,
    include_inactive: bool,
    after: &str,
    limit: i64,
) -> sqlx::Result<(Vec<StreetRow>, i64)> {
    let sql = page_sql(&format!("SELECT {STREET} FROM streets WHERE ($1 OR active)"), "m.id > $2", "m.id", "$3");
    let rows: Vec<Counted<StreetRow>> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(include_inactive).bind(after).bind(limit).fetch_all(conn).await?;
    Ok(split_total(rows))
}

/// Every active street (for resolving locations: a district has dozens).
pub async fn active_streets(conn: &mut PgConnection) -> sqlx::Result<Vec<StreetRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {STREET} FROM streets WHERE active ORDER BY id")))
        .fetch_all(conn)
        .await
}

/// Marks a record of `table` inactive with a reason. `table` is one of ours, never input.
pub async fn deactivate(conn: &mut PgConnection, table: &'static str, id: &str, reason: &str) -> sqlx::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET active = false, deactivation_reason = $2, update_time = now() WHERE id = $1"
    )))
    .bind(id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many active rows of `table` have `column` = `id` (in-use checks before deactivation).
pub async fn count_active(
    conn: &mut PgConnection,
    table: &'static str,
    column: &'static str,
    id: &str,
) -> sqlx::Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table} WHERE active AND {column} = $1")))
            .bind(id)
            .fetch_one(conn)
            .await?;
    Ok(n)
}

/// Inserts a community; `None` when the code is taken.
pub async fn insert_community(conn: &mut PgConnection, c: &CommunityInput) -> sqlx::Result<Option<CommunityRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO communities (id, street_id, name, center_lat, center_lng, radius_meters, boundary) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING RETURNING {COMMUNITY}"
    )))
    .bind(&c.id)
    .bind(&c.street_id)
    .bind(&c.name)
    .bind(c.area.center.lat)
    .bind(c.area.center.lng)
    .bind(c.area.radius_meters)
    .bind(boundary_json(&c.area))
    .fetch_optional(conn)
    .await
}

/// Replaces a community's mutable fields.
pub async fn update_community(conn: &mut PgConnection, c: &CommunityInput) -> sqlx::Result<CommunityRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE communities SET name = $2, center_lat = $3, center_lng = $4, radius_meters = $5, boundary = $6, \
         update_time = now() WHERE id = $1 RETURNING {COMMUNITY}"
    )))
    .bind(&c.id)
    .bind(&c.name)
    .bind(c.area.center.lat)
    .bind(c.area.center.lng)
    .bind(c.area.radius_meters)
    .bind(boundary_json(&c.area))
    .fetch_one(conn)
    .await
}

/// One community.
pub async fn get_community(conn: &mut PgConnection, id: &str, for_update: bool) -> sqlx::Result<Option<CommunityRow>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COMMUNITY} FROM communities WHERE id = $1{lock}")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// A page of communities, optionally of one street.
pub async fn list_communities(
    conn: &mut PgConnection,
    street_id: &str,
    include_inactive: bool,
    after: &str,
    limit: i64,
) -> sqlx::Result<(Vec<CommunityRow>, i64)> {
    let sql = page_sql(
        &format!("SELECT {COMMUNITY} FROM communities WHERE ($1 = '' OR street_id = $1) AND ($2 OR active)"),
        "m.id > $3",
        "m.id",
        "$4",
    );
    let rows: Vec<Counted<CommunityRow>> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(street_id)
        .bind(include_inactive)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(split_total(rows))
}

/// The active communities of a street.
pub async fn active_communities(conn: &mut PgConnection, street_id: &str) -> sqlx::Result<Vec<CommunityRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COMMUNITY} FROM communities WHERE active AND street_id = $1 ORDER BY id"
    )))
    .bind(street_id)
    .fetch_all(conn)
    .await
}

/// Inserts a grid; `None` when the code is taken.
pub async fn insert_grid(conn: &mut PgConnection, g: &GridInput, street_id: &str) -> sqlx::Result<Option<GridRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO grids (id, community_id, street_id, name, center_lat, center_lng, radius_meters, boundary, \
         grid_worker_person_ids) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING RETURNING {GRID}"
    )))
    .bind(&g.id)
    .bind(&g.community_id)
    .bind(street_id)
    .bind(&g.name)
    .bind(g.area.center.lat)
    .bind(g.area.center.lng)
    .bind(g.area.radius_meters)
    .bind(boundary_json(&g.area))
    .bind(&g.grid_workers)
    .fetch_optional(conn)
    .await
}

/// Replaces a grid's mutable fields.
pub async fn update_grid(conn: &mut PgConnection, g: &GridInput) -> sqlx::Result<GridRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE grids SET name = $2, center_lat = $3, center_lng = $4, radius_meters = $5, boundary = $6, \
         grid_worker_person_ids = $7, update_time = now() WHERE id = $1 RETURNING {GRID}"
    )))
    .bind(&g.id)
    .bind(&g.name)
    .bind(g.area.center.lat)
    .bind(g.area.center.lng)
    .bind(g.area.radius_meters)
    .bind(boundary_json(&g.area))
    .bind(&g.grid_workers)
    .fetch_one(conn)
    .await
}

/// One grid.
pub async fn get_grid(conn: &mut PgConnection, id: &str, for_update: bool) -> sqlx::Result<Option<GridRow>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {GRID} FROM grids WHERE id = $1{lock}")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Filters of [`list_grids`].
#[derive(Debug, Default)]
pub struct GridFilter<'a> {
    /// Only this street.
    pub street_id: &'a str,
    /// Only this community.
    pub community_id: &'a str,
    /// Only grids this person works.
    pub grid_worker: Option<Uuid>,
    /// Inactive too.
    pub include_inactive: bool,
}

/// A page of grids.
pub async fn list_grids(
    conn: &mut PgConnection,
    f: &GridFilter<'_>,
    after: &str,
    limit: i64,
) -> sqlx::Result<(Vec<GridRow>, i64)> {
    let sql = page_sql(
        &format!(
            "SELECT {GRID} FROM grids WHERE ($1 = '' OR street_id = $1) AND ($2 = '' OR community_id = $2) \
             AND ($3::uuid IS NULL OR $3 = ANY(grid_worker_person_ids)) AND ($4 OR active)"
        ),
        "m.id > $5",
        "m.id",
        "$6",
    );
    let rows: Vec<Counted<GridRow>> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(f.street_id)
        .bind(f.community_id)
        .bind(f.grid_worker)
        .bind(f.include_inactive)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(split_total(rows))
}

/// The active grids of a community.
pub async fn active_grids(conn: &mut PgConnection, community_id: &str) -> sqlx::Result<Vec<GridRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {GRID} FROM grids WHERE active AND community_id = $1 ORDER BY id"
    )))
    .bind(community_id)
    .fetch_all(conn)
    .await
}
