//! The repeat rule (重复诉求): an appeal is a repeat of another case of the same street and
//! category whose place lies within [`RADIUS_M`], open or closed within [`DAYS`]. A repeat
//! joins the cluster of the nearest such lead case when it is recorded (one column on the
//! repeat, a count on the lead: storage O(n)), so departments are called, rated and scored
//! once per cluster. Leads are found through a GiST index on their point with the bounding
//! box of [`bbox`]; the exact distance is measured here.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{Refusal, geo, model::GeoPoint};

/// How close a repeat's place is.
pub const RADIUS_M: f64 = 50.0;
/// How recently a closed case still gathers repeats.
pub const DAYS: i64 = 30;

/// The earliest close time of a case that can still be repeated at `now`.
pub fn since(now: DateTime<Utc>) -> DateTime<Utc> {
    now - TimeDelta::days(DAYS)
}

/// Departments are called for a cluster's lead only (KPI-neutral: called, rated and scored
/// once); a repeat `case` of `lead` is refused.
pub fn may_call(case: Uuid, lead: Option<Uuid>) -> Result<(), Refusal> {
    match lead {
        Some(lead) => Err(Refusal::new(
            "CASE_IS_REPEAT",
            format!("cases/{case}"),
            format!("the case repeats case {lead}; departments are called for the lead case"),
        )),
        None => Ok(()),
    }
}

/// Metres per degree of latitude (and of longitude at the equator).
const M_PER_DEG: f64 = 111_320.0;

/// The bounding box (south-west, north-east corners) holding every point within
/// [`RADIUS_M`] of `here`, with a metre of slack for the haversine's rounding.
pub fn bbox(here: GeoPoint) -> (GeoPoint, GeoPoint) {
    let dlat = (RADIUS_M + 1.0) / M_PER_DEG;
    let dlng = (RADIUS_M + 1.0) / (M_PER_DEG * here.lat.to_radians().cos().max(0.01));
    (GeoPoint { lat: here.lat - dlat, lng: here.lng - dlng }, GeoPoint { lat: here.lat + dlat, lng: here.lng + dlng })
}

/// Of the leads found in [`bbox`] (with their places), the one `case` at `here` repeats: the
/// nearest within [`RADIUS_M`], the first given on a tie, never the case itself.
pub fn lead(case: Uuid, here: GeoPoint, candidates: Vec<(Uuid, GeoPoint)>) -> Option<Uuid> {
    let mut best: Option<(Uuid, f64)> = None;
    for (id, at) in candidates.into_iter().filter(|(id, _)| *id != case) {
        let d = geo::distance_meters(here, at);
        if d <= RADIUS_M && best.is_none_or(|(_, b)| d < b) {
            best = Some((id, d));
        }
    }
    best.map(|b| b.0)
}

/// Side of the cells intakes lock on: larger than the box around a point, so that box
/// meets at most 2 × 2 cells.
const CELL_M: f64 = 2.0 * RADIUS_M + 10.0;

/// The cells (as lock names) the box around `here` meets, in the street and category. Two
/// intakes within [`RADIUS_M`] of each other share one, so the later waits for the first to
/// commit and then sees it as a lead: concurrent repeats of a new place form one cluster,
/// while intakes elsewhere do not wait.
pub fn cells(street_id: &str, category: &str, here: GeoPoint) -> Vec<String> {
    let (sw, ne) = bbox(here);
    // Longitude cells measured at a fixed latitude per row band, so neighbours agree.
    let row = |lat: f64| (lat * M_PER_DEG / CELL_M).floor() as i64;
    let col = |lng: f64| (lng * M_PER_DEG * 0.5 / CELL_M).floor() as i64;
    let mut out = Vec::new();
    for r in row(sw.lat)..=row(ne.lat) {
        for c in col(sw.lng)..=col(ne.lng) {
            out.push(format!("{street_id}/{category}/{r}/{c}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lead_is_the_nearest_within_fifty_metres_but_never_the_case_itself() {
        let here = GeoPoint { lat: 30.5335, lng: 114.3378 };
        let near = GeoPoint { lat: 30.5338, lng: 114.3378 };
        let nearer = GeoPoint { lat: 30.5336, lng: 114.3378 };
        let far = GeoPoint { lat: 30.5350, lng: 114.3378 };
        let (me, a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(lead(me, here, vec![(me, here), (a, near), (b, nearer), (c, far)]), Some(b));
        assert_eq!(lead(me, here, vec![(me, here), (c, far)]), None);
    }

    #[test]
    fn the_box_holds_the_circle_and_near_points_share_a_cell() {
        let here = GeoPoint { lat: 30.5335, lng: 114.3378 };
        let (sw, ne) = bbox(here);
        let east = GeoPoint { lat: here.lat, lng: ne.lng };
        let north = GeoPoint { lat: ne.lat, lng: here.lng };
        assert!(geo::distance_meters(here, east) > RADIUS_M);
        assert!(geo::distance_meters(here, north) > RADIUS_M);
        assert!(sw.lat < here.lat && sw.lng < here.lng);
        // Points 49 m apart in any direction share a lock cell.
        for (dlat, dlng) in [(49.0, 0.0), (0.0, 49.0), (-35.0, 34.0), (34.0, -35.0)] {
            let there = GeoPoint {
                lat: here.lat + dlat / M_PER_DEG,
                lng: here.lng + dlng / (M_PER_DEG * here.lat.to_radians().cos()),
            };
            assert!(geo::distance_meters(here, there) <= RADIUS_M);
            let (a, b) = (cells("s", "c", here), cells("s", "c", there));
            assert!(a.iter().any(|x| b.contains(x)), "{a:?} {b:?}");
            assert!(a.len() <= 4);
        }
    }
}
