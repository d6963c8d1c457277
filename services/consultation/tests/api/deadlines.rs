//! Reply and answer deadlines in working days on a calendar crossing 国庆 2026, fired by
//! hand on a manual clock: a silent street and an unanswered item are escalated on time.

use minhu_proto::consultation::v1 as pb;

use crate::helpers::*;

async fn escalations(app: &TestApp) -> Vec<pb::Escalation> {
    app.district().list_escalations(pb::ListEscalationsRequest::default()).await.unwrap().into_inner().escalations
}

#[tokio::test]
async fn a_street_silent_at_the_reply_deadline_is_escalated_on_time() {
    let app = TestApp::spawn_with(|c| c.deadlines.calendar = national_day_2026()).await;
    app.clock.set(cst(9, 30, 10, 0));
    let d = app.pump_room_decision(2).await;
    // Two working days from Wednesday 30 September, across the holiday: Thursday 8 and
    // Friday 9 October, due at Friday's close.
    assert_eq!(d.reply_deadline, Some(minhu_consultation::api::convert::ts(cst(10, 9, 17, 30))));
    app.opinion(&d, ZHONGNANLU, "同意").await;

    app.clock.set(cst(10, 9, 17, 29));
    assert_eq!(app.fire_due().await, 0);
    assert!(escalations(&app).await.is_empty());

    app.clock.set(cst(10, 9, 17, 31));
    assert_eq!(app.fire_due().await, 1);
    let found = escalations(&app).await;
    assert_eq!(found.len(), 1);
    let e = &found[0];
    assert_eq!(
        (e.kind, e.street_id.as_str(), e.decision_id.as_str()),
        (pb::EscalationKind::ReplyOverdue as i32, SHUIGUOHU, d.id.as_str())
    );
    assert_eq!(
        e.addressed_to,
        [format!("street/{SHUIGUOHU}/leaders"), format!("department/{PLANNING}/leaders"), "district".into()]
    );
    let after = app.decision(&d.id).await;
    assert!(after.reply_overdue);
    assert_eq!(after.state, pb::DecisionState::AwaitingAdoption as i32);
    let late = app
        .leader(SHUIGUOHU)
        .submit_decision_opinion(pb::SubmitDecisionOpinionRequest {
            decision_id: d.id.clone(),
            stance: 1,
            text: "迟到".into(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(refusals(&late)[0].0, "SOLICITATION_CLOSED");
    assert_eq!(app.fire_due().await, 0, "fired once");
}

#[tokio::test]
async fn an_item_unanswered_at_its_answer_deadline_is_escalated_to_the_department_and_the_district() {
    let app = TestApp::spawn_with(|c| c.deadlines.calendar = national_day_2026()).await;
    app.clock.set(cst(9, 30, 10, 0));
    let d = app.pump_room_decision(2).await;
    let answered = app.opinion(&d, ZHONGNANLU, "保留消防通道").await;
    let forgotten = app.opinion(&d, SHUIGUOHU, "增设坡道").await;
    // Five working days: 8, 9, 10 (Saturday, made up), 12 and 13 October.
    assert_eq!(forgotten.answer_deadline, Some(minhu_consultation::api::convert::ts(cst(10, 13, 17, 30))));
    app.answer(&answered, pb::AdoptionResult::Adopted, "").await;

    app.clock.set(cst(10, 13, 17, 0));
    assert_eq!(app.fire_due().await, 0);
    app.clock.set(cst(10, 13, 17, 31));
    assert_eq!(app.fire_due().await, 1, "only the unanswered item's deadline was still pending");
    let found = escalations(&app).await;
    assert_eq!(found.len(), 1);
    let e = &found[0];
    assert_eq!((e.kind, e.opinion_id.as_str()), (pb::EscalationKind::AnswerOverdue as i32, forgotten.id.as_str()));
    assert_eq!(e.addressed_to, [format!("department/{PLANNING}/leaders"), "district".into()]);
    let items = app
        .district()
        .list_decision_opinions(pb::ListDecisionOpinionsRequest {
            decision_id: d.id.clone(),
            adoption_pending_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(items.opinions[0].answer_overdue);
    let report =
        app.district().get_consultation_report(pb::GetConsultationReportRequest::default()).await.unwrap().into_inner();
    let planning = report.departments.iter().find(|f| f.organization_id == PLANNING).unwrap();
    assert_eq!(planning.answers_overdue, 1);
}

#[tokio::test]
async fn a_plan_item_unanswered_at_its_answer_deadline_is_escalated_and_an_answered_one_is_not() {
    let app = TestApp::spawn_with(|c| c.deadlines.calendar = national_day_2026()).await;
    app.clock.set(cst(9, 30, 10, 0));
    let plan = app
        .planning()
        .create_plan(pb::CreatePlanRequest {
            plan: Some(pb::Plan {
                name: "海运社区公共服务设施规划".into(),
                kind: pb::PlanKind::PublicServiceFacility as i32,
                street_ids: vec![ZHONGNANLU.into(), SHUIGUOHU.into()],
                description: "议事厅与便民点".into(),
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    let item = |street: &str, text: &str| {
        let mut c = app.leader(street);
        let req = pb::SubmitPlanOpinionRequest {
            plan_id: plan.id.clone(),
            stance: 3,
            text: text.into(),
            request_id: request_id(),
            ..Default::default()
        };
        async move { c.submit_plan_opinion(req).await.unwrap().into_inner() }
    };
    let answered = item(ZHONGNANLU, "临街设置").await;
    let forgotten = item(SHUIGUOHU, "增加停车位").await;
    assert_eq!(forgotten.answer_deadline, Some(minhu_consultation::api::convert::ts(cst(10, 13, 17, 30))));
    let silent = app
        .leader(ZHONGNANLU)
        .submit_plan_opinion(pb::SubmitPlanOpinionRequest {
            plan_id: plan.id.clone(),
            no_opinion: true,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(silent.answer_deadline, None, "no opinion owes no answer");
    app.planning()
        .answer_plan_opinion(pb::AnswerPlanOpinionRequest {
            plan_opinion_id: answered.id.clone(),
            result: pb::AdoptionResult::Adopted as i32,
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap();
    app.clock.set(cst(10, 13, 17, 31));
    assert_eq!(app.fire_due().await, 1);
    let found = escalations(&app).await;
    assert_eq!(found.len(), 1);
    let e = &found[0];
    assert_eq!(
        (e.plan_id.as_str(), e.opinion_id.as_str(), e.decision_id.as_str()),
        (plan.id.as_str(), forgotten.id.as_str(), "")
    );
    assert_eq!(e.addressed_to, [format!("department/{PLANNING}/leaders"), "district".into()]);
    let of_plan = app
        .district()
        .list_escalations(pb::ListEscalationsRequest { plan_id: plan.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(of_plan.total_size, 1);
    let mine =
        app.leader(ZHONGNANLU).list_escalations(pb::ListEscalationsRequest::default()).await.unwrap().into_inner();
    assert_eq!(mine.total_size, 0, "a street sees only its own");
    let items = app
        .district()
        .list_plan_opinions(pb::ListPlanOpinionsRequest {
            plan_id: plan.id.clone(),
            street_id: SHUIGUOHU.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(items.opinions[0].answer_overdue);
}
