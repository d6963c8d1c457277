//! Authentication: a bearer JWT becomes a [`Principal`] (who, with which roles, for which
//! organisation), and the checks handlers make on it.
//!
//! Tokens are verified against configured keys only: HS256 shared secrets for development
//! and the demo, RSA/ECDSA/Ed25519 public keys (PEM) in production. The algorithm comes from
//! the key, never from the token, so `alg: none` and algorithm confusion are refused.

use std::{collections::HashSet, fmt, sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status, service::Interceptor};

use crate::error::ApiError;

/// The kind of organisation a caller acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// 区: the district platform.
    District,
    /// 街道: a street office.
    Street,
    /// 区直部门: a district department.
    Department,
    /// 纪检监察机关: discipline inspection.
    DisciplineInspection,
    /// 组织人事部门: organisation and personnel.
    OrganizationPersonnel,
    /// Another Minhu service calling on its own behalf.
    Service,
}

impl OrgKind {
    /// The snake_case name used in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::District => "district",
            Self::Street => "street",
            Self::Department => "department",
            Self::DisciplineInspection => "discipline_inspection",
            Self::OrganizationPersonnel => "organization_personnel",
            Self::Service => "service",
        }
    }
}

/// The organisation a caller acts for: its kind and its id (a street or department id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Organization {
    /// What kind of organisation.
    pub kind: OrgKind,
    /// Its id in the roster (`district` for the district itself).
    pub id: String,
}

impl Organization {
    /// Shorthand constructor.
    pub fn new(kind: OrgKind, id: impl Into<String>) -> Self {
        Self { kind, id: id.into() }
    }
}

impl fmt::Display for Organization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.id)
    }
}

/// What a caller may do. A token carries one or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 区平台管理员: administers the roster and the district's settings.
    DistrictAdmin,
    /// 区平台值班: reads everything, watches every street.
    DistrictOperator,
    /// 街道领导: leads a street; rates departments, refers non-performance.
    StreetLeader,
    /// 街道指挥调度中心/网格中心: takes appeals, calls departments, runs the case.
    StreetDispatcher,
    /// 网格员: a street's grid worker; reports appeals from the grid.
    GridWorker,
    /// 部门领导: a department's leadership; receives escalations.
    DepartmentLeader,
    /// 部门调度: signs calls and designates people for its department.
    DepartmentDispatcher,
    /// 一线人员: a field officer named on calls; checks in and reports.
    FieldOfficer,
    /// 纪检监察: receives referrals addressed to discipline inspection.
    DisciplineInspector,
    /// 组织人事: receives referrals and personnel matters.
    PersonnelOfficer,
    /// Service-to-service identity.
    Service,
}

/// The claims of a Minhu token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer; must equal the configured one.
    pub iss: String,
    /// Audience: `minhu` for people (every service accepts it), the called service's own
    /// (`minhu-roster`) for a service identity.
    pub aud: Audience,
    /// The person id in the roster, or the service name.
    pub sub: String,
    /// Display name, for the trail.
    #[serde(default)]
    pub name: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not valid before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Roles granted.
    pub roles: Vec<Role>,
    /// Organisation acted for.
    pub org: Organization,
}

/// A token's `aud`: one audience or several (RFC 7519 allows both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "minhu"`.
    One(String),
    /// `"aud": ["minhu-roster", "minhu-dispatch"]`.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is among them.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(a) => a == audience,
            Self::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

impl From<&str> for Audience {
    fn from(audience: &str) -> Self {
        Self::One(audience.to_owned())
    }
}

/// The audience of each Minhu service: what a service identity's token must name to call it.
pub const SERVICE_AUDIENCES: [&str; 5] =
    ["minhu-roster", "minhu-dispatch", "minhu-appraisal", "minhu-personnel", "minhu-consultation"];

/// The largest bearer token read; anything longer is refused before it is parsed.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The most clock skew a configuration may tolerate on `exp` and `nbf`.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);

/// An authenticated caller, as handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The person id in the roster (or a service name for [`OrgKind::Service`]).
    pub subject: String,
    /// Display name.
    pub name: String,
    /// Roles granted by the token.
    pub roles: HashSet<Role>,
    /// The organisation the caller acts for.
    pub organization: Organization,
    /// When the token it came from expires (`exp`, seconds since the epoch); `None` for
    /// principals built directly. Long-lived streams end there.
    pub expires_at: Option<i64>,
}

