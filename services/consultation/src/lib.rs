//! Consultation (规划参与权 · 决策建议权): the street in every plan, and a reasoned answer
//! whenever its opinion is not adopted.
//!
//! - **Plans** (规划参与, 全程参与): a department's community-construction or
//!   public-service-facility plan goes through drafting (编制), construction (建设) and
//!   acceptance (验收); in each stage every covered street takes part — opinion items the
//!   department answers, or an explicit "no opinion" signed by a street leader — and a stage
//!   is completed only with each street's participation and every item answered.
//!   Acceptance needs each street's sign-off or objection; objections stay on the plan and
//!   in the district's report.
//! - **Decisions** (决策建议): a department consults every affected street — the streets its
//!   places lie in (through the roster's ResolveLocation) and those named by hand — with a
//!   reply deadline (in working days if asked); each street replies with opinion items;
//!   the department answers each (adopted / partly / not, with the reason), and the answer
//!   reaches the street's live watch as it is given. A decision recorded as final out of
//!   order is flagged for the district.
//! - **Tracking**: reply and answer deadlines fire escalations ([`deadlines`],
//!   [`escalation`]); the district's figures ([`domain::report`]); every change journalled
//!   in a hash-chained trail and a gap-free feed ([`store::journal`]).
//!
//! [`Application::build`] makes the whole service from a [`Config`]; `main`, the suite and
//! the tests all run it the same way.

pub mod api;
pub mod clients;
pub mod deadlines;
pub mod domain;
pub mod error;
pub mod escalation;
pub mod feed;
pub mod store;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use minhu_deadlines::{CalendarConfig, DeadlineEngine, Deadlines, WorkCalendar};
pub use minhu_deadlines::{Clock, ManualClock, SystemClock};
use minhu_grpc::{
    AuthConfig, Authenticator, ConfigError, GrpcServer, ServerConfig, ServiceIdentity,
    config::{listen_addr, optional, parsed, required},
    server::ServeError,
};
use minhu_proto::consultation::v1::consultation_service_server::ConsultationServiceServer;
use minhu_store::DatabaseConfig;
use sqlx::PgPool;
use tokio::net::TcpListener;

/// The name this service acts under towards the roster.
pub const SERVICE_NAME: &str = "minhu-consultation";

/// Where the roster listens by default: its own default port on this host.
pub const DEFAULT_ROSTER_URL: &str = "http://127.0.0.1:50051";
/// Where the deadline index lives by default.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Consultation's deadline index keys by default.
pub const DEFAULT_DEADLINE_NAMESPACE: &str = "minhu:consultation:deadlines:";

/// Consultation's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Postgres keeps microseconds; hashing a time it cannot store would break the trail, so
/// every time the service records is cut to microseconds first.
pub fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Deadlines: the working-time calendar, the answer time, where they are indexed and
/// whether this process fires them.
#[derive(Debug, Clone)]
pub struct DeadlineConfig {
    /// Working time, for reply times in working days and answer deadlines.
    pub calendar: CalendarConfig,
    /// Working days a department has to answer an opinion item (default 5).
    pub answer_working_days: u32,
    /// The Redis holding the index.
    pub redis_url: String,
    /// The index's key prefix; shared by every replica of one consultation, nothing else.
    pub namespace: String,
    /// Whether [`Application::run_until`] fires deadlines beside the server (tests that
    /// fire by hand turn it off).
    pub fire_in_background: bool,
}

impl Default for DeadlineConfig {
    fn default() -> Self {
        Self {
            calendar: CalendarConfig::default(),
            answer_working_days: 5,
            redis_url: DEFAULT_REDIS_URL.into(),
            namespace: DEFAULT_DEADLINE_NAMESPACE.into(),
            fire_in_background: true,
        }
    }
}

/// The live feed's timing.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Watches re-read the outbox this often even without a notification.
    pub poll: Duration,
    /// A heartbeat after this long idle (15 s by contract).
    pub heartbeat: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self { poll: Duration::from_secs(1), heartbeat: Duration::from_secs(15) }
    }
}

/// Everything consultation needs to run.
#[derive(Clone)]
pub struct Config {
    /// Where to listen (`127.0.0.1:0` in tests).
    pub listen: SocketAddr,
    /// Its database.
    pub database: DatabaseConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// The server stack's knobs.
    pub server: ServerConfig,
    /// The roster's URL.
    pub roster_url: String,
    /// How consultation identifies itself to the roster.
    pub identity: ServiceIdentity,
    /// TLS towards the roster, for an `https://` roster URL.
    pub roster_tls: minhu_grpc::tls::ClientTls,
    /// Deadlines.
    pub deadlines: DeadlineConfig,
    /// Feed timing.
    pub feed: FeedConfig,
    /// Where "now" comes from, for the handlers and the deadline engine alike.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field("roster_url", &self.roster_url)
            .field("identity", &self.identity)
            .field("deadlines", &self.deadlines)
            .finish_non_exhaustive()
    }
}

