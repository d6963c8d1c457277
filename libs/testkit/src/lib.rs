//! The test harness every Minhu crate's integration tests use (zero2prod's `spawn_app`,
//! grown up):
//!
//! - [`TestDatabase`]: a fresh database per test on the configured Postgres, dropped when
//!   the test ends, so tests run in parallel and leave nothing behind;
//! - [`TestRedis`]: a private key namespace on the configured Redis, cleaned up likewise;
//! - [`TestServer`]: a real [`GrpcServer`](minhu_grpc::GrpcServer) on `127.0.0.1:0`, and
//!   channels to it that wait until it answers (never a `sleep`);
//! - [`tokens`]: dev tokens for each kind of caller;
//! - [`echo`]: a tiny service built only from the shared libraries, which their own tests
//!   exercise.
//! - [`otlp`]: an OTLP trace receiver, to prove what a service's traces look like to a
//!   collector.
//!
//! Where Postgres and Redis are: `MINHU_TEST_DATABASE_URL` (an admin URL on a server where
//! databases may be created) and `MINHU_TEST_REDIS_URL`; `cargo xtask test` sets both,
//! starting throwaway servers if needed. Logs stay silent unless `TEST_LOG` is set.

pub mod echo;
pub mod otlp;
pub mod tokens;

use std::{net::SocketAddr, sync::Once, time::Duration};

use minhu_grpc::{GrpcServer, server::ServeError};
use minhu_store::DatabaseConfig;
use sqlx::{Connection as _, PgConnection, PgPool};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::{Channel, Endpoint};

/// Admin URL used when `MINHU_TEST_DATABASE_URL` is unset (a local trust-auth server).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Redis used when `MINHU_TEST_REDIS_URL` is unset.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Turns on logs for the test process when `TEST_LOG` is set (`TEST_LOG=debug`).
pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(level) = std::env::var("TEST_LOG") {
            let config = minhu_telemetry::TelemetryConfig {
                service_name: "minhu-test".into(),
                log_format: minhu_telemetry::LogFormat::Pretty,
                default_filter: if level.is_empty() { "info".into() } else { level },
                trace_filter: "off".into(),
                otlp_endpoint: None,
                metrics_interval: None,
            };
            if let Ok(telemetry) = minhu_telemetry::init(&config) {
                // Logs only: nothing to flush, keep it for the process's lifetime.
                std::mem::forget(telemetry);
            }
        }
    });
}

fn admin_url() -> String {
    std::env::var("MINHU_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.into())
}

/// The URL of database `name` on the server of `admin` (same credentials).
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = admin.split_once('?').map_or((admin, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database named `minhu_test_<prefix>_<random>`.
    pub async fn create(prefix: &str) -> Self {
        init_logging();
        let admin_url = admin_url();
        let name = format!("minhu_test_{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("connecting to test postgres ({admin_url}): {e}; is MINHU_TEST_DATABASE_URL right?")
        });
        sqlx::query(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut admin)
            .await
            .expect("creating the test database");
        let _ = admin.close().await;
        let url = database_url(&admin_url, &name);
        Self { name, url, admin_url }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A config for a service's pool.
    pub fn config(&self) -> DatabaseConfig {
        let mut config = DatabaseConfig::new(self.url.clone());
        config.max_connections = 5;
        // Tests run in parallel on two cores against one server: a connection can take a
        // while to come, and that is not what any test is about.
        config.acquire_timeout = std::time::Duration::from_secs(30);
        config
    }

    /// A pool with nothing migrated (for tests that inspect or tamper with rows).
    pub async fn pool(&self) -> PgPool {
        minhu_store::connect(&self.config()).await.expect("connecting to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, where blocking on async is not allowed: do it
        // on a thread with a runtime of its own. FORCE ends the pools still connected.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#)))
                    .execute(&mut admin)
                    .await?;
                admin.close().await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("testkit: could not drop test database {}: {e}", self.name);
        }
    }
}

/// A private key namespace on the test Redis.
#[derive(Debug)]
pub struct TestRedis {
    url: String,
    prefix: String,
}

impl TestRedis {
    /// A fresh namespace `minhu-test:<random>:`.
    pub async fn create() -> Self {
        let url = std::env::var("MINHU_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.into());
        let prefix = format!("minhu-test:{}:", uuid::Uuid::new_v4().simple());
        Self { url, prefix }
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key prefix this test owns; every key it writes must start with it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A connection.
    pub async fn connection(&self) -> redis::aio::ConnectionManager {
        minhu_store::connect_redis(&self.url).await.expect("connecting to test redis")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else { return };
        let Ok(mut conn) = client.get_connection() else { return };
        let keys: Vec<String> = match redis::cmd("KEYS").arg(format!("{}*", self.prefix)).query(&mut conn) {
            Ok(keys) => keys,
            Err(_) => return,
        };
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// A server running on an ephemeral port for one test.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestServer {
    /// Serves `server` on `127.0.0.1:0`.
    pub async fn start(server: GrpcServer) -> Self {
        init_logging();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding an ephemeral port");
        let addr = listener.local_addr().expect("listener address");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = rx.await;
        }));
        Self { addr, shutdown: Some(tx), task: Some(task) }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A channel to it, once it accepts connections.
    pub async fn channel(&self) -> Channel {
        connect(self.addr).await
    }

    /// Sends the shutdown signal and waits for the drain.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("server task panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Connects to `addr`, retrying for up to 10 s while the server starts.
pub async fn connect(addr: SocketAddr) -> Channel {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("valid endpoint");
    let mut delay = Duration::from_millis(5);
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match endpoint.connect().await {
            Ok(channel) => return channel,
            Err(e) if tokio::time::Instant::now() >= give_up => panic!("server at {addr} never answered: {e}"),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(200));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_keeps_server_credentials_and_options() {
        assert_eq!(database_url("postgres://u:p@h:5/postgres", "x"), "postgres://u:p@h:5/x");
        assert_eq!(database_url("postgres://h/postgres?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
    }
}
