//! Appraisal (绩效考评) following dispatch's feed in the running suite: the seed's pump-room
//! demo on real time, and a day of cases across three streets on a manual clock, each ending
//! in the league table the appraisal rules give by hand.

use std::time::Duration;

use minhu_e2e::Suite;
use minhu_proto::{appraisal::v1 as apb, dispatch::v1 as pb};
use minhu_testkit::tokens;
use tokio_stream::StreamExt as _;

/// How long appraisal may take to catch up with dispatch's feed.
const CATCH_UP: Duration = Duration::from_secs(30);

/// Dispatch's feed head now (the head a StreamEvents message carries).
async fn dispatch_head(suite: &Suite) -> i64 {
    let mut feed = suite
        .dispatch(&tokens::service("appraisal"))
        .stream_events(pb::StreamEventsRequest::default())
        .await
        .expect("opening the feed")
        .into_inner();
    let first = tokio::time::timeout(CATCH_UP, feed.next())
        .await
        .expect("the feed said nothing")
        .expect("the feed ended")
        .expect("the feed failed");
    first.head_sequence
}

/// Waits until appraisal has applied dispatch's feed up to its current head (GetFeedStatus).
async fn caught_up(suite: &Suite) -> apb::FeedStatus {
    let head = dispatch_head(suite).await;
    assert!(head > 0, "dispatch has events");
    let mut admin = suite.appraisal(&tokens::district_admin());
    let give_up = tokio::time::Instant::now() + CATCH_UP;
    loop {
        let status = admin.get_feed_status(apb::GetFeedStatusRequest {}).await.expect("feed status").into_inner();
        if status.last_applied_sequence >= head {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "appraisal did not apply the feed up to {head} within {CATCH_UP:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The league table of a period (`street` empty: all streets).
async fn table(suite: &Suite, period_id: &str, street: &str) -> Vec<apb::DepartmentScore> {
    suite
        .appraisal(&tokens::district_admin())
        .list_department_scores(apb::ListDepartmentScoresRequest {
            period_id: period_id.into(),
            street_id: street.into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("listing department scores")
        .into_inner()
        .scores
}

fn score<'a>(table: &'a [apb::DepartmentScore], department: &str) -> &'a apb::DepartmentScore {
    table.iter().find(|s| s.department_id == department).unwrap_or_else(|| panic!("{department} is in the table"))
}

/// (response, completion, satisfaction, composite) in basis points.
fn rates(s: &apb::DepartmentScore) -> (Option<i32>, Option<i32>, Option<i32>, Option<i32>) {
    (s.response_rate_bp, s.completion_rate_bp, s.satisfaction_rate_bp, s.composite_bp)
}

/// Departments with calls, by rank: (department, rank, composite).
fn league(table: &[apb::DepartmentScore]) -> Vec<(&str, i32, Option<i32>)> {
    table.iter().filter(|s| s.calls_count > 0).map(|s| (s.department_id.as_str(), s.rank, s.composite_bp)).collect()
}

#[tokio::test]
async fn the_pump_room_demo_runs_end_to_end_and_scores_follow() {
    let suite = Suite::builder().demo_deadlines().start().await;
    let endpoints = minhu_suite::demo::Endpoints {
        dispatch: format!("http://{}", suite.dispatch_service().addr()),
        appraisal: format!("http://{}", suite.appraisal_service().addr()),
    };
    let case_id = minhu_suite::demo::run(&endpoints).await.expect("the demo runs to the end");

    let mut district = suite.district();
    let case = district.get_case(pb::GetCaseRequest { case_id: case_id.clone() }).await.expect("the case").into_inner();
    assert_eq!(case.state(), pb::CaseState::Closed);
    let verdict = district
        .verify_trail(pb::VerifyTrailRequest { case_id: case_id.clone() })
        .await
        .expect("verifying")
        .into_inner();
    assert!(verdict.verified, "the trail verifies: {verdict:?}");
    assert!(verdict.entries_checked > 0);

    // Planning (规划分局) let its sign deadline pass and its officer arrived after the report time.
    let calls = district
        .list_calls(pb::ListCallsRequest { case_id: case_id.clone(), page_size: 50, ..Default::default() })
        .await
        .expect("listing the calls")
        .into_inner()
        .calls;
    assert_eq!(calls.len(), 4);
    for call in &calls {
        let late = call.department_id == "guihua";
        assert_eq!(call.signed_late, late, "{} signed_late", call.department_id);
        let statuses: Vec<_> = call.designations.iter().map(|d| d.check_in_status()).collect();
        let expected = if late { pb::CheckInStatus::Late } else { pb::CheckInStatus::OnTime };
        assert_eq!(statuses, [expected], "{}'s designation", call.department_id);
    }

    // The month the demo opened; appraisal has applied every event of the case.
    caught_up(&suite).await;
    let periods = suite
        .appraisal(&tokens::district_admin())
        .list_periods(apb::ListPeriodsRequest { kind: apb::PeriodKind::Month as i32, ..Default::default() })
        .await
        .expect("listing periods")
        .into_inner()
        .periods;
    assert_eq!(periods.len(), 1, "the demo opened this month's period");
    let scores = table(&suite, &periods[0].id, "").await;

    // guihua: signed late → response 0/1; its task done in its window → completion 1/1; rated
    // dissatisfied, rectified, re-rated basically satisfied (the current rating counts) → 1/1.
    // composite = 0×1000 + 10000×4000 + 10000×5000, /10000 = 0 + 4000 + 5000 = 9000.
    let guihua = score(&scores, "guihua");
    assert_eq!((guihua.calls_count, guihua.signed_late_count, guihua.check_in_late_count), (1, 1, 1));
    assert_eq!((guihua.rated_count, guihua.basically_satisfied_count, guihua.rectification_count), (1, 1, 1));
    assert_eq!(rates(guihua), (Some(0), Some(10000), Some(10000), Some(9000)));
    // The other three: all on time, satisfied → 1000 + 4000 + 5000 = 10000, sharing rank 1.
    for department in ["gongan", "shichang", "chengguan"] {
        let s = score(&scores, department);
        assert_eq!((s.calls_count, s.responded_count, s.completed_count, s.satisfied_count), (1, 1, 1, 1));
        assert_eq!(rates(s), (Some(10000), Some(10000), Some(10000), Some(10000)), "{department}");
    }
    let mut order = league(&scores);
    order[..3].sort();
    assert_eq!(
        order,
        [
            ("chengguan", 1, Some(10000)),
            ("gongan", 1, Some(10000)),
            ("shichang", 1, Some(10000)),
            ("guihua", 4, Some(9000))
        ]
    );

    suite.stop().await;
}

/// What befalls one call of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Signed in time, the officer on the spot before the report time, the task done in its
    /// window.
    Clean,
    /// Signed only after the sign deadline's escalation (CALL_SIGN_OVERDUE); otherwise clean.
    SignsLate,
    /// The designated officer never checks in (不到位); otherwise clean.
    Absent,
    /// The task runs past its window (TASK_OVERDUE) and is completed after; otherwise clean.
    Overdue,
}

/// One case of the day: the calling street and each called department's turn and rating.
struct Plan {
    street: &'static str,
    calls: &'static [(&'static str, Turn, pb::Satisfaction)],
}

