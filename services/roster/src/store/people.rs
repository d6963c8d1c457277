//! People and secondments, and the look-ups dispatch makes on them.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Counted, page_sql, split_total};
use crate::domain::{
    policy::{Membership, PeopleScope},
    validate::{PersonInput, SecondmentInput},
};

/// A person as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PersonRow {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Employee number.
    pub employee_number: String,
    /// Department, for department staff.
    pub department_id: Option<String>,
    /// Station, if any.
    pub station_id: Option<String>,
    /// Street, for street staff.
    pub street_id: Option<String>,
    /// Qualifications (proto names).
    pub qualifications: Vec<String>,
    /// Position (proto name).
    pub position: String,
    /// Title.
    pub title: String,
    /// Phone, unmasked.
    pub phone: String,
    /// Active.
    pub active: bool,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
}

impl PersonRow {
    /// The organisation the person belongs to.
    pub fn membership(&self) -> Membership {
        match (&self.department_id, &self.street_id) {
            (Some(department_id), _) => {
                Membership::Department { department_id: department_id.clone(), station_id: self.station_id.clone() }
            }
            (None, street) => Membership::Street(street.clone().unwrap_or_default()),
        }
    }
}

/// A secondment as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SecondmentRow {
    /// Id.
    pub id: Uuid,
    /// Kind (proto name).
    pub kind: String,
    /// Resident.
    pub person_id: Option<Uuid>,
    /// Department.
    pub department_id: String,
    /// Street.
    pub street_id: String,
    /// Centre (proto name).
    pub center: String,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day.
    pub end_date: Option<NaiveDate>,
    /// Note.
    pub note: String,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
}

const PERSON: &str = "p.id, p.name, p.employee_number, p.department_id, p.station_id, p.street_id, p.qualifications, \
                      p.position, p.title, p.phone, p.active, p.create_time, p.update_time";
const SECONDMENT: &str =
    "id, kind, person_id, department_id, street_id, center, start_date, end_date, note, create_time, update_time";

fn split(m: &Membership) -> (Option<&str>, Option<&str>, Option<&str>) {
    match m {
        Membership::Department { department_id, station_id } => (Some(department_id), station_id.as_deref(), None),
        Membership::Street(street_id) => (None, None, Some(street_id)),
    }
}

/// Inserts a person; `Err` with a unique violation of `people_employee_number` when the
/// number is taken in that organisation.
pub async fn insert_person(conn: &mut PgConnection, id: Uuid, p: &PersonInput) -> sqlx::Result<PersonRow> {
    let (department, station, street) = split(&p.membership);
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO people AS p (id, name, employee_number, department_id, station_id, street_id, qualifications, \
         position, title, phone) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {PERSON}"
    )))
    .bind(id)
    .bind(&p.name)
    .bind(&p.employee_number)
    .bind(department)
    .bind(station)
    .bind(street)
    .bind(&p.qualifications)
    .bind(&p.position)
    .bind(&p.title)
    .bind(&p.phone)
    .fetch_one(conn)
    .await
}

/// Replaces a person's mutable fields (not their organisation).
pub async fn update_person(conn: &mut PgConnection, id: Uuid, p: &PersonInput) -> sqlx::Result<PersonRow> {
    let (_, station, _) = split(&p.membership);
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE people AS p SET name = $2, employee_number = $3, station_id = $4, qualifications = $5, position = $6, \
         title = $7, phone = $8, update_time = now() WHERE id = $1 RETURNING {PERSON}"
    )))
    .bind(id)
    .bind(&p.name)
    .bind(&p.employee_number)
    .bind(station)
    .bind(&p.qualifications)
    .bind(&p.position)
    .bind(&p.title)
    .bind(&p.phone)
    .fetch_one(conn)
    .await
}

/// One person.
pub async fn get_person(conn: &mut PgConnection, id: Uuid, for_update: bool) -> sqlx::Result<Option<PersonRow>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PERSON} FROM people p WHERE p.id = $1{lock}")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Several people, in no particular order.
pub async fn get_people(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<PersonRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PERSON} FROM people p WHERE p.id = ANY($1)")))
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// SQL condition on `p` for a [`PeopleScope`] whose kind is `$1` and id `$2`.
const SCOPE: &str = "($1 = 'all' \
    OR ($1 = 'department' AND p.department_id = $2) \
    OR ($1 = 'street' AND (p.street_id = $2 \
        OR p.station_id IN (SELECT s.id FROM stations s WHERE s.street_id = $2 OR $2 = ANY(s.served_street_ids)) \
        OR p.id IN (SELECT sc.person_id FROM secondments sc WHERE sc.street_id = $2 AND sc.person_id IS NOT NULL \
                    AND sc.start_date <= current_date AND (sc.end_date IS NULL OR sc.end_date >= current_date)))))";

