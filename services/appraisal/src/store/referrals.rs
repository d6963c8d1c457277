//! Referrals (线索移送), their recipients and evidence, and the incident patterns behind
//! suggested referrals.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use super::{Counted, page_sql, split_total};

/// A referral as stored, with its overall state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReferralRow {
    /// Id.
    pub id: Uuid,
    /// Referring street.
    pub street_id: String,
    /// Case.
    pub case_id: String,
    /// Call.
    pub call_id: String,
    /// Department.
    pub department_id: String,
    /// People concerned.
    pub person_ids: Vec<String>,
    /// REFERRAL_KIND_* name.
    pub kind: String,
    /// Facts.
    pub facts: String,
    /// Who referred (an Actor as JSON).
    pub created_by: Json<serde_json::Value>,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Changed.
    pub update_time: DateTime<Utc>,
    /// Overall state: SENT, RECEIVED, HANDLED.
    pub state: String,
}

/// One recipient's part.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecipientRow {
    /// Referral.
    pub referral_id: Uuid,
    /// ORGANIZATION_KIND_* name.
    pub recipient: String,
    /// SENT, RECEIVED, HANDLED.
    pub state: String,
    /// Received at.
    pub receive_time: Option<DateTime<Utc>>,
    /// Handled at.
    pub handle_time: Option<DateTime<Utc>>,
    /// Outcome.
    pub outcome: String,
    /// Who handled it (a PersonRef as JSON).
    pub handled_by: Option<Json<serde_json::Value>>,
}

/// One piece of evidence.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EvidenceRow {
    /// Referral.
    pub referral_id: Uuid,
    /// Position in the request.
    pub position: i32,
    /// Case.
    pub case_id: String,
    /// Trail sequence.
    pub trail_sequence: i64,
    /// Trail hash.
    pub trail_hash: String,
    /// Global event sequence.
    pub event_sequence: i64,
}

/// A new referral with its parts.
#[derive(Debug, Clone)]
pub struct NewReferral {
    /// Id.
    pub id: Uuid,
    /// Street.
    pub street_id: String,
    /// Case.
    pub case_id: String,
    /// Call.
    pub call_id: String,
    /// Department.
    pub department_id: String,
    /// People.
    pub person_ids: Vec<String>,
    /// Kind name.
    pub kind: String,
    /// Facts.
    pub facts: String,
    /// Actor JSON.
    pub created_by: serde_json::Value,
    /// Recipient names.
    pub recipients: Vec<String>,
    /// `(case_id, trail_sequence, trail_hash, event_sequence)`.
    pub evidence: Vec<(String, i64, String, i64)>,
}

const OVERALL: &str = "(SELECT CASE WHEN bool_and(x.state = 'HANDLED') THEN 'HANDLED' \
                       WHEN bool_or(x.state <> 'SENT') THEN 'RECEIVED' ELSE 'SENT' END \
                       FROM referral_recipients x WHERE x.referral_id = r.id)";

