//! Settings every service reads from the environment the same way: token verification
//! and the server stack's knobs. A bad value is an error naming the variable, reported
//! before anything binds.

use std::{net::SocketAddr, time::Duration};

use crate::{
    auth::{AuthConfig, DEFAULT_AUDIENCE, VerificationKey},
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
        if parsed("MINHU_AUTH_DEV", false)? {
            return Ok(Self::dev());
        }
        let mut keys = Vec::new();
        if let Some(secret) = optional("MINHU_JWT_HS256_SECRET") {
            if secret.len() < 32 {
                return Err(ConfigError::new("MINHU_JWT_HS256_SECRET", "must be at least 32 bytes"));
            }
            keys.push(VerificationKey::Hs256(secret.into_bytes()));
        }
        if let Some(pem) = optional("MINHU_JWT_RS256_PUBLIC_KEY") {
            keys.push(VerificationKey::Rs256Pem(pem));
        }
        if let Some(pem) = optional("MINHU_JWT_ES256_PUBLIC_KEY") {
            keys.push(VerificationKey::Es256Pem(pem));
        }
        if let Some(pem) = optional("MINHU_JWT_EDDSA_PUBLIC_KEY") {
            keys.push(VerificationKey::EdDsaPem(pem));
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
            leeway: Duration::from_secs(parsed("MINHU_JWT_LEEWAY_SECS", 30)?),
        })
    }
}

impl ServerConfig {
    /// The stack's knobs from `MINHU_REQUEST_TIMEOUT_SECS`, `MINHU_CONCURRENCY_LIMIT`,
    /// `MINHU_CONCURRENCY_LIMIT_PER_CONNECTION`, `MINHU_MAX_MESSAGE_BYTES` and
    /// `MINHU_SHUTDOWN_GRACE_SECS`, each defaulting to [`ServerConfig::default`].
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            request_timeout: Duration::from_secs(parsed("MINHU_REQUEST_TIMEOUT_SECS", d.request_timeout.as_secs())?),
            concurrency_limit: parsed("MINHU_CONCURRENCY_LIMIT", d.concurrency_limit)?,
            concurrency_limit_per_connection: parsed(
                "MINHU_CONCURRENCY_LIMIT_PER_CONNECTION",
                d.concurrency_limit_per_connection,
            )?,
            max_message_bytes: parsed("MINHU_MAX_MESSAGE_BYTES", d.max_message_bytes)?,
            shutdown_grace: Duration::from_secs(parsed("MINHU_SHUTDOWN_GRACE_SECS", d.shutdown_grace.as_secs())?),
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