fn scope_binds(scope: &PeopleScope) -> (&'static str, &str) {
    match scope {
        PeopleScope::All => ("all", ""),
        PeopleScope::Department(id) => ("department", id),
        PeopleScope::Street(id) => ("street", id),
        PeopleScope::Nobody => ("nobody", ""),
    }
}

/// Whether person `id` is within `scope`.
pub async fn in_scope(conn: &mut PgConnection, scope: &PeopleScope, id: Uuid) -> sqlx::Result<bool> {
    let (kind, scope_id) = scope_binds(scope);
    let (found,): (bool,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM people p WHERE p.id = $3 AND {SCOPE})"
    )))
    .bind(kind)
    .bind(scope_id)
    .bind(id)
    .fetch_one(conn)
    .await?;
    Ok(found)
}

/// Filters of [`list_people`].
#[derive(Debug, Default)]
pub struct PeopleFilter<'a> {
    /// Only this department.
    pub department_id: &'a str,
    /// Only this station.
    pub station_id: &'a str,
    /// Only this street's staff.
    pub street_id: &'a str,
    /// Only holders of this qualification (proto name).
    pub qualification: &'a str,
    /// Only this position (proto name).
    pub position: &'a str,
    /// Name or employee number contains this.
    pub query: &'a str,
    /// Inactive too.
    pub include_inactive: bool,
}

/// A page of people within `scope`, by name then id, after `after`.
pub async fn list_people(
    conn: &mut PgConnection,
    scope: &PeopleScope,
    f: &PeopleFilter<'_>,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<PersonRow>, i64)> {
    let (kind, scope_id) = scope_binds(scope);
    let sql = page_sql(
        &format!(
            "SELECT {PERSON} FROM people p WHERE {SCOPE} AND ($3 = '' OR p.department_id = $3) \
             AND ($4 = '' OR p.station_id = $4) AND ($5 = '' OR p.street_id = $5) \
             AND ($6 = '' OR $6 = ANY(p.qualifications)) AND ($7 = '' OR p.position = $7) \
             AND ($8 = '' OR strpos(p.name, $8) > 0 OR strpos(p.employee_number, $8) > 0) AND ($9 OR p.active)"
        ),
        "($10::text IS NULL OR (m.name, m.id) > ($10, $11))",
        "m.name, m.id",
        "$12",
    );
    let (after_name, after_id) = after.map_or((None, None), |(n, id)| (Some(n), Some(id)));
    let rows: Vec<Counted<PersonRow>> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(kind)
        .bind(scope_id)
        .bind(f.department_id)
        .bind(f.station_id)
        .bind(f.street_id)
        .bind(f.qualification)
        .bind(f.position)
        .bind(f.query)
        .bind(f.include_inactive)
        .bind(after_name)
        .bind(after_id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(split_total(rows))
}

/// Deactivates a person and ends their open secondments yesterday-or-today.
pub async fn deactivate_person(conn: &mut PgConnection, id: Uuid, reason: &str) -> sqlx::Result<PersonRow> {
    sqlx::query(
        "UPDATE secondments SET end_date = greatest(start_date, current_date), end_reason = $2, update_time = now() \
         WHERE person_id = $1 AND (end_date IS NULL OR end_date > current_date)",
    )
    .bind(id)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE people AS p SET active = false, deactivation_reason = $2, update_time = now() WHERE id = $1 \
         RETURNING {PERSON}"
    )))
    .bind(id)
    .bind(reason)
    .fetch_one(conn)
    .await
}

/// Whether the person heads an active station.
pub async fn heads_active_station(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id FROM stations WHERE active AND head_person_id = $1 LIMIT 1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(id,)| id))
}

/// One responder candidate: a person and how they relate to the street (1 seconded to
/// it, 2 of a station serving it, 3 elsewhere in the department).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResponderRow {
    /// The person.
    #[sqlx(flatten)]
    pub person: PersonRow,
    /// 1, 2 or 3.
    pub source: i32,
}

/// The active people of `department_id` holding `qualification` (any if empty), nearest to
/// `street_id` first, after `after`, with the total eligible.
pub async fn find_responders(
    conn: &mut PgConnection,
    department_id: &str,
    street_id: &str,
    qualification: &str,
    after: Option<(i32, String, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<ResponderRow>, i64)> {
    let sql = page_sql(
        "SELECT p.*, CASE \
           WHEN EXISTS (SELECT 1 FROM secondments sc WHERE sc.person_id = p.id AND sc.street_id = $2 \
                AND sc.start_date <= current_date AND (sc.end_date IS NULL OR sc.end_date >= current_date)) THEN 1 \
           WHEN p.station_id IN (SELECT s.id FROM stations s WHERE s.active \
                AND (s.street_id = $2 OR $2 = ANY(s.served_street_ids))) THEN 2 \
           ELSE 3 END AS source \
         FROM people p WHERE p.active AND p.department_id = $1 AND ($3 = '' OR $3 = ANY(p.qualifications))",
        "($4::int IS NULL OR (m.source, m.name, m.id) > ($4, $5, $6))",
        "m.source, m.name, m.id",
        "$7",
    );
    let (a_source, a_name, a_id) = after.map_or((None, None, None), |(s, n, id)| (Some(s), Some(n), Some(id)));
    let rows: Vec<Counted<ResponderRow>> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(department_id)
        .bind(street_id)
        .bind(qualification)
        .bind(a_source)
        .bind(a_name)
        .bind(a_id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(split_total(rows))
}

/// Inserts a secondment.
pub async fn insert_secondment(conn: &mut PgConnection, id: Uuid, s: &SecondmentInput) -> sqlx::Result<SecondmentRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO secondments (id, kind, person_id, department_id, street_id, center, start_date, end_date, note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {SECONDMENT}"
    )))
    .bind(id)
    .bind(&s.kind)
    .bind(s.person_id)
    .bind(&s.department_id)
    .bind(&s.street_id)
    .bind(&s.center)
    .bind(s.start_date)
    .bind(s.end_date)
    .bind(&s.note)
    .fetch_one(conn)
    .await
}

