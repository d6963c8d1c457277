//! Deadlines against a real Postgres and a real Redis: firing once among racing replicas,
//! cancelling, rescheduling, surviving a lost index and a Redis restart, retrying failed and
//! abandoned firings without a second effect — all on a manual clock, so months pass in
//! milliseconds — and the working-time calendar.

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone as _, Utc};
use minhu_deadlines::{
    CalendarConfig, Clock as _, Deadline, DeadlineEngine, DeadlineError, DeadlineState, Deadlines, EngineConfig,
    Handler, HandlerError, MIGRATOR, ManualClock, NewDeadline, WorkCalendar, WorkingHours,
};
use minhu_testkit::{TestDatabase, TestRedis};
use redis::aio::ConnectionManager;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{Notify, Semaphore, mpsc};
use uuid::Uuid;

const KIND: &str = "dispatch.sign";

/// The defaults, with firing concurrency within the tests' small pools.
fn test_config() -> EngineConfig {
    EngineConfig { concurrency: 4, ..EngineConfig::default() }
}

/// Monday 2030-01-07 00:00 UTC.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 0, 0, 0).single().expect("a valid time")
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

/// One test's database, Redis namespace and clock.
struct Harness {
    _db: TestDatabase,
    redis: TestRedis,
    db_config: minhu_store::DatabaseConfig,
    pool: PgPool,
    clock: ManualClock,
    namespace: String,
    deadlines: Deadlines,
}

impl Harness {
    async fn new() -> Self {
        let db = TestDatabase::create("deadlines").await;
        let mut db_config = db.config();
        // Several tests run at once against one shared server: keep pools small.
        db_config.max_connections = 6;
        let pool = minhu_store::connect_and_migrate(&db_config, &[&MIGRATOR]).await.expect("migrating");
        // What handlers do: one row per effect, deliberately without a unique key, so a
        // second effect would show as a second row.
        sqlx::query(
            "CREATE TABLE effects (seq bigserial PRIMARY KEY, deadline_id uuid NOT NULL, subject text NOT NULL, \
             replica text NOT NULL, due_at timestamptz NOT NULL, fired_at timestamptz NOT NULL)",
        )
        .execute(&pool)
        .await
        .expect("creating the effects table");
        let redis = TestRedis::create().await;
        let namespace = format!("{}dispatch:deadlines:", redis.prefix());
        let clock = ManualClock::new(start());
        let deadlines = Deadlines::with_clock(redis.connection().await, &namespace, Arc::new(clock.clone()));
        Self { _db: db, redis, db_config, pool, clock, namespace, deadlines }
    }

    /// An engine on its own pool and Redis connection, as another replica would have.
    async fn replica(&self, handler: impl Handler) -> DeadlineEngine {
        let pool = minhu_store::connect(&self.db_config).await.expect("connecting");
        let deadlines =
            Deadlines::with_clock(self.redis.connection().await, &self.namespace, Arc::new(self.clock.clone()));
        DeadlineEngine::builder(pool, deadlines)
            .config(test_config())
            .handler(KIND, handler)
            .build()
            .expect("a valid engine")
    }

    fn engine(&self, handler: impl Handler) -> DeadlineEngine {
        self.engine_with(handler, test_config())
    }

    fn engine_with(&self, handler: impl Handler, config: EngineConfig) -> DeadlineEngine {
        DeadlineEngine::builder(self.pool.clone(), self.deadlines.clone())
            .config(config)
            .handler(KIND, handler)
            .build()
            .expect("a valid engine")
    }

    /// Schedules and indexes `subject` due at `due_at`.
    async fn schedule(&self, subject: &str, due_at: DateTime<Utc>) -> Deadline {
        let deadline = self.schedule_unindexed(subject, due_at).await;
        self.deadlines.index(std::slice::from_ref(&deadline)).await.expect("indexing");
        deadline
    }

    /// Schedules and commits `subject`, as a process that dies before indexing would.
    async fn schedule_unindexed(&self, subject: &str, due_at: DateTime<Utc>) -> Deadline {
        let mut tx = self.pool.begin().await.expect("begin");
        let deadline =
            self.deadlines.schedule(&mut tx, NewDeadline::new(KIND, subject, due_at)).await.expect("scheduling");
        tx.commit().await.expect("commit");
        deadline
    }

    /// Schedules `count` deadlines in one transaction and indexes them.
    async fn schedule_many(&self, count: usize, due_at: impl Fn(usize) -> DateTime<Utc>) -> Vec<Deadline> {
        let mut tx = self.pool.begin().await.expect("begin");
        let mut scheduled = Vec::with_capacity(count);
        for i in 0..count {
            let new = NewDeadline::new(KIND, format!("call-{i}"), due_at(i));
            scheduled.push(self.deadlines.schedule(&mut tx, new).await.expect("scheduling"));
        }
        tx.commit().await.expect("commit");
        for chunk in scheduled.chunks(1000) {
            self.deadlines.index(chunk).await.expect("indexing");
        }
        scheduled
    }

    fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    async fn get(&self, id: Uuid) -> Deadline {
        let mut conn = self.pool.acquire().await.expect("a connection");
        self.deadlines.get(&mut conn, id).await.expect("reading").expect("the deadline exists")
    }

    async fn effects(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effects").fetch_one(&self.pool).await.expect("counting effects")
    }

    async fn effects_of(&self, id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effects WHERE deadline_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("counting effects")
    }

    async fn redis(&self) -> ConnectionManager {
        self.redis.connection().await
    }

