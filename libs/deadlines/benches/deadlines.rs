//! How many deadlines the engine holds and how fast and how punctually it fires them, on the
//! Postgres and Redis of `MINHU_TEST_DATABASE_URL` / `MINHU_TEST_REDIS_URL` (testkit's
//! defaults otherwise), in a fresh database and a private key prefix.
//!
//! `cargo bench -p minhu-deadlines --bench deadlines` runs, in order:
//!
//! 1. **load**: `MINHU_BENCH_DEADLINES` (1,000,000) deadlines scheduled through
//!    `Deadlines::schedule`, 1,000 per transaction, 4 transactions at once (rows/s); then
//!    indexed through `Deadlines::index`, 1,000 per call, one call at a time (entries/s), and the index rebuilt from Postgres by
//!    `reconcile` after its keys are deleted (rows/s);
//! 2. **steady**: with all of those still pending, `MINHU_BENCH_STEADY_RATE` (2,000) deadlines
//!    a second fall due for `MINHU_BENCH_STEADY_SECS` (20) seconds; the running engine fires
//!    them (lateness = `fired_at − due_at` on the wall clock);
//! 3. **burst**: the million all fall due within `MINHU_BENCH_BURST_SECS` (10) seconds, far
//!    more than one engine can fire that fast: this measures the firing rate, and lateness
//!    there is the backlog;
//! 4. `redis-benchmark` against the same Redis (if on `PATH`): single-member `ZADD` at its
//!    defaults (50 clients, no pipelining), and pipelined 16 deep, for comparison with our
//!    multi-member `ZADD`s.
//!
//! `MINHU_BENCH_ENGINES` (1) replicas fire, each with `MINHU_BENCH_CONCURRENCY` (32)
//! firings at once. Each phase's deadlines are due in the future (so loading takes as long as
//! it takes), and its engines run on a clock shifted to just before that future: time passes
//! at the real rate, so lateness is real. The handler inserts one row, in the firing
//! transaction. Postgres runs with its own settings (`synchronous_commit` untouched).

use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeDelta, Utc};
use minhu_deadlines::{
    Clock, Deadline, DeadlineEngine, Deadlines, EngineConfig, Handler, HandlerError, MIGRATOR, NewDeadline,
};
use minhu_testkit::{TestDatabase, TestRedis};
use sqlx::{PgConnection, PgPool};

const BURST: &str = "bench.burst";
const STEADY: &str = "bench.steady";

/// The wall clock, shifted: the engine lives a fixed distance in the future.
struct ShiftedClock(TimeDelta);

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

/// A handler with one small effect, as a real one would have.
struct InsertEffect;

