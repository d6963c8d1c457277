//! Repeat clusters (重复诉求): a repeat joins its lead case, departments are called (and so
//! rated and scored) once per cluster, the street detaches and merges on the trail, and a
//! storm of appeals at one place stores one row per appeal.

use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

/// The same appeal about 100 m north of the pump room: a place of its own.
fn intake_nearby_but_apart() -> pb::CreateCaseRequest {
    let mut request = intake(&request_id());
    let place = request.case.as_mut().unwrap().place.as_mut().unwrap();
    place.location = point((PUMP_ROOM.0 + 0.0009, PUMP_ROOM.1));
    request
}

fn members(case_id: &str, page_size: i32, page_token: &str) -> pb::ListClusterMembersRequest {
    pb::ListClusterMembersRequest { case_id: case_id.into(), page_size, page_token: page_token.into() }
}

fn detach(case_id: &str, reason: &str) -> pb::DetachFromClusterRequest {
    pb::DetachFromClusterRequest { case_id: case_id.into(), reason: reason.into(), request_id: request_id() }
}

fn merge(case_id: &str, other: &str) -> pb::MergeClustersRequest {
    pb::MergeClustersRequest { case_id: case_id.into(), other_case_id: other.into(), request_id: request_id() }
}

#[tokio::test]
async fn a_repeat_joins_the_lead_case_which_counts_and_pages_its_members() {
    let app = TestApp::spawn().await;
    let street = app.street();
    let lead = street.clone().create_case(intake(&request_id())).await.unwrap().into_inner();
    assert_eq!((lead.lead_case_id.as_str(), lead.cluster_size), ("", 1));
    let mut repeats = Vec::new();
    for _ in 0..3 {
        let r = street.clone().create_case(intake(&request_id())).await.unwrap().into_inner();
        assert_eq!((r.lead_case_id.as_str(), r.cluster_size), (lead.id.as_str(), 0));
        assert_eq!(r.related_case_ids, std::slice::from_ref(&lead.id));
        repeats.push(r.id);
    }
    // The feed says which lead the appeal joined.
    let created = app.events_of(&repeats[0]).await.remove(0);
    let Some(pb::event::Payload::CaseCreated(c)) = created.payload else { panic!("{created:?}") };
    assert_eq!(c.lead_case_id, lead.id);
    // The lead shows its size, not its members' ids; they come through a paged list.
    let seen = app.case(&lead.id).await;
    assert_eq!(seen.cluster_size, 4);
    assert!(seen.related_case_ids.is_empty());
    let first = street.clone().list_cluster_members(members(&lead.id, 2, "")).await.unwrap().into_inner();
    assert_eq!(first.cluster_size, 4);
    let second =
        street.clone().list_cluster_members(members(&lead.id, 2, &first.next_page_token)).await.unwrap().into_inner();
    assert!(second.next_page_token.is_empty());
    let listed: Vec<_> = first.members.iter().chain(&second.members).map(|m| m.case_id.clone()).collect();
    assert_eq!(listed, repeats);
    assert!(first.members.iter().all(|m| m.state == pb::CaseState::Received as i32));
    // A repeat has no cluster to list: ask its lead.
    let e = street.clone().list_cluster_members(members(&repeats[0], 0, "")).await.unwrap_err();
    assert_eq!(reasons(&e), ["CASE_IS_REPEAT"]);
    // Another category, or 100 m away, is a lead of its own; no pairwise links are stored.
    let apart = street.clone().create_case(intake_nearby_but_apart()).await.unwrap().into_inner();
    assert_eq!((apart.lead_case_id.as_str(), apart.cluster_size), ("", 1));
    let mut other = intake(&request_id());
    other.case.as_mut().unwrap().category = "房屋安全/危房".into();
    let other = street.clone().create_case(other).await.unwrap().into_inner();
    assert_eq!(other.lead_case_id, "");
    let (links,): (i64,) = sqlx::query_as("SELECT count(*) FROM case_links").fetch_one(&app.pool).await.unwrap();
    assert_eq!(links, 0);
    // A reader that may not see the lead learns nothing about its cluster.
    let e = app.department("gongan").list_cluster_members(members(&lead.id, 0, "")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn a_clusters_departments_are_called_rated_and_scored_once_for_the_lead() {
    let app = TestApp::spawn().await;
    let (lead, calls) = app.called_case(&["gongan"]).await;
    assert_eq!(calls.len(), 1);
    let street = app.street();
    let repeat = street.clone().create_case(intake(&request_id())).await.unwrap().into_inner();
    assert_eq!(repeat.lead_case_id, lead.id);
    street
        .clone()
        .triage_case(pb::TriageCaseRequest {
            case_id: repeat.id.clone(),
            decision: pb::TriageDecision::StartCall as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    let now = app.now();
    let e = street
        .clone()
        .start_call(pb::StartCallRequest {
            case_id: repeat.id.clone(),
            calls: vec![call_to("gongan", now)],
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["CASE_IS_REPEAT"]);
    // The feed appraisal scores from holds one call for the whole cluster.
    let started: Vec<_> =
        app.events().await.into_iter().filter(|e| e.event_type == pb::EventType::CallStarted as i32).collect();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].case_id, lead.id);
    assert!(app.case(&repeat.id).await.called_department_ids.is_empty());
    // A lead that has called departments is not merged away into another cluster.
    let apart = street.clone().create_case(intake_nearby_but_apart()).await.unwrap().into_inner();
    let e = street.clone().merge_clusters(merge(&apart.id, &lead.id)).await.unwrap_err();
    assert_eq!(reasons(&e), ["CLUSTER_HAS_CALLS"]);
    // A duplicate declined at triage joins the cluster of the case it duplicates.
    let e = street
        .clone()
        .triage_case(pb::TriageCaseRequest {
            case_id: apart.id.clone(),
            decision: pb::TriageDecision::Decline as i32,
            reason: "同一水泵房".into(),
            decline_reason: pb::DeclineReason::Duplicate as i32,
            duplicate_of_case_id: repeat.id.clone(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(e.lead_case_id, lead.id);
    assert_eq!(app.case(&lead.id).await.cluster_size, 3);
}

#[tokio::test]
async fn the_street_detaches_and_merges_on_both_trails_and_the_feed() {
    let app = TestApp::spawn().await;
    let street = app.street();
    let a = street.clone().create_case(intake(&request_id())).await.unwrap().into_inner();
    let b = street.clone().create_case(intake(&request_id())).await.unwrap().into_inner();
    assert_eq!(b.lead_case_id, a.id);
    let (ta, tb) = (app.trail_len(&a.id).await, app.trail_len(&b.id).await);

    let e = street.clone().detach_from_cluster(detach(&b.id, " ")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let fields: Vec<_> = e.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["reason"]);
    let e = app.department("gongan").detach_from_cluster(detach(&b.id, "不同楼栋")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let request = detach(&b.id, "不同楼栋的水泵房");
    let detached = street.clone().detach_from_cluster(request.clone()).await.unwrap().into_inner();
    assert_eq!((detached.lead_case_id.as_str(), detached.cluster_size), ("", 1));
    assert!(detached.related_case_ids.is_empty());
    // A retry answers the same and records nothing more.
    assert_eq!(street.clone().detach_from_cluster(request).await.unwrap().into_inner(), detached);
    assert_eq!(app.case(&a.id).await.cluster_size, 1);
    assert_eq!((app.trail_len(&a.id).await, app.trail_len(&b.id).await), (ta + 1, tb + 1));
    for case in [&a.id, &b.id] {
        let event = app.events_of(case).await.pop().unwrap();
        assert_eq!(event.event_type, pb::EventType::CaseDetachedFromCluster as i32);
        let Some(pb::event::Payload::ClusterChanged(c)) = event.payload else { panic!("{event:?}") };
        assert_eq!(
            (c.lead_case_id.as_str(), c.case_ids.as_slice(), c.cluster_size),
            (a.id.as_str(), std::slice::from_ref(&b.id), 1)
        );
        assert_eq!(c.reason, "不同楼栋的水泵房");
    }
    let e = street.clone().detach_from_cluster(detach(&b.id, "again")).await.unwrap_err();
    assert_eq!(reasons(&e), ["CASE_NOT_IN_CLUSTER"]);

    // Merged back, with a repeat of b's own: both join a's cluster.
    let c = street.clone().create_case(intake_nearby_but_apart()).await.unwrap().into_inner();
    let c2 = street.clone().create_case(intake_nearby_but_apart()).await.unwrap().into_inner();
    assert_eq!(c2.lead_case_id, c.id);
    let merged = street.clone().merge_clusters(merge(&a.id, &c.id)).await.unwrap().into_inner();
    assert_eq!(merged.cluster_size, 3);
    assert_eq!(app.case(&c.id).await.lead_case_id, a.id);
    assert_eq!(app.case(&c2.id).await.lead_case_id, a.id);
    for case in [&a.id, &c.id] {
        let event = app.events_of(case).await.pop().unwrap();
        assert_eq!(event.event_type, pb::EventType::ClustersMerged as i32);
        let Some(pb::event::Payload::ClusterChanged(p)) = event.payload else { panic!("{event:?}") };
        assert_eq!(p.case_ids, [c.id.clone(), c2.id.clone()]);
        assert_eq!(p.cluster_size, 3);
    }
    let listed = street.clone().list_cluster_members(members(&a.id, 0, "")).await.unwrap().into_inner();
    assert_eq!(listed.members.len(), 2);
    // Only leads merge; a case does not merge with itself.
    let e = street.clone().merge_clusters(merge(&b.id, &c2.id)).await.unwrap_err();
    assert_eq!(reasons(&e), ["CASE_IS_REPEAT"]);
    let e = street.clone().merge_clusters(merge(&a.id, &a.id)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    for case in [&a.id, &b.id, &c.id] {
        let v = street.clone().verify_trail(pb::VerifyTrailRequest { case_id: case.clone() }).await.unwrap();
        assert!(v.into_inner().verified);
    }
    // The district may correct clusters too.
    app.client(&tokens::district_admin()).detach_from_cluster(detach(&c2.id, "误判")).await.unwrap();
    assert_eq!(app.case(&a.id).await.cluster_size, 2);
}

#[tokio::test]
async fn a_thousand_concurrent_appeals_at_one_place_form_one_cluster_of_one_row_each() {
    use futures_util::StreamExt as _;
    let app = TestApp::spawn().await;
    let n = 1000;
    let street = app.street();
    let results: Vec<pb::Case> = futures_util::stream::iter(0..n)
        .map(|_| {
            let street = street.clone();
            async move { street.clone().create_case(intake(&request_id())).await.unwrap().into_inner() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let leads: Vec<_> = results.iter().filter(|c| c.lead_case_id.is_empty()).collect();
    assert_eq!(leads.len(), 1, "concurrent appeals at one new place form one cluster");
    assert_eq!(app.case(&leads[0].id).await.cluster_size, n);
    // Storage is linear: one case row per appeal and no pairwise links.
    let (cases, links): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM case_links)")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((cases, links), (i64::from(n), 0));
}
