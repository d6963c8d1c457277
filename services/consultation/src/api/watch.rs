//! The live feed (实时): WatchConsultations follows the outbox from a cursor — every
//! event of the plans and decisions the caller may read, then each new one as it commits
//! (woken by the shared [`Head`](crate::feed), LISTEN/NOTIFY with polling as fallback). A
//! street's portal sees each answer to its opinions, reasons included, as it is given;
//! resuming from the last sequence seen misses nothing and repeats nothing. An idle stream
//! sends a heartbeat every `heartbeat` (15 s) so that proxies keep it open.

use minhu_proto::consultation::v1 as pb;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};

use super::{BoxStream, Consultation, caller};
use crate::{domain::access, error::ConsultationError, store::journal};

/// Events read per turn.
const BATCH: i64 = 500;

pub(super) async fn watch_consultations(
    s: &Consultation,
    r: Request<pb::WatchConsultationsRequest>,
) -> Result<BoxStream<pb::WatchConsultationsResponse>, ConsultationError> {
    let (p, req) = caller(r)?;
    if req.after_sequence < 0 {
        return Err(ConsultationError::field("after_sequence", "must not be negative"));
    }
    let subject = minhu_grpc::optional_uuid("subject_id", &req.subject_id)?;
    let mut conn = s.d.pool.acquire().await?;
    if let Some(id) = subject {
        super::readable_subject(&mut conn, &p, id).await?;
    }
    let subject = subject.map(|id| id.to_string());
    let head_now = journal::head(&mut conn).await?;
    drop(conn);
    if req.after_sequence > head_now {
        return Err(ConsultationError::OutOfRange(format!(
            "after_sequence {} is beyond the feed's head {head_now}",
            req.after_sequence
        )));
    }
    let (out, rx) = mpsc::channel(64);
    let (pool, mut head, heartbeat) = (s.d.pool.clone(), s.d.head.subscribe(), s.d.heartbeat);
    let mut cursor = req.after_sequence;
    tokio::spawn(async move {
        loop {
            let rows = match pool.acquire().await {
                Ok(mut conn) => journal::events_after(&mut conn, cursor, subject.as_deref(), BATCH).await,
                Err(e) => Err(e),
            };
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    let _ = out.send(Err(Status::unavailable(format!("reading the feed: {e}")))).await;
                    return;
                }
            };
            let full = rows.len() == BATCH as usize;
            for row in rows {
                cursor = row.sequence;
                if !access::may_read(&p, &row.department_id, &row.street_ids) {
                    continue;
                }
                let Ok(message) = pb::WatchConsultationsResponse::decode(row.payload.as_slice()) else {
                    tracing::error!(sequence = row.sequence, "an event that does not decode; skipped");
                    continue;
                };
                if out.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            if !full {
                // Wait for the head to move; each idle `heartbeat` says the stream is alive.
                loop {
                    let woke = tokio::select! {
                        changed = head.changed() => Some(changed.is_ok()),
                        _ = out.closed() => Some(false),
                        _ = tokio::time::sleep(heartbeat) => None,
                    };
                    match woke {
                        Some(true) => break,
                        Some(false) => return,
                        None => {
                            let beat = pb::WatchConsultationsResponse {
                                sequence: cursor,
                                heartbeat: true,
                                ..Default::default()
                            };
                            if out.send(Ok(beat)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}
