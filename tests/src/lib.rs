//! The end-to-end harness: the Minhu services together, in the test process, as the suite
//! binary runs them — each on its own `127.0.0.1:0` listener with its own fresh database,
//! accepting development tokens, and talking to each other over real gRPC.
//!
//! [`Suite::start`] brings up the seeded roster, then dispatch pointed at it, and hands out
//! their addresses and typed clients for any caller ([`minhu_testkit::tokens`] has the
//! personas). Each service is one [`Running`]; a later service (appraisal, which follows
//! dispatch's feed) is one more field built the same way after the services it depends on,
//! and stopped before them.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use minhu_grpc::{AuthConfig, Principal, ServerConfig, auth::BearerToken, server::ServeError};
use minhu_proto::{
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

/// The services, started together; dropping it stops them.
#[derive(Debug)]
pub struct Suite {
    // Declared (and so dropped) dependents first, as `stop` does.
    dispatch: Running,
    roster: Running,
    _redis: minhu_testkit::TestRedis,
}

impl Suite {
    /// Starts the roster with the Wuchang seed, then dispatch calling it, each on
    /// `127.0.0.1:0` with a fresh database and development auth. Returns once both accept
    /// connections.
    pub async fn start() -> Self {
        let roster_db = TestDatabase::create("e2e_roster").await;
        let roster = minhu_roster::Application::build(minhu_roster::Config {
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            database: roster_db.config(),
            auth: AuthConfig::dev(),
            server: ServerConfig::default(),
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
            database: dispatch_db.config(),
            auth: AuthConfig::dev(),
            server: ServerConfig::default(),
            roster_url: format!("http://{roster_addr}"),
            identity: minhu_dispatch::clients::ServiceIdentity::Dev,
            reporter_key: minhu_dispatch::ReporterKey::dev(),
            // The engine fires by itself, on real time, in this test's own index namespace.
            deadlines: minhu_dispatch::DeadlineConfig {
                redis_url: redis.url().into(),
                namespace: redis.prefix().into(),
                ..Default::default()
            },
            attachments: Default::default(),
            feed: Default::default(),
            clock: Arc::new(minhu_dispatch::SystemClock),
        };
        // Watches wake on LISTEN/NOTIFY; the polling fallback only bounds a missed one.
        config.feed.poll = Duration::from_millis(200);
        let dispatch = minhu_dispatch::Application::build(config).await.expect("building dispatch");
        let dispatch_addr = dispatch.local_addr();
        let dispatch = Running::spawn(dispatch_addr, dispatch_db, |stop| dispatch.run_until(stop)).await;

        Self { dispatch, roster, _redis: redis }
    }

    /// The roster (部门名册).
    pub fn roster_service(&self) -> &Running {
        &self.roster
    }

    /// Dispatch (案件调度).
    pub fn dispatch_service(&self) -> &Running {
        &self.dispatch
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
        self.dispatch.stop().await.expect("dispatch stopped serving with an error");
        self.roster.stop().await.expect("the roster stopped serving with an error");
    }
}
