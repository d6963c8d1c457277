//! The callback rule (街道回访诉求人): report → callback → rating → close. Rating and
//! closing wait for the reporter to be reached, recorded as anonymous, or tried the
//! configured number of times; the district lists what closed without a callback.

use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

fn attempt(app: &TestApp, method: pb::CallbackMethod, reached: bool) -> pb::Callback {
    pb::Callback {
        method: method as i32,
        reached,
        reporter_satisfaction: if reached { pb::Satisfaction::Satisfied as i32 } else { 0 },
        reporter_opinion: if reached { "满意".into() } else { "无人接听".into() },
        callback_time: ts(app.now()),
        ..Default::default()
    }
}

async fn record(app: &TestApp, case_id: &str, callback: pb::Callback) -> Result<pb::Callback, tonic::Status> {
    app.street()
        .record_callback(pb::RecordCallbackRequest {
            case_id: case_id.into(),
            callback: Some(callback),
            request_id: request_id(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn rate(app: &TestApp, case_id: &str, department: &str) -> Result<pb::Rating, tonic::Status> {
    app.street()
        .rate_department(pb::RateDepartmentRequest {
            case_id: case_id.into(),
            department_id: department.into(),
            satisfaction: pb::Satisfaction::Satisfied as i32,
            comment: String::new(),
            request_id: request_id(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn close(app: &TestApp, case_id: &str) -> Result<pb::Case, tonic::Status> {
    app.street()
        .close_case(pb::CloseCaseRequest {
            case_id: case_id.into(), summary: "办结".into(), request_id: request_id()
        })
        .await
        .map(|r| r.into_inner())
}

/// The district's report: closed cases whose reporter was never reached.
async fn closed_without_callback(app: &TestApp) -> Vec<pb::Case> {
    app.client(&tokens::district_operator())
        .list_cases(pb::ListCasesRequest {
            filter: Some(pb::CaseFilter {
                states: vec![pb::CaseState::Closed as i32],
                callback_outcomes: vec![pb::CallbackOutcome::Anonymous as i32, pb::CallbackOutcome::Unreachable as i32],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cases
}

#[tokio::test]
async fn rating_before_the_callback_is_refused_and_a_reached_reporter_opens_rating() {
    let app = TestApp::spawn().await;
    let case_id = app.reported_case(&["gongan"]).await;
    let before = (app.case(&case_id).await, app.trail_len(&case_id).await);
    assert_eq!(before.0.callback_outcome, pb::CallbackOutcome::Pending as i32);

    let e = rate(&app, &case_id, "gongan").await.unwrap_err();
    assert_eq!(reasons(&e), ["CALLBACK_REQUIRED"], "回访 before 评价");
    assert_eq!((app.case(&case_id).await, app.trail_len(&case_id).await), before, "nothing written");

    record(&app, &case_id, attempt(&app, pb::CallbackMethod::Phone, true)).await.unwrap();
    let case = app.case(&case_id).await;
    assert_eq!(case.state, pb::CaseState::Rating as i32);
    assert_eq!(case.callback_outcome, pb::CallbackOutcome::Reached as i32);
    rate(&app, &case_id, "gongan").await.unwrap();
    close(&app, &case_id).await.unwrap();
    assert!(closed_without_callback(&app).await.is_empty(), "a reached reporter is not in the district's report");
}

#[tokio::test]
async fn three_unreached_attempts_excuse_the_callback_and_the_district_sees_each_attempt() {
    let app = TestApp::spawn().await;
    let case_id = app.reported_case(&["gongan"]).await;
    record(&app, &case_id, attempt(&app, pb::CallbackMethod::Phone, false)).await.unwrap();
    record(&app, &case_id, attempt(&app, pb::CallbackMethod::Sms, false)).await.unwrap();
    let case = app.case(&case_id).await;
    assert_eq!(
        (case.state, case.callback_outcome),
        (pb::CaseState::Reported as i32, pb::CallbackOutcome::Pending as i32),
        "two tries are not yet enough"
    );
    assert_eq!(reasons(&rate(&app, &case_id, "gongan").await.unwrap_err()), ["CALLBACK_REQUIRED"]);

    record(&app, &case_id, attempt(&app, pb::CallbackMethod::Visit, false)).await.unwrap();
    let case = app.case(&case_id).await;
    assert_eq!(case.state, pb::CaseState::Rating as i32);
    assert_eq!(case.callback_outcome, pb::CallbackOutcome::Unreachable as i32);
    rate(&app, &case_id, "gongan").await.unwrap();
    close(&app, &case_id).await.unwrap();

    let report = closed_without_callback(&app).await;
    assert_eq!(report.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [case_id.as_str()]);
    let methods: Vec<i32> = report[0].callbacks.iter().map(|c| c.method).collect();
    assert_eq!(
        methods,
        [pb::CallbackMethod::Phone as i32, pb::CallbackMethod::Sms as i32, pb::CallbackMethod::Visit as i32]
    );
    assert!(report[0].callbacks.iter().all(|c| !c.reached && c.callback_time.is_some()));
}

#[tokio::test]
async fn the_number_of_attempts_is_configurable() {
    let app = TestApp::spawn_with(|c| c.deadlines.policy.callback_attempts = 1).await;
    let case_id = app.reported_case(&["gongan"]).await;
    record(&app, &case_id, attempt(&app, pb::CallbackMethod::Phone, false)).await.unwrap();
    let case = app.case(&case_id).await;
    assert_eq!(case.callback_outcome, pb::CallbackOutcome::Unreachable as i32);
    rate(&app, &case_id, "gongan").await.unwrap();
}

#[tokio::test]
async fn a_street_solved_case_closes_only_after_a_callback_or_a_recorded_anonymous_reporter() {
    let app = TestApp::spawn().await;
    let case = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    app.street()
        .triage_case(pb::TriageCaseRequest {
            case_id: case.id.clone(),
            decision: pb::TriageDecision::SolveAtStreet as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(reasons(&close(&app, &case.id).await.unwrap_err()), ["CALLBACK_REQUIRED"]);

    // Anonymity is a stated reason, not a shortcut: it must say why, and no one was reached.
    let anonymous = pb::Callback { reporter_anonymous: true, ..Default::default() };
    let e = record(&app, &case.id, anonymous.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.get_details_bad_request().unwrap().field_violations[0].field, "callback.reporter_opinion");
    let e = record(&app, &case.id, pb::Callback { reached: true, reporter_opinion: "x".into(), ..anonymous.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.get_details_bad_request().unwrap().field_violations[0].field, "callback.reached");
    assert!(closed_without_callback(&app).await.is_empty());

    let recorded =
        record(&app, &case.id, pb::Callback { reporter_opinion: "12345匿名来电，未留联系方式".into(), ..anonymous })
            .await
            .unwrap();
    assert!(recorded.reporter_anonymous);
    assert_eq!(app.case(&case.id).await.callback_outcome, pb::CallbackOutcome::Anonymous as i32);
    close(&app, &case.id).await.unwrap();
    let report = closed_without_callback(&app).await;
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].callback_outcome, pb::CallbackOutcome::Anonymous as i32);
    assert_eq!(report[0].callbacks[0].reporter_opinion, "12345匿名来电，未留联系方式");
}