impl Principal {
    /// Builds a principal directly (service identities, tests of domain rules).
    pub fn new(subject: impl Into<String>, roles: impl IntoIterator<Item = Role>, organization: Organization) -> Self {
        let subject = subject.into();
        Self { name: subject.clone(), subject, roles: roles.into_iter().collect(), organization, expires_at: None }
    }

    /// The principal the auth interceptor attached to a request.
    pub fn of<T>(request: &Request<T>) -> Result<&Principal, ApiError> {
        request
            .extensions()
            .get::<Principal>()
            .ok_or_else(|| ApiError::Unauthenticated("no principal on the request".into()))
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the caller holds any of `roles`.
    pub fn has_any_role(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.roles.contains(r))
    }

    /// PERMISSION_DENIED unless the caller holds one of `roles`.
    pub fn require_any_role(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.has_any_role(roles) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "this action needs one of the roles {}",
                roles.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(", ")
            )))
        }
    }

    /// Whether the caller acts for the district platform.
    pub fn is_district(&self) -> bool {
        self.organization.kind == OrgKind::District
    }

    /// Whether the caller acts for the organisation `kind`/`id`.
    pub fn acts_for(&self, kind: OrgKind, id: &str) -> bool {
        self.organization.kind == kind && self.organization.id == id
    }

    /// PERMISSION_DENIED unless the caller acts for `kind`/`id` (or is the district, when
    /// `district_may` is true: the district reads everything).
    pub fn require_org(&self, kind: OrgKind, id: &str, district_may: bool) -> Result<(), ApiError> {
        if self.acts_for(kind, id) || (district_may && self.is_district()) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!("{} may not act for {}/{}", self.organization, kind.as_str(), id)))
        }
    }
}

/// A key that verifies tokens, with the key id (`kid`) tokens signed by it name.
#[derive(Clone, Debug)]
pub struct KeyEntry {
    /// The `kid` of tokens it verifies; `None` for a key configured without one (then
    /// tokens without a `kid` are tried against it).
    pub kid: Option<String>,
    /// The key.
    pub key: VerificationKey,
}

impl From<VerificationKey> for KeyEntry {
    fn from(key: VerificationKey) -> Self {
        Self { kid: None, key }
    }
}

/// A key that verifies tokens.
#[derive(Clone)]
pub enum VerificationKey {
    /// HMAC-SHA256 shared secret (development, demo, tests).
    Hs256(Vec<u8>),
    /// RSA public key in PEM, for RS256.
    Rs256Pem(String),
    /// ECDSA P-256 public key in PEM, for ES256.
    Es256Pem(String),
    /// Ed25519 public key in PEM, for EdDSA.
    EdDsaPem(String),
    /// One JWK (JSON) of a configured JWK Set; its `alg` says which algorithm.
    Jwk(String),
}

impl fmt::Debug for VerificationKey {
    // Secrets never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hs256(_) => "Hs256(<secret>)",
            Self::Rs256Pem(_) => "Rs256Pem(..)",
            Self::Es256Pem(_) => "Es256Pem(..)",
            Self::EdDsaPem(_) => "EdDsaPem(..)",
            Self::Jwk(_) => "Jwk(..)",
        })
    }
}

/// How tokens are verified.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// The audience of people's tokens (`minhu`), accepted by every service.
    pub audience: String,
    /// Accepted keys; several (each with its `kid`) allow overlapping rotation.
    pub keys: Vec<KeyEntry>,
    /// Clock skew tolerated on `exp` and `nbf`, at most [`MAX_LEEWAY`].
    pub leeway: Duration,
}

/// The issuer and audience of development tokens.
pub const DEV_ISSUER: &str = "minhu-dev";
/// The audience every Minhu service expects by default.
pub const DEFAULT_AUDIENCE: &str = "minhu";
/// The development signing secret: for the demo and tests only, never for a real district.
pub const DEV_SECRET: &[u8] = b"minhu-development-secret-do-not-use-in-production";

