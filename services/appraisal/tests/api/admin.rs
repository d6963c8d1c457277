//! Periods, the annual weight and its export, authorization refusals per role, and bad
//! input.

use chrono::{TimeZone, Utc};
use minhu_proto::{appraisal::v1 as apb, common::v1 as common};
use minhu_testkit::tokens;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn an_annual_weight_below_thirty_percent_is_refused_and_the_export_shows_contributions() {
    let w = World::spawn(true).await;
    let admin = w.admin();
    let e = admin
        .clone()
        .set_annual_weight(apb::SetAnnualWeightRequest { year: 2019, weight_bp: 2900, request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["weight_bp"]);
    assert!(e.message().contains("WEIGHT_BELOW_MINIMUM"), "{e:?}");
    let e = admin
        .clone()
        .set_annual_weight(apb::SetAnnualWeightRequest { year: 2019, weight_bp: 10001, request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["weight_bp"]);
    let unset = admin.clone().get_annual_weight(apb::GetAnnualWeightRequest { year: 2019 }).await.unwrap().into_inner();
    assert_eq!((unset.weight_bp, unset.is_default), (3000, true));
    let set = admin
        .clone()
        .set_annual_weight(apb::SetAnnualWeightRequest { year: 2019, weight_bp: 3000, request_id: request_id() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((set.weight_bp, set.is_default), (3000, false));
    // Only district admins set it.
    let e = w
        .appraisal(&tokens::district_operator())
        .set_annual_weight(apb::SetAnnualWeightRequest { year: 2019, weight_bp: 5000, request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // No YEAR period yet.
    let e =
        admin.clone().export_annual_assessment(apb::ExportAnnualAssessmentRequest { year: 2019 }).await.unwrap_err();
    assert_eq!(reasons(&e), ["NO_YEAR_PERIOD"]);
    let start = Utc.with_ymd_and_hms(2018, 12, 31, 16, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2019, 12, 31, 16, 0, 0).unwrap();
    w.period("2019年度", apb::PeriodKind::Year, start, end).await;
    use minhu_proto::dispatch::v1::Satisfaction::*;
    run_case(
        &w,
        &[
            script("gongan", Sign::OnTime, Report::OnTime, Work::OnTime, Satisfied),
            script("guihua", Sign::OnTime, Report::Late, Work::OnTime, Dissatisfied),
        ],
    )
    .await;
    w.caught_up().await;
    // gongan: composite 10000 → contribution 10000 × 3000 / 10000 = 3000.
    // guihua: response 0/1, completion 1/1, satisfaction 0/1 → composite 4000
    //   → contribution 4000 × 3000 / 10000 = 1200.
    let export = w
        .appraisal(&minhu_grpc::Principal::new(
            "personnel",
            [minhu_grpc::Role::PersonnelOfficer],
            minhu_grpc::Organization::new(minhu_grpc::OrgKind::OrganizationPersonnel, "zuzhibu"),
        ))
        .export_annual_assessment(apb::ExportAnnualAssessmentRequest { year: 2019 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(export.weight_bp, 3000);
    let rows: Vec<(&str, Option<i32>, Option<i32>, i32)> = export
        .contributions
        .iter()
        .map(|c| (c.department_id.as_str(), c.composite_bp, c.contribution_bp, c.rank))
        .collect();
    assert_eq!(rows, [("gongan", Some(10000), Some(3000), 1), ("guihua", Some(4000), Some(1200), 2)]);
}

#[tokio::test]
async fn each_role_is_refused_what_is_not_its_own() {
    let w = World::spawn(false).await;
    let period = w.may_period().await;
    let create = |p: &minhu_grpc::Principal| {
        let client = w.appraisal(p);
        async move {
            client
                .clone()
                .create_period(apb::CreatePeriodRequest {
                    period: Some(apb::Period {
                        name: "x".into(),
                        kind: apb::PeriodKind::Custom as i32,
                        range: Some(common::TimeRange {
                            start_time: ts(Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).unwrap()),
                            end_time: ts(Utc.with_ymd_and_hms(2019, 2, 1, 0, 0, 0).unwrap()),
                        }),
                        ..Default::default()
                    }),
                    request_id: request_id(),
                })
                .await
                .unwrap_err()
                .code()
        }
    };
    for p in [
        tokens::district_operator(),
        tokens::street_leader(STREET),
        tokens::department_dispatcher("gongan"),
        tokens::discipline_inspector(),
    ] {
        assert_eq!(create(&p).await, Code::PermissionDenied, "{p:?}");
    }
    let score = |p: minhu_grpc::Principal, department: &str, street: &str| {
        let client = w.appraisal(&p);
        let request = apb::GetDepartmentScoreRequest {
            period_id: period.id.clone(),
            department_id: department.into(),
            street_id: street.into(),
        };
        async move { client.clone().get_department_score(request).await.map(|_| ()).map_err(|e| e.code()) }
    };
    // A department reads its own score, not another's.
    assert_eq!(score(tokens::department_dispatcher("gongan"), "gongan", "").await, Ok(()));
    assert_eq!(score(tokens::department_dispatcher("gongan"), "guihua", "").await, Err(Code::PermissionDenied));
    // A street reads its own calls' figures, not another street's.
    assert_eq!(score(tokens::street_leader(STREET), "gongan", "").await, Ok(()));
    assert_eq!(score(tokens::street_leader(STREET), "gongan", OTHER_STREET).await, Err(Code::PermissionDenied));
    // Discipline inspection reads no scores; nor the feed.
    assert_eq!(score(tokens::discipline_inspector(), "gongan", "").await, Err(Code::PermissionDenied));
    let e =
        w.appraisal(&tokens::discipline_inspector()).get_feed_status(apb::GetFeedStatusRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    w.appraisal(&tokens::service("minhu-suite")).get_feed_status(apb::GetFeedStatusRequest {}).await.unwrap();
    // Departments see no referrals; only admins rebuild.
    let e = w
        .appraisal(&tokens::department_dispatcher("gongan"))
        .list_referrals(apb::ListReferralsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = w
        .appraisal(&tokens::district_operator())
        .rebuild_scores(apb::RebuildScoresRequest::default())
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(e, Some(Code::PermissionDenied));
    // Without a token: unauthenticated.
    let anonymous = apb::appraisal_service_client::AppraisalServiceClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{}", w.admin_addr())).unwrap().connect_lazy(),
    );
    let e = anonymous.clone().get_period(apb::GetPeriodRequest { period_id: period.id }).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn bad_input_is_invalid_argument_with_fields_and_no_write() {
    let w = World::spawn(false).await;
    let admin = w.admin();
    let e = admin
        .clone()
        .create_period(apb::CreatePeriodRequest {
            period: Some(apb::Period {
                name: String::new(),
                kind: 0,
                range: Some(common::TimeRange {
                    start_time: ts(Utc.with_ymd_and_hms(2019, 2, 1, 0, 0, 0).unwrap()),
                    end_time: ts(Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).unwrap()),
                }),
                weights: Some(apb::Weights { response_bp: 2000, completion_bp: 4000, satisfaction_bp: 5000 }),
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["period.name", "period.kind", "period.range.end_time", "period.weights"]);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM periods").fetch_one(&w.pool).await.unwrap();
    assert_eq!(n, 0);
    let e = admin.clone().get_period(apb::GetPeriodRequest { period_id: "not-a-uuid".into() }).await.unwrap_err();
    assert_eq!(fields(&e), ["period_id"]);
    let period = w.may_period().await;
    let e = admin
        .clone()
        .list_score_records(apb::ListScoreRecordsRequest {
            period_id: period.id.clone(),
            department_id: "gongan".into(),
            indicator: apb::ScoreIndicator::Response as i32,
            outcome: apb::ScoreOutcome::SatisfactionSatisfied as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["outcome"]);
    let e = admin
        .clone()
        .list_department_scores(apb::ListDepartmentScoresRequest {
            period_id: period.id.clone(),
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["page_token"]);
    let e = admin
        .clone()
        .create_referral(apb::CreateReferralRequest {
            referral: Some(apb::Referral::default()),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM referrals").fetch_one(&w.pool).await.unwrap();
    assert_eq!(n, 0);
    // A period that has not ended does not close; an unknown one is not found.
    let open = w.period("未来", apb::PeriodKind::Custom, Utc::now(), Utc::now() + chrono::TimeDelta::days(30)).await;
    let e = admin
        .clone()
        .close_period(apb::ClosePeriodRequest { period_id: open.id, request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["PERIOD_NOT_ENDED"]);
    let e = admin
        .clone()
        .get_period(apb::GetPeriodRequest { period_id: uuid::Uuid::new_v4().to_string() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn periods_and_annual_weights_are_read_by_the_appraised_and_the_district_only() {
    let w = World::spawn(false).await;
    let period = w.may_period().await;
    let personnel = minhu_grpc::Principal::new(
        "personnel",
        [minhu_grpc::Role::PersonnelOfficer],
        minhu_grpc::Organization::new(minhu_grpc::OrgKind::OrganizationPersonnel, "zuzhibu"),
    );
    let readers = [
        tokens::district_operator(),
        tokens::street_leader(STREET),
        tokens::street_dispatcher(OTHER_STREET),
        tokens::department_dispatcher("gongan"),
        personnel,
    ];
    for p in &readers {
        let c = w.appraisal(p);
        let got = c.clone().get_period(apb::GetPeriodRequest { period_id: period.id.clone() }).await.unwrap();
        assert_eq!(got.into_inner().id, period.id);
        let listed = c.clone().list_periods(apb::ListPeriodsRequest::default()).await.unwrap().into_inner();
        assert_eq!(listed.total_size, 1);
        c.clone().get_annual_weight(apb::GetAnnualWeightRequest { year: 2019 }).await.unwrap();
    }
    // Discipline inspection reads the referrals sent to it, not the appraisal's settings.
    for p in [tokens::discipline_inspector()] {
        let c = w.appraisal(&p);
        let e = c.clone().get_period(apb::GetPeriodRequest { period_id: period.id.clone() }).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{p:?}");
        let e = c.clone().list_periods(apb::ListPeriodsRequest::default()).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{p:?}");
        let e = c.clone().get_annual_weight(apb::GetAnnualWeightRequest { year: 2019 }).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{p:?}");
    }
}
