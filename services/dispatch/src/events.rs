//! Event payloads (events.proto): the typed details each change carries, encoded for the
//! outbox. Built here, from domain records, by the api and the escalations alike.

use chrono::{DateTime, Utc};
use minhu_proto::dispatch::v1::{self as pb, event::Payload};
use prost::Message as _;

use crate::domain::model::CaseState;

/// Timestamp of a time.
pub fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

/// Duration between two times.
pub fn duration(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<prost_types::Duration> {
    let d = to - from;
    Some(prost_types::Duration { seconds: d.num_seconds(), nanos: d.subsec_nanos() })
}

/// A proto enum's number from its name (0 for an unknown name).
pub fn code<E: Into<i32>>(e: Option<E>) -> i32 {
    e.map(Into::into).unwrap_or(0)
}

/// The outbox bytes of `payload`: an `Event` carrying only its details (the rest lives in
/// columns).
pub fn encode(payload: Payload) -> Vec<u8> {
    pb::Event { payload: Some(payload), ..Default::default() }.encode_to_vec()
}

/// `CASE_STATE_*` as its proto number.
pub fn case_state(s: CaseState) -> i32 {
    code(pb::CaseState::from_str_name(s.as_str()))
}
