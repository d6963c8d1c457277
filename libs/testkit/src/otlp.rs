//! An OTLP/gRPC receiver for tests: real `TraceService/Export` and `MetricsService/Export`
//! servers on `127.0.0.1:0` that keep every span and every metric data point they are
//! sent, so a test can point [`minhu_telemetry::init`] at it and assert on what a collector
//! would have received.
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! let receiver = minhu_testkit::otlp::Receiver::start().await;
//! // … init telemetry with `receiver.endpoint()`, do some work, flush …
//! let spans = receiver.wait_for(|spans| spans.iter().any(|s| s.name == "work"), Duration::from_secs(10)).await;
//! # }
//! ```

use std::{collections::BTreeMap, fmt::Write as _, net::SocketAddr, time::Duration};

use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    metrics::v1::{metric::Data, number_data_point},
};
use tokio::sync::{oneshot, watch};
use tonic::{Request, Response, Status, transport::server::TcpIncoming};

/// What kind of span it is (client, server, internal, …), as sent over OTLP.
pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
/// A span's status: unset, OK or ERROR.
pub use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

/// One span as the collector received it, flattened for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// `service.name` of the resource that sent it.
    pub service_name: String,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id (16 hex digits), `None` for a root span.
    pub parent_span_id: Option<String>,
    /// Its name (for Minhu's server spans, the `otel.name` `package.Service/Method`).
    pub name: String,
    /// Client, server, internal, ….
    pub kind: SpanKind,
    /// Every attribute, its value written as a string (`true`, `42`, `[a, b]`, …).
    pub attributes: BTreeMap<String, String>,
    /// Its status (ERROR for the server's own failures).
    pub status: StatusCode,
    /// The spans it links to (background work linked to the request that caused it).
    pub links: Vec<Link>,
}

/// A span link as the collector received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The linked span's trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The linked span's id, 16 lowercase hex digits.
    pub span_id: String,
}

impl Span {
    /// The attribute `key`, if the span has it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// What kind of metric a data point belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A gauge (observable or synchronous).
    Gauge,
    /// A sum: counters and up-down counters.
    Sum,
    /// A histogram with explicit buckets.
    Histogram,
    /// Exponential histograms and summaries (Minhu sends none).
    Other,
}

/// One metric data point as the collector received it, flattened for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    /// `service.name` of the resource that sent it.
    pub service_name: String,
    /// The metric's name (`rpc.server.duration`).
    pub name: String,
    /// Its unit (`ms`).
    pub unit: String,
    /// Gauge, sum or histogram.
    pub kind: MetricKind,
    /// The point's attributes, each value written as a string (as for spans).
    pub attributes: BTreeMap<String, String>,
    /// The value of a gauge or sum; the sum of the observations of a histogram.
    pub value: f64,
    /// How many observations a histogram point holds (`None` for gauges and sums).
    pub count: Option<u64>,
}

impl DataPoint {
    /// The attribute `key`, if the point has it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// A running receiver; it stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    spans: watch::Receiver<Vec<Span>>,
    points: watch::Receiver<Vec<DataPoint>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Receiver {
    /// Serves the OTLP trace and metrics services on an ephemeral port of `127.0.0.1`.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding an ephemeral port");
        let addr = listener.local_addr().expect("listener address");
        let (store, spans) = watch::channel(Vec::new());
        let (metric_store, points) = watch::channel(Vec::new());
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector { store }))
            .add_service(MetricsServiceServer::new(MetricCollector { store: metric_store }))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stop.await;
            });
        tokio::spawn(async move {
            if let Err(error) = server.await {
                eprintln!("testkit: the OTLP receiver stopped: {error}");
            }
        });
        Self { addr, spans, points, shutdown: Some(shutdown) }
    }

    /// The URL to give an OTLP/gRPC exporter, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.borrow().clone()
    }

    /// Waits until `predicate` holds for the spans received so far and returns them. It is
    /// checked now and again after every export, so there is no polling interval.
    ///
    /// # Panics
    ///
    /// When `timeout` passes first, with the spans that did arrive in the message.
    pub async fn wait_for(&self, mut predicate: impl FnMut(&[Span]) -> bool, timeout: Duration) -> Vec<Span> {
        let mut spans = self.spans.clone();
        match tokio::time::timeout(timeout, spans.wait_for(|spans| predicate(spans))).await {
            Ok(Ok(spans)) => spans.clone(),
            // The sender lives in the server task, which only ends when `self` is dropped.
            Ok(Err(_)) => panic!("the OTLP receiver stopped while waiting for spans"),
            Err(_) => panic!("spans did not arrive within {timeout:?}; received: {:#?}", self.spans()),
        }
    }
}

