//! Appraisal's SQL. Functions take a connection (inside the caller's transaction for
//! writes) and return rows; generated protobuf types never reach here.

pub mod kpis;
pub mod periods;
pub mod records;
pub mod referrals;
pub mod scores;

/// A row of a page query together with the number of rows matching its filter (all
/// pages), computed in the same statement.
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
/// taken from it after `position`, in `order`, `limit` rows. A token is only issued when
/// another row exists, so a page is never empty while rows match and the total read off
/// its rows is there.
pub fn page_sql(matching: &str, position: &str, order: &str, limit: &str) -> String {
    format!(
        "WITH matching AS ({matching}) SELECT m.*, (SELECT count(*) FROM matching) AS total FROM matching m \
         WHERE {position} ORDER BY {order} LIMIT {limit}"
    )
}