impl Handler for InsertEffect {
    async fn fire(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
        sqlx::query("INSERT INTO bench_effects (deadline_id) VALUES ($1)").bind(deadline.id).execute(tx).await?;
        Ok(())
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Bench {
    db: TestDatabase,
    redis: TestRedis,
    pool: PgPool,
    namespace: String,
    engines: usize,
    concurrency: usize,
    rows: Vec<(String, String)>,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let count: usize = env_or("MINHU_BENCH_DEADLINES", 1_000_000);
    let steady_rate: usize = env_or("MINHU_BENCH_STEADY_RATE", 2_000);
    let steady_secs: usize = env_or("MINHU_BENCH_STEADY_SECS", 20);
    let burst_secs: f64 = env_or("MINHU_BENCH_BURST_SECS", 10.0);
    let engines: usize = env_or("MINHU_BENCH_ENGINES", 1);
    let concurrency: usize = env_or("MINHU_BENCH_CONCURRENCY", 32);

    let db = TestDatabase::create("deadlines_bench").await;
    let mut config = db.config();
    config.max_connections = 8;
    let pool = minhu_store::connect_and_migrate(&config, &[&MIGRATOR]).await.expect("migrating");
    sqlx::query("CREATE TABLE bench_effects (deadline_id uuid NOT NULL)").execute(&pool).await.expect("effects");
    let redis = TestRedis::create().await;
    let namespace = format!("{}bench:deadlines:", redis.prefix());
    let mut bench = Bench { db, redis, pool, namespace, engines, concurrency, rows: Vec::new() };
    println!(
        "deadlines bench: {count} deadlines, {engines} engine(s) × {concurrency} concurrent firings, \
         steady {steady_rate}/s for {steady_secs} s, burst within {burst_secs} s"
    );

    // 1. Load: the million, due an hour from now within the burst window.
    let burst_start = Utc::now() + TimeDelta::hours(1);
    let burst_window = TimeDelta::microseconds((burst_secs * 1e6) as i64);
    let deadlines = bench.deadlines(Arc::new(ShiftedClock(TimeDelta::zero()))).await;
    let started = Instant::now();
    let loaded = bench.load(&deadlines, BURST, count, burst_start, burst_window).await;
    bench.rate("schedule (Postgres INSERT, 1000/tx, 4 tx at once)", count, started.elapsed());

    let started = Instant::now();
    index_all(&deadlines, &loaded).await;
    bench.rate("index (Redis ZADD, 1000 members/command)", count, started.elapsed());
    drop(loaded);
    bench.report_index_memory(&deadlines, count).await;

    let mut redis = bench.redis.connection().await;
    redis::cmd("DEL").arg(deadlines.due_key()).arg(deadlines.inflight_key()).exec_async(&mut redis).await.ok();
    let rebuilder = bench.engine(&deadlines).await;
    let started = Instant::now();
    let rebuilt = rebuilder.reconcile().await.expect("reconcile");
    bench.rate("reconcile (rebuild the index from Postgres)", rebuilt, started.elapsed());
    drop(rebuilder);

    // 2. Steady: a few thousand a second fall due while the million wait.
    let steady_count = steady_rate * steady_secs;
    let steady_start = Utc::now() + TimeDelta::minutes(30);
    let steady =
        bench.load(&deadlines, STEADY, steady_count, steady_start, TimeDelta::seconds(steady_secs as i64)).await;
    index_all(&deadlines, &steady).await;
    drop(steady);
    bench.fire_phase(STEADY, steady_count, steady_start, TimeDelta::seconds(steady_secs as i64)).await;

    // 3. Burst: the million fall due at once.
    bench.fire_phase(BURST, count, burst_start, burst_window).await;

    // 4. The server's own ZADD rate.
    bench.redis_benchmark();

    println!();
    println!("| {:<58} | {:>24} |", "measure", "result");
    println!("|{:-<60}|{:->26}|", "", "");
    for (name, value) in &bench.rows {
        println!("| {name:<58} | {value:>24} |");
    }
}

/// Indexes in chunks of 1000, one after another.
async fn index_all(deadlines: &Deadlines, all: &[Deadline]) {
    for chunk in all.chunks(1000) {
        deadlines.index(chunk).await.expect("indexing");
    }
}

impl Bench {
    async fn deadlines(&self, clock: Arc<dyn Clock>) -> Deadlines {
        Deadlines::with_clock(self.redis.connection().await, &self.namespace, clock)
    }

    async fn engine(&self, deadlines: &Deadlines) -> DeadlineEngine {
        let mut config = self.db.config();
        config.max_connections = u32::try_from(self.concurrency + 4).unwrap_or(u32::MAX);
        let pool = minhu_store::connect(&config).await.expect("an engine pool");
        let engine_config = EngineConfig { concurrency: self.concurrency, claim_batch: 512, ..EngineConfig::default() };
        DeadlineEngine::builder(pool, deadlines.clone())
            .config(engine_config)
            .handler(BURST, InsertEffect)
            .handler(STEADY, InsertEffect)
            .build()
            .expect("an engine")
    }

    /// Schedules `count` deadlines of `kind`, evenly spread over `window` from `start`, in a
    /// shuffled order (the index sees scores arrive at random, as it would).
    async fn load(
        &self,
        deadlines: &Deadlines,
        kind: &str,
        count: usize,
        start: DateTime<Utc>,
        window: TimeDelta,
    ) -> Vec<Deadline> {
        let loaders = 4;
        let mut tasks = tokio::task::JoinSet::new();
        for loader in 0..loaders {
            let (pool, deadlines, kind) = (self.pool.clone(), deadlines.clone(), kind.to_string());
            tasks.spawn(async move {
                let mut scheduled = Vec::with_capacity(count / loaders + 1);
                let mine: Vec<usize> = (loader..count).step_by(loaders).collect();
                for chunk in mine.chunks(1000) {
                    let mut tx = pool.begin().await.expect("begin");
                    for &i in chunk {
                        // A fixed permutation of 0..count: due times arrive shuffled.
                        let slot = (i as u64 * 7_919 % count as u64) as i32;
                        let due_at = start + window * slot / (count as i32).max(1);
                        let new = NewDeadline::new(kind.as_str(), format!("{kind}-{i}"), due_at);
                        scheduled.push(deadlines.schedule(&mut tx, new).await.expect("scheduling"));
                    }
                    tx.commit().await.expect("commit");
                }
                scheduled
            });
        }
        let mut all = Vec::with_capacity(count);
        while let Some(part) = tasks.join_next().await {
            all.extend(part.expect("a loader"));
        }
        all
    }

    /// Runs the engines on a clock that reaches `start` a second from now, until every
    /// deadline of `kind` (due within `window` of `start`) has fired; reports rate and
    /// lateness.
    async fn fire_phase(&mut self, kind: &str, count: usize, start: DateTime<Utc>, window: TimeDelta) {
        let lead = TimeDelta::seconds(1);
        let shift = start - Utc::now() - lead;
        let mut stops = Vec::new();
        let mut runs = Vec::new();
        for _ in 0..self.engines {
            let deadlines = self.deadlines(Arc::new(ShiftedClock(shift))).await;
            let engine = self.engine(&deadlines).await;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            stops.push(stop);
            runs.push(tokio::spawn(engine.run(async {
                let _ = stopped.await;
            })));
        }
        // Watch the index, not the table: counting a million pending rows every poll would
        // take CPU from the firing it measures. Nothing left in the index up to the end of
        // the window (later phases' deadlines wait beyond it) and nothing leased; then
        // confirm in Postgres.
        let window_end = (start + window).timestamp_millis() + 1;
        let mut redis = self.redis.connection().await;
        let keys = {
            let deadlines = self.deadlines(Arc::new(ShiftedClock(shift))).await;
            (deadlines.due_key().to_string(), deadlines.inflight_key().to_string())
        };
        let began = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let (due, inflight): (u64, u64) = redis::pipe()
                .cmd("ZCOUNT")
                .arg(&keys.0)
                .arg("-inf")
                .arg(window_end)
                .cmd("ZCARD")
                .arg(&keys.1)
                .query_async(&mut redis)
                .await
                .expect("index sizes");
            if due + inflight > 0 {
                continue;
            }
            let pending: i64 =
                sqlx::query_scalar("SELECT count(*) FROM minhu_deadlines WHERE kind = $1 AND state = 'pending'")
                    .bind(kind)
                    .fetch_one(&self.pool)
                    .await
                    .expect("counting");
            if pending == 0 {
                break;
            }
            if began.elapsed() > Duration::from_secs(3600) {
                println!("{kind}: {pending} still pending after an hour; giving up");
                break;
            }
        }
        for stop in stops {
            let _ = stop.send(());
        }
        for run in runs {
            let _ = run.await;
        }

        let (fired, p50, p99, max, first, last): (i64, f64, f64, f64, DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
            "SELECT count(*), \
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), \
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), \
                    max(ms), min(fired_at), max(fired_at) \
             FROM (SELECT fired_at, (extract(epoch FROM fired_at - due_at) * 1000)::float8 AS ms \
                   FROM minhu_deadlines WHERE kind = $1 AND state = 'fired') f",
        )
        .bind(kind)
        .fetch_one(&self.pool)
        .await
        .expect("lateness");
        let effects: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bench_effects e JOIN minhu_deadlines d ON d.id = e.deadline_id WHERE d.kind = $1",
        )
        .bind(kind)
        .fetch_one(&self.pool)
        .await
        .expect("effects");
        let span = (last - first).to_std().unwrap_or_default().max(Duration::from_millis(1));
        let label = if kind == STEADY { "steady" } else { "burst" };
        println!("{label}: {fired}/{count} fired, {effects} effects, over {span:.2?}");
        self.rate(&format!("{label}: firing rate ({} engine(s))", self.engines), fired as usize, span);
        self.rows.push((format!("{label}: lateness p50 / p99 / max"), format!("{p50:.0} / {p99:.0} / {max:.0} ms")));
        assert_eq!(effects, fired, "one effect per fired deadline");
    }

