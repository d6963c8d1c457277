//! The trail (留痕) and the event feed: listing and verifying a case's trail, and the
//! live feed from a cursor (StreamEvents).

use minhu_grpc::Principal;
use minhu_proto::dispatch::v1 as pb;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Request;

use super::{BoxStream, Dispatch, RPCS, caller, convert, readable_case, uuid};
use crate::{
    domain::{access, model::Actor},
    error::DispatchError,
    events::{code, ts},
    store::journal::{self, EventRow},
};

fn actor_of(json: &str) -> Option<minhu_proto::common::v1::Actor> {
    serde_json::from_str::<Actor>(json).ok().map(|a| convert::actor_pb(&a))
}

pub(super) async fn list_trail_entries(
    s: &Dispatch,
    r: Request<pb::ListTrailEntriesRequest>,
) -> Result<pb::ListTrailEntriesResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("case_id", &req.case_id)?;
    let page =
        RPCS.page::<i64>(req.page_size, &req.page_token, &["trail", &req.case_id, &req.after_sequence.to_string()])?;
    let mut conn = s.d.pool.acquire().await?;
    readable_case(&mut conn, &p, id, false).await?;
    let after = page.after.unwrap_or(req.after_sequence.max(0));
    let total = journal::trail_count(&mut conn, id, req.after_sequence.max(0)).await?;
    let mut rows = journal::trail(&mut conn, id, after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |e| e.sequence);
    let entries = rows
        .into_iter()
        .map(|e| pb::TrailEntry {
            case_id: id.to_string(),
            sequence: e.sequence,
            event_type: code(pb::EventType::from_str_name(&e.event_type)),
            event_sequence: e.event_sequence,
            actor: actor_of(&e.actor_json),
            occur_time: ts(e.occur_time),
            before_json: e.before_json,
            after_json: e.after_json,
            prev_hash: e.prev_hash,
            hash: e.hash,
        })
        .collect();
    Ok(pb::ListTrailEntriesResponse { entries, next_page_token, total_size: total as i32 })
}

pub(super) async fn verify_trail(
    s: &Dispatch,
    r: Request<pb::VerifyTrailRequest>,
) -> Result<pb::VerifyTrailResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("case_id", &req.case_id)?;
    let mut conn = s.d.pool.acquire().await?;
    readable_case(&mut conn, &p, id, false).await?;
    let entries = journal::trail(&mut conn, id, 0, i64::MAX).await?;
    let v = minhu_trail::verify(&id.to_string(), &entries);
    Ok(pb::VerifyTrailResponse {
        verified: v.verified,
        entries_checked: v.entries_checked,
        first_broken_sequence: v.first_broken_sequence,
        reason: v.reason,
        head_hash: v.head_hash,
    })
}

/// An outbox row as the feed's event.
pub(super) fn event_pb(row: &EventRow) -> pb::Event {
    let mut event = pb::Event::decode(row.payload.as_slice()).unwrap_or_default();
    event.sequence = row.sequence;
    event.event_type = code(pb::EventType::from_str_name(&row.event_type));
    event.case_id = row.case_id.to_string();
    event.street_id = row.street_id.clone();
    event.call_id = row.call_id.clone();
    event.department_id = row.department_id.clone();
    event.occur_time = ts(row.occur_time);
    event.actor = actor_of(&row.actor_json);
    event.case_state = code(pb::CaseState::from_str_name(&row.case_state));
    event.trail_sequence = row.trail_sequence;
    event.trail_hash = row.trail_hash.clone();
    event.trace_parent = row.trace_parent.clone().unwrap_or_default();
    event
}

pub(super) async fn stream_events(
    s: &Dispatch,
    r: Request<pb::StreamEventsRequest>,
) -> Result<BoxStream<pb::StreamEventsResponse>, DispatchError> {
    let (p, req): (Principal, _) = caller(r)?;
    if !access::may_stream_events(&p) {
        return Err(DispatchError::denied("the event feed is for services and district admins"));
    }
    let mut conn = s.d.pool.acquire().await?;
    let head = journal::head(&mut conn).await?;
    drop(conn);
    if req.after_sequence < 0 || req.after_sequence > head {
        return Err(minhu_grpc::ApiError::OutOfRange(format!(
            "after_sequence {} is beyond the head {head}",
            req.after_sequence
        ))
        .into());
    }
    let types: Vec<i32> = req.event_types.clone();
    let (tx, rx) = mpsc::channel(64);
    let (pool, mut watch, feed) = (s.d.pool.clone(), s.d.head.subscribe(), s.d.feed.clone());
    let mut cursor = req.after_sequence;
    tokio::spawn(async move {
        loop {
            // Drain what is committed after the cursor, then wait for the head to move.
            let rows = match pool.acquire().await {
                Ok(mut conn) => journal::events_after(&mut conn, cursor, None, 500).await,
                Err(e) => Err(e),
            };
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    let _ = tx.send(Err(tonic::Status::unavailable(format!("reading the feed: {e}")))).await;
                    return;
                }
            };
            let drained = rows.len() < 500;
            for row in rows {
                cursor = row.sequence;
                let event = event_pb(&row);
                if !types.is_empty() && !types.contains(&event.event_type) {
                    continue;
                }
                let head = (*watch.borrow()).max(cursor);
                if tx.send(Ok(pb::StreamEventsResponse { event: Some(event), head_sequence: head })).await.is_err() {
                    return;
                }
            }
            if !drained {
                continue;
            }
            tokio::select! {
                changed = watch.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(feed.heartbeat) => {
                    let head = (*watch.borrow()).max(cursor);
                    if tx.send(Ok(pb::StreamEventsResponse { event: None, head_sequence: head })).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}
