//! Attachments (附件): metadata and content, stored apart.

use chrono::{DateTime, Utc};
use sqlx::{Connection as _, PgConnection, types::Json};
use uuid::Uuid;

use crate::domain::model::Attachment;

/// Stores a file's metadata (its content follows from the upload's spool).
pub async fn insert(tx: &mut PgConnection, a: &Attachment) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO attachments (id, case_id, uploaded_by, file_name, content_type, size_bytes, sha256, created_at, expire_at, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(a.file.id)
    .bind(a.case_id)
    .bind(&a.uploader_subject)
    .bind(&a.file.file_name)
    .bind(&a.file.content_type)
    .bind(a.file.size_bytes)
    .bind(&a.file.sha256)
    .bind(a.create_time)
    .bind(a.expire_time)
    .bind(Json(a))
    .execute(tx)
    .await?;
    Ok(())
}

/// How many files, and how many bytes, `uploader` has staged (on no case yet).
pub async fn staged_by(conn: &mut PgConnection, uploader: &str) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), coalesce(sum(size_bytes), 0)::bigint FROM attachments WHERE uploaded_by = $1 AND case_id IS NULL",
    )
    .bind(uploader)
    .fetch_one(conn)
    .await
}

/// How many files `case_id` holds.
pub async fn count_of_case(conn: &mut PgConnection, case_id: Uuid) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM attachments WHERE case_id = $1").bind(case_id).fetch_one(conn).await?;
    Ok(n)
}

/// A file's metadata.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Attachment>, sqlx::Error> {
    let row: Option<(Json<Attachment>,)> =
        sqlx::query_as("SELECT doc FROM attachments WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(row.map(|r| r.0.0))
}

/// A file's stored length and SHA-256 (hex), computed by Postgres: checking a download's
/// integrity never brings the whole file into this process.
pub async fn content_digest(conn: &mut PgConnection, id: Uuid) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT length(content)::bigint, encode(sha256(content), 'hex') FROM attachment_contents WHERE attachment_id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// `len` bytes of a file's content from byte `from` (0-based): one download chunk.
pub async fn content_range(conn: &mut PgConnection, id: Uuid, from: i64, len: i64) -> Result<Vec<u8>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as(
        "SELECT substring(content from $2::int for $3::int) FROM attachment_contents WHERE attachment_id = $1",
    )
    .bind(id)
    .bind(from + 1)
    .bind(len)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.0).unwrap_or_default())
}

/// Attaches a staged file to a case at intake; `false` when it is no longer staged (already
/// attached, or purged meanwhile).
pub async fn attach_to_case(tx: &mut PgConnection, a: &Attachment, case_id: Uuid) -> Result<bool, sqlx::Error> {
    let mut a = a.clone();
    a.case_id = Some(case_id);
    a.expire_time = None;
    let n = sqlx::query(
        "UPDATE attachments SET case_id = $2, intake = true, expire_at = NULL, doc = $3 WHERE id = $1 AND case_id IS NULL",
    )
    .bind(a.file.id)
    .bind(case_id)
    .bind(Json(&a))
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The files given at intake.
pub async fn intake_files(conn: &mut PgConnection, case_id: Uuid) -> Result<Vec<Attachment>, sqlx::Error> {
    let rows: Vec<(Json<Attachment>,)> =
        sqlx::query_as("SELECT doc FROM attachments WHERE case_id = $1 AND intake ORDER BY created_at, id")
            .bind(case_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|r| r.0.0).collect())
}

/// Deletes staged files that expired before `now`, content and metadata together; returns
/// how many. The rows are locked first, so an intake attaching one of them either wins
/// (the file is no longer staged and stays) or finds it gone.
pub async fn purge_expired(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let ids: Vec<(Uuid,)> =
        sqlx::query_as("SELECT id FROM attachments WHERE case_id IS NULL AND expire_at < $1 FOR UPDATE")
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
    let ids: Vec<Uuid> = ids.into_iter().map(|r| r.0).collect();
    sqlx::query("DELETE FROM attachment_contents WHERE attachment_id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
    let n = sqlx::query("DELETE FROM attachments WHERE id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(n.rows_affected())
}
