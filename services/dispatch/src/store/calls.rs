//! Calls (呼叫) and their designations (拟定人选, with check-in results).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, QueryBuilder, types::Json};
use uuid::Uuid;

use super::Scope;
use crate::domain::model::{Call, CallState, Designation};

/// Inserts a new call (designations, if any, apart).
pub async fn insert(tx: &mut PgConnection, call: &Call) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO calls (id, case_id, street_id, department_id, state, sign_deadline, report_time, \
         check_in_close_time, check_in_closed, contact_shared, created_at, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(call.id)
    .bind(call.case_id)
    .bind(&call.street_id)
    .bind(&call.department_id)
    .bind(call.state.as_str())
    .bind(call.sign_deadline)
    .bind(call.report_time)
    .bind(call.check_in_close_time)
    .bind(call.check_in_closed)
    .bind(call.contact_shared)
    .bind(call.create_time)
    .bind(Json(call))
    .execute(tx)
    .await?;
    Ok(())
}

/// Withdraws every contact share (推送群众联系方式) of `case_id`'s calls, when the reporter
/// asks for confidentiality; returns the departments that lose the contact.
pub async fn revoke_contact_shares(tx: &mut PgConnection, case_id: uuid::Uuid) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "UPDATE calls SET contact_shared = false, \
         doc = jsonb_set(jsonb_set(doc, '{contact_shared}', 'false'), '{contact_share_time}', 'null') \
         WHERE case_id = $1 AND contact_shared RETURNING department_id",
    )
    .bind(case_id)
    .fetch_all(tx)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Saves a changed call, designations included.
