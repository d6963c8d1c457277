//! Personnel (人事任免建议): the street's say over the people the district's departments
//! station in it —
//!
//! - **opinion solicitation** (事先书面征求街道意见): a department files a proposal about a
//!   station head or leadership-team member; the street replies in writing within a number
//!   of working days, signed by a leader; the department decides referring to the opinion.
//!   An overdue reply is escalated ([`deadlines`]) to the street's leaders and the district;
//! - **compliance**: decisions reported without or before the street's opinion, and changes
//!   of a station's leadership in the roster that no decision here covers, are findings in
//!   the district's compliance report (the roster's leadership history is checked
//!   periodically and on demand);
//! - **interview scope** (谈话范围), computed from the roster, the interviews held, and the
//!   promotion, flagged without the full scope;
//! - **Party Working Committee** (党工委委员): stations whose head is not on it;
//! - **secondees** (常驻人员): leave by statute and the working-time calendar, the street's
//!   evaluations and assessments feeding the 五奖 coefficient, the commendation quota.
//!
//! [`Application::build`] makes the whole service from a [`Config`]; `main`, the suite and
//! the tests all run it the same way.

pub mod api;
pub mod clients;
pub mod deadlines;
pub mod domain;
pub mod error;
pub mod shell_wish;
pub mod store;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use minhu_deadlines::{CalendarConfig, Clock, DeadlineEngine, Deadlines, SystemClock, WorkCalendar};
use minhu_grpc::{
    AuthConfig, Authenticator, ConfigError, GrpcServer, ServerConfig,
    config::{listen_addr, optional, parsed, required},
    server::ServeError,
};
use minhu_proto::personnel::v1::personnel_service_server::PersonnelServiceServer;
use minhu_store::DatabaseConfig;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use minhu_deadlines::ManualClock;
pub use minhu_grpc::ServiceIdentity;

/// Personnel's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The service's name: its binary, its service identity, its telemetry.
pub const SERVICE_NAME: &str = "minhu-personnel";

/// Where the roster listens by default.
pub const DEFAULT_ROSTER_URL: &str = "http://127.0.0.1:50051";
/// Where the deadline index lives by default.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Personnel's deadline index keys by default.
pub const DEFAULT_DEADLINE_NAMESPACE: &str = "minhu:personnel:deadlines:";