/// Replaces a secondment's centre, dates and note.
pub async fn update_secondment(conn: &mut PgConnection, id: Uuid, s: &SecondmentInput) -> sqlx::Result<SecondmentRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE secondments SET center = $2, start_date = $3, end_date = $4, note = $5, update_time = now() \
         WHERE id = $1 RETURNING {SECONDMENT}"
    )))
    .bind(id)
    .bind(&s.center)
    .bind(s.start_date)
    .bind(s.end_date)
    .bind(&s.note)
    .fetch_one(conn)
    .await
}

/// Ends a secondment on `end_date`.
pub async fn end_secondment(
    conn: &mut PgConnection,
    id: Uuid,
    end_date: NaiveDate,
    reason: &str,
) -> sqlx::Result<SecondmentRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE secondments SET end_date = $2, end_reason = $3, update_time = now() WHERE id = $1 RETURNING {SECONDMENT}"
    )))
    .bind(id)
    .bind(end_date)
    .bind(reason)
    .fetch_one(conn)
    .await
}

/// One secondment.
pub async fn get_secondment(
    conn: &mut PgConnection,
    id: Uuid,
    for_update: bool,
) -> sqlx::Result<Option<SecondmentRow>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {SECONDMENT} FROM secondments WHERE id = $1{lock}")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Another secondment of the person overlapping `[start, end]` (open ends are infinite).
pub async fn overlapping_secondment(
    conn: &mut PgConnection,
    person_id: Uuid,
    start: NaiveDate,
    end: Option<NaiveDate>,
    except: Option<Uuid>,
) -> sqlx::Result<Option<Uuid>> {
    let row: Option<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM secondments WHERE person_id = $1 AND ($4::uuid IS NULL OR id <> $4) \
         AND start_date <= coalesce($3, 'infinity'::date) AND coalesce(end_date, 'infinity'::date) >= $2 LIMIT 1",
    )
    .bind(person_id)
    .bind(start)
    .bind(end)
    .bind(except)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(id,)| id))
}

/// Filters of [`list_secondments`].
#[derive(Debug, Default)]
pub struct SecondmentFilter<'a> {
    /// Only this street.
    pub street_id: &'a str,
    /// Only this department.
    pub department_id: &'a str,
    /// Only this person.
    pub person_id: Option<Uuid>,
    /// Only this kind (proto name).
    pub kind: &'a str,
    /// Only this centre (proto name).
    pub center: &'a str,
    /// Only those active on this day (default today unless inactive are included).
    pub active_on: Option<NaiveDate>,
    /// Ended and future ones too.
    pub include_inactive: bool,
}

/// A page of secondments by start date then id.
pub async fn list_secondments(
    conn: &mut PgConnection,
    f: &SecondmentFilter<'_>,
    after: Option<(NaiveDate, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<SecondmentRow>, i64)> {
    let sql = page_sql(
        &format!(
            "SELECT {SECONDMENT} FROM secondments WHERE ($1 = '' OR street_id = $1) AND ($2 = '' OR department_id = $2) \
             AND ($3::uuid IS NULL OR person_id = $3) AND ($4 = '' OR kind = $4) AND ($5 = '' OR center = $5) \
             AND (($6::date IS NULL AND $7) OR (start_date <= coalesce($6, current_date) \
                  AND (end_date IS NULL OR end_date >= coalesce($6, current_date))))"
        ),
        "($8::date IS NULL OR (m.start_date, m.id) > ($8, $9))",
        "m.start_date, m.id",
        "$10",
    );
    let (after_date, after_id) = after.map_or((None, None), |(d, id)| (Some(d), Some(id)));
    let rows: Vec<Counted<SecondmentRow>> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(f.street_id)
        .bind(f.department_id)
        .bind(f.person_id)
        .bind(f.kind)
        .bind(f.center)
        .bind(f.active_on)
        .bind(f.include_inactive)
        .bind(after_date)
        .bind(after_id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(split_total(rows))
}
