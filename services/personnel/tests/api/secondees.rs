//! Secondees under the street's management: who they are, the street's evaluations with the
//! district's 五奖 coefficients, and the commendation quota; reflection lists the service.

use minhu_proto::{common::v1 as common, personnel::v1 as pb, roster::v1 as roster};
use tonic::Code;

use crate::helpers::*;

async fn quota(app: &TestApp) -> pb::CommendationQuota {
    app.street()
        .get_commendation_quota(pb::GetCommendationQuotaRequest { street_id: STREET.into(), year: 2026 })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn the_commendation_quota_counts_the_street_s_staff_and_its_secondees_and_rounds_down() {
    let app = TestApp::spawn().await;
    let seeded = quota(&app).await;
    assert_eq!((seeded.street_staff_count, seeded.secondee_count, seeded.base_count), (7, 2, 9));
    assert!(seeded.ratio.as_ref().unwrap().is_default);
    assert_eq!(seeded.quota, 1, "floor(9 × 15%)");

    // A third secondee: the market-supervision office's officer 1, resident from 1 March.
    app.roster()
        .create_secondment(roster::CreateSecondmentRequest {
            secondment: Some(roster::Secondment {
                kind: roster::SecondmentKind::Resident as i32,
                person_id: officer("zhongnanlu-shichang", 1),
                department_id: "shichang".into(),
                street_id: STREET.into(),
                center: common::StreetCenter::ComprehensiveLawEnforcementCenter as i32,
                start_date: day(2026, 3, 1),
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let ratio = app
        .district()
        .set_commendation_ratio(pb::SetCommendationRatioRequest {
            year: 2026,
            ratio_bp: 2500,
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!ratio.is_default);
    let with_three = quota(&app).await;
    assert_eq!((with_three.secondee_count, with_three.base_count, with_three.quota), (3, 10, 2), "floor(10 × 25%)");

    let by_street = app
        .street()
        .set_commendation_ratio(pb::SetCommendationRatioRequest {
            year: 2026,
            ratio_bp: 9000,
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(by_street.code(), Code::PermissionDenied);
    let bad = app
        .district()
        .set_commendation_ratio(pb::SetCommendationRatioRequest {
            year: 2026,
            ratio_bp: 10_001,
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&bad), ["ratio_bp"]);
    let other = app
        .client(&minhu_testkit::tokens::street_leader("ziyang"))
        .get_commendation_quota(pb::GetCommendationQuotaRequest { street_id: STREET.into(), year: 2026 })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn the_street_evaluates_its_secondees_and_the_grade_carries_the_district_s_coefficient() {
    let app = TestApp::spawn().await;
    let secondees = app.street().list_secondees(pb::ListSecondeesRequest::default()).await.unwrap().into_inner();
    assert_eq!(secondees.total_size, 2);
    let police = secondees.secondees.iter().find(|s| s.department_id == "gongan").unwrap().clone();
    assert_eq!(police.person.as_ref().unwrap().id, secondee());

    app.district()
        .set_incentive_coefficient(pb::SetIncentiveCoefficientRequest {
            year: 2026,
            grade: pb::AssessmentGrade::Excellent as i32,
            coefficient_bp: 13_000,
            request_id: request_id(),
        })
        .await
        .unwrap();
    let by_street = app
        .street()
        .set_incentive_coefficient(pb::SetIncentiveCoefficientRequest {
            year: 2026,
            grade: pb::AssessmentGrade::Excellent as i32,
            coefficient_bp: 50_000,
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(by_street.code(), Code::PermissionDenied);
    let evaluate = |month: i32| pb::RecordSecondeeEvaluationRequest {
        evaluation: Some(pb::SecondeeEvaluation {
            secondment_id: police.secondment_id.clone(),
            kind: pb::EvaluationKind::Monthly as i32,
            year: 2026,
            month,
            grade: pb::AssessmentGrade::Excellent as i32,
            comment: "出勤满勤，执法规范".into(),
            ..Default::default()
        }),
        request_id: request_id(),
    };
    let evaluated = app.street().record_secondee_evaluation(evaluate(2)).await.unwrap().into_inner();
    assert_eq!(evaluated.coefficient_bp, 13_000);
    assert_eq!(evaluated.person_id, secondee());
    let twice = app.street().record_secondee_evaluation(evaluate(2)).await.unwrap_err();
    assert_eq!(reasons(&twice), ["ALREADY_EVALUATED"]);
    let by_department = app.police().record_secondee_evaluation(evaluate(3)).await.unwrap_err();
    assert_eq!(by_department.code(), Code::PermissionDenied);

    let own = app
        .client(&person(&secondee(), "gongan"))
        .list_secondee_evaluations(pb::ListSecondeeEvaluationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.total_size, 1, "a secondee sees their own evaluations");
    let colleague = app
        .client(&person(&officer(POLICE_STATION, 2), "gongan"))
        .list_secondee_evaluations(pb::ListSecondeeEvaluationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(colleague.total_size, 0);

    let assessed = app
        .street()
        .record_incentive_assessment(pb::RecordIncentiveAssessmentRequest {
            assessment: Some(pb::IncentiveAssessment {
                year: 2026,
                subject: Some(pb::incentive_assessment::Subject::StationId(POLICE_STATION.into())),
                grade: pb::AssessmentGrade::Competent as i32,
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((assessed.department_id.as_str(), assessed.coefficient_bp), ("gongan", 10_000));
    let foreign_station = app
        .street()
        .record_incentive_assessment(pb::RecordIncentiveAssessmentRequest {
            assessment: Some(pb::IncentiveAssessment {
                year: 2026,
                subject: Some(pb::incentive_assessment::Subject::StationId("ziyang-gongan".into())),
                grade: pb::AssessmentGrade::Competent as i32,
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(reasons(&foreign_station), ["STATION_NOT_SERVING_STREET"]);
}

#[tokio::test]
async fn reflection_on_the_personnel_port_lists_the_personnel_service() {
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
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else { panic!("{response:?}") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"minhu.personnel.v1.PersonnelService".to_owned()), "{names:?}");
}
