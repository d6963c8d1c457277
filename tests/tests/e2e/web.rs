//! Browsers and HTTP/1.1-only gateways: the suite's servers answer gRPC-Web over HTTP/1.1,
//! behind the CORS policy of `MINHU_CORS_ALLOWED_ORIGINS`.
//!
//! Two clients nobody here wrote: Connect's gRPC-Web transport for Node
//! (`tests/node/grpc_web.mjs`, npm packages installed under `target/` by `node.rs`) and
//! curl speaking HTTP/1.1 with a gRPC-Web frame built by hand.

use std::{path::Path, process::Stdio, time::Duration};

use minhu_e2e::{STREET, Suite};
use minhu_grpc::{AllowedOrigins, ServerConfig};
use minhu_proto::{common::v1 as common, dispatch::v1 as dispatch, roster::v1 as roster};
use minhu_testkit::tokens;
use tonic_prost::prost::Message as _;

use crate::node;

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
const RESOLVE_LOCATION: &str = "/minhu.roster.v1.RosterService/ResolveLocation";

/// The suite with the development overlay's origins: a page served from localhost, any port.
async fn suite_for_browsers() -> Suite {
    let origins: AllowedOrigins = "http://localhost:*".parse().expect("an origin list");
    Suite::builder().server(ServerConfig { cors_allowed_origins: origins, ..ServerConfig::default() }).start().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grpc_web_client_over_http1_resolves_a_place_watches_a_case_reads_errors_and_passes_cors() {
    // The packages (slow only the first time) are installed while the services start.
    let (packages, suite) = tokio::join!(tokio::task::spawn_blocking(node::packages), suite_for_browsers());
    let packages = packages.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

    // A case to watch: the seed article's pump room, placed by the roster.
    let intake = dispatch::CreateCaseRequest {
        case: Some(dispatch::Case {
            channel: dispatch::Channel::Portal as i32,
            category: "城市管理/违法建设".into(),
            title: "海运社区水泵房被违规占用".into(),
            description: "水泵房被改成商铺".into(),
            place: Some(dispatch::Place {
                address: "中南路街海运宿舍3栋水泵房".into(),
                location: Some(common::GeoPoint { latitude: 30.5335, longitude: 114.3358 }),
            }),
            reporter: Some(dispatch::Reporter {
                name: "张三".into(),
                phone: "13812341234".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let case = suite.street().create_case(intake).await.expect("intake").into_inner();

    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
    let descriptors = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("minhu-{}.binpb", uuid::Uuid::new_v4()));
    std::fs::write(&descriptors, minhu_proto::FILE_DESCRIPTOR_SET).expect("writing the descriptor set");

    let run = tokio::process::Command::new("node")
        .arg(workspace.join("tests/node/grpc_web.mjs"))
        .current_dir(workspace)
        .env_remove("NODE_OPTIONS")
        .env("MINHU_E2E_NODE_MODULES", &packages)
        .env("MINHU_E2E_ROSTER_ADDR", suite.roster_service().addr().to_string())
        .env("MINHU_E2E_DESCRIPTORS", &descriptors)
        .env("MINHU_E2E_TOKEN", tokens::token(&tokens::street_dispatcher(STREET)))
        .env("MINHU_E2E_STREET", STREET)
        .env("MINHU_E2E_ORIGIN", "http://localhost:5173")
        .env("MINHU_E2E_DISPATCH_ADDR", suite.dispatch_service().addr().to_string())
        .env("MINHU_E2E_CASE_ID", &case.id)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("grpc_web.mjs did not finish within {SCRIPT_TIMEOUT:?}"))
        .expect("running node");
    let _ = std::fs::remove_file(&descriptors);

    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("{stdout}");
    assert!(
        output.status.success(),
        "grpc_web.mjs failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    assert!(stdout.contains("grpc-web: all checks passed"), "grpc_web.mjs exited 0 without finishing:\n{stdout}");
    suite.stop().await;
}

/// One gRPC-Web request over HTTP/1.1 with curl; the response's header block and body.
async fn curl_http1(addr: std::net::SocketAddr, token: Option<&str>, message: &[u8]) -> (String, Vec<u8>) {
    // A gRPC-Web frame: flags 0 (a message), its length big-endian, the message.
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).expect("a small message").to_be_bytes());
    frame.extend_from_slice(message);
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("curl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).expect("a scratch directory");
    std::fs::write(scratch.join("request"), &frame).expect("writing the request");

    let mut curl = tokio::process::Command::new("curl");
    curl.args(["--http1.1", "--silent", "--show-error", "--max-time", "20", "--request", "POST"])
        .args(["--header", "content-type: application/grpc-web+proto", "--header", "x-grpc-web: 1"])
        .arg("--dump-header")
        .arg(scratch.join("headers"))
        .arg("--output")
        .arg(scratch.join("body"))
        .arg("--data-binary")
        .arg(format!("@{}", scratch.join("request").display()));
    if let Some(token) = token {
        curl.arg("--header").arg(format!("authorization: Bearer {token}"));
    }
    let output = curl
        .arg(format!("http://{addr}{RESOLVE_LOCATION}"))
        .kill_on_drop(true)
        .output()
        .await
        .expect("running curl (Debian/Ubuntu: apt-get install curl)");
    assert!(output.status.success(), "curl failed: {}", String::from_utf8_lossy(&output.stderr));
    let headers = std::fs::read_to_string(scratch.join("headers")).expect("the response headers");
    let body = std::fs::read(scratch.join("body")).expect("the response body");
    let _ = std::fs::remove_dir_all(&scratch);
    (headers, body)
}

/// The frames of a gRPC-Web response body: (flags, payload).
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let length = u32::from_be_bytes(body[1..5].try_into().expect("four bytes")) as usize;
        assert!(body.len() >= 5 + length, "a truncated frame in {body:?}");
        out.push((body[0], body[5..5 + length].to_vec()));
        body = &body[5 + length..];
    }
    assert!(body.is_empty(), "bytes after the last frame: {body:?}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unary_grpc_web_call_over_plain_http1_gets_its_answer_and_its_status_in_the_trailer_frame() {
    let suite = suite_for_browsers().await;
    let addr = suite.roster_service().addr();
    let request = roster::ResolveLocationRequest {
        location: Some(minhu_proto::common::v1::GeoPoint { latitude: 30.5335, longitude: 114.3358 }),
    }
    .encode_to_vec();

    let token = tokens::token(&tokens::street_dispatcher(STREET));
    let (headers, body) = curl_http1(addr, Some(&token), &request).await;
    assert!(headers.starts_with("HTTP/1.1 200"), "an HTTP/1.1 answer: {headers}");
    assert!(headers.to_ascii_lowercase().contains("content-type: application/grpc-web+proto"), "{headers}");
    let answered = frames(&body);
    assert_eq!(answered.len(), 2, "one message and the trailers: {answered:?}");
    assert_eq!(answered[0].0, 0, "the first frame is the message");
    let answer = roster::ResolveLocationResponse::decode(answered[0].1.as_slice()).expect("the response message");
    assert_eq!(answer.street_id, STREET);
    assert_eq!(answered[1].0, 0x80, "the last frame is the trailers");
    let trailers = String::from_utf8_lossy(&answered[1].1).to_ascii_lowercase();
    assert!(trailers.contains("grpc-status:0"), "OK in the trailer frame: {trailers}");

    // An error of a unary call is trailers-only: its status travels in the HTTP headers.
    let (headers, body) = curl_http1(addr, None, &request).await;
    assert!(headers.starts_with("HTTP/1.1 200"), "{headers}");
    let lower = headers.to_ascii_lowercase();
    assert!(lower.contains("grpc-status: 16"), "UNAUTHENTICATED without a token: {headers}");
    assert!(body.is_empty() || frames(&body).iter().all(|(flags, _)| *flags == 0x80), "no message: {body:?}");
    suite.stop().await;
}
