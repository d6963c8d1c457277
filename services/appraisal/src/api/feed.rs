//! The feed's state (GetFeedStatus) and rebuilding every score by replaying the feed from
//! sequence zero (RebuildScores).
//!
//! A rebuild runs in ONE transaction on a connection of its own, in two phases:
//!
//! | phase | what | the live consumer |
//! |---|---|---|
//! | replay | empty temporary copies of the derived tables shadow the real ones; the feed is replayed from zero up to the head seen at the start through the same [`consumer::apply`] as the live path | goes on applying new events to the real tables |
//! | swap | the live cursor is locked, the events the consumer applied meanwhile are replayed too, the real tables are replaced by the copies, closed periods re-frozen if asked, commit | waits for the commit only |
//!
//! Until the commit, readers keep seeing the old figures (MVCC); the commit swaps the new
//! ones in at once, at exactly the live cursor, so the consumer resumes where it was.

use chrono::{DateTime, Utc};
use minhu_proto::{appraisal::v1 as pb, dispatch::v1 as dispatch};
use sqlx::{Connection as _, PgConnection, PgPool};
use tokio::sync::{mpsc, watch};
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::{Request, Status};

use super::{Appraisal, RebuildStream, caller, periods, ts};
use crate::{
    consumer::{self, FeedSource},
    domain::policy::{self, require},
    error::AppraisalError,
    store::{periods as periods_store, records},
};

/// Where a rebuild stands.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    applied: i64,
    head: i64,
    done: bool,
    error: Option<String>,
    start: DateTime<Utc>,
}

/// The rebuild in progress (or the last one), for re-attaching by request_id.
#[derive(Debug)]
pub(crate) struct RunningRebuild {
    request_id: String,
    progress: watch::Receiver<Progress>,
}

pub(super) async fn get_feed_status(
    s: &Appraisal,
    r: Request<pb::GetFeedStatusRequest>,
) -> Result<pb::FeedStatus, AppraisalError> {
    let (p, _) = caller(r)?;
    require(policy::may_read_feed(&p), "read the feed status")?;
    let mut conn = s.pool.acquire().await?;
    let cursor = records::cursor(&mut conn, false).await?;
    let sub = consumer::snapshot(&s.subscription);
    let head = sub.head_sequence.max(cursor.last_sequence);
    Ok(pb::FeedStatus {
        last_applied_sequence: cursor.last_sequence,
        head_sequence: head,
        lag: head - cursor.last_sequence,
        last_event_time: cursor.last_event_time.and_then(ts),
        last_apply_time: cursor.last_apply_time.and_then(ts),
        connected: sub.connected,
        last_error: sub.last_error,
        rebuilding: sub.rebuilding,
    })
}

pub(super) async fn rebuild_scores(
    s: &Appraisal,
    r: Request<pb::RebuildScoresRequest>,
) -> Result<RebuildStream, AppraisalError> {
    let (p, req) = caller(r)?;
    require(policy::is_district_admin(&p), "rebuild scores")?;
    let mut v = minhu_grpc::FieldViolations::new();
    v.optional_text("request_id", &req.request_id, 128);
    v.into_result()?;
    let progress = {
        let mut slot = s.rebuild.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(running) if !req.request_id.is_empty() && running.request_id == req.request_id => {
                running.progress.clone()
            }
            Some(running) if !running.progress.borrow().done && running.progress.borrow().error.is_none() => {
                return Err(AppraisalError::precondition(
                    "REBUILD_RUNNING",
                    "rebuilds",
                    "another rebuild is running; retry with its request_id to follow it",
                ));
            }
            _ => {
                let start = Progress { applied: 0, head: 0, done: false, error: None, start: Utc::now() };
                let (tx, rx) = watch::channel(start);
                *slot = Some(RunningRebuild { request_id: req.request_id.clone(), progress: rx.clone() });
                let (pool, feed, sub) = (s.pool.clone(), s.feed.clone(), s.subscription.clone());
                let include_closed = req.include_closed_periods;
                tokio::spawn(async move {
                    consumer::update(&sub, |s| s.rebuilding = true);
                    let head = consumer::snapshot(&sub).head_sequence;
                    if let Err(error) = rebuild(&pool, &feed, head, include_closed, &tx).await {
                        tracing::error!(%error, "rebuild failed");
                        tx.send_modify(|p| p.error = Some(error));
                    }
                    consumer::update(&sub, |s| s.rebuilding = false);
                });
                rx
            }
        }
    };
    Ok(follow(progress))
}