/// A case of the day, as it goes: its id and its calls.
struct Running {
    street: &'static str,
    case_id: String,
    calls: Vec<pb::Call>,
}

/// 2026-03-10 09:00 in Wuhan (UTC+8): the day starts.
fn morning() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone as _;
    chrono::Utc.with_ymd_and_hms(2026, 3, 10, 1, 0, 0).single().expect("a time")
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The centre of a seed street.
fn centre(street: &str) -> (f64, f64) {
    let (_, _, lat, lng) = *minhu_roster::seed::STREETS.iter().find(|s| s.0 == street).expect("a seed street");
    (lat, lng)
}

fn point((latitude, longitude): (f64, f64)) -> Option<minhu_proto::common::v1::GeoPoint> {
    Some(minhu_proto::common::v1::GeoPoint { latitude, longitude })
}

/// Officer 1 of the street's station of the department.
fn officer(street: &str, department: &str) -> String {
    let number = minhu_roster::seed::officer_number(&format!("{street}-{department}"), 1);
    minhu_roster::seed::person_id(&number).to_string()
}

fn qualification(department: &str) -> minhu_proto::common::v1::Qualification {
    use minhu_proto::common::v1::Qualification;
    match department {
        "gongan" => Qualification::PoliceOfficer,
        _ => Qualification::LawEnforcementCertificate,
    }
}

