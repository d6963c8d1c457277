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
    /// Audience; must equal the configured one.
    pub aud: String,
    /// The person id in the roster, or the service name.
    pub sub: String,
    /// Display name, for the trail.
    #[serde(default)]
    pub name: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Roles granted.
    pub roles: Vec<Role>,
    /// Organisation acted for.
    pub org: Organization,
}

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
}

impl Principal {
    /// Builds a principal directly (service identities, tests of domain rules).
    pub fn new(subject: impl Into<String>, roles: impl IntoIterator<Item = Role>, organization: Organization) -> Self {
        let subject = subject.into();
        Self { name: subject.clone(), subject, roles: roles.into_iter().collect(), organization }
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
}

impl fmt::Debug for VerificationKey {
    // Secrets never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hs256(_) => "Hs256(<secret>)",
            Self::Rs256Pem(_) => "Rs256Pem(..)",
            Self::Es256Pem(_) => "Es256Pem(..)",
            Self::EdDsaPem(_) => "EdDsaPem(..)",
        })
    }
}

/// How tokens are verified.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Accepted keys; several allow rotation.
    pub keys: Vec<VerificationKey>,
    /// Clock skew tolerated on `exp`.
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
            keys: vec![VerificationKey::Hs256(DEV_SECRET.to_vec())],
            leeway: Duration::from_secs(30),
        }
    }
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid verification key: {0}")]
pub struct KeyError(#[from] jsonwebtoken::errors::Error);

/// Verifies bearer tokens and turns them into principals.
#[derive(Clone)]
pub struct Authenticator {
    keys: Arc<Vec<(DecodingKey, Validation)>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("keys", &self.keys.len()).finish()
    }
}

impl Authenticator {
    /// Loads the keys of `config`.
    pub fn new(config: &AuthConfig) -> Result<Self, KeyError> {
        let keys = config
            .keys
            .iter()
            .map(|key| {
                let (decoding, algorithm) = match key {
                    VerificationKey::Hs256(secret) => (DecodingKey::from_secret(secret), Algorithm::HS256),
                    VerificationKey::Rs256Pem(pem) => (DecodingKey::from_rsa_pem(pem.as_bytes())?, Algorithm::RS256),
                    VerificationKey::Es256Pem(pem) => (DecodingKey::from_ec_pem(pem.as_bytes())?, Algorithm::ES256),
                    VerificationKey::EdDsaPem(pem) => (DecodingKey::from_ed_pem(pem.as_bytes())?, Algorithm::EdDSA),
                };
                let mut validation = Validation::new(algorithm);
                validation.set_issuer(&[&config.issuer]);
                validation.set_audience(&[&config.audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.leeway = config.leeway.as_secs();
                Ok((decoding, validation))
            })
            .collect::<Result<Vec<_>, jsonwebtoken::errors::Error>>()?;
        Ok(Self { keys: Arc::new(keys) })
    }

    /// Verifies `token` and returns its principal, or UNAUTHENTICATED saying why.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| ApiError::Unauthenticated(format!("malformed token: {e}")))?;
        let mut last_error = None;
        for (key, validation) in self.keys.iter().filter(|(_, v)| v.algorithms.contains(&header.alg)) {
            match jsonwebtoken::decode::<Claims>(token, key, validation) {
                Ok(data) => {
                    let claims = data.claims;
                    return Ok(Principal {
                        subject: claims.sub,
                        name: claims.name,
                        roles: claims.roles.into_iter().collect(),
                        organization: claims.org,
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
        tracing::Span::current().record("enduser.id", principal.subject.as_str());
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

    /// Claims for `principal` valid for `ttl` from now.
    pub fn claims(&self, principal: &Principal, ttl: Duration) -> Claims {
        let now = chrono::Utc::now().timestamp();
        let mut roles: Vec<Role> = principal.roles.iter().copied().collect();
        roles.sort_by_key(|r| format!("{r:?}"));
        Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: principal.subject.clone(),
            name: principal.name.clone(),
            exp: now + ttl.as_secs() as i64,
            iat: now,
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
    /// Wraps a signed token.
    pub fn new(token: &str) -> Self {
        Self(format!("Bearer {token}").parse().expect("a JWT is ASCII"))
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
        assert_eq!(auth.verify(&token).unwrap(), street_dispatcher());
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

    /// The bearer token for the next call.
    pub fn token(&self) -> String {
        match &self.token {
            None => TokenIssuer::dev().issue(&self.principal(), Duration::from_secs(300)),
            Some(token) => token.expose().clone(),
        }
    }

    /// A client interceptor presenting this identity (and the caller's trace context).
    pub fn bearer(&self) -> BearerToken {
        BearerToken::new(&self.token())
    }
}
