//! The consumer of dispatch's event feed (StreamEvents): a background task that applies
//! each event exactly once, in order.
//!
//! Each event is applied by [`apply`] in one Postgres transaction that also checks and
//! advances the stored cursor: `sequence == cursor + 1` applies, `sequence <= cursor` is a
//! duplicate (skipped, e.g. re-delivered after a crash before commit was acknowledged), and
//! anything else is a gap (the subscription is dropped and resumed from the cursor). A
//! crash before commit rolls back the effect together with the cursor, so re-delivery
//! counts the event once.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use minhu_grpc::auth::BearerToken;
use minhu_grpc::client::{TracedChannel, traced};
use minhu_proto::dispatch::v1::{self as pb, dispatch_service_client::DispatchServiceClient, event::Payload};
use sqlx::{PgConnection, PgPool};
use tokio_stream::StreamExt as _;
use tonic::codegen::InterceptedService;
use tracing::Instrument as _;

use crate::{
    domain::referral,
    store::records::{self, ConsumedEvent},
};

/// What became of one delivered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Its effect and the cursor's advance are in the transaction.
    Applied,
    /// Already applied (sequence at or below the cursor); nothing done.
    Duplicate,
}

/// Why an event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The event is not the next one: events in between were missed.
    #[error("gap in the feed: expected sequence {expected}, got {got}")]
    Gap {
        /// cursor + 1.
        expected: i64,
        /// The delivered sequence.
        got: i64,
    },
    /// Storage failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A protobuf timestamp as a time.
pub fn time(ts: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    ts.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.clamp(0, 999_999_999) as u32))
}

fn enum_name<E: TryFrom<i32>>(value: i32, name: impl Fn(&E) -> &'static str) -> String {
    E::try_from(value).map(|e| name(&e).to_owned()).unwrap_or_default()
}

/// Applies one event inside `tx`: checks the cursor (locking it), records the effect on the
/// call, task, rating and incident records, and advances the cursor. Committing is the
/// caller's: dropping `tx` instead leaves no trace, cursor included.
pub async fn apply(tx: &mut PgConnection, event: &pb::Event) -> Result<Applied, ApplyError> {
    let cursor = records::cursor(tx, true).await?;
    if event.sequence <= cursor.last_sequence {
        return Ok(Applied::Duplicate);
    }
    if event.sequence != cursor.last_sequence + 1 {
        return Err(ApplyError::Gap { expected: cursor.last_sequence + 1, got: event.sequence });
    }
    let occur_time = time(event.occur_time.as_ref()).unwrap_or(DateTime::UNIX_EPOCH);
    let event_type = enum_name::<pb::EventType>(event.event_type, pb::EventType::as_str_name);
    let mut e = ConsumedEvent {
        sequence: event.sequence,
        event_type,
        case_id: event.case_id.clone(),
        street_id: event.street_id.clone(),
        call_id: event.call_id.clone(),
        department_id: event.department_id.clone(),
        person_id: String::new(),
        qualifier: String::new(),
        amount: 0,
        occur_time,
        trail_sequence: event.trail_sequence,
        trail_hash: event.trail_hash.clone(),
    };
    match &event.payload {
        Some(Payload::CaseTriaged(t)) => {
            e.qualifier = if t.decision == pb::TriageDecision::Decline as i32 {
                enum_name::<pb::DeclineReason>(t.decline_reason, pb::DeclineReason::as_str_name)
            } else {
                enum_name::<pb::TriageDecision>(t.decision, pb::TriageDecision::as_str_name)
            };
        }
        Some(Payload::CaseClosed(c)) => e.qualifier = if c.solved_by_street_alone { "ALONE" } else { "CALLS" }.into(),
        Some(Payload::CallSigned(s)) => {
            e.amount = s.sign_duration.as_ref().map_or(0, |d| d.seconds * 1000 + i64::from(d.nanos) / 1_000_000);
        }
        Some(Payload::CheckIn(c)) => e.person_id = c.person_id.clone(),
        Some(Payload::CheckInClosed(c)) => e.amount = i64::from(c.shortfall_count),
        Some(Payload::InactionRecorded(i)) => e.person_id = i.person_id.clone(),
        Some(Payload::TaskOverdue(t)) => e.qualifier = enum_name::<pb::TaskKind>(t.kind, pb::TaskKind::as_str_name),
        Some(Payload::TaskCompleted(t)) => e.qualifier = enum_name::<pb::TaskKind>(t.kind, pb::TaskKind::as_str_name),
        Some(Payload::TaskCreated(t)) => e.qualifier = enum_name::<pb::TaskKind>(t.kind, pb::TaskKind::as_str_name),
        _ => {}
    }
    records::insert_event(tx, &e).await?;
    effect(tx, &e, event.payload.as_ref()).await?;
    if let Some(kind) = referral::incident_kind(&e.event_type, e.amount) {
        // Rectification tasks overdue are not the original call's inaction.
        if !(e.event_type == "EVENT_TYPE_TASK_OVERDUE" && e.qualifier == "TASK_KIND_RECTIFICATION") {
            records::insert_incident(tx, kind, &e).await?;
        }
    }
    records::advance(tx, event.sequence, Some(occur_time)).await?;
    Ok(Applied::Applied)
}

