//! Departments and stations.

use minhu_proto::roster::v1 as pb;
use minhu_roster::seed;
use minhu_testkit::tokens;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::{TestApp, department, request_id, street, violated_fields};

#[tokio::test]
async fn departments_are_created_updated_filtered_and_deactivated_by_the_district() {
    let app = TestApp::spawn().await;
    let mut admin = app.admin();
    let created = admin
        .create_department(pb::CreateDepartmentRequest {
            department: Some(department("fangguan", pb::DepartmentKind::Housing)),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.kind(), pb::DepartmentKind::Housing);
    admin
        .create_department(pb::CreateDepartmentRequest {
            department: Some(department("gongan", pb::DepartmentKind::Police)),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let police = admin
        .list_departments(pb::ListDepartmentsRequest { kind: pb::DepartmentKind::Police as i32, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(police.departments.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["gongan"]);

    let renamed = admin
        .update_department(pb::UpdateDepartmentRequest {
            department: Some(pb::Department {
                id: "fangguan".into(),
                name: "武昌区房屋管理局".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["name".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((renamed.name.as_str(), renamed.kind()), ("武昌区房屋管理局", pb::DepartmentKind::Housing));

    let gone = admin
        .deactivate_department(pb::DeactivateDepartmentRequest {
            department_id: "fangguan".into(),
            reason: "机构改革".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!gone.active);
    let fetched =
        admin.get_department(pb::GetDepartmentRequest { department_id: "fangguan".into() }).await.unwrap().into_inner();
    assert!(!fetched.active, "deactivated departments stay readable");

    let unspecified = admin
        .create_department(pb::CreateDepartmentRequest {
            department: Some(department("nokind", pb::DepartmentKind::Unspecified)),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&unspecified), ["department.kind"]);
    let unknown_filter =
        admin.list_departments(pb::ListDepartmentsRequest { kind: 999, ..Default::default() }).await.unwrap_err();
    assert_eq!(violated_fields(&unknown_filter), ["kind"]);

    let refused = app
        .client(&tokens::department_dispatcher("gongan"))
        .update_department(pb::UpdateDepartmentRequest {
            department: Some(pb::Department { id: "gongan".into(), name: "x".into(), ..Default::default() }),
            update_mask: None,
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_department_in_use_cannot_be_deactivated() {
    let app = TestApp::seeded().await;
    let status = app
        .admin()
        .deactivate_department(pb::DeactivateDepartmentRequest {
            department_id: "gongan".into(),
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("active stations"), "{}", status.message());
}

#[tokio::test]
async fn a_department_leader_manages_its_stations_and_names_their_heads() {
    let app = TestApp::seeded().await;
    let leader = minhu_grpc::Principal::new(
        "gongan-leader",
        [minhu_grpc::Role::DepartmentLeader],
        minhu_grpc::Organization::new(minhu_grpc::OrgKind::Department, "gongan"),
    );
    let mut gongan = app.client(&leader);
    let station = pb::Station {
        id: "zhongnanlu-gongan-2".into(),
        department_id: "gongan".into(),
        street_id: "zhongnanlu".into(),
        served_street_ids: vec!["shuiguohu".into(), "zhongnanlu".into()],
        name: "中南路第二派出所".into(),
        kind: pb::StationKind::PoliceStation as i32,
        ..Default::default()
    };
    let created = gongan
        .create_station(pb::CreateStationRequest { station: Some(station.clone()), request_id: request_id() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.served_street_ids, ["shuiguohu"], "the own street is not repeated among served streets");

    let foreign = pb::Station { id: "x-station".into(), department_id: "sifa".into(), ..station.clone() };
    let refused = gongan
        .create_station(pb::CreateStationRequest { station: Some(foreign), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let unknown_street =
        pb::Station { id: "y-station".into(), street_id: "atlantis".into(), served_street_ids: vec![], ..station };
    let missing = gongan
        .create_station(pb::CreateStationRequest { station: Some(unknown_street), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // The head must be on the station's staff.
    let outsider = seed::person_id(&seed::officer_number("zhongnanlu-gongan", 1)).to_string();
    let refused = gongan
        .update_station(pb::UpdateStationRequest {
            station: Some(pb::Station {
                id: "zhongnanlu-gongan-2".into(),
                head_person_id: outsider,
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["head_person_id".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["station.head_person_id"]);

    let existing_head = seed::person_id(&seed::officer_number("zhongnanlu-gongan", 0)).to_string();
    let station = gongan
        .get_station(pb::GetStationRequest { station_id: "zhongnanlu-gongan".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(station.head_person_id, existing_head);
    assert!(station.head_on_party_working_committee);
    let off = gongan
        .update_station(pb::UpdateStationRequest {
            station: Some(pb::Station { id: "zhongnanlu-gongan".into(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["head_on_party_working_committee".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!off.head_on_party_working_committee);

    let stations = gongan
        .list_stations(pb::ListStationsRequest {
            street_id: "shuiguohu".into(),
            department_id: "gongan".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = stations.stations.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["shuiguohu-gongan", "zhongnanlu-gongan-2"], "served streets count");

    let staffed = gongan
        .deactivate_station(pb::DeactivateStationRequest {
            station_id: "zhongnanlu-gongan".into(),
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(staffed.code(), Code::FailedPrecondition);
    let empty = gongan
        .deactivate_station(pb::DeactivateStationRequest {
            station_id: "zhongnanlu-gongan-2".into(),
            reason: "merged".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!empty.active);
}

#[tokio::test]
async fn the_station_of_a_department_serving_a_street_is_found() {
    let app = TestApp::seeded().await;
    let mut client = app.client(&tokens::street_dispatcher("zhongnanlu"));
    let police = client
        .find_station(pb::FindStationRequest { department_id: "gongan".into(), street_id: "zhongnanlu".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(police.id, "zhongnanlu-gongan");
    assert_eq!(police.kind(), pb::StationKind::PoliceStation);
    let none = client
        .find_station(pb::FindStationRequest { department_id: "guihua".into(), street_id: "zhongnanlu".into() })
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::NotFound, "planning has no station in the streets");
    let empty = client.find_station(pb::FindStationRequest::default()).await.unwrap_err();
    assert_eq!(violated_fields(&empty), ["department_id", "street_id"]);
}

#[tokio::test]
async fn an_inactive_street_takes_no_new_stations() {
    let app = TestApp::spawn().await;
    let mut admin = app.admin();
    admin
        .create_street(pb::CreateStreetRequest {
            street: Some(street("old", "旧街道", 30.5, 114.3)),
            request_id: request_id(),
        })
        .await
        .unwrap();
    admin
        .create_department(pb::CreateDepartmentRequest {
            department: Some(department("gongan", pb::DepartmentKind::Police)),
            request_id: request_id(),
        })
        .await
        .unwrap();
    admin
        .deactivate_street(pb::DeactivateStreetRequest {
            street_id: "old".into(),
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let station = pb::Station {
        id: "old-gongan".into(),
        department_id: "gongan".into(),
        street_id: "old".into(),
        name: "旧派出所".into(),
        kind: pb::StationKind::PoliceStation as i32,
        ..Default::default()
    };
    let status = admin
        .create_station(pb::CreateStationRequest { station: Some(station), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(app.count("stations").await, 0);
}