/// A calendar from inline JSON (starting with `{`) or a JSON file's path.
fn calendar_from(var: &str, value: &str) -> Result<CalendarConfig, ConfigError> {
    let value = value.trim();
    let json = if value.starts_with('{') {
        value.to_owned()
    } else {
        std::fs::read_to_string(value).map_err(|e| ConfigError::new(var, format!("reading `{value}`: {e}")))?
    };
    let calendar: CalendarConfig =
        serde_json::from_str(&json).map_err(|e| ConfigError::new(var, format!("is not a calendar: {e}")))?;
    WorkCalendar::new(&calendar).map_err(|e| ConfigError::new(var, e.to_string()))?;
    Ok(calendar)
}

impl Config {
    /// From the environment:
    ///
    /// - `MINHU_CONSULTATION_LISTEN_ADDR` (default `0.0.0.0:50055`),
    ///   `MINHU_CONSULTATION_DATABASE_URL`, `MINHU_CONSULTATION_DATABASE_MAX_CONNECTIONS`, the
    ///   shared auth, server and `MINHU_IDEMPOTENCY_RETENTION_HOURS` variables;
    /// - `MINHU_ROSTER_URL` (default [`DEFAULT_ROSTER_URL`]);
    /// - `MINHU_CONSULTATION_SERVICE_TOKEN` (required unless `MINHU_AUTH_DEV=true`);
    /// - `MINHU_CONSULTATION_ANSWER_WORKING_DAYS` (default 5), `MINHU_CONSULTATION_CALENDAR`
    ///   (inline JSON or a file's path; default Monday–Friday office hours, China Standard
    ///   Time, no holidays);
    /// - TLS: the shared `MINHU_TLS_*` variables (the server's certificate, and the CA for an
    ///   `https://` roster URL);
    /// - `REDIS_URL`, `MINHU_CONSULTATION_DEADLINE_NAMESPACE`,
    ///   `MINHU_CONSULTATION_FIRE_DEADLINES` (default `true`).
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut database = DatabaseConfig::new(required("MINHU_CONSULTATION_DATABASE_URL")?);
        database.max_connections = parsed("MINHU_CONSULTATION_DATABASE_MAX_CONNECTIONS", database.max_connections)?;
        database.idempotency_retention = minhu_grpc::config::idempotency_retention()?;
        let dev = parsed("MINHU_AUTH_DEV", false)?;
        let identity = match optional("MINHU_CONSULTATION_SERVICE_TOKEN") {
            Some(token) => ServiceIdentity::with_token(SERVICE_NAME, token),
            None if dev => ServiceIdentity::dev(SERVICE_NAME),
            None => {
                return Err(ConfigError::new(
                    "MINHU_CONSULTATION_SERVICE_TOKEN",
                    "is required unless MINHU_AUTH_DEV=true",
                ));
            }
        };
        let calendar = match optional("MINHU_CONSULTATION_CALENDAR") {
            Some(value) => calendar_from("MINHU_CONSULTATION_CALENDAR", &value)?,
            None => CalendarConfig::default(),
        };
        let answer_working_days = parsed("MINHU_CONSULTATION_ANSWER_WORKING_DAYS", 5u32)?;
        if answer_working_days == 0 {
            return Err(ConfigError::new("MINHU_CONSULTATION_ANSWER_WORKING_DAYS", "must be at least 1"));
        }
        let namespace =
            optional("MINHU_CONSULTATION_DEADLINE_NAMESPACE").unwrap_or_else(|| DEFAULT_DEADLINE_NAMESPACE.into());
        if namespace.trim().is_empty() {
            return Err(ConfigError::new("MINHU_CONSULTATION_DEADLINE_NAMESPACE", "must not be empty"));
        }
        let listen = listen_addr("MINHU_CONSULTATION_LISTEN_ADDR", "0.0.0.0:50055")?;
        Ok(Self {
            listen,
            database,
            auth: AuthConfig::from_env_listening(Some(listen))?,
            server: ServerConfig::from_env()?,
            roster_url: optional("MINHU_ROSTER_URL").unwrap_or_else(|| DEFAULT_ROSTER_URL.into()),
            identity,
            roster_tls: minhu_grpc::tls::ClientTls::from_env()?,
            deadlines: DeadlineConfig {
                calendar,
                answer_working_days,
                redis_url: optional("REDIS_URL").unwrap_or_else(|| DEFAULT_REDIS_URL.into()),
                namespace,
                fire_in_background: parsed("MINHU_CONSULTATION_FIRE_DEADLINES", true)?,
            },
            feed: FeedConfig::default(),
            clock: Arc::new(SystemClock),
        })
    }
}

