//! Opinion solicitation (事先书面征求街道意见): filed, answered in writing, decided; deadlines
//! in working days, escalation when the street does not reply; retries; refusals.

use chrono::{TimeDelta, TimeZone as _, Utc};
use minhu_proto::{common::v1 as common, personnel::v1 as pb};
use minhu_testkit::tokens;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

#[tokio::test]
async fn a_solicitation_goes_from_the_street_s_written_opinion_to_the_department_s_decision() {
    let app = TestApp::spawn().await;
    let filed = app.solicit(pb::PersonnelMatter::Assessment).await;
    assert_eq!(filed.state(), pb::SolicitationState::AwaitingOpinion);
    assert_eq!(filed.department_id, "gongan");
    // Five working days from Monday 2 March: Monday 9 March at the close (17:30 CST).
    assert_eq!(time(filed.reply_deadline.unwrap()), Utc.with_ymd_and_hms(2026, 3, 9, 9, 30, 0).unwrap());

    let answered = app
        .street()
        .submit_opinion(pb::SubmitOpinionRequest {
            solicitation_id: filed.id.clone(),
            stance: common::OpinionStance::Disagree as i32,
            text: "该同志辖区群众满意度偏低，建议考核等次为称职".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.state(), pb::SolicitationState::OpinionReceived);
    let opinion = answered.opinion.unwrap();
    assert!(!opinion.late);
    assert_eq!(opinion.signed_by.unwrap().id, "zhongnanlu-leader");

    let no_reason = app
        .police()
        .record_decision(pb::RecordDecisionRequest {
            solicitation_id: filed.id.clone(),
            decision: "考核等次：优秀".into(),
            opinion_adopted: false,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&no_reason), ["reason"]);
    assert_eq!(no_reason.get_details_error_info().unwrap().reason, "REASON_REQUIRED");

    let decided = app
        .police()
        .record_decision(pb::RecordDecisionRequest {
            solicitation_id: filed.id.clone(),
            decision: "考核等次：称职".into(),
            opinion_adopted: true,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decided.state(), pb::SolicitationState::Decided);
    assert!(decided.decision.unwrap().opinion_adopted);

    let again = app
        .street()
        .submit_opinion(pb::SubmitOpinionRequest {
            solicitation_id: filed.id.clone(),
            stance: common::OpinionStance::Agree as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reasons(&again), ["ALREADY_DECIDED"]);
    // Nothing fires for an answered solicitation, even long after its deadline.
    app.advance(TimeDelta::days(30));
    assert_eq!(app.fire_due().await, 0);
    let findings = app
        .district()
        .list_compliance_findings(pb::ListComplianceFindingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(findings.total_size, 0, "{findings:?}");
}

#[tokio::test]
async fn the_department_cannot_decide_before_the_street_replies_or_its_deadline_passes() {
    let app = TestApp::spawn().await;
    let filed = app.solicit(pb::PersonnelMatter::Adjustment).await;
    let decide = pb::RecordDecisionRequest {
        solicitation_id: filed.id.clone(),
        decision: "调任".into(),
        request_id: request_id(),
        ..Default::default()
    };
    let early = app.police().record_decision(decide.clone()).await.unwrap_err();
    assert_eq!(reasons(&early), ["OPINION_PENDING"]);
    app.clock.set(time(filed.reply_deadline.unwrap()) + TimeDelta::seconds(1));
    let decided =
        app.police().record_decision(pb::RecordDecisionRequest { request_id: request_id(), ..decide }).await.unwrap();
    assert_eq!(decided.into_inner().state(), pb::SolicitationState::Decided);
}

#[tokio::test]
async fn an_overdue_reply_is_escalated_to_the_street_s_leaders_and_the_district_when_its_deadline_fires() {
    let app = TestApp::spawn().await;
    let filed = app.solicit(pb::PersonnelMatter::Reward).await;
    let deadline = time(filed.reply_deadline.unwrap());
    app.clock.set(deadline);
    assert_eq!(app.fire_due().await, 0, "a reply at the deadline is on time");
    app.clock.set(deadline + TimeDelta::seconds(1));
    assert_eq!(app.fire_due().await, 1);
    assert_eq!(app.fire_due().await, 0, "once");

    let got = app
        .district()
        .get_opinion_solicitation(pb::GetOpinionSolicitationRequest { solicitation_id: filed.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.state(), pb::SolicitationState::NoReply);
    assert!(got.escalate_time.is_some());
    let escalations = app
        .street()
        .list_escalations(pb::ListEscalationsRequest { solicitation_id: filed.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .escalations;
    assert_eq!(escalations.len(), 1);
    let mut to = escalations[0].recipient_person_ids.clone();
    to.sort();
    let mut leaders = vec![staff(STREET, 0), staff(STREET, 3), staff(STREET, 1)];
    leaders.sort();
    assert_eq!(to, leaders, "the principal leaders and the leader in charge of 政法");
    assert!(escalations[0].district_notified);
    let findings = app
        .district()
        .list_compliance_findings(pb::ListComplianceFindingsRequest {
            kinds: vec![pb::FindingKind::ReplyOverdue as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(findings.findings[0].solicitation_id, filed.id);

    // A late opinion is still accepted, marked late.
    let late = app
        .street()
        .submit_opinion(pb::SubmitOpinionRequest {
            solicitation_id: filed.id.clone(),
            stance: common::OpinionStance::Agree as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(late.opinion.unwrap().late);
}

#[tokio::test]
async fn a_retry_with_the_same_request_id_returns_the_first_result() {
    let app = TestApp::spawn().await;
    let id = request_id();
    let first = app.police().create_opinion_solicitation(solicitation(pb::PersonnelMatter::Reward, &id)).await.unwrap();
    let second =
        app.police().create_opinion_solicitation(solicitation(pb::PersonnelMatter::Reward, &id)).await.unwrap();
    assert_eq!(first.into_inner(), second.into_inner());
    assert_eq!(count(&app.pool, "solicitations").await, 1);
    let reused = app.police().create_opinion_solicitation(solicitation(pb::PersonnelMatter::Punishment, &id)).await;
    assert_eq!(fields(&reused.unwrap_err()), ["request_id"]);
}

#[tokio::test]
async fn a_retry_during_a_roster_outage_still_gets_the_first_result() {
    let mut app = TestApp::spawn().await;
    let id = request_id();
    let first = app.police().create_opinion_solicitation(solicitation(pb::PersonnelMatter::Reward, &id)).await.unwrap();
    app.stop_roster().await;
    let retry = app.police().create_opinion_solicitation(solicitation(pb::PersonnelMatter::Reward, &id)).await.unwrap();
    assert_eq!(first.into_inner(), retry.into_inner(), "replayed before any roster call");
    let new = app
        .police()
        .create_opinion_solicitation(solicitation(pb::PersonnelMatter::Reward, &request_id()))
        .await
        .unwrap_err();
    assert_eq!(new.code(), Code::Unavailable, "{new:?}");
    assert_eq!(count(&app.pool, "solicitations").await, 1);
}

#[tokio::test]
async fn bad_input_gets_field_level_errors_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let mut request = solicitation(pb::PersonnelMatter::Unspecified, &request_id());
    if let Some(s) = request.solicitation.as_mut() {
        s.person_id = "not-an-id".into();
        s.position = common::Position::Staff as i32;
        s.proposal = "  ".into();
        s.reply_deadline = Some(prost_types::Timestamp { seconds: app.now().timestamp() - 60, nanos: 0 });
    }
    let refused = app.police().create_opinion_solicitation(request).await.unwrap_err();
    let mut got = fields(&refused);
    got.sort();
    assert_eq!(
        got,
        [
            "solicitation.matter",
            "solicitation.person_id",
            "solicitation.position",
            "solicitation.proposal",
            "solicitation.reply_deadline"
        ]
    );
    let stance = app
        .street()
        .submit_opinion(pb::SubmitOpinionRequest {
            solicitation_id: uuid::Uuid::new_v4().to_string(),
            stance: common::OpinionStance::Conditional as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&stance), ["text"]);
    assert_eq!(count(&app.pool, "solicitations").await, 0);
    assert_eq!(count(&app.pool, "minhu_deadlines").await, 0);
}

#[tokio::test]
async fn each_role_is_refused_what_it_may_not_do_and_foreign_solicitations_look_missing() {
    let app = TestApp::spawn().await;
    let filed = app.solicit(pb::PersonnelMatter::Appointment).await;

    let by_street = app
        .street()
        .create_opinion_solicitation(solicitation(pb::PersonnelMatter::Reward, &request_id()))
        .await
        .unwrap_err();
    assert_eq!(by_street.code(), Code::PermissionDenied);
    let by_other_department = app
        .client(&department_leader("sifa"))
        .create_opinion_solicitation(solicitation(pb::PersonnelMatter::Reward, &request_id()))
        .await
        .unwrap_err();
    assert_eq!(by_other_department.code(), Code::PermissionDenied, "only the station's department files");

    let missing_id = uuid::Uuid::new_v4().to_string();
    let get = |id: &str| pb::GetOpinionSolicitationRequest { solicitation_id: id.into() };
    let missing = app.client(&department_leader("sifa")).get_opinion_solicitation(get(&missing_id)).await.unwrap_err();
    let foreign = app.client(&department_leader("sifa")).get_opinion_solicitation(get(&filed.id)).await.unwrap_err();
    assert_eq!(not_found_shape(&foreign, &filed.id), not_found_shape(&missing, &missing_id));
    let other_street =
        app.client(&tokens::street_leader("ziyang")).get_opinion_solicitation(get(&filed.id)).await.unwrap_err();
    assert_eq!(not_found_shape(&other_street, &filed.id), not_found_shape(&missing, &missing_id));

    let opinion = |who: &Client| {
        let mut who = who.clone();
        let id = filed.id.clone();
        async move {
            who.submit_opinion(pb::SubmitOpinionRequest {
                solicitation_id: id,
                stance: common::OpinionStance::Agree as i32,
                request_id: request_id(),
                ..Default::default()
            })
            .await
            .unwrap_err()
        }
    };
    assert_eq!(opinion(&app.client(&tokens::street_leader("ziyang"))).await.code(), Code::NotFound);
    assert_eq!(opinion(&app.client(&tokens::street_dispatcher(STREET))).await.code(), Code::PermissionDenied);
    assert_eq!(opinion(&app.police()).await.code(), Code::PermissionDenied);
    assert_eq!(opinion(&app.district()).await.code(), Code::PermissionDenied);
    let decide = app
        .street()
        .record_decision(pb::RecordDecisionRequest {
            solicitation_id: filed.id.clone(),
            decision: "任职".into(),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(decide.code(), Code::PermissionDenied);

    // The district reads everything; a street lists only its own.
    let all = app
        .district()
        .list_opinion_solicitations(pb::ListOpinionSolicitationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 1);
    let ziyang = app
        .client(&tokens::street_leader("ziyang"))
        .list_opinion_solicitations(pb::ListOpinionSolicitationsRequest::default())
        .await;
    assert_eq!(ziyang.unwrap().into_inner().total_size, 0);
    let withdrawn = app
        .police()
        .withdraw_opinion_solicitation(pb::WithdrawOpinionSolicitationRequest {
            solicitation_id: filed.id.clone(),
            reason: "人选调整".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawn.state(), pb::SolicitationState::Withdrawn);
    assert_eq!(reasons(&opinion(&app.street()).await), ["WITHDRAWN"]);
}
