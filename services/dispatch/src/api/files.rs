//! Attachments (附件): chunked upload, download and metadata.
//!
//! The content lives in Postgres (`attachment_contents`, bytea) beside its metadata, so a
//! file and the trail entry announcing it commit together. It is never held whole in this
//! process: an upload is spooled to an unlinked temporary file while it arrives (hashed as
//! it passes) and copied into Postgres chunk by chunk; a download is checked by Postgres
//! (length, SHA-256) and read back one chunk per message. An upload is
//! checked twice before anything is written: its declaration first (type, size, name,
//! digest format, the caller's right to the case), then the content against that
//! declaration (size, SHA-256). A download re-hashes the stored content and refuses with
//! DATA_LOSS rather than serve bytes that are no longer the ones recorded.

use chrono::TimeDelta;
use futures_util::{StreamExt as _, stream};
use minhu_grpc::{FieldViolations, OrgKind, Principal};
use minhu_proto::dispatch::v1::{
    self as pb, download_attachment_response::Content as Down, event::Payload, upload_attachment_request::Content as Up,
};
use serde_json::json;
use sqlx::PgConnection;
use tonic::{Request, Streaming};
use uuid::Uuid;

use super::{BoxStream, Dispatch, Entry, RPCS, caller, convert, readable_case, uuid, write};
use crate::{
    domain::events::EventKind,
    domain::{
        access,
        files::{self, ContentError, FileSpec, Receiving},
        model::{Attachment, AttachmentRef},
        state,
    },
    error::DispatchError,
    store::{
        attachments,
        spool::{Spool, SpoolError},
    },
};

/// How long a staged file (uploaded before its case exists) waits for CreateCase.
const STAGED_FOR: TimeDelta = TimeDelta::hours(24);

fn content_error(e: ContentError) -> DispatchError {
    match e {
        ContentError::ChunkTooLarge { max } => DispatchError::field("chunk", format!("must be at most {max} bytes")),
        ContentError::SizeMismatch { declared, received } if received > declared as u64 => {
            DispatchError::field("metadata.size_bytes", format!("the content exceeds the declared {declared} bytes"))
        }
        ContentError::SizeMismatch { declared, received } => DispatchError::field(
            "metadata.size_bytes",
            format!("declares {declared} bytes but the content has {received}"),
        ),
        ContentError::DigestMismatch { actual } => {
            let mut violations = FieldViolations::new();
            violations.add("metadata.sha256", format!("does not match the content, whose SHA-256 is {actual}"));
            minhu_grpc::ApiError::Rejected { reason: "DIGEST_MISMATCH", violations }.into()
        }
    }
}

/// The department an event of `p`'s is about, when `p` acts for one.
fn department_of(p: &Principal) -> String {
    if p.organization.kind == OrgKind::Department { p.organization.id.clone() } else { String::new() }
}

