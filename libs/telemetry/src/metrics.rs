//! Metrics, exported over OTLP to the same collector as the spans (when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; without it every instrument is a no-op).
//!
//! What every Minhu process reports, and who records it:
//!
//! | metric | kind | attributes | recorded by |
//! |---|---|---|---|
//! | `rpc.server.duration` (ms) | histogram | `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code` | `minhu-grpc`'s server stack, one layer |
//! | `minhu.rpc.server.requests` | counter | the same | the same layer |
//! | `minhu.rpc.server.errors` | counter | the same (non-OK codes only) | the same layer |
//! | `db.client.connection.count` | gauge | `db.client.connection.pool.name`, `db.client.connection.state` (`idle`/`used`) | `minhu-store` for every pool it connects |
//! | `db.client.connection.max` | gauge | `db.client.connection.pool.name` | the same |
//!
//! Services add their own through [`meter`] and [`gauge`]; names start with `minhu.`:
//!
//! | metric | kind | attributes | recorded by |
//! |---|---|---|---|
//! | `minhu.feed.lag` | gauge | `minhu.feed.consumer` | appraisal's feed consumer |
//! | `minhu.deadlines.lateness` (s) | histogram | `minhu.deadline.kind` | [`DeadlineMetrics::fired`]: for the deadline engine to call |
//! | `minhu.deadlines.backlog` | gauge | `minhu.deadline.kind` | [`DeadlineMetrics::report_backlog`]: likewise |
//!
//! The deadline hooks are not called yet: `libs/deadlines` (the engine) calls
//! [`DeadlineMetrics::fired`] with how late each firing was, and registers
//! [`DeadlineMetrics::report_backlog`] with a reader of its due-but-unfired counts.
//!
//! Instruments take the global meter provider at the moment they are built: build them
//! after [`init`](crate::init) (servers build theirs when they start serving).

use std::time::Duration;

/// An attribute of a measurement (re-exported so services need no `opentelemetry` of their own).
pub use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge};

/// The meter every Minhu instrument comes from (instrumentation scope `minhu`).
pub fn meter() -> Meter {
    opentelemetry::global::meter("minhu")
}

/// Registers a gauge read at each export: `read` returns the current values, each with its
/// attributes. Keep the returned handle as long as the gauge should report.
///
/// ```no_run
/// // appraisal: how far its cursor is behind dispatch's feed
/// let _lag = minhu_telemetry::metrics::gauge(
///     "minhu.appraisal.feed.lag", "feed events not yet consumed", "{event}",
///     || vec![(3, vec![minhu_telemetry::metrics::KeyValue::new("minhu.feed.consumer", "appraisal")])],
/// );
/// ```
pub fn gauge(
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    read: impl Fn() -> Vec<(u64, Vec<KeyValue>)> + Send + Sync + 'static,
) -> ObservableGauge<u64> {
    meter()
        .u64_observable_gauge(name)
        .with_description(description)
        .with_unit(unit)
        .with_callback(move |observer| {
            for (value, attributes) in read() {
                observer.observe(value, &attributes);
            }
        })
        .build()
}

/// A gauge of a value that may go negative (lateness in seconds, a signed lag).
pub fn signed_gauge(
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    read: impl Fn() -> Vec<(i64, Vec<KeyValue>)> + Send + Sync + 'static,
) -> ObservableGauge<i64> {
    meter()
        .i64_observable_gauge(name)
        .with_description(description)
        .with_unit(unit)
        .with_callback(move |observer| {
            for (value, attributes) in read() {
                observer.observe(value, &attributes);
            }
        })
        .build()
}

/// The server side of the RPC metrics (the table above), recorded once per call when its
/// status is known.
#[derive(Debug, Clone)]
pub struct RpcServerMetrics {
    duration: Histogram<f64>,
    requests: Counter<u64>,
    errors: Counter<u64>,
}

/// Bucket bounds in milliseconds: a database round trip to a slow upload.
const DURATION_BOUNDS_MS: [f64; 14] =
    [1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0];

impl RpcServerMetrics {
    /// The instruments, from the global meter provider as it is now.
    pub fn new() -> Self {
        let meter = meter();
        Self {
            duration: meter
                .f64_histogram("rpc.server.duration")
                .with_description("duration of inbound RPCs, until the status was sent")
                .with_unit("ms")
                .with_boundaries(DURATION_BOUNDS_MS.to_vec())
                .build(),
            requests: meter
                .u64_counter("minhu.rpc.server.requests")
                .with_description("inbound RPCs, by method and gRPC status code")
                .with_unit("{request}")
                .build(),
            errors: meter
                .u64_counter("minhu.rpc.server.errors")
                .with_description("inbound RPCs that ended with a status other than OK")
                .with_unit("{request}")
                .build(),
        }
    }

    /// One call of `service`/`method` that ended with `code` after `elapsed`.
    pub fn record(&self, service: &str, method: &str, code: i32, elapsed: Duration) {
        let attributes = [
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
            KeyValue::new("rpc.grpc.status_code", i64::from(code)),
        ];
        self.duration.record(elapsed.as_secs_f64() * 1000.0, &attributes);
        self.requests.add(1, &attributes);
        if code != 0 {
            self.errors.add(1, &attributes);
        }
    }
}

impl Default for RpcServerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Deadline metrics, for the deadline engine (`libs/deadlines`) to record: how late each
/// deadline fired behind its due time, and how many are due and not yet fired.
#[derive(Debug, Clone)]
pub struct DeadlineMetrics {
    lateness: Histogram<f64>,
}

/// Bucket bounds in seconds: on time to an hour behind.
const LATENESS_BOUNDS_S: [f64; 10] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0];

impl DeadlineMetrics {
    /// The instruments, from the global meter provider as it is now.
    pub fn new() -> Self {
        Self {
            lateness: meter()
                .f64_histogram("minhu.deadlines.lateness")
                .with_description("how long after its due time a deadline took effect")
                .with_unit("s")
                .with_boundaries(LATENESS_BOUNDS_S.to_vec())
                .build(),
        }
    }

    /// A deadline of `kind` (`sign`, `check_in`, …) took effect `late` after it was due.
    pub fn fired(&self, kind: &str, late: Duration) {
        self.lateness.record(late.as_secs_f64(), &[KeyValue::new("minhu.deadline.kind", kind.to_owned())]);
    }

    /// Reports `minhu.deadlines.backlog` at each export: `read` returns the number of
    /// deadlines due and not yet fired, by kind (a cheap read: an in-memory count or the
    /// Redis index's `ZCOUNT -inf now`, not a table scan).
    pub fn report_backlog(read: impl Fn() -> Vec<(String, u64)> + Send + Sync + 'static) -> ObservableGauge<u64> {
        gauge("minhu.deadlines.backlog", "deadlines due and not yet fired", "{deadline}", move || {
            read().into_iter().map(|(kind, n)| (n, vec![KeyValue::new("minhu.deadline.kind", kind)])).collect()
        })
    }
}

impl Default for DeadlineMetrics {
    fn default() -> Self {
        Self::new()
    }
}