    /// FLUSHALL, as far as a test on a shared Redis may: every key under its prefix.
    async fn delete_every_key(&self) {
        let mut redis = self.redis().await;
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}*", self.redis.prefix())).query_async(&mut redis).await.unwrap();
        assert!(!keys.is_empty(), "the namespace holds the index");
        redis::cmd("DEL").arg(&keys).exec_async(&mut redis).await.unwrap();
    }

    async fn index_sizes(&self) -> (usize, usize) {
        let mut redis = self.redis().await;
        let due: usize =
            redis::cmd("ZCARD").arg(self.deadlines.due_key()).query_async(&mut redis).await.expect("zcard");
        let inflight: usize =
            redis::cmd("ZCARD").arg(self.deadlines.inflight_key()).query_async(&mut redis).await.expect("zcard");
        (due, inflight)
    }
}

/// The usual handler: records its effect in the firing transaction, optionally failing (after
/// writing, so that the rollback is what keeps the effect from counting) the first few times.
struct Record {
    replica: &'static str,
    failures_left: AtomicUsize,
}

impl Record {
    fn new(replica: &'static str) -> Self {
        Self { replica, failures_left: AtomicUsize::new(0) }
    }

    fn failing(times: usize) -> Self {
        Self { replica: "a", failures_left: AtomicUsize::new(times) }
    }
}

