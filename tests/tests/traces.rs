//! One request is one trace across services: a portal's client span, dispatch's server span
//! for CreateCase, dispatch's client span for the ResolveLocation it makes on the way and
//! the roster's server span for it, all exported over OTLP to one collector, with the RPC
//! metrics beside them. Background work is a trace of its own linked to the request that
//! caused it: a deadline firing (and its escalation) to the StartCall that scheduled it,
//! appraisal's consumption of the feed to the request that produced the events.
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
use minhu_testkit::otlp::{DataPoint, MetricKind, Receiver, Span, SpanKind};
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

/// Telemetry exporting to `receiver`, installed before anything else installs a subscriber
/// (testkit does when TEST_LOG is set). Logs stay quiet unless asked for; export has its
/// own filter. Each test of this binary runs in its own process (nextest), so each installs
/// its own.
fn telemetry(receiver: &Receiver) -> minhu_telemetry::Telemetry {
    let logs = std::env::var("TEST_LOG").ok().filter(|level| !level.is_empty()).unwrap_or_else(|| "warn".into());
    minhu_telemetry::init(&TelemetryConfig {
        service_name: "minhu-e2e".into(),
        log_format: LogFormat::Pretty,
        default_filter: logs,
        trace_filter: "info".into(),
        otlp_endpoint: Some(receiver.endpoint()),
        metrics_interval: None,
    })
    .expect("installing telemetry")
}

/// Reporter data used by the tests; it must appear in no span and no metric.
const REPORTER_NAME: &str = "张三";
const REPORTER_PHONE: &str = "13812341234";

fn no_reporter_data(spans: &[Span], points: &[DataPoint]) {
    let leaks = |v: &String| v.contains(REPORTER_NAME) || v.contains(REPORTER_PHONE);
    for span in spans {
        assert!(!span.attributes.values().any(leaks), "reporter data in span {}: {:?}", span.name, span.attributes);
        assert!(!leaks(&span.name), "reporter data in a span name: {}", span.name);
    }
    for point in points {
        assert!(
            !point.attributes.values().any(leaks),
            "reporter data in metric {}: {:?}",
            point.name,
            point.attributes
        );
    }
}

