//! The one test spawner: the Minhu services together, in the test process, as the suite
//! binary runs them — each on its own `127.0.0.1:0` listener with its own fresh database,
//! accepting development tokens, and talking to each other over real gRPC. Appraisal's
//! tests and the workspace's end-to-end tests (`tests/`) start their services through it.
//!
//! [`Suite::start`] brings up the seeded roster, then dispatch pointed at it, then appraisal
//! following dispatch's feed, then personnel and consultation calling the roster, and hands
//! out their addresses, pools and typed clients for any caller ([`minhu_testkit::tokens`] has the personas). Each service is one [`Running`],
//! built after the services it depends on and stopped before them. [`Suite::builder`]
//! chooses dispatch's deadline policy (e.g. the demo's short one), its clock (a
//! [`ManualClock`], with deadlines fired by hand through [`Suite::fire_deadlines`]) and
//! whether appraisal consumes the feed.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use minhu_deadlines::DeadlineEngine;
pub use minhu_dispatch::{DeadlinePolicy, ManualClock};
use minhu_grpc::{AuthConfig, Principal, ServerConfig, auth::BearerToken, server::ServeError};
use minhu_proto::{
    appraisal::v1::appraisal_service_client::AppraisalServiceClient,
    dispatch::v1::dispatch_service_client::DispatchServiceClient,
    roster::v1::roster_service_client::RosterServiceClient,
};
use minhu_testkit::{TestDatabase, tokens};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{codegen::InterceptedService, transport::Channel};

/// The street of the seed's pump-room case (中南路街道).
pub const STREET: &str = minhu_roster::seed::ZHONGNANLU;

/// A dispatch client carrying one caller's token.
pub type DispatchClient = DispatchServiceClient<InterceptedService<Channel, BearerToken>>;
/// An appraisal client carrying one caller's token.
pub type AppraisalClient = AppraisalServiceClient<InterceptedService<Channel, BearerToken>>;
/// A roster client carrying one caller's token.
pub type RosterClient = RosterServiceClient<InterceptedService<Channel, BearerToken>>;

/// How long a drain may take before [`Suite::stop`] gives up on it.
const DRAIN: Duration = Duration::from_secs(15);

/// One service of the suite, serving on its own port with its own database.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    // Last: the database is dropped (WITH FORCE) only after the server was told to stop.
    _database: TestDatabase,
}

impl Running {
    /// Serves `run_until` (an `Application::run_until`) on a task and connects to `addr`.
    async fn spawn<F>(addr: SocketAddr, database: TestDatabase, run_until: impl FnOnce(ShutdownSignal) -> F) -> Self
    where
        F: Future<Output = Result<(), ServeError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(run_until(Box::pin(async {
            // A dropped sender (the suite dropped without `stop`) stops the server too.
            let _ = rx.await;
        })));
        let channel = minhu_testkit::connect(addr).await;
        Self { addr, channel, shutdown: Some(tx), task: Some(task), _database: database }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connected channel (cheap to clone), for clients with other interceptors.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Signals shutdown and waits for the drain.
    async fn stop(&mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => tokio::time::timeout(DRAIN, task)
                .await
                .unwrap_or_else(|_| panic!("the server at {} did not drain within {DRAIN:?}", self.addr))
                .expect("the server task panicked"),
            None => Ok(()),
        }
    }
}

type ShutdownSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long a connection may take to come from a service's pool: a suite is three
/// databases migrating at once, and the binary's tests start their suites in parallel.
const ACQUIRE: Duration = Duration::from_secs(30);

fn patient(mut database: minhu_store::DatabaseConfig) -> minhu_store::DatabaseConfig {
    database.acquire_timeout = ACQUIRE;
    database
}

/// How to start a [`Suite`]: dispatch's deadline policy and clock, appraisal's consumer,
/// and the server stack's settings of every service.
#[derive(Debug)]
pub struct SuiteBuilder {
    policy: DeadlinePolicy,
    clock: Option<ManualClock>,
    consume: bool,
    feed_poll: Duration,
    server: ServerConfig,
}

