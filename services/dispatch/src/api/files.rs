//! Attachments (附件): chunked upload, download and metadata.
//!
//! The content lives in Postgres (`attachment_contents`, bytea) beside its metadata, so a
//! file and the trail entry announcing it commit together; the configured limit (20 MiB by
//! default) keeps a file small enough to hold in memory while it is checked. An upload is
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
    store::attachments,
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
    match case_id {
        Some(id) => {
            let mut conn = s.d.pool.acquire().await?;
            readable_case(&mut conn, &p, id, false).await?;
        }
        None if !access::may_create_somewhere(&p) => {
            return Err(DispatchError::denied("files without a case are staged by those who record appeals"));
        }
        None => {}
    }
    let mut receiving = Receiving::new(spec, limits);
    while let Some(message) = upload.message().await.map_err(DispatchError::Stream)? {
        match message.content {
            Some(Up::Chunk(bytes)) => receiving.push(&bytes).map_err(content_error)?,
            Some(Up::Metadata(_)) => {
                return Err(DispatchError::field("metadata", "must be sent once, as the first message"));
            }
            None => return Err(DispatchError::field("content", "must be the metadata or a chunk")),
        }
    }
    let (spec, content) = receiving.finish().map_err(content_error)?;
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
                attachments::insert(tx, &attachment, &content).await?;
                return Ok(convert::attachment_pb(&attachment));
            };
            let (mut row, _) = readable_case(tx, &p, case_id, true).await?;
            state::require_open(row.case.state)?;
            attachments::insert(tx, &attachment, &content).await?;
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
    // The whole content is re-hashed even when resuming: a partial range cannot be
    // checked against the digest on its own.
    let content = attachments::content(&mut conn, id).await?;
    drop(conn);
    let content = content.filter(|c| files::intact(c, size, &attachment.file.sha256)).ok_or_else(|| {
        minhu_grpc::ApiError::DataLoss(format!(
            "attachment {id}: the stored content no longer matches its size and digest"
        ))
    })?;
    let chunk = s.d.attachments.max_chunk_bytes.max(1);
    let start = usize::try_from(req.offset).unwrap_or(usize::MAX).min(content.len());
    let head = pb::DownloadAttachmentResponse { content: Some(Down::Attachment(convert::attachment_pb(&attachment))) };
    let body = stream::iter((start..content.len()).step_by(chunk)).map(move |from| {
        let to = (from + chunk).min(content.len());
        Ok(pb::DownloadAttachmentResponse { content: Some(Down::Chunk(content[from..to].to_vec())) })
    });
    Ok(Box::pin(stream::once(async move { Ok(head) }).chain(body)))
}
