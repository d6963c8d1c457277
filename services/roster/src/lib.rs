//! Roster (部门名册): the source of truth for who exists in the district and where they
//! belong — streets, communities, grids, departments, stations, people, secondments — and
//! the look-ups dispatch needs to route a call to the right people.
//!
//! [`Application::build`] makes the whole service from a [`Config`] (pool, migrations,
//! listener, server stack); `main`, the suite and the tests all run it the same way.

pub mod api;
pub mod domain;
pub mod error;
pub mod seed;
pub mod store;

use std::net::SocketAddr;

use minhu_grpc::{
    AuthConfig, Authenticator, ConfigError, GrpcServer, ServerConfig,
    config::{listen_addr, parsed, required},
    server::ServeError,
};
use minhu_proto::roster::v1::roster_service_server::RosterServiceServer;
use minhu_store::DatabaseConfig;
use sqlx::PgPool;
use tokio::net::TcpListener;

/// The roster's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Everything the roster needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (`127.0.0.1:0` in tests).
    pub listen: SocketAddr,
    /// Its database.
    pub database: DatabaseConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// The server stack's knobs.
    pub server: ServerConfig,
}

impl Config {
    /// From `MINHU_ROSTER_LISTEN_ADDR` (default `0.0.0.0:50051`), `MINHU_ROSTER_DATABASE_URL`,
    /// `MINHU_ROSTER_DATABASE_MAX_CONNECTIONS`, and the shared auth and server variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut database = DatabaseConfig::new(required("MINHU_ROSTER_DATABASE_URL")?);
        database.max_connections = parsed("MINHU_ROSTER_DATABASE_MAX_CONNECTIONS", database.max_connections)?;
        database.idempotency_retention = minhu_grpc::config::idempotency_retention()?;
        let listen = listen_addr("MINHU_ROSTER_LISTEN_ADDR", "0.0.0.0:50051")?;
        Ok(Self {
            listen,
            database,
            auth: AuthConfig::from_env_listening(Some(listen))?,
            server: ServerConfig::from_env()?,
        })
    }
}

/// Why the roster could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database is unreachable or a migration failed.
    #[error(transparent)]
    Store(#[from] minhu_store::StoreError),
    /// A verification key is malformed.
    #[error(transparent)]
    Auth(#[from] minhu_grpc::auth::KeyError),
    /// The listen address is taken or not ours.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// A built roster, bound and migrated, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    server: GrpcServer,
    pool: PgPool,
}

impl Application {
    /// Connects, migrates and binds; serving starts with [`Application::run_until`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let pool = minhu_store::connect_and_migrate(&config.database, &[&MIGRATOR]).await?;
        let authenticator = Authenticator::for_service(&config.auth, "minhu-roster")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let max = config.server.max_message_bytes;
        let service = RosterServiceServer::new(api::Roster::new(pool.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let server = GrpcServer::new(config.server)
            .register_descriptors(minhu_proto::FILE_DESCRIPTOR_SET)
            .retain_idempotency(pool.clone(), config.database.idempotency_retention)
            .add_authenticated(service, authenticator);
        Ok(Self { listener, server, pool })
    }

    /// The address actually bound (the port, when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The service's pool (seed loading, tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        self.server.serve(self.listener, shutdown).await
    }
}

// `main`'s path: the same build and serve as the tests and the suite.
minhu_grpc::app!(Application, Config, StartError);
