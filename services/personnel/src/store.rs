//! Personnel's SQL. Functions take a connection (inside the caller's transaction for
//! writes) and return rows; generated protobuf types never reach here, except the
//! attachment references kept as jsonb.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use crate::domain::{self, State};

/// A person as recorded (who signed, who decided), for display.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    /// Roster id (or the caller's subject).
    pub id: String,
    /// Name at the time.
    pub name: String,
    /// Department, if any.
    #[serde(default)]
    pub department_id: String,
    /// Station, if any.
    #[serde(default)]
    pub station_id: String,
}

/// An attachment reference as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Id.
    pub id: String,
    /// File name.
    pub file_name: String,
    /// Media type.
    pub content_type: String,
    /// Size.
    pub size_bytes: i64,
    /// Digest.
    pub sha256: String,
}

/// A solicitation as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SolicitationRow {
    pub id: Uuid,
    pub department_id: String,
    pub station_id: String,
    pub street_id: String,
    pub person_id: String,
    pub position: String,
    pub matter: String,
    pub proposal: String,
    pub attachments: Json<Vec<Attachment>>,
    pub reply_deadline: DateTime<Utc>,
    pub state: String,
    pub escalate_to: Vec<String>,
    pub opinion_stance: Option<String>,
    pub opinion_text: Option<String>,
    pub opinion_signed_by: Option<Json<Ref>>,
    pub opinion_time: Option<DateTime<Utc>>,
    pub opinion_late: bool,
    pub decision: Option<String>,
    pub opinion_adopted: bool,
    pub decision_reason: String,
    pub decided_by: Option<Json<Ref>>,
    pub decide_time: Option<DateTime<Utc>>,
    pub withdraw_reason: String,
    pub escalate_time: Option<DateTime<Utc>>,
    pub created_by: Json<Ref>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

impl SolicitationRow {
    /// The state, parsed.
    pub fn state(&self) -> State {
        State::parse(&self.state).unwrap_or(State::AwaitingOpinion)
    }
}

