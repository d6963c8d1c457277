//! Attachments (附件): chunked upload with its checks, download with its integrity check,
//! staging before intake, and files used as feedback evidence (影像资料).

use minhu_proto::dispatch::v1::{
    self as pb, download_attachment_response::Content as Down, upload_attachment_request::Content as Up,
};
use minhu_testkit::tokens;
use sha2::{Digest as _, Sha256};
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

const MIB: usize = 1024 * 1024;

fn sha256(bytes: &[u8]) -> String {
    minhu_trail::hex(&Sha256::digest(bytes))
}

/// Deterministic, incompressible-looking content.
fn content(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn metadata(case_id: &str, bytes: &[u8]) -> pb::UploadAttachmentMetadata {
    pb::UploadAttachmentMetadata {
        case_id: case_id.into(),
        file_name: "现场照片.jpg".into(),
        content_type: "image/jpeg".into(),
        size_bytes: bytes.len() as i64,
        sha256: sha256(bytes),
        request_id: request_id(),
    }
}

/// Uploads `bytes` in chunks of `chunk` bytes after `meta`.
async fn upload(
    client: Client,
    meta: pb::UploadAttachmentMetadata,
    bytes: &[u8],
    chunk: usize,
) -> Result<pb::Attachment, tonic::Status> {
    let mut messages = vec![pb::UploadAttachmentRequest { content: Some(Up::Metadata(meta)) }];
    messages.extend(bytes.chunks(chunk).map(|c| pb::UploadAttachmentRequest { content: Some(Up::Chunk(c.to_vec())) }));
    let mut client = client;
    client.upload_attachment(tokio_stream::iter(messages)).await.map(|r| r.into_inner())
}

/// Downloads from `offset`: the metadata and each chunk.
async fn download(client: Client, id: &str, offset: i64) -> Result<(pb::Attachment, Vec<Vec<u8>>), tonic::Status> {
    let mut client = client;
    let mut stream = client
        .download_attachment(pb::DownloadAttachmentRequest { attachment_id: id.into(), offset })
        .await?
        .into_inner();
    let Some(Down::Attachment(meta)) = stream.next().await.unwrap()?.content else { panic!("metadata first") };
    let mut chunks = Vec::new();
    while let Some(message) = stream.next().await {
        match message?.content {
            Some(Down::Chunk(c)) => chunks.push(c),
            other => panic!("unexpected {other:?}"),
        }
    }
    Ok((meta, chunks))
}

async fn stored_files(app: &TestApp) -> (i64, i64) {
    let (a,): (i64,) = sqlx::query_as("SELECT count(*) FROM attachments").fetch_one(&app.pool).await.unwrap();
    let (c,): (i64,) = sqlx::query_as("SELECT count(*) FROM attachment_contents").fetch_one(&app.pool).await.unwrap();
    (a, c)
}

#[tokio::test]
async fn an_uploaded_file_downloads_in_chunks_that_are_the_file() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let trail = app.trail_len(&case.id).await;
    let bytes = content(2 * MIB + 12_345);
    let meta = metadata(&case.id, &bytes);
    let uploaded = upload(app.street(), meta.clone(), &bytes, MIB).await.unwrap();
    assert_eq!(uploaded.case_id, case.id);
    assert_eq!((uploaded.size_bytes, uploaded.sha256.as_str()), (bytes.len() as i64, meta.sha256.as_str()));
    assert_eq!(uploaded.file_name, "现场照片.jpg");
    assert_eq!(uploaded.uploaded_by.as_ref().unwrap().person_id, format!("{STREET}-dispatcher"));
    assert!(uploaded.expire_time.is_none());

    // The trail and the feed see the new file.
    assert_eq!(app.trail_len(&case.id).await, trail + 1);
    let event = app.events_of(&case.id).await.pop().unwrap();
    assert_eq!(event.event_type, pb::EventType::AttachmentAdded as i32);
    let Some(pb::event::Payload::AttachmentAdded(added)) = event.payload else { panic!() };
    assert_eq!(added.attachment.unwrap().sha256, uploaded.sha256);

    // Anyone who may read the case downloads it: the chunks are the file.
    let district = app.client(&tokens::district_operator());
    let (meta_down, chunks) = download(district.clone(), &uploaded.id, 0).await.unwrap();
    assert_eq!(meta_down, uploaded);
    assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= MIB));
    assert_eq!(chunks.len(), 3);
    let whole = chunks.concat();
    assert_eq!(whole, bytes);
    assert_eq!(sha256(&whole), uploaded.sha256);
    let got = district
        .clone()
        .get_attachment(pb::GetAttachmentRequest { attachment_id: uploaded.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, uploaded);

    // An interrupted download resumes from an offset; past the end is out of range.
    let (_, rest) = download(app.street(), &uploaded.id, (MIB + 7) as i64).await.unwrap();
    assert_eq!(rest.concat(), bytes[MIB + 7..]);
    let (_, none) = download(app.street(), &uploaded.id, bytes.len() as i64).await.unwrap();
    assert!(none.is_empty());
    let e = download(app.street(), &uploaded.id, bytes.len() as i64 + 1).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange);
    let e = download(app.street(), &uploaded.id, -1).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Who may not read the case does not learn the file exists.
    let e = download(app.client(&tokens::street_dispatcher("shuiguohu")), &uploaded.id, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = app
        .department("gongan")
        .get_attachment(pb::GetAttachmentRequest { attachment_id: uploaded.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn a_retried_upload_returns_the_first_attachment() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let bytes = content(300_000);
    let meta = metadata(&case.id, &bytes);
    let first = upload(app.street(), meta.clone(), &bytes, 64 * 1024).await.unwrap();
    let again = upload(app.street(), meta.clone(), &bytes, 100_000).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(stored_files(&app).await, (1, 1));
    // The same request id with another file is a caller's mistake.
    let other = content(1000);
    let e = upload(
        app.street(),
        pb::UploadAttachmentMetadata { request_id: meta.request_id, ..metadata(&case.id, &other) },
        &other,
        MIB,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(stored_files(&app).await, (1, 1));
}

#[tokio::test]
async fn the_largest_file_is_accepted_and_anything_larger_is_refused() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    // Exactly the default limit, 20 MiB, in 1 MiB chunks.
    let largest = content(20 * MIB);
    let stored = upload(app.street(), metadata(&case.id, &largest), &largest, MIB).await.unwrap();
    let (_, chunks) = download(app.street(), &stored.id, 0).await.unwrap();
    assert_eq!(chunks.len(), 20);
    assert_eq!(sha256(&chunks.concat()), stored.sha256);
    let trail = app.trail_len(&case.id).await;

    // 21 MiB, honestly declared and sent in 1 MiB chunks: refused on its declaration. (The
    // digests below are never reached: no need to compute them.)
    let larger = content(21 * MIB);
    let declared = |size: usize| pb::UploadAttachmentMetadata {
        size_bytes: size as i64,
        sha256: "0".repeat(64),
        ..metadata(&case.id, b"")
    };
    let e = upload(app.street(), declared(larger.len()), &larger, MIB).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.get_details_bad_request().unwrap().field_violations[0].field, "metadata.size_bytes");
    // Declared within the limit but sent larger: cut off when the content passes its size.
    let e = upload(app.street(), declared(20 * MIB), &larger, MIB).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.get_details_bad_request().unwrap().field_violations[0].field, "metadata.size_bytes");
    // A chunk above 1 MiB.
    let e = upload(app.street(), declared(MIB + 1), &larger[..MIB + 1], MIB + 1).await.unwrap_err();
    assert_eq!(e.get_details_bad_request().unwrap().field_violations[0].field, "chunk");

    assert_eq!(stored_files(&app).await, (1, 1));
    assert_eq!(app.trail_len(&case.id).await, trail);
}

