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
//! | `minhu.deadline.lateness` (s) | histogram | `minhu.deadline.kind` | the deadline engine ([`DeadlineMetrics::fired`]), each firing that took effect |
//! | `minhu.deadline.fired` | counter | `minhu.deadline.kind` | the same |
//! | `minhu.deadline.failed` | counter | `minhu.deadline.kind` | the engine, each failed attempt ([`DeadlineMetrics::failed`]) |
//! | `minhu.deadline.backlog` | gauge | `minhu.deadline.kind`, `minhu.deadline.state` (`pending`/`overdue`) | the engine, counted at each index rebuild ([`DeadlineMetrics::report_backlog`]) |
//!
//! `pending` counts every deadline not yet fired or cancelled, `overdue` those of them
//! already past their due time: a growing `overdue` is an engine falling behind.
//!
//! Instruments take the global meter provider at the moment they are built: build them
//! after [`init`](crate::init) (servers build theirs when they start serving).

use std::time::Duration;

/// An attribute of a measurement (re-exported so services need no `opentelemetry` of their own).
pub use opentelemetry::KeyValue;
/// The handle of a registered gauge: it reports while kept.
pub use opentelemetry::metrics::ObservableGauge;
use opentelemetry::metrics::{Counter, Histogram, Meter};

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

/// Deadline metrics, recorded by the deadline engine (`libs/deadlines`): how late each
/// deadline fired behind its due time, how many fired and failed, and the backlog.
#[derive(Debug, Clone)]
pub struct DeadlineMetrics {
    lateness: Histogram<f64>,
    fired: Counter<u64>,
    failed: Counter<u64>,
}

/// Bucket bounds in seconds: on time to an hour behind.
const LATENESS_BOUNDS_S: [f64; 10] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0];

impl DeadlineMetrics {
    /// The instruments, from the global meter provider as it is now.
    pub fn new() -> Self {
        let meter = meter();
        Self {
            lateness: meter
                .f64_histogram("minhu.deadline.lateness")
                .with_description("how long after its due time a deadline took effect")
                .with_unit("s")
                .with_boundaries(LATENESS_BOUNDS_S.to_vec())
                .build(),
            fired: meter
                .u64_counter("minhu.deadline.fired")
                .with_description("deadlines whose effect committed")
                .with_unit("{deadline}")
                .build(),
            failed: meter
                .u64_counter("minhu.deadline.failed")
                .with_description("failed firing attempts (each is retried)")
                .with_unit("{attempt}")
                .build(),
        }
    }

    /// A deadline of `kind` (`dispatch.sign`, …) took effect `late` after it was due.
    pub fn fired(&self, kind: &str, late: Duration) {
        let attributes = [KeyValue::new("minhu.deadline.kind", kind.to_owned())];
        self.lateness.record(late.as_secs_f64(), &attributes);
        self.fired.add(1, &attributes);
    }

    /// An attempt to fire a deadline of `kind` failed (it is retried).
    pub fn failed(&self, kind: &str) {
        self.failed.add(1, &[KeyValue::new("minhu.deadline.kind", kind.to_owned())]);
    }

    /// Reports `minhu.deadline.backlog` at each export: `read` returns, by kind, how many
    /// deadlines are pending and how many of those are overdue. It runs on the exporter's
    /// thread, so it must be cheap (a stored count, not a query).
    pub fn report_backlog(read: impl Fn() -> Vec<(String, u64, u64)> + Send + Sync + 'static) -> ObservableGauge<u64> {
        gauge(
            "minhu.deadline.backlog",
            "deadlines not yet fired: pending, and overdue among them",
            "{deadline}",
            move || {
                read()
                    .into_iter()
                    .flat_map(|(kind, pending, overdue)| {
                        let of = |state: &'static str| {
                            vec![
                                KeyValue::new("minhu.deadline.kind", kind.clone()),
                                KeyValue::new("minhu.deadline.state", state),
                            ]
                        };
                        [(pending, of("pending")), (overdue, of("overdue"))]
                    })
                    .collect()
            },
        )
    }
}

impl Default for DeadlineMetrics {
    fn default() -> Self {
        Self::new()
    }
}
