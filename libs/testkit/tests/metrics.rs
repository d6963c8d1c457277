//! The RPC metrics and the pool's saturation reach the collector over OTLP: after a few
//! calls, `rpc.server.duration` and the request and error counters carry the method and
//! status code of each (a method nobody serves as `_OTHER`), and the pool reports its size.
//!
//! Its own binary because it installs the process-wide meter provider.

use std::time::Duration;

use minhu_grpc::{AuthConfig, ServerConfig, auth::BearerToken};
use minhu_telemetry::{LogFormat, TelemetryConfig};
use minhu_testkit::{
    TestDatabase, TestServer,
    echo::{
        self,
        pb::{EchoRequest, echo_service_client::EchoServiceClient},
    },
    otlp::{DataPoint, MetricKind, Receiver},
    tokens,
};

/// The latest point of metric `name` whose attributes include all of `with`.
fn latest<'a>(points: &'a [DataPoint], name: &str, with: &[(&str, &str)]) -> Option<&'a DataPoint> {
    points.iter().rev().find(|p| p.name == name && with.iter().all(|(k, v)| p.attribute(k) == Some(*v)))
}

const ECHO: [(&str, &str); 3] =
    [("rpc.system", "grpc"), ("rpc.service", "minhu.testkit.v1.EchoService"), ("rpc.method", "Echo")];

fn echo_with(code: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut with = ECHO.to_vec();
    with.push(("rpc.grpc.status_code", code));
    with
}

// Multi-threaded: the periodic reader exports from its own thread over a channel built on
// the runtime.
#[tokio::test(flavor = "multi_thread")]
async fn calls_are_counted_and_timed_by_method_and_status_code_and_the_pool_reports_its_size() {
    let receiver = Receiver::start().await;
    let logs = std::env::var("TEST_LOG").ok().filter(|level| !level.is_empty()).unwrap_or_else(|| "warn".into());
    let telemetry = minhu_telemetry::init(&TelemetryConfig {
        service_name: "minhu-test".into(),
        log_format: LogFormat::Pretty,
        default_filter: logs,
        trace_filter: "off".into(),
        otlp_endpoint: Some(receiver.endpoint()),
        metrics_interval: Some(Duration::from_millis(200)),
    })
    .expect("installing telemetry");

    let db = TestDatabase::create("metrics").await;
    let server = echo::build(&db.config(), &AuthConfig::dev(), ServerConfig::default()).await.expect("building echo");
    let server = TestServer::start(server).await;
    let token = tokens::token(&tokens::street_dispatcher("zhongnanlu"));
    let mut client = EchoServiceClient::with_interceptor(server.channel().await, BearerToken::new(&token));
    for _ in 0..3 {
        let ok = EchoRequest { street_id: "zhongnanlu".into(), message: "泵房".into(), ..Default::default() };
        client.echo(ok).await.expect("echo");
    }
    for _ in 0..2 {
        let blank = EchoRequest { street_id: "zhongnanlu".into(), ..Default::default() };
        assert_eq!(client.echo(blank).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    // A path nobody serves is counted, but not by its name.
    let mut raw = tonic::client::Grpc::new(server.channel().await);
    raw.ready().await.expect("a ready channel");
    let guess = raw
        .unary(
            tonic::Request::new(EchoRequest::default()),
            tonic::codegen::http::uri::PathAndQuery::from_static("/minhu.guess.v1.GuessService/Guess123"),
            tonic_prost::ProstCodec::<EchoRequest, EchoRequest>::default(),
        )
        .await;
    assert_eq!(guess.unwrap_err().code(), tonic::Code::Unimplemented);

    let pool = db.name().to_owned();
    let ok = echo_with("0");
    let invalid = echo_with("3");
    let points = receiver
        .wait_for_metrics(
            |points| {
                latest(points, "rpc.server.duration", &ok).is_some_and(|p| p.count == Some(3))
                    && latest(points, "rpc.server.duration", &invalid).is_some_and(|p| p.count == Some(2))
                    && latest(points, "minhu.rpc.server.errors", &invalid).is_some_and(|p| p.value == 2.0)
                    && latest(points, "minhu.rpc.server.errors", &[("rpc.method", "_OTHER")]).is_some()
                    && latest(points, "db.client.connection.max", &[("db.client.connection.pool.name", &pool)])
                        .is_some()
            },
            Duration::from_secs(15),
        )
        .await;

    let duration = latest(&points, "rpc.server.duration", &ok).unwrap();
    assert_eq!(duration.kind, MetricKind::Histogram);
    assert_eq!(duration.unit, "ms");
    assert_eq!(duration.service_name, "minhu-test");
    assert!(duration.value > 0.0, "three calls took some time: {duration:#?}");
    let requests = latest(&points, "minhu.rpc.server.requests", &ok).expect("the request counter");
    assert_eq!((requests.kind, requests.value), (MetricKind::Sum, 3.0));
    assert_eq!(latest(&points, "minhu.rpc.server.requests", &invalid).map(|p| p.value), Some(2.0));
    assert!(latest(&points, "minhu.rpc.server.errors", &ok).is_none(), "an OK call is no error");
    let other = latest(&points, "minhu.rpc.server.errors", &[("rpc.method", "_OTHER")]).unwrap();
    assert_eq!(other.attribute("rpc.service"), Some("_OTHER"));
    assert_eq!(other.attribute("rpc.grpc.status_code"), Some("12"), "UNIMPLEMENTED");
    assert!(!points.iter().any(|p| p.attribute("rpc.method") == Some("Guess123")), "no series for a guess");

    let max = latest(&points, "db.client.connection.max", &[("db.client.connection.pool.name", &pool)]).unwrap();
    let configured = f64::from(db.config().max_connections);
    assert_eq!((max.kind, max.value), (MetricKind::Gauge, configured), "the pool's configured size");
    let idle = latest(
        &points,
        "db.client.connection.count",
        &[("db.client.connection.pool.name", &pool), ("db.client.connection.state", "idle")],
    )
    .expect("the idle connections");
    assert!(idle.value >= 1.0, "the pool keeps the connection it migrated with: {idle:#?}");

    drop(client);
    tokio::time::timeout(Duration::from_secs(15), server.stop()).await.expect("drained in time").expect("serving");
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.expect("shutting telemetry down");
}
