//! Durable deadlines, end to end: the RPCs schedule and cancel them in their transactions,
//! the engine fires them at the manual clock's time (`fire_due`, one pass), and the
//! escalation appears on the feed and the trail with dispatch as the actor. Each test has
//! its own Redis namespace.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use minhu_deadlines::CalendarConfig;
use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tonic::Code;

use crate::helpers::*;

/// The trail of a case, oldest first.
async fn trail(app: &TestApp, case_id: &str) -> Vec<pb::TrailEntry> {
    app.street()
        .list_trail_entries(pb::ListTrailEntriesRequest {
            case_id: case_id.into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

fn of_type(events: &[pb::Event], t: pb::EventType) -> Vec<&pb::Event> {
    events.iter().filter(|e| e.event_type == t as i32).collect()
}

/// The state of the deadline of `kind` for `subject` (`pending`, `fired`, `cancelled`).
async fn deadline_state(app: &TestApp, kind: &str, subject: &str) -> String {
    let (state,): (String,) = sqlx::query_as(
        "SELECT state FROM minhu_deadlines WHERE kind = $1 AND subject = $2 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(kind)
    .bind(subject)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    state
}

async fn get_call(app: &TestApp, call: &pb::Call) -> pb::Call {
    app.street().get_call(pb::GetCallRequest { call_id: call.id.clone() }).await.unwrap().into_inner()
}

async fn designate(app: &TestApp, call: &pb::Call) -> String {
    let person = officer(&call.department_id);
    app.department(&call.department_id)
        .designate_responders(pb::DesignateRespondersRequest {
            call_id: call.id.clone(),
            person_ids: vec![person.clone()],
            request_id: request_id(),
        })
        .await
        .unwrap();
    person
}

async fn check_in(app: &TestApp, call: &pb::Call, person: &str, at: (f64, f64)) -> Result<pb::Call, tonic::Status> {
    app.client(&tokens::field_officer(person, &call.department_id))
        .check_in(pb::CheckInRequest {
            call_id: call.id.clone(),
            location: point(at),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn an_unsigned_call_is_marked_overdue_when_its_sign_deadline_fires_and_later_signs_late() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["gongan"]).await;
    let call = &calls[0];
    let sign_deadline = time(call.sign_deadline.unwrap());
    assert_eq!(app.fire_due().await, 0, "nothing is due yet");
    // A deadline is met at its instant: it fires only once that has passed.
    app.clock.set(sign_deadline);
    assert_eq!(app.fire_due().await, 0);

    app.clock.set(sign_deadline + TimeDelta::minutes(1));
    assert_eq!(app.fire_due().await, 1);
    assert_eq!(app.fire_due().await, 0, "a deadline fires once");
    assert_eq!(get_call(&app, call).await.state, pb::CallState::SignOverdue as i32);
    assert!(app.case(&case.id).await.overdue);

    let events = app.events_of(&case.id).await;
    let overdue = of_type(&events, pb::EventType::CallSignOverdue);
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].actor.as_ref().unwrap().service, "dispatch");
    assert_eq!(overdue[0].call_id, call.id);
    let entry = trail(&app, &case.id).await.pop().unwrap();
    assert_eq!(entry.event_type, pb::EventType::CallSignOverdue as i32);
    assert_eq!(entry.event_sequence, overdue[0].sequence);
    assert_eq!(entry.actor.unwrap().service, "dispatch");

    let signed = app.sign(call).await;
    assert_eq!(signed.state, pb::CallState::Signed as i32);
    assert!(signed.signed_late);
    let events = app.events_of(&case.id).await;
    let Some(pb::event::Payload::CallSigned(payload)) = &events.last().unwrap().payload else { panic!() };
    assert!(!payload.on_time);
    assert!(!app.case(&case.id).await.overdue);
}

#[tokio::test]
async fn a_call_signed_in_time_has_its_sign_deadline_cancelled_and_never_escalates() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["gongan"]).await;
    let call = &calls[0];
    assert_eq!(deadline_state(&app, "dispatch.sign", &call.id).await, "pending");
    app.sign(call).await;
    assert_eq!(deadline_state(&app, "dispatch.sign", &call.id).await, "cancelled");
    assert_eq!(deadline_state(&app, "dispatch.check_in", &call.id).await, "pending", "check-in still closes");

    app.clock.set(time(call.sign_deadline.unwrap()) + TimeDelta::minutes(1));
    assert_eq!(app.fire_due().await, 0);
    assert_eq!(get_call(&app, call).await.state, pb::CallState::Signed as i32);
    assert!(of_type(&app.events_of(&case.id).await, pb::EventType::CallSignOverdue).is_empty());
    assert!(!app.case(&case.id).await.overdue);
}

#[tokio::test]
async fn a_withdrawn_call_has_both_its_deadlines_cancelled() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["gongan"]).await;
    let call = &calls[0];
    app.street()
        .withdraw_call(pb::WithdrawCallRequest {
            call_id: call.id.clone(),
            reason: "改派".into(),
            request_id: request_id(),
        })
        .await
        .unwrap();
    assert_eq!(deadline_state(&app, "dispatch.sign", &call.id).await, "cancelled");
    assert_eq!(deadline_state(&app, "dispatch.check_in", &call.id).await, "cancelled");
    let trail_before = trail(&app, &case.id).await.len();
    app.clock.set(time(call.check_in_close_time.unwrap()) + TimeDelta::hours(1));
    assert_eq!(app.fire_due().await, 0);
    assert_eq!(trail(&app, &case.id).await.len(), trail_before);
}

