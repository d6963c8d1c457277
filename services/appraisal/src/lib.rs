//! Appraisal (绩效考评): the street's performance-appraisal power (绩效考评权). Scores
//! district departments on the calls they received — response rate (响应率), completion rate
//! (办结率), satisfaction rate (满意率) — per appraisal period, feeds the annual assessment
//! (年度考核), refers non-performance to discipline inspection and organisation/personnel
//! (线索移送), and reports the district's street-level KPIs.
//!
//! Everything is computed from dispatch's event feed, consumed by [`consumer`] in the
//! background; appraisal never calls dispatch's write side. [`Application::build`] makes
//! the whole service from a [`Config`]; `main`, the suite and the tests run it the same way.

pub mod api;
pub mod consumer;
pub mod domain;
pub mod error;
pub mod store;

use std::net::SocketAddr;

use minhu_grpc::{
    AuthConfig, Authenticator, ConfigError, GrpcServer, ServerConfig,
    config::{listen_addr, optional, parsed, required},
    server::ServeError,
};
use minhu_proto::appraisal::v1::appraisal_service_server::AppraisalServiceServer;
use minhu_store::DatabaseConfig;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use consumer::{FeedSource, ServiceIdentity};

/// Where dispatch listens by default: its own default port on this host.
pub const DEFAULT_DISPATCH_URL: &str = "http://127.0.0.1:50052";

/// Appraisal's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Everything appraisal needs to run.
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
    /// Dispatch's feed.
    pub feed: FeedSource,
    /// Whether to consume the feed in the background (tests of [`consumer::apply`] turn it
    /// off to drive events by hand).
    pub consume: bool,
}

impl Config {
    /// From `MINHU_APPRAISAL_LISTEN_ADDR` (default `0.0.0.0:50053`),
    /// `MINHU_APPRAISAL_DATABASE_URL`, `MINHU_APPRAISAL_DATABASE_MAX_CONNECTIONS`,
    /// `MINHU_DISPATCH_URL` (default [`DEFAULT_DISPATCH_URL`]), `MINHU_APPRAISAL_FEED_HEARTBEAT_SECONDS`
    /// (dispatch's feed heartbeat, default 15; silence for twice as long drops the connection), the service identity
    /// (`MINHU_APPRAISAL_SERVICE_TOKEN`, or a dev token with `MINHU_AUTH_DEV=true`), and the
    /// shared auth and server variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut database = DatabaseConfig::new(required("MINHU_APPRAISAL_DATABASE_URL")?);
        database.max_connections = parsed("MINHU_APPRAISAL_DATABASE_MAX_CONNECTIONS", database.max_connections)?;
        database.idempotency_retention = minhu_grpc::config::idempotency_retention()?;
        let dev = parsed("MINHU_AUTH_DEV", false)?;
        let identity = match optional("MINHU_APPRAISAL_SERVICE_TOKEN") {
            Some(token) => ServiceIdentity::with_token("minhu-appraisal", token),
            None if dev => ServiceIdentity::dev("minhu-appraisal"),
            None => {
                return Err(ConfigError::new(
                    "MINHU_APPRAISAL_SERVICE_TOKEN",
                    "is required unless MINHU_AUTH_DEV=true",
                ));
            }
        };
        let listen = listen_addr("MINHU_APPRAISAL_LISTEN_ADDR", "0.0.0.0:50053")?;
        let heartbeat = parsed("MINHU_APPRAISAL_FEED_HEARTBEAT_SECONDS", 15u64)?;
        if heartbeat == 0 {
            return Err(ConfigError::new("MINHU_APPRAISAL_FEED_HEARTBEAT_SECONDS", "must be at least 1"));
        }
        Ok(Self {
            listen,
            database,
            auth: AuthConfig::from_env_listening(Some(listen))?,
            server: ServerConfig::from_env()?,
            feed: FeedSource {
                dispatch_url: optional("MINHU_DISPATCH_URL").unwrap_or_else(|| DEFAULT_DISPATCH_URL.into()),
                identity,
                tls: minhu_grpc::tls::ClientTls::from_env()?,
                heartbeat: std::time::Duration::from_secs(heartbeat),
            },
            consume: true,
        })
    }
}

/// Why appraisal could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database is unreachable or a migration failed.
    #[error(transparent)]
    Store(#[from] minhu_store::StoreError),
    /// A verification key is malformed.
    #[error(transparent)]
    Auth(#[from] minhu_grpc::auth::KeyError),
    /// The dispatch URL is malformed.
    #[error("MINHU_DISPATCH_URL: {0}")]
    DispatchUrl(#[from] minhu_grpc::tls::EndpointError),
    /// The listen address is taken or not ours.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// A built appraisal, bound and migrated, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    server: GrpcServer,
    state: api::Appraisal,
    consume: bool,
}

impl Application {
    /// Connects, migrates and binds; serving (and consuming the feed) starts with
    /// [`Application::run_until`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let pool = minhu_store::connect_and_migrate(&config.database, &[&MIGRATOR]).await?;
        let authenticator = Authenticator::for_service(&config.auth, "minhu-appraisal")?;
        // A malformed URL is a configuration error now, not a reconnect loop later.
        config.feed.client()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let state = api::Appraisal::new(pool.clone(), config.feed.clone());
        let max = config.server.max_message_bytes;
        let service =
            AppraisalServiceServer::new(state.clone()).max_decoding_message_size(max).max_encoding_message_size(max);
        let server = GrpcServer::new(config.server)
            .register_descriptors(minhu_proto::FILE_DESCRIPTOR_SET)
            .retain_idempotency(pool, config.database.idempotency_retention)
            .add_authenticated(service, authenticator);
        Ok(Self { listener, server, state, consume: config.consume })
    }

    /// The address actually bound (the port, when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The service's pool (tests, tools).
    pub fn pool(&self) -> &PgPool {
        self.state.pool()
    }

    /// The handlers' shared state.
    pub fn state(&self) -> &api::Appraisal {
        &self.state
    }

    /// Consumes the feed and serves until `shutdown` completes, then drains.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let stop = minhu_grpc::CancellationToken::new();
        let consumer = self.consume.then(|| tokio::spawn(self.state.clone().consume(stop.child_token())));
        let served = self.server.serve(self.listener, shutdown).await;
        // After the drain: the last requests' reads saw a consumer still running.
        stop.cancel();
        if let Some(task) = consumer
            && let Err(error) = task.await
        {
            tracing::error!(%error, "the feed consumer ended abnormally");
        }
        served
    }
}

// `main`'s path: the same build and serve as the tests and the suite.
minhu_grpc::app!(Application, Config, StartError);