#[tokio::test]
async fn refused_uploads_store_nothing() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let trail = app.trail_len(&case.id).await;
    let bytes = content(50_000);
    let bad_field = |e: tonic::Status| {
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        e.get_details_bad_request().unwrap().field_violations[0].field.clone()
    };

    // A type the service does not accept.
    let html = pb::UploadAttachmentMetadata { content_type: "text/html".into(), ..metadata(&case.id, &bytes) };
    assert_eq!(bad_field(upload(app.street(), html, &bytes, MIB).await.unwrap_err()), "metadata.content_type");
    // A digest that is not the content's: DIGEST_MISMATCH.
    let wrong = pb::UploadAttachmentMetadata { sha256: sha256(b"something else"), ..metadata(&case.id, &bytes) };
    let e = upload(app.street(), wrong, &bytes, MIB).await.unwrap_err();
    assert_eq!(e.get_details_error_info().unwrap().reason, "DIGEST_MISMATCH");
    assert_eq!(bad_field(e), "metadata.sha256");
    // A declared size the content does not have.
    let short = pb::UploadAttachmentMetadata { size_bytes: bytes.len() as i64 + 10, ..metadata(&case.id, &bytes) };
    assert_eq!(bad_field(upload(app.street(), short, &bytes, MIB).await.unwrap_err()), "metadata.size_bytes");
    // A path for a file name.
    let path = pb::UploadAttachmentMetadata { file_name: "../../etc/passwd".into(), ..metadata(&case.id, &bytes) };
    assert_eq!(bad_field(upload(app.street(), path, &bytes, MIB).await.unwrap_err()), "metadata.file_name");
    // Content before the metadata.
    let mut street = app.street();
    let e = street
        .upload_attachment(tokio_stream::iter(vec![pb::UploadAttachmentRequest {
            content: Some(Up::Chunk(bytes.clone())),
        }]))
        .await
        .unwrap_err();
    assert_eq!(bad_field(e), "metadata");
    // A case the caller may not read (another street, an uncalled department): not found.
    for stranger in [app.client(&tokens::street_dispatcher("shuiguohu")), app.department("gongan")] {
        let e = upload(stranger, metadata(&case.id, &bytes), &bytes, MIB).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    }
    // A case that is finished.
    let declined = app.street().create_case(intake(&request_id())).await.unwrap().into_inner();
    app.street()
        .triage_case(pb::TriageCaseRequest {
            case_id: declined.id.clone(),
            decision: pb::TriageDecision::Decline as i32,
            reason: "无实质诉求".into(),
            decline_reason: pb::DeclineReason::NotActionable as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    let e = upload(app.street(), metadata(&declined.id, &bytes), &bytes, MIB).await.unwrap_err();
    assert_eq!(reasons(&e), ["CASE_FINISHED"]);
    // Staging is for those who record appeals.
    let e = upload(app.department("gongan"), metadata("", &bytes), &bytes, MIB).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    assert_eq!(stored_files(&app).await, (0, 0));
    assert_eq!(app.trail_len(&case.id).await, trail);
}

#[tokio::test]
async fn a_file_whose_stored_bytes_changed_is_not_served() {
    let app = TestApp::spawn().await;
    let case = app.triaged_case().await;
    let bytes = content(3 * MIB);
    let stored = upload(app.street(), metadata(&case.id, &bytes), &bytes, MIB).await.unwrap();
    let id: uuid::Uuid = stored.id.parse().unwrap();
    sqlx::query(
        "UPDATE attachment_contents SET content = set_byte(content, 2000000, (get_byte(content, 2000000) + 1) % 256) \
         WHERE attachment_id = $1",
    )
    .bind(id)
    .execute(&app.pool)
    .await
    .unwrap();
    let e = download(app.street(), &stored.id, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::DataLoss);
    // Resuming past the damage is refused too: the whole file is checked.
    let e = download(app.street(), &stored.id, (2 * MIB + 100) as i64).await.unwrap_err();
    assert_eq!(e.code(), Code::DataLoss);
    // Truncation as well.
    sqlx::query("UPDATE attachment_contents SET content = substring(content from 1 for 100) WHERE attachment_id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(download(app.street(), &stored.id, 0).await.unwrap_err().code(), Code::DataLoss);
    // The metadata is still there to say what was lost.
    let got = app
        .street()
        .get_attachment(pb::GetAttachmentRequest { attachment_id: stored.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.sha256, sha256(&bytes));
}

#[tokio::test]
async fn feedback_carries_files_uploaded_to_its_case() {
    let app = TestApp::spawn().await;
    let (case_id, _, tasks) = app.handling_case(&["chengguan"]).await;
    let squad = app.department("chengguan");
    let photo = content(200_000);
    let file = upload(squad.clone(), metadata(&case_id, &photo), &photo, MIB).await.unwrap();
    let event = app.events_of(&case_id).await.pop().unwrap();
    assert_eq!((event.event_type, event.department_id.as_str()), (pb::EventType::AttachmentAdded as i32, "chengguan"));
    let feedback = squad
        .clone()
        .submit_feedback(pb::SubmitFeedbackRequest {
            task_id: tasks[0].id.clone(),
            text: "已拆除违规打通的墙体".into(),
            handling_opinion: "已恢复原状".into(),
            attachment_ids: vec![file.id.clone()],
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    let evidence = &feedback.attachments[0];
    assert_eq!((evidence.id.as_str(), evidence.sha256.as_str()), (file.id.as_str(), file.sha256.as_str()));
    // The street reviewing it downloads the same photo.
    let (_, chunks) = download(app.street(), &evidence.id, 0).await.unwrap();
    assert_eq!(chunks.concat(), photo);

    // A file of another case is no evidence here.
    let other = app.triaged_case().await;
    let elsewhere = upload(app.street(), metadata(&other.id, &photo), &photo, MIB).await.unwrap();
    let e = squad
        .clone()
        .report_progress(pb::ReportProgressRequest {
            task_id: tasks[0].id.clone(),
            text: "进行中".into(),
            attachment_ids: vec![elsewhere.id],
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_staged_file_is_its_uploader_s_until_intake_attaches_it() {
    let app = TestApp::spawn().await;
    let photo = content(100_000);
    let staged = upload(app.street(), metadata("", &photo), &photo, MIB).await.unwrap();
    assert!(staged.case_id.is_empty());
    let expire = time(staged.expire_time.unwrap());
    assert_eq!(expire - time(staged.create_time.unwrap()), chrono::TimeDelta::hours(24));
    for other in [app.client(&tokens::district_admin()), app.client(&tokens::street_leader(STREET))] {
        let e = other
            .clone()
            .get_attachment(pb::GetAttachmentRequest { attachment_id: staged.id.clone() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    }
    let (_, chunks) = download(app.street(), &staged.id, 0).await.unwrap();
    assert_eq!(chunks.concat(), photo);

    let mut request = intake(&request_id());
    request.attachment_ids = vec![staged.id.clone()];
    let case = app.street().create_case(request).await.unwrap().into_inner();
    assert_eq!(case.attachments.len(), 1);
    assert_eq!(case.attachments[0].sha256, staged.sha256);
    let events = app.events_of(&case.id).await;
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [pb::EventType::CaseCreated as i32, pb::EventType::AttachmentAdded as i32]);
    // Now it is the case's: whoever reads the case reads it, and it no longer expires.
    let got = app
        .client(&tokens::district_admin())
        .get_attachment(pb::GetAttachmentRequest { attachment_id: staged.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.case_id, case.id);
    assert!(got.expire_time.is_none());
    let verified =
        app.street().verify_trail(pb::VerifyTrailRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    assert!(verified.verified);
}

#[tokio::test]
async fn a_staged_file_nobody_attached_expires_and_is_purged() {
    let app = TestApp::spawn().await;
    let old = content(10_000);
    let stale = upload(app.street(), metadata("", &old), &old, MIB).await.unwrap();
    app.clock.advance(chrono::TimeDelta::hours(23));
    let fresh = upload(app.street(), metadata("", &old), &old, MIB).await.unwrap();
    app.clock.advance(chrono::TimeDelta::hours(2));

    // Past its 24 hours a staged file can no longer join a case…
    let mut request = intake(&request_id());
    request.attachment_ids = vec![stale.id.clone()];
    let e = app.street().create_case(request).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // …and the purge discards it, content included, leaving the fresh one alone.
    let mut conn = app.pool.acquire().await.unwrap();
    let purged = minhu_dispatch::store::attachments::purge_expired(&mut conn, app.now()).await.unwrap();
    assert_eq!(purged, 1);
    assert_eq!(stored_files(&app).await, (1, 1));
    let e =
        app.street().get_attachment(pb::GetAttachmentRequest { attachment_id: stale.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let mut request = intake(&request_id());
    request.attachment_ids = vec![fresh.id.clone()];
    let case = app.street().create_case(request).await.unwrap().into_inner();
    assert_eq!(case.attachments[0].id, fresh.id);
    // Attached files are never purged.
    app.clock.advance(chrono::TimeDelta::days(30));
    let purged = minhu_dispatch::store::attachments::purge_expired(&mut conn, app.now()).await.unwrap();
    assert_eq!(purged, 0);
    assert_eq!(stored_files(&app).await, (1, 1));
}
