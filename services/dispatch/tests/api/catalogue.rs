//! The dispatch catalogue (派单目录): intake validates the category against the current
//! version, triage proposes the calls from it, and a case keeps the deadlines of the
//! version it was accepted under.

use chrono::TimeDelta;
use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

fn field(e: &tonic::Status) -> String {
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    e.get_details_bad_request().unwrap().field_violations[0].field.clone()
}

async fn triage(app: &TestApp, case_id: &str) {
    app.street()
        .triage_case(pb::TriageCaseRequest {
            case_id: case_id.into(),
            decision: pb::TriageDecision::StartCall as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn catalogue(app: &TestApp, version: i32) -> pb::Catalogue {
    app.street().get_catalogue(pb::GetCatalogueRequest { version }).await.unwrap().into_inner()
}

async fn publish(app: &TestApp, who: &minhu_grpc::Principal, c: pb::Catalogue) -> Result<pb::Catalogue, tonic::Status> {
    app.client(who)
        .publish_catalogue(pb::PublishCatalogueRequest { catalogue: Some(c), request_id: request_id() })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_category_outside_the_catalogue_is_refused_on_the_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let mut request = intake(&request_id());
    request.case.as_mut().unwrap().category = "城市管理/不存在的分类".into();
    let e = app.street().create_case(request).await.unwrap_err();
    assert_eq!(field(&e), "case.category");
    let listed = app
        .client(&tokens::district_operator())
        .list_cases(pb::ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0);

    // The seeded version covers the four classes of the seed article.
    let current = catalogue(&app, 0).await;
    assert_eq!(current.version, 1);
    for class in [
        pb::MatterClass::CityManagement,
        pb::MatterClass::MarketEntityServices,
        pb::MatterClass::LivelihoodSocialSecurity,
        pb::MatterClass::Emergency,
    ] {
        assert!(current.categories.iter().any(|c| c.matter_class == class as i32), "{class:?}");
    }
    let e = app.street().get_catalogue(pb::GetCatalogueRequest { version: 7 }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn triage_proposes_the_calls_of_the_category_not_yet_called() {
    let app = TestApp::spawn().await;
    let case = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    assert_eq!(case.catalogue_version, 1);
    assert_eq!(case.matter_class, pb::MatterClass::CityManagement as i32);
    triage(&app, &case.id).await;
    let proposal =
        app.street().propose_calls(pb::ProposeCallsRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    let departments: Vec<&str> = proposal.calls.iter().map(|c| c.department_id.as_str()).collect();
    assert_eq!(departments, ["chengguan", "guihua", "fangguan"], "违法建设、开墙打洞 in version 1");
    assert!(proposal.calls.iter().all(|c| c.matters == "违法建设、开墙打洞"));

    app.street()
        .start_call(pb::StartCallRequest {
            case_id: case.id.clone(),
            calls: vec![call_to("chengguan", app.now())],
            request_id: request_id(),
        })
        .await
        .unwrap();
    let again =
        app.street().propose_calls(pb::ProposeCallsRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    let departments: Vec<&str> = again.calls.iter().map(|c| c.department_id.as_str()).collect();
    assert_eq!(departments, ["guihua", "fangguan"]);
    // Another street may not even learn the case exists.
    let e = app
        .client(&tokens::street_dispatcher("shuiguohu"))
        .propose_calls(pb::ProposeCallsRequest { case_id: case.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn a_case_keeps_the_deadlines_of_the_version_it_was_accepted_under() {
    let app = TestApp::spawn().await;
    let old = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();

    // Version 2: 违法建设 must be signed within 30 minutes, checked in within 10.
    let mut next = catalogue(&app, 0).await;
    let category = next.categories.iter_mut().find(|c| c.code == "城市管理/违法建设").unwrap();
    category.sign_minutes = 30;
    category.check_in_window_minutes = 10;
    next.note = "违法建设签收时限缩短为30分钟".into();
    for who in [tokens::district_operator(), tokens::street_leader(STREET)] {
        let e = publish(&app, &who, next.clone()).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "only the district admin publishes");
    }
    let mut twice = next.clone();
    twice.categories[1].code = twice.categories[0].code.clone();
    let e = publish(&app, &tokens::district_admin(), twice).await.unwrap_err();
    assert_eq!(field(&e), "catalogue.categories[1].code");
    let published = publish(&app, &tokens::district_admin(), next).await.unwrap();
    assert_eq!(published.version, 2);
    let first = catalogue(&app, 1).await;
    let unchanged = first.categories.iter().find(|c| c.code == "城市管理/违法建设").unwrap();
    assert_eq!(unchanged.sign_minutes, 0, "a published version never changes");

    let new = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    assert_eq!((old.catalogue_version, new.catalogue_version), (1, 2));
    let now = app.now();
    let mut calls = Vec::new();
    for case in [&old, &new] {
        triage(&app, &case.id).await;
        let started = app
            .street()
            .start_call(pb::StartCallRequest {
                case_id: case.id.clone(),
                calls: vec![call_to("gongan", now)],
                request_id: request_id(),
            })
            .await
            .unwrap()
            .into_inner();
        calls.push(started.calls[0].clone());
    }
    let report = now + TimeDelta::hours(2);
    // The old case: version 1's configured NORMAL sign time (4 h, so capped at the report
    // time two hours away) and check-in window (30 min).
    assert_eq!(time(calls[0].sign_deadline.unwrap()), report);
    assert_eq!(time(calls[0].check_in_close_time.unwrap()), report + TimeDelta::minutes(30));
    // The new case: version 2's 30 minutes and 10 minutes.
    assert_eq!(time(calls[1].sign_deadline.unwrap()), now + TimeDelta::minutes(30));
    assert_eq!(time(calls[1].check_in_close_time.unwrap()), report + TimeDelta::minutes(10));
}