#[tokio::test]
async fn the_check_in_window_closing_decides_on_time_late_and_absent_per_person() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["gongan", "chengguan", "shichang"]).await;
    let mut people = Vec::new();
    for call in &calls {
        app.sign(call).await;
        people.push(designate(&app, call).await);
    }
    let report_time = time(calls[0].report_time.unwrap());
    let near = (PUMP_ROOM.0 + 0.0003, PUMP_ROOM.1);
    // Police on time, urban management ten minutes late, market supervision never.
    check_in(&app, &calls[0], &people[0], near).await.unwrap();
    app.clock.set(report_time + TimeDelta::minutes(10));
    check_in(&app, &calls[1], &people[1], near).await.unwrap();
    assert_eq!(app.fire_due().await, 0, "the windows are still open");

    // The index keeps milliseconds: a deadline fires within one of its instant.
    app.clock.set(time(calls[0].check_in_close_time.unwrap()) + TimeDelta::milliseconds(1));
    assert_eq!(app.fire_due().await, 3, "one close per call, as the window closes");
    assert_eq!(app.fire_due().await, 0);

    let events = app.events_of(&case.id).await;
    let status_of = |t: pb::EventType, person: &str| {
        of_type(&events, t).into_iter().find_map(|e| match &e.payload {
            Some(pb::event::Payload::CheckIn(c)) if c.person_id == person => Some(c.status),
            _ => None,
        })
    };
    assert_eq!(status_of(pb::EventType::CheckInOnTime, &people[0]), Some(pb::CheckInStatus::OnTime as i32));
    assert_eq!(status_of(pb::EventType::CheckInLate, &people[1]), Some(pb::CheckInStatus::Late as i32));
    assert_eq!(status_of(pb::EventType::CheckInAbsent, &people[2]), Some(pb::CheckInStatus::Absent as i32));
    let absent = of_type(&events, pb::EventType::CheckInAbsent);
    assert_eq!(absent.len(), 1);
    assert_eq!(absent[0].actor.as_ref().unwrap().service, "dispatch");
    let closed = of_type(&events, pb::EventType::CheckInClosed);
    assert_eq!(closed.len(), 3);
    let tally = |department: &str| {
        closed.iter().find(|e| e.department_id == department).and_then(|e| match &e.payload {
            Some(pb::event::Payload::CheckInClosed(t)) => Some((t.on_time_count, t.late_count, t.absent_count)),
            _ => None,
        })
    };
    assert_eq!(tally("gongan"), Some((1, 0, 0)));
    assert_eq!(tally("chengguan"), Some((0, 1, 0)));
    assert_eq!(tally("shichang"), Some((0, 0, 1)));

    // Each decision is on the trail too, and the calls say so per person.
    let entries = trail(&app, &case.id).await;
    for t in [pb::EventType::CheckInOnTime, pb::EventType::CheckInLate, pb::EventType::CheckInAbsent] {
        assert_eq!(entries.iter().filter(|e| e.event_type == t as i32).count(), 1, "{t:?}");
    }
    assert_eq!(entries.iter().filter(|e| e.event_type == pb::EventType::CheckInClosed as i32).count(), 3);
    let expected = [pb::CheckInStatus::OnTime, pb::CheckInStatus::Late, pb::CheckInStatus::Absent];
    for (call, status) in calls.iter().zip(expected) {
        let seen = get_call(&app, call).await;
        assert!(seen.check_in_closed);
        assert_eq!(seen.designations[0].check_in_status, status as i32, "{}", call.department_id);
    }
    let verified =
        app.street().verify_trail(pb::VerifyTrailRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    assert!(verified.verified);
}

