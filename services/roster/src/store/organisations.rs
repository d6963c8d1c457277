//! Departments and their stations.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Counted, page_sql, split_total};
use crate::domain::validate::{DepartmentInput, StationInput};

/// A department as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DepartmentRow {
    /// Code.
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind (proto name).
    pub kind: String,
    /// Active.
    pub active: bool,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
}

/// A station as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StationRow {
    /// Code.
    pub id: String,
    /// Department.
    pub department_id: String,
    /// Street it is located in.
    pub street_id: String,
    /// Further streets served.
    pub served_street_ids: Vec<String>,
    /// Name.
    pub name: String,
    /// Kind (proto name).
    pub kind: String,
    /// Head.
    pub head_person_id: Option<Uuid>,
    /// Head on the Party Working Committee.
    pub head_on_party_working_committee: bool,
    /// Why the head is not on the committee, if recorded.
    pub committee_note: String,
    /// Active.
    pub active: bool,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
}

const DEPARTMENT: &str = "id, name, kind, active, create_time, update_time";
const STATION: &str = "id, department_id, street_id, served_street_ids, name, kind, head_person_id, \
                       head_on_party_working_committee, committee_note, active, create_time, update_time";

/// Inserts a department; `None` when the code is taken.
pub async fn insert_department(conn: &mut PgConnection, d: &DepartmentInput) -> sqlx::Result<Option<DepartmentRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO departments (id, name, kind) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING {DEPARTMENT}"
    )))
    .bind(&d.id)
    .bind(&d.name)
    .bind(&d.kind)
    .fetch_optional(conn)
    .await
}

/// Replaces a department's mutable fields.
pub async fn update_department(conn: &mut PgConnection, d: &DepartmentInput) -> sqlx::Result<DepartmentRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE departments SET name = $2, kind = $3, update_time = now() WHERE id = $1 RETURNING {DEPARTMENT}"
    )))
    .bind(&d.id)
    .bind(&d.name)
    .bind(&d.kind)
    .fetch_one(conn)
    .await
}

/// One department.
pub async fn get_department(
    conn: &mut PgConnection,
    id: &str,
    for_update: bool,
) -> sqlx::Result<Option<DepartmentRow>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {DEPARTMENT} FROM departments WHERE id = $1{lock}")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// A page of departments.
pub async fn list_departments(
    conn: &mut PgConnection,
    kind: &str,
    include_inactive: bool,
    after: &str,
    limit: i64,
) -> sqlx::Result<(Vec<DepartmentRow>, i64)> {
    let sql = page_sql(
        &format!("SELECT {DEPARTMENT} FROM departments WHERE ($1 = '' OR kind = $1) AND ($2 OR active)"),
        "m.id > $3",
        "m.id",
        "$4",
    );
    let rows: Vec<Counted<DepartmentRow>> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(kind)
        .bind(include_inactive)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(split_total(rows))
}

/// Inserts a station; `None` when the code is taken.
pub async fn insert_station(conn: &mut PgConnection, s: &StationInput) -> sqlx::Result<Option<StationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO stations (id, department_id, street_id, served_street_ids, name, kind, head_person_id, \
         head_on_party_working_committee, committee_note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO NOTHING RETURNING {STATION}"
    )))
    .bind(&s.id)
    .bind(&s.department_id)
    .bind(&s.street_id)
    .bind(&s.served_street_ids)
    .bind(&s.name)
    .bind(&s.kind)
    .bind(s.head_person_id)
    .bind(s.head_on_party_working_committee)
    .bind(&s.committee_note)
    .fetch_optional(conn)
    .await
}

/// Replaces a station's mutable fields.
pub async fn update_station(conn: &mut PgConnection, s: &StationInput) -> sqlx::Result<StationRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE stations SET served_street_ids = $2, name = $3, kind = $4, head_person_id = $5, \
         head_on_party_working_committee = $6, committee_note = $7, update_time = now() WHERE id = $1 \
         RETURNING {STATION}"
    )))
    .bind(&s.id)
    .bind(&s.served_street_ids)
    .bind(&s.name)
    .bind(&s.kind)
    .bind(s.head_person_id)
    .bind(s.head_on_party_working_committee)
    .bind(&s.committee_note)
    .fetch_one(conn)
    .await
}

/// One station.
pub async fn get_station(conn: &mut PgConnection, id: &str, for_update: bool) -> sqlx::Result<Option<StationRow>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {STATION} FROM stations WHERE id = $1{lock}")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Filters of [`list_stations`].
#[derive(Debug, Default)]
pub struct StationFilter<'a> {
    /// Only this department.
    pub department_id: &'a str,
    /// Only stations located in or serving this street.
    pub street_id: &'a str,
    /// Only this kind (proto name).
    pub kind: &'a str,
    /// Inactive too.
    pub include_inactive: bool,
}

/// A page of stations.
pub async fn list_stations(
    conn: &mut PgConnection,
    f: &StationFilter<'_>,
    after: &str,
    limit: i64,
) -> sqlx::Result<(Vec<StationRow>, i64)> {
    let sql = page_sql(
        &format!(
            "SELECT {STATION} FROM stations WHERE ($1 = '' OR department_id = $1) \
             AND ($2 = '' OR street_id = $2 OR $2 = ANY(served_street_ids)) AND ($3 = '' OR kind = $3) AND ($4 OR active)"
        ),
        "m.id > $5",
        "m.id",
        "$6",
    );
    let rows: Vec<Counted<StationRow>> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(f.department_id)
        .bind(f.street_id)
        .bind(f.kind)
        .bind(f.include_inactive)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(split_total(rows))
}

/// The active station of a department serving a street: one located there wins over one
/// that only serves it; ties go to the lowest code.
pub async fn find_station(
    conn: &mut PgConnection,
    department_id: &str,
    street_id: &str,
) -> sqlx::Result<Option<StationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {STATION} FROM stations WHERE active AND department_id = $1 \
         AND (street_id = $2 OR $2 = ANY(served_street_ids)) ORDER BY (street_id = $2) DESC, id LIMIT 1"
    )))
    .bind(department_id)
    .bind(street_id)
    .fetch_optional(conn)
    .await
}