async fn record_effect(tx: &mut PgConnection, deadline: &Deadline, replica: &str) -> Result<(), HandlerError> {
    sqlx::query("INSERT INTO effects (deadline_id, subject, replica, due_at, fired_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(deadline.id)
        .bind(&deadline.subject)
        .bind(replica)
        .bind(deadline.due_at)
        .bind(deadline.fired_at)
        .execute(tx)
        .await?;
    Ok(())
}

impl Handler for Record {
    async fn fire(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        record_effect(tx, deadline, self.replica).await?;
        let failing = self.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if failing {
            return Err(HandlerError::msg("the roster service is unavailable"));
        }
        Ok(())
    }
}

/// Records its effect, says so, then waits for a permit before returning: a firing caught
/// in the middle of its transaction.
struct Paused {
    entered: Arc<Notify>,
    gate: Arc<Semaphore>,
}

impl Handler for Paused {
    async fn fire(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        record_effect(tx, deadline, "paused").await?;
        self.entered.notify_one();
        let _permit = self.gate.acquire().await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_deadline_fires_once_at_its_due_time_and_not_before() {
    let h = Harness::new().await;
    let engine = h.engine(Record::new("a"));
    let deadline = h.schedule("call-1", start() + TimeDelta::hours(1)).await;
    assert_eq!(deadline.state, DeadlineState::Pending);

    assert_eq!(engine.fire_due().await.unwrap(), 0);
    h.clock.advance(TimeDelta::hours(1) - TimeDelta::milliseconds(1));
    assert_eq!(engine.fire_due().await.unwrap(), 0, "a millisecond early");
    assert_eq!(h.effects().await, 0);

    h.clock.advance(TimeDelta::milliseconds(1));
    assert_eq!(engine.fire_due().await.unwrap(), 1);
    assert_eq!(engine.fire_due().await.unwrap(), 0);
    h.clock.advance(TimeDelta::days(30));
    assert_eq!(engine.fire_due().await.unwrap(), 0);

    let fired = h.get(deadline.id).await;
    assert_eq!(fired.state, DeadlineState::Fired);
    assert_eq!(fired.fired_at, Some(start() + TimeDelta::hours(1)), "fired_at comes from the injected clock");
    assert_eq!(fired.attempts, 1);
    assert_eq!(h.effects_of(deadline.id).await, 1);
    assert_eq!(h.index_sizes().await, (0, 0), "nothing left in the index");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_racing_fire_every_deadline_exactly_once() {
    let h = Harness::new().await;
    let a = h.replica(Record::new("a")).await;
    let b = h.replica(Record::new("b")).await;
    let scheduled = h.schedule_many(400, |i| start() + TimeDelta::seconds(i as i64 % 20)).await;
    h.clock.advance(minutes(1));

    let (fired_a, fired_b) = tokio::join!(a.fire_due(), b.fire_due());
    let (fired_a, fired_b) = (fired_a.unwrap(), fired_b.unwrap());
    assert_eq!(fired_a + fired_b, scheduled.len(), "a: {fired_a}, b: {fired_b}");

    let (effects, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT deadline_id) FROM effects").fetch_one(&h.pool).await.unwrap();
    assert_eq!((effects, distinct), (400, 400));
    assert_eq!(h.index_sizes().await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_more_at_once_than_the_pool_has_connections_fires_everything_in_one_pass() {
    let h = Harness::new().await;
    // Sixteen firings at once on a pool of six: firings waiting for a connection get the
    // ones the others are done with.
    let engine = h.engine_with(Record::new("a"), EngineConfig { concurrency: 16, ..EngineConfig::default() });
    h.schedule_many(300, |_| start()).await;
    assert_eq!(engine.fire_due().await.unwrap(), 300);
    assert_eq!(h.effects().await, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_duplicate_delivery_waits_for_the_first_firing_and_has_no_second_effect() {
    let h = Harness::new().await;
    let entered = Arc::new(Notify::new());
    let gate = Arc::new(Semaphore::new(0));
    let slow = h.replica(Paused { entered: entered.clone(), gate: gate.clone() }).await;
    let other = h.replica(Record::new("other")).await;
    let deadline = h.schedule("call-1", start()).await;

    let first = tokio::spawn(async move { slow.fire_due().await });
    entered.notified().await;
    // The slow firing outlives its lease: the other replica's claim takes the id back and
    // delivers it a second time while the first transaction is still open.
    h.clock.advance(TimeDelta::seconds(61));
    let second = tokio::spawn(async move { other.fire_due().await });
    wait_until_a_query_waits_on_a_lock(&h.pool).await;

    gate.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap(), 1);
    assert_eq!(second.await.unwrap().unwrap(), 0, "the second delivery found the deadline fired");
    assert_eq!(h.effects_of(deadline.id).await, 1);
    let replica: String = sqlx::query_scalar("SELECT replica FROM effects").fetch_one(&h.pool).await.unwrap();
    assert_eq!(replica, "paused");
    assert_eq!(h.index_sizes().await, (0, 0));
}

/// Polls Postgres until a backend of this database is blocked on a row lock.
async fn wait_until_a_query_waits_on_a_lock(pool: &PgPool) {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < give_up, "the second delivery never reached the row lock");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Locks its subject's row (in `subjects`) before the engine locks the deadline row, as a
/// service's handler locks the aggregate a deadline belongs to.
struct LocksSubject;

impl Handler for LocksSubject {
    async fn lock_subject(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        sqlx::query("SELECT 1 FROM subjects WHERE id = $1 FOR UPDATE").bind(&deadline.subject).execute(tx).await?;
        Ok(())
    }

    async fn fire(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        record_effect(tx, deadline, "locks-subject").await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_firing_waits_for_a_request_holding_its_subject_and_then_finds_the_deadline_cancelled() {
    let h = Harness::new().await;
    sqlx::query("CREATE TABLE subjects (id text PRIMARY KEY)").execute(&h.pool).await.unwrap();
    sqlx::query("INSERT INTO subjects VALUES ('call-1')").execute(&h.pool).await.unwrap();
    let engine = h.engine(LocksSubject);
    let deadline = h.schedule("call-1", start()).await;

    // A request (a SignCall at the deadline's instant) locks the subject first, then
    // cancels the deadline, while the deadline fires: had the engine locked the deadline row
    // before the subject, each would hold what the other waits for.
    let mut request = h.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM subjects WHERE id = 'call-1' FOR UPDATE").execute(&mut *request).await.unwrap();
    let firing = tokio::spawn(async move { engine.fire_due().await });
    wait_until_a_query_waits_on_a_lock(&h.pool).await;
    h.deadlines.cancel(&mut request, KIND, "call-1").await.unwrap().expect("still pending");
    request.commit().await.unwrap();

    assert_eq!(firing.await.unwrap().unwrap(), 0, "it was cancelled while the firing waited");
    let row = h.get(deadline.id).await;
    assert_eq!((row.state, row.attempts, row.last_error), (DeadlineState::Cancelled, 0, None));
    assert_eq!(h.effects_of(deadline.id).await, 0);
}

#[tokio::test]
async fn a_cancelled_deadline_never_fires_even_if_the_index_still_holds_it() {
    let h = Harness::new().await;
    let engine = h.engine(Record::new("a"));
    let signed = h.schedule("call-signed", start() + minutes(30)).await;
    let stale = h.schedule("call-signed-index-lost", start() + minutes(30)).await;
    let unsigned = h.schedule("call-unsigned", start() + minutes(30)).await;

    let mut tx = h.pool.begin().await.unwrap();
    let cancelled = h.deadlines.cancel(&mut tx, KIND, "call-signed").await.unwrap().expect("it was pending");
    let cancelled_stale = h.deadlines.cancel(&mut tx, KIND, "call-signed-index-lost").await.unwrap().expect("pending");
    tx.commit().await.unwrap();
    // The first is removed from the index; the second's removal is "lost" (the process died).
    h.deadlines.index(std::slice::from_ref(&cancelled)).await.unwrap();
    assert_eq!(h.index_sizes().await, (2, 0));
    assert_eq!(cancelled.state, DeadlineState::Cancelled);
    assert_eq!(cancelled.cancelled_at, Some(start()));

    h.clock.advance(TimeDelta::days(1));
    assert_eq!(engine.fire_due().await.unwrap(), 1);
    assert_eq!(h.effects_of(unsigned.id).await, 1);
    assert_eq!(h.effects_of(signed.id).await, 0);
    assert_eq!(h.effects_of(stale.id).await, 0);
    assert_eq!(h.get(cancelled_stale.id).await.state, DeadlineState::Cancelled);
    assert_eq!(h.index_sizes().await, (0, 0), "the stale entry was dropped when found cancelled");

    let mut conn = h.pool.acquire().await.unwrap();
    assert!(h.deadlines.cancel(&mut conn, KIND, "call-signed").await.unwrap().is_none(), "nothing left to cancel");
}

#[tokio::test]
async fn scheduling_again_reschedules_the_same_deadline() {
    let h = Harness::new().await;
    let engine = h.engine(Record::new("a"));
    let first = h.schedule("call-1", start() + TimeDelta::hours(1)).await;
    let mut tx = h.pool.begin().await.unwrap();
    let again = h
        .deadlines
        .schedule(
            &mut tx,
            NewDeadline::new(KIND, "call-1", start() + TimeDelta::hours(3))
                .with_payload(serde_json::json!({"department": "housing"})),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    h.deadlines.index(std::slice::from_ref(&again)).await.unwrap();
    assert_eq!(again.id, first.id, "one pending deadline per kind and subject");
    assert_eq!(again.payload["department"], "housing");

    h.clock.advance(TimeDelta::hours(2));
    assert_eq!(engine.fire_due().await.unwrap(), 0, "not at the old time");
    h.clock.advance(TimeDelta::hours(1));
    assert_eq!(engine.fire_due().await.unwrap(), 1, "at the new time");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM minhu_deadlines").fetch_one(&h.pool).await.unwrap();
    assert_eq!(count, 1);

    // Once fired, the same kind and subject can have a new deadline.
    let next = h.schedule("call-1", h.clock_now() + TimeDelta::hours(1)).await;
    assert_ne!(next.id, first.id);
}

#[tokio::test]
async fn a_stale_index_entry_fires_a_rescheduled_deadline_neither_early_nor_late() {
    let h = Harness::new().await;
    let engine = h.engine(Record::new("a"));
    let later = h.schedule("moved-later", start() + TimeDelta::hours(1)).await;
    let earlier = h.schedule("moved-earlier", start() + TimeDelta::hours(5)).await;

    // Both moved, and neither move reached the index.
    let mut tx = h.pool.begin().await.unwrap();
    h.deadlines
        .reschedule(&mut tx, KIND, "moved-later", start() + TimeDelta::hours(3))
        .await
        .unwrap()
        .expect("pending");
    h.deadlines
        .reschedule(&mut tx, KIND, "moved-earlier", start() + TimeDelta::hours(2))
        .await
        .unwrap()
        .expect("pending");
    assert!(h.deadlines.reschedule(&mut tx, KIND, "nobody", start()).await.unwrap().is_none());
    tx.commit().await.unwrap();

    // Claimed at its old time, the one moved later is found not yet due and put back.
    h.clock.advance(TimeDelta::hours(1));
    assert_eq!(engine.fire_due().await.unwrap(), 0);
    assert_eq!(h.effects_of(later.id).await, 0);

    // The rebuild moves the one moved earlier to its new time.
    engine.reconcile().await.unwrap();
    h.clock.advance(TimeDelta::hours(1));
    assert_eq!(engine.fire_due().await.unwrap(), 1);
    assert_eq!(h.effects_of(earlier.id).await, 1);
    h.clock.advance(TimeDelta::hours(1));
    assert_eq!(engine.fire_due().await.unwrap(), 1);
    assert_eq!(h.get(later.id).await.fired_at, Some(start() + TimeDelta::hours(3)));
    assert_eq!(h.index_sizes().await, (0, 0));
}

#[tokio::test]
async fn after_every_key_of_the_namespace_is_deleted_reconcile_brings_back_every_pending_deadline() {
    let h = Harness::new().await;
    let engine = h.engine(Record::new("a"));
    let scheduled = h.schedule_many(200, |i| start() + minutes(i as i64)).await;
    // One already fired, one cancelled: neither comes back.
    h.clock.advance(minutes(0));
    assert_eq!(engine.fire_due().await.unwrap(), 1);
    let mut conn = h.pool.acquire().await.unwrap();
    h.deadlines.cancel(&mut conn, KIND, "call-199").await.unwrap().expect("pending");
    drop(conn);

    h.delete_every_key().await;
    assert_eq!(h.index_sizes().await, (0, 0));

    h.clock.advance(minutes(99) + TimeDelta::seconds(30));
    assert_eq!(engine.fire_due().await.unwrap(), 0, "the index is empty");
    assert_eq!(engine.reconcile().await.unwrap(), 198, "every pending deadline");
    assert_eq!(engine.fire_due().await.unwrap(), 99, "the overdue ones fire at once");
    h.clock.advance(TimeDelta::hours(2));
    assert_eq!(engine.fire_due().await.unwrap(), 99);

    let early: i64 = sqlx::query_scalar("SELECT count(*) FROM minhu_deadlines WHERE fired_at < due_at")
        .fetch_one(&h.pool)
        .await
        .unwrap();
    assert_eq!(early, 0, "nothing fired before its time");
    assert_eq!(h.effects().await, 199);
    assert_eq!(h.effects_of(scheduled[199].id).await, 0, "the cancelled one stayed cancelled");
}

#[tokio::test]
async fn dropping_the_index_while_deadlines_are_claimed_loses_none_and_fires_each_once() {
    let h = Harness::new().await;
    let engine = h.engine(Record::new("a"));
    let scheduled = h.schedule_many(50, |i| start() + TimeDelta::seconds(i as i64)).await;
    h.clock.advance(minutes(1));
    // A firer claims ten and dies; then the index keys are dropped.
    let claimed = engine.claim(10).await.unwrap();
    assert_eq!(claimed.len(), 10);
    assert_eq!(h.index_sizes().await, (40, 10));
    let mut redis = h.redis().await;
    redis::cmd("DEL").arg(h.deadlines.due_key()).arg(h.deadlines.inflight_key()).exec_async(&mut redis).await.unwrap();

    assert_eq!(engine.reconcile().await.unwrap(), 50);
    assert_eq!(engine.fire_due().await.unwrap(), 50);
    for deadline in &scheduled {
        assert_eq!(h.effects_of(deadline.id).await, 1);
    }
    assert_eq!(h.index_sizes().await, (0, 0));
}

#[tokio::test]
async fn reconcile_leaves_claimed_ids_to_their_lease() {
    let h = Harness::new().await;
    let engine = h.engine(Record::new("a"));
    h.schedule_many(5, |_| start()).await;
    let claimed = engine.claim(2).await.unwrap();
    assert_eq!(engine.reconcile().await.unwrap(), 5);
    assert_eq!(h.index_sizes().await, (3, 2), "claimed ids are not put back while their lease lives");
    assert_eq!(engine.fire_due().await.unwrap(), 3);
    h.clock.advance(TimeDelta::seconds(60));
    assert_eq!(engine.fire_due().await.unwrap(), 2, "the dead claimer's ids fire once the lease expires");
    for id in claimed {
        assert_eq!(h.effects_of(id).await, 1);
    }
}

/// A `redis-server` of this test's own, on a free port, with no persistence: killing it loses
/// everything, which is the point.
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
}

impl PrivateRedis {
    fn available() -> bool {
        Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success())
    }

    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding port 0");
        listener.local_addr().expect("an address").port()
    }

    async fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        let server = Self { child: Some(child), port };
        server.wait_until_ready().await;
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn wait_until_ready(&self) {
        let client = redis::Client::open(self.url()).expect("a redis url");
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
            {
                return;
            }
            assert!(Instant::now() < give_up, "redis-server on port {} never answered", self.port);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn every_pending_deadline_fires_after_a_redis_restart() {
    if !PrivateRedis::available() {
        eprintln!("redis-server is not on PATH: the restart cannot be exercised here");
        return;
    }
    let h = Harness::new().await;
    let port = PrivateRedis::free_port();
    let mut server = PrivateRedis::start(port).await;
    let redis = minhu_store::connect_redis(&server.url()).await.expect("connecting to the private redis");
    let deadlines = Deadlines::with_clock(redis, &h.namespace, Arc::new(h.clock.clone()));
    let engine =
        DeadlineEngine::builder(h.pool.clone(), deadlines.clone()).handler(KIND, Record::new("a")).build().unwrap();
    let mut tx = h.pool.begin().await.unwrap();
    let mut scheduled = Vec::new();
    for i in 0..100 {
        let due_at = start() + minutes(i);
        scheduled.push(deadlines.schedule(&mut tx, NewDeadline::new(KIND, format!("call-{i}"), due_at)).await.unwrap());
    }
    tx.commit().await.unwrap();
    deadlines.index(&scheduled).await.unwrap();
    h.clock.advance(minutes(10));
    assert_eq!(engine.fire_due().await.unwrap(), 11);

    server.kill();
    let _server = PrivateRedis::start(port).await;
    // The connection manager reconnects on its own; the first calls may still fail.
    let give_up = Instant::now() + Duration::from_secs(10);
    let restored = loop {
        match engine.reconcile().await {
            Ok(restored) => break restored,
            Err(DeadlineError::Index(error)) if Instant::now() < give_up => {
                eprintln!("waiting for the reconnect: {error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("reconcile after the restart: {error}"),
        }
    };
    assert_eq!(restored, 89);
    h.clock.advance(TimeDelta::hours(2));
    assert_eq!(engine.fire_due().await.unwrap(), 89);
    for deadline in &scheduled {
        assert_eq!(h.effects_of(deadline.id).await, 1);
    }
}

#[tokio::test]
async fn a_failing_handler_is_retried_with_backoff_and_takes_effect_once() {
    let h = Harness::new().await;
    let engine = h.engine(Record::failing(2));
    let deadline = h.schedule("call-1", start()).await;

    assert_eq!(engine.fire_due().await.unwrap(), 0);
    let failed = h.get(deadline.id).await;
    assert_eq!((failed.state, failed.attempts), (DeadlineState::Pending, 1));
    assert_eq!(failed.last_error.as_deref(), Some("the roster service is unavailable"));
    assert_eq!(h.effects().await, 0, "the failed attempt's effect rolled back");
    assert_eq!(engine.fire_due().await.unwrap(), 0, "not retried before the backoff (1 s)");

    // Losing the index does not lose the backoff: the rebuild reads it from the row.
    let mut redis = h.redis().await;
    redis::cmd("DEL").arg(h.deadlines.due_key()).arg(h.deadlines.inflight_key()).exec_async(&mut redis).await.unwrap();
    engine.reconcile().await.unwrap();
    assert_eq!(engine.fire_due().await.unwrap(), 0);

    h.clock.advance(TimeDelta::seconds(1));
    assert_eq!(engine.fire_due().await.unwrap(), 0, "second attempt fails too");
    assert_eq!(h.get(deadline.id).await.attempts, 2);
    h.clock.advance(TimeDelta::seconds(1));
    assert_eq!(engine.fire_due().await.unwrap(), 0, "the backoff doubled to 2 s");
    h.clock.advance(TimeDelta::seconds(1));
    assert_eq!(engine.fire_due().await.unwrap(), 1);

    let fired = h.get(deadline.id).await;
    assert_eq!((fired.state, fired.attempts), (DeadlineState::Fired, 3));
    assert_eq!(h.effects_of(deadline.id).await, 1);
    assert_eq!(h.index_sizes().await, (0, 0));
}

/// Panics on its first call.
struct PanicsOnce {
    calls: AtomicUsize,
}

impl Handler for PanicsOnce {
    async fn fire(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        record_effect(tx, deadline, "panics-once").await?;
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("a bug in the handler");
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_handler_or_an_unknown_kind_leaves_the_deadline_pending_for_a_retry() {
    let h = Harness::new().await;
    let engine = h.engine(PanicsOnce { calls: AtomicUsize::new(0) });
    let deadline = h.schedule("call-1", start()).await;
    let mut tx = h.pool.begin().await.unwrap();
    let unknown = h.deadlines.schedule(&mut tx, NewDeadline::new("dispatch.unknown", "call-1", start())).await.unwrap();
    tx.commit().await.unwrap();
    h.deadlines.index(std::slice::from_ref(&unknown)).await.unwrap();

    assert_eq!(engine.fire_due().await.unwrap(), 0, "the pass survives the panic");
    let panicked = h.get(deadline.id).await;
    assert_eq!(panicked.state, DeadlineState::Pending);
    assert_eq!(panicked.last_error.as_deref(), Some("handler panicked: a bug in the handler"));
    let unhandled = h.get(unknown.id).await;
    assert_eq!(unhandled.state, DeadlineState::Pending);
    assert_eq!(unhandled.last_error.as_deref(), Some("no handler is registered for kind `dispatch.unknown`"));

    h.clock.advance(TimeDelta::seconds(1));
    assert_eq!(engine.fire_due().await.unwrap(), 1);
    assert_eq!(h.effects_of(deadline.id).await, 1);
    assert_eq!(h.get(unknown.id).await.attempts, 2, "still retried, never dropped");
}

#[tokio::test]
async fn a_firer_that_dies_after_claiming_is_replaced_when_its_lease_expires() {
    let h = Harness::new().await;
    let engine = h.engine(Record::new("a"));
    let scheduled = h.schedule_many(10, |_| start()).await;
    // Claim and drop: the firer died before firing anything.
    assert_eq!(engine.claim(100).await.unwrap().len(), 10);

    assert_eq!(engine.fire_due().await.unwrap(), 0, "leased to the dead firer");
    h.clock.advance(TimeDelta::seconds(60) - TimeDelta::milliseconds(1));
    assert_eq!(engine.fire_due().await.unwrap(), 0, "the lease still runs");
    h.clock.advance(TimeDelta::milliseconds(1));
    assert_eq!(engine.fire_due().await.unwrap(), 10);
    for deadline in &scheduled {
        assert_eq!(h.effects_of(deadline.id).await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firer_that_dies_mid_transaction_leaves_no_effect_and_is_retried() {
    let h = Harness::new().await;
    let entered = Arc::new(Notify::new());
    let never = Arc::new(Semaphore::new(0));
    let dying = h.replica(Paused { entered: entered.clone(), gate: never }).await;
    let survivor = h.replica(Record::new("survivor")).await;
    let deadline = h.schedule("call-1", start()).await;

    let pass = tokio::spawn(async move { dying.fire_due().await });
    entered.notified().await;
    // The effect is written but not committed; the firer dies.
    pass.abort();
    assert!(pass.await.unwrap_err().is_cancelled());

    assert_eq!(survivor.fire_due().await.unwrap(), 0, "leased to the dead firer");
    h.clock.advance(TimeDelta::seconds(60));
    assert_eq!(survivor.fire_due().await.unwrap(), 1);
    let replicas: Vec<String> = sqlx::query_scalar("SELECT replica FROM effects").fetch_all(&h.pool).await.unwrap();
    assert_eq!(replicas, vec!["survivor".to_string()], "the dead firer's effect rolled back");
    assert_eq!(h.get(deadline.id).await.attempts, 1);
}

#[tokio::test]
async fn six_months_of_deadlines_fire_in_order_in_a_few_seconds() {
    // Each firing is a real Postgres transaction, a few thousand a second in a debug build:
    // the count keeps the test short; the simulated span is what the manual clock is for.
    const COUNT: usize = 4_000;
    let h = Harness::new().await;
    let engine = h.engine_with(Record::new("a"), EngineConfig { concurrency: 5, ..EngineConfig::default() });
    let began = Instant::now();
    // One deadline every ~65 minutes for six months.
    let span = TimeDelta::days(182);
    let step = span / COUNT as i32;
    h.schedule_many(COUNT, |i| start() + step * (i as i32) + TimeDelta::seconds(1)).await;
    let scheduled_in = began.elapsed();

    let mut fired = 0;
    let mut days = 0;
    while fired < COUNT {
        h.clock.advance(TimeDelta::days(1));
        days += 1;
        fired += engine.fire_due().await.unwrap();
        assert!(days <= 183, "only {fired} fired in six months");
    }
    let elapsed = began.elapsed();
    eprintln!("six months, {COUNT} deadlines: scheduled in {scheduled_in:?}, all fired after {elapsed:?}");

    // Each fired on the first simulated day it was due: never early, never a day late; and
    // in firing order, due times only move forward from one day to the next.
    let (early, late): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE fired_at < due_at), count(*) FILTER (WHERE fired_at >= due_at + interval '1 day') \
         FROM effects",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!((early, late), (0, 0));
    let out_of_order: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT fired_at, lag(fired_at) OVER (ORDER BY seq) AS previous FROM effects) e \
         WHERE e.previous > e.fired_at",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(out_of_order, 0, "a deadline fired after a later one's day");
    assert_eq!(h.effects().await, COUNT as i64);
}

/// Sends each fired subject down a channel.
struct Announce(mpsc::UnboundedSender<String>);

impl Handler for Announce {
    async fn fire(&self, _tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        self.0.send(deadline.subject.clone())?;
        Ok(())
    }
}

#[tokio::test]
async fn the_running_engine_indexes_at_start_wakes_for_new_deadlines_and_stops_on_shutdown() {
    let h = Harness::new().await;
    let (fired, mut fired_rx) = mpsc::unbounded_channel();
    // Long ticks: only the start-up rebuild and the wake-up can make these fire promptly.
    let config = EngineConfig { max_tick: Duration::from_secs(3600), ..test_config() };
    let engine = h.engine_with(Announce(fired), config);
    h.schedule_unindexed("scheduled-before-start", start()).await;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(engine.run(async {
        let _ = stopped.await;
    }));
    let within = Duration::from_secs(10);
    let first = tokio::time::timeout(within, fired_rx.recv()).await.expect("fired after the start-up rebuild");
    assert_eq!(first.as_deref(), Some("scheduled-before-start"));

    h.schedule("scheduled-while-running", start()).await;
    let second = tokio::time::timeout(within, fired_rx.recv()).await.expect("woken by the scheduling");
    assert_eq!(second.as_deref(), Some("scheduled-while-running"));

    stop.send(()).unwrap();
    tokio::time::timeout(within, running).await.expect("stopped on shutdown").unwrap();
}

#[tokio::test]
async fn a_running_engine_rebuilds_the_index_as_soon_as_redis_loses_it() {
    let h = Harness::new().await;
    let (fired, mut fired_rx) = mpsc::unbounded_channel();
    // Periodic rebuilds an hour apart: only noticing the loss brings the deadline back in time.
    let config = EngineConfig {
        reconcile_every: Duration::from_secs(3600),
        max_tick: Duration::from_millis(20),
        ..test_config()
    };
    let engine = h.engine_with(Announce(fired), config);
    h.schedule("before-the-flush", start()).await;
    h.schedule("after-the-flush", start() + TimeDelta::hours(1)).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(engine.run(async {
        let _ = stopped.await;
    }));
    let within = Duration::from_secs(10);
    let first = tokio::time::timeout(within, fired_rx.recv()).await.expect("the first fired");
    assert_eq!(first.as_deref(), Some("before-the-flush"));

    h.delete_every_key().await;
    h.clock.advance(TimeDelta::hours(1));
    let second = tokio::time::timeout(within, fired_rx.recv()).await.expect("rebuilt and fired within seconds");
    assert_eq!(second.as_deref(), Some("after-the-flush"));

    stop.send(()).unwrap();
    tokio::time::timeout(within, running).await.expect("stopped on shutdown").unwrap();
}

#[tokio::test]
async fn a_deadline_commits_or_rolls_back_with_the_callers_transaction() {
    let h = Harness::new().await;
    let mut tx = h.pool.begin().await.unwrap();
    h.deadlines.schedule(&mut tx, NewDeadline::new(KIND, "rolled-back", start())).await.unwrap();
    tx.rollback().await.unwrap();
    let mut conn = h.pool.acquire().await.unwrap();
    assert!(h.deadlines.pending(&mut conn, KIND, "rolled-back").await.unwrap().is_none());

    let kept = h.schedule_unindexed("committed", start()).await;
    assert_eq!(h.deadlines.pending(&mut conn, KIND, "committed").await.unwrap().map(|d| d.id), Some(kept.id));

    let empty = h.deadlines.schedule(&mut conn, NewDeadline::new(" ", "call-1", start())).await;
    assert!(matches!(empty, Err(DeadlineError::Invalid(_))), "{empty:?}");
    let no_subject = h.deadlines.schedule(&mut conn, NewDeadline::new(KIND, "", start())).await;
    assert!(matches!(no_subject, Err(DeadlineError::Invalid(_))), "{no_subject:?}");
}

#[tokio::test]
async fn an_engine_with_an_impossible_configuration_is_refused() {
    let h = Harness::new().await;
    let build = |config: EngineConfig| {
        DeadlineEngine::builder(h.pool.clone(), h.deadlines.clone())
            .config(config)
            .handler(KIND, Record::new("a"))
            .build()
    };
    let lease_shorter_than_timeout =
        EngineConfig { lease: Duration::from_secs(5), handler_timeout: Duration::from_secs(10), ..Default::default() };
    assert!(matches!(build(lease_shorter_than_timeout), Err(DeadlineError::Invalid(_))));
    assert!(matches!(build(EngineConfig { claim_batch: 5000, ..Default::default() }), Err(DeadlineError::Invalid(_))));
    let twice = DeadlineEngine::builder(h.pool.clone(), h.deadlines.clone())
        .handler(KIND, Record::new("a"))
        .handler(KIND, Record::new("b"))
        .build();
    assert!(matches!(twice, Err(DeadlineError::Invalid(_))));
}

// --- the working-time calendar ---

/// China Standard Time, 09:00–12:00 and 13:30–17:30, with a made-up autumn holiday: Tuesday
/// 2030-10-01 to Thursday 10-03 off, Sunday 09-29 worked in exchange. (Made up: the real
/// schedule is the State Council's to announce.)
fn district_calendar() -> WorkCalendar {
    let date = |s: &str| s.parse::<NaiveDate>().expect("a date");
    let config = CalendarConfig {
        holidays: vec![date("2030-10-01"), date("2030-10-02"), date("2030-10-03")],
        make_up_days: vec![date("2030-09-29")],
        ..CalendarConfig::default()
    };
    WorkCalendar::new(&config).expect("a valid calendar")
}

/// `2030-10-01 09:00` Beijing time, as UTC.
fn beijing(s: &str) -> DateTime<Utc> {
    let local = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("a local time");
    (local - TimeDelta::hours(8)).and_utc()
}

fn working_hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

#[test]
fn the_calendar_skips_a_holiday_and_honours_a_make_up_day() {
    let calendar = district_calendar();
    let date = |s: &str| s.parse::<NaiveDate>().expect("a date");
    assert_eq!(date("2030-09-29").format("%a").to_string(), "Sun", "the make-up day is a Sunday");
    assert_eq!(date("2030-10-01").format("%a").to_string(), "Tue");
    assert!(calendar.is_working_day(date("2030-09-29")), "the make-up Sunday is worked");
    assert!(!calendar.is_working_day(date("2030-09-28")), "the Saturday before is not");
    assert!(!calendar.is_working_day(date("2030-10-02")), "a holiday on a Wednesday");
    assert!(calendar.is_working_day(date("2030-10-04")), "the Friday after");

    // Friday afternoon: 2 hours on Friday, 7 on the make-up Sunday, 3 on Monday morning.
    assert_eq!(
        calendar.add_working_duration(beijing("2030-09-27 15:30"), working_hours(12)),
        beijing("2030-09-30 12:00")
    );
    // Monday afternoon plus a working day's worth: the holiday is skipped to Friday.
    assert_eq!(
        calendar.add_working_duration(beijing("2030-09-30 14:30"), working_hours(7)),
        beijing("2030-10-04 14:30")
    );
    assert!(!calendar.is_working_time(beijing("2030-10-02 10:00")));
    assert!(calendar.is_working_time(beijing("2030-09-29 10:00")));

    // One working day from the Saturday: the make-up Sunday's close.
    assert_eq!(calendar.add_working_days(beijing("2030-09-28 10:00"), 1), beijing("2030-09-29 17:30"));
    // Two working days from Monday 09-30: Friday 10-04 (the first), Saturday off, Monday 10-07.
    assert_eq!(calendar.add_working_days(beijing("2030-09-30 09:00"), 1), beijing("2030-10-04 17:30"));
    assert_eq!(calendar.add_working_days(beijing("2030-09-30 09:00"), 2), beijing("2030-10-07 17:30"));
}

#[test]
fn working_hours_roll_across_lunch_nights_and_weekends() {
    let calendar = WorkCalendar::new(&CalendarConfig::default()).expect("the default calendar");
    // Wednesday 2030-01-09.
    assert_eq!(
        calendar.add_working_duration(beijing("2030-01-09 11:00"), working_hours(2)),
        beijing("2030-01-09 14:30")
    );
    assert_eq!(
        calendar.add_working_duration(beijing("2030-01-09 09:00"), working_hours(3)),
        beijing("2030-01-09 12:00")
    );
    assert_eq!(
        calendar.add_working_duration(beijing("2030-01-09 12:30"), working_hours(1)),
        beijing("2030-01-09 14:30")
    );
    assert_eq!(
        calendar.add_working_duration(beijing("2030-01-09 17:00"), working_hours(1)),
        beijing("2030-01-10 09:30")
    );
    assert_eq!(
        calendar.add_working_duration(beijing("2030-01-09 22:00"), working_hours(1)),
        beijing("2030-01-10 10:00")
    );
    // Friday 16:30 + 2 h: across the weekend to Monday.
    assert_eq!(
        calendar.add_working_duration(beijing("2030-01-11 16:30"), working_hours(2)),
        beijing("2030-01-14 10:00")
    );
    // Saturday: counts from Monday's start.
    assert_eq!(
        calendar.add_working_duration(beijing("2030-01-12 10:00"), working_hours(1)),
        beijing("2030-01-14 10:00")
    );
    // Three weeks of working time (15 days × 7 h) from Monday's start ends on the third Friday's close.
    assert_eq!(
        calendar.add_working_duration(beijing("2030-01-14 09:00"), working_hours(105)),
        beijing("2030-02-01 17:30")
    );
    // Zero adds nothing, even at night.
    assert_eq!(calendar.add_working_duration(beijing("2030-01-12 23:00"), Duration::ZERO), beijing("2030-01-12 23:00"));
    // The timezone matters: 01:30 UTC is 09:30 in Beijing.
    assert!(calendar.is_working_time(Utc.with_ymd_and_hms(2030, 1, 9, 1, 30, 0).single().unwrap()));
    assert!(!calendar.is_working_time(Utc.with_ymd_and_hms(2030, 1, 9, 4, 30, 0).single().unwrap()), "lunch");
}

#[test]
fn working_days_exclude_the_start_day_and_end_at_close_of_business() {
    let calendar = WorkCalendar::new(&CalendarConfig::default()).expect("the default calendar");
    assert_eq!(calendar.add_working_days(beijing("2030-01-09 10:00"), 1), beijing("2030-01-10 17:30"));
    assert_eq!(calendar.add_working_days(beijing("2030-01-09 23:00"), 1), beijing("2030-01-10 17:30"));
    assert_eq!(calendar.add_working_days(beijing("2030-01-11 16:00"), 1), beijing("2030-01-14 17:30"), "Friday");
    assert_eq!(calendar.add_working_days(beijing("2030-01-09 10:00"), 5), beijing("2030-01-16 17:30"));
    assert_eq!(calendar.add_working_days(beijing("2030-01-09 10:00"), 0), beijing("2030-01-09 17:30"), "today");
    assert_eq!(calendar.add_working_days(beijing("2030-01-09 18:00"), 0), beijing("2030-01-10 17:30"), "today is over");

    // A district with a single shift and a Friday weekend.
    let config = CalendarConfig {
        working_hours: vec![WorkingHours {
            start: chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            end: chrono::NaiveTime::from_hms_opt(16, 0, 0).unwrap(),
        }],
        weekend: vec![chrono::Weekday::Fri],
        ..CalendarConfig::default()
    };
    let calendar = WorkCalendar::new(&config).unwrap();
    assert_eq!(
        calendar.add_working_duration(beijing("2030-01-10 15:00"), working_hours(2)),
        beijing("2030-01-12 09:00")
    );
}
