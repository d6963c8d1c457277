//! The consultation demo against the suite: the decision on the pump room's future use
//! reaches both affected streets through the roster, is answered and finalised unflagged,
//! and its trail verifies.

use minhu_e2e::Suite;
use minhu_proto::consultation::v1 as pb;
use minhu_testkit::tokens;

#[tokio::test]
async fn the_consultation_demo_consults_both_affected_streets_and_answers_each() {
    let suite = Suite::start().await;
    let url = format!("http://{}", suite.consultation_service().addr());
    let decision_id = minhu_suite::demo_consultation::run(&url).await.expect("the consultation demo runs to the end");
    let channel = suite.consultation_service().channel();
    let mut district = pb::consultation_service_client::ConsultationServiceClient::with_interceptor(
        channel,
        tokens::bearer(&tokens::district_operator()),
    );
    let decision =
        district.get_decision(pb::GetDecisionRequest { decision_id: decision_id.clone() }).await.unwrap().into_inner();
    assert_eq!(decision.affected_street_ids, ["zhongnanlu", "shuiguohu"]);
    assert_eq!(decision.state(), pb::DecisionState::Finalized);
    assert!(decision.flags.is_empty(), "{:?}", decision.flags);
    let report =
        district.get_consultation_report(pb::GetConsultationReportRequest::default()).await.unwrap().into_inner();
    let planning = report.departments.iter().find(|f| f.organization_id == "guihua").expect("planning's figures");
    assert_eq!((planning.adopted, planning.not_adopted, planning.decisions_finalized), (1, 1, 1));
    suite.stop().await;
}