impl AuthConfig {
    /// Development settings: HS256 with [`DEV_SECRET`].
    pub fn dev() -> Self {
        Self {
            issuer: DEV_ISSUER.into(),
            audience: DEFAULT_AUDIENCE.into(),
            keys: vec![VerificationKey::Hs256(DEV_SECRET.to_vec()).into()],
            leeway: Duration::from_secs(30),
        }
    }
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid verification key: {0}")]
pub struct KeyError(#[from] jsonwebtoken::errors::Error);

/// Verifies bearer tokens and turns them into principals.
///
/// A person's token names the shared audience (`minhu`); a service identity's token must
/// name the audience of the service it calls ([`SERVICE_AUDIENCES`]), so a token one service
/// holds for the roster opens nothing else. A server built with [`Authenticator::new`]
/// accepts no service identities at all; [`Authenticator::for_service`] those addressed to it.
#[derive(Clone)]
pub struct Authenticator {
    keys: Arc<Vec<(Option<String>, DecodingKey, Validation)>>,
    service_audience: Option<&'static str>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("keys", &self.keys.len()).finish()
    }
}

impl Authenticator {
    /// Loads the keys of `config`, for a server that accepts people's tokens only.
    pub fn new(config: &AuthConfig) -> Result<Self, KeyError> {
        Self::build(config, None)
    }

    /// Loads the keys of `config`, for the service whose audience is `audience`
    /// (`minhu-roster`): it also accepts service identities addressed to it.
    pub fn for_service(config: &AuthConfig, audience: &'static str) -> Result<Self, KeyError> {
        Self::build(config, Some(audience))
    }

    fn build(config: &AuthConfig, service_audience: Option<&'static str>) -> Result<Self, KeyError> {
        let keys = config
            .keys
            .iter()
            .map(|KeyEntry { kid, key }| {
                let (decoding, algorithm) = match key {
                    VerificationKey::Hs256(secret) => (DecodingKey::from_secret(secret), Algorithm::HS256),
                    VerificationKey::Rs256Pem(pem) => (DecodingKey::from_rsa_pem(pem.as_bytes())?, Algorithm::RS256),
                    VerificationKey::Es256Pem(pem) => (DecodingKey::from_ec_pem(pem.as_bytes())?, Algorithm::ES256),
                    VerificationKey::EdDsaPem(pem) => (DecodingKey::from_ed_pem(pem.as_bytes())?, Algorithm::EdDSA),
                    VerificationKey::Jwk(json) => {
                        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(json).map_err(|e| {
                            jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::Json(e.into()))
                        })?;
                        // The algorithm comes from the key, never from a token.
                        let algorithm = jwk
                            .common
                            .key_algorithm
                            .ok_or(jsonwebtoken::errors::ErrorKind::MissingAlgorithm)
                            .map_err(jsonwebtoken::errors::Error::from)
                            .and_then(Algorithm::try_from)?;
                        (DecodingKey::from_jwk(&jwk)?, algorithm)
                    }
                };
                let mut validation = Validation::new(algorithm);
                validation.set_issuer(&[&config.issuer]);
                let audiences: Vec<&str> = std::iter::once(config.audience.as_str()).chain(service_audience).collect();
                validation.set_audience(&audiences);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.validate_nbf = true;
                validation.leeway = config.leeway.min(MAX_LEEWAY).as_secs();
                Ok((kid.clone(), decoding, validation))
            })
            .collect::<Result<Vec<_>, jsonwebtoken::errors::Error>>()?;
        Ok(Self { keys: Arc::new(keys), service_audience })
    }

