//! The compliance report: decisions without or before the street's opinion, roster changes
//! of station leadership with no decision, and the Party Working Committee report.

use minhu_proto::{common::v1 as common, personnel::v1 as pb};
use minhu_testkit::tokens;
use tonic::Code;

use crate::helpers::*;

fn report(person: &str, solicitation_id: &str) -> pb::ReportDecisionRequest {
    pb::ReportDecisionRequest {
        report: Some(pb::DecisionReport {
            station_id: POLICE_STATION.into(),
            street_id: STREET.into(),
            person_id: person.into(),
            position: common::Position::StationHead as i32,
            matter: pb::PersonnelMatter::Punishment as i32,
            decision: "给予警告处分".into(),
            solicitation_id: solicitation_id.into(),
            ..Default::default()
        }),
        request_id: request_id(),
    }
}

async fn findings(app: &TestApp, kind: pb::FindingKind) -> Vec<pb::ComplianceFinding> {
    app.district()
        .list_compliance_findings(pb::ListComplianceFindingsRequest { kinds: vec![kind as i32], ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .findings
}

#[tokio::test]
async fn a_decision_without_a_solicitation_is_recorded_and_flagged_for_the_district() {
    let app = TestApp::spawn().await;
    let reported = app.police().report_decision(report(&head(POLICE_STATION), "")).await.unwrap().into_inner();
    assert!(!reported.compliant);
    assert_eq!(reported.finding(), pb::FindingKind::DecisionWithoutSolicitation);
    let flagged = findings(&app, pb::FindingKind::DecisionWithoutSolicitation).await;
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].decision_report_id, reported.id);
    assert_eq!(flagged[0].department_id, "gongan");
    // The street sees its own findings; another street none.
    let street =
        app.street().list_compliance_findings(pb::ListComplianceFindingsRequest::default()).await.unwrap().into_inner();
    assert_eq!(street.total_size, 1);
    let other = app
        .client(&tokens::street_leader("ziyang"))
        .list_compliance_findings(pb::ListComplianceFindingsRequest::default())
        .await;
    assert_eq!(other.unwrap().into_inner().total_size, 0);
    // Only the station's department reports its decisions.
    let by_street = app.street().report_decision(report(&head(POLICE_STATION), "")).await.unwrap_err();
    assert_eq!(by_street.code(), Code::PermissionDenied);
    let by_other = app.client(&department_leader("sifa")).report_decision(report(&head(POLICE_STATION), "")).await;
    assert_eq!(by_other.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(count(&app.pool, "decision_reports").await, 1);
}

#[tokio::test]
async fn a_decision_before_the_reply_is_flagged_and_one_after_it_is_compliant() {
    let app = TestApp::spawn().await;
    let filed = app.solicit(pb::PersonnelMatter::Punishment).await;
    let early = app.police().report_decision(report(&head(POLICE_STATION), &filed.id)).await.unwrap().into_inner();
    assert_eq!(early.finding(), pb::FindingKind::DecisionBeforeReply);
    app.street()
        .submit_opinion(pb::SubmitOpinionRequest {
            solicitation_id: filed.id.clone(),
            stance: common::OpinionStance::Agree as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    let after = app.police().report_decision(report(&head(POLICE_STATION), &filed.id)).await.unwrap().into_inner();
    assert!(after.compliant, "{after:?}");
    let other = app.police().report_decision(report(&officer(POLICE_STATION, 2), &filed.id)).await.unwrap_err();
    assert_eq!(fields(&other), ["report.solicitation_id"]);
}

#[tokio::test]
async fn a_head_change_in_the_roster_without_a_decision_is_flagged_and_one_with_a_decision_is_not() {
    let app = TestApp::spawn().await;
    // 司法所: the head replaced in the roster, nothing filed here.
    app.change_head("zhongnanlu-sifa", &officer("zhongnanlu-sifa", 1)).await;
    let checked =
        app.district().check_leadership_changes(pb::CheckLeadershipChangesRequest {}).await.unwrap().into_inner();
    assert_eq!((checked.checked, checked.flagged), (2, 2), "the old head left, the new one joined");
    let again =
        app.district().check_leadership_changes(pb::CheckLeadershipChangesRequest {}).await.unwrap().into_inner();
    assert_eq!((again.checked, again.flagged), (0, 0), "each change is checked once");
    let flagged = findings(&app, pb::FindingKind::RosterChangeWithoutDecision).await;
    assert_eq!(flagged.len(), 2);
    assert!(flagged.iter().all(|f| f.station_id == "zhongnanlu-sifa" && f.department_id == "sifa"));

    // 派出所: the new head's appointment went through the street's opinion first.
    let new_head = officer(POLICE_STATION, 2);
    let mut request = solicitation(pb::PersonnelMatter::Appointment, &request_id());
    request.solicitation.as_mut().unwrap().person_id = new_head.clone();
    let filed = app.police().create_opinion_solicitation(request).await.unwrap().into_inner();
    app.street()
        .submit_opinion(pb::SubmitOpinionRequest {
            solicitation_id: filed.id.clone(),
            stance: common::OpinionStance::Agree as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    app.police()
        .record_decision(pb::RecordDecisionRequest {
            solicitation_id: filed.id,
            decision: "任命为中南路派出所所长".into(),
            opinion_adopted: true,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    app.change_head(POLICE_STATION, &new_head).await;
    let checked =
        app.district().check_leadership_changes(pb::CheckLeadershipChangesRequest {}).await.unwrap().into_inner();
    assert_eq!((checked.checked, checked.flagged), (2, 1), "only the old head's removal lacks a decision");
    let flagged = findings(&app, pb::FindingKind::RosterChangeWithoutDecision).await;
    assert!(flagged.iter().any(|f| f.person_id == head(POLICE_STATION)));
    assert!(flagged.iter().all(|f| f.person_id != new_head));

    let by_street = app.street().check_leadership_changes(pb::CheckLeadershipChangesRequest {}).await.unwrap_err();
    assert_eq!(by_street.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn the_committee_report_lists_heads_not_on_the_party_working_committee_with_the_reason() {
    let app = TestApp::spawn().await;
    let gaps = app
        .street()
        .list_station_head_committee_status(pb::ListStationHeadCommitteeStatusRequest {
            street_id: "shidong".into(),
            only_missing: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gaps.total_size, 5);
    assert!(gaps.statuses.iter().all(|s| s.issue() == pb::CommitteeIssue::NotOnCommittee && !s.note.is_empty()));
    assert!(gaps.statuses.iter().all(|s| s.head.is_some()));
    let zhongnanlu = app
        .district()
        .list_station_head_committee_status(pb::ListStationHeadCommitteeStatusRequest {
            street_id: STREET.into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(zhongnanlu.total_size, 5);
    assert_eq!(zhongnanlu.statuses.len(), 2);
    assert!(zhongnanlu.statuses.iter().all(|s| s.on_committee && s.issue() == pb::CommitteeIssue::None));
    let all_gaps = app
        .district()
        .list_station_head_committee_status(pb::ListStationHeadCommitteeStatusRequest {
            only_missing: true,
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all_gaps.total_size, 10, "shidong and nanhu");
}
