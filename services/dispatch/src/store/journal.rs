//! The journal: every change of a case appends, in the change's own transaction, one
//! hash-chained trail entry (留痕) and one event to the outbox, and notifies live streams.
//! A request's changes are written together by [`record_all`] at the end of its
//! transaction. The case rows must already be locked (`FOR UPDATE`) by the caller, which
//! makes the per-case trail sequence safe; the global event sequence comes from
//! `event_counter`, whose row lock is the one every write in the service queues on: taken
//! once per request, last, and held only for the few statements before the commit.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use minhu_trail::{EntryContent, StoredEntry, canonical_json};
use serde_json::Value;
use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use crate::domain::model::{Actor, CaseState};

/// The channel live streams LISTEN on; the payload is the feed's new head.
pub const CHANNEL: &str = "minhu_dispatch_events";

/// One change to record.
#[derive(Debug, Clone)]
pub struct Change {
    /// The case.
    pub case_id: Uuid,
    /// The case's street.
    pub street_id: String,
    /// The call concerned, if one.
    pub call_id: Option<Uuid>,
    /// The department concerned, if one.
    pub department_id: String,
    /// `EVENT_TYPE_*` name.
    pub event_type: &'static str,
    /// Who.
    pub actor: Actor,
    /// Server time.
    pub occur_time: DateTime<Utc>,
    /// The case's state after the change.
    pub case_state: CaseState,
    /// The changed record(s) before; `{}` for creations.
    pub before: Value,
    /// After.
    pub after: Value,
    /// The encoded event details.
    pub payload: Vec<u8>,
}

/// What was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Global event sequence.
    pub event_sequence: i64,
    /// Per-case trail sequence.
    pub trail_sequence: i64,
    /// The entry's hash.
    pub hash: String,
}

/// Appends the trail entry and the event of `change`.
pub async fn record(tx: &mut PgConnection, change: Change) -> Result<Recorded, sqlx::Error> {
    let mut recorded = record_all(tx, vec![change]).await?;
    Ok(recorded.remove(0))
}

/// Appends the trail entries and events of `changes`, in their order: the heads of their
/// cases, then the event counter (once, for all of them: the last lock the request takes),
/// then the rows, the new heads and one notification.
pub async fn record_all(tx: &mut PgConnection, changes: Vec<Change>) -> Result<Vec<Recorded>, sqlx::Error> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut heads: HashMap<Uuid, (i64, String)> = HashMap::new();
    for change in &changes {
        if let std::collections::hash_map::Entry::Vacant(slot) = heads.entry(change.case_id) {
            let head: (i64, String) = sqlx::query_as("SELECT trail_length, trail_head FROM cases WHERE id = $1")
                .bind(change.case_id)
                .fetch_one(&mut *tx)
                .await?;
            slot.insert(head);
        }
    }
    // Taken last and held to commit: sequences become visible in order, without gaps.
    let count = i64::try_from(changes.len()).unwrap_or(i64::MAX);
    let (last,): (i64,) = sqlx::query_as("UPDATE event_counter SET last = last + $1 WHERE singleton RETURNING last")
        .bind(count)
        .fetch_one(&mut *tx)
        .await?;
    let mut rows = Vec::with_capacity(changes.len());
    for (i, change) in changes.into_iter().enumerate() {
        let event_sequence = last - count + 1 + i as i64;
        let head = heads.get_mut(&change.case_id).expect("every case's head was read");
        let trail_sequence = head.0 + 1;
        let actor_json = canonical_json(&change.actor);
        let before_json = canonical_json(&change.before);
        let after_json = canonical_json(&change.after);
        let hash = minhu_trail::hash(&EntryContent {
            prev_hash: &head.1,
            subject_id: &change.case_id.to_string(),
            sequence: trail_sequence,
            event_type: change.event_type,
            event_sequence,
            actor_json: &actor_json,
            occur_time: change.occur_time,
            before_json: &before_json,
            after_json: &after_json,
        });
        let prev_hash = std::mem::replace(&mut head.1, hash.clone());
        head.0 = trail_sequence;
        rows.push((change, event_sequence, trail_sequence, actor_json, before_json, after_json, prev_hash, hash));
    }
    let mut trail = QueryBuilder::new(
        "INSERT INTO trail_entries (case_id, sequence, event_type, event_sequence, actor_json, occur_time, \
         before_json, after_json, prev_hash, hash) ",
    );
    trail.push_values(&rows, |mut b, (c, event_sequence, trail_sequence, actor, before, after, prev, hash)| {
        b.push_bind(c.case_id)
            .push_bind(*trail_sequence)
            .push_bind(c.event_type)
            .push_bind(*event_sequence)
            .push_bind(actor)
            .push_bind(c.occur_time)
            .push_bind(before)
            .push_bind(after)
            .push_bind(prev)
            .push_bind(hash);
    });
    trail.build().execute(&mut *tx).await?;
    // The request's trace context, for consumers' spans to link to (one per request: every
    // change it records shares it).
    let trace_parent = minhu_telemetry::current_context().map(|c| c.traceparent);
    let mut events = QueryBuilder::new(
        "INSERT INTO events (sequence, event_type, case_id, street_id, call_id, department_id, occur_time, \
         actor_json, case_state, trail_sequence, trail_hash, payload, trace_parent) ",
    );
    events.push_values(&rows, |mut b, (c, event_sequence, trail_sequence, actor, _, _, _, hash)| {
        b.push_bind(*event_sequence)
            .push_bind(c.event_type)
            .push_bind(c.case_id)
            .push_bind(&c.street_id)
            .push_bind(c.call_id.map(|c| c.to_string()).unwrap_or_default())
            .push_bind(&c.department_id)
            .push_bind(c.occur_time)
            .push_bind(actor)
            .push_bind(c.case_state.as_str())
            .push_bind(*trail_sequence)
            .push_bind(hash)
            .push_bind(&c.payload)
            .push_bind(trace_parent.as_deref());
    });
    events.build().execute(&mut *tx).await?;
    for (case_id, (length, head)) in &heads {
        sqlx::query("UPDATE cases SET trail_length = $2, trail_head = $3 WHERE id = $1")
            .bind(case_id)
            .bind(length)
            .bind(head)
            .execute(&mut *tx)
            .await?;
    }
    // Delivered at commit, and only if it commits.
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(last.to_string()).execute(&mut *tx).await?;
    Ok(rows
        .into_iter()
        .map(|(_, event_sequence, trail_sequence, _, _, _, _, hash)| Recorded { event_sequence, trail_sequence, hash })
        .collect())
}

