//! Uploads cannot starve the server (#14.1): stalled or slow uploads take their own small
//! budget, are ended when idle or too slow, and never stop health or other calls.

use std::time::Duration;

use minhu_grpc::{ServerConfig, admission::UploadPace};
use minhu_proto::dispatch::v1::{self as pb, upload_attachment_request::Content as Up};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_types::StatusExt as _;

use crate::helpers::*;

fn declared(case_id: &str, size: i64) -> pb::UploadAttachmentRequest {
    pb::UploadAttachmentRequest {
        content: Some(Up::Metadata(pb::UploadAttachmentMetadata {
            case_id: case_id.into(),
            file_name: "现场照片.jpg".into(),
            content_type: "image/jpeg".into(),
            size_bytes: size,
            sha256: "0".repeat(64),
            request_id: request_id(),
        })),
    }
}

fn chunk(len: usize) -> pb::UploadAttachmentRequest {
    pb::UploadAttachmentRequest { content: Some(Up::Chunk(vec![7; len])) }
}

/// An upload whose messages the test sends through the returned sender; the call runs in
/// the background.
fn open_upload(
    client: Client,
    first: pb::UploadAttachmentRequest,
) -> (mpsc::Sender<pb::UploadAttachmentRequest>, tokio::task::JoinHandle<Result<pb::Attachment, tonic::Status>>) {
    let (tx, rx) = mpsc::channel(16);
    tx.try_send(first).unwrap();
    let call = tokio::spawn(async move {
        let mut client = client;
        client.upload_attachment(ReceiverStream::new(rx)).await.map(|r| r.into_inner())
    });
    (tx, call)
}