#[tokio::test]
async fn a_check_in_outside_the_radius_is_refused_and_records_nothing() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["gongan"]).await;
    let call = &calls[0];
    app.sign(call).await;
    let person = designate(&app, call).await;
    let trail_before = trail(&app, &case.id).await.len();

    let refused = check_in(&app, call, &person, SHUIGUOHU).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reasons(&refused), ["OUT_OF_RANGE"]);
    assert_eq!(trail(&app, &case.id).await.len(), trail_before);
    let seen = get_call(&app, call).await;
    assert_eq!(seen.designations[0].check_in_status, pb::CheckInStatus::Pending as i32);

    // Never having arrived where it counts, the person is absent when the window closes.
    app.clock.set(time(call.check_in_close_time.unwrap()) + TimeDelta::milliseconds(1));
    assert_eq!(app.fire_due().await, 1);
    let seen = get_call(&app, call).await;
    assert_eq!(seen.designations[0].check_in_status, pb::CheckInStatus::Absent as i32);
}

#[tokio::test]
async fn a_task_still_open_when_its_window_ends_is_marked_overdue_by_its_deadline() {
    let app = TestApp::spawn().await;
    let (case_id, calls, tasks) = app.handling_case(&["gongan", "chengguan"]).await;
    // Urban management finishes in its window; the police do not.
    let done = &tasks[1];
    let feedback = app
        .department(&done.department_id)
        .submit_feedback(pb::SubmitFeedbackRequest {
            task_id: done.id.clone(),
            text: "已拆除".into(),
            handling_opinion: "已落实".into(),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    app.street()
        .review_feedback(pb::ReviewFeedbackRequest {
            feedback_id: feedback.id,
            decision: pb::ReviewDecision::Accept as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(deadline_state(&app, "dispatch.task", &done.id).await, "cancelled");
    assert_eq!(deadline_state(&app, "dispatch.task", &tasks[0].id).await, "pending");

    let window_end = time(tasks[0].window.unwrap().end_time.unwrap());
    app.clock.set(window_end + TimeDelta::seconds(1));
    // The calls' check-in windows closed long before; their deadlines fire in this pass too.
    assert_eq!(app.fire_due().await, calls.len() + 1);

    let events = app.events_of(&case_id).await;
    let overdue = of_type(&events, pb::EventType::TaskOverdue);
    assert_eq!(overdue.len(), 1);
    let Some(pb::event::Payload::TaskOverdue(payload)) = &overdue[0].payload else { panic!() };
    assert_eq!(payload.task_id, tasks[0].id);
    assert_eq!(overdue[0].actor.as_ref().unwrap().service, "dispatch");
    assert_eq!(
        trail(&app, &case_id).await.iter().filter(|e| e.event_type == pb::EventType::TaskOverdue as i32).count(),
        1
    );
    let task = app.street().get_task(pb::GetTaskRequest { task_id: tasks[0].id.clone() }).await.unwrap().into_inner();
    assert!(task.overdue);
    assert!(app.case(&case_id).await.overdue);
}

#[tokio::test]
async fn deadlines_lost_from_redis_are_rebuilt_by_reconcile_and_still_fire() {
    let app = TestApp::spawn().await;
    let (case, calls) = app.called_case(&["gongan"]).await;
    let call = &calls[0];

    // Redis loses everything of this dispatch (flushed, restarted empty).
    let mut redis = app.redis.connection().await;
    let indexed: usize = redis::cmd("ZCARD").arg(app.deadlines.due_key()).query_async(&mut redis).await.unwrap();
    assert_eq!(indexed, 2, "the sign and check-in deadlines were indexed after the commit");
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}*", app.redis.prefix())).query_async(&mut redis).await.unwrap();
    assert!(!keys.is_empty(), "scheduling indexed the deadlines");
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await.unwrap();

    app.clock.set(time(call.sign_deadline.unwrap()) + TimeDelta::minutes(1));
    assert_eq!(app.fire_due().await, 0, "nothing left to claim");
    assert_eq!(app.engine.reconcile().await.unwrap(), 2, "the sign and check-in deadlines are pending in postgres");
    assert_eq!(app.fire_due().await, 1);
    assert_eq!(get_call(&app, call).await.state, pb::CallState::SignOverdue as i32);
    app.clock.set(time(call.check_in_close_time.unwrap()) + TimeDelta::milliseconds(1));
    assert_eq!(app.fire_due().await, 1);
    let events = app.events_of(&case.id).await;
    assert_eq!(of_type(&events, pb::EventType::CallSignOverdue).len(), 1);
    assert_eq!(of_type(&events, pb::EventType::CheckInClosed).len(), 1);
}

/// 2030's National Day week: 1–7 October off, Sunday 29 September worked (调休).
fn national_day_2030() -> CalendarConfig {
    let day = |m, d| NaiveDate::from_ymd_opt(2030, m, d).unwrap();
    CalendarConfig {
        holidays: (1..=7).map(|d| day(10, d)).collect(),
        make_up_days: vec![day(9, 29)],
        ..CalendarConfig::default()
    }
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

#[tokio::test]
async fn a_rectification_without_a_due_time_is_due_in_working_days_that_skip_holidays() {
    let app = TestApp::spawn_with(|c| c.deadlines.calendar = national_day_2030()).await;
    // Thursday 26 September 2030, 10:00 in Wuhan.
    app.clock.set(at("2030-09-26T10:00:00+08:00"));
    let (case_id, rects) = app.rectifying_case_due(&["gongan"], None).await;
    let rect = &rects[0];
    // Five working days, the day itself not counted: Fri 27, Sun 29 (made up), Mon 30, then
    // after the holiday Tue 8 and Wed 9 October, at the close of work.
    let due = at("2030-10-09T17:30:00+08:00");
    assert_eq!(time(rect.due_time.unwrap()), due);
    assert_eq!(deadline_state(&app, "dispatch.rectification", &rect.id).await, "pending");

    app.clock.set(due);
    app.fire_due().await; // The call's check-in window, closed long ago.
    assert!(of_type(&app.events_of(&case_id).await, pb::EventType::RectificationOverdue).is_empty());

    app.clock.set(due + TimeDelta::seconds(1));
    assert_eq!(app.fire_due().await, 2, "the rectification and its task");
    let events = app.events_of(&case_id).await;
    let overdue = of_type(&events, pb::EventType::RectificationOverdue);
    assert_eq!(overdue.len(), 1);
    let Some(pb::event::Payload::RectificationOverdue(payload)) = &overdue[0].payload else { panic!() };
    assert_eq!((payload.rectification_id.as_str(), payload.due_time), (rect.id.as_str(), rect.due_time));
    assert_eq!(overdue[0].actor.as_ref().unwrap().service, "dispatch");
    let task_overdue = of_type(&events, pb::EventType::TaskOverdue);
    let Some(pb::event::Payload::TaskOverdue(task)) = &task_overdue[0].payload else { panic!() };
    assert_eq!((task.task_id.as_str(), task.kind), (rect.task_id.as_str(), pb::TaskKind::Rectification as i32));
    assert!(trail(&app, &case_id).await.iter().any(|e| e.event_type == pb::EventType::RectificationOverdue as i32));
    let seen = app
        .street()
        .get_rectification(pb::GetRectificationRequest { rectification_id: rect.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(seen.overdue);
    assert!(app.case(&case_id).await.overdue);

    // Overdue, the rectification may now be re-rated (a rule no request could reach before).
    app.street()
        .rerate_department(pb::RerateDepartmentRequest {
            case_id: case_id.clone(),
            department_id: "gongan".into(),
            satisfaction: pb::Satisfaction::Dissatisfied as i32,
            comment: "逾期未整改".into(),
            request_id: request_id(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_engine_runs_beside_the_server_and_fires_by_itself() {
    let app = TestApp::spawn_with(|c| c.deadlines.fire_in_background = true).await;
    let (_, calls) = app.called_case(&["gongan"]).await;
    let call = &calls[0];
    app.clock.set(time(call.sign_deadline.unwrap()) + TimeDelta::minutes(1));
    let overdue = tokio::time::timeout(WAIT, async {
        loop {
            if get_call(&app, call).await.state == pb::CallState::SignOverdue as i32 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(overdue.is_ok(), "the background engine did not fire the sign deadline");
}

/// Waits until `n` sessions of the test database wait for a row lock.
async fn lock_waiters(app: &TestApp, n: i64) {
    let waiting = async {
        loop {
            let (count,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
            if count >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(WAIT, waiting).await.unwrap_or_else(|_| panic!("fewer than {n} waited for a lock"));
}

#[tokio::test]
async fn signing_at_the_instant_the_sign_deadline_fires_never_returns_an_error() {
    // The firing and the SignCall lock the same two rows, the case and the deadline row. A
    // third transaction holds the case while both queue behind it, in either order; once it
    // lets go they must take the rows one after the other (one order everywhere), never
    // each hold one and wait for the other.
    let app = TestApp::spawn().await;
    for round in 0..8 {
        let (case, calls) = app.called_case(&["gongan"]).await;
        let call = &calls[0];
        // The first instant the engine fires the deadline (due just after the sign deadline,
        // indexed by the whole millisecond).
        let due = time(call.sign_deadline.unwrap()) + TimeDelta::microseconds(1);
        app.clock.set(DateTime::from_timestamp_millis(due.timestamp_millis() + 1).unwrap());
        let mut holder = app.pool.begin().await.unwrap();
        sqlx::query("SELECT 1 FROM cases WHERE id = $1::uuid FOR UPDATE")
            .bind(&case.id)
            .execute(&mut *holder)
            .await
            .unwrap();
        let sign = {
            let mut client = app.department("gongan");
            let request = pb::SignCallRequest { call_id: call.id.clone(), request_id: request_id() };
            async move { client.sign_call(request).await }
        };
        let fire = {
            let engine = app.engine.clone();
            async move { engine.fire_due().await }
        };
        let (signed, fired) = if round % 2 == 0 {
            let signing = tokio::spawn(sign);
            lock_waiters(&app, 1).await;
            let firing = tokio::spawn(fire);
            lock_waiters(&app, 2).await;
            holder.commit().await.unwrap();
            (signing.await.unwrap(), firing.await.unwrap())
        } else {
            let firing = tokio::spawn(fire);
            lock_waiters(&app, 1).await;
            let signing = tokio::spawn(sign);
            lock_waiters(&app, 2).await;
            holder.commit().await.unwrap();
            (signing.await.unwrap(), firing.await.unwrap())
        };
        let signed = signed.unwrap_or_else(|e| panic!("round {round}: signing failed: {e:?}")).into_inner();
        fired.unwrap();
        assert_eq!(signed.state, pb::CallState::Signed as i32, "round {round}");
        // Whichever went first, the deadline is spent and nothing is left to fire.
        assert_ne!(deadline_state(&app, "dispatch.sign", &call.id).await, "pending", "round {round}");
        // Nor did the firing fail (a deadlock victim is rolled back and retried later).
        let (error,): (Option<String>,) =
            sqlx::query_as("SELECT last_error FROM minhu_deadlines WHERE kind = 'dispatch.sign' AND subject = $1")
                .bind(&call.id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert_eq!(error, None, "round {round}: the firing failed");
        assert_eq!(app.fire_due().await, 0, "round {round}");
        assert_eq!(get_call(&app, call).await.state, pb::CallState::Signed as i32, "round {round}");
    }
}