pub(super) async fn upload_attachment(
    s: &Dispatch,
    r: Request<Streaming<pb::UploadAttachmentRequest>>,
) -> Result<pb::Attachment, DispatchError> {
    let (p, screen, mut upload) = minhu_grpc::stream_caller(r)?;
    let first = upload.message().await.map_err(DispatchError::Stream)?;
    // The metadata is the only message with text; chunks are bytes.
    if let (Some(screen), Some(first)) = (&screen, &first) {
        screen.check(first)?;
    }
    let Some(Up::Metadata(meta)) = first.and_then(|m| m.content) else {
        return Err(DispatchError::field("metadata", "the first message must be the metadata"));
    };
    let limits = &s.d.attachments;
    let spec = FileSpec::parse(&meta.file_name, &meta.content_type, meta.size_bytes, &meta.sha256, limits)
        .map_err(DispatchError::from)?;
    let case_id = if meta.case_id.trim().is_empty() { None } else { Some(uuid("metadata.case_id", &meta.case_id)?) };
    let mut v = FieldViolations::new();
    v.optional_text("metadata.request_id", &meta.request_id, 128);
    v.into_result()?;
    let key = RPCS.idempotency("UploadAttachment", &p, &meta.request_id, &meta)?;
    // Refused before the content travels; checked again, locked, when writing.
    {
        let mut conn = s.d.pool.acquire().await?;
        match case_id {
            Some(id) => {
                readable_case(&mut conn, &p, id, false).await?;
            }
            None if !access::may_create_somewhere(&p) => {
                return Err(DispatchError::denied("files without a case are staged by those who record appeals"));
            }
            None => {}
        }
        within_quota(&mut conn, limits, &p.subject, case_id, spec.size_bytes).await?;
    }
    let mut receiving = Receiving::new(spec, limits);
    let mut spool = Spool::new().await.map_err(DispatchError::internal)?;
    while let Some(message) = upload.message().await.map_err(DispatchError::Stream)? {
        match message.content {
            Some(Up::Chunk(bytes)) => {
                receiving.push(&bytes).map_err(content_error)?;
                spool.push(&bytes).await.map_err(DispatchError::internal)?;
            }
            Some(Up::Metadata(_)) => {
                return Err(DispatchError::field("metadata", "must be sent once, as the first message"));
            }
            None => return Err(DispatchError::field("content", "must be the metadata or a chunk")),
        }
    }
    let spec = receiving.finish().map_err(content_error)?;
    let chunk = limits.max_chunk_bytes;
    let quota = limits.clone();
    let now = s.now();
    let attachment = Attachment {
        file: AttachmentRef {
            id: Uuid::now_v7(),
            file_name: spec.file_name,
            content_type: spec.content_type,
            size_bytes: spec.size_bytes,
            sha256: spec.sha256,
        },
        case_id,
        uploaded_by: convert::actor(&p),
        uploader_subject: p.subject.clone(),
        create_time: now,
        expire_time: case_id.is_none().then(|| now + STAGED_FOR),
    };
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let Some(case_id) = case_id else {
                within_quota(tx, &quota, &attachment.uploader_subject, None, attachment.file.size_bytes).await?;
                attachments::insert(tx, &attachment).await?;
                spool.store(tx, attachment.file.id, chunk).await.map_err(spool_error)?;
                return Ok(convert::attachment_pb(&attachment));
            };
            let (mut row, _) = readable_case(tx, &p, case_id, true).await?;
            state::require_open(row.case.state)?;
            within_quota(tx, &quota, &attachment.uploader_subject, Some(case_id), attachment.file.size_bytes).await?;
            attachments::insert(tx, &attachment).await?;
            spool.store(tx, attachment.file.id, chunk).await.map_err(spool_error)?;
            let entry = Entry {
                event_type: EventKind::AttachmentAdded,
                call_id: None,
                department_id: department_of(&p),
                before: json!({}),
                after: json!({"attachment": attachment.file, "uploaded_by": attachment.uploaded_by}),
                payload: Payload::AttachmentAdded(pb::AttachmentAdded {
                    attachment: Some(convert::file_pb(&attachment.file)),
                }),
            };
            w.record(tx, &mut row.case, &attachment.uploaded_by, entry).await?;
            Ok(convert::attachment_pb(&attachment))
        })
    })
    .await
}

/// Refuses with RESOURCE_EXHAUSTED a file beyond the quotas: per case, or for a staged file
/// the uploader's count and bytes. Checked before the content travels and again in the
/// write (the case row locked), so parallel uploads cannot pass together.
async fn within_quota(
    conn: &mut PgConnection,
    limits: &crate::AttachmentLimits,
    uploader: &str,
    case_id: Option<Uuid>,
    size_bytes: i64,
) -> Result<(), DispatchError> {
    let refused = |what: String| Err(minhu_grpc::ApiError::ResourceExhausted(what).into());
    match case_id {
        Some(case_id) => {
            if attachments::count_of_case(conn, case_id).await? >= limits.files_per_case {
                return refused(format!("the case already holds the limit of {} attachments", limits.files_per_case));
            }
        }
        None => {
            let (files, bytes) = attachments::staged_by(conn, uploader).await?;
            if files >= limits.staged_files_per_uploader {
                return refused(format!(
                    "you have the limit of {} staged files waiting for their case",
                    limits.staged_files_per_uploader
                ));
            }
            if bytes + size_bytes > limits.staged_bytes_per_uploader {
                return refused(format!(
                    "staging {size_bytes} more bytes would exceed your limit of {} staged bytes ({bytes} staged)",
                    limits.staged_bytes_per_uploader
                ));
            }
        }
    }
    Ok(())
}

