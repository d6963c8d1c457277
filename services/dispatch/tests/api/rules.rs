//! Illegal transitions, refusals by role, idempotent retries, trail tampering and feed
//! resumption.

use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tokio_stream::StreamExt as _;
use tonic::Code;

use crate::helpers::*;

/// A case with one signed call to the police, and the call.
async fn called(app: &TestApp) -> (pb::Case, pb::Call) {
    let case = app.triaged_case().await;
    let started = app
        .street()
        .start_call(pb::StartCallRequest {
            case_id: case.id.clone(),
            calls: vec![call_to("gongan", app.now())],
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    (started.case.unwrap(), started.calls[0].clone())
}

#[tokio::test]
async fn illegal_transitions_are_failed_preconditions_that_change_nothing() {
    let app = TestApp::spawn().await;
    let (case, call) = called(&app).await;
    let police = app.department("gongan");
    police.clone().sign_call(pb::SignCallRequest { call_id: call.id.clone(), request_id: request_id() }).await.unwrap();

    let before_case = app.case(&case.id).await;
    let before_trail = app.trail_len(&case.id).await;

    // Signing twice.
    let e = police
        .clone()
        .sign_call(pb::SignCallRequest { call_id: call.id.clone(), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["CALL_ALREADY_SIGNED"]);
    // Checking in for a call one was not named for.
    let stranger = officer("chengguan");
    let e = app
        .client(&tokens::field_officer(&stranger, "gongan"))
        .check_in(pb::CheckInRequest {
            call_id: call.id.clone(),
            location: point(PUMP_ROOM),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    // The stranger may not even read the case: not found, not a hint.
    assert_eq!(e.code(), Code::NotFound);
    let e = app
        .street()
        .check_in(pb::CheckInRequest {
            call_id: call.id.clone(),
            person_id: stranger,
            location: point(PUMP_ROOM),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["NOT_DESIGNATED"]);
    // Rating before feedback was accepted (and the report submitted).
    let e = app
        .street()
        .rate_department(pb::RateDepartmentRequest {
            case_id: case.id.clone(),
            department_id: "gongan".into(),
            satisfaction: pb::Satisfaction::Satisfied as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["CASE_NOT_REPORTED"]);
    // Closing while calling, with work to do.
    let e = app
        .street()
        .close_case(pb::CloseCaseRequest { case_id: case.id.clone(), summary: "x".into(), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["CASE_NOT_CLOSABLE"]);

    assert_eq!(app.case(&case.id).await, before_case);
    assert_eq!(app.trail_len(&case.id).await, before_trail);
}

#[tokio::test]
async fn closing_with_open_tasks_names_the_tasks_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (case, call) = called(&app).await;
    app.department("gongan")
        .sign_call(pb::SignCallRequest { call_id: call.id.clone(), request_id: request_id() })
        .await
        .unwrap();
    let now = app.now();
    app.street()
        .record_consultation(pb::RecordConsultationRequest {
            case_id: case.id.clone(),
            consultation: Some(pb::Consultation {
                meeting_time: ts(now),
                attendee_person_ids: vec![officer("gongan")],
                analysis: "训诫占用人".into(),
                ..Default::default()
            }),
            tasks: vec![pb::Task {
                call_id: call.id.clone(),
                description: "训诫".into(),
                window: Some(minhu_proto::common::v1::TimeRange {
                    start_time: ts(now),
                    end_time: ts(now + chrono::TimeDelta::days(1)),
                }),
                ..Default::default()
            }],
            request_id: request_id(),
        })
        .await
        .unwrap();
    let before = (app.case(&case.id).await, app.trail_len(&case.id).await);
    let e = app
        .street()
        .close_case(pb::CloseCaseRequest { case_id: case.id.clone(), summary: "x".into(), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["CASE_NOT_CLOSABLE", "TASKS_OPEN"]);
    assert_eq!((app.case(&case.id).await, app.trail_len(&case.id).await), before);
}

#[tokio::test]
async fn each_role_is_refused_what_is_not_its_own() {
    let app = TestApp::spawn().await;
    let (case, call) = called(&app).await;
    // Another department may not read the case at all; another street neither.
    for principal in [tokens::department_dispatcher("guihua"), tokens::street_dispatcher("shuiguohu")] {
        let e = app.client(&principal).get_case(pb::GetCaseRequest { case_id: case.id.clone() }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    }
    // The district reads but does not triage or sign.
    let district = app.client(&tokens::district_operator());
    district.clone().get_case(pb::GetCaseRequest { case_id: case.id.clone() }).await.unwrap();
    let e = district
        .clone()
        .sign_call(pb::SignCallRequest { call_id: call.id.clone(), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // The called department may not act as the street.
    let e = app
        .department("gongan")
        .close_case(pb::CloseCaseRequest { case_id: case.id.clone(), summary: "x".into(), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Another street may not record appeals placed in this one.
    let e = app.client(&tokens::street_dispatcher("shuiguohu")).create_case(intake(&request_id())).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Only services and district admins read the feed.
    let e = app.street().stream_events(pb::StreamEventsRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_retried_intake_never_creates_a_second_case() {
    let app = TestApp::spawn().await;
    let id = request_id();
    let first = app.street().create_case(intake(&id)).await.unwrap().into_inner();
    let again = app.street().create_case(intake(&id)).await.unwrap().into_inner();
    assert_eq!(first, again);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM cases").fetch_one(&app.pool).await.unwrap();
    assert_eq!(n, 1);
    // A new intake of the same problem is a repeat: it joins the first case's cluster.
    let repeat = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    assert_eq!(repeat.lead_case_id, first.id);
    assert_eq!(repeat.related_case_ids, std::slice::from_ref(&first.id));
    assert_eq!(app.case(&first.id).await.cluster_size, 2);
}

#[tokio::test]
async fn bad_input_is_invalid_argument_with_fields_and_no_write() {
    let app = TestApp::spawn().await;
    let mut request = intake(&request_id());
    if let Some(c) = request.case.as_mut() {
        c.title.clear();
        c.channel = 0;
    }
    let e = app.street().create_case(request).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM cases").fetch_one(&app.pool).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn an_edited_trail_entry_fails_verification_at_its_sequence() {
    let app = TestApp::spawn().await;
    let (case, _) = called(&app).await;
    let ok = app.street().verify_trail(pb::VerifyTrailRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    assert!(ok.verified);
    sqlx::query(
        "UPDATE trail_entries SET after_json = '{\"state\":\"CASE_STATE_CLOSED\"}' WHERE case_id = $1 AND sequence = 2",
    )
    .bind(uuid::Uuid::parse_str(&case.id).unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    let broken =
        app.street().verify_trail(pb::VerifyTrailRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    assert!(!broken.verified);
    assert_eq!(broken.first_broken_sequence, 2);
    assert_eq!(broken.reason, "hash mismatch");
}

#[tokio::test]
async fn the_feed_resumes_after_a_disconnect_without_gap_or_duplicate() {
    let app = TestApp::spawn().await;
    let feed = app.client(&tokens::service("appraisal"));
    for _ in 0..3 {
        app.triaged_case().await;
    }
    // Six events so far (intake + triage, three times): read four, drop the stream.
    let mut stream = feed.clone().stream_events(pb::StreamEventsRequest::default()).await.unwrap().into_inner();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        if let Some(e) = stream.next().await.unwrap().unwrap().event {
            seen.push(e.sequence);
        }
    }
    drop(stream);
    let cursor = *seen.last().unwrap();
    app.triaged_case().await;
    let mut stream = feed
        .clone()
        .stream_events(pb::StreamEventsRequest { after_sequence: cursor, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    while seen.len() < 8 {
        if let Some(e) = stream.next().await.unwrap().unwrap().event {
            seen.push(e.sequence);
        }
    }
    assert_eq!(seen, (1..=8).collect::<Vec<i64>>());
    // Live: a new event arrives on the open stream.
    app.triaged_case().await;
    let next = loop {
        if let Some(e) = stream.next().await.unwrap().unwrap().event {
            break e;
        }
    };
    assert_eq!(next.sequence, 9);
    let e = feed
        .clone()
        .stream_events(pb::StreamEventsRequest { after_sequence: 999, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange);
}

#[tokio::test]
async fn rating_a_department_twice_or_from_another_street_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    // The case is rated (dissatisfied) and in rectification for gongan.
    let (case_id, _) = app.rectifying_case(&["gongan"]).await;
    let before = (app.case(&case_id).await, app.trail_len(&case_id).await);

    let again = app
        .street()
        .rate_department(pb::RateDepartmentRequest {
            case_id: case_id.clone(),
            department_id: "gongan".into(),
            satisfaction: pb::Satisfaction::Satisfied as i32,
            comment: "改评满意".into(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(reasons(&again), ["ALREADY_RATED"], "一事一评: once per department per case");

    let other_street = app
        .client(&tokens::street_leader("shuiguohu"))
        .rate_department(pb::RateDepartmentRequest {
            case_id: case_id.clone(),
            department_id: "gongan".into(),
            satisfaction: pb::Satisfaction::Satisfied as i32,
            comment: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(other_street.code(), Code::NotFound, "谁呼谁评: another street cannot even see the case");

    assert_eq!((app.case(&case_id).await, app.trail_len(&case_id).await), before);
}