/// Everything personnel needs to run.
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
    /// How personnel identifies itself to the roster.
    pub identity: ServiceIdentity,
    /// TLS towards the roster (for an `https://` URL).
    pub roster_tls: minhu_grpc::tls::ClientTls,
    /// Working days the street has to reply when the department names no deadline.
    pub reply_working_days: u32,
    /// Working time (reply deadlines, leave days).
    pub calendar: CalendarConfig,
    /// The Redis holding the deadline index.
    pub redis_url: String,
    /// The index's key prefix, shared by this personnel's replicas only.
    pub deadline_namespace: String,
    /// Whether [`Application::run_until`] fires deadlines; tests fire them by hand.
    pub fire_in_background: bool,
    /// How often the roster's leadership changes are checked; `None`: only on demand.
    pub leadership_check_every: Option<Duration>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field("roster_url", &self.roster_url)
            .field("identity", &self.identity)
            .field("reply_working_days", &self.reply_working_days)
            .field("deadline_namespace", &self.deadline_namespace)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// From the environment:
    ///
    /// - `MINHU_PERSONNEL_LISTEN_ADDR` (default `0.0.0.0:50054`), `MINHU_PERSONNEL_DATABASE_URL`,
    ///   `MINHU_PERSONNEL_DATABASE_MAX_CONNECTIONS`, the shared auth and server variables;
    /// - `MINHU_ROSTER_URL` (default [`DEFAULT_ROSTER_URL`]; `https://` with `MINHU_TLS_CA_FILE`);
    ///   `MINHU_PERSONNEL_SERVICE_TOKEN`,
    ///   required unless `MINHU_AUTH_DEV=true`;
    /// - `MINHU_PERSONNEL_REPLY_WORKING_DAYS` (default 5);
    /// - `MINHU_PERSONNEL_CALENDAR`: a working-time calendar as inline JSON or a file path;
    ///   default China's 2026 holiday arrangement;
    /// - `REDIS_URL`, `MINHU_PERSONNEL_DEADLINE_NAMESPACE`, `MINHU_PERSONNEL_FIRE_DEADLINES`
    ///   (default `true`);
    /// - `MINHU_PERSONNEL_LEADERSHIP_CHECK_SECONDS` (default 300; 0 turns the periodic check
    ///   off).
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut database = DatabaseConfig::new(required("MINHU_PERSONNEL_DATABASE_URL")?);
        database.max_connections = parsed("MINHU_PERSONNEL_DATABASE_MAX_CONNECTIONS", database.max_connections)?;
        let dev = parsed("MINHU_AUTH_DEV", false)?;
        let identity = match optional("MINHU_PERSONNEL_SERVICE_TOKEN") {
            Some(token) => ServiceIdentity::with_token(SERVICE_NAME, token),
            None if dev => ServiceIdentity::dev(SERVICE_NAME),
            None => {
                return Err(ConfigError::new(
                    "MINHU_PERSONNEL_SERVICE_TOKEN",
                    "is required unless MINHU_AUTH_DEV=true",
                ));
            }
        };
        let calendar = match optional("MINHU_PERSONNEL_CALENDAR") {
            Some(value) => {
                let value = value.trim().to_owned();
                let json = if value.starts_with('{') {
                    value
                } else {
                    std::fs::read_to_string(&value)
                        .map_err(|e| ConfigError::new("MINHU_PERSONNEL_CALENDAR", format!("reading `{value}`: {e}")))?
                };
                let calendar: CalendarConfig = serde_json::from_str(&json)
                    .map_err(|e| ConfigError::new("MINHU_PERSONNEL_CALENDAR", format!("is not a calendar: {e}")))?;
                WorkCalendar::new(&calendar)
                    .map_err(|e| ConfigError::new("MINHU_PERSONNEL_CALENDAR", e.to_string()))?;
                calendar
            }
            None => minhu_deadlines::china::china_2026(),
        };
        let check: u64 = parsed("MINHU_PERSONNEL_LEADERSHIP_CHECK_SECONDS", 300)?;
        let listen = listen_addr("MINHU_PERSONNEL_LISTEN_ADDR", "0.0.0.0:50054")?;
        Ok(Self {
            listen,
            database,
            auth: AuthConfig::from_env_listening(Some(listen))?,
            server: ServerConfig::from_env()?,
            roster_url: optional("MINHU_ROSTER_URL").unwrap_or_else(|| DEFAULT_ROSTER_URL.into()),
            identity,
            roster_tls: minhu_grpc::tls::ClientTls::from_env()?,
            reply_working_days: parsed("MINHU_PERSONNEL_REPLY_WORKING_DAYS", 5)?,
            calendar,
            redis_url: optional("REDIS_URL").unwrap_or_else(|| DEFAULT_REDIS_URL.into()),
            deadline_namespace: optional("MINHU_PERSONNEL_DEADLINE_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_DEADLINE_NAMESPACE.into()),
            fire_in_background: parsed("MINHU_PERSONNEL_FIRE_DEADLINES", true)?,
            leadership_check_every: (check > 0).then(|| Duration::from_secs(check)),
            clock: Arc::new(SystemClock),
        })
    }

    /// A config for tests and the suite: development auth and identity, China 2026, local
    /// Redis, firing on, no periodic check.
    pub fn local(listen: SocketAddr, database: DatabaseConfig, roster_url: String) -> Self {
        Self {
            listen,
            database,
            auth: AuthConfig::dev(),
            server: ServerConfig::default(),
            roster_url,
            identity: ServiceIdentity::dev(SERVICE_NAME),
            roster_tls: minhu_grpc::tls::ClientTls::default(),
            reply_working_days: 5,
            calendar: minhu_deadlines::china::china_2026(),
            redis_url: DEFAULT_REDIS_URL.into(),
            deadline_namespace: DEFAULT_DEADLINE_NAMESPACE.into(),
            fire_in_background: true,
            leadership_check_every: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Why personnel could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database is unreachable or a migration failed.
    #[error(transparent)]
    Store(#[from] minhu_store::StoreError),
    /// A verification key is malformed.
    #[error(transparent)]
    Auth(#[from] minhu_grpc::auth::KeyError),
    /// Redis is unreachable.
    #[error("connecting to the deadline index (REDIS_URL): {0}")]
    Redis(minhu_store::StoreError),
    /// The calendar or the deadline engine cannot work.
    #[error(transparent)]
    Deadlines(#[from] minhu_deadlines::DeadlineError),
    /// The roster URL is malformed, or https without a CA.
    #[error("MINHU_ROSTER_URL: {0}")]
    RosterUrl(#[from] minhu_grpc::tls::EndpointError),
    /// The listen address is taken.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// A built personnel, bound and migrated, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    server: GrpcServer,
    pool: PgPool,
    state: api::Personnel,
    deadlines: Deadlines,
    engine: DeadlineEngine,
    fire_in_background: bool,
    leadership_check_every: Option<Duration>,
}

impl Application {
    /// Connects to Postgres and Redis, migrates, builds the deadline engine and binds.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let calendar = WorkCalendar::new(&config.calendar)?;
        let pool = minhu_store::connect_and_migrate(&config.database, &[&minhu_deadlines::MIGRATOR, &MIGRATOR]).await?;
        let redis = minhu_store::connect_redis(&config.redis_url).await.map_err(StartError::Redis)?;
        let deadlines = Deadlines::with_clock(redis, &config.deadline_namespace, config.clock.clone());
        let engine = deadlines::engine(pool.clone(), deadlines.clone(), config.clock.clone())?;
        let authenticator = Authenticator::for_service(&config.auth, SERVICE_NAME)?;
        let roster = clients::Roster::new(&config.roster_url, config.identity.clone(), &config.roster_tls)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let state = api::Personnel::new(api::Deps {
            pool: pool.clone(),
            roster,
            clock: config.clock.clone(),
            calendar,
            scheduler: deadlines.clone(),
            reply_working_days: config.reply_working_days,
        });
        let max = config.server.max_message_bytes;
        let service =
            PersonnelServiceServer::new(state.clone()).max_decoding_message_size(max).max_encoding_message_size(max);
        let server = GrpcServer::new(config.server)
            .register_descriptors(minhu_proto::FILE_DESCRIPTOR_SET)
            .add_authenticated(service, authenticator);
        Ok(Self {
            listener,
            server,
            pool,
            state,
            deadlines,
            engine,
            fire_in_background: config.fire_in_background,
            leadership_check_every: config.leadership_check_every,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The service's pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The handlers' shared state.
    pub fn state(&self) -> &api::Personnel {
        &self.state
    }

    /// The deadline index.
    pub fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    /// The deadline engine (tests: `fire_due()` by hand).
    pub fn deadline_engine(&self) -> &DeadlineEngine {
        &self.engine
    }

    /// Serves until `shutdown` completes, then drains; meanwhile fires deadlines and checks
    /// the roster's leadership changes, stopping both once the server has drained.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let stop = minhu_grpc::CancellationToken::new();
        let firing = self.fire_in_background.then(|| {
            let stopped = stop.child_token();
            tokio::spawn(self.engine.clone().run(async move { stopped.cancelled().await }))
        });
        let checking = self.leadership_check_every.map(|every| {
            let state = self.state.clone();
            let stopped = stop.child_token();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = stopped.cancelled() => break,
                        _ = tick.tick() => {
                            if let Err(error) = state.check_leadership_changes().await {
                                tracing::warn!(%error, "checking the roster's leadership changes");
                            }
                        }
                    }
                }
            })
        });
        let served = self.server.serve(self.listener, shutdown).await;
        stop.cancel();
        for task in [firing, checking].into_iter().flatten() {
            if let Err(error) = task.await {
                tracing::error!(%error, "a background task ended abnormally");
            }
        }
        served
    }
}

impl minhu_grpc::App for Application {
    type Config = Config;
    type StartError = StartError;

    fn config_from_env() -> Result<Config, ConfigError> {
        Config::from_env()
    }

    async fn build(config: Config) -> Result<Self, StartError> {
        Application::build(config).await
    }

    async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        Application::run_until(self, shutdown).await
    }
}
