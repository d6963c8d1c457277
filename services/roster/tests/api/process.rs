//! The roster as its own binary: configuration from the environment, health and
//! reflection, draining on SIGTERM.

use std::{process::Stdio, time::Duration};

use minhu_testkit::TestDatabase;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn roster_binary() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_minhu-roster"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn the_binary_serves_health_and_reflection_and_drains_on_sigterm() {
    let db = TestDatabase::create("roster_bin").await;
    let port = free_port();
    let mut child = roster_binary()
        .env("MINHU_ROSTER_DATABASE_URL", db.url())
        .env("MINHU_ROSTER_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("MINHU_AUTH_DEV", "true")
        .env("MINHU_LOG_FORMAT", "json")
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let channel = minhu_testkit::connect(format!("127.0.0.1:{port}").parse().unwrap()).await;
    let mut health = HealthClient::new(channel.clone());
    let status = health
        .check(HealthCheckRequest { service: "minhu.roster.v1.RosterService".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status(), ServingStatus::Serving);

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol("minhu.roster.v1.RosterService".into())),
    };
    let mut replies = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    assert!(
        matches!(reply.message_response, Some(MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()),
        "reflection describes the roster: {reply:?}"
    );

    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("drained in time").unwrap();
    assert!(exit.success(), "a SIGTERM is a clean stop: {exit:?}");
}

#[tokio::test]
async fn a_missing_database_url_stops_the_binary_naming_the_variable() {
    let output = roster_binary().env("MINHU_AUTH_DEV", "true").output().await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MINHU_ROSTER_DATABASE_URL"), "{stderr}");

    let output = roster_binary()
        .env("MINHU_ROSTER_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("MINHU_AUTH_DEV", "maybe")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("MINHU_AUTH_DEV"));
}
