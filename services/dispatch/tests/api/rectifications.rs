//! Reading rectifications (整改): one by id, and lists filtered by case, department,
//! state and overdue, a page at a time.

use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tonic::Code;

use crate::helpers::*;

fn list(case_id: &str) -> pb::ListRectificationsRequest {
    pb::ListRectificationsRequest { case_id: case_id.into(), ..Default::default() }
}

#[tokio::test]
async fn a_rectification_is_read_by_whoever_may_read_its_case() {
    let app = TestApp::spawn().await;
    let (case_id, rects) = app.rectifying_case(&["guihua"]).await;
    let rect = &rects[0];
    assert_eq!(app.case(&case_id).await.state, pb::CaseState::Rectifying as i32);
    let get = |id: &str| pb::GetRectificationRequest { rectification_id: id.into() };

    for reader in [app.street(), app.department("guihua"), app.client(&tokens::district_operator())] {
        let seen = reader.clone().get_rectification(get(&rect.id)).await.unwrap().into_inner();
        assert_eq!(&seen, rect);
    }
    assert_eq!(rect.state, pb::RectificationState::Open as i32);
    assert_eq!(rect.department_id, "guihua");
    assert!(!rect.task_id.is_empty() && !rect.rating_id.is_empty());
    for stranger in [app.client(&tokens::street_dispatcher("shuiguohu")), app.department("gongan")] {
        let e = stranger.clone().get_rectification(get(&rect.id)).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    }
    let e = app.street().get_rectification(get(&request_id())).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = app.street().get_rectification(get("nope")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Its feedback moves it along; Get follows.
    let feedback = app
        .department("guihua")
        .submit_feedback(pb::SubmitFeedbackRequest {
            task_id: rect.task_id.clone(),
            text: "已出具产权认定意见".into(),
            handling_opinion: "产权归业主共有".into(),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(feedback.is_rectification);
    let seen = app.street().get_rectification(get(&rect.id)).await.unwrap().into_inner();
    assert_eq!(seen.state, pb::RectificationState::FeedbackSubmitted as i32);
}

#[tokio::test]
async fn rectifications_are_listed_newest_first_by_filter_and_page() {
    let app = TestApp::spawn().await;
    let (case_id, rects) = app.rectifying_case(&["gongan", "chengguan"]).await;
    let street = app.street();

    let all = street.clone().list_rectifications(list(&case_id)).await.unwrap().into_inner();
    assert_eq!(all.total_size, 2);
    let ids: Vec<_> = all.rectifications.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, [rects[1].id.clone(), rects[0].id.clone()], "newest first");
    assert!(all.next_page_token.is_empty());

    // One at a time.
    let first = street
        .clone()
        .list_rectifications(pb::ListRectificationsRequest { page_size: 1, ..list(&case_id) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.rectifications.len(), 1);
    assert_eq!(first.total_size, 2);
    assert!(!first.next_page_token.is_empty());
    let second = street
        .clone()
        .list_rectifications(pb::ListRectificationsRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..list(&case_id)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.rectifications[0].id, rects[0].id);
    assert!(second.next_page_token.is_empty());
    // A token of another query is refused.
    let e = street
        .clone()
        .list_rectifications(pb::ListRectificationsRequest {
            page_token: first.next_page_token,
            department_id: "gongan".into(),
            ..list(&case_id)
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // By department, state and overdue.
    let police = street
        .clone()
        .list_rectifications(pb::ListRectificationsRequest { department_id: "gongan".into(), ..list("") })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(police.rectifications.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [rects[0].id.as_str()]);
    let open = street
        .clone()
        .list_rectifications(pb::ListRectificationsRequest {
            states: vec![pb::RectificationState::Open as i32],
            ..list("")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open.total_size, 2);
    let closed = street
        .clone()
        .list_rectifications(pb::ListRectificationsRequest {
            states: vec![pb::RectificationState::Closed as i32],
            ..list("")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.total_size, 0);
    let overdue = street
        .clone()
        .list_rectifications(pb::ListRectificationsRequest { overdue_only: true, ..list("") })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overdue.total_size, 0);
    let e = street
        .clone()
        .list_rectifications(pb::ListRectificationsRequest { states: vec![0], ..list("") })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Only what the caller may read: another street sees none; the district all.
    let other = app.client(&tokens::street_dispatcher("shuiguohu"));
    assert_eq!(other.clone().list_rectifications(list("")).await.unwrap().into_inner().total_size, 0);
    let district = app.client(&tokens::district_operator());
    assert_eq!(district.clone().list_rectifications(list("")).await.unwrap().into_inner().total_size, 2);
    let e = app.client(&tokens::discipline_inspector()).list_rectifications(list("")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}
