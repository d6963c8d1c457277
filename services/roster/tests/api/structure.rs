//! Streets, communities, grids and resolving a location.

use minhu_proto::roster::v1 as pb;
use minhu_testkit::tokens;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::{TestApp, point, request_id, street, violated_fields};

#[tokio::test]
async fn a_district_admin_creates_reads_and_updates_a_street() {
    let app = TestApp::spawn().await;
    let mut admin = app.admin();
    let created = admin
        .create_street(pb::CreateStreetRequest {
            street: Some(street("zhongnanlu", "中南路街道", 30.5375, 114.3378)),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.active);
    assert!(created.create_time.is_some());

    let fetched = admin.get_street(pb::GetStreetRequest { street_id: "zhongnanlu".into() }).await.unwrap().into_inner();
    assert_eq!(fetched, created);

    let updated = admin
        .update_street(pb::UpdateStreetRequest {
            street: Some(pb::Street {
                id: "zhongnanlu".into(),
                name: "中南路街".into(),
                radius_meters: 9.0,
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["name".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "中南路街");
    assert_eq!(updated.radius_meters, 1500.0, "fields outside the mask are untouched");
}

#[tokio::test]
async fn a_retried_create_returns_the_first_street_and_a_taken_code_is_already_exists() {
    let app = TestApp::spawn().await;
    let mut admin = app.admin();
    let request = pb::CreateStreetRequest {
        street: Some(street("ziyang", "紫阳街道", 30.535, 114.30)),
        request_id: request_id(),
    };
    let first = admin.create_street(request.clone()).await.unwrap().into_inner();
    let retry = admin.create_street(request.clone()).await.unwrap().into_inner();
    assert_eq!(first, retry);
    assert_eq!(app.count("streets").await, 1);

    let again = pb::CreateStreetRequest { request_id: request_id(), ..request };
    assert_eq!(admin.create_street(again).await.unwrap_err().code(), Code::AlreadyExists);
}

#[tokio::test]
async fn bad_streets_are_invalid_argument_with_field_details_and_write_nothing() {
    let app = TestApp::spawn().await;
    let mut admin = app.admin();
    let bad = pb::Street {
        id: "中南路".into(),
        name: "   ".into(),
        center: point(95.0, 214.0),
        radius_meters: -1.0,
        boundary: vec![pb::Street::default().center.unwrap_or_default(); 2],
        ..Default::default()
    };
    let status =
        admin.create_street(pb::CreateStreetRequest { street: Some(bad), request_id: request_id() }).await.unwrap_err();
    let fields = violated_fields(&status);
    for field in [
        "street.id",
        "street.name",
        "street.center.latitude",
        "street.center.longitude",
        "street.radius_meters",
        "street.boundary",
    ] {
        assert!(fields.iter().any(|f| f == field), "{field} missing from {fields:?}");
    }
    let long_name = street("okname", &"长".repeat(101), 30.0, 114.0);
    let status = admin
        .create_street(pb::CreateStreetRequest { street: Some(long_name), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["street.name"]);
    assert_eq!(app.count("streets").await, 0);

    let missing = admin.get_street(pb::GetStreetRequest { street_id: "nowhere".into() }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn only_the_district_admin_creates_streets_but_everyone_reads_them() {
    let app = TestApp::seeded().await;
    let new = || pb::CreateStreetRequest {
        street: Some(street("newstreet", "新街道", 30.5, 114.3)),
        request_id: request_id(),
    };
    for who in
        [tokens::street_leader("zhongnanlu"), tokens::department_dispatcher("gongan"), tokens::district_operator()]
    {
        let status = app.client(&who).create_street(new()).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{who:?}");
    }
    let listed = app
        .client(&tokens::field_officer("x", "gongan"))
        .list_streets(pb::ListStreetsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 14);
    let status = app.anonymous().list_streets(pb::ListStreetsRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn streets_page_through_every_street_once() {
    let app = TestApp::seeded().await;
    let mut admin = app.admin();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_streets(pb::ListStreetsRequest { page_size: 5, page_token: token.clone(), include_inactive: false })
            .await
            .unwrap()
            .into_inner();
        assert!(page.streets.len() <= 5);
        assert_eq!(page.total_size, 14);
        seen.extend(page.streets.into_iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen.len(), 14);
    assert_eq!(seen, sorted, "ordered by code, no duplicates");

    let bad = admin
        .list_streets(pb::ListStreetsRequest { page_token: "garbage!".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad), ["page_token"]);
}

#[tokio::test]
async fn a_street_with_communities_cannot_be_deactivated_until_they_are() {
    let app = TestApp::spawn().await;
    let mut admin = app.admin();
    admin
        .create_street(pb::CreateStreetRequest {
            street: Some(street("s1", "一街", 30.5, 114.3)),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let community = pb::Community {
        id: "s1-c1".into(),
        street_id: "s1".into(),
        name: "一社区".into(),
        center: point(30.5, 114.3),
        radius_meters: 500.0,
        ..Default::default()
    };
    admin
        .create_community(pb::CreateCommunityRequest { community: Some(community), request_id: request_id() })
        .await
        .unwrap();
    let status = admin
        .deactivate_street(pb::DeactivateStreetRequest {
            street_id: "s1".into(),
            reason: "merged".into(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(admin.get_street(pb::GetStreetRequest { street_id: "s1".into() }).await.unwrap().into_inner().active);

    admin
        .deactivate_community(pb::DeactivateCommunityRequest {
            community_id: "s1-c1".into(),
            reason: "merged".into(),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let street = admin
        .deactivate_street(pb::DeactivateStreetRequest {
            street_id: "s1".into(),
            reason: "merged".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!street.active);
    let listed = admin.list_streets(pb::ListStreetsRequest::default()).await.unwrap().into_inner();
    assert!(listed.streets.is_empty(), "inactive streets are hidden by default");
    let all = admin
        .list_streets(pb::ListStreetsRequest { include_inactive: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.streets.len(), 1);
    let update = admin
        .update_street(pb::UpdateStreetRequest {
            street: Some(pb::Street { id: "s1".into(), name: "x".into(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["name".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(update.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn a_street_leader_manages_communities_and_grids_of_their_own_street_only() {
    let app = TestApp::seeded().await;
    let mut leader = app.client(&tokens::street_leader("zhongnanlu"));
    let community = |street: &str, id: &str| pb::Community {
        id: id.into(),
        street_id: street.into(),
        name: "新社区".into(),
        center: point(30.54, 114.34),
        radius_meters: 300.0,
        ..Default::default()
    };
    leader
        .create_community(pb::CreateCommunityRequest {
            community: Some(community("zhongnanlu", "zhongnanlu-new")),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let other = leader
        .create_community(pb::CreateCommunityRequest {
            community: Some(community("ziyang", "ziyang-new")),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);

    let worker = minhu_roster::seed::person_id("zhongnanlu-staff-02").to_string();
    let outsider = minhu_roster::seed::person_id("ziyang-staff-02").to_string();
    let grid = |workers: Vec<String>| pb::Grid {
        id: "zhongnanlu-new-g1".into(),
        community_id: "zhongnanlu-new".into(),
        name: "第1网格".into(),
        center: point(30.54, 114.34),
        radius_meters: 100.0,
        grid_worker_person_ids: workers,
        ..Default::default()
    };
    let refused = leader
        .create_grid(pb::CreateGridRequest { grid: Some(grid(vec![outsider])), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["grid.grid_worker_person_ids[0]"]);
    let created = leader
        .create_grid(pb::CreateGridRequest { grid: Some(grid(vec![worker.clone()])), request_id: request_id() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.street_id, "zhongnanlu");

    let by_worker = leader
        .list_grids(pb::ListGridsRequest { grid_worker_person_id: worker, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_worker.grids.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), ["zhongnanlu-new-g1"]);

    let renamed = leader
        .update_grid(pb::UpdateGridRequest {
            grid: Some(pb::Grid {
                id: "zhongnanlu-new-g1".into(), name: "海运第1网格".into(), ..Default::default()
            }),
            update_mask: None,
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.name, "海运第1网格");
    assert_eq!(renamed.grid_worker_person_ids.len(), 1, "no mask: only populated fields change");
    let bad_mask = leader
        .update_grid(pb::UpdateGridRequest {
            grid: Some(pb::Grid { id: "zhongnanlu-new-g1".into(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["community_id".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_mask), ["update_mask"]);

    let gone = leader
        .deactivate_grid(pb::DeactivateGridRequest {
            grid_id: "zhongnanlu-new-g1".into(),
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!gone.active);
    let ziyang_leader = app.client(&tokens::street_leader("ziyang"));
    let mut ziyang_leader = ziyang_leader;
    let refused = ziyang_leader
        .deactivate_community(pb::DeactivateCommunityRequest {
            community_id: "zhongnanlu-new".into(),
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let communities = leader
        .list_communities(pb::ListCommunitiesRequest { street_id: "zhongnanlu".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(communities.total_size, 3);
    let haiyun = leader
        .get_community(pb::GetCommunityRequest { community_id: "zhongnanlu-haiyun".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(haiyun.name, "海运社区");
    let updated = leader
        .update_community(pb::UpdateCommunityRequest {
            community: Some(pb::Community { id: "zhongnanlu-new".into(), radius_meters: 450.0, ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["radius_meters".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.radius_meters, 450.0);
    let grid =
        leader.get_grid(pb::GetGridRequest { grid_id: "zhongnanlu-haiyun-g1".into() }).await.unwrap().into_inner();
    assert_eq!(grid.community_id, "zhongnanlu-haiyun");
}

#[tokio::test]
async fn a_point_resolves_to_its_street_community_and_grid() {
    let app = TestApp::seeded().await;
    let mut client = app.client(&tokens::street_dispatcher("zhongnanlu"));
    // The pump room of 海运宿舍小区: in 中南路街, 海运社区, its first grid.
    let resolved = client
        .resolve_location(pb::ResolveLocationRequest { location: point(30.5335, 114.3358) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.street_id, "zhongnanlu");
    assert_eq!(resolved.community_id, "zhongnanlu-haiyun");
    assert_eq!(resolved.grid_id, "zhongnanlu-haiyun-g1");
    assert!(!resolved.matched_by_boundary);

    let far = client.resolve_location(pb::ResolveLocationRequest { location: point(39.9, 116.4) }).await.unwrap_err();
    assert_eq!(far.code(), Code::NotFound, "Beijing is not in Wuchang");
    let bad = client.resolve_location(pb::ResolveLocationRequest { location: point(-91.0, 0.0) }).await.unwrap_err();
    assert_eq!(violated_fields(&bad), ["location.latitude"]);
    let missing = client.resolve_location(pb::ResolveLocationRequest { location: None }).await.unwrap_err();
    assert_eq!(violated_fields(&missing), ["location"]);
}

#[tokio::test]
async fn a_surveyed_boundary_decides_over_centres() {
    let app = TestApp::seeded().await;
    let mut admin = app.admin();
    // A small square street surveyed inside 中南路街's radius.
    let square = pb::Street {
        id: "enclave".into(),
        name: "飞地".into(),
        center: point(30.540, 114.340),
        radius_meters: 10.0,
        boundary: vec![
            point(30.539, 114.339).unwrap(),
            point(30.539, 114.341).unwrap(),
            point(30.541, 114.341).unwrap(),
            point(30.541, 114.339).unwrap(),
        ],
        ..Default::default()
    };
    admin.create_street(pb::CreateStreetRequest { street: Some(square), request_id: request_id() }).await.unwrap();
    let inside = admin
        .resolve_location(pb::ResolveLocationRequest { location: point(30.5401, 114.3401) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((inside.street_id.as_str(), inside.matched_by_boundary), ("enclave", true));
    assert_eq!(inside.community_id, "", "the enclave has no communities");
}
