//! What personnel reads: street leaders and sections from the seed, and the leadership
//! history written with each change of a station's head or leadership team.

use minhu_proto::{common::v1 as common, roster::v1 as pb};
use minhu_roster::seed;
use minhu_testkit::tokens;
use tonic::Code;

use crate::helpers::{TestApp, request_id};

#[tokio::test]
async fn every_street_has_two_principal_leaders_leaders_in_charge_and_sections_linked_to_stations() {
    let app = TestApp::seeded().await;
    let mut street = app.client(&tokens::street_dispatcher("zhongnanlu"));
    for (street_id, _, _, _) in seed::STREETS {
        let leaders = street
            .list_street_leaders(pb::ListStreetLeadersRequest { street_id: street_id.into() })
            .await
            .unwrap()
            .into_inner()
            .leaders;
        let principal = leaders.iter().filter(|l| l.position() == common::Position::StreetPrincipalLeader).count();
        assert_eq!(principal, 2, "{street_id}: 书记 and 主任");
        let police = leaders
            .iter()
            .find(|l| l.areas_in_charge.contains(&(pb::DepartmentKind::Police as i32)))
            .expect("a leader in charge of 政法");
        assert_eq!(police.person_id, seed::person_id(&seed::staff_number(street_id, 1)).to_string());
    }
    let sections = street
        .list_street_sections(pb::ListStreetSectionsRequest {
            street_id: "zhongnanlu".into(),
            station_id: "zhongnanlu-gongan".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .sections;
    assert_eq!(sections.len(), 1, "{sections:?}");
    assert_eq!(sections[0].id, "zhongnanlu-pingan");
    assert_eq!(sections[0].station_ids, ["zhongnanlu-gongan", "zhongnanlu-sifa"]);
    let unknown =
        street.list_street_leaders(pb::ListStreetLeadersRequest { street_id: "nowhere".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn a_new_station_head_is_in_the_leadership_history_and_only_the_district_reads_it() {
    let app = TestApp::seeded().await;
    let mut admin = app.admin();
    let before =
        admin.list_leadership_changes(pb::ListLeadershipChangesRequest::default()).await.unwrap().into_inner().changes;
    assert!(before.is_empty(), "the seed records no history");
    let new_head = seed::person_id(&seed::officer_number("zhongnanlu-gongan", 2)).to_string();
    admin
        .update_station(pb::UpdateStationRequest {
            station: Some(pb::Station {
                id: "zhongnanlu-gongan".into(),
                head_person_id: new_head.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["head_person_id".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let changes =
        admin.list_leadership_changes(pb::ListLeadershipChangesRequest::default()).await.unwrap().into_inner().changes;
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].kind(), pb::LeadershipChangeKind::Left);
    assert_eq!(changes[0].person_id, seed::person_id(&seed::officer_number("zhongnanlu-gongan", 0)).to_string());
    assert_eq!(changes[1].kind(), pb::LeadershipChangeKind::Joined);
    assert_eq!(changes[1].person_id, new_head);
    assert_eq!(changes[1].street_id, "zhongnanlu");
    let after = admin
        .list_leadership_changes(pb::ListLeadershipChangesRequest {
            after_sequence: changes[0].sequence,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    assert_eq!(after.len(), 1);
    let street = app
        .client(&tokens::street_leader("zhongnanlu"))
        .list_leadership_changes(pb::ListLeadershipChangesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(street.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_person_made_a_leadership_team_member_is_in_the_history_and_so_is_their_leaving() {
    let app = TestApp::seeded().await;
    let mut admin = app.admin();
    let officer = seed::person_id(&seed::officer_number("zhongnanlu-sifa", 1)).to_string();
    let promote = |position: common::Position| pb::UpdatePersonRequest {
        person: Some(pb::Person { id: officer.clone(), position: position as i32, ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["position".into()] }),
        request_id: request_id(),
    };
    admin.update_person(promote(common::Position::StationLeadershipMember)).await.unwrap();
    admin.update_person(promote(common::Position::Staff)).await.unwrap();
    let changes =
        admin.list_leadership_changes(pb::ListLeadershipChangesRequest::default()).await.unwrap().into_inner().changes;
    let kinds: Vec<_> = changes.iter().map(|c| (c.kind(), c.position(), c.station_id.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (pb::LeadershipChangeKind::Joined, common::Position::StationLeadershipMember, "zhongnanlu-sifa"),
            (pb::LeadershipChangeKind::Left, common::Position::StationLeadershipMember, "zhongnanlu-sifa"),
        ]
    );
}
