//! The journal: every change of a plan or decision appends, in the change's own
//! transaction, one hash-chained trail entry (留痕) and one event to the outbox, and
//! notifies live watches at commit. The aggregate's row must already be locked
//! (`FOR UPDATE`) by the caller, which makes its trail sequence safe; the feed's sequence
//! comes from `event_counter`, taken last so that sequences become visible in order and
//! without gaps.

use chrono::{DateTime, Utc};
use minhu_proto::consultation::v1 as pb;
use prost::Message as _;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use minhu_trail::{EntryContent, StoredEntry, canonical_json};

use crate::domain::model::Actor;

/// The channel watches LISTEN on; the payload is the event's sequence.
pub const CHANNEL: &str = "minhu_consultation_events";

/// Which aggregate a change is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A plan.
    Plan(Uuid),
    /// A decision.
    Decision(Uuid),
}

impl Subject {
    fn table(self) -> &'static str {
        match self {
            Self::Plan(_) => "plans",
            Self::Decision(_) => "decisions",
        }
    }

    /// The aggregate's id.
    pub fn id(self) -> Uuid {
        match self {
            Self::Plan(id) | Self::Decision(id) => id,
        }
    }
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct Change {
    /// The plan or decision.
    pub subject: Subject,
    /// Its department.
    pub department_id: String,
    /// Its streets: the event's street audience.
    pub street_ids: Vec<String>,
    /// The street concerned, if one.
    pub street_id: String,
    /// What happened.
    pub event_type: pb::ConsultationEventType,
    /// Who.
    pub actor: Actor,
    /// Server time.
    pub occur_time: DateTime<Utc>,
    /// The changed record before; `{}` for creations.
    pub before: Value,
    /// After.
    pub after: Value,
    /// The record the live feed shows with the event.
    pub record: pb::watch_consultations_response::Record,
}

/// Appends the trail entry and the event of `change`; returns the event's sequence.
pub async fn record(tx: &mut PgConnection, change: Change) -> Result<i64, sqlx::Error> {
    let subject_id = change.subject.id().to_string();
    let table = change.subject.table();
    let (length, head): (i64, String) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT trail_length, trail_head FROM {table} WHERE id = $1")))
            .bind(change.subject.id())
            .fetch_one(&mut *tx)
            .await?;
    // Taken last and held to commit: sequences become visible in order, without gaps.
    let (event_sequence,): (i64,) =
        sqlx::query_as("UPDATE event_counter SET last = last + 1 WHERE singleton RETURNING last")
            .fetch_one(&mut *tx)
            .await?;
    let sequence = length + 1;
    let event_type = change.event_type.as_str_name();
    let (actor_json, before_json, after_json) =
        (canonical_json(&change.actor), canonical_json(&change.before), canonical_json(&change.after));
    let hash = minhu_trail::hash(&EntryContent {
        prev_hash: &head,
        subject_id: &subject_id,
        sequence,
        event_type,
        event_sequence,
        actor_json: &actor_json,
        occur_time: change.occur_time,
        before_json: &before_json,
        after_json: &after_json,
    });
    sqlx::query(
        "INSERT INTO trail_entries (subject_id, sequence, event_type, event_sequence, actor_json, occur_time, \
         before_json, after_json, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&subject_id)
    .bind(sequence)
    .bind(event_type)
    .bind(event_sequence)
    .bind(&actor_json)
    .bind(change.occur_time)
    .bind(&before_json)
    .bind(&after_json)
    .bind(&head)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    let message = pb::WatchConsultationsResponse {
        sequence: event_sequence,
        event_type: change.event_type as i32,
        subject_id: subject_id.clone(),
        department_id: change.department_id.clone(),
        street_id: change.street_id.clone(),
        occur_time: Some(crate::api::convert::ts(change.occur_time)),
        record: Some(change.record),
        heartbeat: false,
    };
    sqlx::query(
        "INSERT INTO events (sequence, event_type, subject_id, department_id, street_ids, occur_time, payload) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(event_sequence)
    .bind(event_type)
    .bind(&subject_id)
    .bind(&change.department_id)
    .bind(&change.street_ids)
    .bind(change.occur_time)
    .bind(message.encode_to_vec())
    .execute(&mut *tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {table} SET trail_length = $2, trail_head = $3 WHERE id = $1")))
        .bind(change.subject.id())
        .bind(sequence)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    // Delivered at commit, and only if it commits.
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(event_sequence.to_string()).execute(&mut *tx).await?;
    Ok(event_sequence)
}

/// A trail row, in [`StoredEntry`]'s field order.
type TrailRow = (i64, String, i64, String, DateTime<Utc>, String, String, String, String);

/// A subject's trail entries after `after`, at most `limit`.
pub async fn trail(
    conn: &mut PgConnection,
    subject_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredEntry>, sqlx::Error> {
    let rows: Vec<TrailRow> = sqlx::query_as(
        "SELECT sequence, event_type, event_sequence, actor_json, occur_time, before_json, after_json, prev_hash, hash \
         FROM trail_entries WHERE subject_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
    )
    .bind(subject_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| StoredEntry {
            sequence: r.0,
            event_type: r.1,
            event_sequence: r.2,
            actor_json: r.3,
            occur_time: r.4,
            before_json: r.5,
            after_json: r.6,
            prev_hash: r.7,
            hash: r.8,
        })
        .collect())
}

/// The number of a subject's trail entries.
pub async fn trail_count(conn: &mut PgConnection, subject_id: &str) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM trail_entries WHERE subject_id = $1")
        .bind(subject_id)
        .fetch_one(conn)
        .await?;
    Ok(n)
}

/// A stored event: its audience and the encoded feed message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    /// Feed sequence.
    pub sequence: i64,
    /// The plan or decision.
    pub subject_id: String,
    /// Its department.
    pub department_id: String,
    /// Its streets.
    pub street_ids: Vec<String>,
    /// The encoded `WatchConsultationsResponse`.
    pub payload: Vec<u8>,
}

/// Events after `after` (of one subject, if given), in order, at most `limit`.
pub async fn events_after(
    conn: &mut PgConnection,
    after: i64,
    subject_id: Option<&str>,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sequence, subject_id, department_id, street_ids, payload FROM events \
         WHERE sequence > $1 AND ($2::text IS NULL OR subject_id = $2) ORDER BY sequence LIMIT $3",
    )
    .bind(after)
    .bind(subject_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The feed's head: the last sequence handed out (and committed).
pub async fn head(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    let (last,): (i64,) = sqlx::query_as("SELECT last FROM event_counter").fetch_one(conn).await?;
    Ok(last)
}