/// A file `p` may read: one of a case it may read, or one it staged; NOT_FOUND otherwise.
async fn readable_attachment(conn: &mut PgConnection, p: &Principal, id: Uuid) -> Result<Attachment, DispatchError> {
    let not_found = || DispatchError::not_found("attachment", id);
    let attachment = attachments::get(conn, id).await?.ok_or_else(not_found)?;
    match attachment.case_id {
        Some(case_id) => match readable_case(conn, p, case_id, false).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Err(not_found()),
            Err(e) => return Err(e),
        },
        None if access::may_read_staged(p, &attachment.uploader_subject) => {}
        None => return Err(not_found()),
    }
    Ok(attachment)
}

pub(super) async fn get_attachment(
    s: &Dispatch,
    r: Request<pb::GetAttachmentRequest>,
) -> Result<pb::Attachment, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("attachment_id", &req.attachment_id)?;
    let mut conn = s.d.pool.acquire().await?;
    Ok(convert::attachment_pb(&readable_attachment(&mut conn, &p, id).await?))
}

pub(super) async fn download_attachment(
    s: &Dispatch,
    r: Request<pb::DownloadAttachmentRequest>,
) -> Result<BoxStream<pb::DownloadAttachmentResponse>, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("attachment_id", &req.attachment_id)?;
    if req.offset < 0 {
        return Err(DispatchError::field("offset", "must not be negative"));
    }
    let mut conn = s.d.pool.acquire().await?;
    let attachment = readable_attachment(&mut conn, &p, id).await?;
    let size = attachment.file.size_bytes;
    if req.offset > size {
        return Err(minhu_grpc::ApiError::OutOfRange(format!(
            "offset {} is beyond the file's {size} bytes",
            req.offset
        ))
        .into());
    }
    // The whole content is re-hashed (by Postgres) even when resuming: a partial range
    // cannot be checked against the digest on its own.
    let stored = attachments::content_digest(&mut conn, id).await?;
    drop(conn);
    if !stored.is_some_and(|(len, sha)| files::intact(len, &sha, size, &attachment.file.sha256)) {
        return Err(minhu_grpc::ApiError::DataLoss(format!(
            "attachment {id}: the stored content no longer matches its size and digest"
        ))
        .into());
    }
    let chunk = s.d.attachments.max_chunk_bytes.max(1) as i64;
    let head = pb::DownloadAttachmentResponse { content: Some(Down::Attachment(convert::attachment_pb(&attachment))) };
    // One chunk read per message sent, each on a pooled connection held only for its read.
    let pool = s.d.pool.clone();
    let body = stream::unfold(req.offset, move |from| {
        let pool = pool.clone();
        async move {
            if from >= size {
                return None;
            }
            let read = async {
                let mut conn = pool.acquire().await?;
                attachments::content_range(&mut conn, id, from, chunk).await
            };
            Some(match read.await {
                Ok(bytes) if !bytes.is_empty() => {
                    let next = from + bytes.len() as i64;
                    (Ok(pb::DownloadAttachmentResponse { content: Some(Down::Chunk(bytes)) }), next)
                }
                Ok(_) => (
                    Err(tonic::Status::from(minhu_grpc::ApiError::DataLoss(format!(
                        "attachment {id}: the stored content ended before its recorded size"
                    )))),
                    size,
                ),
                Err(e) => (Err(tonic::Status::from(DispatchError::from(e))), size),
            })
        }
    });
    Ok(Box::pin(stream::once(async move { Ok(head) }).chain(body)))
}

/// A spool that could not be stored: a database fault as such, a disk fault as internal.
fn spool_error(e: SpoolError) -> DispatchError {
    match e {
        SpoolError::Database(e) => e.into(),
        e @ SpoolError::Io(_) => DispatchError::internal(e),
    }
}