fn turn(plan: &Plan, department: &str) -> Turn {
    plan.calls.iter().find(|c| c.0 == department).expect("a planned call").1
}

/// Signs a call as its department and names the street's officer 1.
async fn sign_and_designate(suite: &Suite, street: &str, call: &pb::Call) -> pb::Call {
    let mut department = suite.department(&call.department_id);
    let signed = department
        .sign_call(pb::SignCallRequest { call_id: call.id.clone(), request_id: request_id() })
        .await
        .expect("signing")
        .into_inner();
    department
        .designate_responders(pb::DesignateRespondersRequest {
            call_id: call.id.clone(),
            person_ids: vec![officer(street, &call.department_id)],
            request_id: request_id(),
        })
        .await
        .expect("designating");
    signed
}

/// The officer reports (报到) ~20 m from the call's report place at the clock's time.
async fn check_in(suite: &Suite, street: &str, call: &pb::Call, now: chrono::DateTime<chrono::Utc>) {
    let here = call.report_place.as_ref().and_then(|p| p.location).expect("the call's report place");
    let (lat, lng) = (here.latitude, here.longitude);
    let person = officer(street, &call.department_id);
    let checked = suite
        .officer(&person, &call.department_id)
        .check_in(pb::CheckInRequest {
            call_id: call.id.clone(),
            location: point((lat + 0.0002, lng)),
            device_time: ts(now),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .expect("checking in")
        .into_inner();
    assert_eq!(checked.designations[0].check_in_status(), pb::CheckInStatus::OnTime);
}

/// Feeds back on a task as its department; the calling street accepts it.
async fn feed_back(suite: &Suite, street: &str, task: &pb::Task) -> pb::DepartmentResult {
    let feedback = suite
        .department(&task.department_id)
        .submit_feedback(pb::SubmitFeedbackRequest {
            task_id: task.id.clone(),
            text: "已处置".into(),
            handling_opinion: "按协商意见落实".into(),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .expect("feeding back")
        .into_inner();
    suite
        .dispatch(&tokens::street_dispatcher(street))
        .review_feedback(pb::ReviewFeedbackRequest {
            feedback_id: feedback.id.clone(),
            decision: pb::ReviewDecision::Accept as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .expect("accepting the feedback");
    pb::DepartmentResult {
        department_id: task.department_id.clone(),
        summary: "完成".into(),
        feedback_ids: vec![feedback.id],
    }
}

/// Morning, at `now`: intake at the street's centre, triage, the call (report six hours
/// out); the departments that sign in time sign and designate, and their officers who come
/// check in at once.
async fn call_out(suite: &Suite, plan: &Plan, now: chrono::DateTime<chrono::Utc>) -> Running {
    let mut street = suite.dispatch(&tokens::street_dispatcher(plan.street));
    // Each case ~80 m north of the last: appeals of one category within 50 m are repeats
    // (重复诉求) of one lead and would not be called on their own.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (lat, lng) = centre(plan.street);
    let place = pb::Place {
        address: format!("{}街道中心", plan.street),
        location: point((lat + 0.0007 * f64::from(n), lng)),
    };
    let case = street
        .create_case(pb::CreateCaseRequest {
            case: Some(pb::Case {
                channel: pb::Channel::GridWorker as i32,
                category: "城市管理/占道经营".into(),
                title: format!("{} 占道经营", plan.street),
                description: "街道中心路口占道经营，居民反复投诉".into(),
                place: Some(place.clone()),
                urgency: pb::Urgency::Normal as i32,
                reporter: Some(pb::Reporter {
                    name: "李四".into(), phone: "13912341234".into(), ..Default::default()
                }),
                ..Default::default()
            }),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .expect("intake")
        .into_inner();
    assert_eq!(case.street_id, plan.street, "the roster places the case in its street");
    street
        .triage_case(pb::TriageCaseRequest {
            case_id: case.id.clone(),
            decision: pb::TriageDecision::StartCall as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .expect("triage");
    let calls = street
        .start_call(pb::StartCallRequest {
            case_id: case.id.clone(),
            calls: plan
                .calls
                .iter()
                .map(|(d, _, _)| pb::Call {
                    department_id: (*d).into(),
                    matters: format!("{d}: 占道经营的处置"),
                    expected_goal: "恢复道路通行".into(),
                    staff_requirement: Some(pb::StaffRequirement {
                        count: 1,
                        qualification: qualification(d) as i32,
                        note: String::new(),
                    }),
                    report_time: ts(now + chrono::TimeDelta::hours(6)),
                    report_place: Some(place.clone()),
                    ..Default::default()
                })
                .collect(),
            request_id: request_id(),
        })
        .await
        .expect("starting the call")
        .into_inner()
        .calls;
    for call in &calls {
        let turn = turn(plan, &call.department_id);
        if turn != Turn::SignsLate {
            let signed = sign_and_designate(suite, plan.street, call).await;
            assert!(!signed.signed_late);
        }
        if matches!(turn, Turn::Clean | Turn::Overdue) {
            check_in(suite, plan.street, call, now).await;
        }
    }
    Running { street: plan.street, case_id: case.id, calls }
}

/// Afternoon, at `now` (check-in closed): consultation with a task per call, window two
/// hours; every department whose task is not to run over feeds back at once.
async fn consult(
    suite: &Suite,
    plan: &Plan,
    case: &Running,
    now: chrono::DateTime<chrono::Utc>,
) -> (Vec<pb::Task>, Vec<pb::DepartmentResult>) {
    let tasks = suite
        .dispatch(&tokens::street_dispatcher(plan.street))
        .record_consultation(pb::RecordConsultationRequest {
            case_id: case.case_id.clone(),
            consultation: Some(pb::Consultation {
                meeting_time: ts(now),
                attendee_person_ids: case.calls.iter().map(|c| officer(plan.street, &c.department_id)).collect(),
                analysis: "占道经营，涉及多个部门".into(),
                plan: "各部门按分工处置".into(),
                ..Default::default()
            }),
            tasks: case
                .calls
                .iter()
                .map(|c| pb::Task {
                    call_id: c.id.clone(),
                    description: format!("{} 的任务", c.department_id),
                    window: Some(minhu_proto::common::v1::TimeRange {
                        start_time: ts(now),
                        end_time: ts(now + chrono::TimeDelta::hours(2)),
                    }),
                    ..Default::default()
                })
                .collect(),
            request_id: request_id(),
        })
        .await
        .expect("recording the consultation")
        .into_inner()
        .tasks;
    let mut results = Vec::new();
    for task in tasks.iter().filter(|t| turn(plan, &t.department_id) != Turn::Overdue) {
        results.push(feed_back(suite, plan.street, task).await);
    }
    (tasks, results)
}

/// Evening: the report, the street's ratings of its own calls, and the close.
async fn rate_and_close(suite: &Suite, plan: &Plan, case: &Running, results: Vec<pb::DepartmentResult>) {
    let mut street = suite.dispatch(&tokens::street_dispatcher(plan.street));
    street
        .submit_case_report(pb::SubmitCaseReportRequest {
            report: Some(pb::CaseReport {
                case_id: case.case_id.clone(),
                summary: "处置完毕".into(),
                department_results: results,
                ..Default::default()
            }),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .expect("the case report");
    // 回访 before 评价.
    street
        .record_callback(pb::RecordCallbackRequest {
            case_id: case.case_id.clone(),
            callback: Some(pb::Callback {
                method: pb::CallbackMethod::Phone as i32,
                reached: true,
                reporter_satisfaction: pb::Satisfaction::Satisfied as i32,
                callback_time: ts(chrono::Utc::now()),
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .expect("the callback");
    for (department, _, satisfaction) in plan.calls {
        street
            .rate_department(pb::RateDepartmentRequest {
                case_id: case.case_id.clone(),
                department_id: (*department).into(),
                satisfaction: *satisfaction as i32,
                comment: if *satisfaction == pb::Satisfaction::Dissatisfied { "拖延".into() } else { String::new() },
                request_id: request_id(),
            })
            .await
            .expect("rating");
    }
    let closed = street
        .close_case(pb::CloseCaseRequest {
            case_id: case.case_id.clone(),
            summary: "办结".into(),
            request_id: request_id(),
        })
        .await
        .expect("closing")
        .into_inner();
    assert_eq!(closed.state(), pb::CaseState::Closed);
}

/// The day: four cases from three streets.
///
/// | case | street | gongan 公安 | chengguan 城管 | shichang 市场 |
/// |---|---|---|---|---|
/// | Z1 | zhongnanlu 中南路 | clean, 满意 | clean, 满意 | signs late, 基本满意 |
/// | Z2 | zhongnanlu 中南路 | clean, 满意 | — | — |
/// | S | shuiguohu 水果湖 | clean, 不满意 (no rectification) | officer absent, 满意 | — |
/// | Y | ziyang 紫阳 | task overdue then done, 基本满意 | — | — |
const DAY: [Plan; 4] = {
    use pb::Satisfaction::{BasicallySatisfied, Dissatisfied, Satisfied};
    [
        Plan {
            street: "zhongnanlu",
            calls: &[
                ("gongan", Turn::Clean, Satisfied),
                ("chengguan", Turn::Clean, Satisfied),
                ("shichang", Turn::SignsLate, BasicallySatisfied),
            ],
        },
        Plan { street: "zhongnanlu", calls: &[("gongan", Turn::Clean, Satisfied)] },
        Plan {
            street: "shuiguohu",
            calls: &[("gongan", Turn::Clean, Dissatisfied), ("chengguan", Turn::Absent, Satisfied)],
        },
        Plan { street: "ziyang", calls: &[("gongan", Turn::Overdue, BasicallySatisfied)] },
    ]
};

/// The counts of a score: (calls, signed on time, signed late, checked in on time, absent,
/// response due, responded, completion due, completed, completed late, rated, satisfied,
/// basically satisfied, dissatisfied).
type Counts = [i32; 14];

fn counts(s: &apb::DepartmentScore) -> Counts {
    [
        s.calls_count,
        s.signed_on_time_count,
        s.signed_late_count,
        s.check_in_on_time_count,
        s.check_in_absent_count,
        s.response_due_count,
        s.responded_count,
        s.completion_due_count,
        s.completed_count,
        s.completed_late_count,
        s.rated_count,
        s.satisfied_count,
        s.basically_satisfied_count,
        s.dissatisfied_count,
    ]
}

#[tokio::test]
async fn a_day_across_three_streets_adds_up_to_hand_computed_scores() {
    let t0 = morning();
    let clock = minhu_e2e::ManualClock::new(t0);
    let suite = Suite::builder().clock(clock.clone()).start().await;
    let [z1, z2, s, y] = &DAY;

    // 09:00: the four cases call out at once.
    let (rz1, rz2, rs, ry) = tokio::join!(
        call_out(&suite, z1, t0),
        call_out(&suite, z2, t0),
        call_out(&suite, s, t0),
        call_out(&suite, y, t0)
    );
    let day = [(z1, rz1), (z2, rz2), (s, rs), (y, ry)];

    // 13:01: past the four-hour sign deadline. Only 中南路's call to shichang is unsigned; it
    // goes overdue, then shichang signs (late) and its officer checks in before the report time.
    clock.set(t0 + chrono::TimeDelta::hours(4) + chrono::TimeDelta::minutes(1));
    assert_eq!(suite.fire_deadlines().await, 1, "one sign deadline passed unsigned");
    let late = day[0].1.calls.iter().find(|c| c.department_id == "shichang").expect("the shichang call");
    let signed = sign_and_designate(&suite, "zhongnanlu", late).await;
    assert!(signed.signed_late, "shichang signed after its deadline");
    check_in(&suite, "zhongnanlu", late, clock_now(&clock)).await;

    // 15:31: the check-in windows (report time 15:00 + 30 min) close on every call; 水果湖's
    // chengguan officer never came.
    clock.set(t0 + chrono::TimeDelta::hours(6) + chrono::TimeDelta::minutes(31));
    assert_eq!(suite.fire_deadlines().await, 7, "every call's check-in window closed");
    let mut district = suite.district();
    for (_, case) in &day {
        let state = district
            .get_case(pb::GetCaseRequest { case_id: case.case_id.clone() })
            .await
            .expect("the case")
            .into_inner()
            .state();
        assert_eq!(state, pb::CaseState::InConsultation, "{} {}", case.street, case.case_id);
    }

    // Consultation in all four at once; every task but 紫阳's gongan is fed back in its window.
    let t1 = clock_now(&clock);
    let (cz1, cz2, cs, cy) = tokio::join!(
        consult(&suite, day[0].0, &day[0].1, t1),
        consult(&suite, day[1].0, &day[1].1, t1),
        consult(&suite, day[2].0, &day[2].1, t1),
        consult(&suite, day[3].0, &day[3].1, t1),
    );
    let [(_, rz1), (_, rz2), (_, rs), (ty, mut ry)] = [cz1, cz2, cs, cy];

    // 17:32: 紫阳's gongan task window (to 17:31) has passed: overdue, then done late.
    clock.set(t1 + chrono::TimeDelta::hours(2) + chrono::TimeDelta::minutes(1));
    assert_eq!(suite.fire_deadlines().await, 1, "one task ran past its window");
    let overdue = ty.iter().find(|t| t.department_id == "gongan").expect("紫阳's gongan task");
    ry.push(feed_back(&suite, "ziyang", overdue).await);

    // Each street rates its own calls and closes, all at once.
    tokio::join!(
        rate_and_close(&suite, day[0].0, &day[0].1, rz1),
        rate_and_close(&suite, day[1].0, &day[1].1, rz2),
        rate_and_close(&suite, day[2].0, &day[2].1, rs),
        rate_and_close(&suite, day[3].0, &day[3].1, ry),
    );

    // The day in Wuhan as a custom period; appraisal has applied everything.
    caught_up(&suite).await;
    let period = suite
        .appraisal(&tokens::district_admin())
        .create_period(apb::CreatePeriodRequest {
            period: Some(apb::Period {
                name: "2026年3月10日".into(),
                kind: apb::PeriodKind::Custom as i32,
                range: Some(minhu_proto::common::v1::TimeRange {
                    start_time: ts(t0 - chrono::TimeDelta::hours(9)),
                    end_time: ts(t0 + chrono::TimeDelta::hours(15)),
                }),
                weights: Some(apb::Weights { response_bp: 1000, completion_bp: 4000, satisfaction_bp: 5000 }),
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .expect("creating the day's period")
        .into_inner();

    // By hand, all streets (weights: response 10%, completion 40%, satisfaction 50%):
    //
    // gongan — calls Z1, Z2, S, Y = 4; all signed in time, all four officers on time.
    //   response   = responded / due = 4/4                      = 10000
    //   completion = 3/4 (Y's task overdue, then done late)     =  7500
    //   satisfied  = (满意 Z1, Z2 + 基本满意 Y) / 4 (S 不满意)    =  7500
    //   composite  = (10000×1000 + 7500×4000 + 7500×5000)/10000 = 1000 + 3000 + 3750 = 7750
    // chengguan — calls Z1, S = 2; S's officer absent.
    //   response   = 1/2 = 5000; completion = 2/2 = 10000; satisfaction = 2/2 = 10000
    //   composite  = 500 + 4000 + 5000 = 9500
    // shichang — call Z1 = 1; signed late.
    //   response   = 0/1 = 0; completion = 1/1 = 10000; satisfaction = 基本满意 1/1 = 10000
    //   composite  = 0 + 4000 + 5000 = 9000
    // League: chengguan 9500 (1), shichang 9000 (2), gongan 7750 (3); the rest no calls, unranked.
    let all = table(&suite, &period.id, "").await;
    let gongan = score(&all, "gongan");
    assert_eq!(counts(gongan), [4, 4, 0, 4, 0, 4, 4, 4, 3, 1, 4, 2, 1, 1]);
    assert_eq!(rates(gongan), (Some(10000), Some(7500), Some(7500), Some(7750)));
    let chengguan = score(&all, "chengguan");
    assert_eq!(counts(chengguan), [2, 2, 0, 1, 1, 2, 1, 2, 2, 0, 2, 2, 0, 0]);
    assert_eq!(rates(chengguan), (Some(5000), Some(10000), Some(10000), Some(9500)));
    let shichang = score(&all, "shichang");
    assert_eq!(counts(shichang), [1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0]);
    assert_eq!(rates(shichang), (Some(0), Some(10000), Some(10000), Some(9000)));
    assert_eq!(league(&all), [("chengguan", 1, Some(9500)), ("shichang", 2, Some(9000)), ("gongan", 3, Some(7750))]);
    assert!(all.iter().filter(|s| s.calls_count == 0).all(|s| s.rank == 0 && s.composite_bp.is_none()));

    // By hand, 水果湖街's own table (case S only):
    //   chengguan: response 0/1 = 0 (absent), completion 1/1, satisfaction 1/1 → 0 + 4000 + 5000 = 9000
    //   gongan:    response 1/1, completion 1/1, satisfaction 0/1 (不满意) → 1000 + 4000 + 0 = 5000
    let shuiguohu = table(&suite, &period.id, "shuiguohu").await;
    assert_eq!(rates(score(&shuiguohu, "chengguan")), (Some(0), Some(10000), Some(10000), Some(9000)));
    assert_eq!(rates(score(&shuiguohu, "gongan")), (Some(10000), Some(10000), Some(0), Some(5000)));
    assert_eq!(league(&shuiguohu), [("chengguan", 1, Some(9000)), ("gongan", 2, Some(5000))]);

    // 中南路街's (Z1, Z2): gongan 2/2, 2/2, 2/2 → 10000; chengguan 1/1 throughout → 10000
    // (a tie at rank 1); shichang 0/1, 1/1, 1/1 → 9000, rank 3.
    let zhongnanlu = table(&suite, &period.id, "zhongnanlu").await;
    assert_eq!(score(&zhongnanlu, "gongan").calls_count, 2);
    let mut order = league(&zhongnanlu);
    order[..2].sort();
    assert_eq!(order, [("chengguan", 1, Some(10000)), ("gongan", 1, Some(10000)), ("shichang", 3, Some(9000))]);

    // 紫阳街's (Y): gongan response 1/1, completion 0/1 (late), satisfaction 1/1 (基本满意)
    //   → 1000 + 0 + 5000 = 6000.
    let ziyang = table(&suite, &period.id, "ziyang").await;
    assert_eq!(rates(score(&ziyang, "gongan")), (Some(10000), Some(0), Some(10000), Some(6000)));
    assert_eq!(league(&ziyang), [("gongan", 1, Some(6000))]);

    suite.stop().await;
}

fn clock_now(clock: &minhu_e2e::ManualClock) -> chrono::DateTime<chrono::Utc> {
    use minhu_dispatch::Clock as _;
    clock.now()
}
