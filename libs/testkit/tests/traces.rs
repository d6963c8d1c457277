//! One request is one trace: a client span, the W3C context in gRPC metadata, the server's
//! span continuing it, both exported over OTLP to a collector; and the server span carries
//! the OpenTelemetry RPC attributes, its status code and the caller, whatever the outcome.
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
    otlp::{Receiver, Span, SpanKind, StatusCode},
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
    // A short timeout, so a slow echo is the server's own failure (DEADLINE_EXCEEDED).
    let config = ServerConfig { request_timeout: Duration::from_millis(300), ..ServerConfig::default() };
    let server = echo::build(&db.config(), &AuthConfig::dev(), config).await.expect("building echo");
    let server = TestServer::start(server).await;
    let caller = tokens::street_dispatcher("zhongnanlu");
    let token = tokens::token(&caller);
    let mut client = EchoServiceClient::with_interceptor(server.channel().await, BearerToken::new(&token));

    let request = EchoRequest { street_id: "zhongnanlu".into(), message: "泵房".into(), ..Default::default() };
    let reply = client.echo(request).instrument(tracing::info_span!("portal.call")).await.expect("echo");
    assert_eq!(reply.get_ref().message, "泵房");
    // A caller's mistake, and then the server's own failure.
    let blank = EchoRequest { street_id: "zhongnanlu".into(), ..Default::default() };
    let refused = client.echo(blank).await.expect_err("a blank message is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let slow =
        EchoRequest { street_id: "zhongnanlu".into(), message: "慢".into(), delay_ms: 2_000, ..Default::default() };
    let late = client.echo(slow).await.expect_err("the server's timeout is shorter");
    assert_eq!(late.code(), tonic::Code::DeadlineExceeded);

    // The server span ends when its response body is dropped, which may be just after the
    // client has its reply: stopping the server waits for that, then the flush exports it.
    drop(client);
    tokio::time::timeout(Duration::from_secs(15), server.stop()).await.expect("drained in time").expect("serving");
    tokio::task::block_in_place(|| telemetry.flush()).expect("flushing spans");

    let spans = receiver
        .wait_for(
            |spans| {
                named(spans, CLIENT_SPAN).is_some() && spans.iter().filter(|span| span.name == SERVER_SPAN).count() == 3
            },
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

    let with_code = |code: &str| {
        let found: Vec<&Span> = spans
            .iter()
            .filter(|span| span.name == SERVER_SPAN && span.attribute("rpc.grpc.status_code") == Some(code))
            .collect();
        assert_eq!(found.len(), 1, "one Echo span with status code {code}: {spans:#?}");
        found[0]
    };
    let (ok, invalid, late) = (with_code("0"), with_code("3"), with_code("4"));
    assert_eq!(ok.span_id, server.span_id, "the traced call succeeded");
    for span in [ok, invalid, late] {
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.attribute("rpc.system"), Some("grpc"));
        assert_eq!(span.attribute("rpc.service"), Some("minhu.testkit.v1.EchoService"));
        assert_eq!(span.attribute("rpc.method"), Some("Echo"));
        // Who called, from the verified token; nothing of the request's content.
        assert_eq!(span.attribute("enduser.id"), Some(caller.subject.as_str()), "{span:#?}");
        assert_eq!(span.attribute("minhu.org.kind"), Some("street"));
        assert_eq!(span.attribute("minhu.org.id"), Some("zhongnanlu"));
        assert!(!span.attributes.values().any(|v| v.contains("泵房") || v.contains('慢')), "{span:#?}");
    }
    assert_eq!(ok.status, StatusCode::Unset);
    assert_eq!(invalid.status, StatusCode::Unset, "a caller's INVALID_ARGUMENT is not the server's error");
    assert_eq!(late.status, StatusCode::Error, "DEADLINE_EXCEEDED is the server's error");

    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.expect("shutting telemetry down");
}
