//! Dispatch (案件调度): the heart of 民呼我应 — a case from intake (诉求受理) through
//! triage (研判), calls (呼叫), signing (签收), designation (拟定人选) and check-in (报到),
//! consultation (协商), tasks and feedback (反馈), review and report (办理报告), callback
//! (回访), rating (评价) and rectification (整改) to close (办结); with a tamper-evident
//! trail (留痕), a gap-free event feed that appraisal consumes, live watches (实时进度) and
//! attachments.
//!
//! Deadlines are durable ([`deadlines`]): each is a row in dispatch's database, written in
//! the transaction of the request that sets it, and indexed in Redis; a
//! [`DeadlineEngine`](minhu_deadlines::DeadlineEngine) beside the server fires them through
//! the [`escalation`] hooks, on the service's [`Clock`].
//!
//! [`Application::build`] makes the whole service from a [`Config`] (pool, migrations,
//! Redis, roster client, deadline engine, listener, server stack); `main`, the suite and the
//! tests all run it the same way.

pub mod api;
pub mod clients;
pub mod clock;
pub mod crypto;
pub mod deadlines;
pub mod domain;
pub mod error;
pub mod escalation;
pub mod events;
pub mod feed;
pub mod store;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use minhu_deadlines::{CalendarConfig, DeadlineEngine, Deadlines, WorkCalendar};
use minhu_grpc::{
    AuthConfig, Authenticator, ConfigError, GrpcServer, ServerConfig,
    config::{listen_addr, optional, parsed, required},
    server::ServeError,
};
use minhu_proto::dispatch::v1::dispatch_service_server::DispatchServiceServer;
use minhu_store::DatabaseConfig;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use api::WatchMeter;
pub use clock::{Clock, ManualClock, SystemClock};
pub use domain::deadlines::DeadlinePolicy;

use crate::{clients::ServiceIdentity, crypto::ReporterCipher};

/// Where the roster listens by default: its own default port on this host.
pub const DEFAULT_ROSTER_URL: &str = "http://127.0.0.1:50051";

/// Dispatch's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The reporter encryption key (32 bytes); never printed.
#[derive(Clone)]
pub struct ReporterKey(pub [u8; 32]);

impl std::fmt::Debug for ReporterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReporterKey(<secret>)")
    }
}

impl ReporterKey {
    /// The development key ([`crypto::DEV_REPORTER_KEY`]): tests only — it is published in
    /// the source, so configuration never falls back to it.
    pub fn dev() -> Self {
        Self(crypto::DEV_REPORTER_KEY)
    }

    /// A fresh random key: what development mode uses when none is configured. Data sealed
    /// with it is unreadable after a restart, which is the point — nothing real should be
    /// entered into a dev instance.
    pub fn random() -> Self {
        use aes_gcm::{Aes256Gcm, KeyInit as _, aead::OsRng};
        Self(Aes256Gcm::generate_key(&mut OsRng).into())
    }
}

/// `MINHU_DISPATCH_REPORTER_KEY` (base64 of 32 bytes): required, except in development mode,
/// where a random key is made for this process and said so loudly (#14.8: never the
/// published development key).
fn reporter_key(configured: Option<String>, dev: bool) -> Result<ReporterKey, ConfigError> {
    const VAR: &str = "MINHU_DISPATCH_REPORTER_KEY";
    match configured {
        Some(b64) => {
            let bytes =
                STANDARD.decode(b64.trim()).map_err(|e| ConfigError::new(VAR, format!("is not base64: {e}")))?;
            let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                ConfigError::new(VAR, format!("must decode to exactly 32 bytes, not {}", b.len()))
            })?;
            Ok(ReporterKey(key))
        }
        None if dev => {
            tracing::warn!(
                "DEVELOPMENT MODE: {VAR} is not set; reporter data is sealed with a random key made for this \
                 process and will be unreadable after a restart. Never enter real appeals here."
            );
            Ok(ReporterKey::random())
        }
        None => Err(ConfigError::new(VAR, "is required unless MINHU_AUTH_DEV=true")),
    }
}