    /// Verifies `token` and returns its principal, or UNAUTHENTICATED saying why.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::Unauthenticated(format!("token longer than {MAX_TOKEN_BYTES} bytes")));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| ApiError::Unauthenticated(format!("malformed token: {e}")))?;
        // A `kid` selects its key, and only that one: an unknown id is refused, not tried
        // against every key; a token without one is tried against the keys without one.
        let candidates: Vec<_> = self
            .keys
            .iter()
            .filter(|(kid, _, v)| kid.as_deref() == header.kid.as_deref() && v.algorithms.contains(&header.alg))
            .collect();
        if candidates.is_empty() && header.kid.is_some() && !self.keys.iter().any(|(kid, ..)| *kid == header.kid) {
            return Err(ApiError::Unauthenticated("token signed with an unknown key id".into()));
        }
        let mut last_error = None;
        for (_, key, validation) in candidates {
            match jsonwebtoken::decode::<Claims>(token, key, validation) {
                Ok(data) => {
                    let claims = data.claims;
                    if claims.roles.contains(&Role::Service) {
                        match self.service_audience {
                            Some(own) if claims.aud.contains(own) => {}
                            Some(own) => {
                                return Err(ApiError::Unauthenticated(format!(
                                    "a service identity's token must be issued for this service (aud `{own}`)"
                                )));
                            }
                            None => {
                                return Err(ApiError::Unauthenticated(
                                    "this service accepts no service identities".into(),
                                ));
                            }
                        }
                    }
                    return Ok(Principal {
                        subject: claims.sub,
                        name: claims.name,
                        roles: claims.roles.into_iter().collect(),
                        organization: claims.org,
                        expires_at: Some(claims.exp),
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(ApiError::Unauthenticated(match last_error {
            Some(e) => format!("token rejected: {e}"),
            None => format!("token algorithm {:?} is not accepted", header.alg),
        }))
    }

    /// Reads `authorization: Bearer …` from request metadata and verifies it.
    pub fn authenticate(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Principal, ApiError> {
        let value = metadata
            .get("authorization")
            .ok_or_else(|| ApiError::Unauthenticated("missing `authorization: Bearer <token>` metadata".into()))?;
        let value =
            value.to_str().map_err(|_| ApiError::Unauthenticated("authorization metadata is not ASCII".into()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::Unauthenticated("authorization metadata is not a bearer token".into()))?;
        self.verify(token.trim())
    }
}

/// The server-side interceptor: every call must carry a valid token; the principal is put
/// in the request's extensions for [`Principal::of`].
impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let principal = self.authenticate(request.metadata())?;
        // On the request's span (minhu_telemetry::server_span declares these): who called,
        // for which organisation. The token's claims only, never the request's content.
        let span = tracing::Span::current();
        span.record("enduser.id", principal.subject.as_str());
        span.record("minhu.org.kind", principal.organization.kind.as_str());
        span.record("minhu.org.id", principal.organization.id.as_str());
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// Signs tokens: development tokens for the demo, tests and `minhuctl`, and service
/// identities between services.
#[derive(Clone)]
pub struct TokenIssuer {
    issuer: String,
    audience: String,
    key: EncodingKey,
    algorithm: Algorithm,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer that signs with an HS256 secret.
    pub fn hs256(issuer: impl Into<String>, audience: impl Into<String>, secret: &[u8]) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            key: EncodingKey::from_secret(secret),
            algorithm: Algorithm::HS256,
        }
    }

    /// The development issuer matching [`AuthConfig::dev`].
    pub fn dev() -> Self {
        Self::hs256(DEV_ISSUER, DEFAULT_AUDIENCE, DEV_SECRET)
    }

    /// Claims for `principal` valid for `ttl` from now, for the issuer's audience.
    pub fn claims(&self, principal: &Principal, ttl: Duration) -> Claims {
        self.claims_for(principal, Audience::One(self.audience.clone()), ttl)
    }

    /// Claims for `principal` addressed to `audience`, valid for `ttl` from now.
    pub fn claims_for(&self, principal: &Principal, audience: Audience, ttl: Duration) -> Claims {
        let now = chrono::Utc::now().timestamp();
        let mut roles: Vec<Role> = principal.roles.iter().copied().collect();
        roles.sort_by_key(|r| format!("{r:?}"));
        Claims {
            iss: self.issuer.clone(),
            aud: audience,
            sub: principal.subject.clone(),
            name: principal.name.clone(),
            exp: now + ttl.as_secs() as i64,
            iat: now,
            nbf: None,
            roles,
            org: principal.organization.clone(),
        }
    }

    /// Signs arbitrary claims (tests use this for expired or foreign tokens).
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.key)
            .expect("signing claims with a loaded key cannot fail")
    }

    /// A token for `principal`, valid for `ttl`.
    pub fn issue(&self, principal: &Principal, ttl: Duration) -> String {
        self.sign(&self.claims(principal, ttl))
    }

    /// A token for `principal` addressed to the service whose audience is `audience`.
    pub fn issue_for(&self, principal: &Principal, audience: &str, ttl: Duration) -> String {
        self.sign(&self.claims_for(principal, Audience::One(audience.to_owned()), ttl))
    }
}

/// A client interceptor that adds a bearer token and the caller's trace context.
#[derive(Clone)]
pub struct BearerToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<token>)")
    }
}