/// Inserts a new solicitation.
pub async fn insert_solicitation(conn: &mut PgConnection, s: &SolicitationRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO solicitations (id, department_id, station_id, street_id, person_id, position, matter, proposal, \
         attachments, reply_deadline, state, escalate_to, created_by, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
    )
    .bind(s.id)
    .bind(&s.department_id)
    .bind(&s.station_id)
    .bind(&s.street_id)
    .bind(&s.person_id)
    .bind(&s.position)
    .bind(&s.matter)
    .bind(&s.proposal)
    .bind(&s.attachments)
    .bind(s.reply_deadline)
    .bind(&s.state)
    .bind(&s.escalate_to)
    .bind(&s.created_by)
    .bind(s.create_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// One solicitation (locked when `lock`).
pub async fn solicitation(conn: &mut PgConnection, id: Uuid, lock: bool) -> sqlx::Result<Option<SolicitationRow>> {
    let sql = if lock {
        "SELECT * FROM solicitations WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT * FROM solicitations WHERE id = $1"
    };
    sqlx::query_as(sql).bind(id).fetch_optional(conn).await
}

/// Records the street's opinion.
pub async fn save_opinion(
    conn: &mut PgConnection,
    id: Uuid,
    stance: &str,
    text: &str,
    by: &Ref,
    now: DateTime<Utc>,
    late: bool,
) -> sqlx::Result<SolicitationRow> {
    sqlx::query_as(
        "UPDATE solicitations SET state = $2, opinion_stance = $3, opinion_text = $4, opinion_signed_by = $5, \
         opinion_time = $6, opinion_late = $7, update_time = $6 WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(State::OpinionReceived.as_str())
    .bind(stance)
    .bind(text)
    .bind(Json(by))
    .bind(now)
    .bind(late)
    .fetch_one(conn)
    .await
}

/// Records the department's decision.
pub async fn save_decision(
    conn: &mut PgConnection,
    id: Uuid,
    decision: &str,
    adopted: bool,
    reason: &str,
    by: &Ref,
    now: DateTime<Utc>,
) -> sqlx::Result<SolicitationRow> {
    sqlx::query_as(
        "UPDATE solicitations SET state = $2, decision = $3, opinion_adopted = $4, decision_reason = $5, \
         decided_by = $6, decide_time = $7, update_time = $7 WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(State::Decided.as_str())
    .bind(decision)
    .bind(adopted)
    .bind(reason)
    .bind(Json(by))
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Withdraws.
pub async fn save_withdrawal(
    conn: &mut PgConnection,
    id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<SolicitationRow> {
    sqlx::query_as(
        "UPDATE solicitations SET state = $2, withdraw_reason = $3, update_time = $4 WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(State::Withdrawn.as_str())
    .bind(reason)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// The reply is overdue: state, escalation and finding, together.
pub async fn mark_no_reply(conn: &mut PgConnection, row: &SolicitationRow, now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query("UPDATE solicitations SET state = $2, escalate_time = $3, update_time = $3 WHERE id = $1")
        .bind(row.id)
        .bind(State::NoReply.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO escalations (id, solicitation_id, street_id, department_id, recipients, reply_deadline, \
         escalate_time) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (solicitation_id) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(row.id)
    .bind(&row.street_id)
    .bind(&row.department_id)
    .bind(&row.escalate_to)
    .bind(row.reply_deadline)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    insert_finding(
        conn,
        &NewFinding {
            kind: domain::finding::REPLY_OVERDUE,
            department_id: &row.department_id,
            station_id: &row.station_id,
            street_id: &row.street_id,
            person_id: &row.person_id,
            solicitation_id: Some(row.id),
            description: format!("街道未在回复时限 {} 前书面回复意见，已督办街道领导及区", row.reply_deadline),
            ..NewFinding::default()
        },
        now,
    )
    .await
}

/// Filters of a list, with the caller's scope already applied (`None`: any).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub street_id: Option<String>,
    pub department_id: Option<String>,
}

/// Solicitations matching, newest first, after `after`; and how many match in all.
#[allow(clippy::too_many_arguments)]
pub async fn list_solicitations(
    conn: &mut PgConnection,
    scope: &Scope,
    station_id: &str,
    person_id: &str,
    states: &[String],
    matter: &str,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<SolicitationRow>, i64)> {
    let filter = "($1::text IS NULL OR street_id = $1) AND ($2::text IS NULL OR department_id = $2) \
                  AND ($3 = '' OR station_id = $3) AND ($4 = '' OR person_id = $4) \
                  AND (cardinality($5::text[]) = 0 OR state = ANY($5)) AND ($6 = '' OR matter = $6)";
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM solicitations WHERE {filter} AND ($7::timestamptz IS NULL OR (create_time, id) < ($7, $8)) \
         ORDER BY create_time DESC, id DESC LIMIT $9"
    )))
    .bind(&scope.street_id)
    .bind(&scope.department_id)
    .bind(station_id)
    .bind(person_id)
    .bind(states)
    .bind(matter)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM solicitations WHERE {filter}")))
            .bind(&scope.street_id)
            .bind(&scope.department_id)
            .bind(station_id)
            .bind(person_id)
            .bind(states)
            .bind(matter)
            .fetch_one(conn)
            .await?;
    Ok((rows, total))
}

/// The latest solicitation about `person_id` at `station_id`, not withdrawn.
pub async fn latest_solicitation_about(
    conn: &mut PgConnection,
    person_id: &str,
    station_id: &str,
) -> sqlx::Result<Option<SolicitationRow>> {
    sqlx::query_as(
        "SELECT * FROM solicitations WHERE person_id = $1 AND station_id = $2 \
         AND state <> 'SOLICITATION_STATE_WITHDRAWN' ORDER BY create_time DESC LIMIT 1",
    )
    .bind(person_id)
    .bind(station_id)
    .fetch_optional(conn)
    .await
}

/// Whether any decision about `person_id` at `station_id` is recorded (decided solicitation
/// or reported decision).
pub async fn decision_exists(conn: &mut PgConnection, person_id: &str, station_id: &str) -> sqlx::Result<bool> {
    let (exists,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM solicitations WHERE person_id = $1 AND station_id = $2 \
                        AND state = 'SOLICITATION_STATE_DECIDED') \
             OR EXISTS (SELECT 1 FROM decision_reports WHERE person_id = $1 AND station_id = $2) \
             OR EXISTS (SELECT 1 FROM interview_plans WHERE candidate_person_id = $1 AND station_id = $2 \
                        AND promotion_time IS NOT NULL)",
    )
    .bind(person_id)
    .bind(station_id)
    .fetch_one(conn)
    .await?;
    Ok(exists)
}

/// An escalation as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EscalationRow {
    pub id: Uuid,
    pub solicitation_id: Uuid,
    pub street_id: String,
    pub department_id: String,
    pub recipients: Vec<String>,
    pub reply_deadline: DateTime<Utc>,
    pub escalate_time: DateTime<Utc>,
}

/// Escalations matching, newest first.
pub async fn list_escalations(
    conn: &mut PgConnection,
    scope: &Scope,
    solicitation_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<EscalationRow>, i64)> {
    let filter = "($1::text IS NULL OR street_id = $1) AND ($2::text IS NULL OR department_id = $2) \
                  AND ($3::uuid IS NULL OR solicitation_id = $3)";
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM escalations WHERE {filter} AND ($4::timestamptz IS NULL OR (escalate_time, id) < ($4, $5)) \
         ORDER BY escalate_time DESC, id DESC LIMIT $6"
    )))
    .bind(&scope.street_id)
    .bind(&scope.department_id)
    .bind(solicitation_id)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM escalations WHERE {filter}")))
            .bind(&scope.street_id)
            .bind(&scope.department_id)
            .bind(solicitation_id)
            .fetch_one(conn)
            .await?;
    Ok((rows, total))
}

