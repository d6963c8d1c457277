//! `cargo xtask bench`: Minhu's scenarios measured side by side with the machine's own
//! limits in one run — `pgbench` (the scripts in `bench/pgbench/`), `redis-benchmark`, a bare
//! tonic server, `h2load` — printed as one table (figure, baseline, ratio, target, met) and
//! written as JSON. The services run in this process as the suite does (minhu-harness: real
//! gRPC on loopback, a database each); the load comes from [`load`]'s tonic clients.
//!
//! Postgres and Redis are named by `MINHU_TEST_DATABASE_URL` (an admin URL) and
//! `MINHU_TEST_REDIS_URL`, as for the tests; `cargo xtask bench` sets them.

pub mod load;
pub mod report;
mod scenarios;
pub mod tools;

use std::time::Duration;

pub use report::{Report, Row};

/// How long each measurement runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Warm-up before each measured window.
    pub warmup: Duration,
    /// Each measured window.
    pub duration: Duration,
    /// Appeals of the storm at one place.
    pub storm: usize,
    /// Cases loaded for "intake as the month grows".
    pub month: usize,
}

impl Options {
    /// The full run (about ten minutes on two cores).
    pub fn full() -> Self {
        Self { warmup: Duration::from_secs(2), duration: Duration::from_secs(10), storm: 1000, month: 100_000 }
    }

    /// `--quick`: every scenario, shorter (under two minutes).
    pub fn quick() -> Self {
        Self { warmup: Duration::from_millis(300), duration: Duration::from_secs(2), storm: 200, month: 10_000 }
    }

    /// For the crate's own test: just enough to run every step.
    pub fn tiny() -> Self {
        Self { warmup: Duration::from_millis(50), duration: Duration::from_millis(300), storm: 20, month: 200 }
    }
}

/// Runs every baseline and scenario in turn and returns the report.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    scenarios::run(options).await
}
