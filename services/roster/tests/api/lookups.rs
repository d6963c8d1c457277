//! The look-ups dispatch makes: who can answer a call, and whether a designation holds.

use minhu_proto::{common::v1 as common, roster::v1 as pb};
use minhu_roster::seed;
use minhu_testkit::tokens;
use tonic::Code;

use crate::helpers::{TestApp, violated_fields};

#[tokio::test]
async fn responders_come_seconded_first_then_the_station_then_the_department() {
    let app = TestApp::seeded().await;
    let mut dispatcher = app.client(&tokens::department_dispatcher("chengguan"));
    let request = pb::FindRespondersRequest {
        department_id: "chengguan".into(),
        street_id: "zhongnanlu".into(),
        count: 3,
        qualification: common::Qualification::LawEnforcementCertificate as i32,
        page_size: 6,
        page_token: String::new(),
    };
    let first = dispatcher.find_responders(request.clone()).await.unwrap().into_inner();
    assert_eq!(first.eligible_count, 14 * 4);
    assert!(first.requirement_can_be_met);
    let sources: Vec<_> = first.responders.iter().map(|r| r.source()).collect();
    assert_eq!(sources[0], pb::ResponderSource::SecondedToStreet, "the resident (常驻) officer first");
    assert_eq!(&sources[1..4], [pb::ResponderSource::StationServingStreet; 3]);
    assert_eq!(&sources[4..], [pb::ResponderSource::Department; 2]);
    let resident = seed::person_id(&seed::officer_number("zhongnanlu-chengguan", 1)).to_string();
    assert_eq!(first.responders[0].person.as_ref().unwrap().id, resident);

    let second = dispatcher
        .find_responders(pb::FindRespondersRequest { page_token: first.next_page_token.clone(), ..request.clone() })
        .await
        .unwrap()
        .into_inner();
    let overlap = second.responders.iter().filter(|r| first.responders.iter().any(|f| f.person == r.person)).count();
    assert_eq!(overlap, 0);

    let surveyors = dispatcher
        .find_responders(pb::FindRespondersRequest {
            count: 1,
            qualification: common::Qualification::Surveyor as i32,
            ..request.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(surveyors.eligible_count, 0);
    assert!(!surveyors.requirement_can_be_met);

    let other =
        app.client(&tokens::department_dispatcher("gongan")).find_responders(request.clone()).await.unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
    let dispatch = app.client(&tokens::service("minhu-dispatch")).find_responders(request).await;
    assert!(dispatch.is_ok(), "dispatch asks on the department's behalf");
}

#[tokio::test]
async fn a_designation_is_checked_person_by_person() {
    let app = TestApp::seeded().await;
    let mut dispatch = app.client(&tokens::service("minhu-dispatch"));
    let police = |i| seed::person_id(&seed::officer_number("zhongnanlu-gongan", i)).to_string();
    let judicial = seed::person_id(&seed::officer_number("zhongnanlu-sifa", 1)).to_string();
    let stranger = uuid::Uuid::new_v4().to_string();
    let verdict = dispatch
        .verify_designation(pb::VerifyDesignationRequest {
            department_id: "gongan".into(),
            person_ids: vec![police(1), police(2), judicial.clone(), police(1), stranger.clone()],
            qualification: common::Qualification::PoliceOfficer as i32,
            required_count: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!verdict.valid);
    assert_eq!(verdict.eligible_count, 2);
    let problems: Vec<Vec<pb::DesignationProblem>> = verdict.checks.iter().map(|c| c.problems().collect()).collect();
    use pb::DesignationProblem as P;
    assert_eq!(problems[0], []);
    assert_eq!(problems[2], [P::NotInDepartment, P::MissingQualification]);
    assert_eq!(problems[3], [P::Duplicate]);
    assert_eq!(problems[4], [P::NotFound]);

    let ok = dispatch
        .verify_designation(pb::VerifyDesignationRequest {
            department_id: "gongan".into(),
            person_ids: vec![police(1), police(2)],
            qualification: common::Qualification::PoliceOfficer as i32,
            required_count: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ok.valid);

    let empty = dispatch
        .verify_designation(pb::VerifyDesignationRequest { department_id: "gongan".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&empty), ["person_ids"]);
    let street = app
        .client(&tokens::street_dispatcher("zhongnanlu"))
        .verify_designation(pb::VerifyDesignationRequest {
            department_id: "gongan".into(),
            person_ids: vec![police(1)],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(street.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn loading_the_seed_twice_changes_nothing() {
    let app = TestApp::spawn().await;
    let first = minhu_roster::seed::load(&app.pool).await.unwrap();
    assert!(first.inserted > 400, "{first:?}");
    assert_eq!(first.existing, 0);
    let people = app.count("people").await;
    assert!((300..=400).contains(&people), "a few hundred people: {people}");
    let second = minhu_roster::seed::load(&app.pool).await.unwrap();
    assert_eq!(second.inserted, 0);
    assert_eq!(second.existing, first.inserted);
    assert_eq!(app.count("people").await, people);
    assert_eq!(app.count("stations").await, 14 * 5);
    assert_eq!(app.count("secondments").await, 3);
}
