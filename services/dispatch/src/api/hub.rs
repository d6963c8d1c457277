//! The watch hub: one reader of the outbox per replica for every WatchCase/WatchCases
//! stream. When the feed's head moves it reads the new events and, once per batch, what
//! they changed (the case with its audience and parts, the one call, the one task), and
//! fans the batch out in memory through a bounded broadcast channel. Subscribers filter
//! and mask per caller without the database, so database work per event does not grow
//! with the number of watchers ([`WatchMeter`] counts it).
//!
//! A subscriber that falls `watch_buffer` batches behind is not waited for: the channel
//! drops its oldest batches and the subscriber ends its stream, telling the client to
//! resume with its last token.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use minhu_proto::dispatch::v1 as pb;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::{cases::CaseParts, streams::event_pb};
use crate::{
    FeedConfig,
    domain::{
        access::Audience,
        model::{Call, Task},
    },
    store::{
        calls,
        cases::{self, CaseRow},
        journal::{self, EventRow},
        tasks,
    },
};

/// Events read per turn.
pub(super) const BATCH: i64 = 500;

/// How long the hub waits before re-reading after a failed turn (the subscribers wait
/// with it; nothing is skipped).
const RETRY: Duration = Duration::from_millis(500);

/// Statements the watch streams ran against the database: the hub's turns and the
/// backlogs of resuming subscribers.
#[derive(Debug, Clone, Default)]
pub struct WatchMeter(Arc<AtomicU64>);

impl WatchMeter {
    /// Statements so far.
    pub fn statements(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::SeqCst);
    }
}

/// A case as the hub read it once for every subscriber.
#[derive(Debug)]
pub(super) struct CaseView {
    pub row: CaseRow,
    pub audience: Audience,
    pub parts: CaseParts,
}

/// One event with what it changed, as they stood after the batch's last event.
#[derive(Debug)]
pub(super) struct Item {
    pub row: EventRow,
    pub event: pb::Event,
    /// The case (`None` only if it vanished, which cases do not).
    pub case: Option<Arc<CaseView>>,
    /// The call the event is about.
    pub call: Option<Arc<Call>>,
    /// The task the event is about.
    pub task: Option<Arc<Task>>,
}

/// Events in feed order.
pub(super) type Batch = Arc<Vec<Item>>;

/// The task an event is about, from its details.
fn task_of(event: &pb::Event) -> Option<Uuid> {
    use pb::event::Payload::*;
    let id = match event.payload.as_ref()? {
        TaskCreated(x) => &x.task_id,
        ProgressReported(x) => &x.task_id,
        FeedbackSubmitted(x) => &x.task_id,
        FeedbackReturned(x) => &x.task_id,
        TaskCompleted(x) => &x.task_id,
        TaskOverdue(x) => &x.task_id,
        RectificationRequired(x) => &x.task_id,
        _ => return None,
    };
    id.parse().ok()
}

/// A read-only transaction that sees one consistent state of the database.
async fn snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    Ok(tx)
}

/// The events after `after` (of `case` only, when given), at most [`BATCH`], each with
/// what it changed, read in one snapshot so that nothing shown is older than its event.
pub(super) async fn load(
    pool: &PgPool,
    meter: &WatchMeter,
    after: i64,
    case: Option<Uuid>,
) -> Result<Vec<Item>, sqlx::Error> {
    let mut tx = snapshot(pool).await?;
    let rows = journal::events_after(&mut tx, after, case, BATCH).await?;
    // BEGIN, SET TRANSACTION, the events.
    let mut statements = 3;
    let mut views = HashMap::new();
    let mut call_rows = HashMap::new();
    let mut task_rows = HashMap::new();
    let case_ids: HashSet<Uuid> = rows.iter().map(|r| r.case_id).collect();
    for id in case_ids {
        let Some(row) = cases::get(&mut tx, id, false).await? else {
            statements += 1;
            continue;
        };
        let audience = cases::audience(&mut tx, id, &row.case.street_id).await?;
        let parts = CaseParts::read(&mut tx, id).await?;
        statements += 7;
        views.insert(id, Arc::new(CaseView { row, audience, parts }));
    }
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let event = event_pb(&row);
        let task_id = task_of(&event);
        let call_id = row.call_id.parse::<Uuid>().ok().filter(|_| task_id.is_none());
        if let Some(id) = call_id
            && !call_rows.contains_key(&id)
        {
            statements += 1;
            call_rows.insert(id, calls::get(&mut tx, id, false).await?.map(Arc::new));
        }
        if let Some(id) = task_id
            && !task_rows.contains_key(&id)
        {
            statements += 1;
            task_rows.insert(id, tasks::get(&mut tx, id, false).await?.map(Arc::new));
        }
        items.push(Item {
            case: views.get(&row.case_id).cloned(),
            call: call_id.and_then(|id| call_rows.get(&id).cloned().flatten()),
            task: task_id.and_then(|id| task_rows.get(&id).cloned().flatten()),
            event,
            row,
        });
    }
    tx.commit().await?;
    meter.add(statements + 1);
    Ok(items)
}

