//! One request is one trace across services: a portal's client span, dispatch's server span
//! for CreateCase, and the roster's server span for the ResolveLocation dispatch makes on
//! the way, all exported over OTLP to one collector.
//!
//! Its own binary because it installs the process-wide subscriber and tracer provider.
//!
//! Both services run in this one process, under the one global tracer provider, so every
//! span carries the same `service.name`; which service a span belongs to is told by its
//! name instead: `minhu.dispatch.v1.DispatchService/CreateCase` is dispatch's server span,
//! `minhu.roster.v1.RosterService/ResolveLocation` the roster's.

use std::{collections::HashMap, time::Duration};

use minhu_e2e::Suite;
use minhu_proto::{common::v1 as common, dispatch::v1 as pb};
use minhu_telemetry::{LogFormat, TelemetryConfig};
use minhu_testkit::otlp::{Receiver, Span, SpanKind};
use tracing::Instrument as _;

const CLIENT_SPAN: &str = "portal.intake";
const CREATE_CASE: &str = "minhu.dispatch.v1.DispatchService/CreateCase";
const RESOLVE_LOCATION: &str = "minhu.roster.v1.RosterService/ResolveLocation";

fn named<'a>(spans: &'a [Span], name: &str) -> Option<&'a Span> {
    spans.iter().find(|span| span.name == name)
}

/// The names from `span` up through its ancestors in `trace`, until a root or a parent that
/// is not in the trace.
fn ancestry<'a>(span: &'a Span, trace: &HashMap<&str, &'a Span>) -> Vec<&'a Span> {
    let mut chain = vec![span];
    let mut at = span;
    while let Some(parent) = at.parent_span_id.as_deref().and_then(|id| trace.get(id)) {
        assert!(chain.len() <= trace.len(), "the parent ids of the trace form a cycle");
        chain.push(parent);
        at = parent;
    }
    chain
}

// Multi-threaded: flushing blocks this thread while the exporter's channel, built on the
// runtime, sends the batch from a worker.
#[tokio::test(flavor = "multi_thread")]
async fn an_intake_is_one_trace_from_the_portal_through_dispatch_to_the_roster() {
    let receiver = Receiver::start().await;
    // Before anything else installs a subscriber (testkit does when TEST_LOG is set). Logs
    // stay quiet unless asked for; export has its own filter.
    let logs = std::env::var("TEST_LOG").ok().filter(|level| !level.is_empty()).unwrap_or_else(|| "warn".into());
    let telemetry = minhu_telemetry::init(&TelemetryConfig {
        service_name: "minhu-e2e".into(),
        log_format: LogFormat::Pretty,
        default_filter: logs,
        trace_filter: "info".into(),
        otlp_endpoint: Some(receiver.endpoint()),
        metrics_interval: None,
    })
    .expect("installing telemetry");

    let suite = Suite::start().await;
    let intake = pb::CreateCaseRequest {
        case: Some(pb::Case {
            channel: pb::Channel::Portal as i32,
            category: "城市管理/违法建设".into(),
            title: "海运社区水泵房被违规占用".into(),
            description: "水泵房被改成商铺".into(),
            // No street given: dispatch resolves the place through the roster.
            place: Some(pb::Place {
                address: "中南路街海运宿舍3栋水泵房".into(),
                location: Some(common::GeoPoint { latitude: 30.5335, longitude: 114.3358 }),
            }),
            reporter: Some(pb::Reporter { name: "张三".into(), phone: "13812341234".into(), ..Default::default() }),
            ..Default::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let case = suite
        .street()
        .create_case(intake)
        .instrument(tracing::info_span!("portal.intake", otel.kind = "client"))
        .await
        .expect("intake")
        .into_inner();
    assert_eq!(case.street_id, minhu_e2e::STREET, "the roster placed the case");

    // Server spans end when their response bodies are dropped, which may be just after the
    // client has its reply: the drain waits for that, then the flush exports them.
    suite.stop().await;
    tokio::task::block_in_place(|| telemetry.flush()).expect("flushing spans");

    let spans = receiver
        .wait_for(
            |spans| [CLIENT_SPAN, CREATE_CASE, RESOLVE_LOCATION].iter().all(|name| named(spans, name).is_some()),
            Duration::from_secs(10),
        )
        .await;
    let client = named(&spans, CLIENT_SPAN).unwrap();
    let trace: HashMap<&str, &Span> =
        spans.iter().filter(|s| s.trace_id == client.trace_id).map(|s| (s.span_id.as_str(), s)).collect();
    let in_trace = |name: &str| {
        let found: Vec<_> = trace.values().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "one {name} span in the client's trace; all spans: {spans:#?}");
        *found[0]
    };

    let create_case = in_trace(CREATE_CASE);
    assert_eq!(create_case.kind, SpanKind::Server);
    assert_eq!(create_case.parent_span_id.as_ref(), Some(&client.span_id), "CreateCase continues the client span");
    assert_eq!(create_case.attribute("rpc.service"), Some("minhu.dispatch.v1.DispatchService"));
    assert_eq!(create_case.attribute("rpc.method"), Some("CreateCase"));
    assert_eq!(create_case.attribute("rpc.grpc.status_code"), Some("0"));
    let dispatcher = minhu_testkit::tokens::street_dispatcher(minhu_e2e::STREET);
    assert_eq!(create_case.attribute("enduser.id"), Some(dispatcher.subject.as_str()));
    assert_eq!(create_case.attribute("minhu.org.kind"), Some("street"));
    assert_eq!(create_case.attribute("minhu.org.id"), Some(minhu_e2e::STREET));
    // The reporter's personal data stays out of every span.
    assert!(spans.iter().all(|s| !s.attributes.values().any(|v| v.contains("张三") || v.contains("13812341234"))));

    // The roster's span may hang off a client span for the outgoing call or off a handler
    // span inside dispatch; either way its ancestry leads back to dispatch's CreateCase.
    let resolve = in_trace(RESOLVE_LOCATION);
    assert_eq!(resolve.kind, SpanKind::Server);
    assert_eq!(resolve.attribute("rpc.service"), Some("minhu.roster.v1.RosterService"));
    assert_eq!(resolve.attribute("rpc.grpc.status_code"), Some("0"));
    // Dispatch calls the roster as itself, not as the street's dispatcher.
    assert_eq!(resolve.attribute("minhu.org.kind"), Some("service"));
    let chain = ancestry(resolve, &trace);
    let names: Vec<_> = chain.iter().map(|s| s.name.as_str()).collect();
    println!("ResolveLocation's ancestry: {names:?}");
    assert!(
        chain.iter().any(|s| s.span_id == create_case.span_id),
        "ResolveLocation's ancestry reaches CreateCase's server span: {names:?}"
    );
    assert_eq!(chain.last().map(|s| s.span_id.as_str()), Some(client.span_id.as_str()), "and ends at the client");
    assert!(client.parent_span_id.is_none(), "the client span is the trace's root");
    // One process, one tracer provider: the same service.name on every span (see the top).
    assert!(chain.iter().all(|s| s.service_name == "minhu-e2e"), "{chain:#?}");

    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.expect("shutting telemetry down");
}
