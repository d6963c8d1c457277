//! Firing: claim due ids from the index, fire each in its own Postgres transaction, settle
//! the index; and rebuilding the index from Postgres.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    future::Future,
    pin::pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use minhu_telemetry::metrics::{DeadlineMetrics, ObservableGauge};
use tracing::Instrument as _;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{Connection as _, PgConnection, PgPool, Postgres};
use tokio::{
    task::{JoinHandle, JoinSet},
    time::Instant,
};
use uuid::Uuid;

use crate::{
    Deadline, DeadlineError, Deadlines, Handler, HandlerError,
    clock::{due_score, now_score},
    handler::DynHandler,
    index::MAX_CLAIM_BATCH,
};

/// How failed attempts are retried. A deadline is never given up on: after `loud_after`
/// failed attempts every further failure is logged at error level, and it keeps being
/// retried every `max` until its handler succeeds or someone cancels it.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt; it doubles with each further one.
    pub first: Duration,
    /// The longest delay between attempts.
    pub max: Duration,
    /// Failed attempts after which each failure is an error, not a warning.
    pub loud_after: i32,
}

impl Default for RetryPolicy {
    /// 1 s, doubling up to 10 min; loud after 10 attempts.
    fn default() -> Self {
        Self { first: Duration::from_secs(1), max: Duration::from_secs(600), loud_after: 10 }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `attempts` failed ones.
    pub fn delay(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(31);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }
}

/// How an engine fires.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Deadlines fired at once. A pass keeps up to this many pool connections until it
    /// ends, so keep it below the pool's size, leaving room for the service's requests.
    pub concurrency: usize,
    /// Ids claimed per claim script (at most 2000). Claimed ids wait for a free firing slot
    /// with their lease running, so a batch should fire well within `lease`.
    pub claim_batch: usize,
    /// How long a claim is exclusive. A firer that dies mid-firing delays its deadlines
    /// by up to this much; one slower than this gets a harmless duplicate delivery.
    pub lease: Duration,
    /// A handler still running after this is abandoned (its transaction rolled back) and
    /// the attempt counts as failed. Must be shorter than `lease`.
    pub handler_timeout: Duration,
    /// The longest [`run`](DeadlineEngine::run) sleeps between passes. It bounds how late a
    /// deadline scheduled by *another* replica can fire; this replica's own scheduling
    /// wakes it at once.
    pub max_tick: Duration,
    /// How often [`run`](DeadlineEngine::run) rebuilds the index from Postgres.
    pub reconcile_every: Duration,
    /// Rows per keyset page when rebuilding.
    pub reconcile_page: usize,
    /// Retrying failed attempts.
    pub retry: RetryPolicy,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            claim_batch: 256,
            lease: Duration::from_secs(60),
            handler_timeout: Duration::from_secs(30),
            max_tick: Duration::from_millis(250),
            reconcile_every: Duration::from_secs(60),
            reconcile_page: 10_000,
            retry: RetryPolicy::default(),
        }
    }
}

impl EngineConfig {
    fn validate(&self) -> Result<(), DeadlineError> {
        let invalid = |message: &str| Err(DeadlineError::Invalid(message.into()));
        if self.concurrency == 0 {
            return invalid("concurrency must be at least 1");
        }
        if self.claim_batch == 0 || self.claim_batch > MAX_CLAIM_BATCH {
            return invalid("claim_batch must be between 1 and 2000");
        }
        if self.handler_timeout >= self.lease {
            return invalid("handler_timeout must be shorter than lease");
        }
        if self.max_tick.is_zero() || self.reconcile_page == 0 || self.retry.first.is_zero() {
            return invalid("max_tick, reconcile_page and retry.first must be positive");
        }
        Ok(())
    }
}