/// A decision report as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReportRow {
    pub id: Uuid,
    pub department_id: String,
    pub station_id: String,
    pub street_id: String,
    pub person_id: String,
    pub position: String,
    pub matter: String,
    pub decision: String,
    pub solicitation_id: Option<Uuid>,
    pub finding: Option<String>,
    pub decided_by: Json<Ref>,
    pub decide_time: DateTime<Utc>,
}

/// Inserts a decision report.
pub async fn insert_report(conn: &mut PgConnection, r: &ReportRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO decision_reports (id, department_id, station_id, street_id, person_id, position, matter, \
         decision, solicitation_id, finding, decided_by, decide_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(r.id)
    .bind(&r.department_id)
    .bind(&r.station_id)
    .bind(&r.street_id)
    .bind(&r.person_id)
    .bind(&r.position)
    .bind(&r.matter)
    .bind(&r.decision)
    .bind(r.solicitation_id)
    .bind(&r.finding)
    .bind(&r.decided_by)
    .bind(r.decide_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// Decision reports matching, newest first.
pub async fn list_reports(
    conn: &mut PgConnection,
    scope: &Scope,
    person_id: &str,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<ReportRow>, i64)> {
    let filter = "($1::text IS NULL OR street_id = $1) AND ($2::text IS NULL OR department_id = $2) \
                  AND ($3 = '' OR person_id = $3)";
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM decision_reports WHERE {filter} \
         AND ($4::timestamptz IS NULL OR (decide_time, id) < ($4, $5)) ORDER BY decide_time DESC, id DESC LIMIT $6"
    )))
    .bind(&scope.street_id)
    .bind(&scope.department_id)
    .bind(person_id)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM decision_reports WHERE {filter}")))
            .bind(&scope.street_id)
            .bind(&scope.department_id)
            .bind(person_id)
            .fetch_one(conn)
            .await?;
    Ok((rows, total))
}

