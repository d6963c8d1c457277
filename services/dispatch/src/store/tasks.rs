//! Consultations (协商), tasks (任务), progress notes (进度) and feedback (反馈).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, QueryBuilder, types::Json};
use uuid::Uuid;

use super::Scope;
use crate::domain::model::{Consultation, Feedback, ProgressReport, Task};

/// Inserts a consultation.
pub async fn insert_consultation(tx: &mut PgConnection, c: &Consultation) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO consultations (id, case_id, created_at, doc) VALUES ($1, $2, $3, $4)")
        .bind(c.id)
        .bind(c.case_id)
        .bind(c.create_time)
        .bind(Json(c))
        .execute(tx)
        .await?;
    Ok(())
}

/// A case's consultations, oldest first.
pub async fn consultations(conn: &mut PgConnection, case_id: Uuid) -> Result<Vec<Consultation>, sqlx::Error> {
    let rows: Vec<(Json<Consultation>,)> =
        sqlx::query_as("SELECT doc FROM consultations WHERE case_id = $1 ORDER BY created_at, id")
            .bind(case_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|r| r.0.0).collect())
}

/// Inserts a task.
pub async fn insert(tx: &mut PgConnection, t: &Task) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tasks (id, case_id, call_id, department_id, kind, state, overdue, window_end, created_at, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(t.id)
    .bind(t.case_id)
    .bind(t.call_id)
    .bind(&t.department_id)
    .bind(t.kind.as_str())
    .bind(t.state.as_str())
    .bind(t.overdue)
    .bind(t.window_end)
    .bind(t.create_time)
    .bind(Json(t))
    .execute(tx)
    .await?;
    Ok(())
}

/// Saves a changed task (its progress and feedback are saved apart).
pub async fn update(tx: &mut PgConnection, t: &Task) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasks SET state = $2, overdue = $3, doc = $4 WHERE id = $1")
        .bind(t.id)
        .bind(t.state.as_str())
        .bind(t.overdue)
        .bind(Json(t))
        .execute(tx)
        .await?;
    Ok(())
}

async fn complete(conn: &mut PgConnection, mut t: Task) -> Result<Task, sqlx::Error> {
    let progress: Vec<(Json<ProgressReport>,)> =
        sqlx::query_as("SELECT doc FROM progress_reports WHERE task_id = $1 ORDER BY created_at, id")
            .bind(t.id)
            .fetch_all(&mut *conn)
            .await?;
    t.progress_reports = progress.into_iter().map(|r| r.0.0).collect();
    t.feedback = feedback_of(conn, t.id).await?;
    Ok(t)
}

/// A task with its progress and feedback.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Task>, sqlx::Error> {
    let sql =
        if lock { "SELECT doc FROM tasks WHERE id = $1 FOR UPDATE" } else { "SELECT doc FROM tasks WHERE id = $1" };
    let row: Option<(Json<Task>,)> = sqlx::query_as(sql).bind(id).fetch_optional(&mut *conn).await?;
    match row {
        Some((doc,)) => Ok(Some(complete(conn, doc.0).await?)),
        None => Ok(None),
    }
}

/// The case a task belongs to.
pub async fn case_of(conn: &mut PgConnection, id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(Uuid,)> =
        sqlx::query_as("SELECT case_id FROM tasks WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(row.map(|r| r.0))
}

/// A case's tasks (with progress and feedback), by window end.
pub async fn of_case(conn: &mut PgConnection, case_id: Uuid) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<(Json<Task>,)> = sqlx::query_as("SELECT doc FROM tasks WHERE case_id = $1 ORDER BY window_end, id")
        .bind(case_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut tasks = Vec::with_capacity(rows.len());
    for (doc,) in rows {
        tasks.push(complete(conn, doc.0).await?);
    }
    Ok(tasks)
}

/// A case's tasks without their progress and feedback: what settling the case needs.
pub async fn bare_of_case(conn: &mut PgConnection, case_id: Uuid) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<(Json<Task>,)> =
        sqlx::query_as("SELECT doc FROM tasks WHERE case_id = $1").bind(case_id).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| r.0.0).collect())
}