impl Default for SuiteBuilder {
    fn default() -> Self {
        Self {
            policy: DeadlinePolicy::default(),
            clock: None,
            consume: true,
            feed_poll: Duration::from_millis(200),
            server: ServerConfig::default(),
        }
    }
}

impl SuiteBuilder {
    /// The demo's short deadlines ([`minhu_suite::demo::demo_deadlines`]): seconds, not hours.
    pub fn demo_deadlines(mut self) -> Self {
        minhu_suite::demo::demo_deadlines(&mut self.policy);
        self
    }

    /// Dispatch's deadline policy, adjusted by `adjust`.
    pub fn deadlines(mut self, adjust: impl FnOnce(&mut DeadlinePolicy)) -> Self {
        adjust(&mut self.policy);
        self
    }

    /// Every service's server stack runs with `server` (e.g. CORS origins for gRPC-Web)
    /// instead of [`ServerConfig::default`].
    pub fn server(mut self, server: ServerConfig) -> Self {
        self.server = server;
        self
    }

    /// Dispatch runs on `clock` instead of real time, and its deadline engine does not fire
    /// in the background: the test fires due deadlines with [`Suite::fire_deadlines`] after
    /// moving the clock.
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Whether appraisal consumes dispatch's feed (on by default; off for tests of what
    /// happens before it does, or of a rebuild).
    pub fn consume(mut self, consume: bool) -> Self {
        self.consume = consume;
        self
    }

    /// How often dispatch's live streams re-read the outbox without a notification.
    pub fn feed_poll(mut self, every: Duration) -> Self {
        self.feed_poll = every;
        self
    }

