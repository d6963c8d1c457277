//! Places: a point, and the area of a street, community or grid (a boundary polygon, or a
//! centre and radius when no boundary has been surveyed).

use serde::{Deserialize, Serialize};

/// A WGS-84 point in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude, -90..90.
    pub lat: f64,
    /// Longitude, -180..180.
    pub lng: f64,
}

const EARTH_RADIUS_METERS: f64 = 6_371_008.8;

impl GeoPoint {
    /// Great-circle distance in metres (haversine; metre-accurate at district scale).
    pub fn distance_meters(&self, other: &GeoPoint) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlng = (other.lng - self.lng).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_METERS * a.sqrt().asin()
    }
}

/// The area of a street, community or grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    /// The centre.
    pub center: GeoPoint,
    /// Radius around the centre, metres.
    pub radius_meters: f64,
    /// Boundary vertices, not closed; empty when unsurveyed.
    pub boundary: Vec<GeoPoint>,
}

/// How a point relates to an area.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Containment {
    /// Inside the surveyed boundary.
    InBoundary,
    /// Within the radius of the centre (no boundary recorded), at this distance.
    WithinRadius(f64),
    /// Outside.
    Outside,
}

impl Area {
    /// Where `point` lies with respect to this area. A recorded boundary is authoritative:
    /// a point outside it is outside, whatever the radius says.
    pub fn locate(&self, point: &GeoPoint) -> Containment {
        if self.boundary.len() >= 3 {
            if contains(&self.boundary, point) { Containment::InBoundary } else { Containment::Outside }
        } else {
            let distance = self.center.distance_meters(point);
            if distance <= self.radius_meters { Containment::WithinRadius(distance) } else { Containment::Outside }
        }
    }
}

/// Ray casting on the lat/lng plane: exact enough for polygons a few kilometres across.
fn contains(polygon: &[GeoPoint], point: &GeoPoint) -> bool {
    let mut inside = false;
    let mut j = polygon.len() - 1;
    for i in 0..polygon.len() {
        let (a, b) = (polygon[i], polygon[j]);
        if (a.lat > point.lat) != (b.lat > point.lat)
            && point.lng < (b.lng - a.lng) * (point.lat - a.lat) / (b.lat - a.lat) + a.lng
        {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Picks the best of several candidate areas for a point: any whose boundary contains it
/// wins (the first, callers order by code); otherwise the nearest centre within radius.
pub fn best_match<'a, T>(point: &GeoPoint, candidates: impl IntoIterator<Item = (&'a Area, T)>) -> Option<(T, bool)> {
    let mut nearest: Option<(f64, T)> = None;
    for (area, item) in candidates {
        match area.locate(point) {
            Containment::InBoundary => return Some((item, true)),
            Containment::WithinRadius(d) if nearest.as_ref().is_none_or(|(best, _)| d < *best) => {
                nearest = Some((d, item));
            }
            _ => {}
        }
    }
    nearest.map(|(_, item)| (item, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZHONGNANLU: GeoPoint = GeoPoint { lat: 30.5375, lng: 114.3378 };

    #[test]
    fn distances_are_in_metres() {
        let d = ZHONGNANLU.distance_meters(&GeoPoint { lat: 30.5465, lng: 114.3378 });
        assert!((d - 1000.8).abs() < 2.0, "{d}");
    }

    #[test]
    fn a_boundary_wins_over_a_nearer_centre() {
        let square = Area {
            center: GeoPoint { lat: 0.0, lng: 0.0 },
            radius_meters: 1.0,
            boundary: vec![
                GeoPoint { lat: 0.0, lng: 0.0 },
                GeoPoint { lat: 0.0, lng: 0.01 },
                GeoPoint { lat: 0.01, lng: 0.01 },
                GeoPoint { lat: 0.01, lng: 0.0 },
            ],
        };
        let circle = Area { center: GeoPoint { lat: 0.005, lng: 0.005 }, radius_meters: 5000.0, boundary: vec![] };
        let point = GeoPoint { lat: 0.005, lng: 0.005 };
        assert_eq!(best_match(&point, [(&circle, "circle"), (&square, "square")]), Some(("square", true)));
        let outside = GeoPoint { lat: 0.02, lng: 0.02 };
        assert_eq!(best_match(&outside, [(&circle, "circle"), (&square, "square")]), Some(("circle", false)));
        assert_eq!(square.locate(&outside), Containment::Outside);
    }

    #[test]
    fn the_nearest_centre_wins_among_radii() {
        let a = Area { center: GeoPoint { lat: 30.0, lng: 114.0 }, radius_meters: 3000.0, boundary: vec![] };
        let b = Area { center: GeoPoint { lat: 30.01, lng: 114.0 }, radius_meters: 3000.0, boundary: vec![] };
        let point = GeoPoint { lat: 30.008, lng: 114.0 };
        assert_eq!(best_match(&point, [(&a, "a"), (&b, "b")]), Some(("b", false)));
        assert_eq!(best_match(&GeoPoint { lat: 31.0, lng: 114.0 }, [(&a, "a"), (&b, "b")]), None);
    }
}