/// ListTasks filters.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// Case.
    pub case_id: Option<Uuid>,
    /// Department, or empty.
    pub department_id: String,
    /// Call.
    pub call_id: Option<Uuid>,
    /// `TASK_STATE_*`; empty: any.
    pub states: Vec<String>,
    /// `TASK_KIND_*`, or empty.
    pub kind: String,
    /// Only overdue.
    pub overdue_only: bool,
    /// Window end at or after.
    pub window_end_from: Option<DateTime<Utc>>,
    /// Window end before.
    pub window_end_to: Option<DateTime<Utc>>,
}

fn filtered(select: &str, scope: &Scope, f: &TaskQuery) -> QueryBuilder<sqlx::Postgres> {
    let mut q = QueryBuilder::new(select);
    q.push(" FROM tasks t JOIN cases c ON c.id = t.case_id WHERE true");
    match scope {
        Scope::Department(d) => {
            q.push(" AND t.department_id = ").push_bind(d.clone());
        }
        other => other.push(&mut q),
    }
    if let Some(id) = f.case_id {
        q.push(" AND t.case_id = ").push_bind(id);
    }
    if !f.department_id.is_empty() {
        q.push(" AND t.department_id = ").push_bind(f.department_id.clone());
    }
    if let Some(id) = f.call_id {
        q.push(" AND t.call_id = ").push_bind(id);
    }
    if !f.states.is_empty() {
        q.push(" AND t.state = ANY(").push_bind(f.states.clone()).push(")");
    }
    if !f.kind.is_empty() {
        q.push(" AND t.kind = ").push_bind(f.kind.clone());
    }
    if f.overdue_only {
        q.push(" AND t.overdue");
    }
    if let Some(from) = f.window_end_from {
        q.push(" AND t.window_end >= ").push_bind(from);
    }
    if let Some(to) = f.window_end_to {
        q.push(" AND t.window_end < ").push_bind(to);
    }
    q
}

/// One page of tasks by window end, earliest first, and the total.
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    f: &TaskQuery,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<(Vec<Task>, i64), sqlx::Error> {
    let (total,): (i64,) = filtered("SELECT count(*)", scope, f).build_query_as().fetch_one(&mut *conn).await?;
    let mut q = filtered("SELECT t.doc", scope, f);
    if let Some((t, id)) = after {
        q.push(" AND (t.window_end, t.id) > (").push_bind(t).push(", ").push_bind(id).push(")");
    }
    q.push(" ORDER BY t.window_end, t.id LIMIT ").push_bind(limit);
    let rows: Vec<(Json<Task>,)> = q.build_query_as().fetch_all(&mut *conn).await?;
    let mut tasks = Vec::with_capacity(rows.len());
    for (doc,) in rows {
        tasks.push(complete(conn, doc.0).await?);
    }
    Ok((tasks, total))
}

/// Inserts a progress note.
pub async fn insert_progress(tx: &mut PgConnection, task_id: Uuid, p: &ProgressReport) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO progress_reports (id, task_id, created_at, doc) VALUES ($1, $2, $3, $4)")
        .bind(p.id)
        .bind(task_id)
        .bind(p.create_time)
        .bind(Json(p))
        .execute(tx)
        .await?;
    Ok(())
}

/// Inserts or saves a feedback.
pub async fn save_feedback(tx: &mut PgConnection, f: &Feedback) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO feedback (id, task_id, case_id, state, created_at, doc) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, doc = EXCLUDED.doc",
    )
    .bind(f.id)
    .bind(f.task_id)
    .bind(f.case_id)
    .bind(f.state.as_str())
    .bind(f.submit_time)
    .bind(Json(f))
    .execute(tx)
    .await?;
    Ok(())
}

/// A feedback.
pub async fn feedback(conn: &mut PgConnection, id: Uuid) -> Result<Option<Feedback>, sqlx::Error> {
    let row: Option<(Json<Feedback>,)> =
        sqlx::query_as("SELECT doc FROM feedback WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(row.map(|r| r.0.0))
}

/// A task's feedback, oldest first.
pub async fn feedback_of(conn: &mut PgConnection, task_id: Uuid) -> Result<Vec<Feedback>, sqlx::Error> {
    let rows: Vec<(Json<Feedback>,)> =
        sqlx::query_as("SELECT doc FROM feedback WHERE task_id = $1 ORDER BY created_at, id")
            .bind(task_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|r| r.0.0).collect())
}