    /// Starts the roster with the Wuchang seed, then dispatch calling it, then appraisal
    /// consuming dispatch's feed, then personnel and consultation calling the roster, each on
    /// `127.0.0.1:0` with a fresh database and development auth. Returns once all five
    /// accept connections.
    pub async fn start(self) -> Suite {
        let roster_db = TestDatabase::create("e2e_roster").await;
        let roster = minhu_roster::Application::build(minhu_roster::Config {
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            database: patient(roster_db.config()),
            auth: AuthConfig::dev(),
            server: self.server.clone(),
        })
        .await
        .expect("building the roster");
        minhu_roster::seed::load(roster.pool()).await.expect("loading the seed roster");
        let roster_addr = roster.local_addr();
        let roster = Running::spawn(roster_addr, roster_db, |stop| roster.run_until(stop)).await;

        let dispatch_db = TestDatabase::create("e2e_dispatch").await;
        let redis = minhu_testkit::TestRedis::create().await;
        let mut config = minhu_dispatch::Config {
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            database: patient(dispatch_db.config()),
            auth: AuthConfig::dev(),
            server: self.server.clone(),
            roster_url: format!("http://{roster_addr}"),
            identity: minhu_dispatch::clients::ServiceIdentity::Dev,
            reporter_key: minhu_dispatch::ReporterKey::dev(),
            // On real time the engine fires by itself; on a manual clock only when the test
            // says. Either way in this test's own index namespace.
            deadlines: minhu_dispatch::DeadlineConfig {
                policy: self.policy,
                redis_url: redis.url().into(),
                namespace: redis.prefix().into(),
                fire_in_background: self.clock.is_none(),
                ..Default::default()
            },
            attachments: Default::default(),
            feed: Default::default(),
            clock: match &self.clock {
                Some(clock) => Arc::new(clock.clone()),
                None => Arc::new(minhu_dispatch::SystemClock),
            },
        };
        // Watches wake on LISTEN/NOTIFY; the polling fallback only bounds a missed one.
        config.feed.poll = self.feed_poll;
        let dispatch = minhu_dispatch::Application::build(config).await.expect("building dispatch");
        let dispatch_addr = dispatch.local_addr();
        let engine = dispatch.deadline_engine().clone();
        let dispatch_pool = dispatch.pool().clone();
        let dispatch = Running::spawn(dispatch_addr, dispatch_db, |stop| dispatch.run_until(stop)).await;

        let appraisal_db = TestDatabase::create("e2e_appraisal").await;
        let appraisal = minhu_appraisal::Application::build(minhu_appraisal::Config {
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            database: patient(appraisal_db.config()),
            auth: AuthConfig::dev(),
            server: self.server.clone(),
            feed: minhu_appraisal::FeedSource {
                dispatch_url: format!("http://{dispatch_addr}"),
                identity: minhu_appraisal::ServiceIdentity::dev("minhu-appraisal"),
                tls: Default::default(),
            },
            consume: self.consume,
        })
        .await
        .expect("building appraisal");
        let appraisal_addr = appraisal.local_addr();
        let appraisal_pool = appraisal.pool().clone();
        let appraisal = Running::spawn(appraisal_addr, appraisal_db, |stop| appraisal.run_until(stop)).await;

        // Consultation calls the roster only; its deadlines share this test's Redis under
        // their own namespace, on the suite's one clock.
        let consultation_db = TestDatabase::create("e2e_consultation").await;
        let consultation = minhu_consultation::Application::build(minhu_consultation::Config {
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            database: patient(consultation_db.config()),
            auth: AuthConfig::dev(),
            server: self.server.clone(),
            roster_url: format!("http://{roster_addr}"),
            identity: minhu_grpc::ServiceIdentity::dev(minhu_consultation::SERVICE_NAME),
            roster_tls: Default::default(),
            deadlines: minhu_consultation::DeadlineConfig {
                redis_url: redis.url().into(),
                namespace: format!("{}consultation:", redis.prefix()),
                fire_in_background: self.clock.is_none(),
                ..Default::default()
            },
            feed: Default::default(),
            // Dispatch's manual clock through its adapter to the deadline library's clock
            // trait, which consultation takes directly.
            clock: match &self.clock {
                Some(clock) => Arc::new(minhu_dispatch::deadlines::EngineClock(Arc::new(clock.clone()))),
                None => Arc::new(minhu_consultation::SystemClock),
            },
        })
        .await
        .expect("building consultation");
        let consultation_addr = consultation.local_addr();
        let consultation =
            Running::spawn(consultation_addr, consultation_db, |stop| consultation.run_until(stop)).await;

        // Personnel calls the roster; on a manual clock it shares dispatch's time.
        let personnel_db = TestDatabase::create("e2e_personnel").await;
        let mut config = minhu_personnel::Config::local(
            "127.0.0.1:0".parse().expect("a socket address"),
            patient(personnel_db.config()),
            format!("http://{roster_addr}"),
        );
        config.redis_url = redis.url().into();
        config.deadline_namespace = format!("{}personnel:", redis.prefix());
        config.fire_in_background = self.clock.is_none();
        if let Some(clock) = &self.clock {
            config.clock = Arc::new(minhu_dispatch::deadlines::EngineClock(Arc::new(clock.clone())));
        }
        let personnel = minhu_personnel::Application::build(config).await.expect("building personnel");
        let personnel_addr = personnel.local_addr();
        let personnel = Running::spawn(personnel_addr, personnel_db, |stop| personnel.run_until(stop)).await;

        Suite {
            consultation,
            personnel,
            appraisal,
            dispatch,
            roster,
            engine,
            clock: self.clock,
            dispatch_pool,
            appraisal_pool,
            _redis: redis,
        }
    }
}

/// The services, started together; dropping it stops them.
#[derive(Debug)]
pub struct Suite {
    // Declared (and so dropped) dependents first, as `stop` does.
    consultation: Running,
    appraisal: Running,
    dispatch: Running,
    personnel: Running,
    roster: Running,
    engine: DeadlineEngine,
    clock: Option<ManualClock>,
    dispatch_pool: sqlx::PgPool,
    appraisal_pool: sqlx::PgPool,
    _redis: minhu_testkit::TestRedis,
}

impl Suite {
    /// Starts the suite with the default deadlines on real time (see [`SuiteBuilder::start`]).
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A suite to configure before starting.
    pub fn builder() -> SuiteBuilder {
        SuiteBuilder::default()
    }

