//! Field checks shared by the handlers: text (blank, length, NUL), street ids, places,
//! times. Each records field violations; the handler fails with all of them at once.

use chrono::{DateTime, Utc};
use minhu_grpc::FieldViolations;
use minhu_proto::consultation::v1 as pb;

use super::convert::from_ts;

/// Names and short texts.
pub(super) const NAME_MAX: usize = 200;
/// Descriptions, opinions, reasons.
pub(super) const TEXT_MAX: usize = 5000;

/// A text field, trimmed; `required` refuses blank. Postgres cannot store U+0000.
pub(super) fn text(v: &mut FieldViolations, field: &str, value: &str, max: usize, required: bool) -> String {
    if value.contains('\0') {
        v.add(field, "must not contain U+0000");
    }
    let trimmed = if required { v.required_text(field, value, max) } else { v.optional_text(field, value, max) };
    trimmed.to_owned()
}

/// Street ids: each non-blank, at most 64 characters, no repeats.
pub(super) fn street_ids(v: &mut FieldViolations, field: &str, ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let id = text(v, &f, id, 64, true);
        if out.contains(&id) {
            v.add(f, "is listed twice");
        } else if !id.is_empty() {
            out.push(id);
        }
    }
    out
}

/// A checked place: name, latitude, longitude.
pub(super) type PlaceInput = (String, f64, f64);

/// Places: a name and a valid WGS-84 point each.
pub(super) fn places(v: &mut FieldViolations, field: &str, places: &[pb::DecisionPlace]) -> Vec<PlaceInput> {
    places
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = text(v, &format!("{field}[{i}].name"), &p.name, NAME_MAX, true);
            let (lat, lon) = match &p.location {
                None => {
                    v.add(format!("{field}[{i}].location"), "is required");
                    (0.0, 0.0)
                }
                Some(l) => {
                    v.check(
                        l.latitude.is_finite() && (-90.0..=90.0).contains(&l.latitude),
                        &format!("{field}[{i}].location.latitude"),
                        "must be between -90 and 90",
                    );
                    v.check(
                        l.longitude.is_finite() && (-180.0..=180.0).contains(&l.longitude),
                        &format!("{field}[{i}].location.longitude"),
                        "must be between -180 and 180",
                    );
                    (l.latitude, l.longitude)
                }
            };
            (name, lat, lon)
        })
        .collect()
}

/// An optional time that, when set, must be valid and after `now`.
pub(super) fn future_time(
    v: &mut FieldViolations,
    field: &str,
    value: Option<&prost_types::Timestamp>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let t = value?;
    match from_ts(t) {
        None => {
            v.add(field, "is not a valid time");
            None
        }
        Some(t) if t <= now => {
            v.add(field, "must be in the future");
            None
        }
        Some(t) => Some(t),
    }
}