/// A finding to record.
#[derive(Debug, Clone, Default)]
pub struct NewFinding<'a> {
    pub kind: &'a str,
    pub department_id: &'a str,
    pub station_id: &'a str,
    pub street_id: &'a str,
    pub person_id: &'a str,
    pub solicitation_id: Option<Uuid>,
    pub decision_report_id: Option<Uuid>,
    pub interview_plan_id: Option<Uuid>,
    pub change_sequence: Option<i64>,
    pub description: String,
}

/// Records a finding (once per roster change and per overdue reply).
pub async fn insert_finding(conn: &mut PgConnection, f: &NewFinding<'_>, now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO findings (id, kind, department_id, station_id, street_id, person_id, solicitation_id, \
         decision_report_id, interview_plan_id, change_sequence, description, detect_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(f.kind)
    .bind(f.department_id)
    .bind(f.station_id)
    .bind(f.street_id)
    .bind(f.person_id)
    .bind(f.solicitation_id)
    .bind(f.decision_report_id)
    .bind(f.interview_plan_id)
    .bind(f.change_sequence)
    .bind(&f.description)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A finding as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FindingRow {
    pub id: Uuid,
    pub kind: String,
    pub department_id: String,
    pub station_id: String,
    pub street_id: String,
    pub person_id: String,
    pub solicitation_id: Option<Uuid>,
    pub decision_report_id: Option<Uuid>,
    pub interview_plan_id: Option<Uuid>,
    pub change_sequence: Option<i64>,
    pub description: String,
    pub detect_time: DateTime<Utc>,
}

/// Findings matching, newest first.
pub async fn list_findings(
    conn: &mut PgConnection,
    scope: &Scope,
    kinds: &[String],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<FindingRow>, i64)> {
    let filter = "($1::text IS NULL OR street_id = $1) AND ($2::text IS NULL OR department_id = $2) \
                  AND (cardinality($3::text[]) = 0 OR kind = ANY($3))";
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM findings WHERE {filter} AND ($4::timestamptz IS NULL OR (detect_time, id) < ($4, $5)) \
         ORDER BY detect_time DESC, id DESC LIMIT $6"
    )))
    .bind(&scope.street_id)
    .bind(&scope.department_id)
    .bind(kinds)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM findings WHERE {filter}")))
        .bind(&scope.street_id)
        .bind(&scope.department_id)
        .bind(kinds)
        .fetch_one(conn)
        .await?;
    Ok((rows, total))
}

/// The roster cursor, locked: one check at a time.
pub async fn lock_cursor(conn: &mut PgConnection) -> sqlx::Result<i64> {
    let (last,): (i64,) =
        sqlx::query_as("SELECT last_sequence FROM roster_cursor WHERE id = 1 FOR UPDATE").fetch_one(conn).await?;
    Ok(last)
}

/// Moves the roster cursor.
pub async fn move_cursor(conn: &mut PgConnection, last: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE roster_cursor SET last_sequence = greatest(last_sequence, $1) WHERE id = 1")
        .bind(last)
        .execute(conn)
        .await?;
    Ok(())
}

/// The roster cursor, unlocked.
pub async fn cursor(conn: &mut PgConnection) -> sqlx::Result<i64> {
    let (last,): (i64,) =
        sqlx::query_as("SELECT last_sequence FROM roster_cursor WHERE id = 1").fetch_one(conn).await?;
    Ok(last)
}

/// One interviewee as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredInterviewee {
    pub person: Ref,
    pub position: String,
}

/// One held interview as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHeld {
    pub person: Ref,
    pub held_date: NaiveDate,
    pub note: String,
    pub recorded_by: Ref,
}

/// An interview plan as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlanRow {
    pub id: Uuid,
    pub department_id: String,
    pub station_id: String,
    pub street_id: String,
    pub candidate_person_id: String,
    pub proposed_post: String,
    pub interviewees: Json<Vec<StoredInterviewee>>,
    pub required: Json<Vec<StoredInterviewee>>,
    pub held: Json<Vec<StoredHeld>>,
    pub note: String,
    pub promotion_decision: String,
    pub promotion_time: Option<DateTime<Utc>>,
    pub missing: Vec<String>,
    pub flagged: bool,
    pub created_by: Json<Ref>,
    pub create_time: DateTime<Utc>,
}