/// Builds a [`DeadlineEngine`]: its pool, index, configuration and one handler per kind.
pub struct EngineBuilder {
    pool: PgPool,
    deadlines: Deadlines,
    config: EngineConfig,
    handlers: HashMap<String, Arc<dyn DynHandler>>,
    duplicate: Option<String>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder").field("kinds", &self.handlers.keys()).finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// Replaces the default configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Registers the handler that fires deadlines of `kind`.
    pub fn handler(mut self, kind: impl Into<String>, handler: impl Handler) -> Self {
        let kind = kind.into();
        if self.handlers.insert(kind.clone(), Arc::new(handler)).is_some() {
            self.duplicate = Some(kind);
        }
        self
    }

    /// The engine, once the configuration is valid and no kind has two handlers.
    pub fn build(self) -> Result<DeadlineEngine, DeadlineError> {
        self.config.validate()?;
        if let Some(kind) = self.duplicate {
            return Err(DeadlineError::Invalid(format!("two handlers registered for kind `{kind}`")));
        }
        let connections = self.pool.options().get_max_connections() as usize;
        if self.config.concurrency > connections {
            tracing::warn!(
                concurrency = self.config.concurrency,
                connections,
                "deadline firing concurrency exceeds the pool: firings will queue for connections"
            );
        }
        // Every registered kind reports, at zero until the first rebuild counts it.
        let backlog: Backlog = Arc::new(Mutex::new(self.handlers.keys().map(|kind| (kind.clone(), (0, 0))).collect()));
        let read = backlog.clone();
        let backlog_gauge = DeadlineMetrics::report_backlog(move || {
            let counts = read.lock().unwrap_or_else(|e| e.into_inner());
            counts.iter().map(|(kind, &(pending, overdue))| (kind.clone(), pending, overdue)).collect()
        });
        Ok(DeadlineEngine {
            inner: Arc::new(Inner {
                pool: self.pool,
                deadlines: self.deadlines,
                config: self.config,
                handlers: self.handlers,
                index_lost: AtomicBool::new(false),
                metrics: DeadlineMetrics::new(),
                backlog,
                _backlog_gauge: backlog_gauge,
            }),
        })
    }
}

/// Fires deadlines: several replicas may run one each against the same database and
/// namespace, and every deadline still takes effect once. Cheap to clone.
///
/// A service runs [`run`](Self::run) in the background; tests drive
/// [`fire_due`](Self::fire_due) and [`reconcile`](Self::reconcile) with a
/// [`ManualClock`](crate::ManualClock) instead.
#[derive(Clone)]
pub struct DeadlineEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DeadlineEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineEngine")
            .field("deadlines", &self.inner.deadlines)
            .field("kinds", &self.inner.handlers.keys())
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: PgPool,
    deadlines: Deadlines,
    config: EngineConfig,
    handlers: HashMap<String, Arc<dyn DynHandler>>,
    /// A claim found the rebuild marker gone: [`DeadlineEngine::run`] rebuilds at once.
    index_lost: AtomicBool,
    /// Lateness, fired and failed counts over OTLP.
    metrics: DeadlineMetrics,
    /// Pending and overdue deadlines by kind, as counted at the last rebuild.
    backlog: Backlog,
    /// Reports `backlog` while the engine lives.
    _backlog_gauge: ObservableGauge<u64>,
}

/// Kind → (pending, overdue), read by the backlog gauge on the exporter's thread.
type Backlog = Arc<Mutex<BTreeMap<String, (u64, u64)>>>;

/// What became of one claimed id, which decides what happens to its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The handler's effect committed.
    Fired,
    /// Nothing to fire: cancelled, already fired (a duplicate delivery), or no such row.
    Finished,
    /// Back to `due` at this score: a failed attempt's retry, or claimed before its time.
    Requeue(i64),
    /// Unknown (Postgres unreachable, a commit whose outcome is unknown): the lease stays,
    /// and when it expires the id is claimed again and the row decides.
    Unresolved,
}

/// Index updates for settled ids, sent in batches.
#[derive(Default)]
struct Settled {
    release: Vec<String>,
    requeue: Vec<(i64, String)>,
}

