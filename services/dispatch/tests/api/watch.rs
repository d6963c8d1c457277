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

    let mut stream = app
        .street()
        .watch_case(pb::WatchCaseRequest { case_id: watched.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
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
    // Each delta shows what its event changed, at least as far as the event: the call of
    // a call event (and not the whole case again), the case of a case event.
    let signed = &messages[2];
    assert!(signed.case.is_none() && signed.calls.is_empty() && signed.tasks.is_empty());
    let call = signed.changed_call.as_ref().unwrap();
    assert_eq!((call.id.as_str(), call.state), (started.calls[0].id.as_str(), pb::CallState::Signed as i32));
    assert!(messages[..2].iter().all(|m| m.changed_call.as_ref().unwrap().case_id == watched.id));
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
        let e = stranger
            .clone()
            .watch_case(pb::WatchCaseRequest { case_id: case.id.clone(), ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    }
    let e =
        app.street().watch_case(pb::WatchCaseRequest { case_id: "x".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    let district = app.client(&tokens::district_operator());
    let mut stream = district
        .clone()
        .watch_case(pb::WatchCaseRequest { case_id: case.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
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
    let mut stream = app
        .street()
        .watch_case(pb::WatchCaseRequest { case_id: case.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut stream).await.case.unwrap().reporter.unwrap().name, "张三");
    assert!(tokio::time::timeout(WAIT, stream.next()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_department_loses_the_watch_when_its_call_is_withdrawn() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["fangguan", "gongan"]).await;
    let housing = app.department("fangguan");
    let mut stream = housing
        .clone()
        .watch_case(pb::WatchCaseRequest { case_id: case.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
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
        client
            .watch_cases(pb::WatchCasesRequest { filter: Some(filter), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
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
            ..Default::default()
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

/// A case watch on `client`, from `resume_token` when given.
async fn watch_one(client: Client, case_id: &str, resume_token: &str) -> Streaming<pb::WatchCaseResponse> {
    let mut client = client;
    client
        .watch_case(pb::WatchCaseRequest {
            case_id: case_id.into(),
            resume_token: resume_token.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// Nothing more arrives for a while.
async fn quiet<T: std::fmt::Debug>(stream: &mut Streaming<T>) {
    let more = tokio::time::timeout(std::time::Duration::from_millis(500), stream.next()).await;
    assert!(more.is_err(), "{more:?}");
}

/// The only field violation's field.
fn bad_field(e: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    e.get_details_bad_request().unwrap().field_violations[0].field.clone()
}

#[tokio::test]
async fn a_case_watcher_reconnecting_with_its_token_misses_and_repeats_nothing() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["fangguan", "gongan"]).await;
    let mut stream = watch_one(app.street(), &case.id, "").await;
    let snapshot = next(&mut stream).await;
    assert!(snapshot.event.is_none() && !snapshot.resume_token.is_empty());
    assert_eq!(snapshot.calls.len(), 2, "the snapshot has every call");
    app.sign(&calls[0]).await;
    let signed = next(&mut stream).await;
    assert_eq!(signed.event.as_ref().unwrap().event_type, pb::EventType::CallSigned as i32);
    // The connection drops; the case moves on meanwhile: a call, a consultation with its
    // tasks, a correction.
    drop(stream);
    let after = signed.event.as_ref().unwrap().sequence;
    app.sign(&calls[1]).await;
    let now = app.now();
    let consulted = app
        .street()
        .record_consultation(pb::RecordConsultationRequest {
            case_id: case.id.clone(),
            consultation: Some(pb::Consultation {
                meeting_time: ts(now),
                attendee_person_ids: vec![officer("fangguan"), officer("gongan")],
                analysis: "联合处置".into(),
                ..Default::default()
            }),
            tasks: calls
                .iter()
                .map(|c| pb::Task {
                    call_id: c.id.clone(),
                    description: format!("{} 的任务", c.department_id),
                    window: Some(minhu_proto::common::v1::TimeRange {
                        start_time: ts(now),
                        end_time: ts(now + chrono::TimeDelta::days(1)),
                    }),
                    ..Default::default()
                })
                .collect(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut edited = case.clone();
    edited.title = "水泵房被占（已核实）".into();
    app.street()
        .update_case(pb::UpdateCaseRequest {
            case: Some(edited),
            update_mask: Some(prost_types::FieldMask { paths: vec!["title".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let missed: Vec<pb::Event> = app.events_of(&case.id).await.into_iter().filter(|e| e.sequence > after).collect();
    assert!(missed.len() >= 5, "{missed:?}");

    // Reconnecting with the last token: no snapshot, exactly the missed events, each a delta.
    let mut stream = watch_one(app.street(), &case.id, &signed.resume_token).await;
    let mut resumed = Vec::new();
    for _ in 0..missed.len() {
        resumed.push(next(&mut stream).await);
    }
    let sequences =
        |ms: &[pb::WatchCaseResponse]| ms.iter().map(|m| m.event.as_ref().unwrap().sequence).collect::<Vec<_>>();
    assert_eq!(sequences(&resumed), missed.iter().map(|e| e.sequence).collect::<Vec<_>>());
    for m in &resumed {
        let event = m.event.as_ref().unwrap();
        assert!(m.calls.is_empty() && m.tasks.is_empty(), "a delta is no snapshot: {m:?}");
        assert!(!m.resume_token.is_empty());
        match pb::EventType::try_from(event.event_type).unwrap() {
            pb::EventType::CallSigned => {
                assert_eq!(m.changed_call.as_ref().unwrap().id, calls[1].id);
                assert!(m.case.is_none() && m.changed_task.is_none());
            }
            pb::EventType::TaskCreated => {
                let task = m.changed_task.as_ref().unwrap();
                assert!(consulted.tasks.iter().any(|t| t.id == task.id));
                assert!(m.case.is_none() && m.changed_call.is_none());
            }
            pb::EventType::CaseUpdated => {
                assert_eq!(m.case.as_ref().unwrap().title, "水泵房被占（已核实）");
                assert!(m.changed_call.is_none() && m.changed_task.is_none());
            }
            _ => assert!(m.case.is_some() || m.changed_call.is_some() || m.changed_task.is_some(), "{m:?}"),
        }
    }
    let tasks: Vec<_> = resumed.iter().filter_map(|m| m.changed_task.as_ref()).map(|t| t.id.clone()).collect();
    assert_eq!(tasks.len(), consulted.tasks.len(), "each task once");
    quiet(&mut stream).await;

    // Dropped again, and resumed from a token in the middle: the rest, once.
    drop(stream);
    let middle = &resumed[1];
    let mut stream = watch_one(app.street(), &case.id, &middle.resume_token).await;
    let mut rest = Vec::new();
    for _ in 2..resumed.len() {
        rest.push(next(&mut stream).await);
    }
    assert_eq!(sequences(&rest), sequences(&resumed[2..]));
    quiet(&mut stream).await;
    // And live again: the next change comes through the same stream.
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
        .ok();
    let mut edited = case.clone();
    edited.title = "水泵房被占（复核）".into();
    app.street()
        .update_case(pb::UpdateCaseRequest {
            case: Some(edited),
            update_mask: Some(prost_types::FieldMask { paths: vec!["title".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let live = next(&mut stream).await;
    assert!(live.event.as_ref().unwrap().sequence > rest.last().unwrap().event.as_ref().unwrap().sequence);
}

#[tokio::test]
async fn a_cases_watcher_reconnecting_with_its_token_misses_and_repeats_nothing() {
    let app = TestApp::spawn().await;
    let district = app.client(&tokens::district_operator());
    let filter = pb::CaseFilter { street_id: STREET.into(), ..Default::default() };
    let watch = |token: String| {
        let (mut client, filter) = (district.clone(), filter.clone());
        async move {
            client
                .watch_cases(pb::WatchCasesRequest { filter: Some(filter), resume_token: token, ..Default::default() })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let mut stream = watch(String::new()).await;
    let (case, calls) = app.called_case(&["gongan"]).await;
    let first = until(&mut stream, &case.id, pb::EventType::CallStarted).await;
    drop(stream);
    let last_seen = first.last().unwrap().clone();
    app.sign(&calls[0]).await;
    other_street_case(&app).await;
    let z2 = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();

    let mut stream = watch(last_seen.resume_token.clone()).await;
    let resumed = until(&mut stream, &z2.id, pb::EventType::CaseCreated).await;
    assert_eq!(
        summary(&resumed),
        [(case.id.clone(), pb::EventType::CallSigned as i32), (z2.id.clone(), pb::EventType::CaseCreated as i32)],
        "the other street's case is filtered out, nothing of ours is missed or repeated"
    );
    let signed = &resumed[0];
    assert_eq!(signed.changed_call.as_ref().unwrap().state, pb::CallState::Signed as i32);
    assert!(signed.case.as_ref().unwrap().reporter.as_ref().unwrap().masked, "masked for the district");
    quiet(&mut stream).await;
}

/// A case in 水果湖, created by its own street.
async fn other_street_case(app: &TestApp) -> pb::Case {
    app.client(&tokens::street_dispatcher("shuiguohu"))
        .create_case(intake_elsewhere(&request_id()))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn resume_tokens_that_cannot_be_served_are_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let other = app.triaged_case().await;
    let mut stream = watch_one(app.street(), &case.id, "").await;
    let token = next(&mut stream).await.resume_token;
    let open = |case_id: &str, token: &str| {
        let mut client = app.street();
        let request =
            pb::WatchCaseRequest { case_id: case_id.into(), resume_token: token.into(), ..Default::default() };
        async move { client.watch_case(request).await.map(|_| ()).unwrap_err() }
    };
    for malformed in ["abc", "!!!", "dzEuMS4y", &format!("{token}x")] {
        assert_eq!(bad_field(&open(&case.id, malformed).await), "resume_token", "{malformed}");
    }
    // Another case's token, and a case token on the list watch.
    let e = open(&other.id, &token).await;
    assert_eq!(bad_field(&e), "resume_token");
    assert!(e.message().contains("another watch"), "{e:?}");
    let e = app
        .client(&tokens::district_operator())
        .watch_cases(pb::WatchCasesRequest { resume_token: token.clone(), ..Default::default() })
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(bad_field(&e), "resume_token");
    // Within the window it is served; past it (24 hours by default) it is expired.
    watch_one(app.street(), &case.id, &token).await;
    app.clock.advance(chrono::TimeDelta::hours(25));
    let e = open(&case.id, &token).await;
    assert_eq!(reasons(&e), ["RESUME_TOKEN_EXPIRED"]);
    assert!(e.message().contains("GetCase"), "{e:?}");
    // A stranger's token is refused like a stranger's case.
    let e = app
        .department("gongan")
        .watch_case(pb::WatchCaseRequest {
            case_id: case.id.clone(),
            resume_token: token.clone(),
            ..Default::default()
        })
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn a_read_mask_trims_every_message_to_the_fields_a_phone_shows() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["gongan"]).await;
    let paths = ["case.state", "case.title", "event.event_type", "changed_call.state"];
    let mut stream = app
        .street()
        .watch_case(pb::WatchCaseRequest {
            case_id: case.id.clone(),
            read_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).into()).collect() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let snapshot = next(&mut stream).await;
    assert_eq!(
        snapshot.case.unwrap(),
        pb::Case { state: pb::CaseState::Calling as i32, title: case.title.clone(), ..Default::default() }
    );
    assert!(snapshot.calls.is_empty(), "calls are not in the mask");
    assert!(!snapshot.resume_token.is_empty(), "the token is always sent");
    app.sign(&calls[0]).await;
    let signed = next(&mut stream).await;
    assert_eq!(signed.changed_call.unwrap(), pb::Call { state: pb::CallState::Signed as i32, ..Default::default() });
    assert_eq!(signed.event.unwrap(), pb::Event { event_type: pb::EventType::CallSigned as i32, ..Default::default() });
    assert!(!signed.resume_token.is_empty());

    // The list watch takes a mask too.
    let mut list = app
        .client(&tokens::district_operator())
        .watch_cases(pb::WatchCasesRequest {
            read_mask: Some(prost_types::FieldMask { paths: vec!["case.id".into(), "event.sequence".into()] }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let created = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    let m = next(&mut list).await;
    assert_eq!(m.case.unwrap(), pb::Case { id: created.id, ..Default::default() });
    assert!(m.event.unwrap().sequence > 0);

    // A path naming no field is refused by name.
    for bad in ["case.nope", "calls.state.x", "reporter"] {
        let e = app
            .street()
            .watch_case(pb::WatchCaseRequest {
                case_id: case.id.clone(),
                read_mask: Some(prost_types::FieldMask { paths: vec!["case.state".into(), bad.into()] }),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(bad_field(&e), "read_mask", "{bad}");
        assert!(e.message().contains(bad), "{e:?}");
    }
}

#[tokio::test]
async fn database_work_per_event_does_not_grow_with_the_number_of_watchers() {
    let app = TestApp::spawn_with(|c| c.feed.max_watches_per_subject = 100).await;
    let (case, _) = app.called_case(&["gongan"]).await;
    let district = app.client(&tokens::district_operator());
    // The same three corrections, seen by `watchers`: the watch streams' statements meanwhile.
    let round =
        |watchers: Vec<Streaming<pb::WatchCasesResponse>>, singles: Vec<Streaming<pb::WatchCaseResponse>>, n: u32| {
            let (app, case) = (&app, case.clone());
            async move {
                let (mut watchers, mut singles) = (watchers, singles);
                let before = app.watch_meter.statements();
                for i in 0..3 {
                    let mut edited = case.clone();
                    edited.title = format!("水泵房被占（第{n}轮第{i}次）");
                    app.street()
                        .update_case(pb::UpdateCaseRequest {
                            case: Some(edited.clone()),
                            update_mask: Some(prost_types::FieldMask { paths: vec!["title".into()] }),
                            request_id: request_id(),
                        })
                        .await
                        .unwrap();
                    // Every watcher has it before the next change.
                    for w in &mut watchers {
                        assert_eq!(next(w).await.case.unwrap().title, edited.title);
                    }
                    for w in &mut singles {
                        assert_eq!(next(w).await.case.unwrap().title, edited.title);
                    }
                }
                (app.watch_meter.statements() - before, watchers, singles)
            }
        };
    let open_list = || {
        let mut client = district.clone();
        async move { client.watch_cases(pb::WatchCasesRequest::default()).await.unwrap().into_inner() }
    };
    let open_one = || {
        let case_id = case.id.clone();
        let client = app.street();
        async move {
            let mut s = watch_one(client, &case_id, "").await;
            next(&mut s).await;
            s
        }
    };

    let (one, lists, singles) = round(vec![open_list().await], Vec::new(), 1).await;
    assert!(one > 0, "the hub read the events");
    let mut lists = lists;
    let mut singles = singles;
    for _ in 0..24 {
        lists.push(open_list().await);
    }
    for _ in 0..25 {
        singles.push(open_one().await);
    }
    let (fifty, _, _) = round(lists, singles, 2).await;
    assert_eq!(fifty, one, "1 watcher: {one} statements for 3 events; 50 watchers: {fifty}");
}

#[tokio::test]
async fn open_watches_are_capped_per_caller_and_per_replica() {
    let app = TestApp::spawn_with(|c| {
        c.feed.max_watches_per_subject = 2;
        c.feed.max_watches_per_replica = 3;
    })
    .await;
    let case = app.triaged_case().await;
    let mut first = watch_one(app.street(), &case.id, "").await;
    next(&mut first).await;
    let mut second = app.street().watch_cases(pb::WatchCasesRequest::default()).await.unwrap().into_inner();
    let e = app.street().watch_cases(pb::WatchCasesRequest::default()).await.map(|_| ()).unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("at most 2") && e.message().contains("MINHU_DISPATCH_WATCH_MAX_PER_SUBJECT"), "{e:?}");
    // Another caller still has room, until the replica is full.
    let district = app.client(&tokens::district_operator());
    let _third = district.clone().watch_cases(pb::WatchCasesRequest::default()).await.unwrap().into_inner();
    let e = app.department("gongan").watch_cases(pb::WatchCasesRequest::default()).await.map(|_| ()).unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("at most 3") && e.message().contains("MINHU_DISPATCH_WATCH_MAX_PER_REPLICA"), "{e:?}");
    // A closed stream gives its place back.
    drop(first);
    let reopened = async {
        loop {
            match app.street().watch_cases(pb::WatchCasesRequest::default()).await {
                Ok(stream) => return stream.into_inner(),
                Err(e) => assert_eq!(e.code(), Code::ResourceExhausted),
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let _reopened = tokio::time::timeout(WAIT, reopened).await.expect("the closed watch's place was not given back");
    // The open ones still work.
    let created = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    assert_eq!(next(&mut second).await.case.unwrap().id, created.id);
}

#[tokio::test]
async fn a_watch_ends_at_the_callers_token_expiry_and_resumes_with_a_fresh_token() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let short =
        minhu_grpc::TokenIssuer::dev().issue(&tokens::street_dispatcher(STREET), std::time::Duration::from_secs(2));
    let mut stream = watch_one(app.client_with_token(&short), &case.id, "").await;
    let snapshot = next(&mut stream).await;
    let started = std::time::Instant::now();
    let end = tokio::time::timeout(WAIT, stream.next()).await.expect("the stream outlived its token");
    let e = end.expect("the stream should end with a status").unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("token expired") && e.message().contains("resume token"), "{e:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    // A change meanwhile; a fresh token and the resume token deliver it.
    let mut edited = case.clone();
    edited.title = "水泵房被占（已核实）".into();
    app.street()
        .update_case(pb::UpdateCaseRequest {
            case: Some(edited),
            update_mask: Some(prost_types::FieldMask { paths: vec!["title".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let mut stream = watch_one(app.street(), &case.id, &snapshot.resume_token).await;
    let m = next(&mut stream).await;
    assert_eq!(m.event.unwrap().event_type, pb::EventType::CaseUpdated as i32);
    assert_eq!(m.case.unwrap().title, "水泵房被占（已核实）");
}

#[tokio::test]
async fn a_watcher_too_slow_for_the_hub_is_ended_and_resumes_without_a_gap() {
    let app = TestApp::spawn_with(|c| c.feed.watch_buffer = 1).await;
    let district = app.client(&tokens::district_operator());
    let mut stream = district.clone().watch_cases(pb::WatchCasesRequest::default()).await.unwrap().into_inner();
    // The watcher reads nothing while the feed moves on.
    let mut created = Vec::new();
    for _ in 0..150 {
        created.push(app.street().create_case(intake(&request_id())).await.unwrap().into_inner().id);
    }
    let mut seen = Vec::new();
    let ended = loop {
        match tokio::time::timeout(WAIT, stream.next()).await.expect("no message in time") {
            Some(Ok(m)) => seen.push(m),
            Some(Err(e)) => break e,
            None => panic!("the stream ended without a status after {} messages", seen.len()),
        }
    };
    assert_eq!(ended.code(), Code::ResourceExhausted, "{ended:?}");
    assert!(ended.message().contains("resume_token"), "{ended:?}");
    assert!(seen.len() < created.len());
    let mut stream = district
        .clone()
        .watch_cases(pb::WatchCasesRequest {
            resume_token: seen.last().unwrap().resume_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while seen.len() < created.len() {
        seen.push(next(&mut stream).await);
    }
    let ids: Vec<String> = seen.iter().map(|m| m.case.as_ref().unwrap().id.clone()).collect();
    assert_eq!(ids, created, "every case once, in order");
}