    fn rate(&mut self, name: &str, count: usize, elapsed: Duration) {
        let per_second = count as f64 / elapsed.as_secs_f64();
        println!("{name}: {count} in {elapsed:.2?} = {per_second:.0}/s");
        self.rows.push((name.to_string(), format!("{per_second:>9.0}/s ({elapsed:.1?})")));
    }

    async fn report_index_memory(&mut self, deadlines: &Deadlines, count: usize) {
        let mut redis = self.redis.connection().await;
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(deadlines.due_key())
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut redis)
            .await
            .ok()
            .flatten();
        if let Some(bytes) = bytes {
            let text = format!("{:.0} MiB ({:.0} B/entry)", bytes as f64 / 1048576.0, bytes as f64 / count as f64);
            self.rows.push(("index memory (the due sorted set)".into(), text));
        }
    }

    /// `redis-benchmark`'s ZADD, on keys under this run's prefix (its `-t zadd` would write a
    /// shared key), at its defaults and pipelined.
    fn redis_benchmark(&mut self) {
        let info = match redis::Client::open(self.redis.url()).map(|c| c.get_connection_info().clone()) {
            Ok(info) => info,
            Err(error) => return println!("redis-benchmark skipped: {error}"),
        };
        let (host, port) = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            other => return println!("redis-benchmark skipped: not a TCP address ({other:?})"),
        };
        let key = format!("{}bench:redis-benchmark", self.redis.prefix());
        for (label, pipeline) in
            [("redis-benchmark ZADD, 50 clients", "1"), ("redis-benchmark ZADD, 50 clients, -P 16", "16")]
        {
            let output = Command::new("redis-benchmark")
                .args(["-h", &host, "-p", &port.to_string(), "-q", "-n", "200000", "-r", "1000000", "-P", pipeline])
                .args(["ZADD", &key, "__rand_int__", "element:__rand_int__"])
                .output();
            match output {
                Ok(output) if output.status.success() => {
                    let text = String::from_utf8_lossy(&output.stdout);
                    // With -q the summary reads "ZADD …: 123456.78 requests per second, p50=…",
                    // after progress updates separated by carriage returns.
                    let line =
                        text.split(['\r', '\n']).rev().find(|l| l.contains("requests per second")).unwrap_or_default();
                    let rate = line
                        .split(": ")
                        .nth(1)
                        .and_then(|rest| rest.split(' ').next())
                        .and_then(|n| n.parse::<f64>().ok());
                    println!("{label}: {}", line.trim());
                    if let Some(rate) = rate {
                        self.rows.push((label.to_string(), format!("{rate:>9.0}/s")));
                    }
                }
                Ok(output) => println!("redis-benchmark failed: {}", String::from_utf8_lossy(&output.stderr)),
                Err(error) => return println!("redis-benchmark skipped: {error}"),
            }
        }
    }
}