impl BearerToken {
    /// Wraps a signed token. A token that cannot travel as metadata (not visible ASCII) is
    /// sent empty, so the server answers UNAUTHENTICATED instead of this process panicking.
    pub fn new(token: &str) -> Self {
        let value = format!("Bearer {}", token.trim());
        Self(value.parse().unwrap_or_else(|_| tonic::metadata::MetadataValue::from_static("Bearer")))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        minhu_telemetry::inject_context(request.metadata_mut());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn street_dispatcher() -> Principal {
        Principal::new("p-1", [Role::StreetDispatcher], Organization::new(OrgKind::Street, "zhongnanlu"))
    }

    #[test]
    fn a_dev_token_round_trips_to_the_same_principal() {
        let auth = Authenticator::new(&AuthConfig::dev()).unwrap();
        let token = TokenIssuer::dev().issue(&street_dispatcher(), Duration::from_secs(60));
        let verified = auth.verify(&token).unwrap();
        assert!(verified.expires_at.is_some_and(|exp| exp > chrono::Utc::now().timestamp()));
        assert_eq!(Principal { expires_at: None, ..verified }, street_dispatcher());
    }

    #[test]
    fn acting_for_another_street_is_permission_denied() {
        let p = street_dispatcher();
        assert!(p.require_org(OrgKind::Street, "zhongnanlu", false).is_ok());
        let err = p.require_org(OrgKind::Street, "shuiguohu", true).unwrap_err();
        assert!(matches!(err, ApiError::PermissionDenied(_)));
    }

    #[test]
    fn the_district_may_read_what_a_street_owns_when_allowed() {
        let district =
            Principal::new("p-2", [Role::DistrictOperator], Organization::new(OrgKind::District, "district"));
        assert!(district.require_org(OrgKind::Street, "zhongnanlu", true).is_ok());
        assert!(district.require_org(OrgKind::Street, "zhongnanlu", false).is_err());
    }
}

/// How one service proves who it is to another: a development token signed per call
/// (`MINHU_AUTH_DEV=true`) or a configured token. `Debug` never shows the token.
#[derive(Clone)]
pub struct ServiceIdentity {
    name: &'static str,
    token: Option<crate::config::Secret<String>>,
}

impl fmt::Debug for ServiceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credential = if self.token.is_some() { "Token(<secret>)" } else { "Dev" };
        write!(f, "ServiceIdentity({}, {credential})", self.name)
    }
}

impl ServiceIdentity {
    /// Service `name` (`minhu-dispatch`) with development tokens.
    pub fn dev(name: &'static str) -> Self {
        Self { name, token: None }
    }

    /// Service `name` with a pre-issued token; surrounding whitespace (a trailing newline
    /// from a mounted secret file) is not part of it.
    pub fn with_token(name: &'static str, token: impl Into<String>) -> Self {
        Self { name, token: Some(crate::config::Secret::new(token.into().trim().to_owned())) }
    }

    /// The principal the service acts as.
    pub fn principal(&self) -> Principal {
        Principal::new(self.name, [Role::Service], Organization::new(OrgKind::Service, self.name))
    }

    /// The bearer token for the next call to the service whose audience is `audience`
    /// (a configured token was issued for that service already).
    pub fn token_for(&self, audience: &str) -> String {
        match &self.token {
            None => TokenIssuer::dev().issue_for(&self.principal(), audience, Duration::from_secs(300)),
            Some(token) => token.expose().clone(),
        }
    }

    /// A client interceptor presenting this identity to `audience` (and the caller's trace
    /// context).
    pub fn bearer_for(&self, audience: &str) -> BearerToken {
        BearerToken::new(&self.token_for(audience))
    }
}
