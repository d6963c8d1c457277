//! Distances on the earth, for check-in radii (报到) and repeat detection (重复诉求).

use super::model::GeoPoint;

/// Mean earth radius, metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres (haversine; plenty for a district).
pub fn distance_meters(a: GeoPoint, b: GeoPoint) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlng = (b.lng - a.lng).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlng / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// Checks that `p`, given as `field`, is a WGS-84 point, naming the coordinate that is not
/// (`{field}.latitude`, `{field}.longitude`).
pub fn check(v: &mut minhu_grpc::FieldViolations, field: &str, p: GeoPoint) {
    let lat_ok = p.lat.is_finite() && (-90.0..=90.0).contains(&p.lat);
    let lng_ok = p.lng.is_finite() && (-180.0..=180.0).contains(&p.lng);
    v.check(lat_ok, &format!("{field}.latitude"), "must be between -90 and 90 degrees");
    v.check(lng_ok, &format!("{field}.longitude"), "must be between -180 and 180 degrees");
}

/// Whether `p` is a valid WGS-84 point.
pub fn is_valid(p: GeoPoint) -> bool {
    p.lat.is_finite() && p.lng.is_finite() && (-90.0..=90.0).contains(&p.lat) && (-180.0..=180.0).contains(&p.lng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousandth_of_a_degree_of_latitude_is_about_111_metres() {
        let a = GeoPoint { lat: 30.5375, lng: 114.3378 };
        let b = GeoPoint { lat: 30.5385, lng: 114.3378 };
        let d = distance_meters(a, b);
        assert!((d - 111.2).abs() < 0.5, "{d}");
        assert_eq!(distance_meters(a, a), 0.0);
        assert!(is_valid(a) && !is_valid(GeoPoint { lat: 91.0, lng: 0.0 }));
    }
}
