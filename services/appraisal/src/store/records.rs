//! The records the feed builds: the cursor, consumed events, one record per call, regular
//! tasks, the current rating per (case, department) and its history, and incidents. Only
//! [`crate::consumer`] writes here, inside the transaction that advances the cursor.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::score::{self, TaskFacts};

/// The cursor row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CursorRow {
    /// The last event applied.
    pub last_sequence: i64,
    /// Its occur_time.
    pub last_event_time: Option<DateTime<Utc>>,
    /// When it was applied.
    pub last_apply_time: Option<DateTime<Utc>>,
}

/// Reads the cursor; with `lock`, holds it until the transaction ends so that concurrent
/// appliers (the live consumer, a rebuild) take turns.
pub async fn cursor(conn: &mut PgConnection, lock: bool) -> sqlx::Result<CursorRow> {
    let sql = if lock {
        "SELECT last_sequence, last_event_time, last_apply_time FROM feed_cursor FOR UPDATE"
    } else {
        "SELECT last_sequence, last_event_time, last_apply_time FROM feed_cursor"
    };
    sqlx::query_as(sql).fetch_one(conn).await
}

/// Moves the cursor.
pub async fn advance(conn: &mut PgConnection, sequence: i64, event_time: Option<DateTime<Utc>>) -> sqlx::Result<()> {
    sqlx::query("UPDATE feed_cursor SET last_sequence = $1, last_event_time = $2, last_apply_time = now()")
        .bind(sequence)
        .bind(event_time)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every table the feed builds, the cursor last.
const DERIVED: [&str; 7] =
    ["consumed_events", "call_records", "task_records", "rating_records", "rating_history", "incidents", "feed_cursor"];

/// The schema the derived tables live in (read before [`shadow`] hides them).
pub async fn schema(conn: &mut PgConnection) -> sqlx::Result<String> {
    let (schema,): (String,) = sqlx::query_as("SELECT current_schema()::text").fetch_one(conn).await?;
    Ok(schema)
}

/// Creates empty temporary copies of every derived table, the cursor at 0, dropped at
/// commit. Temporary tables come first in name resolution, so every statement this
/// connection prepares afterwards (the whole of [`crate::consumer::apply`]) reads and writes
/// the copies while the live consumer keeps working on the real ones: a rebuild replays
/// into them without holding the live cursor.
pub async fn shadow(conn: &mut PgConnection, schema: &str) -> sqlx::Result<()> {
    for table in DERIVED {
        let sql = format!("CREATE TEMPORARY TABLE {table} (LIKE \"{schema}\".{table} INCLUDING ALL) ON COMMIT DROP");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    sqlx::raw_sql("INSERT INTO pg_temp.feed_cursor (id, last_sequence) VALUES (true, 0)").execute(conn).await?;
    Ok(())
}

/// The live cursor (in `schema`, past the shadow copies), locked until the transaction ends.
pub async fn lock_live_cursor(conn: &mut PgConnection, schema: &str) -> sqlx::Result<i64> {
    let sql = format!("SELECT last_sequence FROM \"{schema}\".feed_cursor FOR UPDATE");
    let (sequence,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(conn).await?;
    Ok(sequence)
}

/// Replaces every derived table in `schema` by its shadow copy, cursor included. DELETE
/// rather than TRUNCATE: readers keep seeing the old rows until the rebuild commits.
pub async fn swap_in_shadow(conn: &mut PgConnection, schema: &str) -> sqlx::Result<()> {
    for table in DERIVED {
        let sql = if table == "feed_cursor" {
            format!(
                "UPDATE \"{schema}\".feed_cursor SET (last_sequence, last_event_time, last_apply_time) = \
                 (SELECT last_sequence, last_event_time, last_apply_time FROM pg_temp.feed_cursor)"
            )
        } else {
            format!("DELETE FROM \"{schema}\".{table}; INSERT INTO \"{schema}\".{table} SELECT * FROM pg_temp.{table}")
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// An event as kept for KPIs and evidence checks.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsumedEvent {
    /// Global sequence.
    pub sequence: i64,
    /// EVENT_TYPE_* name.
    pub event_type: String,
    /// Case.
    pub case_id: String,
    /// Street.
    pub street_id: String,
    /// Call, or empty.
    pub call_id: String,
    /// Department, or empty.
    pub department_id: String,
    /// Person, or empty.
    pub person_id: String,
    /// Decline reason, task kind, `ALONE`/`CALLS` for closes.
    pub qualifier: String,
    /// Sign duration (ms) or shortfall.
    pub amount: i64,
    /// When.
    pub occur_time: DateTime<Utc>,
    /// Per-case trail sequence.
    pub trail_sequence: i64,
    /// Trail hash.
    pub trail_hash: String,
}

/// Keeps an event.
pub async fn insert_event(conn: &mut PgConnection, e: &ConsumedEvent) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO consumed_events (sequence, event_type, case_id, street_id, call_id, department_id, person_id, \
         qualifier, amount, occur_time, trail_sequence, trail_hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
    )
    .bind(e.sequence)
    .bind(&e.event_type)
    .bind(&e.case_id)
    .bind(&e.street_id)
    .bind(&e.call_id)
    .bind(&e.department_id)
    .bind(&e.person_id)
    .bind(&e.qualifier)
    .bind(e.amount)
    .bind(e.occur_time)
    .bind(e.trail_sequence)
    .bind(&e.trail_hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// The consumed event at a case's trail sequence.
pub async fn event_at(
    conn: &mut PgConnection,
    case_id: &str,
    trail_sequence: i64,
) -> sqlx::Result<Option<ConsumedEvent>> {
    sqlx::query_as("SELECT * FROM consumed_events WHERE case_id = $1 AND trail_sequence = $2")
        .bind(case_id)
        .bind(trail_sequence)
        .fetch_optional(conn)
        .await
}

/// Records a non-performance incident (for suggestions).
pub async fn insert_incident(conn: &mut PgConnection, kind: &str, e: &ConsumedEvent) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO incidents (sequence, kind, case_id, call_id, street_id, department_id, person_id, occur_time, \
         trail_sequence, trail_hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
    )
    .bind(e.sequence)
    .bind(kind)
    .bind(&e.case_id)
    .bind(&e.call_id)
    .bind(&e.street_id)
    .bind(&e.department_id)
    .bind(&e.person_id)
    .bind(e.occur_time)
    .bind(e.trail_sequence)
    .bind(&e.trail_hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// A new call: its record, and the department's satisfaction record in the case when this
/// is its first call there.
pub async fn start_call(
    conn: &mut PgConnection,
    e: &ConsumedEvent,
    sign_deadline: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO call_records (call_id, case_id, street_id, department_id, start_time, sign_deadline, \
         response_sequences, update_time) VALUES ($1,$2,$3,$4,$5,$6,ARRAY[$7::bigint],$5) ON CONFLICT DO NOTHING",
    )
    .bind(&e.call_id)
    .bind(&e.case_id)
    .bind(&e.street_id)
    .bind(&e.department_id)
    .bind(e.occur_time)
    .bind(sign_deadline)
    .bind(e.sequence)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO rating_records (case_id, department_id, street_id, first_call_id, start_time, sequences, \
         update_time) VALUES ($1,$2,$3,$4,$5,ARRAY[$6::bigint],$5) ON CONFLICT DO NOTHING",
    )
    .bind(&e.case_id)
    .bind(&e.department_id)
    .bind(&e.street_id)
    .bind(&e.call_id)
    .bind(e.occur_time)
    .bind(e.sequence)
    .execute(conn)
    .await?;
    Ok(())
}

/// A withdrawn call never counts; the satisfaction record moves to the department's next
/// call in the case, or goes when there is none.
pub async fn withdraw_call(conn: &mut PgConnection, e: &ConsumedEvent) -> sqlx::Result<()> {
    sqlx::query("UPDATE call_records SET withdrawn = true, update_time = $2 WHERE call_id = $1")
        .bind(&e.call_id)
        .bind(e.occur_time)
        .execute(&mut *conn)
        .await?;
    let next: Option<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT call_id, start_time FROM call_records WHERE case_id = $1 AND department_id = $2 AND NOT withdrawn \
         ORDER BY start_time, call_id LIMIT 1",
    )
    .bind(&e.case_id)
    .bind(&e.department_id)
    .fetch_optional(&mut *conn)
    .await?;
    match next {
        Some((call_id, start)) => {
            sqlx::query(
                "UPDATE rating_records SET first_call_id = $3, start_time = $4 WHERE case_id = $1 AND department_id = $2",
            )
            .bind(&e.case_id)
            .bind(&e.department_id)
            .bind(call_id)
            .bind(start)
            .execute(conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM rating_records WHERE case_id = $1 AND department_id = $2")
                .bind(&e.case_id)
                .bind(&e.department_id)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// A change of a call's response facts: `set` is a SQL assignment list over the record's
/// columns (static, from this module's callers), and the event's sequence joins the
/// evidence.
async fn update_call(conn: &mut PgConnection, e: &ConsumedEvent, set: &'static str) -> sqlx::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE call_records SET {set}, response_sequences = array_append(response_sequences, $2), update_time = $3 \
         WHERE call_id = $1"
    )))
    .bind(&e.call_id)
    .bind(e.sequence)
    .bind(e.occur_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// CALL_SIGNED.
pub async fn sign(conn: &mut PgConnection, e: &ConsumedEvent, on_time: bool, lateness_secs: i64) -> sqlx::Result<()> {
    if on_time {
        update_call(conn, e, "sign_state = 'ON_TIME'").await
    } else {
        sqlx::query("UPDATE call_records SET sign_lateness_secs = $2 WHERE call_id = $1")
            .bind(&e.call_id)
            .bind(lateness_secs)
            .execute(&mut *conn)
            .await?;
        update_call(conn, e, "sign_state = 'LATE'").await
    }
}

/// CALL_SIGN_OVERDUE.
pub async fn sign_overdue(conn: &mut PgConnection, e: &ConsumedEvent) -> sqlx::Result<()> {
    update_call(conn, e, "sign_overdue = true").await
}

/// CHECK_IN_ON_TIME, CHECK_IN_LATE, CHECK_IN_ABSENT.
pub async fn check_in(conn: &mut PgConnection, e: &ConsumedEvent, status: &str) -> sqlx::Result<()> {
    let set = match status {
        "ON_TIME" => "on_time_count = on_time_count + 1",
        "LATE" => "late_count = late_count + 1",
        _ => "absent_count = absent_count + 1",
    };
    update_call(conn, e, set).await
}

/// INACTION_RECORDED.
pub async fn inaction(conn: &mut PgConnection, e: &ConsumedEvent) -> sqlx::Result<()> {
    update_call(conn, e, "inaction_count = inaction_count + 1").await
}

/// CHECK_IN_CLOSED: the call becomes due for response, with its outcome decided by
/// [`score::response_outcome`].
pub async fn close_check_in(
    conn: &mut PgConnection,
    e: &ConsumedEvent,
    signed_on_time: bool,
    shortfall: i32,
) -> sqlx::Result<()> {
    let row: Option<(String, bool, i32, i32)> = sqlx::query_as(
        "SELECT sign_state, sign_overdue, late_count, absent_count FROM call_records WHERE call_id = $1",
    )
    .bind(&e.call_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((sign_state, overdue, late, absent)) = row else { return Ok(()) };
    let outcome = score::response_outcome(
        signed_on_time && !overdue && sign_state == "ON_TIME",
        sign_state != "UNSIGNED",
        late,
        absent,
        shortfall,
    );
    sqlx::query(
        "UPDATE call_records SET check_in_closed = true, shortfall_count = $2, response_outcome = $3, \
         response_sequences = array_append(response_sequences, $4), update_time = $5 WHERE call_id = $1",
    )
    .bind(&e.call_id)
    .bind(shortfall)
    .bind(outcome)
    .bind(e.sequence)
    .bind(e.occur_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// TASK_CREATED (regular tasks only).
pub async fn add_task(conn: &mut PgConnection, e: &ConsumedEvent, task_id: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO task_records (task_id, call_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(task_id)
        .bind(&e.call_id)
        .execute(&mut *conn)
        .await?;
    settle_completion(conn, e).await
}

/// TASK_COMPLETED or TASK_OVERDUE of a regular task; `None` for an overdue task.
pub async fn finish_task(
    conn: &mut PgConnection,
    e: &ConsumedEvent,
    task_id: &str,
    completed_on_time: Option<bool>,
) -> sqlx::Result<()> {
    let sql = match completed_on_time {
        Some(true) => "UPDATE task_records SET state = 'ON_TIME' WHERE task_id = $1",
        Some(false) => "UPDATE task_records SET state = 'LATE' WHERE task_id = $1",
        None => "UPDATE task_records SET overdue = true WHERE task_id = $1",
    };
    sqlx::query(sql).bind(task_id).execute(&mut *conn).await?;
    settle_completion(conn, e).await
}

/// Recomputes a call's completion outcome from its regular tasks.
async fn settle_completion(conn: &mut PgConnection, e: &ConsumedEvent) -> sqlx::Result<()> {
    let tasks: Vec<(String, bool)> = sqlx::query_as("SELECT state, overdue FROM task_records WHERE call_id = $1")
        .bind(&e.call_id)
        .fetch_all(&mut *conn)
        .await?;
    let facts: Vec<TaskFacts> = tasks
        .iter()
        .map(|(state, overdue)| TaskFacts {
            on_time: state == "ON_TIME",
            completed: state != "OPEN",
            overdue: *overdue,
        })
        .collect();
    sqlx::query(
        "UPDATE call_records SET completion_outcome = $2, completion_sequences = array_append(completion_sequences, $3), \
         update_time = $4 WHERE call_id = $1",
    )
    .bind(&e.call_id)
    .bind(score::completion_outcome(&facts))
    .bind(e.sequence)
    .bind(e.occur_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// RATING_GIVEN or RATING_REPLACED: the new rating becomes the current one.
pub async fn rate(
    conn: &mut PgConnection,
    e: &ConsumedEvent,
    rating_id: &str,
    satisfaction: &str,
    supersedes: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO rating_history (rating_id, case_id, department_id, satisfaction, supersedes_rating_id, sequence, \
         occur_time) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING",
    )
    .bind(rating_id)
    .bind(&e.case_id)
    .bind(&e.department_id)
    .bind(satisfaction)
    .bind(supersedes)
    .bind(e.sequence)
    .bind(e.occur_time)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE rating_records SET rating_id = $3, satisfaction = $4, sequences = array_append(sequences, $5), \
         update_time = $6 WHERE case_id = $1 AND department_id = $2",
    )
    .bind(&e.case_id)
    .bind(&e.department_id)
    .bind(rating_id)
    .bind(satisfaction)
    .bind(e.sequence)
    .bind(e.occur_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// RECTIFICATION_REQUIRED of a department in a case.
pub async fn require_rectification(conn: &mut PgConnection, e: &ConsumedEvent) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE rating_records SET rectification_count = rectification_count + 1, \
         sequences = array_append(sequences, $3), update_time = $4 WHERE case_id = $1 AND department_id = $2",
    )
    .bind(&e.case_id)
    .bind(&e.department_id)
    .bind(e.sequence)
    .bind(e.occur_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// A call record as loaded in bulk (benchmarks, data migrations).
#[derive(Debug, Clone)]
pub struct BulkCall {
    /// Call.
    pub call_id: String,
    /// Case.
    pub case_id: String,
    /// Street.
    pub street_id: String,
    /// Department.
    pub department_id: String,
    /// CALL_STARTED time.
    pub start_time: DateTime<Utc>,
    /// UNSIGNED, ON_TIME, LATE.
    pub sign_state: String,
    /// Response outcome.
    pub response_outcome: String,
    /// Completion outcome.
    pub completion_outcome: String,
    /// Current satisfaction.
    pub satisfaction: String,
}

/// Inserts call records and their satisfaction records in one multi-row statement each
/// (UNNEST of column arrays: one round trip per batch).
pub async fn insert_bulk(conn: &mut PgConnection, rows: &[BulkCall]) -> sqlx::Result<()> {
    let col = |f: fn(&BulkCall) -> &String| rows.iter().map(|r| f(r).clone()).collect::<Vec<String>>();
    let times: Vec<DateTime<Utc>> = rows.iter().map(|r| r.start_time).collect();
    sqlx::query(
        "INSERT INTO call_records (call_id, case_id, street_id, department_id, start_time, sign_state, \
         response_outcome, completion_outcome, response_sequences, update_time) \
         SELECT c, k, s, d, t, ss, ro, co, ARRAY[1::bigint, 2::bigint], t \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::text[]) \
         AS u(c, k, s, d, t, ss, ro, co)",
    )
    .bind(col(|r| &r.call_id))
    .bind(col(|r| &r.case_id))
    .bind(col(|r| &r.street_id))
    .bind(col(|r| &r.department_id))
    .bind(&times)
    .bind(col(|r| &r.sign_state))
    .bind(col(|r| &r.response_outcome))
    .bind(col(|r| &r.completion_outcome))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO rating_records (case_id, department_id, street_id, first_call_id, start_time, satisfaction, \
         update_time) SELECT k, d, s, c, t, sat, t \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[]) \
         AS u(c, k, s, d, t, sat)",
    )
    .bind(col(|r| &r.call_id))
    .bind(col(|r| &r.case_id))
    .bind(col(|r| &r.street_id))
    .bind(col(|r| &r.department_id))
    .bind(&times)
    .bind(col(|r| &r.satisfaction))
    .execute(conn)
    .await?;
    Ok(())
}