fn intake_request() -> pb::CreateCaseRequest {
    pb::CreateCaseRequest {
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
            reporter: Some(pb::Reporter {
                name: REPORTER_NAME.into(),
                phone: REPORTER_PHONE.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

// Multi-threaded: flushing blocks this thread while the exporter's channel, built on the
// runtime, sends the batch from a worker.
#[tokio::test(flavor = "multi_thread")]
async fn an_intake_is_one_trace_from_the_portal_through_dispatch_to_the_roster() {
    let receiver = Receiver::start().await;
    let telemetry = telemetry(&receiver);

    let suite = Suite::start().await;
    let intake = intake_request();
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
    // Client and server spans of one call share its name; the kind tells them apart.
    let in_trace = |name: &str, kind: SpanKind| {
        let found: Vec<_> = trace.values().filter(|s| s.name == name && s.kind == kind).collect();
        assert_eq!(found.len(), 1, "one {name} {kind:?} span in the client's trace; all spans: {spans:#?}");
        *found[0]
    };

    let create_case = in_trace(CREATE_CASE, SpanKind::Server);
    assert_eq!(create_case.kind, SpanKind::Server);
    assert_eq!(create_case.parent_span_id.as_ref(), Some(&client.span_id), "CreateCase continues the client span");
    assert_eq!(create_case.attribute("rpc.service"), Some("minhu.dispatch.v1.DispatchService"));
    assert_eq!(create_case.attribute("rpc.method"), Some("CreateCase"));
    assert_eq!(create_case.attribute("rpc.grpc.status_code"), Some("0"));
    let dispatcher = minhu_testkit::tokens::street_dispatcher(minhu_e2e::STREET);
    assert_eq!(create_case.attribute("enduser.id"), Some(dispatcher.subject.as_str()));
    assert_eq!(create_case.attribute("minhu.org.kind"), Some("street"));
    assert_eq!(create_case.attribute("minhu.org.id"), Some(minhu_e2e::STREET));

    // Dispatch's outgoing call is a client span by the same conventions, and the roster's
    // server span is its direct child: the context sent was the client span's own.
    let call = in_trace(RESOLVE_LOCATION, SpanKind::Client);
    assert_eq!(call.attribute("rpc.system"), Some("grpc"));
    assert_eq!(call.attribute("rpc.service"), Some("minhu.roster.v1.RosterService"));
    assert_eq!(call.attribute("rpc.method"), Some("ResolveLocation"));
    assert_eq!(call.attribute("rpc.grpc.status_code"), Some("0"));
    let resolve = in_trace(RESOLVE_LOCATION, SpanKind::Server);
    assert_eq!(resolve.parent_span_id.as_ref(), Some(&call.span_id), "the roster's span is the client span's child");
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

    // The RPC metrics, labelled by the conventions' attributes: the portal's CreateCase and
    // dispatch's ResolveLocation each counted once, with their duration, status OK.
    let points = receiver
        .wait_for_metrics(
            |points| {
                points
                    .iter()
                    .any(|p| p.name == "rpc.server.duration" && p.attribute("rpc.method") == Some("CreateCase"))
            },
            Duration::from_secs(10),
        )
        .await;
    for (service, method) in
        [("minhu.dispatch.v1.DispatchService", "CreateCase"), ("minhu.roster.v1.RosterService", "ResolveLocation")]
    {
        let of = |name: &str| {
            points
                .iter()
                .rfind(|p| {
                    p.name == name
                        && p.attribute("rpc.service") == Some(service)
                        && p.attribute("rpc.method") == Some(method)
                })
                .unwrap_or_else(|| panic!("{name} for {service}/{method}: {points:#?}"))
        };
        let duration = of("rpc.server.duration");
        assert_eq!(duration.kind, MetricKind::Histogram);
        assert_eq!(duration.unit, "ms");
        assert_eq!(duration.attribute("rpc.system"), Some("grpc"));
        assert_eq!(duration.attribute("rpc.grpc.status_code"), Some("0"));
        assert_eq!(duration.count, Some(1), "{method} called once");
        assert!(duration.value > 0.0, "{method} took some time");
        let requests = of("minhu.rpc.server.requests");
        assert_eq!((requests.kind, requests.value), (MetricKind::Sum, 1.0));
    }
    // Nobody failed: no error counted for CreateCase.
    assert!(
        !points.iter().any(|p| p.name == "minhu.rpc.server.errors" && p.attribute("rpc.method") == Some("CreateCase"))
    );
    // The reporter's personal data stays out of every span and every metric.
    no_reporter_data(&spans, &points);

    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.expect("shutting telemetry down");
}

/// 09:00 on a working day, the time the deadline test starts at.
fn morning() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone as _;
    chrono::Utc.with_ymd_and_hms(2026, 3, 10, 1, 0, 0).single().expect("a time")
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

/// Takes in the portal's case and calls out 城管 for it, the StartCall inside a client span
/// `portal.start_call`; returns the case id and the call.
async fn call_out(suite: &Suite, now: chrono::DateTime<chrono::Utc>) -> (String, pb::Call) {
    let mut street = suite.street();
    let case = street.create_case(intake_request()).await.expect("intake").into_inner();
    street
        .triage_case(pb::TriageCaseRequest {
            case_id: case.id.clone(),
            decision: pb::TriageDecision::StartCall as i32,
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        })
        .await
        .expect("triage");
    let call = pb::Call {
        department_id: "chengguan".into(),
        matters: "水泵房违规占用的处置".into(),
        expected_goal: "恢复水泵房原用途".into(),
        staff_requirement: Some(pb::StaffRequirement {
            count: 1,
            qualification: common::Qualification::LawEnforcementCertificate as i32,
            note: String::new(),
        }),
        report_time: ts(now + chrono::TimeDelta::hours(6)),
        report_place: case.place.clone(),
        ..Default::default()
    };
    let mut calls = street
        .start_call(pb::StartCallRequest {
            case_id: case.id.clone(),
            calls: vec![call],
            request_id: uuid::Uuid::new_v4().to_string(),
        })
        .instrument(tracing::info_span!("portal.start_call", otel.kind = "client"))
        .await
        .expect("starting the call")
        .into_inner()
        .calls;
    (case.id, calls.remove(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_firing_is_its_own_trace_linked_to_the_request_that_scheduled_it() {
    let receiver = Receiver::start().await;
    let telemetry = telemetry(&receiver);
    let t0 = morning();
    let clock = minhu_e2e::ManualClock::new(t0);
    let suite = Suite::builder().clock(clock.clone()).consume(false).start().await;

    // StartCall schedules the call's sign deadline (and its check-in window).
    let (case_id, call) = call_out(&suite, t0).await;
    let sign_deadline = call.sign_deadline.as_ref().expect("a sign deadline");
    let due = chrono::DateTime::from_timestamp(sign_deadline.seconds, sign_deadline.nanos as u32).expect("a time");
    // Nobody signs; a minute after the deadline the engine fires it.
    clock.set(due + chrono::TimeDelta::minutes(1));
    assert_eq!(suite.fire_deadlines().await, 1, "the sign deadline fired");
    // The rebuild counts the backlog: the check-in window still pending, nothing overdue.
    suite.deadline_engine().reconcile().await.expect("rebuilding the index");

    suite.stop().await;
    tokio::task::block_in_place(|| telemetry.flush()).expect("flushing");
    let spans = receiver
        .wait_for(
            |spans| {
                ["portal.start_call", "deadline.fire", "dispatch.escalate"].iter().all(|n| named(spans, n).is_some())
            },
            Duration::from_secs(10),
        )
        .await;
    let start_call = named(&spans, "portal.start_call").unwrap();
    let fires: Vec<_> = spans.iter().filter(|s| s.name == "deadline.fire").collect();
    assert_eq!(fires.len(), 1, "one firing: {fires:#?}");
    let fire = fires[0];
    assert_eq!(fire.attribute("minhu.deadline.kind"), Some("dispatch.sign"));
    assert_eq!(fire.attribute("minhu.deadline.subject"), Some(call.id.as_str()));
    assert_eq!(fire.attribute("minhu.deadline.outcome"), Some("fired"));
    let lateness: f64 = fire.attribute("minhu.deadline.lateness_s").expect("lateness").parse().expect("a number");
    assert!((59.0..=60.0).contains(&lateness), "fired a minute late: {lateness}");
    // A trace of its own, linked (not parented) to the request that scheduled it.
    assert!(fire.parent_span_id.is_none(), "the firing is a root span");
    assert_ne!(fire.trace_id, start_call.trace_id, "the firing is a new trace");
    let scheduled_by = spans
        .iter()
        .find(|s| s.trace_id == start_call.trace_id && s.name == "minhu.dispatch.v1.DispatchService/StartCall")
        .expect("dispatch's StartCall span");
    assert_eq!(
        fire.links.iter().map(|l| (l.trace_id.as_str(), l.span_id.as_str())).collect::<Vec<_>>(),
        [(scheduled_by.trace_id.as_str(), scheduled_by.span_id.as_str())],
        "linked to the StartCall that scheduled it"
    );
    // The escalation it caused, inside the firing, with ids only.
    let escalate = named(&spans, "dispatch.escalate").unwrap();
    assert_eq!(escalate.parent_span_id.as_ref(), Some(&fire.span_id));
    assert_eq!(escalate.attribute("minhu.escalation.kind"), Some("sign_overdue"));
    assert_eq!(escalate.attribute("minhu.call.id"), Some(call.id.as_str()));
    assert_eq!(escalate.attribute("minhu.case.id"), Some(case_id.as_str()));
    assert_eq!(escalate.attribute("minhu.escalation.recorded"), Some("true"));

    // Deadline metrics: the lateness histogram and the fired counter by kind, the backlog by
    // kind and state.
    let points = receiver
        .wait_for_metrics(|points| points.iter().any(|p| p.name == "minhu.deadline.backlog"), Duration::from_secs(10))
        .await;
    let latest = |name: &str, kind: &str, state: Option<&str>| {
        points
            .iter()
            .rfind(|p| {
                p.name == name
                    && p.attribute("minhu.deadline.kind") == Some(kind)
                    && p.attribute("minhu.deadline.state") == state
            })
            .unwrap_or_else(|| panic!("{name} for {kind} {state:?}: {points:#?}"))
    };
    let late = latest("minhu.deadline.lateness", "dispatch.sign", None);
    assert_eq!((late.kind, late.unit.as_str(), late.count), (MetricKind::Histogram, "s", Some(1)));
    assert!((59.0..=60.0).contains(&late.value), "a minute late: {}", late.value);
    assert_eq!(latest("minhu.deadline.fired", "dispatch.sign", None).value, 1.0);
    assert_eq!(latest("minhu.deadline.backlog", "dispatch.check_in", Some("pending")).value, 1.0);
    assert_eq!(latest("minhu.deadline.backlog", "dispatch.check_in", Some("overdue")).value, 0.0);
    assert_eq!(latest("minhu.deadline.backlog", "dispatch.sign", Some("pending")).value, 0.0);
    assert!(!points.iter().any(|p| p.name == "minhu.deadline.failed"), "no attempt failed");
    no_reporter_data(&spans, &points);

    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.expect("shutting telemetry down");
}

#[tokio::test(flavor = "multi_thread")]
async fn appraisal_consumes_the_feed_in_spans_linked_to_the_producing_request() {
    let receiver = Receiver::start().await;
    let telemetry = telemetry(&receiver);
    let suite = Suite::start().await;

    let case = suite
        .street()
        .create_case(intake_request())
        .instrument(tracing::info_span!("portal.intake", otel.kind = "client"))
        .await
        .expect("intake")
        .into_inner();
    let intake = spans_until(&receiver, &telemetry, |spans| named(spans, CLIENT_SPAN).is_some()).await;
    let client = named(&intake, CLIENT_SPAN).unwrap().clone();
    // Appraisal consumes the CASE_CREATED event in the background; its batch span arrives
    // once it has.
    let spans = spans_until(&receiver, &telemetry, |spans| {
        spans.iter().any(|s| s.name == "feed.consume" && s.links.iter().any(|l| l.trace_id == client.trace_id))
    })
    .await;
    let consume = spans
        .iter()
        .find(|s| s.name == "feed.consume" && s.links.iter().any(|l| l.trace_id == client.trace_id))
        .unwrap();
    assert_eq!(consume.kind, SpanKind::Consumer);
    assert!(consume.parent_span_id.is_none(), "consumption is a trace of its own");
    assert_ne!(consume.trace_id, client.trace_id);
    // The link names dispatch's CreateCase span, the request that produced the event.
    let create_case = spans
        .iter()
        .find(|s| s.trace_id == client.trace_id && s.name == CREATE_CASE && s.kind == SpanKind::Server)
        .expect("dispatch's CreateCase span");
    assert!(consume.links.iter().any(|l| l.span_id == create_case.span_id), "{:?}", consume.links);
    assert_eq!(consume.attribute("minhu.feed.consumer"), Some("appraisal"));
    let first: i64 = consume.attribute("minhu.feed.first_sequence").unwrap().parse().unwrap();
    let last: i64 = consume.attribute("minhu.feed.last_sequence").unwrap().parse().unwrap();
    let size: i64 = consume.attribute("minhu.feed.batch_size").unwrap().parse().unwrap();
    assert_eq!(size, last - first + 1, "a batch is consecutive events");
    assert!(consume.attribute("minhu.feed.lag").is_some());
    let event = minhu_dispatch::store::journal::events_after(
        &mut *suite.dispatch_pool().acquire().await.expect("a connection"),
        0,
        Some(case.id.parse().expect("a uuid")),
        1,
    )
    .await
    .expect("the case's first event");
    assert!((first..=last).contains(&event[0].sequence), "the batch holds CASE_CREATED");
    // Dispatch serves the producing request's traceparent on the feed, and nothing more.
    assert_eq!(event[0].trace_parent.as_deref().map(|tp| tp.split('-').nth(1)), Some(Some(client.trace_id.as_str())));

    suite.stop().await;
    tokio::task::block_in_place(|| telemetry.flush()).expect("flushing");
    no_reporter_data(&receiver.spans(), &receiver.data_points());
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.expect("shutting telemetry down");
}

/// Flushes every 100 ms until the spans received satisfy `done` (at most 20 s).
async fn spans_until(
    receiver: &Receiver,
    telemetry: &minhu_telemetry::Telemetry,
    mut done: impl FnMut(&[Span]) -> bool,
) -> Vec<Span> {
    for _ in 0..200 {
        tokio::task::block_in_place(|| telemetry.flush()).expect("flushing");
        let spans = receiver.spans();
        if done(&spans) {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the spans waited for did not arrive; received: {:#?}", receiver.spans());
}
