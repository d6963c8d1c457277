//! Plans (规划参与): every covered street takes part in every stage, every item answered,
//! acceptance signed off or objected to.

use minhu_proto::{common::v1 as common, consultation::v1 as pb};

use crate::helpers::*;

async fn plan(app: &TestApp) -> pb::Plan {
    app.planning()
        .create_plan(pb::CreatePlanRequest {
            plan: Some(pb::Plan {
                name: "中南路街社区养老服务设施规划".into(),
                kind: pb::PlanKind::PublicServiceFacility as i32,
                street_ids: vec![ZHONGNANLU.into(), SHUIGUOHU.into()],
                description: "两街道各设一处日间照料中心".into(),
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn opinion(plan: &pb::Plan, text: &str) -> pb::SubmitPlanOpinionRequest {
    pb::SubmitPlanOpinionRequest {
        plan_id: plan.id.clone(),
        stance: common::OpinionStance::Conditional as i32,
        text: text.into(),
        participation: "现场踏勘、居民议事会".into(),
        request_id: request_id(),
        ..Default::default()
    }
}

fn no_opinion(plan: &pb::Plan) -> pb::SubmitPlanOpinionRequest {
    pb::SubmitPlanOpinionRequest {
        plan_id: plan.id.clone(),
        no_opinion: true,
        request_id: request_id(),
        ..Default::default()
    }
}

fn verdict(plan: &pb::Plan, verdict: pb::AcceptanceVerdict, text: &str) -> pb::SubmitPlanOpinionRequest {
    pb::SubmitPlanOpinionRequest {
        plan_id: plan.id.clone(),
        acceptance: verdict as i32,
        stance: if text.is_empty() { 0 } else { common::OpinionStance::Disagree as i32 },
        text: text.into(),
        request_id: request_id(),
        ..Default::default()
    }
}

async fn answer(app: &TestApp, o: &pb::PlanOpinion, result: pb::AdoptionResult, reason: &str) -> pb::PlanOpinion {
    app.planning()
        .answer_plan_opinion(pb::AnswerPlanOpinionRequest {
            plan_opinion_id: o.id.clone(),
            result: result as i32,
            reason: reason.into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn advance(app: &TestApp, plan: &pb::Plan, stage: pb::PlanStage) -> Result<pb::Plan, tonic::Status> {
    app.planning()
        .advance_plan_stage(pb::AdvancePlanStageRequest {
            plan_id: plan.id.clone(),
            expected_stage: stage as i32,
            note: "阶段完成".into(),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_stage_is_refused_until_every_covered_street_has_taken_part_and_every_item_is_answered() {
    let app = TestApp::spawn().await;
    let p = plan(&app).await;
    assert_eq!(p.pending_street_ids, [ZHONGNANLU, SHUIGUOHU]);
    let refused = advance(&app, &p, pb::PlanStage::Drafting).await.unwrap_err();
    assert_eq!(
        refusals(&refused),
        [
            ("OPINIONS_MISSING".to_string(), format!("streets/{ZHONGNANLU}")),
            ("OPINIONS_MISSING".to_string(), format!("streets/{SHUIGUOHU}")),
        ]
    );
    let item =
        app.leader(ZHONGNANLU).submit_plan_opinion(opinion(&p, "照料中心应临街设置")).await.unwrap().into_inner();
    app.leader(SHUIGUOHU).submit_plan_opinion(no_opinion(&p)).await.unwrap();
    let refused = advance(&app, &p, pb::PlanStage::Drafting).await.unwrap_err();
    assert_eq!(refusals(&refused), [("OPINIONS_UNANSWERED".to_string(), format!("planOpinions/{}", item.id))]);
    answer(&app, &item, pb::AdoptionResult::Adopted, "").await;
    let p = advance(&app, &p, pb::PlanStage::Drafting).await.unwrap();
    assert_eq!(p.stage, pb::PlanStage::Construction as i32);
    let twice = advance(&app, &p, pb::PlanStage::Drafting).await.unwrap_err();
    assert_eq!(refusals(&twice)[0].0, "STAGE_MISMATCH");
}

#[tokio::test]
async fn a_plan_goes_through_all_three_stages_and_acceptance_keeps_an_objection_visible() {
    let app = TestApp::spawn().await;
    let p = plan(&app).await;
    for (stage, texts) in [
        (pb::PlanStage::Drafting, ["临街设置", "增加停车位"]),
        (pb::PlanStage::Construction, ["夜间不施工", "保留绿化"]),
    ] {
        let a = app.leader(ZHONGNANLU).submit_plan_opinion(opinion(&p, texts[0])).await.unwrap().into_inner();
        let b = app.leader(SHUIGUOHU).submit_plan_opinion(opinion(&p, texts[1])).await.unwrap().into_inner();
        answer(&app, &a, pb::AdoptionResult::Adopted, "").await;
        answer(&app, &b, pb::AdoptionResult::NotAdopted, "用地受限").await;
        advance(&app, &p, stage).await.unwrap();
    }
    let no_verdict = app.leader(ZHONGNANLU).submit_plan_opinion(opinion(&p, "验收意见")).await.unwrap_err();
    assert_eq!(refusals(&no_verdict)[0].0, "ACCEPTANCE_VERDICT_REQUIRED");
    app.leader(ZHONGNANLU).submit_plan_opinion(verdict(&p, pb::AcceptanceVerdict::SignedOff, "")).await.unwrap();
    let objection = app
        .leader(SHUIGUOHU)
        .submit_plan_opinion(verdict(&p, pb::AcceptanceVerdict::Objected, "无障碍坡道坡度不达标"))
        .await
        .unwrap()
        .into_inner();
    answer(&app, &objection, pb::AdoptionResult::PartiallyAdopted, "坡道将整改，其余按图验收").await;
    let done = advance(&app, &p, pb::PlanStage::Acceptance).await.unwrap();
    assert_eq!(done.stage, pb::PlanStage::Completed as i32);
    assert_eq!(done.stage_history.len(), 3);
    assert!(done.pending_street_ids.is_empty(), "a completed plan waits for nobody: {:?}", done.pending_street_ids);
    assert_eq!(
        done.objections.iter().map(|o| (o.street_id.as_str(), o.text.as_str())).collect::<Vec<_>>(),
        [(SHUIGUOHU, "无障碍坡道坡度不达标")]
    );
    let completed = app.leader(ZHONGNANLU).submit_plan_opinion(opinion(&p, "迟到的意见")).await.unwrap_err();
    assert_eq!(refusals(&completed)[0].0, "PLAN_COMPLETED");
    let update = app
        .planning()
        .update_plan(pb::UpdatePlanRequest {
            plan: Some(pb::Plan { id: p.id.clone(), name: "改名".into(), ..Default::default() }),
            update_mask: None,
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(refusals(&update)[0].0, "PLAN_COMPLETED");
    let opinions = app
        .district()
        .list_plan_opinions(pb::ListPlanOpinionsRequest { plan_id: p.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(opinions.total_size, 6);
    assert!(opinions.opinions.iter().filter(|o| !o.text.is_empty()).all(|o| o.answer.is_some()), "every item answered");
    let report =
        app.district().get_consultation_report(pb::GetConsultationReportRequest::default()).await.unwrap().into_inner();
    assert_eq!(report.objections.iter().map(|o| &o.id).collect::<Vec<_>>(), [&objection.id]);
    let shuiguohu = report.streets.iter().find(|f| f.organization_id == SHUIGUOHU).unwrap();
    assert_eq!((shuiguohu.plans, shuiguohu.plan_objections), (1, 1));
}

#[tokio::test]
async fn a_plan_update_changes_the_covered_streets_and_what_is_pending() {
    let app = TestApp::spawn().await;
    let p = plan(&app).await;
    let updated = app
        .planning()
        .update_plan(pb::UpdatePlanRequest {
            plan: Some(pb::Plan { id: p.id.clone(), street_ids: vec![ZHONGNANLU.into()], ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["street_ids".into()] }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.street_ids.clone(), updated.pending_street_ids.clone()),
        (vec![ZHONGNANLU.to_string()], vec![ZHONGNANLU.to_string()])
    );
    let gone = app.leader(SHUIGUOHU).get_plan(pb::GetPlanRequest { plan_id: p.id.clone() }).await.unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound, "a street no longer covered no longer sees it");
    let pending = app
        .district()
        .list_plans(pb::ListPlansRequest { opinions_pending_only: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.total_size, 1);
}

#[tokio::test]
async fn every_role_but_the_covered_streets_leaders_and_the_plans_department_is_refused() {
    use minhu_testkit::tokens;
    use tonic::Code;
    let app = TestApp::spawn().await;
    let p = plan(&app).await;
    for principal in
        [tokens::street_dispatcher(ZHONGNANLU), tokens::district_admin(), tokens::department_dispatcher(PLANNING)]
    {
        let status = app.client(&principal).submit_plan_opinion(opinion(&p, "意见")).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{principal:?}");
    }
    let foreign = app.leader(LIANGDAO).submit_plan_opinion(opinion(&p, "意见")).await.unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound, "a street not covered does not know the plan");
    let item = app.leader(ZHONGNANLU).submit_plan_opinion(opinion(&p, "意见")).await.unwrap().into_inner();
    for principal in [tokens::street_leader(ZHONGNANLU), tokens::district_admin()] {
        let status = app
            .client(&principal)
            .answer_plan_opinion(pb::AnswerPlanOpinionRequest {
                plan_opinion_id: item.id.clone(),
                result: pb::AdoptionResult::Adopted as i32,
                reason: String::new(),
                request_id: request_id(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{principal:?}");
        let status = app
            .client(&principal)
            .advance_plan_stage(pb::AdvancePlanStageRequest {
                plan_id: p.id.clone(),
                expected_stage: pb::PlanStage::Drafting as i32,
                request_id: request_id(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{principal:?}");
    }
    let other = app
        .client(&tokens::department_dispatcher("fangguan"))
        .advance_plan_stage(pb::AdvancePlanStageRequest {
            plan_id: p.id.clone(),
            expected_stage: pb::PlanStage::Drafting as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound, "another department's plan is as good as missing");
    let no_reason = app
        .planning()
        .answer_plan_opinion(pb::AnswerPlanOpinionRequest {
            plan_opinion_id: item.id.clone(),
            result: pb::AdoptionResult::PartiallyAdopted as i32,
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (bad_fields(&no_reason), reason(&no_reason)),
        (vec!["reason".to_string()], "REASON_REQUIRED".to_string())
    );
}

#[tokio::test]
async fn a_bad_plan_names_every_bad_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let status = app
        .planning()
        .create_plan(pb::CreatePlanRequest {
            plan: Some(pb::Plan {
                name: "".into(),
                kind: 0,
                street_ids: vec![],
                description: "x".repeat(5001),
                opinion_deadline: Some(prost_types::Timestamp { seconds: 1, nanos: 0 }),
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        ["plan.name", "plan.kind", "plan.description", "plan.street_ids", "plan.opinion_deadline"]
    );
    let empty = app.leader(ZHONGNANLU).submit_plan_opinion(opinion(&plan(&app).await, " ")).await.unwrap_err();
    assert_eq!(bad_fields(&empty), ["text"]);
    let list = app.district().list_plans(pb::ListPlansRequest::default()).await.unwrap().into_inner();
    assert_eq!(list.total_size, 1, "only the good plan");
}

#[tokio::test]
async fn a_plans_trail_verifies_through_its_stages() {
    let app = TestApp::spawn().await;
    let p = plan(&app).await;
    app.leader(ZHONGNANLU).submit_plan_opinion(no_opinion(&p)).await.unwrap();
    app.leader(SHUIGUOHU).submit_plan_opinion(no_opinion(&p)).await.unwrap();
    advance(&app, &p, pb::PlanStage::Drafting).await.unwrap();
    let verdict =
        app.district().verify_trail(pb::VerifyTrailRequest { subject_id: p.id.clone() }).await.unwrap().into_inner();
    assert!(verdict.verified, "{verdict:?}");
    assert_eq!(verdict.entries_checked, 4);
    let missing =
        app.leader(LIANGDAO).verify_trail(pb::VerifyTrailRequest { subject_id: p.id.clone() }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}
