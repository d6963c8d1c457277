//! Live progress (实时进度) for the district and street screens: WatchCase (one case,
//! snapshot after every change) and WatchCases (every readable case matching a filter, one
//! message per event).
//!
//! Both follow the outbox like StreamEvents: they wake when the shared [`Head`](crate::feed)
//! moves (LISTEN/NOTIFY, with its polling fallback), read the events after their cursor,
//! and so never miss or reorder one. Each batch of events and the state presented with it
//! are read in one REPEATABLE READ snapshot, so a message never shows a case older than its
//! event; with several events in one batch, each carries the case as it stood after the
//! batch's last event.
//!
//! Access is checked per message, not only at the start: a department whose call is
//! withdrawn stops seeing the case (WatchCase then ends with NOT_FOUND; WatchCases skips
//! it), exactly as GetCase and ListCases would answer at that moment.

use std::collections::HashMap;

use minhu_grpc::Principal;
use minhu_proto::dispatch::v1 as pb;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};
use uuid::Uuid;

use super::{
    BoxStream, Dispatch, caller,
    cases::{case_pb, query, scope},
    convert, readable_case,
    streams::event_pb,
    uuid,
};
use crate::{
    error::DispatchError,
    store::{Scope, calls, cases, journal, tasks},
};

/// Events read per turn.
const BATCH: i64 = 500;

/// A read-only transaction that sees one consistent state of the database.
async fn snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    Ok(tx)
}

/// Waits until the feed's head moves: `false` once the client went away or the service
/// is stopping.
async fn head_moved<T>(head: &mut watch::Receiver<i64>, out: &mpsc::Sender<T>) -> bool {
    tokio::select! {
        changed = head.changed() => changed.is_ok(),
        _ = out.closed() => false,
    }
}

/// A failure while following the feed: the client should reconnect.
fn broken(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("reading the feed: {e}"))
}

/// The case with its calls and tasks, as `p` may see it, and whether the case is final.
async fn case_snapshot(
    conn: &mut PgConnection,
    s: &Dispatch,
    p: &Principal,
    id: Uuid,
) -> Result<(pb::WatchCaseResponse, bool), DispatchError> {
    let (row, audience) = readable_case(conn, p, id, false).await?;
    let case = case_pb(conn, &s.d.cipher, p, &row, &audience).await?;
    let calls = calls::of_case(conn, id).await?.iter().map(convert::call_pb).collect();
    let tasks = tasks::of_case(conn, id).await?.iter().map(convert::task_pb).collect();
    Ok((pb::WatchCaseResponse { case: Some(case), calls, tasks, event: None }, row.case.state.is_final()))
}

pub(super) async fn watch_case(
    s: &Dispatch,
    r: Request<pb::WatchCaseRequest>,
) -> Result<BoxStream<pb::WatchCaseResponse>, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("case_id", &req.case_id)?;
    // The first snapshot and the cursor come from one snapshot: the stream continues
    // exactly after what the first message shows.
    let mut tx = snapshot(&s.d.pool).await?;
    let mut cursor = journal::head(&mut tx).await?;
    let (first, finished) = case_snapshot(&mut tx, s, &p, id).await?;
    tx.commit().await?;
    let (out, rx) = mpsc::channel(16);
    let (s, mut head) = (s.clone(), s.d.head.subscribe());
    tokio::spawn(async move {
        if out.send(Ok(first)).await.is_err() || finished {
            return;
        }
        loop {
            let turn = async {
                let mut tx = snapshot(&s.d.pool).await.map_err(broken)?;
                let rows = journal::events_after(&mut tx, cursor, Some(id), BATCH).await.map_err(broken)?;
                if rows.is_empty() {
                    return Ok((rows, None));
                }
                let snap = match case_snapshot(&mut tx, &s, &p, id).await {
                    Ok(snap) => snap,
                    Err(e) if e.is_not_found() => return Err(Status::from(e)),
                    Err(e) => return Err(broken(e)),
                };
                Ok((rows, Some(snap)))
            };
            let (rows, snap) = match turn.await {
                Ok(turn) => turn,
                Err(status) => {
                    let _ = out.send(Err(status)).await;
                    return;
                }
            };
            if let Some((snap, finished)) = snap {
                for row in &rows {
                    cursor = row.sequence;
                    let message = pb::WatchCaseResponse { event: Some(event_pb(row)), ..snap.clone() };
                    if out.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
                // Closed or declined: nothing more will happen to the case.
                if finished {
                    return;
                }
            }
            if rows.len() < BATCH as usize && !head_moved(&mut head, &out).await {
                return;
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

pub(super) async fn watch_cases(
    s: &Dispatch,
    r: Request<pb::WatchCasesRequest>,
) -> Result<BoxStream<pb::WatchCasesResponse>, DispatchError> {
    let (p, req) = caller(r)?;
    let scope = scope(&p)?;
    let mut filter = query(req.filter.as_ref())?;
    // A street's screen asking for another street would only ever stay silent: say so.
    if let Scope::Street(own) = &scope
        && !filter.street_id.is_empty()
        && &filter.street_id != own
    {
        return Err(DispatchError::denied(format!("street `{own}` watches only its own cases")));
    }
    // States are matched against the event (the state it left the case in); everything
    // else against the case after the event, by the same SQL as ListCases.
    let states: Vec<String> = std::mem::take(&mut filter.states);
    let mut conn = s.d.pool.acquire().await?;
    let mut cursor = journal::head(&mut conn).await?;
    drop(conn);
    let (out, rx) = mpsc::channel(64);
    let (s, mut head) = (s.clone(), s.d.head.subscribe());
    tokio::spawn(async move {
        loop {
            let turn = async {
                let mut tx = snapshot(&s.d.pool).await.map_err(broken)?;
                let rows = journal::events_after(&mut tx, cursor, None, BATCH).await.map_err(broken)?;
                let mut ids: Vec<Uuid> = rows
                    .iter()
                    .filter(|e| states.is_empty() || states.contains(&e.case_state))
                    .map(|e| e.case_id)
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                let matching = if ids.is_empty() {
                    Vec::new()
                } else {
                    cases::matching(&mut tx, &scope, &filter, &ids).await.map_err(broken)?
                };
                let mut shown = HashMap::new();
                for id in matching {
                    let Some(row) = cases::get(&mut tx, id, false).await.map_err(broken)? else { continue };
                    let audience = cases::audience(&mut tx, id, &row.case.street_id).await.map_err(broken)?;
                    let case = case_pb(&mut tx, &s.d.cipher, &p, &row, &audience).await.map_err(broken)?;
                    shown.insert(id, case);
                }
                Ok::<_, Status>((rows, shown))
            };
            let (rows, shown) = match turn.await {
                Ok(turn) => turn,
                Err(status) => {
                    let _ = out.send(Err(status)).await;
                    return;
                }
            };
            let full = rows.len() == BATCH as usize;
            for row in rows {
                cursor = row.sequence;
                let state_matches = states.is_empty() || states.contains(&row.case_state);
                let Some(case) = shown.get(&row.case_id).filter(|_| state_matches) else { continue };
                let message = pb::WatchCasesResponse { case: Some(case.clone()), event: Some(event_pb(&row)) };
                if out.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            if !full && !head_moved(&mut head, &out).await {
                return;
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}