/// The hub's position and its channel, changed together so that a subscriber knows
/// exactly where the batches it will receive begin.
#[derive(Debug)]
struct Live {
    /// The last sequence sent.
    cursor: i64,
    tx: broadcast::Sender<Batch>,
}

/// The replica's watch hub.
#[derive(Debug, Clone)]
pub(super) struct Hub {
    live: Arc<Mutex<Live>>,
    meter: WatchMeter,
    caps: Arc<Caps>,
}

impl Hub {
    /// Starts following the feed from its head now.
    pub(super) fn start(pool: PgPool, head: watch::Receiver<i64>, config: &FeedConfig) -> Self {
        let (tx, _) = broadcast::channel(config.watch_buffer.max(1));
        let live = Arc::new(Mutex::new(Live { cursor: *head.borrow(), tx }));
        let meter = WatchMeter::default();
        tokio::spawn(follow(pool, meter.clone(), live.clone(), head));
        let caps = Arc::new(Caps {
            per_subject: config.max_watches_per_subject,
            per_replica: config.max_watches_per_replica,
            open: Mutex::default(),
        });
        Self { live, meter, caps }
    }

    pub(super) fn meter(&self) -> WatchMeter {
        self.meter.clone()
    }

    /// The batches from now on, and the sequence they start after.
    pub(super) fn subscribe(&self) -> (i64, broadcast::Receiver<Batch>) {
        let live = self.live.lock().expect("the hub's lock is never poisoned");
        (live.cursor, live.tx.subscribe())
    }

    /// A place among the open watches for `subject`, or RESOURCE_EXHAUSTED naming the cap.
    pub(super) fn admit(&self, subject: &str) -> Result<Permit, minhu_grpc::ApiError> {
        let caps = &self.caps;
        let mut open = caps.open.lock().expect("the caps' lock is never poisoned");
        if open.total >= caps.per_replica {
            return Err(minhu_grpc::ApiError::ResourceExhausted(format!(
                "this replica serves at most {} open watch streams (MINHU_DISPATCH_WATCH_MAX_PER_REPLICA); retry later",
                caps.per_replica
            )));
        }
        let mine = open.by_subject.entry(subject.to_owned()).or_default();
        if *mine >= caps.per_subject {
            return Err(minhu_grpc::ApiError::ResourceExhausted(format!(
                "a caller may hold at most {} open watch streams (MINHU_DISPATCH_WATCH_MAX_PER_SUBJECT); close one first",
                caps.per_subject
            )));
        }
        *mine += 1;
        open.total += 1;
        Ok(Permit { caps: caps.clone(), subject: subject.to_owned() })
    }
}

/// The caps on open watch streams and what is open.
#[derive(Debug)]
struct Caps {
    per_subject: usize,
    per_replica: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_subject: HashMap<String, usize>,
}

/// One open watch stream; its place is given back when it drops.
#[derive(Debug)]
pub(super) struct Permit {
    caps: Arc<Caps>,
    subject: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().expect("the caps' lock is never poisoned");
        open.total -= 1;
        if let Some(n) = open.by_subject.get_mut(&self.subject) {
            *n -= 1;
            if *n == 0 {
                open.by_subject.remove(&self.subject);
            }
        }
    }
}

/// The hub's one task: drain what is committed after the cursor, send it, wait for the
/// head to move. A failed read is retried from the same cursor, so nothing is skipped.
async fn follow(pool: PgPool, meter: WatchMeter, live: Arc<Mutex<Live>>, mut head: watch::Receiver<i64>) {
    loop {
        let cursor = live.lock().expect("the hub's lock is never poisoned").cursor;
        if *head.borrow_and_update() > cursor {
            match load(&pool, &meter, cursor, None).await {
                Ok(items) if !items.is_empty() => {
                    let full = items.len() == BATCH as usize;
                    let mut live = live.lock().expect("the hub's lock is never poisoned");
                    live.cursor = items.last().map_or(cursor, |i| i.row.sequence);
                    // No subscriber is not an error: the batch is simply not kept.
                    let _ = live.tx.send(Arc::new(items));
                    if full {
                        continue;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the watch hub could not read the feed; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
        }
        if head.changed().await.is_err() {
            return;
        }
    }
}
