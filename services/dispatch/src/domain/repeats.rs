//! The repeat rule (重复诉求): an appeal is a repeat of another case of the same street and
//! category whose place lies within [`RADIUS_M`], open or closed within [`DAYS`]. Repeats
//! are linked when the case is recorded, so departments are called, rated and scored once
//! per cluster.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{geo, model::GeoPoint};

/// How close a repeat's place is.
pub const RADIUS_M: f64 = 50.0;
/// How recently a closed case still gathers repeats.
pub const DAYS: i64 = 30;

/// The earliest close time of a case that can still be repeated at `now`.
pub fn since(now: DateTime<Utc>) -> DateTime<Utc> {
    now - TimeDelta::days(DAYS)
}

/// Of the candidates (same street and category, recent enough, with their places), the
/// cases that `case` at `here` repeats.
pub fn of(case: Uuid, here: GeoPoint, candidates: Vec<(Uuid, GeoPoint)>) -> impl Iterator<Item = Uuid> {
    candidates
        .into_iter()
        .filter(move |(other, at)| *other != case && geo::distance_meters(here, *at) <= RADIUS_M)
        .map(|c| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_repeats_those_within_fifty_metres_but_never_itself() {
        let here = GeoPoint { lat: 30.5335, lng: 114.3378 };
        let near = GeoPoint { lat: 30.5338, lng: 114.3378 };
        let far = GeoPoint { lat: 30.5350, lng: 114.3378 };
        let (me, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let repeats: Vec<_> = of(me, here, vec![(me, here), (a, near), (b, far)]).collect();
        assert_eq!(repeats, vec![a]);
    }
}
