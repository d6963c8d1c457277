//! The escalation hooks the durable deadlines fire (`deadlines.rs` tests the firing), called
//! directly: a missed sign deadline (签收超时) and a missed task window (任务超时). Each is
//! recorded once, by the dispatch service itself, on the trail and the feed.

use chrono::TimeDelta;
use minhu_proto::dispatch::v1 as pb;

use crate::helpers::*;

#[tokio::test]
async fn an_unsigned_call_past_its_deadline_is_marked_overdue_once_and_signs_late() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["gongan"]).await;
    let call = &calls[0];
    // Not before the deadline.
    assert!(!app.mark_sign_overdue(&call.id).await);
    let trail = app.trail_len(&case.id).await;

    app.clock.set(time(call.sign_deadline.unwrap()) + TimeDelta::seconds(1));
    assert!(app.mark_sign_overdue(&call.id).await);
    assert!(!app.mark_sign_overdue(&call.id).await, "a second run records nothing");
    assert_eq!(app.trail_len(&case.id).await, trail + 1);

    let police = app.department("gongan");
    let overdue = police.clone().get_call(pb::GetCallRequest { call_id: call.id.clone() }).await.unwrap().into_inner();
    assert_eq!(overdue.state, pb::CallState::SignOverdue as i32);
    assert!(app.case(&case.id).await.overdue);

    // The feed and the trail say so, with the service as the actor.
    let events = app.events_of(&case.id).await;
    let escalated = events.last().unwrap();
    assert_eq!(escalated.event_type, pb::EventType::CallSignOverdue as i32);
    assert_eq!((escalated.call_id.as_str(), escalated.department_id.as_str()), (call.id.as_str(), "gongan"));
    let Some(pb::event::Payload::CallSignOverdue(payload)) = &escalated.payload else { panic!("{escalated:?}") };
    assert_eq!(payload.sign_deadline, call.sign_deadline);
    assert_eq!(escalated.actor.as_ref().unwrap().service, "dispatch");
    assert_eq!(events.iter().filter(|e| e.event_type == pb::EventType::CallSignOverdue as i32).count(), 1);
    let trail = app
        .street()
        .list_trail_entries(pb::ListTrailEntriesRequest { case_id: case.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let entry = trail.entries.last().unwrap();
    assert_eq!(entry.event_type, pb::EventType::CallSignOverdue as i32);
    assert_eq!(entry.event_sequence, escalated.sequence);

    // Signing is still accepted, marked late, and the case is no longer overdue.
    let signed = app.sign(call).await;
    assert_eq!(signed.state, pb::CallState::Signed as i32);
    assert!(signed.signed_late);
    assert!(!app.case(&case.id).await.overdue);
    let events = app.events_of(&case.id).await;
    let Some(pb::event::Payload::CallSigned(payload)) = &events.last().unwrap().payload else { panic!() };
    assert!(!payload.on_time);
    // Once signed, the hook has nothing left to do.
    assert!(!app.mark_sign_overdue(&call.id).await);
    let verified =
        app.street().verify_trail(pb::VerifyTrailRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    assert!(verified.verified);
}

#[tokio::test]
async fn a_task_past_its_window_is_marked_overdue_once_and_stays_so() {
    let app = TestApp::spawn().await;
    let (case_id, _, tasks) = app.handling_case(&["gongan"]).await;
    let task = &tasks[0];
    assert!(!app.mark_task_overdue(&task.id).await, "the window has not ended");
    let trail = app.trail_len(&case_id).await;

    app.clock.advance(TimeDelta::days(1) + TimeDelta::seconds(1));
    assert!(app.mark_task_overdue(&task.id).await);
    assert!(!app.mark_task_overdue(&task.id).await, "a second run records nothing");
    assert_eq!(app.trail_len(&case_id).await, trail + 1);

    let police = app.department("gongan");
    let overdue = police.clone().get_task(pb::GetTaskRequest { task_id: task.id.clone() }).await.unwrap().into_inner();
    assert!(overdue.overdue);
    assert_eq!(overdue.state, pb::TaskState::Open as i32);
    assert!(app.case(&case_id).await.overdue);
    let escalated = app.events_of(&case_id).await.pop().unwrap();
    assert_eq!(escalated.event_type, pb::EventType::TaskOverdue as i32);
    let Some(pb::event::Payload::TaskOverdue(payload)) = &escalated.payload else { panic!("{escalated:?}") };
    assert_eq!(payload.task_id, task.id);
    assert_eq!(payload.kind, pb::TaskKind::Regular as i32);
    assert_eq!(payload.window_end_time, task.window.unwrap().end_time);

    // Late feedback is accepted and marked late; the task stays flagged.
    let feedback = police
        .clone()
        .submit_feedback(pb::SubmitFeedbackRequest {
            task_id: task.id.clone(),
            text: "已处置".into(),
            handling_opinion: "延期完成".into(),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!feedback.on_time);
    let after = police.clone().get_task(pb::GetTaskRequest { task_id: task.id.clone() }).await.unwrap().into_inner();
    assert!(after.overdue);
    assert!(!app.mark_task_overdue(&task.id).await);
}
