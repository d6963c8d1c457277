//! Interview scope (谈话范围) from the seeded roster; interviews held; a promotion without
//! the full scope flagged.

use minhu_proto::{common::v1 as common, personnel::v1 as pb};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

fn plan(interviewees: &[String], validate_only: bool) -> pb::CreateInterviewPlanRequest {
    pb::CreateInterviewPlanRequest {
        plan: Some(pb::InterviewPlan {
            station_id: POLICE_STATION.into(),
            street_id: STREET.into(),
            candidate_person_id: head(POLICE_STATION),
            proposed_post: "武昌区公安分局治安大队大队长".into(),
            interviewees: interviewees
                .iter()
                .map(|id| pb::Interviewee {
                    person: Some(common::PersonRef { id: id.clone(), ..Default::default() }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        validate_only,
        request_id: request_id(),
    }
}

fn ids(people: &[pb::Interviewee]) -> Vec<String> {
    let mut ids: Vec<String> = people.iter().map(|i| i.person.clone().unwrap().id).collect();
    ids.sort();
    ids
}

fn scope() -> Vec<String> {
    // 书记 and 主任, the leader in charge of 政法, the head of 平安办 (works with the police).
    let mut ids = vec![staff(STREET, 0), staff(STREET, 3), staff(STREET, 1), staff(STREET, 5)];
    ids.sort();
    ids
}

#[tokio::test]
async fn the_interview_scope_of_a_police_station_head_is_computed_from_the_roster() {
    let app = TestApp::spawn().await;
    let checked = app.police().create_interview_plan(plan(&[], true)).await.unwrap().into_inner();
    assert!(checked.id.is_empty(), "validate_only stores nothing");
    assert_eq!(ids(&checked.required_interviewees), scope());
    assert_eq!(ids(&checked.interviewees), scope(), "no interviewees named: the required scope");
    let positions: Vec<_> = checked.required_interviewees.iter().map(|i| i.position()).collect();
    assert_eq!(positions.iter().filter(|p| **p == common::Position::StreetPrincipalLeader).count(), 2);
    assert!(checked.required_interviewees.iter().all(|i| !i.person.as_ref().unwrap().name.is_empty()));
    assert_eq!(count(&app.pool, "interview_plans").await, 0);
}

#[tokio::test]
async fn an_incomplete_scope_is_refused_with_one_violation_per_missing_person_and_nothing_stored() {
    let app = TestApp::spawn().await;
    let refused = app.police().create_interview_plan(plan(&[staff(STREET, 0)], false)).await.unwrap_err();
    let mut got = reasons(&refused);
    got.sort();
    assert_eq!(got, ["MISSING_LEADER_IN_CHARGE", "MISSING_PRINCIPAL_LEADER", "MISSING_SECTION_HEAD"]);
    assert_eq!(refused.get_details_error_info().unwrap().reason, "INTERVIEW_SCOPE_INCOMPLETE");
    let subjects: Vec<String> =
        refused.get_details_precondition_failure().unwrap().violations.into_iter().map(|v| v.subject).collect();
    assert!(subjects.contains(&staff(STREET, 3)));
    assert_eq!(count(&app.pool, "interview_plans").await, 0);

    let mut not_head = plan(&[], false);
    not_head.plan.as_mut().unwrap().candidate_person_id = officer(POLICE_STATION, 2);
    assert_eq!(reasons(&app.police().create_interview_plan(not_head).await.unwrap_err()), ["NOT_STATION_HEAD"]);
    let by_street = app.street().create_interview_plan(plan(&[], false)).await.unwrap_err();
    assert_eq!(by_street.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_promotion_with_an_interview_missing_is_flagged_and_one_with_all_is_not() {
    let app = TestApp::spawn().await;
    let created = app.police().create_interview_plan(plan(&[], false)).await.unwrap().into_inner();
    for person in [staff(STREET, 0), staff(STREET, 3), staff(STREET, 1)] {
        app.police()
            .record_interview(pb::RecordInterviewRequest {
                interview_plan_id: created.id.clone(),
                person_id: person,
                held_date: day(2026, 3, 2),
                note: "谈话".into(),
                request_id: request_id(),
            })
            .await
            .unwrap();
    }
    let stranger = app
        .police()
        .record_interview(pb::RecordInterviewRequest {
            interview_plan_id: created.id.clone(),
            person_id: officer(POLICE_STATION, 3),
            held_date: day(2026, 3, 2),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&stranger), ["person_id"]);
    let promoted = app
        .police()
        .record_promotion(pb::RecordPromotionRequest {
            interview_plan_id: created.id.clone(),
            decision: "提拔为治安大队大队长".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(promoted.promotion_flagged);
    assert_eq!(promoted.missing_interviewee_person_ids, [staff(STREET, 5)]);
    let findings = app
        .district()
        .list_compliance_findings(pb::ListComplianceFindingsRequest {
            kinds: vec![pb::FindingKind::PromotionWithoutFullInterviews as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .findings;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].interview_plan_id, created.id);
    let twice = app
        .police()
        .record_promotion(pb::RecordPromotionRequest {
            interview_plan_id: created.id.clone(),
            decision: "再次".into(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(reasons(&twice), ["ALREADY_PROMOTED"]);
}