/// Attachment limits.
#[derive(Debug, Clone)]
pub struct AttachmentLimits {
    /// Largest file accepted, bytes.
    pub max_bytes: i64,
    /// Largest chunk accepted, bytes.
    pub max_chunk_bytes: usize,
    /// Accepted media types.
    pub content_types: Vec<String>,
    /// Files one uploader may have staged (uploaded before their case exists) at once.
    pub staged_files_per_uploader: i64,
    /// Bytes one uploader may have staged at once.
    pub staged_bytes_per_uploader: i64,
    /// Files one case may hold.
    pub files_per_case: i64,
}

impl Default for AttachmentLimits {
    fn default() -> Self {
        Self {
            max_bytes: 20 * 1024 * 1024,
            max_chunk_bytes: 1024 * 1024,
            content_types: ["image/jpeg", "image/png", "video/mp4", "application/pdf"].map(String::from).to_vec(),
            staged_files_per_uploader: 20,
            staged_bytes_per_uploader: 200 * 1024 * 1024,
            files_per_case: 100,
        }
    }
}

/// The live feed's timing.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// A heartbeat after this long idle (15 s by contract).
    pub heartbeat: Duration,
    /// Streams re-read the outbox this often even without a notification (the fallback
    /// when LISTEN/NOTIFY is down).
    pub poll: Duration,
    /// Open WatchCase/WatchCases streams one caller (token subject) may hold.
    pub max_watches_per_subject: usize,
    /// Open watch streams this replica serves at once.
    pub max_watches_per_replica: usize,
    /// How long a watch's resume token is served.
    pub resume_window: Duration,
    /// Event batches the watch hub keeps for a subscriber that reads slowly; one that
    /// falls further behind is ended (RESOURCE_EXHAUSTED) and resumes with its token.
    pub watch_buffer: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            poll: Duration::from_secs(1),
            max_watches_per_subject: 8,
            max_watches_per_replica: 10_000,
            resume_window: Duration::from_secs(24 * 3600),
            watch_buffer: 1024,
        }
    }
}

impl FeedConfig {
    /// The defaults, with `MINHU_DISPATCH_WATCH_MAX_PER_SUBJECT`,
    /// `MINHU_DISPATCH_WATCH_MAX_PER_REPLICA` and `MINHU_DISPATCH_WATCH_RESUME_WINDOW_MINUTES`
    /// from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let window = parsed("MINHU_DISPATCH_WATCH_RESUME_WINDOW_MINUTES", d.resume_window.as_secs() / 60)?;
        Ok(Self {
            max_watches_per_subject: parsed("MINHU_DISPATCH_WATCH_MAX_PER_SUBJECT", d.max_watches_per_subject)?,
            max_watches_per_replica: parsed("MINHU_DISPATCH_WATCH_MAX_PER_REPLICA", d.max_watches_per_replica)?,
            resume_window: Duration::from_secs(window * 60),
            ..d
        })
    }
}

/// Where the deadline index lives by default.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Dispatch's deadline index keys by default.
pub const DEFAULT_DEADLINE_NAMESPACE: &str = "minhu:dispatch:deadlines:";

/// Deadlines: their durations, the working-time calendar, where they are indexed and
/// whether this process fires them.
#[derive(Debug, Clone)]
pub struct DeadlineConfig {
    /// Durations and defaults.
    pub policy: DeadlinePolicy,
    /// Working time, for what is measured in working days (see [`deadlines`]).
    pub calendar: CalendarConfig,
    /// The Redis holding the index, e.g. `redis://redis:6379`.
    pub redis_url: String,
    /// The index's key prefix. Every replica of one dispatch shares it, and nothing else
    /// may: the index names rows of this database.
    pub namespace: String,
    /// Whether [`Application::run_until`] fires deadlines beside the server. Tests that
    /// fire them by hand (`deadline_engine().fire_due()`) turn it off so that firing
    /// happens exactly when they say.
    pub fire_in_background: bool,
}

