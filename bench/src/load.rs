//! The load generator: M requests in flight over N connections, a warm-up, then a fixed
//! duration; every latency is kept (at most a few hundred thousand per scenario), so the
//! percentiles are exact rather than bucketed.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

/// How hard and how long.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Requests in flight at once.
    pub in_flight: usize,
    /// Discarded before measuring.
    pub warmup: Duration,
    /// Measured.
    pub duration: Duration,
}

/// What a scenario measured.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Stats {
    /// Requests completed in the measured window.
    pub requests: u64,
    /// Of those, failed.
    pub errors: u64,
    /// Completed per second.
    pub per_second: f64,
    /// Mean latency, ms.
    pub mean_ms: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
}

impl Stats {
    /// From latencies in microseconds over `elapsed`.
    pub fn from_latencies(mut micros: Vec<u64>, errors: u64, elapsed: Duration) -> Self {
        micros.sort_unstable();
        let at = |q: f64| {
            if micros.is_empty() {
                0.0
            } else {
                micros[((micros.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
            }
        };
        let n = micros.len() as u64;
        Self {
            requests: n,
            errors,
            per_second: n as f64 / elapsed.as_secs_f64().max(1e-9),
            mean_ms: if n == 0 { 0.0 } else { micros.iter().sum::<u64>() as f64 / n as f64 / 1000.0 },
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
        }
    }
}

impl Load {
    /// Runs `call(client, n)` from `in_flight` tasks, task `i` on `clients[i % N]` (one
    /// connection each), and measures what completes after the warm-up.
    pub async fn run<C, F, Fut>(&self, clients: &[C], call: F) -> Stats
    where
        C: Clone + Send + 'static,
        F: Fn(C, u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), tonic::Status>> + Send,
    {
        let call = Arc::new(call);
        let start = Instant::now();
        let measure_from = start + self.warmup;
        let end = measure_from + self.duration;
        let mut tasks = Vec::new();
        for i in 0..self.in_flight {
            let (client, call) = (clients[i % clients.len()].clone(), call.clone());
            tasks.push(tokio::spawn(async move {
                let (mut micros, mut errors, mut n) = (Vec::new(), 0u64, i as u64 * 1_000_000_000);
                loop {
                    let t = Instant::now();
                    if t >= end {
                        break;
                    }
                    let result = call(client.clone(), n).await;
                    n += 1;
                    if t >= measure_from {
                        match result {
                            Ok(()) => micros.push(t.elapsed().as_micros() as u64),
                            Err(status) => {
                                errors += 1;
                                if errors == 1 {
                                    eprintln!("bench: a request failed: {status:?}");
                                }
                            }
                        }
                    }
                }
                (micros, errors)
            }));
        }
        let (mut all, mut errors) = (Vec::new(), 0);
        for task in tasks {
            if let Ok((micros, e)) = task.await {
                all.extend(micros);
                errors += e;
            }
        }
        Stats::from_latencies(all, errors, self.duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact_over_the_kept_latencies() {
        let s = Stats::from_latencies((1..=1000).map(|ms| ms * 1000).collect(), 2, Duration::from_secs(2));
        assert_eq!((s.requests, s.errors, s.per_second), (1000, 2, 500.0));
        assert_eq!((s.p50_ms, s.p99_ms, s.p999_ms), (501.0, 990.0, 999.0));
    }
}
