//! The write path over gRPC: a retry is answered before any roster call, no roster call is
//! made while rows are locked, and a request that is not valid is refused, naming its
//! innermost field, before anything is written.

use std::time::Duration;

use chrono::TimeDelta;
use minhu_proto::dispatch::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

/// Waits until the roster is really gone: a request that needs it is UNAVAILABLE.
async fn until_the_roster_is_down(app: &TestApp) {
    let down = async {
        loop {
            match app.street().create_case(intake(&request_id())).await {
                Err(e) if e.code() == Code::Unavailable => return,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    tokio::time::timeout(WAIT, down).await.expect("the roster never went down");
}

#[tokio::test]
async fn a_create_case_retried_during_a_roster_outage_returns_the_first_result() {
    let mut app = TestApp::spawn().await;
    let request = intake(&request_id());
    let first = app.street().create_case(request.clone()).await.unwrap().into_inner();

    app.stop_roster();
    until_the_roster_is_down(&app).await;
    let retry = app.street().create_case(request).await.expect("the retry is answered without the roster");
    assert_eq!(retry.into_inner(), first);
}

#[tokio::test]
async fn a_stored_first_result_holds_no_reporter_data_in_the_clear_and_replays_unmasked() {
    let app = TestApp::spawn().await;
    let request = intake(&request_id());
    let first = app.street().create_case(request.clone()).await.unwrap().into_inner();
    assert_eq!(first.reporter.as_ref().map(|r| r.phone.as_str()), Some("13812341234"), "the street sees the phone");
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT response FROM minhu_idempotency_records").fetch_all(&app.pool).await.unwrap();
    assert!(!stored.is_empty());
    for bytes in &stored {
        let text = String::from_utf8_lossy(bytes);
        for secret in ["13812341234", "420106199001011234", "张三"] {
            assert!(!text.contains(secret), "`{secret}` is readable in a stored first result");
        }
    }
    let retry = app.street().create_case(request).await.unwrap().into_inner();
    assert_eq!(retry, first);
}

#[tokio::test]
async fn a_start_call_retried_during_a_roster_outage_returns_the_first_result() {
    let mut app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let request = pb::StartCallRequest {
        case_id: case.id.clone(),
        calls: vec![call_to("gongan", app.now()), call_to("chengguan", app.now())],
        request_id: request_id(),
    };
    let first = app.street().start_call(request.clone()).await.unwrap().into_inner();

    app.stop_roster();
    until_the_roster_is_down(&app).await;
    let retry = app.street().start_call(request).await.expect("the retry is answered without the roster");
    assert_eq!(retry.into_inner(), first);
}

#[tokio::test]
async fn a_slow_roster_does_not_delay_a_sign_call_on_another_case() {
    let gate = RosterGate::default();
    let app = TestApp::spawn_gated(gate.clone()).await;
    let (_, elsewhere) = app.called_case(&["fangguan"]).await;
    let case = app.triaged_case().await;

    // The roster answers for the first department at once and then goes slow.
    gate.hold(1);
    let mut street = app.street();
    let request = pb::StartCallRequest {
        case_id: case.id.clone(),
        calls: vec![call_to("gongan", app.now()), call_to("chengguan", app.now())],
        request_id: request_id(),
    };
    let starting = tokio::spawn(async move { street.start_call(request).await });
    gate.until_held().await;

    let signed = tokio::time::timeout(Duration::from_secs(5), app.sign(&elsewhere[0]))
        .await
        .expect("the SignCall waited for a roster answer another request is waiting for");
    assert_eq!(signed.state, pb::CallState::Signed as i32);
    assert!(!starting.is_finished(), "the StartCall is still waiting for the roster");

    gate.release();
    let started = starting.await.unwrap().expect("the StartCall goes on once the roster answers").into_inner();
    assert_eq!(started.calls.len(), 2);
}

/// The fields of an INVALID_ARGUMENT.
fn bad_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect()
}

/// What a refused request must leave as it was: the cases and the feed.
async fn written(app: &TestApp) -> (i64, i64) {
    sqlx::query_as("SELECT (SELECT count(*) FROM cases), (SELECT last FROM event_counter)")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unknown_urgency_is_invalid_on_create_and_on_update_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let before = written(&app).await;

    let mut request = intake(&request_id());
    request.case.as_mut().unwrap().urgency = 99;
    let e = app.street().create_case(request).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["case.urgency"]);

    let mut changed = case.clone();
    changed.urgency = 99;
    let e = app
        .street()
        .update_case(pb::UpdateCaseRequest {
            case: Some(changed),
            update_mask: Some(prost_types::FieldMask { paths: vec!["urgency".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&e), ["case.urgency"]);
    assert_eq!(written(&app).await, before);
}

#[tokio::test]
async fn a_latitude_of_999_is_invalid_on_the_latitude_itself() {
    let app = TestApp::spawn().await;
    let before = written(&app).await;
    let mut request = intake(&request_id());
    request.case.as_mut().unwrap().place.as_mut().unwrap().location = point((999.0, 114.3378));
    let e = app.street().create_case(request).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["case.place.location.latitude"]);
    assert_eq!(written(&app).await, before);
}

#[tokio::test]
async fn an_unknown_qualification_or_an_extreme_report_time_is_invalid_on_that_field_and_calls_nobody() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let before = written(&app).await;
    let start = |call: pb::Call| pb::StartCallRequest {
        case_id: case.id.clone(),
        calls: vec![call_to("gongan", app.now()), call],
        request_id: request_id(),
    };

    let mut unknown = call_to("chengguan", app.now());
    unknown.staff_requirement.as_mut().unwrap().qualification = 99;
    let e = app.street().start_call(start(unknown)).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["calls[1].staff_requirement.qualification"]);

    // The last instant a Timestamp can hold, and one past it.
    for (seconds, nanos) in [(253_402_300_799, 999_999_999), (253_402_300_800, 0), (i64::MAX, 0)] {
        let mut extreme = call_to("chengguan", app.now());
        extreme.report_time = Some(prost_types::Timestamp { seconds, nanos });
        let e = app.street().start_call(start(extreme)).await.unwrap_err();
        assert_eq!(bad_fields(&e), ["calls[1].report_time"], "{seconds}.{nanos}");
    }
    let mut far = call_to("chengguan", app.now());
    far.sign_deadline = ts(app.now() + TimeDelta::days(400));
    let e = app.street().start_call(start(far)).await.unwrap_err();
    assert!(bad_fields(&e).contains(&"calls[1].sign_deadline".to_owned()));

    assert_eq!(written(&app).await, before);
    assert_eq!(app.case(&case.id).await.state, pb::CaseState::Triaged as i32);
}
