//! Correcting a case (UpdateCase with a field mask) and its repeat links (重复诉求).

use minhu_grpc::{OrgKind, Organization, Principal, Role};
use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

fn update(case: pb::Case, paths: &[&str]) -> pb::UpdateCaseRequest {
    pb::UpdateCaseRequest { case: Some(case), update_mask: mask(paths), request_id: request_id() }
}

fn bad_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect()
}

#[tokio::test]
async fn an_update_changes_only_the_masked_fields_and_is_recorded() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let trail = app.trail_len(&case.id).await;
    let mut edited = case.clone();
    edited.title = "海运宿舍水泵房被占用作商铺".into();
    edited.urgency = pb::Urgency::Urgent as i32;
    edited.description = "not in the mask: ignored".into();
    edited.state = pb::CaseState::Closed as i32;
    let request = update(edited, &["title", "urgency"]);
    let updated = app.street().update_case(request.clone()).await.unwrap().into_inner();
    assert_eq!(updated.title, "海运宿舍水泵房被占用作商铺");
    assert_eq!(updated.urgency, pb::Urgency::Urgent as i32);
    assert_eq!(updated.description, case.description);
    assert_eq!(updated.state, pb::CaseState::Triaged as i32);
    assert_eq!(app.trail_len(&case.id).await, trail + 1);
    // A retry answers the same and records nothing more.
    assert_eq!(app.street().update_case(request).await.unwrap().into_inner(), updated);
    assert_eq!(app.trail_len(&case.id).await, trail + 1);

    let event = app.events_of(&case.id).await.pop().unwrap();
    assert_eq!(event.event_type, pb::EventType::CaseUpdated as i32);
    let Some(pb::event::Payload::CaseUpdated(payload)) = event.payload else { panic!() };
    assert_eq!(payload.updated_paths, ["title", "urgency"]);
    // The new title is searchable.
    let found = app
        .street()
        .list_cases(pb::ListCasesRequest {
            filter: Some(pb::CaseFilter { query: "作商铺".into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.total_size, 1);

    // Unchanged values are no change: nothing is recorded.
    let same = app.street().update_case(update(updated.clone(), &["title"])).await.unwrap().into_inner();
    assert_eq!(same, updated);
    assert_eq!(app.trail_len(&case.id).await, trail + 1);
}

#[tokio::test]
async fn an_update_needs_a_mask_of_correctable_fields_and_valid_values() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let before = (app.case(&case.id).await, app.trail_len(&case.id).await);
    let mut edited = case.clone();
    edited.title = "新标题".into();

    let e = app.street().update_case(update(edited.clone(), &[])).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["update_mask"]);
    let e = app.street().update_case(update(edited.clone(), &["title", "state"])).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["update_mask"]);
    let e = app.street().update_case(update(edited.clone(), &["street_id"])).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["update_mask"]);
    let mut blank = edited.clone();
    blank.title = " ".into();
    blank.reporter.as_mut().unwrap().phone.clear();
    let e = app.street().update_case(update(blank, &["title", "reporter"])).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["case.title", "case.reporter.phone"]);
    let mut nowhere = edited.clone();
    nowhere.id = "not-a-case".into();
    let e = app.street().update_case(update(nowhere, &["title"])).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["case.id"]);
    assert_eq!((app.case(&case.id).await, app.trail_len(&case.id).await), before);
}

#[tokio::test]
async fn a_corrected_place_stays_in_the_case_street_and_is_placed_again() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let mut moved = case.clone();
    moved.place = Some(pb::Place { address: "水果湖街某处".into(), location: point(SHUIGUOHU) });
    let e = app.street().update_case(update(moved, &["place"])).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["case.place.location"]);
    let mut outside = case.clone();
    outside.place = Some(pb::Place { address: "北京".into(), location: point((39.9, 116.4)) });
    let e = app.street().update_case(update(outside, &["place"])).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["case.place.location"]);

    // A few metres away, in the same street: the community comes from the roster again.
    let mut nearby = case.clone();
    nearby.community_id = "left-as-is".into();
    nearby.place = Some(pb::Place {
        address: "中南路街海运宿舍3栋水泵房东侧".into(),
        location: point((PUMP_ROOM.0 + 0.0001, PUMP_ROOM.1)),
    });
    let updated = app.street().update_case(update(nearby, &["place"])).await.unwrap().into_inner();
    assert_eq!(updated.place.unwrap().address, "中南路街海运宿舍3栋水泵房东侧");
    assert_eq!(updated.community_id, "zhongnanlu-haiyun");
}

