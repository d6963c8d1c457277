//! No one where they don't belong (#14): confidentiality after sharing, DUPLICATE triage of
//! foreign cases, masked reporters that must not round-trip, and trail digests that must
//! not link one reporter's cases.

use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tonic::Code;

use crate::helpers::*;

async fn trail(app: &TestApp, case_id: &str) -> Vec<pb::TrailEntry> {
    app.street()
        .list_trail_entries(pb::ListTrailEntriesRequest {
            case_id: case_id.into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

fn after(entry: &pb::TrailEntry) -> serde_json::Value {
    serde_json::from_str(&entry.after_json).unwrap()
}

fn update_reporter(case_id: &str, reporter: pb::Reporter) -> pb::UpdateCaseRequest {
    pb::UpdateCaseRequest {
        case: Some(pb::Case { id: case_id.into(), reporter: Some(reporter), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["reporter".into()] }),
        request_id: request_id(),
    }
}

fn reporter(confidential: bool) -> pb::Reporter {
    pb::Reporter {
        name: "张三".into(),
        phone: "13812341234".into(),
        id_number: "420106199001011234".into(),
        confidential,
        masked: false,
    }
}

#[tokio::test]
async fn confidentiality_asked_after_sharing_masks_the_reporter_for_the_department_and_revokes_the_share() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["gongan"]).await;
    let call = app.sign(&calls[0]).await;
    app.street()
        .share_reporter_contact(pb::ShareReporterContactRequest { call_id: call.id.clone(), request_id: request_id() })
        .await
        .unwrap();
    let police = || app.department("gongan");
    let seen = police().get_case(pb::GetCaseRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    assert_eq!(seen.reporter.unwrap().phone, "13812341234", "shared: the police see the phone");

    app.street().update_case(update_reporter(&case.id, reporter(true))).await.unwrap();

    let seen = police().get_case(pb::GetCaseRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    let shown = seen.reporter.unwrap();
    assert_eq!((shown.name.as_str(), shown.phone.as_str()), ("张*", "138****1234"));
    assert!(shown.masked && shown.confidential);
    let call_now = police().get_call(pb::GetCallRequest { call_id: call.id.clone() }).await.unwrap().into_inner();
    assert!(!call_now.contact_shared, "the share is withdrawn");
    let updated =
        trail(&app, &case.id).await.into_iter().rev().find(|e| e.event_type == pb::EventType::CaseUpdated as i32);
    assert_eq!(
        after(&updated.expect("the update is on the trail"))["contact_shares_revoked"],
        serde_json::json!(["gongan"])
    );
    // Sharing again is refused: the reporter asked for confidentiality.
    let e = app
        .street()
        .share_reporter_contact(pb::ShareReporterContactRequest { call_id: call.id.clone(), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // The street itself still sees everything.
    assert_eq!(app.case(&case.id).await.reporter.unwrap().phone, "13812341234");
}

/// The status with `id` replaced, so answers about two different ids can be compared.
fn normalised(e: &tonic::Status, id: &str) -> (Code, String, Vec<u8>) {
    let details = String::from_utf8_lossy(e.details()).replace(id, "<id>").into_bytes();
    (e.code(), e.message().replace(id, "<id>"), details)
}

fn duplicate(case_id: &str, of: &str) -> pb::TriageCaseRequest {
    pb::TriageCaseRequest {
        case_id: case_id.into(),
        decision: pb::TriageDecision::Decline as i32,
        reason: "重复诉求".into(),
        decline_reason: pb::DeclineReason::Duplicate as i32,
        duplicate_of_case_id: of.into(),
        request_id: request_id(),
    }
}

#[tokio::test]
async fn a_duplicate_of_another_streets_case_answers_exactly_like_a_missing_one_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let ours = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    let theirs = app
        .client(&tokens::street_dispatcher("shuiguohu"))
        .create_case(intake_elsewhere(&request_id()))
        .await
        .unwrap()
        .into_inner();
    let their_trail = app
        .client(&tokens::street_dispatcher("shuiguohu"))
        .list_trail_entries(pb::ListTrailEntriesRequest {
            case_id: theirs.id.clone(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .len();
    let missing = uuid::Uuid::now_v7().to_string();

    let foreign = app.street().triage_case(duplicate(&ours.id, &theirs.id)).await.unwrap_err();
    let absent = app.street().triage_case(duplicate(&ours.id, &missing)).await.unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound, "{foreign:?}");
    assert_eq!(normalised(&foreign, &theirs.id), normalised(&absent, &missing), "foreign = missing, byte for byte");

    let after_theirs = app
        .client(&tokens::street_dispatcher("shuiguohu"))
        .get_case(pb::GetCaseRequest { case_id: theirs.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(after_theirs.related_case_ids.is_empty(), "nothing written into the other street's case");
    let now_len = app
        .client(&tokens::street_dispatcher("shuiguohu"))
        .list_trail_entries(pb::ListTrailEntriesRequest {
            case_id: theirs.id.clone(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .len();
    assert_eq!(now_len, their_trail);
    assert_eq!(app.case(&ours.id).await.state, pb::CaseState::Received as i32, "our case is not triaged either");
}

#[tokio::test]
async fn a_duplicate_of_an_own_case_links_both_and_is_on_both_trails() {
    let app = TestApp::spawn().await;
    let first = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    // Another category, so intake does not link the two by itself.
    let mut other = intake(&request_id());
    if let Some(c) = other.case.as_mut() {
        c.category = "市场监管/无照经营".into();
    }
    let repeat = app.street().create_case(other).await.unwrap().into_inner();
    assert!(repeat.related_case_ids.is_empty());
    let before = trail(&app, &first.id).await.len();
    let triaged = app.street().triage_case(duplicate(&repeat.id, &first.id)).await.unwrap().into_inner();
    assert_eq!(triaged.state, pb::CaseState::Declined as i32);
    assert!(app.case(&first.id).await.related_case_ids.contains(&repeat.id));
    let entries = trail(&app, &first.id).await;
    assert_eq!(entries.len(), before + 1);
    let last = entries.last().unwrap();
    assert_eq!(last.event_type, pb::EventType::CasesLinked as i32);
    assert_eq!(after(last)["related_case_id"], serde_json::json!(repeat.id));
}

#[tokio::test]
async fn the_district_cannot_overwrite_the_reporter_it_sees_masked() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let district = app.client(&tokens::district_admin());
    let seen = district.clone().get_case(pb::GetCaseRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    let masked = seen.reporter.clone().unwrap();
    assert!(masked.masked);
    // Sending back what it sees (the masks) would destroy the real data: refused.
    let e = district.clone().update_case(update_reporter(&case.id, masked)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let real = app.case(&case.id).await.reporter.unwrap();
    assert_eq!((real.name.as_str(), real.phone.as_str()), ("张三", "13812341234"), "the real data survives");
    assert_eq!(real.id_number, "420106199001011234");
    // Other corrections by the district still work.
    let title = pb::UpdateCaseRequest {
        case: Some(pb::Case {
            id: case.id.clone(), title: "水泵房占用（区级更正）".into(), ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["title".into()] }),
        request_id: request_id(),
    };
    district.clone().update_case(title).await.unwrap();
    assert_eq!(app.case(&case.id).await.title, "水泵房占用（区级更正）");
}

#[tokio::test]
async fn the_trail_digest_of_one_reporter_differs_from_case_to_case() {
    let app = TestApp::spawn().await;
    let a = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    let b = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    let digest = |entries: Vec<pb::TrailEntry>| after(&entries[0])["reporter_digest"].clone();
    let (da, db) = (digest(trail(&app, &a.id).await), digest(trail(&app, &b.id).await));
    assert!(da.is_string(), "the intake entry carries a digest");
    assert_ne!(da, db, "the same reporter on two cases must not be linkable through the trail");
}

#[tokio::test]
async fn two_spellings_of_one_person_are_one_person_named_twice_never_internal() {
    let app = TestApp::spawn().await;
    let (_, calls) = app.called_case(&["gongan"]).await;
    let call = app.sign(&calls[0]).await;
    let person = officer("gongan");
    let upper = format!("{{{}}}", person.to_uppercase());
    let designate = |ids: Vec<String>| {
        let mut client = app.department("gongan");
        let call_id = call.id.clone();
        async move {
            client
                .designate_responders(pb::DesignateRespondersRequest {
                    call_id,
                    person_ids: ids,
                    request_id: request_id(),
                })
                .await
        }
    };
    let e = designate(vec![person.clone(), upper.clone()]).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("person_ids[1]"), "{}", e.message());
    // One unusual spelling alone is the person, stored canonically.
    let designated = designate(vec![upper]).await.unwrap().into_inner();
    assert_eq!(designated.designations[0].person.as_ref().unwrap().id, person);
}

#[tokio::test]
async fn appraisals_identity_reads_the_event_feed_and_nothing_else() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let appraisal = app.client(&tokens::service("appraisal"));
    let e = appraisal.clone().get_case(pb::GetCaseRequest { case_id: case.id.clone() }).await.unwrap_err();
    let missing = uuid::Uuid::now_v7().to_string();
    let absent = appraisal.clone().get_case(pb::GetCaseRequest { case_id: missing.clone() }).await.unwrap_err();
    assert_eq!(normalised(&e, &case.id), normalised(&absent, &missing), "a case is as missing as an unknown one");
    let e = appraisal.clone().list_cases(pb::ListCasesRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = appraisal
        .clone()
        .list_trail_entries(pb::ListTrailEntriesRequest {
            case_id: case.id.clone(),
            page_size: 10,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // The feed it needs still works.
    let mut feed = appraisal.clone().stream_events(pb::StreamEventsRequest::default()).await.unwrap().into_inner();
    let first = tokio_stream::StreamExt::next(&mut feed).await.unwrap().unwrap();
    assert!(first.head_sequence >= 2);
}