/// A trail row: sequence, event type, event sequence, actor, time, before, after, prev_hash, hash.
type TrailRow = (i64, String, i64, String, DateTime<Utc>, String, String, String, String);

/// A case's trail entries after `after`, at most `limit`.
pub async fn trail(
    conn: &mut PgConnection,
    case_id: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredEntry>, sqlx::Error> {
    let rows: Vec<TrailRow> = sqlx::query_as(
        "SELECT sequence, event_type, event_sequence, actor_json, occur_time, before_json, after_json, prev_hash, hash \
         FROM trail_entries WHERE case_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
    )
    .bind(case_id)
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

/// Number of entries of a case after `after`.
pub async fn trail_count(conn: &mut PgConnection, case_id: Uuid, after: i64) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM trail_entries WHERE case_id = $1 AND sequence > $2")
        .bind(case_id)
        .bind(after)
        .fetch_one(conn)
        .await?;
    Ok(n)
}

/// A stored event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    /// Global sequence.
    pub sequence: i64,
    /// `EVENT_TYPE_*` name.
    pub event_type: String,
    /// The case.
    pub case_id: Uuid,
    /// Its street.
    pub street_id: String,
    /// The call, or empty.
    pub call_id: String,
    /// The department, or empty.
    pub department_id: String,
    /// When.
    pub occur_time: DateTime<Utc>,
    /// Actor JSON.
    pub actor_json: String,
    /// `CASE_STATE_*` after.
    pub case_state: String,
    /// Trail sequence.
    pub trail_sequence: i64,
    /// Trail hash.
    pub trail_hash: String,
    /// Encoded details.
    pub payload: Vec<u8>,
    /// The W3C traceparent of the request that produced it, if it was traced.
    pub trace_parent: Option<String>,
}

/// Events after `after` (optionally of one case), in order, at most `limit`.
pub async fn events_after(
    conn: &mut PgConnection,
    after: i64,
    case_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sequence, event_type, case_id, street_id, call_id, department_id, occur_time, actor_json, case_state, \
         trail_sequence, trail_hash, payload, trace_parent FROM events \
         WHERE sequence > $1 AND ($2::uuid IS NULL OR case_id = $2) ORDER BY sequence LIMIT $3",
    )
    .bind(after)
    .bind(case_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The feed's head: the last sequence handed out (and committed).
pub async fn head(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    let (last,): (i64,) = sqlx::query_as("SELECT last FROM event_counter").fetch_one(conn).await?;
    Ok(last)
}
