//! Live progress (实时进度) for the district and street screens: one case (WatchCase) and
//! every readable case matching a filter (WatchCases).

use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tokio_stream::StreamExt as _;
use tonic::{Code, Streaming};

use crate::helpers::*;

/// The next message of a live stream, failing the test if none comes in time.
async fn next<T>(stream: &mut Streaming<T>) -> T {
    tokio::time::timeout(WAIT, stream.next()).await.expect("no message in time").expect("the stream ended").unwrap()
}

/// Messages until (and including) the first whose event is of `case_id` and `event_type`.
async fn until(
    stream: &mut Streaming<pb::WatchCasesResponse>,
    case_id: &str,
    event_type: pb::EventType,
) -> Vec<pb::WatchCasesResponse> {
    let mut seen = Vec::new();
    loop {
        let message = next(stream).await;
        let event = message.event.as_ref().unwrap();
        let done = event.case_id == case_id && event.event_type == event_type as i32;
        seen.push(message);
        if done {
            return seen;
        }
    }
}

fn summary(messages: &[pb::WatchCasesResponse]) -> Vec<(String, i32)> {
    messages.iter().map(|m| (m.event.as_ref().unwrap().case_id.clone(), m.event.as_ref().unwrap().event_type)).collect()
}

#[tokio::test]
async fn a_case_watcher_sees_each_change_of_its_case_in_order_and_nothing_else() {
    let app = TestApp::spawn().await;
    let watched = app.triaged_case().await;
    let mut other_request = intake(&request_id());
    other_request.case.as_mut().unwrap().category = "房屋安全/危房".into();
    let other = app.street().create_case(other_request).await.unwrap().into_inner();

    let mut stream =
        app.street().watch_case(pb::WatchCaseRequest { case_id: watched.id.clone() }).await.unwrap().into_inner();
    let first = next(&mut stream).await;
    assert!(first.event.is_none(), "the first message is the snapshot");
    assert_eq!(first.case.as_ref().unwrap(), &app.case(&watched.id).await);
    assert!(first.calls.is_empty() && first.tasks.is_empty());

    // Changes to the other case, interleaved, never show.
    let now = app.now();
    app.street()
        .triage_case(pb::TriageCaseRequest {
            case_id: other.id.clone(),
            decision: pb::TriageDecision::StartCall as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    let started = app
        .street()
        .start_call(pb::StartCallRequest {
            case_id: watched.id.clone(),
            calls: vec![call_to("gongan", now), call_to("chengguan", now)],
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    app.sign(&started.calls[0]).await;
    let mut edited = watched.clone();
    edited.title = "水泵房被占（已核实）".into();
    app.street()
        .update_case(pb::UpdateCaseRequest {
            case: Some(edited),
            update_mask: Some(prost_types::FieldMask { paths: vec!["title".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap();

    let mut messages = Vec::new();
    for _ in 0..4 {
        messages.push(next(&mut stream).await);
    }
    let types: Vec<_> = messages.iter().map(|m| m.event.as_ref().unwrap().event_type).collect();
    assert_eq!(
        types,
        [
            pb::EventType::CallStarted as i32,
            pb::EventType::CallStarted as i32,
            pb::EventType::CallSigned as i32,
            pb::EventType::CaseUpdated as i32
        ]
    );
    let sequences: Vec<_> = messages.iter().map(|m| m.event.as_ref().unwrap().sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    assert!(messages.iter().all(|m| m.event.as_ref().unwrap().case_id == watched.id));
    // Each snapshot shows the case at least as far as its event.
    let signed = &messages[2];
    assert_eq!(signed.calls.len(), 2);
    assert!(signed.calls.iter().any(|c| c.state == pb::CallState::Signed as i32));
    let last = messages.last().unwrap();
    assert_eq!(last.case.as_ref().unwrap().title, "水泵房被占（已核实）");
    assert_eq!(last.case.as_ref().unwrap().state, pb::CaseState::Calling as i32);
    assert_eq!(last.case.as_ref().unwrap(), &app.case(&watched.id).await);
}

#[tokio::test]
async fn a_case_watch_is_masked_for_its_caller_and_ends_with_the_case() {
    let app = TestApp::spawn().await;
    let case = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    // Who may not read the case may not watch it.
    for stranger in [app.client(&tokens::street_dispatcher("shuiguohu")), app.department("gongan")] {
        let e = stranger.clone().watch_case(pb::WatchCaseRequest { case_id: case.id.clone() }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    }
    let e = app.street().watch_case(pb::WatchCaseRequest { case_id: "x".into() }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    let district = app.client(&tokens::district_operator());
    let mut stream =
        district.clone().watch_case(pb::WatchCaseRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    let first = next(&mut stream).await;
    assert_eq!(first.case.unwrap().reporter.unwrap().name, "张*");
    app.street()
        .triage_case(pb::TriageCaseRequest {
            case_id: case.id.clone(),
            decision: pb::TriageDecision::Decline as i32,
            reason: "超出街道职权，转区级平台".into(),
            decline_reason: pb::DeclineReason::OutOfJurisdiction as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    let last = next(&mut stream).await;
    assert_eq!(last.event.unwrap().event_type, pb::EventType::CaseTriaged as i32);
    let shown = last.case.unwrap();
    assert_eq!(shown.state, pb::CaseState::Declined as i32);
    assert!(shown.reporter.unwrap().masked);
    // Declined is final: the stream ends.
    let end = tokio::time::timeout(WAIT, stream.next()).await.expect("the stream should end");
    assert!(end.is_none(), "{end:?}");
    // Watching a finished case gives its snapshot and ends.
    let mut stream =
        app.street().watch_case(pb::WatchCaseRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    assert_eq!(next(&mut stream).await.case.unwrap().reporter.unwrap().name, "张三");
    assert!(tokio::time::timeout(WAIT, stream.next()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_department_loses_the_watch_when_its_call_is_withdrawn() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["fangguan", "gongan"]).await;
    let housing = app.department("fangguan");
    let mut stream =
        housing.clone().watch_case(pb::WatchCaseRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    next(&mut stream).await;
    app.sign(&calls[1]).await;
    assert_eq!(next(&mut stream).await.event.unwrap().event_type, pb::EventType::CallSigned as i32);
    app.street()
        .withdraw_call(pb::WithdrawCallRequest {
            call_id: calls[0].id.clone(),
            reason: "派错部门".into(),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let e = tokio::time::timeout(WAIT, stream.next()).await.unwrap().unwrap().unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn case_watchers_see_only_the_cases_they_may_read_that_match_their_filter() {
    let app = TestApp::spawn().await;
    let other_street = app.client(&tokens::street_dispatcher("shuiguohu"));
    let district = app.client(&tokens::district_operator());
    let watch = |client: Client, filter: pb::CaseFilter| async move {
        let mut client = client;
        client.watch_cases(pb::WatchCasesRequest { filter: Some(filter) }).await.unwrap().into_inner()
    };
    let all = pb::CaseFilter::default();
    let mut here = watch(app.street(), all.clone()).await;
    let mut there = watch(other_street.clone(), all.clone()).await;
    let mut everything = watch(district.clone(), all.clone()).await;
    let mut police = watch(app.department("gongan"), all.clone()).await;
    let mut planning = watch(app.department("guihua"), all.clone()).await;
    let mut there_only =
        watch(district.clone(), pb::CaseFilter { street_id: "shuiguohu".into(), ..Default::default() }).await;
    let mut calling =
        watch(district.clone(), pb::CaseFilter { states: vec![pb::CaseState::Calling as i32], ..Default::default() })
            .await;
    let mut to_police =
        watch(district.clone(), pb::CaseFilter { department_id: "gongan".into(), ..Default::default() }).await;
    // A street asking for another street's cases is refused rather than left silent.
    let e = other_street
        .clone()
        .watch_cases(pb::WatchCasesRequest {
            filter: Some(pb::CaseFilter { street_id: STREET.into(), ..Default::default() }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e =
        app.client(&tokens::discipline_inspector()).watch_cases(pb::WatchCasesRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Z in this street, S in 水果湖, changes interleaved.
    let z = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    let s = other_street.clone().create_case(intake_elsewhere(&request_id())).await.unwrap().into_inner();
    let triage = |id: &str| pb::TriageCaseRequest {
        case_id: id.into(),
        decision: pb::TriageDecision::StartCall as i32,
        request_id: request_id(),
        ..Default::default()
    };
    app.street().triage_case(triage(&z.id)).await.unwrap();
    let now = app.now();
    let z_calls = app
        .street()
        .start_call(pb::StartCallRequest {
            case_id: z.id.clone(),
            calls: vec![call_to("gongan", now)],
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner()
        .calls;
    other_street.clone().triage_case(triage(&s.id)).await.unwrap();
    app.sign(&z_calls[0]).await;
    let mut edited = s.clone();
    edited.title = "水果湖无照经营（复核）".into();
    other_street
        .clone()
        .update_case(pb::UpdateCaseRequest {
            case: Some(edited),
            update_mask: Some(prost_types::FieldMask { paths: vec!["title".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap();
    other_street
        .clone()
        .start_call(pb::StartCallRequest {
            case_id: s.id.clone(),
            calls: vec![call_to("guihua", now)],
            request_id: request_id(),
        })
        .await
        .unwrap();

    use pb::EventType::*;
    let (zid, sid) = (z.id.clone(), s.id.clone());
    let zs = |types: &[pb::EventType]| types.iter().map(|t| (zid.clone(), *t as i32)).collect::<Vec<_>>();
    let ss = |types: &[pb::EventType]| types.iter().map(|t| (sid.clone(), *t as i32)).collect::<Vec<_>>();

    // Each street sees its own cases only.
    let seen = until(&mut here, &z.id, CallSigned).await;
    assert_eq!(summary(&seen), zs(&[CaseCreated, CaseTriaged, CallStarted, CallSigned]));
    assert_eq!(seen[0].case.as_ref().unwrap().reporter.as_ref().unwrap().name, "张三", "the street sees its reporter");
    let seen = until(&mut there, &s.id, CallStarted).await;
    assert_eq!(summary(&seen), ss(&[CaseCreated, CaseTriaged, CaseUpdated, CallStarted]));
    assert_eq!(seen[2].case.as_ref().unwrap().title, "水果湖无照经营（复核）");
    // The district sees everything, in feed order, masked.
    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(next(&mut everything).await);
    }
    let sequences: Vec<_> = seen.iter().map(|m| m.event.as_ref().unwrap().sequence).collect();
    assert_eq!(sequences, (1..=8).collect::<Vec<i64>>());
    assert!(seen.iter().all(|m| m.case.as_ref().unwrap().reporter.as_ref().unwrap().masked));
    // A department sees the cases that call it (from when it can read them), nothing else.
    let seen = until(&mut police, &z.id, CallSigned).await;
    assert!(seen.iter().all(|m| m.event.as_ref().unwrap().case_id == z.id), "{:?}", summary(&seen));
    assert!(summary(&seen).contains(&(z.id.clone(), CallStarted as i32)));
    let seen = until(&mut planning, &s.id, CallStarted).await;
    assert!(seen.iter().all(|m| m.event.as_ref().unwrap().case_id == s.id), "{:?}", summary(&seen));
    // Filters: a street, a state (the one the event left the case in), a department.
    let seen = until(&mut there_only, &s.id, CallStarted).await;
    assert_eq!(summary(&seen), ss(&[CaseCreated, CaseTriaged, CaseUpdated, CallStarted]));
    let seen = until(&mut calling, &s.id, CallStarted).await;
    let mut expected = zs(&[CallStarted, CallSigned]);
    expected.extend(ss(&[CallStarted]));
    assert_eq!(summary(&seen), expected);
    let seen = until(&mut to_police, &z.id, CallSigned).await;
    assert!(seen.iter().all(|m| m.event.as_ref().unwrap().case_id == z.id));
}
