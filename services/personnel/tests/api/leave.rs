//! Paid annual leave (带薪年休假) of a secondee: statutory entitlement by years of service,
//! days by the 2026 working-time calendar, overlap and balance checks, the street's decision.

use minhu_proto::personnel::v1 as pb;
use minhu_testkit::tokens;
use tonic::Code;

use crate::helpers::*;

fn apply(start: (i32, i32, i32), end: (i32, i32, i32), days: i32) -> pb::CreateLeaveApplicationRequest {
    pb::CreateLeaveApplicationRequest {
        application: Some(pb::LeaveApplication {
            start_date: day(start.0, start.1, start.2),
            end_date: day(end.0, end.1, end.2),
            days,
            reason: "探亲，工作已交接".into(),
            ..Default::default()
        }),
        request_id: request_id(),
    }
}

async fn entitle(app: &TestApp, days: i32) {
    app.police()
        .set_leave_entitlement(pb::SetLeaveEntitlementRequest {
            person_id: secondee(),
            year: 2026,
            entitled_days: days,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_entitlement_follows_years_of_cumulative_service_as_the_regulation_sets_it() {
    let app = TestApp::spawn().await;
    for (started, expected, years) in [(2026, 0, 0), (2025, 5, 1), (2016, 10, 10), (2006, 15, 20)] {
        let balance = app
            .police()
            .set_leave_entitlement(pb::SetLeaveEntitlementRequest {
                person_id: secondee(),
                year: 2026,
                service_start_date: day(started, 1, 1),
                request_id: request_id(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((balance.entitled_days, balance.service_years), (expected, years), "started {started}");
        assert!(!balance.entitlement_is_default);
    }
    let default = app
        .client(&person(&secondee(), "gongan"))
        .get_leave_balance(pb::GetLeaveBalanceRequest { year: 2027, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(default.entitlement_is_default);
    assert_eq!(default.entitled_days, 5);
    let both = app
        .police()
        .set_leave_entitlement(pb::SetLeaveEntitlementRequest {
            person_id: secondee(),
            year: 2026,
            entitled_days: 10,
            service_start_date: day(2006, 1, 1),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&both), ["entitled_days"]);
}

#[tokio::test]
async fn leave_over_the_mid_autumn_holiday_and_a_make_up_sunday_counts_only_working_days() {
    let app = TestApp::spawn().await;
    entitle(&app, 15).await;
    let mut secondee_client = app.client(&person(&secondee(), "gongan"));
    // 17–30 September 2026: 14 days, of which 19 Sep is a Saturday, 20 Sep a Sunday worked
    // (调休) and 25–27 Sep 中秋: 10 leave days.
    let wrong = secondee_client.create_leave_application(apply((2026, 9, 17), (2026, 9, 30), 14)).await.unwrap_err();
    assert_eq!(fields(&wrong), ["application.days"]);
    let applied =
        secondee_client.create_leave_application(apply((2026, 9, 17), (2026, 9, 30), 0)).await.unwrap().into_inner();
    assert_eq!(applied.days, 10);
    assert_eq!(applied.street_id, STREET);
    assert_eq!(applied.state(), pb::LeaveState::Pending);
    // 国庆 1–7 Oct, Saturday 10 Oct worked: 1–10 Oct is 3 leave days (8, 9, 10).
    let balance = secondee_client
        .get_leave_balance(pb::GetLeaveBalanceRequest { year: 2026, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((balance.entitled_days, balance.pending_days, balance.remaining_days), (15, 10, 5));
    let golden_week = app
        .police()
        .create_leave_application(pb::CreateLeaveApplicationRequest {
            application: Some(pb::LeaveApplication {
                person_id: secondee(),
                ..apply((2026, 10, 1), (2026, 10, 10), 0).application.unwrap()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(golden_week.days, 3);

    let approved = app
        .street()
        .approve_leave_application(pb::ApproveLeaveApplicationRequest {
            leave_application_id: applied.id.clone(),
            comment: "同意".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.state(), pb::LeaveState::Approved);
    assert_eq!(approved.decided_by.unwrap().id, "zhongnanlu-leader");
    let cancelled = secondee_client
        .cancel_leave_application(pb::CancelLeaveApplicationRequest {
            leave_application_id: applied.id.clone(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state(), pb::LeaveState::Cancelled, "approved and not started");
}

#[tokio::test]
async fn overlapping_leave_is_refused_and_so_is_leave_beyond_the_balance() {
    let app = TestApp::spawn().await;
    entitle(&app, 15).await;
    let mut secondee_client = app.client(&person(&secondee(), "gongan"));
    secondee_client.create_leave_application(apply((2026, 9, 17), (2026, 9, 30), 0)).await.unwrap();
    let overlapping =
        secondee_client.create_leave_application(apply((2026, 9, 29), (2026, 10, 9), 0)).await.unwrap_err();
    assert_eq!(reasons(&overlapping), ["OVERLAPPING_LEAVE"]);
    let too_long = secondee_client.create_leave_application(apply((2026, 11, 2), (2026, 11, 13), 0)).await.unwrap_err();
    assert_eq!(reasons(&too_long), ["INSUFFICIENT_BALANCE"]);
    assert_eq!(count(&app.pool, "leave_applications").await, 1);
}

#[tokio::test]
async fn each_role_is_refused_what_it_may_not_do_with_leave() {
    let app = TestApp::spawn().await;
    let mut secondee_client = app.client(&person(&secondee(), "gongan"));
    let applied =
        secondee_client.create_leave_application(apply((2026, 4, 7), (2026, 4, 8), 0)).await.unwrap().into_inner();
    assert_eq!(applied.days, 2);
    let approve = |who: Client| {
        let id = applied.id.clone();
        async move {
            let mut who = who;
            who.approve_leave_application(pb::ApproveLeaveApplicationRequest {
                leave_application_id: id,
                request_id: request_id(),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code()
        }
    };
    assert_eq!(approve(app.client(&tokens::street_leader("ziyang"))).await, Code::NotFound);
    assert_eq!(approve(app.police()).await, Code::PermissionDenied);
    assert_eq!(approve(secondee_client.clone()).await, Code::PermissionDenied);
    assert_eq!(approve(app.client(&tokens::street_dispatcher(STREET))).await, Code::PermissionDenied);

    // A colleague sees neither the application nor the balance.
    let colleague = app.client(&person(&officer(POLICE_STATION, 2), "gongan"));
    let get = colleague
        .clone()
        .get_leave_application(pb::GetLeaveApplicationRequest { leave_application_id: applied.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(get.code(), Code::NotFound);
    let balance = colleague
        .clone()
        .get_leave_balance(pb::GetLeaveBalanceRequest { person_id: secondee(), year: 2026 })
        .await
        .unwrap_err();
    assert_eq!(balance.code(), Code::NotFound);
    let listed = colleague
        .clone()
        .list_leave_applications(pb::ListLeaveApplicationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0);
    // Not seconded: the colleague cannot take leave managed by a street.
    let own = colleague.clone().create_leave_application(apply((2026, 4, 7), (2026, 4, 8), 0)).await.unwrap_err();
    assert_eq!(reasons(&own), ["NOT_SECONDED"]);
    // Nor apply for someone else.
    let for_other = colleague
        .clone()
        .create_leave_application(pb::CreateLeaveApplicationRequest {
            application: Some(pb::LeaveApplication {
                person_id: secondee(),
                ..apply((2026, 5, 6), (2026, 5, 6), 0).application.unwrap()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(for_other.code(), Code::PermissionDenied);

    let no_reason = app
        .street()
        .reject_leave_application(pb::RejectLeaveApplicationRequest {
            leave_application_id: applied.id.clone(),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&no_reason), ["reason"]);
    let rejected = app
        .street()
        .reject_leave_application(pb::RejectLeaveApplicationRequest {
            leave_application_id: applied.id.clone(),
            reason: "清明节前后执法任务重".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.state(), pb::LeaveState::Rejected);
    assert_eq!(rejected.decision_comment, "清明节前后执法任务重");
}

#[tokio::test]
async fn unused_leave_carries_over_one_year_and_no_further() {
    let app = TestApp::spawn().await;
    entitle(&app, 5).await;
    let mut secondee_client = app.client(&person(&secondee(), "gongan"));
    let mut carried = apply((2027, 1, 5), (2027, 1, 6), 0);
    carried.application.as_mut().unwrap().entitlement_year = 2026;
    let applied = secondee_client.create_leave_application(carried).await.unwrap().into_inner();
    assert_eq!(applied.entitlement_year, 2026);
    let balance = secondee_client
        .get_leave_balance(pb::GetLeaveBalanceRequest { year: 2026, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.pending_days, 2, "drawn on 2026's account");
    let mut too_late = apply((2028, 1, 4), (2028, 1, 4), 0);
    too_late.application.as_mut().unwrap().entitlement_year = 2026;
    let refused = secondee_client.create_leave_application(too_late).await.unwrap_err();
    assert_eq!(fields(&refused), ["application.entitlement_year"]);
}
