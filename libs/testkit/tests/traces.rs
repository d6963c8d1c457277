//! One request is one trace: a client span, the W3C context in gRPC metadata, the server's
//! span continuing it, both exported over OTLP to a collector.
//!
//! Its own binary because it installs the process-wide subscriber and tracer provider.

use std::time::Duration;

use minhu_grpc::{AuthConfig, ServerConfig, auth::BearerToken};
use minhu_telemetry::{LogFormat, TelemetryConfig};
use minhu_testkit::{
    TestDatabase, TestServer,
    echo::{
        self,
        pb::{EchoRequest, echo_service_client::EchoServiceClient},
    },
    otlp::{Receiver, Span, SpanKind},
    tokens,
};
use tracing::Instrument as _;

const CLIENT_SPAN: &str = "portal.call";
const SERVER_SPAN: &str = "minhu.testkit.v1.EchoService/Echo";

fn named<'a>(spans: &'a [Span], name: &str) -> Option<&'a Span> {
    spans.iter().find(|span| span.name == name)
}

// Multi-threaded: flushing blocks this thread while the exporter's channel, built on the
// runtime, sends the batch from a worker.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_is_one_trace_from_the_client_span_through_the_server_span_to_the_collector() {
    let receiver = Receiver::start().await;
    // Before anything else installs a subscriber (testkit does when TEST_LOG is set). Logs
    // stay quiet unless asked for; export has its own filter.
    let base = std::env::var("TEST_LOG").ok().filter(|level| !level.is_empty()).unwrap_or_else(|| "warn".into());
    let telemetry = minhu_telemetry::init(&TelemetryConfig {
        service_name: "minhu-test".into(),
        log_format: LogFormat::Pretty,
        default_filter: base,
        trace_filter: "info".into(),
        otlp_endpoint: Some(receiver.endpoint()),
        metrics_interval: None,
    })
    .expect("installing telemetry");

    let db = TestDatabase::create("traces").await;
    let server = echo::build(&db.config(), &AuthConfig::dev(), ServerConfig::default()).await.expect("building echo");
    let server = TestServer::start(server).await;
    let token = tokens::token(&tokens::street_dispatcher("zhongnanlu"));
    let mut client = EchoServiceClient::with_interceptor(server.channel().await, BearerToken::new(&token));

    let request = EchoRequest { street_id: "zhongnanlu".into(), message: "泵房".into(), ..Default::default() };
    let reply = client.echo(request).instrument(tracing::info_span!("portal.call")).await.expect("echo");
    assert_eq!(reply.get_ref().message, "泵房");

    // The server span ends when its response body is dropped, which may be just after the
    // client has its reply: stopping the server waits for that, then the flush exports it.
    drop(client);
    tokio::time::timeout(Duration::from_secs(15), server.stop()).await.expect("drained in time").expect("serving");
    tokio::task::block_in_place(|| telemetry.flush()).expect("flushing spans");

    let spans = receiver
        .wait_for(
            |spans| named(spans, CLIENT_SPAN).is_some() && named(spans, SERVER_SPAN).is_some(),
            Duration::from_secs(10),
        )
        .await;
    let client = named(&spans, CLIENT_SPAN).unwrap();
    let server = named(&spans, SERVER_SPAN).unwrap();

    assert_eq!(client.service_name, "minhu-test");
    assert_eq!(server.service_name, "minhu-test");
    assert_eq!(server.trace_id, client.trace_id, "one trace across the gRPC boundary: {spans:#?}");
    assert_eq!(server.parent_span_id.as_ref(), Some(&client.span_id), "the server span is the client span's child");
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.attribute("rpc.system"), Some("grpc"));
    assert_eq!(server.attribute("rpc.service"), Some("minhu.testkit.v1.EchoService"));
    assert_eq!(server.attribute("rpc.method"), Some("Echo"));

    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.expect("shutting telemetry down");
}
