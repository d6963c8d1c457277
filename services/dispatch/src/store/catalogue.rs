//! The dispatch catalogue's versions (派单目录).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, types::Json};

use crate::domain::{
    catalogue::{Catalogue, CatalogueCategory},
    model::Actor,
};

/// The current (highest) version; `None` before any is published.
pub async fn current(conn: &mut PgConnection) -> Result<Option<Catalogue>, sqlx::Error> {
    let row: Option<(Json<Catalogue>,)> =
        sqlx::query_as("SELECT doc FROM catalogue_versions ORDER BY version DESC LIMIT 1").fetch_optional(conn).await?;
    Ok(row.map(|r| r.0.0))
}

/// Version `version`, if published.
pub async fn get(conn: &mut PgConnection, version: i32) -> Result<Option<Catalogue>, sqlx::Error> {
    let row: Option<(Json<Catalogue>,)> = sqlx::query_as("SELECT doc FROM catalogue_versions WHERE version = $1")
        .bind(version)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.0.0))
}

/// Publishes `categories` as the next version. The table lock makes concurrent publishes
/// take consecutive numbers instead of failing on the key; intake only reads, so it never
/// waits on it for long.
pub async fn publish(
    tx: &mut PgConnection,
    categories: Vec<CatalogueCategory>,
    note: String,
    published_by: Actor,
    now: DateTime<Utc>,
) -> Result<Catalogue, sqlx::Error> {
    sqlx::query("LOCK TABLE catalogue_versions IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
    let (last,): (Option<i32>,) =
        sqlx::query_as("SELECT max(version) FROM catalogue_versions").fetch_one(&mut *tx).await?;
    let catalogue = Catalogue { version: last.unwrap_or(0) + 1, categories, note, published_by, publish_time: now };
    insert(tx, &catalogue).await?;
    Ok(catalogue)
}

async fn insert(conn: &mut PgConnection, c: &Catalogue) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO catalogue_versions (version, published_at, doc) VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING",
    )
    .bind(c.version)
    .bind(c.publish_time)
    .bind(Json(c))
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes version 1 from [`crate::domain::catalogue::seed`] unless a version exists
/// (every replica may run it at start; the first one wins).
pub async fn seed(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let first = Catalogue {
        version: 1,
        categories: crate::domain::catalogue::seed(),
        note: "初始派单目录: 城市综合管理、服务市场主体、民生社会保障、应急突发事件".into(),
        published_by: Actor::dispatch_service(),
        publish_time: now,
    };
    insert(conn, &first).await
}
