//! Who may do what: every role's refusals, and foreign records answering exactly like
//! missing ones.

use minhu_proto::{common::v1 as common, consultation::v1 as pb};
use minhu_testkit::tokens;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

fn submit(d: &pb::Decision) -> pb::SubmitDecisionOpinionRequest {
    pb::SubmitDecisionOpinionRequest {
        decision_id: d.id.clone(),
        stance: common::OpinionStance::Agree as i32,
        text: "同意".into(),
        request_id: request_id(),
    }
}

/// The status with the id in its message and details replaced, for comparing two NOT_FOUNDs.
fn shape(status: &tonic::Status, id: &str) -> (Code, String, String) {
    let resource = status
        .get_details_resource_info()
        .map(|r| format!("{}|{}", r.resource_type, r.resource_name.replace(id, "ID")));
    (status.code(), status.message().replace(id, "ID"), resource.unwrap_or_default())
}

#[tokio::test]
async fn a_foreign_decision_answers_exactly_like_a_missing_one() {
    let app = TestApp::spawn().await;
    let d = app.pump_room_decision(5).await;
    let missing = uuid::Uuid::now_v7().to_string();
    for (who, client) in [
        ("another street", app.leader(LIANGDAO)),
        ("another department", app.client(&tokens::department_dispatcher("fangguan"))),
    ] {
        let foreign =
            client.clone().get_decision(pb::GetDecisionRequest { decision_id: d.id.clone() }).await.unwrap_err();
        let absent =
            client.clone().get_decision(pb::GetDecisionRequest { decision_id: missing.clone() }).await.unwrap_err();
        assert_eq!(shape(&foreign, &d.id), shape(&absent, &missing), "{who}");
        assert_eq!(foreign.code(), Code::NotFound, "{who}");
    }
    let foreign = app.leader(LIANGDAO).submit_decision_opinion(submit(&d)).await.unwrap_err();
    let absent = app
        .leader(LIANGDAO)
        .submit_decision_opinion(pb::SubmitDecisionOpinionRequest { decision_id: missing.clone(), ..submit(&d) })
        .await
        .unwrap_err();
    assert_eq!(shape(&foreign, &d.id), shape(&absent, &missing));
    let item = app.opinion(&d, ZHONGNANLU, "同意").await;
    let foreign = app
        .client(&tokens::department_dispatcher("fangguan"))
        .record_adoption(pb::RecordAdoptionRequest {
            decision_opinion_id: item.id.clone(),
            result: pb::AdoptionResult::Adopted as i32,
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
}

#[tokio::test]
async fn only_a_leader_of_a_consulted_street_gives_its_opinion() {
    let app = TestApp::spawn().await;
    let d = app.pump_room_decision(5).await;
    for principal in
        [tokens::street_dispatcher(ZHONGNANLU), tokens::department_dispatcher(PLANNING), tokens::district_admin()]
    {
        let status = app.client(&principal).submit_decision_opinion(submit(&d)).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{principal:?}");
    }
    assert_eq!(app.decision(&d.id).await.pending_street_ids.len(), 2, "nothing was recorded");
}

#[tokio::test]
async fn only_the_decisions_department_answers_and_finalises() {
    let app = TestApp::spawn().await;
    let d = app.pump_room_decision(5).await;
    let item = app.opinion(&d, ZHONGNANLU, "同意").await;
    for principal in [tokens::street_leader(ZHONGNANLU), tokens::district_admin()] {
        let status = app
            .client(&principal)
            .record_adoption(pb::RecordAdoptionRequest {
                decision_opinion_id: item.id.clone(),
                result: pb::AdoptionResult::Adopted as i32,
                reason: String::new(),
                request_id: request_id(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{principal:?}");
        let status = app
            .client(&principal)
            .finalize_decision(pb::FinalizeDecisionRequest {
                decision_id: d.id.clone(),
                summary: "s".into(),
                places: vec![],
                request_id: request_id(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{principal:?}");
    }
    // A department leader (not only its dispatcher) answers for it.
    let answered = app
        .client(&department_leader(PLANNING))
        .record_adoption(pb::RecordAdoptionRequest {
            decision_opinion_id: item.id.clone(),
            result: pb::AdoptionResult::Adopted as i32,
            reason: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answered.adoption.is_some());
    let twice = app
        .planning()
        .record_adoption(pb::RecordAdoptionRequest {
            decision_opinion_id: item.id.clone(),
            result: pb::AdoptionResult::NotAdopted as i32,
            reason: "改口".into(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(refusals(&twice)[0].0, "ALREADY_RECORDED");
}

#[tokio::test]
async fn streets_and_the_district_do_not_open_consultations_or_plans_and_only_the_district_reads_the_report() {
    let app = TestApp::spawn().await;
    for principal in [tokens::street_leader(ZHONGNANLU), tokens::district_admin()] {
        let status = app
            .client(&principal)
            .create_decision(pb::CreateDecisionRequest {
                decision: Some(pb::Decision::default()),
                request_id: request_id(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{principal:?}");
        let status = app
            .client(&principal)
            .create_plan(pb::CreatePlanRequest { plan: Some(pb::Plan::default()), request_id: request_id() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{principal:?}");
    }
    for principal in [tokens::street_leader(ZHONGNANLU), tokens::department_dispatcher(PLANNING)] {
        let status = app
            .client(&principal)
            .get_consultation_report(pb::GetConsultationReportRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{principal:?}");
    }
}

#[tokio::test]
async fn a_streets_list_and_watch_show_only_what_involves_it() {
    let app = TestApp::spawn().await;
    let d = app.pump_room_decision(5).await;
    let mine = app.leader(ZHONGNANLU).list_decisions(pb::ListDecisionsRequest::default()).await.unwrap().into_inner();
    assert_eq!(mine.decisions.iter().map(|d| &d.id).collect::<Vec<_>>(), [&d.id]);
    let other = app.leader(LIANGDAO).list_decisions(pb::ListDecisionsRequest::default()).await.unwrap().into_inner();
    assert_eq!(other.total_size, 0);
    // 粮道街's watch skips the pump room entirely: the first thing it sees is its own.
    let mut watch = app.watch(&tokens::street_leader(LIANGDAO), 0).await;
    let own = app
        .planning()
        .create_decision(pb::CreateDecisionRequest {
            decision: Some(pb::Decision {
                kind: pb::DecisionKind::MajorDecision as i32,
                subject: "粮道街道路改造".into(),
                description: "d".into(),
                street_ids: vec![LIANGDAO.into()],
                reply_working_days: 3,
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut watch).await.subject_id, own.id);
}

#[tokio::test]
async fn reflection_on_the_consultation_port_lists_the_consultation_service() {
    use tokio_stream::StreamExt as _;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let app = TestApp::spawn().await;
    let channel = minhu_testkit::connect(app.addr).await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else { panic!("{reply:?}") };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"minhu.consultation.v1.ConsultationService"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("minhu.roster") || n.starts_with("minhu.dispatch")), "{names:?}");
}