impl Default for DeadlineConfig {
    /// The default policy and calendar, the local Redis, the default namespace, firing on.
    fn default() -> Self {
        Self {
            policy: DeadlinePolicy::default(),
            calendar: CalendarConfig::default(),
            redis_url: DEFAULT_REDIS_URL.into(),
            namespace: DEFAULT_DEADLINE_NAMESPACE.into(),
            fire_in_background: true,
        }
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

/// Everything dispatch needs to run.
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
    /// The roster's URL, e.g. `http://roster:50051`.
    pub roster_url: String,
    /// How dispatch identifies itself to the roster.
    pub identity: ServiceIdentity,
    /// Reporter encryption key.
    pub reporter_key: ReporterKey,
    /// Deadlines.
    pub deadlines: DeadlineConfig,
    /// Attachment limits.
    pub attachments: AttachmentLimits,
    /// Feed timing.
    pub feed: FeedConfig,
    /// Where "now" comes from, for the handlers and the deadline engine alike.
    pub clock: Arc<dyn Clock>,
}

impl Config {
    /// From the environment:
    ///
    /// - `MINHU_DISPATCH_LISTEN_ADDR` (default `0.0.0.0:50052`), `MINHU_DISPATCH_DATABASE_URL`,
    ///   `MINHU_DISPATCH_DATABASE_MAX_CONNECTIONS`, the shared auth and server variables;
    /// - `MINHU_ROSTER_URL` (default [`DEFAULT_ROSTER_URL`]);
    /// - the service identity: with `MINHU_AUTH_DEV=true` a development service token is
    ///   signed per request; otherwise `MINHU_DISPATCH_SERVICE_TOKEN` (a pre-issued token
    ///   with the `service` role) is required;
    /// - `MINHU_DISPATCH_REPORTER_KEY`: 32 bytes, base64; required unless `MINHU_AUTH_DEV`
    ///   (then a random key per process, never the published development key);
    /// - `MINHU_DISPATCH_SIGN_MINUTES_{EMERGENCY,URGENT,NORMAL}`,
    ///   `MINHU_DISPATCH_CHECK_IN_WINDOW_MINUTES`, `MINHU_DISPATCH_CHECK_IN_RADIUS_METERS`,
    ///   `MINHU_DISPATCH_RECTIFICATION_WORKING_DAYS`, `MINHU_DISPATCH_MAX_ATTACHMENT_BYTES`,
    ///   `MINHU_DISPATCH_CALLBACK_ATTEMPTS` (unreached callbacks that excuse one, default 3), the
    ///   upload quotas `MINHU_DISPATCH_STAGED_FILES_PER_UPLOADER` (20),
    ///   `MINHU_DISPATCH_STAGED_BYTES_PER_UPLOADER` (200 MiB), `MINHU_DISPATCH_MAX_ATTACHMENTS_PER_CASE` (100);
    /// - the deadline index: `REDIS_URL` (default [`DEFAULT_REDIS_URL`]),
    ///   `MINHU_DISPATCH_DEADLINE_NAMESPACE` (default [`DEFAULT_DEADLINE_NAMESPACE`]),
    ///   `MINHU_DISPATCH_FIRE_DEADLINES` (default `true`);
    /// - `MINHU_DISPATCH_CALENDAR`: the working-time calendar
    ///   ([`CalendarConfig`](minhu_deadlines::CalendarConfig)) as inline JSON or the path of a
    ///   JSON file; default Monday to Friday 09:00–12:00 and 13:30–17:30 China Standard Time,
    ///   no holidays.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut database = DatabaseConfig::new(required("MINHU_DISPATCH_DATABASE_URL")?);
        database.max_connections = parsed("MINHU_DISPATCH_DATABASE_MAX_CONNECTIONS", database.max_connections)?;
        database.idempotency_retention = minhu_grpc::config::idempotency_retention()?;
        let dev = parsed("MINHU_AUTH_DEV", false)?;
        let identity = match optional("MINHU_DISPATCH_SERVICE_TOKEN") {
            Some(token) => ServiceIdentity::Token(token),
            None if dev => ServiceIdentity::Dev,
            None => {
                return Err(ConfigError::new("MINHU_DISPATCH_SERVICE_TOKEN", "is required unless MINHU_AUTH_DEV=true"));
            }
        };
        let reporter_key = reporter_key(optional("MINHU_DISPATCH_REPORTER_KEY"), dev)?;
        let d = DeadlinePolicy::default();
        let minutes = |var: &str, default: Duration| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(parsed(var, default.as_secs() / 60)? * 60))
        };
        let policy = DeadlinePolicy {
            sign_emergency: minutes("MINHU_DISPATCH_SIGN_MINUTES_EMERGENCY", d.sign_emergency)?,
            sign_urgent: minutes("MINHU_DISPATCH_SIGN_MINUTES_URGENT", d.sign_urgent)?,
            sign_normal: minutes("MINHU_DISPATCH_SIGN_MINUTES_NORMAL", d.sign_normal)?,
            check_in_window: minutes("MINHU_DISPATCH_CHECK_IN_WINDOW_MINUTES", d.check_in_window)?,
            check_in_radius_meters: parsed("MINHU_DISPATCH_CHECK_IN_RADIUS_METERS", d.check_in_radius_meters)?,
            rectification_working_days: parsed(
                "MINHU_DISPATCH_RECTIFICATION_WORKING_DAYS",
                d.rectification_working_days,
            )?,
            callback_attempts: parsed("MINHU_DISPATCH_CALLBACK_ATTEMPTS", d.callback_attempts)?.max(1),
        };
        let calendar = match optional("MINHU_DISPATCH_CALENDAR") {
            Some(value) => calendar_from("MINHU_DISPATCH_CALENDAR", &value)?,
            None => CalendarConfig::default(),
        };
        let namespace =
            optional("MINHU_DISPATCH_DEADLINE_NAMESPACE").unwrap_or_else(|| DEFAULT_DEADLINE_NAMESPACE.into());
        if namespace.trim().is_empty() {
            return Err(ConfigError::new("MINHU_DISPATCH_DEADLINE_NAMESPACE", "must not be empty"));
        }
        let deadlines = DeadlineConfig {
            policy,
            calendar,
            redis_url: optional("REDIS_URL").unwrap_or_else(|| DEFAULT_REDIS_URL.into()),
            namespace,
            fire_in_background: parsed("MINHU_DISPATCH_FIRE_DEADLINES", true)?,
        };
        let mut attachments = AttachmentLimits::default();
        attachments.max_bytes = parsed("MINHU_DISPATCH_MAX_ATTACHMENT_BYTES", attachments.max_bytes)?;
        attachments.staged_files_per_uploader =
            parsed("MINHU_DISPATCH_STAGED_FILES_PER_UPLOADER", attachments.staged_files_per_uploader)?;
        attachments.staged_bytes_per_uploader =
            parsed("MINHU_DISPATCH_STAGED_BYTES_PER_UPLOADER", attachments.staged_bytes_per_uploader)?;
        attachments.files_per_case = parsed("MINHU_DISPATCH_MAX_ATTACHMENTS_PER_CASE", attachments.files_per_case)?;
        let listen = listen_addr("MINHU_DISPATCH_LISTEN_ADDR", "0.0.0.0:50052")?;
        Ok(Self {
            listen,
            database,
            auth: AuthConfig::from_env_listening(Some(listen))?,
            server: ServerConfig::from_env()?,
            roster_url: optional("MINHU_ROSTER_URL").unwrap_or_else(|| DEFAULT_ROSTER_URL.into()),
            identity,
            reporter_key,
            deadlines,
            attachments,
            feed: FeedConfig::from_env()?,
            clock: Arc::new(SystemClock),
        })
    }
}

