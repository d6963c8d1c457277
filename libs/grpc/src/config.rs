//! Settings every service reads from the environment the same way: token verification
//! and the server stack's knobs. A bad value is an error naming the variable, reported
//! before anything binds.

use std::{net::SocketAddr, time::Duration};

use crate::{
    auth::{AuthConfig, DEFAULT_AUDIENCE, KeyEntry, MAX_LEEWAY, VerificationKey},
    server::ServerConfig,
};

/// A configuration variable that is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `variable`.
    pub fn new(variable: &str, message: impl Into<String>) -> Self {
        Self { variable: variable.into(), message: message.into() }
    }
}

/// The value of `variable`, `None` when unset or empty.
pub fn optional(variable: &str) -> Option<String> {
    std::env::var(variable).ok().filter(|v| !v.trim().is_empty())
}

/// The value of `variable`, or an error saying it is required.
pub fn required(variable: &str) -> Result<String, ConfigError> {
    optional(variable).ok_or_else(|| ConfigError::new(variable, "is required"))
}

/// `variable` parsed as `T`, or `default` when unset.
pub fn parsed<T: std::str::FromStr>(variable: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match optional(variable) {
        Some(v) => v.trim().parse().map_err(|e| ConfigError::new(variable, format!("`{v}` is invalid: {e}"))),
        None => Ok(default),
    }
}

/// A listen address from `variable`, or `default`.
pub fn listen_addr(variable: &str, default: &str) -> Result<SocketAddr, ConfigError> {
    parsed(variable, default.parse().expect("default listen address is valid"))
}

impl AuthConfig {
    /// Token verification from the environment:
    ///
    /// - `MINHU_AUTH_DEV=true`: accept development tokens (the demo, local runs);
    /// - otherwise `MINHU_JWT_ISSUER` and one or more keys: `MINHU_JWT_HS256_SECRET`,
    ///   `MINHU_JWT_RS256_PUBLIC_KEY`, `MINHU_JWT_ES256_PUBLIC_KEY`, `MINHU_JWT_EDDSA_PUBLIC_KEY`
    ///   (PEM); `MINHU_JWT_AUDIENCE` defaults to `minhu`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_listening(None)
    }

    /// As [`AuthConfig::from_env`], for a server listening on `listen`: development mode is
    /// refused when real keys are configured too (one of the two is a mistake), and — unless
    /// `MINHU_AUTH_DEV_ON_NETWORK=true` acknowledges it — when the server listens beyond
    /// loopback, where anyone who can read this source could mint an admin token.
    pub fn from_env_listening(listen: Option<SocketAddr>) -> Result<Self, ConfigError> {
        const KEY_VARIABLES: [&str; 6] = [
            "MINHU_JWT_HS256_SECRET",
            "MINHU_JWT_RS256_PUBLIC_KEY",
            "MINHU_JWT_ES256_PUBLIC_KEY",
            "MINHU_JWT_EDDSA_PUBLIC_KEY",
            "MINHU_JWT_JWKS",
            "MINHU_JWT_ISSUER",
        ];
        if parsed("MINHU_AUTH_DEV", false)? {
            if let Some(real) = KEY_VARIABLES.iter().find(|v| optional(v).is_some()) {
                return Err(ConfigError::new(
                    "MINHU_AUTH_DEV",
                    format!("is true while {real} is set: development tokens and real keys do not mix"),
                ));
            }
            if let Some(addr) = listen
                && !addr.ip().is_loopback()
                && !parsed("MINHU_AUTH_DEV_ON_NETWORK", false)?
            {
                return Err(ConfigError::new(
                    "MINHU_AUTH_DEV",
                    format!(
                        "is true but the server listens on {addr}, beyond loopback: development tokens are \
                         public; set MINHU_AUTH_DEV_ON_NETWORK=true to accept that (never for a real district)"
                    ),
                ));
            }
            tracing::warn!(
                "MINHU_AUTH_DEV=true: accepting DEVELOPMENT tokens signed with a key published in the source; \
                 never run a real district like this"
            );
            return Ok(Self::dev());
        }
        let mut keys: Vec<KeyEntry> = Vec::new();
        if let Some(secret) = optional("MINHU_JWT_HS256_SECRET") {
            if secret.len() < 32 {
                return Err(ConfigError::new("MINHU_JWT_HS256_SECRET", "must be at least 32 bytes"));
            }
            // A shared secret lets every holder mint any token: fine for one process, not
            // for a district where each service would hold it.
            if !parsed("MINHU_JWT_ALLOW_HS256", false)? {
                return Err(ConfigError::new(
                    "MINHU_JWT_HS256_SECRET",
                    "is a shared secret every service could mint admin tokens with; use an RS256/ES256/EdDSA \
                     public key, or set MINHU_JWT_ALLOW_HS256=true to accept the risk",
                ));
            }
            keys.push(VerificationKey::Hs256(secret.into_bytes()).into());
        }
        if let Some(pem) = optional("MINHU_JWT_RS256_PUBLIC_KEY") {
            keys.push(VerificationKey::Rs256Pem(pem).into());
        }
        if let Some(pem) = optional("MINHU_JWT_ES256_PUBLIC_KEY") {
            keys.push(VerificationKey::Es256Pem(pem).into());
        }
        if let Some(pem) = optional("MINHU_JWT_EDDSA_PUBLIC_KEY") {
            keys.push(VerificationKey::EdDsaPem(pem).into());
        }
        if let Some(jwks) = optional("MINHU_JWT_JWKS") {
            keys.extend(jwks_keys("MINHU_JWT_JWKS", &jwks)?);
        }
        if keys.is_empty() {
            return Err(ConfigError::new(
                "MINHU_JWT_HS256_SECRET",
                "no token verification key is configured (set a MINHU_JWT_* key, or MINHU_AUTH_DEV=true for development)",
            ));
        }
        Ok(Self {
            issuer: required("MINHU_JWT_ISSUER")?,
            audience: optional("MINHU_JWT_AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.into()),
            keys,
            leeway: leeway()?,
        })
    }
}