/// Settled ids per index round trip.
const SETTLE_BATCH: usize = 256;

/// How soon [`DeadlineEngine::run`] retries a failed rebuild.
const RECONCILE_RETRY: Duration = Duration::from_secs(5);

/// Longest `last_error` kept: the cause, not a novel.
const MAX_ERROR_LEN: usize = 2000;

impl DeadlineEngine {
    /// An engine firing from `pool` (the service's database, migrated with
    /// [`MIGRATOR`](crate::MIGRATOR)) and the index of `deadlines`.
    pub fn builder(pool: PgPool, deadlines: Deadlines) -> EngineBuilder {
        EngineBuilder { pool, deadlines, config: EngineConfig::default(), handlers: HashMap::new(), duplicate: None }
    }

    /// The first step of a firing: claims up to `limit` (at most 2000) due ids, leased to
    /// this caller until now + `lease`, after returning expired leases to the due set.
    /// [`fire_due`](Self::fire_due) does this itself; it is public so that tools and tests
    /// can see what a firer that dies right after claiming leaves behind (ids that fire
    /// again once the lease expires).
    pub async fn claim(&self, limit: usize) -> Result<Vec<Uuid>, DeadlineError> {
        let now = now_score(self.inner.now());
        let lease = i64::try_from(self.inner.config.lease.as_millis()).unwrap_or(i64::MAX);
        let claim = self.inner.deadlines.shared.index.claim(now, now.saturating_add(lease), limit).await?;
        if claim.expired > 0 {
            tracing::warn!(
                expired = claim.expired,
                "deadline leases expired (a firer died or stalled); they fire again"
            );
        }
        if claim.lost {
            self.inner.index_lost.store(true, Ordering::Relaxed);
        }
        Ok(claim.ids)
    }

    /// One pass: fires everything due by the clock, until a claim comes back short, with up
    /// to `concurrency` firings at once. Returns how many deadlines took effect (duplicate
    /// deliveries, cancelled deadlines and failed attempts are not counted). Fails only if
    /// the index cannot be reached; a deadline whose firing fails is retried later.
    pub async fn fire_due(&self) -> Result<usize, DeadlineError> {
        self.fire_pass(&AtomicBool::new(false)).await
    }

    async fn fire_pass(&self, stop: &AtomicBool) -> Result<usize, DeadlineError> {
        let config = &self.inner.config;
        let mut queue = VecDeque::new();
        let mut running = JoinSet::new();
        let mut ids_by_task = HashMap::new();
        let mut settled = Settled::default();
        let mut exhausted = false;
        let mut claim_error = None;
        let mut fired = 0;
        loop {
            // Claim the next batch only once the last one is all firing or done, so leases
            // start as late as possible.
            if queue.is_empty() && !exhausted && !stop.load(Ordering::Relaxed) {
                match self.claim(config.claim_batch).await {
                    Ok(ids) => {
                        exhausted = ids.len() < config.claim_batch;
                        queue.extend(ids);
                    }
                    Err(error) => {
                        exhausted = true;
                        claim_error = Some(error);
                    }
                }
            }
            while running.len() < config.concurrency {
                let Some(id) = queue.pop_front() else { break };
                let inner = self.inner.clone();
                // Spawned, not just polled, so firings progress while this loop awaits the
                // index; and a panicking handler ends its own task, not the pass.
                let task = running.spawn(async move { inner.fire_one(id).await });
                ids_by_task.insert(task.id(), id);
            }
            let Some(joined) = running.join_next_with_id().await else { break };
            let (id, outcome) = match joined {
                Ok((task, outcome)) => (ids_by_task.remove(&task), outcome),
                Err(error) => {
                    let id = ids_by_task.remove(&error.id());
                    let outcome = match (id, error.try_into_panic()) {
                        (Some(id), Ok(panic)) => {
                            let message = panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_default();
                            let error = format!("handler panicked: {message}");
                            self.inner.failed(&self.inner.pool, id, self.inner.now(), &error).await
                        }
                        _ => Outcome::Unresolved,
                    };
                    (id, outcome)
                }
            };
            let Some(id) = id else { continue };
            match outcome {
                Outcome::Fired => {
                    fired += 1;
                    settled.release.push(id.to_string());
                }
                Outcome::Finished => settled.release.push(id.to_string()),
                Outcome::Requeue(score) => settled.requeue.push((score, id.to_string())),
                Outcome::Unresolved => {}
            }
            if settled.release.len() + settled.requeue.len() >= SETTLE_BATCH {
                self.inner.settle(&mut settled).await;
            }
        }
        self.inner.settle(&mut settled).await;
        match claim_error {
            Some(error) => Err(error),
            None => Ok(fired),
        }
    }