/// Inserts a referral, its recipients and evidence.
pub async fn insert(conn: &mut PgConnection, r: &NewReferral, now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO referrals (id, street_id, case_id, call_id, department_id, person_ids, kind, facts, created_by, \
         create_time, update_time) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$10)",
    )
    .bind(r.id)
    .bind(&r.street_id)
    .bind(&r.case_id)
    .bind(&r.call_id)
    .bind(&r.department_id)
    .bind(&r.person_ids)
    .bind(&r.kind)
    .bind(&r.facts)
    .bind(Json(&r.created_by))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for recipient in &r.recipients {
        sqlx::query("INSERT INTO referral_recipients (referral_id, recipient, state) VALUES ($1, $2, 'SENT')")
            .bind(r.id)
            .bind(recipient)
            .execute(&mut *conn)
            .await?;
    }
    for (i, (case_id, trail_sequence, hash, event_sequence)) in r.evidence.iter().enumerate() {
        sqlx::query(
            "INSERT INTO referral_evidence (referral_id, position, case_id, trail_sequence, trail_hash, event_sequence) \
             VALUES ($1,$2,$3,$4,$5,$6)",
        )
        .bind(r.id)
        .bind(i as i32)
        .bind(case_id)
        .bind(trail_sequence)
        .bind(hash)
        .bind(event_sequence)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A referral; with `lock`, held until the transaction ends.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> sqlx::Result<Option<ReferralRow>> {
    let lock = if lock { " FOR UPDATE OF r" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.*, {OVERALL} AS state FROM referrals r WHERE r.id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The recipients and evidence of some referrals.
pub async fn parts(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<(Vec<RecipientRow>, Vec<EvidenceRow>)> {
    let recipients =
        sqlx::query_as("SELECT * FROM referral_recipients WHERE referral_id = ANY($1) ORDER BY referral_id, recipient")
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?;
    let evidence =
        sqlx::query_as("SELECT * FROM referral_evidence WHERE referral_id = ANY($1) ORDER BY referral_id, position")
            .bind(ids)
            .fetch_all(conn)
            .await?;
    Ok((recipients, evidence))
}

/// Moves one recipient's part on.
pub async fn update_recipient(
    conn: &mut PgConnection,
    id: Uuid,
    recipient: &str,
    state: &str,
    outcome: Option<(&str, serde_json::Value)>,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    match outcome {
        None => {
            sqlx::query(
                "UPDATE referral_recipients SET state = $3, receive_time = $4 WHERE referral_id = $1 AND recipient = $2",
            )
            .bind(id)
            .bind(recipient)
            .bind(state)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        Some((text, by)) => {
            sqlx::query(
                "UPDATE referral_recipients SET state = $3, handle_time = $4, outcome = $5, handled_by = $6 \
                 WHERE referral_id = $1 AND recipient = $2",
            )
            .bind(id)
            .bind(recipient)
            .bind(state)
            .bind(now)
            .bind(text)
            .bind(Json(by))
            .execute(&mut *conn)
            .await?;
        }
    }
    sqlx::query("UPDATE referrals SET update_time = $2 WHERE id = $1").bind(id).bind(now).execute(conn).await?;
    Ok(())
}

/// The filters of ListReferrals (visibility already folded in).
#[derive(Debug, Clone, Default)]
pub struct ReferralFilter {
    /// Street or empty.
    pub street_id: String,
    /// Department or empty.
    pub department_id: String,
    /// Case or empty.
    pub case_id: String,
    /// Recipient name or empty.
    pub recipient: String,
    /// Overall state or empty.
    pub state: String,
    /// Kind or empty.
    pub kind: String,
    /// Created within.
    pub created: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// A page of referrals, newest first, after `(create_time, id)`.
pub async fn list(
    conn: &mut PgConnection,
    f: &ReferralFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<(Vec<ReferralRow>, i64)> {
    let matching = format!(
        "SELECT * FROM (SELECT r.*, {OVERALL} AS state FROM referrals r) r WHERE ($1 = '' OR street_id = $1) \
         AND ($2 = '' OR department_id = $2) AND ($3 = '' OR case_id = $3) \
         AND ($4 = '' OR EXISTS (SELECT 1 FROM referral_recipients x WHERE x.referral_id = r.id AND x.recipient = $4)) \
         AND ($5 = '' OR state = $5) AND ($6 = '' OR kind = $6) \
         AND ($7::timestamptz IS NULL OR (create_time >= $7 AND create_time < $8))"
    );
    let sql = page_sql(
        &matching,
        "($9::timestamptz IS NULL OR (m.create_time, m.id) < ($9, $10))",
        "m.create_time DESC, m.id DESC",
        "$11",
    );
    let (after_time, after_id) = after.map_or((None, Uuid::nil()), |(t, id)| (Some(t), id));
    let rows: Vec<Counted<ReferralRow>> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&f.street_id)
        .bind(&f.department_id)
        .bind(&f.case_id)
        .bind(&f.recipient)
        .bind(&f.state)
        .bind(&f.kind)
        .bind(f.created.map(|c| c.0))
        .bind(f.created.map(|c| c.1))
        .bind(after_time)
        .bind(after_id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(split_total(rows))
}

/// One incident (不到位、慢到位、到位不作为) kept for suggestions.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IncidentRow {
    /// REFERRAL_KIND_* name.
    pub kind: String,
    /// Case.
    pub case_id: String,
    /// Call.
    pub call_id: String,
    /// Department.
    pub department_id: String,
    /// Person, or empty for the department.
    pub person_id: String,
    /// Trail sequence.
    pub trail_sequence: i64,
    /// Trail hash.
    pub trail_hash: String,
    /// Global sequence.
    pub sequence: i64,
}

/// Incidents in `[start, end)` matching the filters, grouped by (kind, department, person)
/// in the caller; ordered so that groups are contiguous.
pub async fn incidents(
    conn: &mut PgConnection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    street_id: &str,
    department_id: &str,
    kind: &str,
) -> sqlx::Result<Vec<IncidentRow>> {
    sqlx::query_as(
        "SELECT kind, case_id, call_id, department_id, person_id, trail_sequence, trail_hash, sequence FROM incidents \
         WHERE occur_time >= $1 AND occur_time < $2 AND ($3 = '' OR street_id = $3) AND ($4 = '' OR department_id = $4) \
         AND ($5 = '' OR kind = $5) ORDER BY kind, department_id, person_id, sequence",
    )
    .bind(start)
    .bind(end)
    .bind(street_id)
    .bind(department_id)
    .bind(kind)
    .fetch_all(conn)
    .await
}

/// Cases already referred for (kind, department, person): person empty means referrals of
/// the department as a whole.
pub async fn referred_cases(
    conn: &mut PgConnection,
    kind: &str,
    department_id: &str,
    person_id: &str,
) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT case_id FROM referrals WHERE kind = $1 AND department_id = $2 \
         AND (($3 = '' AND person_ids = '{}') OR $3 = ANY(person_ids))",
    )
    .bind(kind)
    .bind(department_id)
    .bind(person_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(c,)| c).collect())
}
