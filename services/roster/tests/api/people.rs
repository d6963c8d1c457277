//! People and secondments: who may see and change them.

use minhu_grpc::{OrgKind, Organization, Principal, Role};
use minhu_proto::{common::v1 as common, roster::v1 as pb};
use minhu_roster::seed;
use minhu_testkit::tokens;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::{TestApp, request_id, violated_fields};

fn leader_of(department: &str) -> Principal {
    Principal::new(
        format!("{department}-leader"),
        [Role::DepartmentLeader],
        Organization::new(OrgKind::Department, department),
    )
}

fn officer(name: &str, number: &str) -> pb::Person {
    pb::Person {
        name: name.into(),
        employee_number: number.into(),
        department_id: "gongan".into(),
        station_id: "zhongnanlu-gongan".into(),
        qualifications: vec![common::Qualification::PoliceOfficer as i32],
        phone: "13912345678".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_department_leader_hires_updates_and_deactivates_its_people() {
    let app = TestApp::seeded().await;
    let mut leader = app.client(&leader_of("gongan"));
    let request = pb::CreatePersonRequest { person: Some(officer("周警官", "GA-9001")), request_id: request_id() };
    let created = leader.create_person(request.clone()).await.unwrap().into_inner();
    assert_eq!(created.phone, "13912345678", "the department's leader sees the phone");
    assert!(!created.phone_masked);
    assert_eq!(leader.create_person(request).await.unwrap().into_inner(), created, "a retry returns the first person");

    let duplicate = pb::CreatePersonRequest { person: Some(officer("另一人", "GA-9001")), request_id: request_id() };
    assert_eq!(leader.create_person(duplicate).await.unwrap_err().code(), Code::AlreadyExists);

    // Echoing back the masked phone does not erase it.
    let updated = leader
        .update_person(pb::UpdatePersonRequest {
            person: Some(pb::Person {
                id: created.id.clone(),
                title: "副所长".into(),
                phone: "139****5678".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["title".into(), "phone".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.title.as_str(), updated.phone.as_str()), ("副所长", "13912345678"));

    let deactivated = leader
        .deactivate_person(pb::DeactivatePersonRequest {
            person_id: created.id.clone(),
            reason: "调离".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!deactivated.active);

    let mut other = app.client(&leader_of("sifa"));
    let refused = other
        .create_person(pb::CreatePersonRequest { person: Some(officer("某人", "GA-9002")), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn the_head_of_a_station_cannot_be_deactivated() {
    let app = TestApp::seeded().await;
    let head = seed::person_id(&seed::officer_number("zhongnanlu-gongan", 0)).to_string();
    let status = app
        .client(&leader_of("gongan"))
        .deactivate_person(pb::DeactivatePersonRequest {
            person_id: head,
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn bad_people_are_refused_field_by_field() {
    let app = TestApp::seeded().await;
    let bad = pb::Person {
        name: String::new(),
        employee_number: "x".repeat(40),
        department_id: "gongan".into(),
        street_id: "zhongnanlu".into(),
        phone: "call me maybe".into(),
        ..Default::default()
    };
    let status = app
        .admin()
        .create_person(pb::CreatePersonRequest { person: Some(bad.clone()), request_id: request_id() })
        .await
        .unwrap_err();
    let fields = violated_fields(&status);
    for field in ["person.name", "person.employee_number", "person.department_id", "person.phone"] {
        assert!(fields.iter().any(|f| f == field), "{field} missing from {fields:?}");
    }
    // A qualification the contract does not define is refused by the shared input screen,
    // before (and so without) the domain's own checks.
    let unknown = pb::Person { qualifications: vec![77], ..bad };
    let status = app
        .admin()
        .create_person(pb::CreatePersonRequest { person: Some(unknown), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["person.qualifications[0]"]);
    let wrong_station = pb::Person { station_id: "zhongnanlu-sifa".into(), ..officer("某人", "GA-1") };
    let status = app
        .admin()
        .create_person(pb::CreatePersonRequest { person: Some(wrong_station), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["person.station_id"]);
    let not_uuid = app.admin().get_person(pb::GetPersonRequest { person_id: "42".into() }).await.unwrap_err();
    assert_eq!(violated_fields(&not_uuid), ["person_id"]);
    let unknown =
        app.admin().get_person(pb::GetPersonRequest { person_id: uuid::Uuid::new_v4().to_string() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn phones_are_masked_for_those_without_need_to_know() {
    let app = TestApp::seeded().await;
    let officer = seed::person_id(&seed::officer_number("zhongnanlu-gongan", 1)).to_string();
    let get = |principal: Principal| {
        let mut client = app.client(&principal);
        let id = officer.clone();
        async move { client.get_person(pb::GetPersonRequest { person_id: id }).await.unwrap().into_inner() }
    };
    let by_dispatcher = get(tokens::department_dispatcher("gongan")).await;
    assert!(!by_dispatcher.phone_masked);
    let by_street = get(tokens::street_dispatcher("zhongnanlu")).await;
    assert!(by_street.phone_masked, "the street reads the station's people, not their phones");
    assert_eq!(by_street.phone.len(), by_dispatcher.phone.len());
    assert!(by_street.phone.contains("****"));
    assert_eq!(&by_street.phone[7..], &by_dispatcher.phone[7..]);
    let by_self = get(tokens::field_officer(&officer, "gongan")).await;
    assert!(!by_self.phone_masked, "one's own phone");
    assert!(get(tokens::district_operator()).await.phone_masked);
    assert!(!get(tokens::district_admin()).await.phone_masked);
}

#[tokio::test]
async fn people_are_visible_only_to_those_they_belong_to() {
    let app = TestApp::seeded().await;
    let officer = seed::person_id(&seed::officer_number("zhongnanlu-gongan", 2)).to_string();
    let ziyang = app
        .client(&tokens::street_dispatcher("ziyang"))
        .get_person(pb::GetPersonRequest { person_id: officer.clone() })
        .await;
    assert_eq!(ziyang.unwrap_err().code(), Code::PermissionDenied, "another street's station");
    let sifa = app
        .client(&tokens::department_dispatcher("sifa"))
        .get_person(pb::GetPersonRequest { person_id: officer.clone() })
        .await;
    assert_eq!(sifa.unwrap_err().code(), Code::PermissionDenied, "another department");
    let discipline = app.client(&tokens::discipline_inspector()).list_people(pb::ListPeopleRequest::default()).await;
    assert_eq!(discipline.unwrap_err().code(), Code::PermissionDenied);

    // A street sees its own staff, the staff of the stations serving it and its secondees.
    let mut street = app.client(&tokens::street_dispatcher("zhongnanlu"));
    let listed =
        street.list_people(pb::ListPeopleRequest { page_size: 500, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(listed.total_size, 7 + 5 * 4, "7 staff and 5 stations of 4");
    assert!(listed.people.iter().all(|p| p.street_id == "zhongnanlu" || p.station_id.starts_with("zhongnanlu-")));

    let batch = street
        .batch_get_people(pb::BatchGetPeopleRequest {
            person_ids: vec![officer.clone(), seed::person_id("zhongnanlu-staff-00").to_string()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.people[0].id, officer, "in the order asked");
    let foreign = street
        .batch_get_people(pb::BatchGetPeopleRequest {
            person_ids: vec![seed::person_id("ziyang-staff-00").to_string()],
        })
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied);
    let unknown = street
        .batch_get_people(pb::BatchGetPeopleRequest { person_ids: vec![uuid::Uuid::new_v4().to_string()] })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn people_page_by_name_with_filters() {
    let app = TestApp::seeded().await;
    let mut admin = app.admin();
    let filter = pb::ListPeopleRequest {
        department_id: "chengguan".into(),
        qualification: common::Qualification::LawEnforcementCertificate as i32,
        page_size: 9,
        ..Default::default()
    };
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_people(pb::ListPeopleRequest { page_token: token, ..filter.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 14 * 4);
        names.extend(page.people.iter().map(|p| (p.name.clone(), p.id.clone())));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(names.len(), 56);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    let heads = admin
        .list_people(pb::ListPeopleRequest {
            position: common::Position::StationHead as i32,
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(heads.total_size, 14 * 5);
    let by_number = admin
        .list_people(pb::ListPeopleRequest { query: "zhongnanlu-gongan-0".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_number.total_size, 4);
    let first =
        admin.list_people(pb::ListPeopleRequest { page_size: 1, ..Default::default() }).await.unwrap().into_inner();
    let mismatched = admin
        .list_people(pb::ListPeopleRequest {
            page_token: first.next_page_token,
            department_id: "sifa".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&mismatched), ["page_token"]);
}

#[tokio::test]
async fn secondments_follow_their_dates_and_do_not_overlap() {
    let app = TestApp::seeded().await;
    let mut leader = app.client(&leader_of("chengguan"));
    let officer = seed::person_id(&seed::officer_number("ziyang-chengguan", 2)).to_string();
    let date = |y, m, d| Some(common::Date { year: y, month: m, day: d });
    let secondment = pb::Secondment {
        kind: pb::SecondmentKind::Resident as i32,
        person_id: officer.clone(),
        department_id: "chengguan".into(),
        street_id: "shuiguohu".into(),
        center: common::StreetCenter::ComprehensiveLawEnforcementCenter as i32,
        start_date: date(2020, 1, 1),
        note: "常驻".into(),
        ..Default::default()
    };
    let created = leader
        .create_secondment(pb::CreateSecondmentRequest {
            secondment: Some(secondment.clone()),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.active);
    let overlap = pb::Secondment { start_date: date(2021, 6, 1), street_id: "zhongnanlu".into(), ..secondment.clone() };
    let status = leader
        .create_secondment(pb::CreateSecondmentRequest { secondment: Some(overlap), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    let seat_with_person = pb::Secondment { kind: pb::SecondmentKind::Seat as i32, ..secondment.clone() };
    let status = leader
        .create_secondment(pb::CreateSecondmentRequest { secondment: Some(seat_with_person), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["secondment.person_id"]);
    let bad_dates = pb::Secondment { end_date: date(2019, 1, 1), ..secondment.clone() };
    let status = leader
        .create_secondment(pb::CreateSecondmentRequest { secondment: Some(bad_dates), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["secondment.end_date"]);
    let february_30 = pb::Secondment { start_date: date(2021, 2, 30), ..secondment };
    let status = leader
        .create_secondment(pb::CreateSecondmentRequest { secondment: Some(february_30), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["secondment.start_date"]);

    // The street now sees its secondee among its people.
    let mut street = app.client(&tokens::street_dispatcher("shuiguohu"));
    street.get_person(pb::GetPersonRequest { person_id: officer.clone() }).await.unwrap();
    let listed = street.list_secondments(pb::ListSecondmentsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.secondments.len(), 1);
    let others = street
        .list_secondments(pb::ListSecondmentsRequest { street_id: "zhongnanlu".into(), ..Default::default() })
        .await;
    assert_eq!(others.unwrap_err().code(), Code::PermissionDenied);

    let noted = leader
        .update_secondment(pb::UpdateSecondmentRequest {
            secondment: Some(pb::Secondment {
                id: created.id.clone(),
                note: "常驻(城管)".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["note".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(noted.note, "常驻(城管)");

    // The street's leader may end it; it then leaves the street's view.
    let early = street_leader_client(&app)
        .end_secondment(pb::EndSecondmentRequest {
            secondment_id: created.id.clone(),
            end_date: date(2019, 12, 31),
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    let ended = street_leader_client(&app)
        .end_secondment(pb::EndSecondmentRequest {
            secondment_id: created.id.clone(),
            end_date: date(2024, 12, 31),
            reason: "期满".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!ended.active);
    let again = leader
        .end_secondment(pb::EndSecondmentRequest {
            secondment_id: created.id.clone(),
            end_date: date(2025, 1, 1),
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(
        street.get_person(pb::GetPersonRequest { person_id: officer }).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let fetched =
        street.get_secondment(pb::GetSecondmentRequest { secondment_id: created.id }).await.unwrap().into_inner();
    assert_eq!(fetched.end_date, date(2024, 12, 31));
}

fn street_leader_client(app: &TestApp) -> crate::helpers::Client {
    app.client(&tokens::street_leader("shuiguohu"))
}