pub async fn update(tx: &mut PgConnection, call: &Call) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE calls SET state = $2, check_in_closed = $3, contact_shared = $4, doc = $5 WHERE id = $1")
        .bind(call.id)
        .bind(call.state.as_str())
        .bind(call.check_in_closed)
        .bind(call.contact_shared)
        .bind(Json(call))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM designations WHERE call_id = $1").bind(call.id).execute(&mut *tx).await?;
    for (position, d) in call.designations.iter().enumerate() {
        sqlx::query(
            "INSERT INTO designations (call_id, person_id, position, check_in_status, doc) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(call.id)
        .bind(&d.person.id)
        .bind(position as i32)
        .bind(d.check_in_status.as_str())
        .bind(Json(d))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

async fn with_designations(conn: &mut PgConnection, mut call: Call) -> Result<Call, sqlx::Error> {
    let rows: Vec<(Json<Designation>,)> =
        sqlx::query_as("SELECT doc FROM designations WHERE call_id = $1 ORDER BY position")
            .bind(call.id)
            .fetch_all(conn)
            .await?;
    call.designations = rows.into_iter().map(|r| r.0.0).collect();
    Ok(call)
}

/// A call; `lock` locks its row (the case row should be locked first).
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Call>, sqlx::Error> {
    let sql =
        if lock { "SELECT doc FROM calls WHERE id = $1 FOR UPDATE" } else { "SELECT doc FROM calls WHERE id = $1" };
    let row: Option<(Json<Call>,)> = sqlx::query_as(sql).bind(id).fetch_optional(&mut *conn).await?;
    match row {
        Some((doc,)) => Ok(Some(with_designations(conn, doc.0).await?)),
        None => Ok(None),
    }
}

/// The case a call belongs to.
pub async fn case_of(conn: &mut PgConnection, id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(Uuid,)> =
        sqlx::query_as("SELECT case_id FROM calls WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(row.map(|r| r.0))
}

/// A case's calls, in call order, with their designations (two statements however many
/// calls there are).
pub async fn of_case(conn: &mut PgConnection, case_id: Uuid) -> Result<Vec<Call>, sqlx::Error> {
    let rows: Vec<(Json<Call>,)> = sqlx::query_as("SELECT doc FROM calls WHERE case_id = $1 ORDER BY created_at, id")
        .bind(case_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut calls: Vec<Call> = rows.into_iter().map(|r| r.0.0).collect();
    if calls.is_empty() {
        return Ok(calls);
    }
    let ids: Vec<Uuid> = calls.iter().map(|c| c.id).collect();
    let designations: Vec<(Uuid, Json<Designation>)> =
        sqlx::query_as("SELECT call_id, doc FROM designations WHERE call_id = ANY($1) ORDER BY call_id, position")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
    for (call_id, doc) in designations {
        if let Some(call) = calls.iter_mut().find(|c| c.id == call_id) {
            call.designations.push(doc.0);
        }
    }
    Ok(calls)
}

/// What settling a case needs of its calls: each one's state and whether its check-in
/// window has closed.
pub async fn states_of_case(conn: &mut PgConnection, case_id: Uuid) -> Result<Vec<(CallState, bool)>, sqlx::Error> {
    let rows: Vec<(String, bool)> = sqlx::query_as("SELECT state, check_in_closed FROM calls WHERE case_id = $1")
        .bind(case_id)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().filter_map(|(state, closed)| CallState::parse(&state).map(|s| (s, closed))).collect())
}

/// ListCalls filters.
#[derive(Debug, Clone, Default)]
pub struct CallQuery {
    /// Case, if any.
    pub case_id: Option<Uuid>,
    /// Department, or empty.
    pub department_id: String,
    /// Street, or empty.
    pub street_id: String,
    /// `CALL_STATE_*`; empty: any.
    pub states: Vec<String>,
    /// Designated person, or empty.
    pub designated_person_id: String,
    /// Started at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Started before.
    pub created_to: Option<DateTime<Utc>>,
}

fn filtered(select: &str, scope: &Scope, f: &CallQuery) -> QueryBuilder<sqlx::Postgres> {
    let mut q = QueryBuilder::new(select);
    q.push(" FROM calls k JOIN cases c ON c.id = k.case_id WHERE true");
    match scope {
        // A department sees its own calls, not every call of the cases it is in.
        Scope::Department(d) => {
            q.push(" AND k.department_id = ").push_bind(d.clone());
        }
        Scope::Person(p) => {
            q.push(" AND EXISTS (SELECT 1 FROM designations g WHERE g.call_id = k.id AND g.person_id = ")
                .push_bind(p.clone())
                .push(")");
        }
        other => other.push(&mut q),
    }
    if let Some(case_id) = f.case_id {
        q.push(" AND k.case_id = ").push_bind(case_id);
    }
    if !f.department_id.is_empty() {
        q.push(" AND k.department_id = ").push_bind(f.department_id.clone());
    }
    if !f.street_id.is_empty() {
        q.push(" AND k.street_id = ").push_bind(f.street_id.clone());
    }
    if !f.states.is_empty() {
        q.push(" AND k.state = ANY(").push_bind(f.states.clone()).push(")");
    }
    if !f.designated_person_id.is_empty() {
        q.push(" AND EXISTS (SELECT 1 FROM designations h WHERE h.call_id = k.id AND h.person_id = ")
            .push_bind(f.designated_person_id.clone())
            .push(")");
    }
    if let Some(from) = f.created_from {
        q.push(" AND k.created_at >= ").push_bind(from);
    }
    if let Some(to) = f.created_to {
        q.push(" AND k.created_at < ").push_bind(to);
    }
    q
}

/// One page of calls, newest first, and the total.
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    f: &CallQuery,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<(Vec<Call>, i64), sqlx::Error> {
    let (total,): (i64,) = filtered("SELECT count(*)", scope, f).build_query_as().fetch_one(&mut *conn).await?;
    let mut q = filtered("SELECT k.doc", scope, f);
    if let Some((t, id)) = after {
        q.push(" AND (k.created_at, k.id) < (").push_bind(t).push(", ").push_bind(id).push(")");
    }
    q.push(" ORDER BY k.created_at DESC, k.id DESC LIMIT ").push_bind(limit);
    let rows: Vec<(Json<Call>,)> = q.build_query_as().fetch_all(&mut *conn).await?;
    let mut calls = Vec::with_capacity(rows.len());
    for (doc,) in rows {
        calls.push(with_designations(conn, doc.0).await?);
    }
    Ok((calls, total))
}