fn reason(status: &tonic::Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

#[tokio::test]
async fn stalled_uploads_beyond_their_budget_are_refused_and_never_block_health_or_other_calls() {
    let server = ServerConfig {
        concurrency_limit: 4,
        long_running_limit: 2,
        upload_pace: UploadPace { idle_timeout: Duration::from_secs(120), ..UploadPace::default() },
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_with(|c| c.server = server).await;
    let case = app.triaged_case().await;

    // Four uploads (as many as the global limit) that send one chunk and then wait.
    let mut held = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..4 {
        let (tx, call) = open_upload(app.street(), declared(&case.id, 1_000_000));
        tx.send(chunk(1000)).await.unwrap();
        held.push(tx);
        calls.push(call);
    }
    // Two fit the upload budget and stay open; the other two are refused at once, naming it.
    tokio::time::timeout(Duration::from_secs(10), async {
        while calls.iter().filter(|c| c.is_finished()).count() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("two uploads beyond the budget of 2 are answered");
    let (answered, open): (Vec<_>, Vec<_>) = calls.into_iter().partition(|c| c.is_finished());
    assert_eq!(answered.len(), 2);
    for call in answered {
        let e = call.await.unwrap().unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("limit of 2 long-running calls"), "{}", e.message());
    }

    // With both upload permits held, health and ordinary calls (more than the global limit
    // of 4, one after another and at once) are served.
    let mut health = HealthClient::new(app.channel());
    for _ in 0..3 {
        let answer = health.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving);
    }
    let gets = (0..4).map(|_| {
        let mut client = app.street();
        let id = case.id.clone();
        async move { client.get_case(pb::GetCaseRequest { case_id: id }).await }
    });
    for result in futures_util::future::join_all(gets).await {
        assert_eq!(result.unwrap().into_inner().id, case.id);
    }
    assert!(open.iter().all(|c| !c.is_finished()), "the admitted uploads are still open");
    drop(held);
}

#[tokio::test]
async fn an_idle_upload_is_ended_after_the_idle_timeout_and_a_too_slow_one_below_the_minimum_rate() {
    let pace = UploadPace {
        idle_timeout: Duration::from_millis(500),
        min_bytes_per_second: 50_000,
        grace: Duration::from_millis(300),
    };
    let server = ServerConfig { long_running_limit: 1, upload_pace: pace, ..ServerConfig::default() };
    let app = TestApp::spawn_with(|c| c.server = server).await;
    let case = app.triaged_case().await;

    let started = std::time::Instant::now();
    let (tx, call) = open_upload(app.street(), declared(&case.id, 1_000_000));
    tx.send(chunk(1000)).await.unwrap();
    let e =
        tokio::time::timeout(Duration::from_secs(10), call).await.expect("ended by the server").unwrap().unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert_eq!(reason(&e), "UPLOAD_IDLE");
    assert!(started.elapsed() >= Duration::from_millis(500));
    drop(tx);

    // 100 bytes every 50 ms is 2 kB/s: ended once the grace period is over. The one permit
    // is free again (the idle upload gave it back), or this would be RESOURCE_EXHAUSTED.
    let (tx, call) = open_upload(app.street(), declared(&case.id, 1_000_000));
    let sender = tokio::spawn(async move {
        for _ in 0..200 {
            if tx.send(chunk(100)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let e =
        tokio::time::timeout(Duration::from_secs(10), call).await.expect("ended by the server").unwrap().unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert_eq!(reason(&e), "UPLOAD_TOO_SLOW");
    assert!(e.message().contains("below the minimum of 50000 bytes/s"), "{}", e.message());
    sender.abort();
    let (files,): (i64,) = sqlx::query_as("SELECT count(*) FROM attachments").fetch_one(&app.pool).await.unwrap();
    assert_eq!(files, 0, "nothing of an ended upload is stored");
}

/// A complete upload of `bytes` (one chunk) for `case_id` (empty: staged).
async fn upload_whole(client: Client, case_id: &str, bytes: &[u8]) -> Result<pb::Attachment, tonic::Status> {
    use sha2::Digest as _;
    let meta = pb::UploadAttachmentMetadata {
        case_id: case_id.into(),
        file_name: "现场照片.jpg".into(),
        content_type: "image/jpeg".into(),
        size_bytes: bytes.len() as i64,
        sha256: minhu_trail::hex(&sha2::Sha256::digest(bytes)),
        request_id: request_id(),
    };
    let messages = vec![
        pb::UploadAttachmentRequest { content: Some(Up::Metadata(meta)) },
        pb::UploadAttachmentRequest { content: Some(Up::Chunk(bytes.to_vec())) },
    ];
    let mut client = client;
    client.upload_attachment(tokio_stream::iter(messages)).await.map(|r| r.into_inner())
}

#[tokio::test]
async fn staged_uploads_and_case_attachments_stop_at_their_quotas() {
    let app = TestApp::spawn_with(|c| {
        c.attachments.staged_files_per_uploader = 2;
        c.attachments.staged_bytes_per_uploader = 3000;
        c.attachments.files_per_case = 1;
    })
    .await;
    // Staged files: two of one uploader, then the count quota.
    upload_whole(app.street(), "", &[1; 1000]).await.unwrap();
    let e = upload_whole(app.street(), "", &[2; 2500]).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("limit of 3000 staged bytes"), "{}", e.message());
    upload_whole(app.street(), "", &[3; 1000]).await.unwrap();
    let e = upload_whole(app.street(), "", &[4; 10]).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("limit of 2 staged files"), "{}", e.message());
    // Another uploader has their own quota.
    upload_whole(app.client(&minhu_testkit::tokens::street_dispatcher("shuiguohu")), "", &[5; 10]).await.unwrap();

    // A case holds at most one file here.
    let case = app.triaged_case().await;
    upload_whole(app.street(), &case.id, &[6; 100]).await.unwrap();
    let e = upload_whole(app.street(), &case.id, &[7; 100]).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("limit of 1 attachments"), "{}", e.message());
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM attachments").fetch_one(&app.pool).await.unwrap();
    assert_eq!(n, 4, "nothing of a refused upload is stored");
}
