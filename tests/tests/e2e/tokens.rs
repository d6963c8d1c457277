//! Token attacks on every service the suite serves: each forged, stale, misdirected or
//! malformed token is UNAUTHENTICATED before any handler runs; the genuine ones pass.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use minhu_grpc::{
    TokenIssuer,
    auth::{Audience, DEV_ISSUER},
};
use minhu_testkit::tokens;
use prost_reflect::{DescriptorPool, DynamicMessage};
use tonic::{Code, codegen::http::uri::PathAndQuery, transport::Channel};

use minhu_e2e::Suite;

/// The code a unary call to the service's first unary method answers with `authorization`.
async fn code_with(channel: Channel, path: &PathAndQuery, input: &DynamicMessage, authorization: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the channel is ready");
    let mut request = tonic::Request::new(input.clone());
    if let Some(value) = authorization {
        match value.parse() {
            Ok(value) => {
                request.metadata_mut().insert("authorization", value);
            }
            Err(_) => panic!("test token is not metadata: {value:.40}"),
        }
    }
    let codec = tonic_prost::ProstCodec::<DynamicMessage, ()>::default();
    match grpc.unary(request, path.clone(), codec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A token with this header and these claims, signed with the development key.
fn signed_with_header(header: &jsonwebtoken::Header, claims: &minhu_grpc::Claims) -> String {
    jsonwebtoken::encode(header, claims, &jsonwebtoken::EncodingKey::from_secret(minhu_grpc::auth::DEV_SECRET)).unwrap()
}

#[tokio::test]
async fn forged_stale_misdirected_and_malformed_tokens_open_no_service() {
    let suite = Suite::start().await;
    let pool = DescriptorPool::decode(minhu_proto::FILE_DESCRIPTOR_SET).unwrap();
    let issuer = TokenIssuer::dev();
    let admin = tokens::district_admin();
    let valid = issuer.claims(&admin, Duration::from_secs(600));
    let now = chrono::Utc::now().timestamp();

    let expired = minhu_grpc::Claims { exp: now - 3_600, iat: now - 7_200, ..valid.clone() };
    let not_yet = minhu_grpc::Claims { nbf: Some(now + 3_600), ..valid.clone() };
    let wrong_issuer = minhu_grpc::Claims { iss: "someone-else".into(), ..valid.clone() };
    let wrong_audience = minhu_grpc::Claims { aud: Audience::One("another-system".into()), ..valid.clone() };
    let forged = TokenIssuer::hs256(DEV_ISSUER, "minhu", b"not-the-development-secret-at-all-0123456789").sign(&valid);
    let unsigned = {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&valid).unwrap());
        format!("{header}.{payload}.")
    };
    let rs256_header = signed_with_header(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &valid).replacen(
        &URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#),
        &URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256"}"#),
        1,
    );
    let unknown_kid = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("rotated-away".into());
        signed_with_header(&header, &valid)
    };
    let oversized = {
        let mut claims = valid.clone();
        claims.name = "x".repeat(10 * 1024);
        issuer.sign(&claims)
    };

    let attacks: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("not a bearer token", Some(format!("Basic {}", URL_SAFE_NO_PAD.encode("admin:admin")))),
        ("garbage", Some(bearer("not.a.jwt"))),
        ("expired", Some(bearer(&issuer.sign(&expired)))),
        ("not yet valid", Some(bearer(&issuer.sign(&not_yet)))),
        ("bad signature", Some(bearer(&forged))),
        ("alg none", Some(bearer(&unsigned))),
        ("HS256 signature under an RS256 header", Some(bearer(&rs256_header))),
        ("wrong issuer", Some(bearer(&issuer.sign(&wrong_issuer)))),
        ("wrong audience", Some(bearer(&issuer.sign(&wrong_audience)))),
        ("unknown kid", Some(bearer(&unknown_kid))),
        ("oversized", Some(bearer(&oversized))),
    ];

    let mut wrong = Vec::new();
    for (service_name, channel) in suite.services() {
        let service = pool.get_service_by_name(service_name).expect("a served service is in the contracts");
        let method =
            service.methods().find(|m| !m.is_client_streaming() && !m.is_server_streaming()).expect("a unary method");
        let path: PathAndQuery = format!("/{service_name}/{}", method.name()).parse().unwrap();
        let input = DynamicMessage::new(method.input());
        for (attack, authorization) in &attacks {
            let code = code_with(channel.clone(), &path, &input, authorization.as_deref()).await;
            if code != Code::Unauthenticated {
                wrong.push(format!("{service_name}: {attack}: {code:?}"));
            }
        }
        // A service identity's token opens only the service it was issued for.
        let own = service_name.split('.').nth(1).map(|s| format!("minhu-{s}")).unwrap();
        for other in minhu_grpc::auth::SERVICE_AUDIENCES.iter().filter(|a| **a != own) {
            let token = tokens::service_token_for("minhu-somebody", other);
            let code = code_with(channel.clone(), &path, &input, Some(&bearer(&token))).await;
            if code != Code::Unauthenticated {
                wrong.push(format!("{service_name}: a service token for {other}: {code:?}"));
            }
        }
        let for_it = tokens::service_token_for("minhu-somebody", &own);
        let code = code_with(channel.clone(), &path, &input, Some(&bearer(&for_it))).await;
        assert_ne!(code, Code::Unauthenticated, "{service_name}: a service token issued for it is refused");
        let person = code_with(channel.clone(), &path, &input, Some(&bearer(&issuer.sign(&valid)))).await;
        assert_ne!(person, Code::Unauthenticated, "{service_name}: the district admin's genuine token is refused");
    }
    assert!(wrong.is_empty(), "accepted or wrongly refused:\n{}", wrong.join("\n"));
    suite.stop().await;
}