/// Why consultation could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database is unreachable or a migration failed.
    #[error(transparent)]
    Store(#[from] minhu_store::StoreError),
    /// A verification key is malformed.
    #[error(transparent)]
    Auth(#[from] minhu_grpc::auth::KeyError),
    /// Redis is unreachable or its URL malformed.
    #[error("connecting to the deadline index (REDIS_URL): {0}")]
    Redis(minhu_store::StoreError),
    /// The calendar or the deadline engine cannot work.
    #[error(transparent)]
    Deadlines(#[from] minhu_deadlines::DeadlineError),
    /// The roster URL is malformed, or https without a CA.
    #[error("MINHU_ROSTER_URL: {0}")]
    RosterUrl(#[from] minhu_grpc::tls::EndpointError),
    /// The listen address is taken or not ours.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// A built consultation, bound and migrated, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    server: GrpcServer,
    pool: PgPool,
    deadlines: Deadlines,
    engine: DeadlineEngine,
    fire_in_background: bool,
}

impl Application {
    /// Connects to Postgres and Redis, migrates, starts the feed listener, builds the
    /// deadline engine and binds; serving (and firing) starts with [`Application::run_until`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let calendar = WorkCalendar::new(&config.deadlines.calendar)?;
        let pool = minhu_store::connect_and_migrate(&config.database, &[&minhu_deadlines::MIGRATOR, &MIGRATOR]).await?;
        let redis = minhu_store::connect_redis(&config.deadlines.redis_url).await.map_err(StartError::Redis)?;
        let deadlines = Deadlines::with_clock(redis, &config.deadlines.namespace, config.clock.clone());
        let engine = deadlines::engine(pool.clone(), deadlines.clone(), config.clock.clone())?;
        let authenticator = Authenticator::for_service(&config.auth, SERVICE_NAME)?;
        let roster = clients::Roster::new(&config.roster_url, config.identity.clone(), &config.roster_tls)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let head = feed::Head::start(pool.clone(), config.feed.poll).await?;
        let state = api::Consultation::new(api::Deps {
            pool: pool.clone(),
            roster,
            clock: config.clock.clone(),
            calendar,
            answer_working_days: config.deadlines.answer_working_days,
            scheduler: deadlines.clone(),
            head,
            heartbeat: config.feed.heartbeat,
        });
        let max = config.server.max_message_bytes;
        let service =
            ConsultationServiceServer::new(state).max_decoding_message_size(max).max_encoding_message_size(max);
        let server = GrpcServer::new(config.server)
            .register_descriptors(minhu_proto::FILE_DESCRIPTOR_SET)
            // request_id first results older than the retention are purged while this serves.
            .retain_idempotency(pool.clone(), config.database.idempotency_retention)
            .add_authenticated(service, authenticator);
        Ok(Self { listener, server, pool, deadlines, engine, fire_in_background: config.deadlines.fire_in_background })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The service's pool (tests, tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The deadline index.
    pub fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    /// The deadline engine; with `fire_in_background` off, tests fire by hand (`fire_due()`).
    pub fn deadline_engine(&self) -> &DeadlineEngine {
        &self.engine
    }

    /// Serves until `shutdown` completes, then drains; meanwhile (unless
    /// `fire_in_background` is off) fires deadlines, on a token cancelled once the server has
    /// drained, so that nothing a last request scheduled is left claimed.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let stop = minhu_grpc::CancellationToken::new();
        let firing = self.fire_in_background.then(|| {
            let stopped = stop.child_token();
            tokio::spawn(self.engine.clone().run(async move { stopped.cancelled().await }))
        });
        let served = self.server.serve(self.listener, shutdown).await;
        stop.cancel();
        if let Some(firing) = firing
            && let Err(error) = firing.await
        {
            tracing::error!(%error, "the deadline engine ended abnormally");
        }
        served
    }
}

// `main`'s path: the same build and serve as the tests and the suite.
minhu_grpc::app!(Application, Config, StartError);
