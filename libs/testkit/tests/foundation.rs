//! The shared libraries, proven through the echo service on a real server, a real Postgres
//! and a real Redis.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use minhu_grpc::{AuthConfig, Claims, ServerConfig, TokenIssuer, auth::BearerToken};
use minhu_testkit::{
    TestDatabase, TestRedis, TestServer,
    echo::{
        self,
        pb::{CreateNoteRequest, EchoRequest, ListNotesRequest, Note, echo_service_client::EchoServiceClient},
    },
    tokens,
};
use tonic::{Code, codegen::InterceptedService, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_types::StatusExt as _;

type Client = EchoServiceClient<InterceptedService<Channel, BearerToken>>;

struct App {
    db: TestDatabase,
    server: TestServer,
    channel: Channel,
}

impl App {
    async fn spawn() -> Self {
        Self::spawn_with(ServerConfig { max_message_bytes: 64 * 1024, ..ServerConfig::default() }).await
    }

    async fn spawn_with(config: ServerConfig) -> Self {
        let db = TestDatabase::create("echo").await;
        let server = echo::build(&db.config(), &AuthConfig::dev(), config).await.expect("building the echo service");
        let server = TestServer::start(server).await;
        let channel = server.channel().await;
        Self { db, server, channel }
    }

    fn client_with_token(&self, token: &str) -> Client {
        EchoServiceClient::with_interceptor(self.channel.clone(), BearerToken::new(token))
    }

    fn client_as(&self, principal: &minhu_grpc::Principal) -> Client {
        self.client_with_token(&tokens::token(principal))
    }

    fn echo_for(street: &str) -> EchoRequest {
        EchoRequest { street_id: street.into(), message: " 泵房 ".into(), ..Default::default() }
    }

    async fn echo_code(&self, token: &str) -> Code {
        match self.client_with_token(token).echo(Self::echo_for("zhongnanlu")).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    }
}

fn claims_for_street_dispatcher() -> Claims {
    TokenIssuer::dev().claims(&tokens::street_dispatcher("zhongnanlu"), Duration::from_secs(600))
}

#[tokio::test]
async fn health_reports_the_service_as_serving() {
    let app = App::spawn().await;
    let mut health = HealthClient::new(app.channel.clone());
    for service in ["", "minhu.testkit.v1.EchoService"] {
        let reply = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving, "service `{service}`");
    }
    let unknown = health.check(HealthCheckRequest { service: "nope.v1.Nope".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_the_service_without_a_token() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let app = App::spawn().await;
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let reply = replies.message().await.unwrap().expect("one reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("expected a service list, got {reply:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"minhu.testkit.v1.EchoService"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
}

#[tokio::test]
async fn a_call_without_a_token_is_unauthenticated() {
    let app = App::spawn().await;
    let mut client = EchoServiceClient::new(app.channel.clone());
    let status = client.echo(App::echo_for("zhongnanlu")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("authorization"), "{}", status.message());
}

#[tokio::test]
async fn expired_forged_unsigned_and_foreign_tokens_are_unauthenticated() {
    let app = App::spawn().await;

    let mut expired = claims_for_street_dispatcher();
    expired.exp = chrono::Utc::now().timestamp() - 3600;
    assert_eq!(app.echo_code(&TokenIssuer::dev().sign(&expired)).await, Code::Unauthenticated, "expired");

    let forged =
        TokenIssuer::hs256("minhu-dev", "minhu", b"somebody-elses-secret").sign(&claims_for_street_dispatcher());
    assert_eq!(app.echo_code(&forged).await, Code::Unauthenticated, "bad signature");

    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_for_street_dispatcher()).unwrap());
    assert_eq!(app.echo_code(&format!("{header}.{payload}.")).await, Code::Unauthenticated, "alg none");

    let mut wrong_issuer = claims_for_street_dispatcher();
    wrong_issuer.iss = "someone-else".into();
    assert_eq!(app.echo_code(&TokenIssuer::dev().sign(&wrong_issuer)).await, Code::Unauthenticated, "issuer");

    let mut wrong_audience = claims_for_street_dispatcher();
    wrong_audience.aud = "another-system".into();
    assert_eq!(app.echo_code(&TokenIssuer::dev().sign(&wrong_audience)).await, Code::Unauthenticated, "audience");

    assert_eq!(app.echo_code("not-a-jwt").await, Code::Unauthenticated, "garbage");
    assert_eq!(app.echo_code(&TokenIssuer::dev().sign(&claims_for_street_dispatcher())).await, Code::Ok, "valid");
}

#[tokio::test]
async fn another_organisation_or_role_is_permission_denied() {
    let app = App::spawn().await;
    let reply =
        app.client_as(&tokens::street_dispatcher("zhongnanlu")).echo(App::echo_for("zhongnanlu")).await.unwrap();
    assert_eq!(reply.get_ref().message, "泵房");
    assert_eq!(reply.get_ref().caller, "zhongnanlu-dispatcher");

    let other_street = app.client_as(&tokens::street_dispatcher("shuiguohu")).echo(App::echo_for("zhongnanlu")).await;
    assert_eq!(other_street.unwrap_err().code(), Code::PermissionDenied);

    let department = app.client_as(&tokens::department_dispatcher("housing")).echo(App::echo_for("zhongnanlu")).await;
    assert_eq!(department.unwrap_err().code(), Code::PermissionDenied);

    let district = app.client_as(&tokens::district_operator()).echo(App::echo_for("zhongnanlu")).await;
    assert!(district.is_ok(), "the district reads every street");
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_resource_exhausted() {
    let app = App::spawn().await;
    let mut client = app.client_as(&tokens::street_dispatcher("zhongnanlu"));
    let mut big = App::echo_for("zhongnanlu");
    big.padding = vec![7; 100 * 1024];
    let status = client.echo(big).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // The connection and the service are fine afterwards.
    let mut small = App::echo_for("zhongnanlu");
    small.padding = vec![7; 32 * 1024];
    assert!(client.echo(small).await.is_ok());
}

#[tokio::test]
async fn bad_input_carries_field_violations_a_client_can_read() {
    let app = App::spawn().await;
    let request = EchoRequest { street_id: String::new(), message: "长".repeat(201), ..Default::default() };
    let status = app.client_as(&tokens::district_operator()).echo(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad_request = status.get_details_bad_request().expect("BadRequest details");
    let fields: Vec<_> = bad_request.field_violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["street_id", "message"]);
    assert!(bad_request.field_violations[1].description.contains("200"));
}

#[tokio::test]
async fn migrations_run_once_against_a_real_postgres() {
    let app = App::spawn().await;
    let pool = app.db.pool().await;
    let versions: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(&pool).await.unwrap();
    assert_eq!(versions, [(1,), (20261127000000,)]);
    // A second start (a restart, another replica) finds everything applied.
    minhu_store::connect_and_migrate(&app.db.config(), &[&echo::MIGRATOR]).await.unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM _sqlx_migrations").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 2);
}

#[tokio::test]
async fn a_retried_request_id_returns_the_first_result_and_writes_once() {
    let app = App::spawn().await;
    let mut client = app.client_as(&tokens::street_dispatcher("zhongnanlu"));
    let request = CreateNoteRequest { request_id: "7d1c6a1e-0001".into(), text: "泵房被占用".into() };
    let first = client.create_note(request.clone()).await.unwrap().into_inner();
    let retry = client.create_note(request.clone()).await.unwrap().into_inner();
    assert_eq!(first, retry);

    // Concurrent retries, as after a timeout on a flaky network.
    let retries = (0..8).map(|_| {
        let mut client = client.clone();
        let request = request.clone();
        tokio::spawn(async move { client.create_note(request).await.map(|r| r.into_inner()) })
    });
    for retry in retries {
        assert_eq!(retry.await.unwrap().unwrap(), first);
    }
    let pool = app.db.pool().await;
    let (notes,): (i64,) = sqlx::query_as("SELECT count(*) FROM notes").fetch_one(&pool).await.unwrap();
    assert_eq!(notes, 1);

    let reused = CreateNoteRequest { request_id: request.request_id.clone(), text: "something else".into() };
    let status = client.create_note(reused).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "request_id");

    // Keys are per caller: another caller's same id is another request — it neither sees the
    // first caller's result nor is refused for an id it cannot know was taken.
    let mut other = app.client_as(&tokens::street_dispatcher("shuiguohu"));
    let theirs = other.create_note(request.clone()).await.unwrap().into_inner();
    assert_ne!(theirs.id, first.id);
    assert_ne!(theirs.author, first.author);
    assert_eq!(other.create_note(request).await.unwrap().into_inner(), theirs, "their retry gets their first result");
    let (notes,): (i64,) = sqlx::query_as("SELECT count(*) FROM notes").fetch_one(&pool).await.unwrap();
    assert_eq!(notes, 2);
}

#[tokio::test]
async fn pages_cover_every_item_once_and_tokens_are_bound_to_their_query() {
    let app = App::spawn().await;
    let mut client = app.client_as(&tokens::street_dispatcher("zhongnanlu"));
    for i in 0..25 {
        let note = CreateNoteRequest { request_id: String::new(), text: format!("note {i}") };
        client.create_note(note).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_notes(ListNotesRequest { page_size: 10, page_token: token.clone(), author: String::new() })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(page.notes.iter().map(|n| n.text.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..25).map(|i| format!("note {i}")).collect::<Vec<_>>());

    let first = client.list_notes(ListNotesRequest { page_size: 10, ..Default::default() }).await.unwrap().into_inner();
    let mismatched = ListNotesRequest { page_size: 10, page_token: first.next_page_token, author: "someone".into() };
    let status = client.list_notes(mismatched).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let negative = client.list_notes(ListNotesRequest { page_size: -1, ..Default::default() }).await.unwrap_err();
    assert_eq!(negative.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn shutdown_stops_serving_and_drains() {
    let app = App::spawn().await;
    let mut client = app.client_as(&tokens::street_dispatcher("zhongnanlu"));
    assert!(client.echo(App::echo_for("zhongnanlu")).await.is_ok());
    let addr = app.server.addr();
    tokio::time::timeout(Duration::from_secs(15), app.server.stop()).await.expect("drained in time").unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the port is closed after shutdown");
}

#[tokio::test]
async fn redis_is_reachable_and_test_keys_are_namespaced() {
    use redis::AsyncCommands as _;
    let redis = TestRedis::create().await;
    let mut conn = redis.connection().await;
    let key = format!("{}deadline", redis.prefix());
    let _: () = conn.zadd(&key, "call-1", 1_700_000_000).await.unwrap();
    let due: Vec<String> = conn.zrangebyscore(&key, 0, 1_800_000_000).await.unwrap();
    assert_eq!(due, ["call-1"]);
}

#[tokio::test]
async fn a_call_over_the_request_timeout_is_deadline_exceeded_unless_long_running() {
    let db = TestDatabase::create("echo").await;
    let config = ServerConfig { request_timeout: Duration::from_millis(50), ..ServerConfig::default() };
    let slow = EchoRequest { street_id: "zhongnanlu".into(), message: "慢".into(), padding: vec![], delay_ms: 500 };
    let caller = tokens::bearer(&tokens::street_dispatcher("zhongnanlu"));

    let strict = TestServer::start(echo::build(&db.config(), &AuthConfig::dev(), config.clone()).await.unwrap()).await;
    let mut client = EchoServiceClient::with_interceptor(strict.channel().await, caller.clone());
    let status = client.echo(slow.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    let lenient = echo::build(&db.config(), &AuthConfig::dev(), config)
        .await
        .unwrap()
        .long_running("/minhu.testkit.v1.EchoService/Echo");
    let lenient = TestServer::start(lenient).await;
    let mut client = EchoServiceClient::with_interceptor(lenient.channel().await, caller);
    assert!(client.echo(slow.clone()).await.is_ok(), "long-running methods are exempt");

    // The caller's own deadline still binds a long-running method (tonic answers CANCELLED).
    let mut request = tonic::Request::new(slow);
    request.set_timeout(Duration::from_millis(50));
    assert_eq!(client.echo(request).await.unwrap_err().code(), Code::Cancelled);
}

/// A CA, and a certificate signed by it for `name` (and 127.0.0.1), PEM.
struct Pki {
    ca_pem: Vec<u8>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "Minhu test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        Self { ca_pem: ca.pem().into_bytes(), issuer: rcgen::Issuer::new(params, key) }
    }

    fn issue(&self, name: &str) -> minhu_grpc::tls::KeyPair {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        minhu_grpc::tls::KeyPair {
            cert_pem: cert.pem().into_bytes(),
            key_pem: minhu_grpc::Secret::new(key.serialize_pem().into_bytes()),
        }
    }
}

async fn echo_over(endpoint: tonic::transport::Endpoint) -> Result<(), String> {
    let channel = endpoint.connect().await.map_err(|e| format!("connect: {e:?}"))?;
    let mut client =
        EchoServiceClient::with_interceptor(channel, tokens::bearer(&tokens::street_dispatcher("zhongnanlu")));
    client.echo(App::echo_for("zhongnanlu")).await.map(|_| ()).map_err(|s| format!("{s:?}"))
}

#[tokio::test]
async fn with_a_certificate_configured_the_server_speaks_only_tls_and_with_a_client_ca_only_to_known_services() {
    let pki = Pki::new();
    let server_tls = minhu_grpc::tls::ServerTls { identity: pki.issue("localhost"), client_ca_pem: None };
    let db = TestDatabase::create("echo").await;
    let config = ServerConfig { tls: Some(server_tls.clone()), ..ServerConfig::default() };
    let server = TestServer::start(echo::build(&db.config(), &AuthConfig::dev(), config).await.unwrap()).await;
    let https = format!("https://localhost:{}", server.addr().port());
    let trusting = minhu_grpc::tls::ClientTls { ca_pem: Some(pki.ca_pem.clone()), identity: None };
    // The listener may still be starting: a trusting client retries until it answers.
    let mut answered = Err(String::new());
    for _ in 0..50 {
        answered = echo_over(trusting.endpoint(&https).unwrap()).await;
        if answered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    answered.expect("a client trusting the CA is served over TLS");

    let plaintext =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", server.addr().port())).unwrap();
    assert!(echo_over(plaintext).await.is_err(), "plaintext reaches a TLS server");
    let stranger = Pki::new();
    let distrusting = minhu_grpc::tls::ClientTls { ca_pem: Some(stranger.ca_pem.clone()), identity: None };
    assert!(
        echo_over(distrusting.endpoint(&https).unwrap()).await.is_err(),
        "a certificate from another CA is trusted"
    );
    assert!(
        minhu_grpc::tls::ClientTls::default().endpoint(&https).is_err(),
        "an https URL without a CA must not be accepted as trusting nobody"
    );
    server.stop().await.unwrap();

    // Mutual TLS: the service's certificate is its identity on the wire.
    let mutual = minhu_grpc::tls::ServerTls { client_ca_pem: Some(pki.ca_pem.clone()), ..server_tls };
    let config = ServerConfig { tls: Some(mutual), ..ServerConfig::default() };
    let server = TestServer::start(echo::build(&db.config(), &AuthConfig::dev(), config).await.unwrap()).await;
    let https = format!("https://localhost:{}", server.addr().port());
    let dispatch =
        minhu_grpc::tls::ClientTls { ca_pem: Some(pki.ca_pem.clone()), identity: Some(pki.issue("minhu-dispatch")) };
    let mut answered = Err(String::new());
    for _ in 0..50 {
        answered = echo_over(dispatch.endpoint(&https).unwrap()).await;
        if answered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    answered.expect("a client with a certificate from the CA is served");
    assert!(echo_over(trusting.endpoint(&https).unwrap()).await.is_err(), "a client without a certificate is served");
    let impostor = minhu_grpc::tls::ClientTls {
        ca_pem: Some(pki.ca_pem.clone()),
        identity: Some(stranger.issue("minhu-dispatch")),
    };
    assert!(echo_over(impostor.endpoint(&https).unwrap()).await.is_err(), "a certificate from another CA is accepted");
    server.stop().await.unwrap();
}

/// A toy seal for the test: any bytes not readable as the plain ones.
#[derive(Debug)]
struct Reversed;

impl minhu_store::Seal for Reversed {
    fn seal(&self, context: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut sealed = context.to_vec();
        sealed.extend(plain.iter().rev().map(|b| b ^ 0x5a));
        sealed
    }

    fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let body = sealed.strip_prefix(context)?;
        Some(body.iter().rev().map(|b| b ^ 0x5a).collect())
    }
}

#[tokio::test]
async fn sealed_first_results_are_unreadable_at_rest_and_replay_as_they_were() {
    let app = App::spawn().await;
    let pool = app.db.pool().await;
    let note = Note { id: 7, text: "诉求人 13800001234".into(), author: "p-1".into() };
    let key = || {
        minhu_store::Idempotency::new("minhu.test/Sealed", "r-1", minhu_store::Fingerprint::of("p-1", &note))
            .sealed(std::sync::Arc::new(Reversed))
    };
    let stored = note.clone();
    let first: Note =
        minhu_store::write(&pool, &key(), async { Ok::<_, minhu_store::StoreError>(()) }, move |_, ()| {
            Box::pin(async move { Ok(stored) })
        })
        .await
        .unwrap();
    let (raw,): (Vec<u8>,) = sqlx::query_as("SELECT response FROM minhu_idempotency_records WHERE request_id = 'r-1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("13800001234"), "the phone number is readable at rest");
    let replayed: Option<Note> = key().replay(&pool).await.unwrap();
    assert_eq!(replayed, Some(first));
}

#[tokio::test]
async fn first_results_past_their_retention_are_purged_while_the_server_runs() {
    let db = TestDatabase::create("echo").await;
    let pool = db.pool().await;
    let server = echo::build(&db.config(), &AuthConfig::dev(), ServerConfig::default()).await.unwrap();
    for (id, hours) in [("old", 72.0_f64), ("recent", 1.0)] {
        sqlx::query(
            "INSERT INTO minhu_idempotency_records (scope, request_id, fingerprint, response, created_at) \
             VALUES ('s', $1, '\\x00', '\\x00', now() - make_interval(hours => $2::float8::int))",
        )
        .bind(id)
        .bind(hours)
        .execute(&pool)
        .await
        .unwrap();
    }
    let server = TestServer::start(server.retain_idempotency(pool.clone(), Duration::from_secs(48 * 3600))).await;
    let mut left: Vec<String> = Vec::new();
    for _ in 0..100 {
        left = sqlx::query_scalar("SELECT request_id FROM minhu_idempotency_records ORDER BY request_id")
            .fetch_all(&pool)
            .await
            .unwrap();
        if left == ["recent"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, ["recent"]);
    server.stop().await.unwrap();
}