impl Receiver {
    /// Every metric data point received so far, in arrival order (a cumulative metric sends
    /// its points again at every export: the latest come last).
    pub fn data_points(&self) -> Vec<DataPoint> {
        self.points.borrow().clone()
    }

    /// Waits until `predicate` holds for the data points received so far and returns them,
    /// checked again after every export like [`wait_for`](Self::wait_for).
    ///
    /// # Panics
    ///
    /// When `timeout` passes first, with the names of the metrics that did arrive.
    pub async fn wait_for_metrics(
        &self,
        mut predicate: impl FnMut(&[DataPoint]) -> bool,
        timeout: Duration,
    ) -> Vec<DataPoint> {
        let mut points = self.points.clone();
        match tokio::time::timeout(timeout, points.wait_for(|points| predicate(points))).await {
            Ok(Ok(points)) => points.clone(),
            Ok(Err(_)) => panic!("the OTLP receiver stopped while waiting for metrics"),
            Err(_) => panic!("metrics did not arrive within {timeout:?}; received: {:#?}", self.data_points()),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The `TraceService` implementation: flattens each export into the shared store.
struct Collector {
    store: watch::Sender<Vec<Span>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let received = flatten(request.into_inner());
        // `send_modify` wakes every `wait_for`, even when the batch was empty.
        self.store.send_modify(|spans| spans.extend(received));
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// The `MetricsService` implementation: flattens each export into data points.
struct MetricCollector {
    store: watch::Sender<Vec<DataPoint>>,
}

#[tonic::async_trait]
impl MetricsService for MetricCollector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let received = flatten_metrics(request.into_inner());
        self.store.send_modify(|points| points.extend(received));
        Ok(Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

fn flatten_metrics(request: ExportMetricsServiceRequest) -> Vec<DataPoint> {
    let number = |value: Option<number_data_point::Value>| match value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => 0.0,
    };
    let mut out = Vec::new();
    for resource_metrics in request.resource_metrics {
        let service_name = resource_metrics
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map(|kv| value_string(kv.value.as_ref()))
            .unwrap_or_default();
        for metric in resource_metrics.scope_metrics.into_iter().flat_map(|scope| scope.metrics) {
            let point = |kind, attributes: &[KeyValue], value, count| DataPoint {
                service_name: service_name.clone(),
                name: metric.name.clone(),
                unit: metric.unit.clone(),
                kind,
                attributes: self::attributes(attributes),
                value,
                count,
            };
            match &metric.data {
                Some(Data::Gauge(gauge)) => out.extend(
                    gauge.data_points.iter().map(|p| point(MetricKind::Gauge, &p.attributes, number(p.value), None)),
                ),
                Some(Data::Sum(sum)) => out.extend(
                    sum.data_points.iter().map(|p| point(MetricKind::Sum, &p.attributes, number(p.value), None)),
                ),
                Some(Data::Histogram(histogram)) => out.extend(
                    histogram
                        .data_points
                        .iter()
                        .map(|p| point(MetricKind::Histogram, &p.attributes, p.sum.unwrap_or_default(), Some(p.count))),
                ),
                Some(_) | None => out.push(point(MetricKind::Other, &[], 0.0, None)),
            }
        }
    }
    out
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let service_name = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map(|kv| value_string(kv.value.as_ref()))
            .unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
            let kind = span.kind();
            let status = span.status.as_ref().map_or(StatusCode::Unset, |s| s.code());
            out.push(Span {
                service_name: service_name.clone(),
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                // OTLP sends an empty id for a root span.
                parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
                name: span.name,
                kind,
                attributes: attributes(&span.attributes),
                status,
                links: span
                    .links
                    .iter()
                    .map(|link| Link { trace_id: hex(&link.trace_id), span_id: hex(&link.span_id) })
                    .collect(),
            });
        }
    }
    out
}

fn attributes(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes.iter().map(|kv| (kv.key.clone(), value_string(kv.value.as_ref()))).collect()
}

fn value_string(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(bytes)) => hex(bytes),
        Some(Value::ArrayValue(array)) => {
            let items: Vec<_> = array.values.iter().map(|v| value_string(Some(v))).collect();
            format!("[{}]", items.join(", "))
        }
        Some(Value::KvlistValue(list)) => {
            let items: Vec<_> =
                list.values.iter().map(|kv| format!("{}={}", kv.key, value_string(kv.value.as_ref()))).collect();
            format!("{{{}}}", items.join(", "))
        }
        // Only profiles use string-table references; traces never send them.
        Some(Value::StringValueStrindex(index)) => format!("#{index}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        common::v1::ArrayValue,
        resource::v1::Resource,
        trace::v1::{ResourceSpans, ScopeSpans, Span as ProtoSpan},
    };

    use super::*;

    fn attribute(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
    }

    #[test]
    fn a_metrics_export_is_flattened_into_one_point_per_data_point() {
        use opentelemetry_proto::tonic::metrics::v1::{
            Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
        };
        let code = |c: i64| attribute("rpc.grpc.status_code", Value::IntValue(c));
        let histogram = Metric {
            name: "rpc.server.duration".into(),
            unit: "ms".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![
                    HistogramDataPoint { attributes: vec![code(0)], count: 3, sum: Some(7.5), ..Default::default() },
                    HistogramDataPoint { attributes: vec![code(3)], count: 1, sum: Some(1.0), ..Default::default() },
                ],
                ..Default::default()
            })),
            ..Default::default()
        };
        let gauge = Metric {
            name: "db.client.connection.max".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    value: Some(number_data_point::Value::AsInt(10)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![attribute("service.name", Value::StringValue("minhu-x".into()))],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics { metrics: vec![histogram, gauge], ..Default::default() }],
                ..Default::default()
            }],
        };

        let points = flatten_metrics(request);
        assert_eq!(points.len(), 3);
        assert_eq!((points[0].kind, points[0].count, points[0].value), (MetricKind::Histogram, Some(3), 7.5));
        assert_eq!(points[0].attribute("rpc.grpc.status_code"), Some("0"));
        assert_eq!(points[1].attribute("rpc.grpc.status_code"), Some("3"));
        assert_eq!((points[2].kind, points[2].value, points[2].count), (MetricKind::Gauge, 10.0, None));
        assert!(points.iter().all(|p| p.service_name == "minhu-x"));
    }

    #[test]
    fn an_export_is_flattened_into_hex_ids_and_string_attributes() {
        let numbers = vec![AnyValue { value: Some(Value::IntValue(1)) }, AnyValue { value: Some(Value::IntValue(2)) }];
        let span = ProtoSpan {
            trace_id: vec![0x4b; 16],
            span_id: vec![0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
            name: "work".into(),
            kind: SpanKind::Server as i32,
            attributes: vec![
                attribute("rpc.system", Value::StringValue("grpc".into())),
                attribute("busy", Value::BoolValue(true)),
                attribute("ids", Value::ArrayValue(ArrayValue { values: numbers })),
            ],
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![attribute("service.name", Value::StringValue("minhu-x".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
                ..Default::default()
            }],
        };

        let [span] = flatten(request).try_into().expect("one span");
        assert_eq!(span.service_name, "minhu-x");
        assert_eq!(span.trace_id, "4b".repeat(16));
        assert_eq!(span.span_id, "00f067aa0ba902b7");
        assert_eq!(span.parent_span_id, None, "an empty parent id is a root span");
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.attribute("rpc.system"), Some("grpc"));
        assert_eq!(span.attribute("busy"), Some("true"));
        assert_eq!(span.attribute("ids"), Some("[1, 2]"));
    }
}