/// The effect of one event on the records.
async fn effect(tx: &mut PgConnection, e: &ConsumedEvent, payload: Option<&Payload>) -> sqlx::Result<()> {
    const REGULAR: &str = "TASK_KIND_REGULAR";
    match payload {
        Some(Payload::CallStarted(c)) => records::start_call(tx, e, time(c.sign_deadline.as_ref())).await,
        Some(Payload::CallWithdrawn(_)) => records::withdraw_call(tx, e).await,
        Some(Payload::CallSigned(s)) => {
            let late = match (time(s.signed_time.as_ref()), time(s.sign_deadline.as_ref())) {
                (Some(signed), Some(deadline)) => (signed - deadline).num_seconds().max(0),
                _ => 0,
            };
            records::sign(tx, e, s.on_time, late).await
        }
        Some(Payload::CallSignOverdue(_)) => records::sign_overdue(tx, e).await,
        Some(Payload::CheckIn(_)) => {
            let status = match e.event_type.as_str() {
                "EVENT_TYPE_CHECK_IN_ON_TIME" => "ON_TIME",
                "EVENT_TYPE_CHECK_IN_LATE" => "LATE",
                _ => "ABSENT",
            };
            records::check_in(tx, e, status).await
        }
        Some(Payload::CheckInClosed(c)) => records::close_check_in(tx, e, c.signed_on_time, c.shortfall_count).await,
        Some(Payload::InactionRecorded(_)) => records::inaction(tx, e).await,
        Some(Payload::TaskCreated(t)) if e.qualifier == REGULAR => records::add_task(tx, e, &t.task_id).await,
        Some(Payload::TaskCompleted(t)) if e.qualifier == REGULAR => {
            records::finish_task(tx, e, &t.task_id, Some(t.on_time)).await
        }
        Some(Payload::TaskOverdue(t)) if e.qualifier == REGULAR => records::finish_task(tx, e, &t.task_id, None).await,
        Some(Payload::RatingRecorded(r)) => {
            let satisfaction = enum_name::<pb::Satisfaction>(r.satisfaction, pb::Satisfaction::as_str_name);
            let satisfaction = satisfaction.trim_start_matches("SATISFACTION_");
            records::rate(tx, e, &r.rating_id, satisfaction, &r.supersedes_rating_id).await
        }
        Some(Payload::RectificationRequired(_)) => records::require_rectification(tx, e).await,
        _ => Ok(()),
    }
}

/// Applies one event in its own transaction and commits.
pub async fn apply_committed(pool: &PgPool, event: &pb::Event) -> Result<Applied, ApplyError> {
    let mut tx = pool.begin().await?;
    let applied = apply(&mut tx, event).await?;
    if applied == Applied::Applied {
        tx.commit().await?;
    }
    Ok(applied)
}

/// How appraisal proves who it is to dispatch (the shared service identity).
pub use minhu_grpc::ServiceIdentity;

/// Where the feed comes from.
#[derive(Debug, Clone)]
pub struct FeedSource {
    /// Dispatch's URL.
    pub dispatch_url: String,
    /// Who we are.
    pub identity: ServiceIdentity,
    /// TLS towards dispatch (for an `https://` URL).
    pub tls: minhu_grpc::tls::ClientTls,
}

/// A dispatch client authenticated as appraisal; each call is a client span.
pub type Dispatch = DispatchServiceClient<InterceptedService<TracedChannel, BearerToken>>;

impl FeedSource {
    /// Connects (lazily: failures surface on the first call, where they are retried).
    pub fn client(&self) -> Result<Dispatch, minhu_grpc::tls::EndpointError> {
        let channel = self.tls.endpoint(&self.dispatch_url)?.connect_timeout(Duration::from_secs(5)).connect_lazy();
        Ok(DispatchServiceClient::with_interceptor(traced(channel), self.identity.bearer_for("minhu-dispatch"))
            .max_decoding_message_size(16 << 20))
    }
}

/// What GetFeedStatus reports about the subscription (the cursor itself is in Postgres).
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    /// The feed's head as last reported by dispatch.
    pub head_sequence: i64,
    /// The last sequence this process applied (the cursor when it subscribed, then each
    /// event's): with the head, the `minhu.feed.lag` gauge, read without a query.
    pub applied_sequence: i64,
    /// Connected right now.
    pub connected: bool,
    /// The last error while reconnecting; empty if none.
    pub last_error: String,
    /// A rebuild runs.
    pub rebuilding: bool,
}

/// Shared subscription state.
pub type SharedSubscription = Arc<Mutex<Subscription>>;

/// Updates the shared state (a poisoned lock still holds usable data).
pub fn update(state: &SharedSubscription, f: impl FnOnce(&mut Subscription)) {
    f(&mut state.lock().unwrap_or_else(|e| e.into_inner()));
}

