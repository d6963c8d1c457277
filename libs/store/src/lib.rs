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

pub use idempotency::{Fingerprint, Idempotency, Replay, Seal, TxFuture};
pub use sqlx;
pub use write::write;

/// Where a service's database is and how many connections it may hold.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long a request waits for a connection before UNAVAILABLE.
    pub acquire_timeout: Duration,
    /// How long request_id first results are kept ([`idempotency::keep_for`]).
    pub idempotency_retention: Duration,
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
        Self {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            idempotency_retention: idempotency::DEFAULT_RETENTION,
        }
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

/// Connects without migrating (tools, tests). The pool reports its saturation as metrics
/// ([`report_pool_metrics`]) under its database's name.
pub async fn connect(config: &DatabaseConfig) -> Result<PgPool, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect(&config.url)
        .await
        .map_err(|source| StoreError::Connect { url: redact(&config.url), source })?;
    report_pool_metrics(&pool, database_name(&config.url));
    Ok(pool)
}

/// The database part of a Postgres URL (`postgres://u@h:5432/minhu_roster?x=y` → `minhu_roster`).
fn database_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    match path.rsplit_once('/') {
        Some((before, name)) if before.contains("://") && !before.ends_with('/') && !name.is_empty() => name,
        _ => "postgres",
    }
}

/// Registers `pool`'s saturation as gauges read at each metrics export:
/// `db.client.connection.count` by `db.client.connection.state` (`used`, `idle`) and
/// `db.client.connection.max`, each with `db.client.connection.pool.name = pool_name` (the
/// OpenTelemetry database conventions). A pool used near its max is what makes requests
/// wait and then fail UNAVAILABLE. Without a metrics exporter this does nothing; with one
/// the gauge keeps a handle on the pool for the life of the process and stops reporting
/// once the pool is closed.
pub fn report_pool_metrics(pool: &PgPool, pool_name: &str) {
    use minhu_telemetry::metrics::{KeyValue, gauge};
    let name = KeyValue::new("db.client.connection.pool.name", pool_name.to_owned());
    let (counted, maxed) = (pool.clone(), pool.clone());
    let counted_name = name.clone();
    gauge("db.client.connection.count", "connections of the pool, used and idle", "{connection}", move || {
        if counted.is_closed() {
            return Vec::new();
        }
        let (size, idle) = (u64::from(counted.size()), counted.num_idle() as u64);
        let state = |s: &'static str| vec![counted_name.clone(), KeyValue::new("db.client.connection.state", s)];
        vec![(size.saturating_sub(idle), state("used")), (idle, state("idle"))]
    });
    gauge("db.client.connection.max", "the most connections the pool opens", "{connection}", move || {
        if maxed.is_closed() {
            return Vec::new();
        }
        vec![(u64::from(maxed.options().get_max_connections()), vec![name.clone()])]
    });
}

/// A Redis connection that reconnects by itself; cheap to clone.
pub async fn connect_redis(url: &str) -> Result<redis::aio::ConnectionManager, StoreError> {
    let client = redis::Client::open(url)?;
    Ok(client.get_connection_manager().await?)
}

#[cfg(test)]
mod pool_name_tests {
    #[test]
    fn the_pool_is_named_after_its_database() {
        assert_eq!(super::database_name("postgres://u:p@h:5432/minhu_roster?sslmode=require"), "minhu_roster");
        assert_eq!(super::database_name("postgres://h/minhu_dispatch"), "minhu_dispatch");
        assert_eq!(super::database_name("postgres://h"), "postgres");
    }
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