    /// Rebuilds the index from Postgres: every pending deadline is (re)added at its due time
    /// — or its retry time, after failed attempts — in keyset-paginated pages, earliest
    /// first, so overdue deadlines are fireable first. Returns how many pending deadlines it
    /// saw.
    ///
    /// Ids under a live lease are left alone, and a score is only ever moved earlier: a
    /// deadline that fires while its page is being indexed may be added back, and that
    /// duplicate is claimed, found no longer pending and dropped — accepted rather than
    /// locking rows against firing for the length of a rebuild.
    pub async fn reconcile(&self) -> Result<usize, DeadlineError> {
        let inner = &self.inner;
        // Marked first: if Redis loses data while the pages are being added, the marker goes
        // with it and the next claim asks for another rebuild.
        inner.deadlines.shared.index.mark_rebuilt(&inner.now().to_rfc3339()).await?;
        inner.index_lost.store(false, Ordering::Relaxed);
        let page = i64::try_from(inner.config.reconcile_page).unwrap_or(i64::MAX);
        let mut after: Option<(DateTime<Utc>, Uuid)> = None;
        let mut seen = 0;
        let mut changed = 0;
        loop {
            type Row = (Uuid, DateTime<Utc>, i32, Option<DateTime<Utc>>);
            let rows: Vec<Row> = match after {
                None => {
                    sqlx::query_as(
                        "SELECT id, due_at, attempts, last_attempt_at FROM minhu_deadlines \
                         WHERE state = 'pending' ORDER BY due_at, id LIMIT $1",
                    )
                    .bind(page)
                    .fetch_all(&inner.pool)
                    .await?
                }
                Some((due_at, id)) => {
                    sqlx::query_as(
                        "SELECT id, due_at, attempts, last_attempt_at FROM minhu_deadlines \
                         WHERE state = 'pending' AND (due_at, id) > ($1, $2) ORDER BY due_at, id LIMIT $3",
                    )
                    .bind(due_at)
                    .bind(id)
                    .bind(page)
                    .fetch_all(&inner.pool)
                    .await?
                }
            };
            let Some(&(last_id, last_due, _, _)) = rows.last() else { break };
            after = Some((last_due, last_id));
            let entries: Vec<(i64, Uuid)> = rows
                .iter()
                .map(|&(id, due_at, attempts, last_attempt)| (inner.retry_score(due_at, attempts, last_attempt), id))
                .collect();
            changed += inner.deadlines.shared.index.restore(&entries).await?;
            seen += rows.len();
            if rows.len() < inner.config.reconcile_page {
                break;
            }
        }
        if changed > 0 {
            tracing::info!(pending = seen, restored = changed, "deadline index rebuilt from postgres");
            inner.deadlines.shared.wake.notify_one();
        }
        self.count_backlog().await?;
        Ok(seen)
    }