    /// The manual clock dispatch runs on, if the suite was started with one.
    pub fn clock(&self) -> Option<&ManualClock> {
        self.clock.as_ref()
    }

    /// One pass of dispatch's deadline engine at its clock's time (for a suite on a
    /// [`ManualClock`]); how many deadlines took effect.
    pub async fn fire_deadlines(&self) -> usize {
        self.engine.fire_due().await.expect("firing due deadlines")
    }

    /// Dispatch's deadline engine (a rebuild, the backlog count).
    pub fn deadline_engine(&self) -> &DeadlineEngine {
        &self.engine
    }

    /// Dispatch's database (tests that look behind the API).
    pub fn dispatch_pool(&self) -> &sqlx::PgPool {
        &self.dispatch_pool
    }

    /// Appraisal's database.
    pub fn appraisal_pool(&self) -> &sqlx::PgPool {
        &self.appraisal_pool
    }

    /// Every service the suite serves, by its full contract name, with a channel to it.
    pub fn services(&self) -> Vec<(&'static str, Channel)> {
        vec![
            ("minhu.roster.v1.RosterService", self.roster_service().channel()),
            ("minhu.dispatch.v1.DispatchService", self.dispatch_service().channel()),
            ("minhu.appraisal.v1.AppraisalService", self.appraisal_service().channel()),
            ("minhu.consultation.v1.ConsultationService", self.consultation_service().channel()),
            ("minhu.personnel.v1.PersonnelService", self.personnel_service().channel()),
        ]
    }

    /// Personnel (人事任免建议).
    pub fn personnel_service(&self) -> &Running {
        &self.personnel
    }

    /// The roster (部门名册).
    pub fn roster_service(&self) -> &Running {
        &self.roster
    }

    /// Dispatch (案件调度).
    pub fn dispatch_service(&self) -> &Running {
        &self.dispatch
    }

    /// Appraisal (绩效考评).
    pub fn appraisal_service(&self) -> &Running {
        &self.appraisal
    }

    /// Consultation (规划参与/决策建议).
    pub fn consultation_service(&self) -> &Running {
        &self.consultation
    }

    /// An appraisal client acting as `principal`.
    pub fn appraisal(&self, principal: &Principal) -> AppraisalClient {
        AppraisalServiceClient::with_interceptor(self.appraisal.channel(), tokens::bearer(principal))
    }

    /// A roster client acting as `principal`.
    pub fn roster(&self, principal: &Principal) -> RosterClient {
        RosterServiceClient::with_interceptor(self.roster.channel(), tokens::bearer(principal))
    }

    /// A dispatch client acting as `principal`.
    pub fn dispatch(&self, principal: &Principal) -> DispatchClient {
        DispatchServiceClient::with_interceptor(self.dispatch.channel(), tokens::bearer(principal))
    }

    /// Dispatch as the dispatcher of 中南路街's command centre.
    pub fn street(&self) -> DispatchClient {
        self.dispatch(&tokens::street_dispatcher(STREET))
    }

    /// Dispatch as the dispatcher of `department_id`.
    pub fn department(&self, department_id: &str) -> DispatchClient {
        self.dispatch(&tokens::department_dispatcher(department_id))
    }

    /// Dispatch as field officer `person_id` of `department_id`.
    pub fn officer(&self, person_id: &str, department_id: &str) -> DispatchClient {
        self.dispatch(&tokens::field_officer(person_id, department_id))
    }

    /// Dispatch as the district platform's operator (reads everything).
    pub fn district(&self) -> DispatchClient {
        self.dispatch(&tokens::district_operator())
    }

    /// Stops the services, dependents first (dispatch calls the roster while it drains),
    /// and waits for each drain: every server span has ended when this returns.
    pub async fn stop(mut self) {
        self.consultation.stop().await.expect("consultation stopped serving with an error");
        self.appraisal.stop().await.expect("appraisal stopped serving with an error");
        self.personnel.stop().await.expect("personnel stopped serving with an error");
        self.dispatch.stop().await.expect("dispatch stopped serving with an error");
        self.roster.stop().await.expect("the roster stopped serving with an error");
    }
}