/// Inserts a plan.
pub async fn insert_plan(conn: &mut PgConnection, p: &PlanRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO interview_plans (id, department_id, station_id, street_id, candidate_person_id, proposed_post, \
         interviewees, required, note, created_by, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(p.id)
    .bind(&p.department_id)
    .bind(&p.station_id)
    .bind(&p.street_id)
    .bind(&p.candidate_person_id)
    .bind(&p.proposed_post)
    .bind(&p.interviewees)
    .bind(&p.required)
    .bind(&p.note)
    .bind(&p.created_by)
    .bind(p.create_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// One plan (locked when `lock`).
pub async fn plan(conn: &mut PgConnection, id: Uuid, lock: bool) -> sqlx::Result<Option<PlanRow>> {
    let sql = if lock {
        "SELECT * FROM interview_plans WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT * FROM interview_plans WHERE id = $1"
    };
    sqlx::query_as(sql).bind(id).fetch_optional(conn).await
}

/// Replaces the held interviews.
pub async fn save_held(conn: &mut PgConnection, id: Uuid, held: &[StoredHeld]) -> sqlx::Result<PlanRow> {
    sqlx::query_as("UPDATE interview_plans SET held = $2 WHERE id = $1 RETURNING *")
        .bind(id)
        .bind(Json(held))
        .fetch_one(conn)
        .await
}

/// Records the promotion.
pub async fn save_promotion(
    conn: &mut PgConnection,
    id: Uuid,
    decision: &str,
    missing: &[String],
    now: DateTime<Utc>,
) -> sqlx::Result<PlanRow> {
    sqlx::query_as(
        "UPDATE interview_plans SET promotion_decision = $2, missing = $3, flagged = cardinality($3::text[]) > 0, \
         promotion_time = $4 WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(decision)
    .bind(missing)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Plans matching, newest first.
pub async fn list_plans(
    conn: &mut PgConnection,
    scope: &Scope,
    station_id: &str,
    candidate: &str,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<PlanRow>, i64)> {
    let filter = "($1::text IS NULL OR street_id = $1) AND ($2::text IS NULL OR department_id = $2) \
                  AND ($3 = '' OR station_id = $3) AND ($4 = '' OR candidate_person_id = $4)";
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM interview_plans WHERE {filter} \
         AND ($5::timestamptz IS NULL OR (create_time, id) < ($5, $6)) ORDER BY create_time DESC, id DESC LIMIT $7"
    )))
    .bind(&scope.street_id)
    .bind(&scope.department_id)
    .bind(station_id)
    .bind(candidate)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM interview_plans WHERE {filter}")))
            .bind(&scope.street_id)
            .bind(&scope.department_id)
            .bind(station_id)
            .bind(candidate)
            .fetch_one(conn)
            .await?;
    Ok((rows, total))
}

/// A leave application as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeaveRow {
    pub id: Uuid,
    pub person_id: String,
    pub secondment_id: String,
    pub street_id: String,
    pub department_id: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub year: i32,
    pub days: i32,
    pub reason: String,
    pub state: String,
    pub decided_by: Option<Json<Ref>>,
    pub decision_comment: String,
    pub decide_time: Option<DateTime<Utc>>,
    pub created_by: Json<Ref>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// Leave states, stored by proto name.
pub mod leave_state {
    pub const PENDING: &str = "LEAVE_STATE_PENDING";
    pub const APPROVED: &str = "LEAVE_STATE_APPROVED";
    pub const REJECTED: &str = "LEAVE_STATE_REJECTED";
    pub const CANCELLED: &str = "LEAVE_STATE_CANCELLED";
}

/// Serialises every leave change of one person (overlap and balance checks read then write).
pub async fn lock_person_leave(conn: &mut PgConnection, person_id: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('personnel.leave:' || $1))")
        .bind(person_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Pending or approved applications of `person_id` overlapping `[start, end]`.
pub async fn overlapping_leave(
    conn: &mut PgConnection,
    person_id: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> sqlx::Result<Vec<LeaveRow>> {
    sqlx::query_as(
        "SELECT * FROM leave_applications WHERE person_id = $1 AND state IN ('LEAVE_STATE_PENDING', 'LEAVE_STATE_APPROVED') \
         AND start_date <= $3 AND end_date >= $2 ORDER BY start_date",
    )
    .bind(person_id)
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await
}

/// (approved, pending) leave days of `person_id` in `year`.
pub async fn used_leave(conn: &mut PgConnection, person_id: &str, year: i32) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "SELECT coalesce(sum(days) FILTER (WHERE state = 'LEAVE_STATE_APPROVED'), 0)::bigint, \
                coalesce(sum(days) FILTER (WHERE state = 'LEAVE_STATE_PENDING'), 0)::bigint \
         FROM leave_applications WHERE person_id = $1 AND year = $2",
    )
    .bind(person_id)
    .bind(year)
    .fetch_one(conn)
    .await
}

/// Inserts a leave application.
pub async fn insert_leave(conn: &mut PgConnection, l: &LeaveRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO leave_applications (id, person_id, secondment_id, street_id, department_id, start_date, end_date, \
         year, days, reason, state, created_by, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(l.id)
    .bind(&l.person_id)
    .bind(&l.secondment_id)
    .bind(&l.street_id)
    .bind(&l.department_id)
    .bind(l.start_date)
    .bind(l.end_date)
    .bind(l.year)
    .bind(l.days)
    .bind(&l.reason)
    .bind(&l.state)
    .bind(&l.created_by)
    .bind(l.create_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// One application (locked when `lock`).
pub async fn leave(conn: &mut PgConnection, id: Uuid, lock: bool) -> sqlx::Result<Option<LeaveRow>> {
    let sql = if lock {
        "SELECT * FROM leave_applications WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT * FROM leave_applications WHERE id = $1"
    };
    sqlx::query_as(sql).bind(id).fetch_optional(conn).await
}

/// Moves an application to `state`.
pub async fn decide_leave(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
    by: Option<&Ref>,
    comment: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<LeaveRow> {
    sqlx::query_as(
        "UPDATE leave_applications SET state = $2, decided_by = coalesce($3, decided_by), \
         decision_comment = CASE WHEN $3::jsonb IS NULL THEN decision_comment ELSE $4 END, \
         decide_time = CASE WHEN $3::jsonb IS NULL THEN decide_time ELSE $5 END, update_time = $5 \
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(state)
    .bind(by.map(Json))
    .bind(comment)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Applications matching, by start date, latest first.
#[allow(clippy::too_many_arguments)]
pub async fn list_leave(
    conn: &mut PgConnection,
    scope: &Scope,
    person_id: &str,
    states: &[String],
    overlaps: (Option<NaiveDate>, Option<NaiveDate>),
    after: Option<(NaiveDate, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<LeaveRow>, i64)> {
    let filter = "($1::text IS NULL OR street_id = $1) AND ($2::text IS NULL OR department_id = $2) \
                  AND ($3 = '' OR person_id = $3) AND (cardinality($4::text[]) = 0 OR state = ANY($4)) \
                  AND ($5::date IS NULL OR end_date >= $5) AND ($6::date IS NULL OR start_date <= $6)";
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM leave_applications WHERE {filter} \
         AND ($7::date IS NULL OR (start_date, id) < ($7, $8)) ORDER BY start_date DESC, id DESC LIMIT $9"
    )))
    .bind(&scope.street_id)
    .bind(&scope.department_id)
    .bind(person_id)
    .bind(states)
    .bind(overlaps.0)
    .bind(overlaps.1)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM leave_applications WHERE {filter}")))
            .bind(&scope.street_id)
            .bind(&scope.department_id)
            .bind(person_id)
            .bind(states)
            .bind(overlaps.0)
            .bind(overlaps.1)
            .fetch_one(conn)
            .await?;
    Ok((rows, total))
}

/// A person's recorded entitlement for a year: (days, service start).
pub async fn entitlement(
    conn: &mut PgConnection,
    person_id: &str,
    year: i32,
) -> sqlx::Result<Option<(i32, Option<NaiveDate>)>> {
    sqlx::query_as(
        "SELECT entitled_days, service_start_date FROM leave_entitlements WHERE person_id = $1 AND year = $2",
    )
    .bind(person_id)
    .bind(year)
    .fetch_optional(conn)
    .await
}

/// Sets a person's entitlement for a year.
pub async fn set_entitlement(
    conn: &mut PgConnection,
    person_id: &str,
    year: i32,
    days: i32,
    service_start: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO leave_entitlements (person_id, year, entitled_days, service_start_date, update_time) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (person_id, year) DO UPDATE \
         SET entitled_days = $3, service_start_date = $4, update_time = $5",
    )
    .bind(person_id)
    .bind(year)
    .bind(days)
    .bind(service_start)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A secondee evaluation as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EvaluationRow {
    pub id: Uuid,
    pub secondment_id: String,
    pub person_id: String,
    pub street_id: String,
    pub department_id: String,
    pub kind: String,
    pub year: i32,
    pub month: i32,
    pub grade: String,
    pub grade_number: i32,
    pub comment: String,
    pub coefficient_bp: i32,
    pub evaluated_by: Json<Ref>,
    pub create_time: DateTime<Utc>,
}

/// Inserts an evaluation; `false` when one exists for the period.
pub async fn insert_evaluation(conn: &mut PgConnection, e: &EvaluationRow) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO secondee_evaluations (id, secondment_id, person_id, street_id, department_id, kind, year, month, \
         grade, grade_number, comment, coefficient_bp, evaluated_by, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (secondment_id, kind, year, month) DO NOTHING",
    )
    .bind(e.id)
    .bind(&e.secondment_id)
    .bind(&e.person_id)
    .bind(&e.street_id)
    .bind(&e.department_id)
    .bind(&e.kind)
    .bind(e.year)
    .bind(e.month)
    .bind(&e.grade)
    .bind(e.grade_number)
    .bind(&e.comment)
    .bind(e.coefficient_bp)
    .bind(&e.evaluated_by)
    .bind(e.create_time)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Evaluations matching, newest first.
#[allow(clippy::too_many_arguments)]
pub async fn list_evaluations(
    conn: &mut PgConnection,
    scope: &Scope,
    person_id: &str,
    secondment_id: &str,
    kind: &str,
    year: i32,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<EvaluationRow>, i64)> {
    let filter = "($1::text IS NULL OR street_id = $1) AND ($2::text IS NULL OR department_id = $2) \
                  AND ($3 = '' OR person_id = $3) AND ($4 = '' OR secondment_id = $4) AND ($5 = '' OR kind = $5) \
                  AND ($6 = 0 OR year = $6)";
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM secondee_evaluations WHERE {filter} \
         AND ($7::timestamptz IS NULL OR (create_time, id) < ($7, $8)) ORDER BY create_time DESC, id DESC LIMIT $9"
    )))
    .bind(&scope.street_id)
    .bind(&scope.department_id)
    .bind(person_id)
    .bind(secondment_id)
    .bind(kind)
    .bind(year)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM secondee_evaluations WHERE {filter}")))
            .bind(&scope.street_id)
            .bind(&scope.department_id)
            .bind(person_id)
            .bind(secondment_id)
            .bind(kind)
            .bind(year)
            .fetch_one(conn)
            .await?;
    Ok((rows, total))
}

/// The ratio of a year, if set: (bp, when).
pub async fn ratio(conn: &mut PgConnection, year: i32) -> sqlx::Result<Option<(i32, DateTime<Utc>)>> {
    sqlx::query_as("SELECT ratio_bp, update_time FROM commendation_ratios WHERE year = $1")
        .bind(year)
        .fetch_optional(conn)
        .await
}

/// Sets the ratio of a year.
pub async fn set_ratio(conn: &mut PgConnection, year: i32, bp: i32, now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO commendation_ratios (year, ratio_bp, update_time) VALUES ($1, $2, $3) \
         ON CONFLICT (year) DO UPDATE SET ratio_bp = $2, update_time = $3",
    )
    .bind(year)
    .bind(bp)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The coefficients set for a year: (grade, bp, when).
pub async fn coefficients(conn: &mut PgConnection, year: i32) -> sqlx::Result<Vec<(i32, i32, DateTime<Utc>)>> {
    sqlx::query_as("SELECT grade, coefficient_bp, update_time FROM incentive_coefficients WHERE year = $1")
        .bind(year)
        .fetch_all(conn)
        .await
}

/// Sets a coefficient.
pub async fn set_coefficient(
    conn: &mut PgConnection,
    year: i32,
    grade: i32,
    bp: i32,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO incentive_coefficients (year, grade, coefficient_bp, update_time) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (year, grade) DO UPDATE SET coefficient_bp = $3, update_time = $4",
    )
    .bind(year)
    .bind(grade)
    .bind(bp)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The coefficient of `grade` in `year`, the default when unset.
pub async fn coefficient(conn: &mut PgConnection, year: i32, grade: i32) -> sqlx::Result<i32> {
    let set = coefficients(conn, year).await?;
    Ok(set.iter().find(|c| c.0 == grade).map(|c| c.1).unwrap_or_else(|| domain::default_coefficient_bp(grade)))
}

/// An incentive assessment as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssessmentRow {
    pub id: Uuid,
    pub street_id: String,
    pub year: i32,
    pub station_id: String,
    pub person_id: String,
    pub department_id: String,
    pub grade: String,
    pub comment: String,
    pub coefficient_bp: i32,
    pub assessed_by: Json<Ref>,
    pub create_time: DateTime<Utc>,
}

/// Inserts an assessment; `false` when the subject was already assessed that year.
pub async fn insert_assessment(conn: &mut PgConnection, a: &AssessmentRow) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO incentive_assessments (id, street_id, year, station_id, person_id, department_id, grade, comment, \
         coefficient_bp, assessed_by, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (street_id, year, station_id, person_id) DO NOTHING",
    )
    .bind(a.id)
    .bind(&a.street_id)
    .bind(a.year)
    .bind(&a.station_id)
    .bind(&a.person_id)
    .bind(&a.department_id)
    .bind(&a.grade)
    .bind(&a.comment)
    .bind(a.coefficient_bp)
    .bind(&a.assessed_by)
    .bind(a.create_time)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Assessments matching, newest first.
#[allow(clippy::too_many_arguments)]
pub async fn list_assessments(
    conn: &mut PgConnection,
    scope: &Scope,
    year: i32,
    station_id: &str,
    person_id: &str,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<AssessmentRow>, i64)> {
    let filter = "($1::text IS NULL OR street_id = $1) AND ($2::text IS NULL OR department_id = $2) \
                  AND ($3 = 0 OR year = $3) AND ($4 = '' OR station_id = $4) AND ($5 = '' OR person_id = $5)";
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM incentive_assessments WHERE {filter} \
         AND ($6::timestamptz IS NULL OR (create_time, id) < ($6, $7)) ORDER BY create_time DESC, id DESC LIMIT $8"
    )))
    .bind(&scope.street_id)
    .bind(&scope.department_id)
    .bind(year)
    .bind(station_id)
    .bind(person_id)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let (total,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM incentive_assessments WHERE {filter}")))
            .bind(&scope.street_id)
            .bind(&scope.department_id)
            .bind(year)
            .bind(station_id)
            .bind(person_id)
            .fetch_one(conn)
            .await?;
    Ok((rows, total))
}