fn leeway() -> Result<Duration, ConfigError> {
    let leeway = Duration::from_secs(parsed("MINHU_JWT_LEEWAY_SECS", 30)?);
    if leeway > MAX_LEEWAY {
        return Err(ConfigError::new("MINHU_JWT_LEEWAY_SECS", format!("must be at most {}", MAX_LEEWAY.as_secs())));
    }
    Ok(leeway)
}

/// The keys of a JWK Set (RFC 7517, what identity providers publish), inline JSON or a file:
/// each with its `kid`, so that old and new keys overlap during a rotation.
fn jwks_keys(variable: &str, value: &str) -> Result<Vec<KeyEntry>, ConfigError> {
    let value = value.trim();
    let json = if value.starts_with('{') {
        value.to_owned()
    } else {
        std::fs::read_to_string(value).map_err(|e| ConfigError::new(variable, format!("reading `{value}`: {e}")))?
    };
    let set: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| ConfigError::new(variable, format!("is not a JWK Set: {e}")))?;
    let keys = set["keys"].as_array().ok_or_else(|| ConfigError::new(variable, "has no `keys` array"))?;
    keys.iter()
        .enumerate()
        .map(|(i, jwk)| {
            let kid = jwk["kid"]
                .as_str()
                .ok_or_else(|| ConfigError::new(variable, format!("keys[{i}] has no `kid`")))?
                .to_owned();
            let key = serde_json::to_string(jwk).unwrap_or_default();
            Ok(KeyEntry { kid: Some(kid), key: VerificationKey::Jwk(key) })
        })
        .collect()
}

impl ServerConfig {
    /// The stack's knobs from `MINHU_REQUEST_TIMEOUT_SECS`, `MINHU_CONCURRENCY_LIMIT`,
    /// `MINHU_CONCURRENCY_LIMIT_PER_CONNECTION`, `MINHU_LONG_RUNNING_LIMIT`,
    /// `MINHU_UPLOAD_IDLE_TIMEOUT_SECS`, `MINHU_UPLOAD_MIN_BYTES_PER_SECOND`,
    /// `MINHU_UPLOAD_RATE_GRACE_SECS`, `MINHU_MAX_MESSAGE_BYTES`,
    /// `MINHU_SHUTDOWN_GRACE_SECS` and `MINHU_CORS_ALLOWED_ORIGINS` (comma-separated browser
    /// origins for gRPC-Web, see [`AllowedOrigins`](crate::web::AllowedOrigins)), each
    /// defaulting to [`ServerConfig::default`].
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            request_timeout: Duration::from_secs(parsed("MINHU_REQUEST_TIMEOUT_SECS", d.request_timeout.as_secs())?),
            concurrency_limit: parsed("MINHU_CONCURRENCY_LIMIT", d.concurrency_limit)?,
            concurrency_limit_per_connection: parsed(
                "MINHU_CONCURRENCY_LIMIT_PER_CONNECTION",
                d.concurrency_limit_per_connection,
            )?,
            long_running_limit: parsed("MINHU_LONG_RUNNING_LIMIT", d.long_running_limit)?,
            upload_pace: crate::admission::UploadPace {
                idle_timeout: Duration::from_secs(parsed(
                    "MINHU_UPLOAD_IDLE_TIMEOUT_SECS",
                    d.upload_pace.idle_timeout.as_secs(),
                )?),
                min_bytes_per_second: parsed("MINHU_UPLOAD_MIN_BYTES_PER_SECOND", d.upload_pace.min_bytes_per_second)?,
                grace: Duration::from_secs(parsed("MINHU_UPLOAD_RATE_GRACE_SECS", d.upload_pace.grace.as_secs())?),
            },
            max_message_bytes: parsed("MINHU_MAX_MESSAGE_BYTES", d.max_message_bytes)?,
            shutdown_grace: Duration::from_secs(parsed("MINHU_SHUTDOWN_GRACE_SECS", d.shutdown_grace.as_secs())?),
            cors_allowed_origins: parsed("MINHU_CORS_ALLOWED_ORIGINS", d.cors_allowed_origins)?,
            tls: crate::tls::ServerTls::from_env()?,
        })
    }
}

/// A secret from the configuration (a token, a key): usable, never printed. `Debug` shows
/// `<secret>`, so a `Config: Debug` can be logged whole.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// The shortest retention of request_id first results a configuration may set: clients
/// are promised a day of retries.
pub const MIN_IDEMPOTENCY_RETENTION_HOURS: u64 = 24;

/// `MINHU_IDEMPOTENCY_RETENTION_HOURS`: how long request_id first results are kept before
/// the scheduled purge removes them (default 48, at least 24).
pub fn idempotency_retention() -> Result<Duration, ConfigError> {
    let default = minhu_store::idempotency::DEFAULT_RETENTION.as_secs() / 3600;
    let hours: u64 = parsed("MINHU_IDEMPOTENCY_RETENTION_HOURS", default)?;
    if hours < MIN_IDEMPOTENCY_RETENTION_HOURS {
        return Err(ConfigError::new(
            "MINHU_IDEMPOTENCY_RETENTION_HOURS",
            format!("must be at least {MIN_IDEMPOTENCY_RETENTION_HOURS}: clients retry for up to a day"),
        ));
    }
    Ok(Duration::from_secs(hours * 3600))
}
