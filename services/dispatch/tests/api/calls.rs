//! Withdrawing a call (撤回) and recording 到位不作为 (present but doing nothing).

use chrono::TimeDelta;
use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tonic::Code;

use crate::helpers::*;

fn withdraw(call_id: &str, reason: &str) -> pb::WithdrawCallRequest {
    pb::WithdrawCallRequest { call_id: call_id.into(), reason: reason.into(), request_id: request_id() }
}

#[tokio::test]
async fn withdrawing_the_only_call_returns_the_case_to_triage_and_reaches_the_feed() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["fangguan"]).await;
    assert_eq!(case.state, pb::CaseState::Calling as i32);
    let trail = app.trail_len(&case.id).await;

    let withdrawn =
        app.street().withdraw_call(withdraw(&calls[0].id, "派错部门，应由规划分局处理")).await.unwrap().into_inner();
    assert_eq!(withdrawn.state, pb::CallState::Withdrawn as i32);
    assert_eq!(withdrawn.withdraw_reason, "派错部门，应由规划分局处理");
    let after = app.case(&case.id).await;
    assert_eq!(after.state, pb::CaseState::Triaged as i32);
    assert!(after.called_department_ids.is_empty(), "a withdrawn call is not appraised");
    assert_eq!(app.trail_len(&case.id).await, trail + 1);

    let event = app.events_of(&case.id).await.pop().unwrap();
    assert_eq!(event.event_type, pb::EventType::CallWithdrawn as i32);
    assert_eq!((event.call_id.as_str(), event.department_id.as_str()), (calls[0].id.as_str(), "fangguan"));
    assert_eq!(event.case_state, pb::CaseState::Triaged as i32);
    let Some(pb::event::Payload::CallWithdrawn(payload)) = event.payload else { panic!() };
    assert_eq!(payload.reason, "派错部门，应由规划分局处理");

    // The department no longer sees the case; the right one can be called instead.
    let e = app.department("fangguan").get_case(pb::GetCaseRequest { case_id: case.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let now = app.now();
    app.street()
        .start_call(pb::StartCallRequest {
            case_id: case.id.clone(),
            calls: vec![call_to("guihua", now)],
            request_id: request_id(),
        })
        .await
        .unwrap();
    assert_eq!(app.case(&case.id).await.called_department_ids, ["guihua"]);
}

#[tokio::test]
async fn only_the_street_withdraws_and_only_an_unsigned_call() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["gongan", "chengguan"]).await;
    let (police, squad) = (&calls[0], &calls[1]);
    app.sign(police).await;
    let before = (app.case(&case.id).await, app.trail_len(&case.id).await);

    let e = app.street().withdraw_call(withdraw(&police.id, "不需要了")).await.unwrap_err();
    assert_eq!(reasons(&e), ["CALL_ALREADY_SIGNED"]);
    let e = app.department("chengguan").withdraw_call(withdraw(&squad.id, "不归我们管")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = app.client(&tokens::district_admin()).withdraw_call(withdraw(&squad.id, "x")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = app.street().withdraw_call(withdraw(&squad.id, "  ")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e =
        app.client(&tokens::street_dispatcher("shuiguohu")).withdraw_call(withdraw(&squad.id, "x")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!((app.case(&case.id).await, app.trail_len(&case.id).await), before);

    // A retry returns the first answer; a second withdrawal is refused.
    let request = withdraw(&squad.id, "重复派单");
    let first = app.street().withdraw_call(request.clone()).await.unwrap().into_inner();
    let again = app.street().withdraw_call(request).await.unwrap().into_inner();
    assert_eq!(first, again);
    let e = app.street().withdraw_call(withdraw(&squad.id, "重复派单")).await.unwrap_err();
    assert_eq!(reasons(&e), ["CALL_WITHDRAWN"]);
    assert_eq!(app.trail_len(&case.id).await, before.1 + 1);
    // The police call is still active: the case stays in the call procedure.
    assert_eq!(app.case(&case.id).await.state, pb::CaseState::Calling as i32);
    assert_eq!(app.case(&case.id).await.called_department_ids, ["gongan"]);
}

#[tokio::test]
async fn an_overdue_unsigned_call_may_be_withdrawn_which_clears_the_overdue_flag() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["shichang"]).await;
    app.clock.set(time(calls[0].sign_deadline.unwrap()) + TimeDelta::minutes(1));
    assert!(app.mark_sign_overdue(&calls[0].id).await);
    assert!(app.case(&case.id).await.overdue);
    let withdrawn =
        app.street().withdraw_call(withdraw(&calls[0].id, "部门无法联系，改派")).await.unwrap().into_inner();
    assert_eq!(withdrawn.state, pb::CallState::Withdrawn as i32);
    let after = app.case(&case.id).await;
    assert!(!after.overdue);
    assert_eq!(after.state, pb::CaseState::Triaged as i32);
}

/// A call to the police, signed, with its officer designated and checked in on time.
async fn checked_in(app: &TestApp) -> (pb::Case, pb::Call, String) {
    let (case, calls) = app.called_case(&["gongan"]).await;
    let call = &calls[0];
    app.sign(call).await;
    let person = officer("gongan");
    app.department("gongan")
        .designate_responders(pb::DesignateRespondersRequest {
            call_id: call.id.clone(),
            person_ids: vec![person.clone()],
            request_id: request_id(),
        })
        .await
        .unwrap();
    app.client(&tokens::field_officer(&person, "gongan"))
        .check_in(pb::CheckInRequest {
            call_id: call.id.clone(),
            location: point(PUMP_ROOM),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    (case, call.clone(), person)
}

fn inaction(call_id: &str, person_id: &str, note: &str) -> pb::RecordInactionRequest {
    pb::RecordInactionRequest {
        call_id: call_id.into(),
        person_id: person_id.into(),
        note: note.into(),
        request_id: request_id(),
    }
}

#[tokio::test]
async fn inaction_of_a_checked_in_person_is_recorded_once_with_a_typed_event() {
    let app = TestApp::spawn().await;
    let (case, call, person) = checked_in(&app).await;
    let trail = app.trail_len(&case.id).await;

    let request = inaction(&call.id, &person, "到场后未参与处置，拒绝进入水泵房");
    let recorded = app.street().record_inaction(request.clone()).await.unwrap().into_inner();
    let d = &recorded.designations[0];
    assert!(d.inaction_recorded);
    assert_eq!(d.inaction_note, "到场后未参与处置，拒绝进入水泵房");
    assert_eq!(d.check_in_status, pb::CheckInStatus::OnTime as i32, "the check-in itself stands");
    // A retry is the same answer, not a second record.
    assert_eq!(app.street().record_inaction(request).await.unwrap().into_inner(), recorded);
    assert_eq!(app.trail_len(&case.id).await, trail + 1);

    // Appraisal and referrals count it from the feed: typed, with the call and department.
    let event = app.events_of(&case.id).await.pop().unwrap();
    assert_eq!(event.event_type, pb::EventType::InactionRecorded as i32);
    assert_eq!((event.call_id.as_str(), event.department_id.as_str()), (call.id.as_str(), "gongan"));
    let Some(pb::event::Payload::InactionRecorded(payload)) = event.payload else { panic!() };
    assert_eq!(payload.person_id, person);
    assert_eq!(payload.note, "到场后未参与处置，拒绝进入水泵房");

    // Recording it again for the same person is refused: it would be counted twice.
    let e = app.street().record_inaction(inaction(&call.id, &person, "再次记录")).await.unwrap_err();
    assert_eq!(reasons(&e), ["INACTION_ALREADY_RECORDED"]);
    assert_eq!(app.trail_len(&case.id).await, trail + 1);
    let seen = app.department("gongan").get_call(pb::GetCallRequest { call_id: call.id }).await.unwrap().into_inner();
    assert!(seen.designations[0].inaction_recorded);
}

#[tokio::test]
async fn inaction_needs_a_checked_in_designated_person_and_the_street() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["chengguan"]).await;
    let call = &calls[0];
    app.sign(call).await;
    let person = officer("chengguan");
    app.department("chengguan")
        .designate_responders(pb::DesignateRespondersRequest {
            call_id: call.id.clone(),
            person_ids: vec![person.clone()],
            request_id: request_id(),
        })
        .await
        .unwrap();
    let trail_before = app.trail_len(&case.id).await;

    let e = app.street().record_inaction(inaction(&call.id, &person, "未作为")).await.unwrap_err();
    assert_eq!(reasons(&e), ["NOT_CHECKED_IN"]);
    let e = app.street().record_inaction(inaction(&call.id, &officer("gongan"), "未作为")).await.unwrap_err();
    assert_eq!(reasons(&e), ["NOT_DESIGNATED"]);
    let e = app.department("chengguan").record_inaction(inaction(&call.id, &person, "未作为")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = app.street().record_inaction(inaction(&call.id, &person, "")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = app.street().record_inaction(inaction("not-a-call", &person, "x")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // After the window closes the person is absent (不到位), which is not inaction.
    app.clock.advance(TimeDelta::hours(3));
    assert!(app.close_check_in(&call.id).await);
    let trail = app.trail_len(&case.id).await;
    let e = app.street().record_inaction(inaction(&call.id, &person, "未作为")).await.unwrap_err();
    assert_eq!(reasons(&e), ["NOT_CHECKED_IN"]);
    assert_eq!(app.trail_len(&case.id).await, trail);
    assert_eq!(trail_before + 2, trail, "only the escalation's absence and tally were recorded");
}