/// How often staged attachments past their expiry are looked for.
const STAGED_PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

/// Discards staged files no intake referenced in time (24 hours, by the contract), until
/// `stop` is cancelled. A failed turn is logged and retried at the next one.
async fn purge_staged_files(pool: PgPool, clock: Arc<dyn Clock>, stop: minhu_grpc::CancellationToken) {
    let mut every = tokio::time::interval(STAGED_PURGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let purged = match pool.acquire().await {
            Ok(mut conn) => store::attachments::purge_expired(&mut conn, clock.now()).await,
            Err(e) => Err(e),
        };
        match purged {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "purged expired staged attachments"),
            Err(e) => tracing::warn!(error = %e, "purging expired staged attachments"),
        }
    }
}

/// Why dispatch could not start.
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
    /// The working-time calendar or the deadline engine cannot work.
    #[error(transparent)]
    Deadlines(#[from] minhu_deadlines::DeadlineError),
    /// The roster URL is malformed.
    #[error("MINHU_ROSTER_URL: {0}")]
    RosterUrl(#[from] tonic::transport::Error),
    /// The listen address is taken or not ours.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// A built dispatch, bound and migrated, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    server: GrpcServer,
    pool: PgPool,
    state: api::Dispatch,
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
        // 派单目录: intake needs a current version; the first start publishes the seed. The
        // 2026 holidays (工作日历) are stored likewise, never over a day the district set.
        {
            let mut conn = pool.acquire().await.map_err(minhu_store::StoreError::from)?;
            store::catalogue::seed(&mut conn, config.clock.now()).await.map_err(minhu_store::StoreError::from)?;
            api::seed_calendar(&mut conn, config.clock.now()).await.map_err(minhu_store::StoreError::from)?;
        }
        let redis = minhu_store::connect_redis(&config.deadlines.redis_url).await.map_err(StartError::Redis)?;
        let deadlines = Deadlines::with_clock(
            redis,
            &config.deadlines.namespace,
            Arc::new(deadlines::EngineClock(config.clock.clone())),
        );
        let engine = deadlines::engine(pool.clone(), deadlines.clone(), config.clock.clone())?;
        let authenticator = Authenticator::for_service(&config.auth, "minhu-dispatch")?;
        let roster = clients::Roster::new(&config.roster_url, config.identity.clone())?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let head = feed::Head::start(pool.clone(), config.feed.poll).await?;
        let state = api::Dispatch::new(api::Deps {
            pool: pool.clone(),
            roster,
            cipher: ReporterCipher::new(config.reporter_key.0),
            clock: config.clock.clone(),
            deadlines: config.deadlines.policy.clone(),
            calendar,
            calendar_base: config.deadlines.calendar.clone(),
            scheduler: deadlines.clone(),
            attachments: config.attachments.clone(),
            feed: config.feed.clone(),
            head,
        });
        let max = config.server.max_message_bytes;
        let service =
            DispatchServiceServer::new(state.clone()).max_decoding_message_size(max).max_encoding_message_size(max);
        let server = GrpcServer::new(config.server)
            .register_descriptors(minhu_proto::FILE_DESCRIPTOR_SET)
            .retain_idempotency(pool.clone(), config.database.idempotency_retention)
            // A video from a phone on a poor network takes as long as it takes.
            .long_running("/minhu.dispatch.v1.DispatchService/UploadAttachment")
            .add_authenticated(service, authenticator);
        Ok(Self {
            listener,
            server,
            pool,
            state,
            deadlines,
            engine,
            fire_in_background: config.deadlines.fire_in_background,
        })
    }

    /// The address actually bound (the port, when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The service's pool (tests, tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The handlers' shared state (tests drive escalations through it).
    pub fn state(&self) -> &api::Dispatch {
        &self.state
    }

    /// The deadline index (tests inspect and flush its keys).
    pub fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    /// The deadline engine. With `fire_in_background` off, tests fire by hand:
    /// `fire_due()` runs one pass at the clock's time, `reconcile()` rebuilds the index.
    pub fn deadline_engine(&self) -> &DeadlineEngine {
        &self.engine
    }

    /// Serves until `shutdown` completes, then drains; meanwhile purges expired staged files
    /// and (unless `fire_in_background` is off) fires deadlines. Both stop on one token,
    /// cancelled once the server has drained, so that nothing a last request scheduled is
    /// left claimed.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let stop = minhu_grpc::CancellationToken::new();
        let purge = tokio::spawn(purge_staged_files(self.pool.clone(), self.state.clock(), stop.child_token()));
        let firing = self.fire_in_background.then(|| {
            let stopped = stop.child_token();
            tokio::spawn(self.engine.clone().run(async move { stopped.cancelled().await }))
        });
        let served = self.server.serve(self.listener, shutdown).await;
        stop.cancel();
        let _ = purge.await;
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

#[cfg(test)]
mod reporter_key_tests {
    use super::*;

    #[test]
    fn development_mode_makes_a_random_reporter_key_never_the_published_one() {
        let a = reporter_key(None, true).unwrap();
        let b = reporter_key(None, true).unwrap();
        assert_ne!(a.0, crypto::DEV_REPORTER_KEY);
        assert_ne!(a.0, b.0, "one per process, not a constant");
        assert!(reporter_key(None, false).is_err(), "required outside development mode");
        let configured = reporter_key(Some(STANDARD.encode([9u8; 32])), true).unwrap();
        assert_eq!(configured.0, [9u8; 32]);
    }
}
