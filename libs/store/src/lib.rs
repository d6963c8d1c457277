//! Storage every Minhu service shares: a Postgres pool that applies the service's embedded
//! migrations before anything is served, idempotency records that make `request_id`
//! retries return the first result, [`write`] (the one write path: replay, look-ups,
//! transaction), and Redis connections.
//!
//! Postgres is the truth; Redis only ever holds what can be rebuilt from it.

pub mod idempotency;
pub mod write;

use std::time::Duration;

use sqlx::{
    PgPool,
    migrate::{Migration, Migrator},
    postgres::PgPoolOptions,
};

pub use idempotency::{Fingerprint, Idempotency, Replay, TxFuture};
pub use write::write;
pub use sqlx;

/// Where a service's database is and how many connections it may hold.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long a request waits for a connection before UNAVAILABLE.
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for DatabaseConfig {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl DatabaseConfig {
    /// Defaults for `url`: 10 connections, 5 s acquire timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), max_connections: 10, acquire_timeout: Duration::from_secs(5) }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached.
    #[error("connecting to postgres at {url}: {source}")]
    Connect {
        /// Redacted URL.
        url: String,
        /// Cause.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("running migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A `request_id` came back with a different request.
    #[error("request_id `{0}` was already used for a different request")]
    RequestIdReused(String),
    /// A `request_id` longer than 128 characters (its length).
    #[error("request_id is {0} characters long; at most 128 are kept")]
    RequestIdTooLong(usize),
}

/// The migrations every service database gets first (idempotency records).
static SHARED: Migrator = sqlx::migrate!("./migrations");

/// The shared migrations followed by those of `sets` (the service's own, and those of
/// libraries that keep tables in the service's database, such as `minhu-deadlines`), in
/// version order. Versions must be unique across all of them: libraries use the reserved
/// range below `10000000000000`, services timestamps.
pub fn migrator(sets: &[&Migrator]) -> Migrator {
    let mut all: Vec<Migration> = SHARED.iter().chain(sets.iter().flat_map(|m| m.iter())).cloned().collect();
    all.sort_by_key(|m| m.version);
    if let Some(pair) = all.windows(2).find(|w| w[0].version == w[1].version) {
        // Two sets claiming one version is a build mistake, not a runtime condition.
        panic!(
            "migration version {} is used twice ({} and {})",
            pair[0].version, pair[0].description, pair[1].description
        );
    }
    Migrator::with_migrations(all)
}

/// Connects and applies the shared migrations and those of `sets`. Nothing should be
/// served before this returns: handlers assume the schema is current.
pub async fn connect_and_migrate(config: &DatabaseConfig, sets: &[&Migrator]) -> Result<PgPool, StoreError> {
    let pool = connect(config).await?;
    migrator(sets).run(&pool).await?;
    Ok(pool)
}

/// Connects without migrating (tools, tests).
pub async fn connect(config: &DatabaseConfig) -> Result<PgPool, StoreError> {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect(&config.url)
        .await
        .map_err(|source| StoreError::Connect { url: redact(&config.url), source })
}

/// A Redis connection that reconnects by itself; cheap to clone.
pub async fn connect_redis(url: &str) -> Result<redis::aio::ConnectionManager, StoreError> {
    let client = redis::Client::open(url)?;
    Ok(client.get_connection_manager().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(redact("postgres://minhu:s3cret@db:5432/roster"), "postgres://minhu:***@db:5432/roster");
        assert_eq!(redact("postgres://postgres@127.0.0.1/x"), "postgres://postgres@127.0.0.1/x");
    }
}