/// Reads the shared state.
pub fn snapshot(state: &SharedSubscription) -> Subscription {
    state.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Reports `minhu.feed.lag` (events dispatch has published that appraisal has not applied
/// yet, attribute `minhu.feed.consumer = appraisal`) at each metrics export, from the
/// subscription's state: 0 until the first event tells the head.
pub fn report_lag(state: &SharedSubscription) {
    let state = state.clone();
    minhu_telemetry::metrics::gauge(
        "minhu.feed.lag",
        "feed events published but not yet applied",
        "{event}",
        move || {
            let s = snapshot(&state);
            let lag = (s.head_sequence - s.applied_sequence).max(0) as u64;
            vec![(lag, vec![minhu_telemetry::metrics::KeyValue::new("minhu.feed.consumer", "appraisal")])]
        },
    );
}

/// Runs the subscription until the task is dropped: connect from the stored cursor, apply
/// each event, reconnect with backoff (0.2 s doubling to 10 s) on any failure.
pub async fn run(pool: PgPool, source: FeedSource, state: SharedSubscription) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match subscribe_once(&pool, &source, &state).await {
            Ok(()) => {
                // The stream ended cleanly (dispatch draining): resume soon, not in a hot loop.
                backoff = Duration::from_millis(200);
                tokio::time::sleep(backoff).await;
            }
            Err(error) => {
                tracing::warn!(%error, "feed subscription interrupted; reconnecting");
                update(&state, |s| {
                    s.connected = false;
                    s.last_error = error;
                });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// One subscription: returns when the stream ends or fails.
async fn subscribe_once(pool: &PgPool, source: &FeedSource, state: &SharedSubscription) -> Result<(), String> {
    let cursor = {
        let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
        records::cursor(&mut conn, false).await.map_err(|e| e.to_string())?.last_sequence
    };
    let mut client = source.client().map_err(|e| e.to_string())?;
    let mut stream = client
        .stream_events(pb::StreamEventsRequest { after_sequence: cursor, ..Default::default() })
        .await
        .map_err(|s| format!("{}: {}", s.code(), s.message()))?
        .into_inner();
    update(state, |s| {
        s.connected = true;
        s.last_error.clear();
        s.applied_sequence = cursor;
    });
    let status = |s: tonic::Status| format!("{}: {}", s.code(), s.message());
    while let Some(message) = stream.next().await {
        // A batch: this message and whatever else has already arrived, without waiting.
        let mut batch = vec![message.map_err(status)?];
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout(Duration::ZERO, stream.next()).await {
                Ok(Some(message)) => batch.push(message.map_err(status)?),
                Ok(None) | Err(_) => break,
            }
        }
        let head = batch.iter().map(|m| m.head_sequence).max().unwrap_or_default();
        update(state, |s| s.head_sequence = s.head_sequence.max(head));
        let events: Vec<pb::Event> = batch.into_iter().filter_map(|m| m.event).collect();
        // Heartbeats only: nothing consumed, no span.
        if events.is_empty() {
            continue;
        }
        let span = consume_span(&events, head);
        async {
            for event in &events {
                match apply_committed(pool, event).await {
                    Ok(_) => update(state, |s| s.applied_sequence = s.applied_sequence.max(event.sequence)),
                    // Resubscribing from the cursor re-delivers what was missed.
                    Err(e) => {
                        tracing::Span::current().record("otel.status_code", "ERROR");
                        return Err(e.to_string());
                    }
                }
            }
            Ok(())
        }
        .instrument(span)
        .await?;
    }
    update(state, |s| s.connected = false);
    Ok(())
}

/// Events consumed as one batch (one `feed.consume` span) at most.
const MAX_BATCH: usize = 256;

/// Links one `feed.consume` span carries at most: a batch from many requests links the
/// first 32 distinct producing traces (`minhu.feed.links_dropped` counts the rest).
pub const MAX_LINKS: usize = 32;

/// The span of one consumed batch: a root of its own (consumption is not part of the
/// requests that produced the events), linked to each distinct producing trace named by
/// the events' `trace_parent`, with the batch's size, first and last sequence and the lag
/// behind the feed's head after it. Events carry no reporter data; nor does the span.
fn consume_span(events: &[pb::Event], head: i64) -> tracing::Span {
    let first = events.first().map_or(0, |e| e.sequence);
    let last = events.last().map_or(0, |e| e.sequence);
    let span = tracing::info_span!(
        parent: None,
        "feed.consume",
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        minhu.feed.consumer = "appraisal",
        minhu.feed.batch_size = events.len(),
        minhu.feed.first_sequence = first,
        minhu.feed.last_sequence = last,
        minhu.feed.lag = (head - last).max(0),
        minhu.feed.links_dropped = tracing::field::Empty,
    );
    let mut linked = std::collections::HashSet::new();
    let mut dropped = 0;
    for event in events {
        let Some(producer) = minhu_telemetry::parse_context(&event.trace_parent, "") else { continue };
        if linked.contains(&producer.trace_id()) {
            continue;
        }
        if linked.len() == MAX_LINKS {
            dropped += 1;
            continue;
        }
        linked.insert(producer.trace_id());
        minhu_telemetry::link_to(&span, &event.trace_parent, "");
    }
    if dropped > 0 {
        span.record("minhu.feed.links_dropped", dropped);
    }
    span
}
