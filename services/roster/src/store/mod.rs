//! The roster's SQL. Functions take a connection (`&mut PgConnection`, inside the caller's
//! transaction for writes) and return rows; generated protobuf types never reach here.

pub mod history;
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

/// A row of a page query together with the number of rows matching the query's filter
/// (all pages), computed in the same statement: see [`page_sql`].
#[derive(Debug, sqlx::FromRow)]
pub struct Counted<T> {
    /// The row.
    #[sqlx(flatten)]
    pub row: T,
    /// Rows matching the filter, across all pages.
    pub total: i64,
}

/// The rows of a page and the total matching.
pub fn split_total<R>(rows: Vec<Counted<R>>) -> (Vec<R>, i64) {
    let total = rows.first().map_or(0, |r| r.total);
    (rows.into_iter().map(|r| r.row).collect(), total)
}

/// One statement for a page and its total: `matching` is the filtered set; the page is
/// taken from it after `position`, in `order`, `limit` rows. A page is never empty while
/// rows match (a next-page token is only issued when another row exists), so the total
/// read off the page's rows is always there when it is not zero.
pub fn page_sql(matching: &str, position: &str, order: &str, limit: &str) -> String {
    format!(
        "WITH matching AS ({matching}) SELECT m.*, (SELECT count(*) FROM matching) AS total FROM matching m \
         WHERE {position} ORDER BY {order} LIMIT {limit}"
    )
}

/// Whether `error` is a unique violation of `constraint`.
pub fn is_unique_violation(error: &sqlx::Error, constraint: &str) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") && db.constraint() == Some(constraint))
}
