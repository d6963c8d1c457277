//! The roster's SQL. Functions take a connection (`&mut PgConnection`, inside the caller's
//! transaction for writes) and return rows; generated protobuf types never reach here.

pub mod organisations;
pub mod people;
pub mod structure;

use sqlx::types::Json;

use crate::domain::{Area, GeoPoint};

/// The columns every area-bearing table shares.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AreaColumns {
    /// Centre latitude.
    pub center_lat: f64,
    /// Centre longitude.
    pub center_lng: f64,
    /// Radius, metres.
    pub radius_meters: f64,
    /// Boundary as `[[lat, lng], …]`.
    pub boundary: Json<Vec<(f64, f64)>>,
}

impl AreaColumns {
    /// As a domain area.
    pub fn area(&self) -> Area {
        Area {
            center: GeoPoint { lat: self.center_lat, lng: self.center_lng },
            radius_meters: self.radius_meters,
            boundary: self.boundary.0.iter().map(|&(lat, lng)| GeoPoint { lat, lng }).collect(),
        }
    }
}

/// An area's boundary as stored.
pub fn boundary_json(area: &Area) -> Json<Vec<(f64, f64)>> {
    Json(area.boundary.iter().map(|p| (p.lat, p.lng)).collect())
}

/// Whether `error` is a unique violation of `constraint`.
pub fn is_unique_violation(error: &sqlx::Error, constraint: &str) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") && db.constraint() == Some(constraint))
}