    /// Counts pending and overdue deadlines by kind for the `minhu.deadline.backlog` gauge
    /// and returns them (kind, pending, overdue). [`reconcile`](Self::reconcile) calls it,
    /// so the gauge is at most `reconcile_every` old: one grouped count over the pending
    /// index, not one per export.
    pub async fn count_backlog(&self) -> Result<Vec<(String, u64, u64)>, DeadlineError> {
        let inner = &self.inner;
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT kind, count(*), count(*) FILTER (WHERE due_at <= $1) FROM minhu_deadlines \
             WHERE state = 'pending' GROUP BY kind",
        )
        .bind(inner.now())
        .fetch_all(&inner.pool)
        .await?;
        let mut counts = inner.backlog.lock().unwrap_or_else(|e| e.into_inner());
        // A kind whose deadlines all fired reports zero rather than its last count.
        counts.values_mut().for_each(|c| *c = (0, 0));
        for (kind, pending, overdue) in rows {
            counts.insert(kind, (pending.max(0) as u64, overdue.max(0) as u64));
        }
        Ok(counts.iter().map(|(kind, &(pending, overdue))| (kind.clone(), pending, overdue)).collect())
    }

    /// Fires deadlines until `shutdown` completes: rebuilds the index (in the background,
    /// while firing goes on) at once, every `reconcile_every`, and as soon as a claim finds
    /// that Redis lost the index (flushed, restarted empty); between passes it sleeps until
    /// the next due time, at most `max_tick`, or until this process schedules something
    /// sooner. Errors (Redis or
    /// Postgres away) are logged and retried; they never end the loop. On shutdown the
    /// current pass stops claiming and finishes what it claimed, so a deploy leaves no
    /// leases to wait out.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let inner = &self.inner;
        let shared = &inner.deadlines.shared;
        let mut shutdown = pin!(shutdown);
        let stop = AtomicBool::new(false);
        let mut next_reconcile = Instant::now();
        // After a failed rebuild, not even a lost index makes the next one come sooner.
        let mut no_rebuild_before = Instant::now();
        // Rebuilds run beside firing, not before it: with a million pending deadlines a
        // rebuild takes seconds, and the index it refreshes is usually intact.
        let mut rebuilding: Option<JoinHandle<Result<usize, DeadlineError>>> = None;
        tracing::info!(kinds = ?inner.handlers.keys(), "deadline engine running");
        loop {
            if let Some(rebuild) = rebuilding.take_if(|task| task.is_finished()) {
                let error = match rebuild.await {
                    Ok(Ok(_)) => None,
                    Ok(Err(error)) => Some(error.to_string()),
                    Err(error) => Some(error.to_string()),
                };
                if let Some(error) = error {
                    // A partial rebuild may have left deadlines out: try again soon.
                    tracing::warn!(%error, "rebuilding the deadline index failed; retrying");
                    no_rebuild_before = Instant::now() + RECONCILE_RETRY;
                    next_reconcile = next_reconcile.min(no_rebuild_before);
                }
            }
            let lost = inner.index_lost.load(Ordering::Relaxed) && Instant::now() >= no_rebuild_before;
            if rebuilding.is_none() && (lost || Instant::now() >= next_reconcile) {
                if lost {
                    tracing::warn!("the deadline index lost data (Redis flushed or restarted); rebuilding it now");
                }
                let engine = self.clone();
                rebuilding = Some(tokio::spawn(async move { engine.reconcile().await }));
                next_reconcile = Instant::now() + inner.config.reconcile_every;
            }
            let mut pass = pin!(self.fire_pass(&stop));
            let result = tokio::select! {
                result = &mut pass => result,
                () = &mut shutdown => {
                    // Finish what was claimed rather than leave leases to expire.
                    stop.store(true, Ordering::Relaxed);
                    if let Err(error) = pass.await {
                        tracing::warn!(%error, "firing deadlines failed while stopping");
                    }
                    break;
                }
            };
            let wait = match result {
                Ok(_) => inner.until_next_due().await,
                Err(error) => {
                    tracing::warn!(%error, "firing deadlines failed; retrying");
                    inner.config.max_tick.max(Duration::from_secs(1))
                }
            };
            let wake_at = now_score(inner.now()).saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
            shared.next_wake.store(wake_at, Ordering::Relaxed);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shared.wake.notified() => {}
                () = &mut shutdown => break,
            }
            // While a pass runs, every newly indexed deadline leaves a wake-up permit, so one
            // indexed after the pass's last claim is not slept past.
            shared.next_wake.store(i64::MAX, Ordering::Relaxed);
        }
        if let Some(rebuild) = rebuilding {
            // A rebuild is idempotent: the next one starts over.
            rebuild.abort();
        }
        tracing::info!("deadline engine stopped");
    }
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.deadlines.shared.clock.now()
    }

    /// Fires one claimed id in its own transaction, in a `deadline.fire` span of its own.
    ///
    /// The span is a root: a firing is a new trace, days after the request that scheduled
    /// it, so that request's stored context becomes a link, not a parent. Its attributes are
    /// the deadline's kind, id, subject (an id, never personal data), lateness and outcome.
    async fn fire_one(&self, id: Uuid) -> Outcome {
        let span = tracing::info_span!(
            parent: None,
            "deadline.fire",
            otel.kind = "internal",
            otel.status_code = tracing::field::Empty,
            minhu.deadline.id = %id,
            minhu.deadline.kind = tracing::field::Empty,
            minhu.deadline.subject = tracing::field::Empty,
            minhu.deadline.lateness_s = tracing::field::Empty,
            minhu.deadline.outcome = tracing::field::Empty,
        );
        let outcome = async {
            // One connection for the firing and, if it fails, for recording the failure: a
            // firing never waits for a second connection while holding one. (Keeping
            // connections across firings to skip the pool's acquire and release checks was
            // measured: three times slower.)
            match self.pool.acquire().await {
                Ok(mut conn) => self.fire_on(&mut conn, id, &span).await,
                Err(error) => {
                    tracing::warn!(deadline.id = %id, %error, "cannot fire a deadline now; it is retried after its lease");
                    Outcome::Unresolved
                }
            }
        }
        .instrument(span.clone())
        .await;
        let name = match outcome {
            Outcome::Fired => "fired",
            Outcome::Finished => "finished",
            Outcome::Requeue(_) => "requeued",
            Outcome::Unresolved => "unresolved",
        };
        span.record("minhu.deadline.outcome", name);
        outcome
    }

    /// The firing itself, on `conn`, recorded on `span`.
    async fn fire_on(&self, conn: &mut PgConnection, id: Uuid, span: &tracing::Span) -> Outcome {
        let now = self.now();
        let mut tx = match conn.begin().await {
            Ok(tx) => tx,
            Err(error) => {
                tracing::warn!(deadline.id = %id, %error, "cannot fire a deadline now; it is retried after its lease");
                return Outcome::Unresolved;
            }
        };
        // Lock order: the handler's subject first, the deadline row second — the order a
        // request that meets the deadline (a SignCall cancelling it) takes them in. So the
        // row is read unlocked first, for its kind and subject; the handler locks its
        // subject; only then does marking it fired take the row lock, re-checking that it
        // is still pending and due. A second delivery of the same id blocks at the subject
        // or the mark until the first commits, then matches no row.
        let peeked = sqlx::query_as::<_, Deadline>(concat!(
            "SELECT ",
            columns!(),
            " FROM minhu_deadlines WHERE id = $1 AND state = 'pending' AND due_at <= $2"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await;
        let peeked = match peeked {
            Ok(Some(deadline)) => deadline,
            Ok(None) => {
                let outcome = Self::not_firing(&mut tx, id, now).await;
                let _ = tx.rollback().await;
                return outcome;
            }
            Err(error) => {
                tracing::warn!(deadline.id = %id, %error, "cannot fire a deadline now; it is retried after its lease");
                return Outcome::Unresolved;
            }
        };
        span.record("minhu.deadline.kind", peeked.kind.as_str());
        span.record("minhu.deadline.subject", peeked.subject.as_str());
        span.record("minhu.deadline.lateness_s", (now - peeked.due_at).as_seconds_f64());
        if let Some(traceparent) = &peeked.trace_parent {
            minhu_telemetry::link_to(span, traceparent, peeked.trace_state.as_deref().unwrap_or_default());
        }
        let Some(handler) = self.handlers.get(&peeked.kind) else {
            let clean = tx.rollback().await.is_ok();
            let error = format!("no handler is registered for kind `{}`", peeked.kind);
            return self.failed_on(conn, clean, id, now, &error).await;
        };
        let firing = async {
            handler.lock_subject_boxed(&mut tx, &peeked).await?;
            // The handler's effect commits or rolls back with the mark.
            let marked = sqlx::query_as::<_, Deadline>(concat!(
                "UPDATE minhu_deadlines \
                 SET state = 'fired', fired_at = $2, attempts = attempts + 1, last_attempt_at = $2 \
                 WHERE id = $1 AND state = 'pending' AND due_at <= $2 RETURNING ",
                columns!()
            ))
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(deadline) = marked else { return Ok(None) };
            handler.fire_boxed(&mut tx, &deadline).await?;
            Ok::<_, HandlerError>(Some(deadline))
        };
        let fired = tokio::time::timeout(self.config.handler_timeout, firing).await;
        let fired = match fired {
            Ok(Ok(Some(deadline))) => Ok(Ok(deadline)),
            // Cancelled, rescheduled or fired while its subject was being locked.
            Ok(Ok(None)) => {
                let outcome = Self::not_firing(&mut tx, id, now).await;
                let _ = tx.rollback().await;
                return outcome;
            }
            Ok(Err(error)) => Ok(Err(error)),
            Err(elapsed) => Err(elapsed),
        };
        match fired {
            Ok(Ok(deadline)) => match tx.commit().await {
                Ok(()) => {
                    self.metrics.fired(&deadline.kind, (now - deadline.due_at).to_std().unwrap_or_default());
                    tracing::debug!(
                        deadline.id = %id,
                        deadline.kind = %deadline.kind,
                        lateness_ms = (now - deadline.due_at).num_milliseconds(),
                        "deadline fired"
                    );
                    Outcome::Fired
                }
                Err(error) => {
                    // It may or may not have committed; the retry after the lease finds out.
                    tracing::error!(deadline.id = %id, %error, "committing a fired deadline failed");
                    Outcome::Unresolved
                }
            },
            Ok(Err(error)) => {
                let clean = tx.rollback().await.is_ok();
                self.failed_on(conn, clean, id, now, &error.to_string()).await
            }
            Err(_) => {
                // The abandoned handler may have left a statement in flight; the rollback
                // drains it, and only if that worked is the connection used again.
                let clean = tx.rollback().await.is_ok();
                let error = format!("handler did not finish within {:?}", self.config.handler_timeout);
                self.failed_on(conn, clean, id, now, &error).await
            }
        }
    }

    /// Why a claimed id did not match a pending, due row.
    async fn not_firing(conn: &mut PgConnection, id: Uuid, now: DateTime<Utc>) -> Outcome {
        let row: Result<Option<(String, DateTime<Utc>)>, _> =
            sqlx::query_as("SELECT state, due_at FROM minhu_deadlines WHERE id = $1")
                .bind(id)
                .fetch_optional(conn)
                .await;
        match row {
            // Rescheduled later after the index entry was written: back at its true time.
            Ok(Some((state, due_at))) if state == "pending" => {
                tracing::debug!(deadline.id = %id, %due_at, %now, "deadline claimed before its due time; requeued");
                Outcome::Requeue(due_score(due_at))
            }
            // Fired (a duplicate delivery), cancelled, or not ours.
            Ok(_) => Outcome::Finished,
            Err(error) => {
                tracing::warn!(deadline.id = %id, %error, "cannot check a claimed deadline; retried after its lease");
                Outcome::Unresolved
            }
        }
    }

    /// [`failed`](Self::failed) on `conn` if its transaction rolled back cleanly, else on
    /// another pool connection.
    async fn failed_on(
        &self,
        conn: &mut PgConnection,
        clean: bool,
        id: Uuid,
        now: DateTime<Utc>,
        error: &str,
    ) -> Outcome {
        if clean { self.failed(conn, id, now, error).await } else { self.failed(&self.pool, id, now, error).await }
    }

    /// Records a failed attempt in a transaction of its own and picks the retry time.
    async fn failed<'c>(
        &self,
        db: impl sqlx::Executor<'c, Database = Postgres>,
        id: Uuid,
        now: DateTime<Utc>,
        error: &str,
    ) -> Outcome {
        let error = truncate(error, MAX_ERROR_LEN);
        let recorded: Result<Option<(i32, String)>, _> = sqlx::query_as(
            "UPDATE minhu_deadlines SET attempts = attempts + 1, last_error = $2, last_attempt_at = $3 \
             WHERE id = $1 AND state = 'pending' RETURNING attempts, kind",
        )
        .bind(id)
        .bind(error)
        .bind(now)
        .fetch_optional(db)
        .await;
        match recorded {
            Ok(Some((attempts, kind))) => {
                self.metrics.failed(&kind);
                tracing::Span::current().record("otel.status_code", "ERROR");
                let delay = self.config.retry.delay(attempts);
                if attempts >= self.config.retry.loud_after {
                    tracing::error!(
                        deadline.id = %id, deadline.kind = %kind, attempts, error, retry_in = ?delay,
                        "a deadline keeps failing; it stays pending and is retried until its handler succeeds or it is cancelled"
                    );
                } else {
                    tracing::warn!(deadline.id = %id, deadline.kind = %kind, attempts, error, retry_in = ?delay, "deadline handler failed; retrying");
                }
                Outcome::Requeue(due_score(now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX)))
            }
            Ok(None) => Outcome::Finished,
            Err(db_error) => {
                tracing::warn!(deadline.id = %id, error, %db_error, "cannot record a failed deadline attempt; retried after its lease");
                Outcome::Unresolved
            }
        }
    }

    /// The score a pending row belongs at: its due time, or after failed attempts the end
    /// of its backoff, so a rebuild does not retry a failing deadline early.
    fn retry_score(&self, due_at: DateTime<Utc>, attempts: i32, last_attempt_at: Option<DateTime<Utc>>) -> i64 {
        let due = due_score(due_at);
        match last_attempt_at {
            Some(last) if attempts > 0 => {
                let delay = TimeDelta::from_std(self.config.retry.delay(attempts)).unwrap_or(TimeDelta::MAX);
                due.max(due_score(last + delay))
            }
            _ => due,
        }
    }

    /// Ends the leases of settled ids. Best effort: a lease left behind expires, and its id is
    /// claimed once more and dropped when its row is no longer pending.
    async fn settle(&self, settled: &mut Settled) {
        let index = &self.deadlines.shared.index;
        if let Err(error) = index.release(&settled.release).await {
            tracing::warn!(%error, ids = settled.release.len(), "could not end deadline leases; they expire");
        }
        if let Err(error) = index.requeue(&settled.requeue).await {
            tracing::warn!(%error, ids = settled.requeue.len(), "could not requeue deadlines; their leases expire");
        }
        settled.release.clear();
        settled.requeue.clear();
    }

    /// How long to sleep until the earliest indexed due time, at most `max_tick`.
    async fn until_next_due(&self) -> Duration {
        match self.deadlines.shared.index.next_due().await {
            Ok(Some(score)) => {
                let millis = score.saturating_sub(now_score(self.now())).max(0);
                Duration::from_millis(u64::try_from(millis).unwrap_or(0)).min(self.config.max_tick)
            }
            Ok(None) => self.config.max_tick,
            Err(error) => {
                tracing::warn!(%error, "cannot read the next deadline");
                self.config.max_tick
            }
        }
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