/// Streams a rebuild's progress until it is done or fails.
fn follow(mut progress: watch::Receiver<Progress>) -> RebuildStream {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let p = progress.borrow_and_update().clone();
            if let Some(error) = p.error {
                let _ = tx.send(Err(Status::unavailable(format!("the rebuild failed: {error}")))).await;
                return;
            }
            let message = pb::RebuildScoresResponse {
                applied_sequence: p.applied,
                head_sequence: p.head,
                done: p.done,
                start_time: ts(p.start),
            };
            if tx.send(Ok(message)).await.is_err() || p.done {
                return;
            }
            // A rebuild reports at least every few seconds: wait for a change, but not forever.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), progress.changed()).await;
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// The replay itself (see the module's notes).
async fn rebuild(
    pool: &PgPool,
    feed: &FeedSource,
    known_head: i64,
    include_closed: bool,
    progress: &watch::Sender<Progress>,
) -> Result<(), String> {
    // A connection of its own, closed at the end: its shadow tables must be in place before
    // it prepares any statement, and no pooled connection may keep them.
    let mut conn = PgConnection::connect_with(&pool.connect_options()).await.map_err(|e| e.to_string())?;
    let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
    let schema = records::schema(&mut tx).await.map_err(|e| e.to_string())?;
    let live = records::cursor(&mut tx, false).await.map_err(|e| e.to_string())?.last_sequence;
    records::shadow(&mut tx, &schema).await.map_err(|e| e.to_string())?;
    let target = live.max(known_head);
    progress.send_modify(|p| p.head = target);
    let mut replay = Replay { feed, stream: None, applied: 0 };
    // Phase 1, the long one: replay up to the head seen at the start into the shadow
    // tables; the live consumer goes on applying new events meanwhile.
    replay.up_to(&mut tx, target, progress).await?;
    // Phase 2, short: hold the live cursor (the consumer waits from here), replay what it
    // applied during phase 1, swap the tables in and commit.
    let live = records::lock_live_cursor(&mut tx, &schema).await.map_err(|e| e.to_string())?;
    replay.up_to(&mut tx, live, progress).await?;
    records::swap_in_shadow(&mut tx, &schema).await.map_err(|e| e.to_string())?;
    if include_closed {
        for period in periods_store::closed(&mut tx).await.map_err(|e| e.to_string())? {
            periods::freeze(&mut tx, &period).await.map_err(|e| e.to_string())?;
        }
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    let _ = conn.close().await;
    let applied = replay.applied;
    progress.send_modify(|p| {
        p.applied = applied;
        p.head = p.head.max(applied);
        p.done = true;
    });
    Ok(())
}

/// The rebuild's own subscription from sequence zero, opened when first needed.
struct Replay<'a> {
    feed: &'a FeedSource,
    stream: Option<tonic::Streaming<dispatch::StreamEventsResponse>>,
    applied: i64,
}

impl Replay<'_> {
    /// Applies events into the shadow tables until `target` is applied.
    async fn up_to(
        &mut self,
        tx: &mut PgConnection,
        target: i64,
        progress: &watch::Sender<Progress>,
    ) -> Result<(), String> {
        while self.applied < target {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => {
                    let mut client = self.feed.client().map_err(|e| e.to_string())?;
                    let stream = client
                        .stream_events(dispatch::StreamEventsRequest::default())
                        .await
                        .map_err(|s| s.message().to_owned())?
                        .into_inner();
                    self.stream.insert(stream)
                }
            };
            let Some(message) = stream.next().await else { return Err("the feed ended early".into()) };
            let message = message.map_err(|s| s.message().to_owned())?;
            let Some(event) = message.event else { continue };
            consumer::apply(tx, &event).await.map_err(|e| e.to_string())?;
            self.applied = event.sequence;
            if self.applied % 100 == 0 {
                let applied = self.applied;
                progress.send_modify(|p| p.applied = applied);
            }
        }
        Ok(())
    }
}