#[tokio::test]
async fn a_corrected_reporter_is_sealed_and_reaches_the_trail_only_as_a_digest() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let mut edited = case.clone();
    edited.reporter = Some(pb::Reporter {
        name: "张三".into(),
        phone: "13900001111".into(),
        id_number: "420106199001011234".into(),
        confidential: true,
        masked: false,
    });
    let updated = app.street().update_case(update(edited, &["reporter"])).await.unwrap().into_inner();
    let reporter = updated.reporter.unwrap();
    assert_eq!((reporter.phone.as_str(), reporter.confidential), ("13900001111", true));
    let district = app.client(&tokens::district_operator());
    let seen = district.clone().get_case(pb::GetCaseRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    assert_eq!(seen.reporter.unwrap().phone, "139****1111");
    let trail = app
        .street()
        .list_trail_entries(pb::ListTrailEntriesRequest { case_id: case.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let entry = trail.entries.last().unwrap();
    assert_eq!(entry.event_type, pb::EventType::CaseUpdated as i32);
    assert!(entry.after_json.contains("reporter_digest"));
    assert!(!entry.after_json.contains("13900001111") && !entry.before_json.contains("13812341234"));
}

#[tokio::test]
async fn the_street_and_the_district_correct_a_case_but_not_a_finished_one() {
    let app = TestApp::spawn().await;
    let (case, _) = app.called_case(&["gongan"]).await;
    let mut edited = case.clone();
    edited.category = "城市管理/占道经营".into();
    let e = app.department("gongan").update_case(update(edited.clone(), &["category"])).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = app
        .client(&tokens::street_dispatcher("shuiguohu"))
        .update_case(update(edited.clone(), &["category"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = app
        .client(&Principal::new("grid-worker-1", [Role::GridWorker], Organization::new(OrgKind::Street, STREET)))
        .update_case(update(edited.clone(), &["category"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let updated = app
        .client(&tokens::district_operator())
        .update_case(update(edited.clone(), &["category"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.category, "城市管理/占道经营");

    let declined = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    app.street()
        .triage_case(pb::TriageCaseRequest {
            case_id: declined.id.clone(),
            decision: pb::TriageDecision::Decline as i32,
            reason: "重复诉求".into(),
            decline_reason: pb::DeclineReason::Duplicate as i32,
            duplicate_of_case_id: case.id.clone(),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let trail = app.trail_len(&declined.id).await;
    let mut late = declined.clone();
    late.title = "改标题".into();
    let e = app.street().update_case(update(late, &["title"])).await.unwrap_err();
    assert_eq!(reasons(&e), ["CASE_FINISHED"]);
    assert_eq!(app.trail_len(&declined.id).await, trail);
}

/// An intake at the pump room of another category: not a repeat of the helper's intake.
fn other_intake() -> pb::CreateCaseRequest {
    let mut request = intake(&request_id());
    request.case.as_mut().unwrap().category = "房屋安全/危房".into();
    request
}

fn link(case_id: &str, others: &[&str]) -> pb::LinkCasesRequest {
    pb::LinkCasesRequest {
        case_id: case_id.into(),
        related_case_ids: others.iter().map(|o| (*o).to_owned()).collect(),
        request_id: request_id(),
    }
}

fn unlink(case_id: &str, others: &[&str]) -> pb::UnlinkCasesRequest {
    pb::UnlinkCasesRequest {
        case_id: case_id.into(),
        related_case_ids: others.iter().map(|o| (*o).to_owned()).collect(),
        request_id: request_id(),
    }
}

#[tokio::test]
async fn links_are_symmetric_recorded_on_both_trails_and_undone_from_either_side() {
    let app = TestApp::spawn().await;
    let street = app.street();
    let a = street.clone().create_case(intake(&request_id())).await.unwrap().into_inner();
    let b = street.clone().create_case(other_intake()).await.unwrap().into_inner();
    assert!(b.related_case_ids.is_empty());
    let (ta, tb) = (app.trail_len(&a.id).await, app.trail_len(&b.id).await);

    let linked = street.clone().link_cases(link(&a.id, &[&b.id, &b.id])).await.unwrap().into_inner();
    assert_eq!(linked.related_case_ids, std::slice::from_ref(&b.id));
    assert_eq!(app.case(&b.id).await.related_case_ids, std::slice::from_ref(&a.id));
    assert_eq!((app.trail_len(&a.id).await, app.trail_len(&b.id).await), (ta + 1, tb + 1));
    for (case, other) in [(&a, &b), (&b, &a)] {
        let event = app.events_of(&case.id).await.pop().unwrap();
        assert_eq!(event.event_type, pb::EventType::CasesLinked as i32);
        let Some(pb::event::Payload::CaseLinksChanged(payload)) = event.payload else { panic!() };
        assert_eq!(payload.case_ids, std::slice::from_ref(&other.id));
    }
    // A retry answers the same; already linked cases are ignored: nothing more recorded.
    let request = link(&a.id, &[&b.id]);
    let first = street.clone().link_cases(request.clone()).await.unwrap().into_inner();
    assert_eq!(street.clone().link_cases(request).await.unwrap().into_inner(), first);
    street.clone().link_cases(link(&b.id, &[&a.id])).await.unwrap();
    assert_eq!((app.trail_len(&a.id).await, app.trail_len(&b.id).await), (ta + 1, tb + 1));
    // A case is no repeat of itself.
    let e = street.clone().link_cases(link(&a.id, &[&a.id])).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["related_case_ids[0]"]);
    let e = street.clone().link_cases(link(&a.id, &[])).await.unwrap_err();
    assert_eq!(bad_fields(&e), ["related_case_ids"]);

    // Unlinked from the other side: both directions go, both trails say so.
    let unlinked = street.clone().unlink_cases(unlink(&b.id, &[&a.id])).await.unwrap().into_inner();
    assert!(unlinked.related_case_ids.is_empty());
    assert!(app.case(&a.id).await.related_case_ids.is_empty());
    assert_eq!((app.trail_len(&a.id).await, app.trail_len(&b.id).await), (ta + 2, tb + 2));
    let event = app.events_of(&a.id).await.pop().unwrap();
    assert_eq!(event.event_type, pb::EventType::CasesUnlinked as i32);
    // Not linked any more: ignored.
    street.clone().unlink_cases(unlink(&b.id, &[&a.id])).await.unwrap();
    assert_eq!(app.trail_len(&a.id).await, ta + 2);
    for case in [&a, &b] {
        let v = street.clone().verify_trail(pb::VerifyTrailRequest { case_id: case.id.clone() }).await.unwrap();
        assert!(v.into_inner().verified);
    }
}

#[tokio::test]
async fn links_across_streets_are_for_the_district() {
    let app = TestApp::spawn().await;
    let here = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    let there = app
        .client(&tokens::street_dispatcher("shuiguohu"))
        .create_case(intake_elsewhere(&request_id()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(there.street_id, "shuiguohu");
    // The street cannot even see the other street's case; a department cannot link at all.
    let e = app.street().link_cases(link(&here.id, &[&there.id])).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = app.department("gongan").link_cases(link(&here.id, &[&there.id])).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM case_links").fetch_one(&app.pool).await.unwrap();
    assert_eq!(n, 0);
    let linked =
        app.client(&tokens::district_admin()).link_cases(link(&here.id, &[&there.id])).await.unwrap().into_inner();
    assert_eq!(linked.related_case_ids, std::slice::from_ref(&there.id));
    let seen_there = app
        .client(&tokens::street_dispatcher("shuiguohu"))
        .get_case(pb::GetCaseRequest { case_id: there.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen_there.related_case_ids, std::slice::from_ref(&here.id));
}
