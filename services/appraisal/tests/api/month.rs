//! A scripted month through the real dispatch, the scores it yields (computed by hand
//! below), exactly-once application across a crash, rebuilds, and ratings refused upstream.

use minhu_appraisal::consumer::{self, Applied, ApplyError};
use minhu_proto::{appraisal::v1 as apb, dispatch::v1 as pb};
use minhu_testkit::tokens;
use tokio_stream::StreamExt as _;
use tonic::Code;

use crate::helpers::*;

/// The figures a score is checked against: (calls, response due, responded, completion
/// due, completed, rated, satisfied + basically, rates…, composite, rank).
fn figures(s: &apb::DepartmentScore) -> (i32, i32, i32, i32, i32, i32, i32) {
    (
        s.calls_count,
        s.response_due_count,
        s.responded_count,
        s.completion_due_count,
        s.completed_count,
        s.rated_count,
        s.satisfied_count + s.basically_satisfied_count,
    )
}

fn rates(s: &apb::DepartmentScore) -> (Option<i32>, Option<i32>, Option<i32>, Option<i32>, i32) {
    (s.response_rate_bp, s.completion_rate_bp, s.satisfaction_rate_bp, s.composite_bp, s.rank)
}

#[tokio::test]
async fn a_scripted_month_yields_the_hand_computed_rates_and_league_table() {
    let w = World::spawn(true).await;
    let period = w.may_period().await;
    let cases = scripted_month(&w).await;
    w.caught_up().await;

    // 公安 gongan: calls A, B, C.
    //   response: A responded; B officer late; C signed late → 1/3 = 3333.33 → 3333
    //   completion: A, B, C tasks on time → 3/3 = 10000
    //   satisfaction: 满意, 满意, 基本满意 → 3/3 = 10000
    //   composite: (3333×1000 + 10000×4000 + 10000×5000) / 10000 = 9333.3 → 9333
    let gongan = w.score(&period.id, "gongan").await;
    assert_eq!(figures(&gongan), (3, 3, 1, 3, 3, 3, 3));
    assert_eq!(rates(&gongan), (Some(3333), Some(10000), Some(10000), Some(9333), 1));
    assert_eq!((gongan.signed_on_time_count, gongan.signed_late_count, gongan.check_in_late_count), (2, 1, 1));

    // 城管 chengguan: calls A, B, D.
    //   response: A, B responded; D never signed → 2/3 = 6666.67 → 6667
    //   completion: A on time; B overdue then done late; D has no task (not due) → 1/2 = 5000
    //   satisfaction: 基本满意, 满意 → 2/2 = 10000
    //   composite: (6667×1000 + 5000×4000 + 10000×5000) / 10000 = 7666.7 → 7667
    let chengguan = w.score(&period.id, "chengguan").await;
    assert_eq!(figures(&chengguan), (3, 3, 2, 2, 1, 2, 2));
    assert_eq!(rates(&chengguan), (Some(6667), Some(5000), Some(10000), Some(7667), 2));
    assert_eq!((chengguan.unsigned_count, chengguan.completed_late_count), (1, 1));

    // 规划 guihua: calls A, C, D.
    //   response: A responded; C and D officer absent → 1/3 = 3333
    //   completion: A, C on time; D no task → 2/2 = 10000
    //   satisfaction: 不满意, 满意 → 1/2 = 5000
    //   composite: (3333×1000 + 10000×4000 + 5000×5000) / 10000 = 6833.3 → 6833
    let guihua = w.score(&period.id, "guihua").await;
    assert_eq!(figures(&guihua), (3, 3, 1, 2, 2, 2, 1));
    assert_eq!(rates(&guihua), (Some(3333), Some(10000), Some(5000), Some(6833), 3));
    assert_eq!(guihua.check_in_absent_count, 2);

    // The league table, by composite.
    let table = w.table(&period.id).await;
    let order: Vec<(&str, i32)> = table.iter().map(|s| (s.department_id.as_str(), s.rank)).collect();
    assert_eq!(order, [("gongan", 1), ("chengguan", 2), ("guihua", 3)]);

    // Drill-down: the two calls behind guihua's missed responses, with their evidence.
    let absent = w
        .admin()
        .list_score_records(apb::ListScoreRecordsRequest {
            period_id: period.id.clone(),
            department_id: "guihua".into(),
            indicator: apb::ScoreIndicator::Response as i32,
            outcome: apb::ScoreOutcome::ResponseCheckInAbsent as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(absent.total_size, 2);
    let calls: Vec<&str> = absent.records.iter().map(|r| r.call_id.as_str()).collect();
    assert_eq!(calls, [cases[3].calls["guihua"].as_str(), cases[2].calls["guihua"].as_str()], "newest first");
    assert!(absent.records.iter().all(|r| r.counts_in_denominator && !r.counts_in_numerator));
    assert!(absent.records.iter().all(|r| r.event_sequences.len() >= 3 && r.detail == "1 人不到位"));

    // A department sees the table but only its own counts.
    let seen = w
        .appraisal(&tokens::department_dispatcher("guihua"))
        .list_department_scores(apb::ListDepartmentScoresRequest { period_id: period.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .scores;
    assert_eq!(seen[0].composite_bp, Some(9333));
    assert_eq!(seen[0].calls_count, 0);
    assert_eq!(seen[2].calls_count, 3);

    // KPIs: four cases, three closed with calls, none declined; nine calls, two sign
    // overdue (C gongan, D chengguan), three absences (C and D guihua, D chengguan shortfall).
    let kpis = w
        .admin()
        .get_district_kpis(apb::GetDistrictKpisRequest { period_id: period.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let district = kpis.district.unwrap();
    assert_eq!((district.cases_received, district.cases_closed, district.closed_with_calls), (4, 3, 3));
    assert_eq!(district.street_level_share_bp, Some(10000));
    assert!(district.goal_met);
    assert_eq!((district.calls_started, district.sign_overdue_count, district.check_in_absent_count), (9, 2, 3));
    assert_eq!(kpis.streets.len(), 1);

    // Closing freezes: the period has ended (May 2019), figures stay as they stood.
    let closed = w
        .admin()
        .close_period(apb::ClosePeriodRequest { period_id: period.id.clone(), request_id: request_id() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.state, apb::PeriodState::Closed as i32);
    let frozen = w.score(&period.id, "gongan").await;
    assert!(frozen.frozen);
    assert_eq!(rates(&frozen), rates(&gongan));
}

#[tokio::test]
async fn a_crash_between_receiving_and_committing_an_event_does_not_double_count() {
    let w = World::spawn(false).await;
    let period = w.may_period().await;
    use pb::Satisfaction::*;
    run_case(
        &w,
        &[
            script("gongan", Sign::OnTime, Report::OnTime, Work::OnTime, Satisfied),
            script("guihua", Sign::OnTime, Report::OnTime, Work::OnTime, Dissatisfied),
        ],
    )
    .await;
    let head = w.head().await;
    let mut feed = w
        .dispatch(&tokens::service("minhu-appraisal"))
        .stream_events(pb::StreamEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut crashed = 0;
    while let Some(message) = feed.next().await {
        let Some(event) = message.unwrap().event else { continue };
        // Every third event: applied, then the process "dies" before commit.
        if event.sequence % 3 == 0 {
            let mut tx = w.pool.begin().await.unwrap();
            assert_eq!(consumer::apply(&mut tx, &event).await.unwrap(), Applied::Applied);
            drop(tx);
            crashed += 1;
        }
        // Delivered (again): applied once.
        assert_eq!(consumer::apply_committed(&w.pool, &event).await.unwrap(), Applied::Applied);
        // And a duplicate delivery after the commit changes nothing.
        assert_eq!(consumer::apply_committed(&w.pool, &event).await.unwrap(), Applied::Duplicate);
        if event.sequence == head {
            // A gap is refused, not skipped over.
            let mut later = event.clone();
            later.sequence = head + 2;
            assert!(matches!(
                consumer::apply_committed(&w.pool, &later).await,
                Err(ApplyError::Gap { expected, got }) if expected == head + 1 && got == head + 2
            ));
            break;
        }
    }
    assert!(crashed >= 5);
    // gongan: 1/1 responded, 1/1 completed, 1/1 satisfied → 10000.
    // guihua: 1/1, 1/1, 0/1 → (10000×1000 + 10000×4000 + 0×5000) / 10000 = 5000.
    let gongan = w.score(&period.id, "gongan").await;
    assert_eq!(figures(&gongan), (1, 1, 1, 1, 1, 1, 1));
    assert_eq!(gongan.composite_bp, Some(10000));
    let guihua = w.score(&period.id, "guihua").await;
    assert_eq!(figures(&guihua), (1, 1, 1, 1, 1, 1, 0));
    assert_eq!(guihua.composite_bp, Some(5000));
    let (events,): (i64,) = sqlx::query_as("SELECT count(*) FROM consumed_events").fetch_one(&w.pool).await.unwrap();
    assert_eq!(events, head);
}

#[tokio::test]
async fn rebuilding_from_zero_reproduces_the_same_numbers() {
    let w = World::spawn(true).await;
    let period = w.may_period().await;
    scripted_month(&w).await;
    w.caught_up().await;
    let before = w.table(&period.id).await;
    assert_eq!(before.len(), 3);
    let id = request_id();
    let mut progress = w
        .admin()
        .rebuild_scores(apb::RebuildScoresRequest { include_closed_periods: true, request_id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(message) = progress.next().await {
        last = Some(message.unwrap());
    }
    let last = last.unwrap();
    assert!(last.done);
    assert_eq!(last.applied_sequence, w.head().await);
    // Retrying with the same request_id re-attaches (here: to the finished rebuild).
    let again = w
        .admin()
        .rebuild_scores(apb::RebuildScoresRequest { include_closed_periods: true, request_id: id })
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap();
    assert!(again.done);
    w.caught_up().await;
    assert_eq!(w.table(&period.id).await, before);
}

#[tokio::test]
async fn a_rating_by_another_street_or_a_second_rating_is_refused_upstream_and_never_counted() {
    let w = World::spawn(true).await;
    let period = w.may_period().await;
    use pb::Satisfaction::*;
    let case = run_case(&w, &[script("guihua", Sign::OnTime, Report::OnTime, Work::OnTime, Dissatisfied)]).await;
    w.caught_up().await;
    let before = w.score(&period.id, "guihua").await;
    assert_eq!((before.rated_count, before.satisfaction_rate_bp), (1, Some(0)));

    // 谁呼谁评: another street may not rate the call it did not make.
    let e = w
        .dispatch(&tokens::street_leader(OTHER_STREET))
        .rate_department(pb::RateDepartmentRequest {
            case_id: case.case_id.clone(),
            department_id: "guihua".into(),
            satisfaction: Satisfied as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e.code(), Code::NotFound | Code::PermissionDenied), "{e:?}");
    // 一事一评: the calling street may not rate twice (the case is closed, too).
    let e = w
        .street()
        .rate_department(pb::RateDepartmentRequest {
            case_id: case.case_id.clone(),
            department_id: "guihua".into(),
            satisfaction: Satisfied as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    w.caught_up().await;
    assert_eq!(w.score(&period.id, "guihua").await, before);
}
