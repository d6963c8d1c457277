//! Scores cannot freeze wrong: a dead feed connection is noticed and reported, ClosePeriod
//! waits for the feed, and a rebuild does not stop the live consumer.

use std::time::Duration;

use minhu_proto::appraisal::v1 as apb;
use tokio_stream::StreamExt as _;

use crate::{helpers::*, proxy::Proxy};

async fn behind_a_proxy(heartbeat: Duration) -> (World, Proxy) {
    let (proxy, target) = Proxy::start().await;
    let addr = proxy.addr;
    let w = World::spawn_with(true, move |b| b.feed_heartbeat(heartbeat).appraisal_feed_through(addr, target)).await;
    (w, proxy)
}

#[tokio::test]
async fn a_frozen_feed_connection_shows_disconnected_within_two_heartbeats_blocks_closing_and_recovers() {
    let heartbeat = Duration::from_millis(300);
    let (w, proxy) = behind_a_proxy(heartbeat).await;
    let period = w.may_period().await;
    use minhu_proto::dispatch::v1::Satisfaction::*;
    run_case(&w, &[script("gongan", Sign::OnTime, Report::OnTime, Work::OnTime, Satisfied)]).await;
    w.caught_up().await;
    assert!(w.feed_status().await.connected);

    // The link goes dead without a reset: only the read timeout (2 × 300 ms) and the
    // HTTP/2 keepalive can tell.
    proxy.freeze(true);
    let noticed = w.feed_status_until(Duration::from_secs(5), |s| !s.connected).await.expect("never disconnected");
    eprintln!("feed: a frozen connection was reported disconnected after {noticed:?} (heartbeat {heartbeat:?})");
    assert!(noticed < Duration::from_secs(3), "{noticed:?}");
    let status = w.feed_status().await;
    // The read timeout or the keepalive, whichever fired first, says why.
    assert!(!status.last_error.is_empty(), "{status:?}");

    // Meanwhile dispatch goes on: a new appeal the consumer cannot see yet.
    w.street().create_case(intake()).await.unwrap();
    let e = w
        .admin()
        .close_period(apb::ClosePeriodRequest { period_id: period.id.clone(), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["FEED_LAGGING"]);
    assert!(e.message().contains("disconnected") && e.message().contains("lag"), "{}", e.message());
    let p = w.admin().get_period(apb::GetPeriodRequest { period_id: period.id.clone() }).await.unwrap().into_inner();
    assert_eq!(p.state, apb::PeriodState::Open as i32);

    // The link comes back: the consumer reconnects, catches up, and the period closes.
    proxy.freeze(false);
    let back = w.feed_status_until(Duration::from_secs(20), |s| s.connected).await.expect("never reconnected");
    eprintln!("feed: reconnected {back:?} after the link came back");
    w.caught_up().await;
    let closed = w
        .admin()
        .close_period(apb::ClosePeriodRequest { period_id: period.id.clone(), request_id: request_id() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.state, apb::PeriodState::Closed as i32);
}

#[tokio::test]
async fn closing_is_refused_while_the_feed_is_not_consumed() {
    let w = World::spawn(false).await;
    let period = w.may_period().await;
    w.street().create_case(intake()).await.unwrap();
    let e = w
        .admin()
        .close_period(apb::ClosePeriodRequest { period_id: period.id.clone(), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["FEED_LAGGING"]);
    assert!(e.message().contains("applied up to sequence 0"), "{}", e.message());
}

#[tokio::test]
async fn the_live_consumer_keeps_applying_and_the_status_answers_during_a_rebuild() {
    let (w, proxy) = behind_a_proxy(Duration::from_secs(15)).await;
    let period = w.may_period().await;
    scripted_month(&w).await;
    w.caught_up().await;
    let before = w.table(&period.id).await;

    // The rebuild's own subscription is held at the proxy: the rebuild stays in progress
    // for as long as the test wants, while the live consumer's connection flows.
    proxy.hold_new(true);
    let mut progress = w
        .admin()
        .rebuild_scores(apb::RebuildScoresRequest { include_closed_periods: false, request_id: request_id() })
        .await
        .unwrap()
        .into_inner();
    w.feed_status_until(Duration::from_secs(10), |s| s.rebuilding).await.expect("the rebuild never started");
    w.street().create_case(intake()).await.unwrap();
    let head = w.head().await;
    let status = w
        .feed_status_until(Duration::from_secs(10), |s| s.last_applied_sequence >= head)
        .await
        .expect("the live consumer stood still during the rebuild");
    assert!(status < Duration::from_secs(10));
    assert!(w.feed_status().await.rebuilding, "the rebuild must still be running for this test to mean anything");

    proxy.hold_new(false);
    let mut last = None;
    while let Some(message) = progress.next().await {
        last = Some(message.unwrap());
    }
    let last = last.unwrap();
    assert!(last.done);
    assert_eq!(last.applied_sequence, head);
    w.caught_up().await;
    assert!(!w.feed_status().await.rebuilding);
    // The same figures, now as of the live cursor (the new appeal scores nothing).
    let mut after = w.table(&period.id).await;
    assert!(after.iter().all(|s| s.as_of_sequence == head), "{after:?}");
    let unstamped = |rows: &mut Vec<apb::DepartmentScore>| rows.iter_mut().for_each(|s| s.as_of_sequence = 0);
    let mut before = before;
    unstamped(&mut before);
    unstamped(&mut after);
    assert_eq!(after, before);
}
