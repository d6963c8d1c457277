//! Spawning a seeded roster and a dispatch pointed at it, on fresh databases, and clients
//! for each kind of caller.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use minhu_deadlines::{DeadlineEngine, Deadlines};
use minhu_dispatch::{Application, Config, DeadlineConfig, ManualClock, clients::ServiceIdentity};
use minhu_grpc::{AuthConfig, Principal, ServerConfig, auth::BearerToken};
use minhu_proto::{common::v1 as common, dispatch::v1 as pb};
use minhu_testkit::{TestDatabase, TestRedis, tokens};
use pb::dispatch_service_client::DispatchServiceClient;
use tonic::{Code, codegen::InterceptedService, transport::Channel};
use tonic_types::StatusExt as _;

pub type Client = DispatchServiceClient<InterceptedService<Channel, BearerToken>>;

pub(crate) const STREET: &str = "zhongnanlu";
/// 海运社区's centre: the pump room.
pub const PUMP_ROOM: (f64, f64) = (30.5335, 114.3378);

pub struct TestApp {
    pub pool: sqlx::PgPool,
    pub clock: ManualClock,
    /// Dispatch's deadline engine; it fires only when a test says ([`TestApp::fire_due`])
    /// unless the test turned `fire_in_background` back on.
    pub engine: DeadlineEngine,
    /// Dispatch's deadline index, in this test's own Redis namespace.
    pub deadlines: Deadlines,
    pub redis: TestRedis,
    /// The watch hub's database meter.
    pub watch_meter: minhu_dispatch::WatchMeter,
    channel: Channel,
    _roster_db: TestDatabase,
    _db: TestDatabase,
    _shutdown: Vec<tokio::sync::oneshot::Sender<()>>,
    roster: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A roster in front of the roster: it passes every call through, except that once
/// [`hold`](Self::hold) is called, the FindStation calls after the first `pass` wait until
/// [`release`](Self::release) — a roster that has become slow.
#[derive(Clone, Default)]
pub struct RosterGate {
    pass: Arc<std::sync::atomic::AtomicUsize>,
    holding: Arc<std::sync::atomic::AtomicBool>,
    held: Arc<std::sync::atomic::AtomicUsize>,
    released: Arc<tokio::sync::Notify>,
}

impl RosterGate {
    /// Holds FindStation calls from now on, after letting `pass` more through.
    pub fn hold(&self, pass: usize) {
        self.pass.store(pass, std::sync::atomic::Ordering::SeqCst);
        self.holding.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Lets the held calls (and all later ones) through.
    pub fn release(&self) {
        self.holding.store(false, std::sync::atomic::Ordering::SeqCst);
        self.released.notify_waiters();
    }

    /// Waits until a call is held.
    pub async fn until_held(&self) {
        let held = async {
            while self.held.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        };
        tokio::time::timeout(WAIT, held).await.expect("no roster call was held");
    }

    /// Serves the gate in front of the roster at `roster`; its address.
    async fn serve(self, roster: std::net::SocketAddr) -> std::net::SocketAddr {
        let channel = Channel::from_shared(format!("http://{roster}")).unwrap().connect_lazy();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = tonic::service::Routes::new(GatedRoster { gate: self, channel });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    }

    async fn wait(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.holding.load(SeqCst) || self.pass.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok() {
            return;
        }
        let released = self.released.notified();
        self.held.fetch_add(1, SeqCst);
        if self.holding.load(SeqCst) {
            released.await;
        }
    }
}

#[derive(Clone)]
struct GatedRoster {
    gate: RosterGate,
    channel: Channel,
}

impl tonic::server::NamedService for GatedRoster {
    const NAME: &'static str = "minhu.roster.v1.RosterService";
}

impl tonic::codegen::Service<tonic::codegen::http::Request<tonic::body::Body>> for GatedRoster {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        let (gate, mut channel) = (self.gate.clone(), self.channel.clone());
        Box::pin(async move {
            if request.uri().path().ends_with("/FindStation") {
                gate.wait().await;
            }
            if let Err(e) = std::future::poll_fn(|cx| channel.poll_ready(cx)).await {
                return Ok(tonic::Status::unavailable(e.to_string()).into_http());
            }
            Ok(match channel.call(request).await {
                Ok(response) => response,
                Err(e) => tonic::Status::unavailable(e.to_string()).into_http(),
            })
        })
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A dispatch whose roster answers go through `gate`.
    pub async fn spawn_gated(gate: RosterGate) -> Self {
        Self::spawn_inner(|_| {}, Some(gate)).await
    }

    /// A dispatch whose config `configure` adjusted last.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_inner(configure, None).await
    }

    async fn spawn_inner(configure: impl FnOnce(&mut Config), gate: Option<RosterGate>) -> Self {
        let roster_db = TestDatabase::create("roster").await;
        let roster = minhu_roster::Application::build(minhu_roster::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: roster_db.config(),
            auth: AuthConfig::dev(),
            server: ServerConfig::default(),
        })
        .await
        .expect("building the roster");
        minhu_roster::seed::load(roster.pool()).await.expect("loading the seed");
        let mut roster_addr = roster.local_addr();
        let (roster_tx, roster_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(roster.run_until(async {
            let _ = roster_rx.await;
        }));
        if let Some(gate) = gate {
            roster_addr = gate.serve(roster_addr).await;
        }

        let db = TestDatabase::create("dispatch").await;
        let redis = TestRedis::create().await;
        let clock = ManualClock::new(Utc::now());
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: db.config(),
            auth: AuthConfig::dev(),
            server: ServerConfig::default(),
            roster_url: format!("http://{roster_addr}"),
            identity: ServiceIdentity::Dev,
            reporter_key: minhu_dispatch::ReporterKey::dev(),
            deadlines: DeadlineConfig {
                redis_url: redis.url().into(),
                namespace: redis.prefix().into(),
                fire_in_background: false,
                ..Default::default()
            },
            attachments: Default::default(),
            feed: Default::default(),
            clock: Arc::new(clock.clone()),
        };
        config.feed.poll = std::time::Duration::from_millis(200);
        configure(&mut config);
        let app = Application::build(config).await.expect("building dispatch");
        let addr = app.local_addr();
        let pool = app.pool().clone();
        let (engine, deadlines) = (app.deadline_engine().clone(), app.deadlines().clone());
        let watch_meter = app.state().watch_meter();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let channel = minhu_testkit::connect(addr).await;
        Self {
            pool,
            clock,
            engine,
            deadlines,
            redis,
            watch_meter,
            channel,
            _roster_db: roster_db,
            _db: db,
            _shutdown: vec![tx],
            roster: Some(roster_tx),
        }
    }

    /// Stops the roster (a roster outage); dispatch's calls to it fail from now on.
    pub fn stop_roster(&mut self) {
        self.roster.take();
    }

    /// One pass of the deadline engine at the clock's time; how many deadlines took effect.
    pub async fn fire_due(&self) -> usize {
        self.engine.fire_due().await.expect("firing due deadlines")
    }

    pub fn client(&self, principal: &Principal) -> Client {
        DispatchServiceClient::with_interceptor(self.channel.clone(), tokens::bearer(principal))
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// The connection every client of this app shares (for health and other services).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A client presenting `token` as it is (short-lived tokens, for expiry).
    pub fn client_with_token(&self, token: &str) -> Client {
        DispatchServiceClient::with_interceptor(self.channel.clone(), BearerToken::new(token))
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    pub fn street(&self) -> Client {
        self.client(&tokens::street_dispatcher(STREET))
    }

    pub fn department(&self, id: &str) -> Client {
        self.client(&tokens::department_dispatcher(id))
    }

    pub fn now(&self) -> DateTime<Utc> {
        use minhu_dispatch::Clock as _;
        self.clock.now()
    }

    /// Runs the check-in close escalation of a call at the clock's time.
    pub async fn close_check_in(&self, call_id: &str) -> bool {
        let mut tx = self.pool.begin().await.unwrap();
        let done =
            minhu_dispatch::escalation::close_check_in(&mut tx, call_id.parse().unwrap(), self.now()).await.unwrap();
        tx.commit().await.unwrap();
        done
    }

    /// Runs the sign-deadline escalation of a call at the clock's time.
    pub async fn mark_sign_overdue(&self, call_id: &str) -> bool {
        let mut tx = self.pool.begin().await.unwrap();
        let done =
            minhu_dispatch::escalation::mark_sign_overdue(&mut tx, call_id.parse().unwrap(), self.now()).await.unwrap();
        tx.commit().await.unwrap();
        done
    }

    /// Runs the task-window escalation of a task at the clock's time.
    pub async fn mark_task_overdue(&self, task_id: &str) -> bool {
        let mut tx = self.pool.begin().await.unwrap();
        let done =
            minhu_dispatch::escalation::mark_task_overdue(&mut tx, task_id.parse().unwrap(), self.now()).await.unwrap();
        tx.commit().await.unwrap();
        done
    }

    /// Every event of the feed so far, in order (read over StreamEvents as appraisal would).
    pub async fn events(&self) -> Vec<pb::Event> {
        use tokio_stream::StreamExt as _;
        let (head,): (i64,) = sqlx::query_as("SELECT last FROM event_counter").fetch_one(&self.pool).await.unwrap();
        let mut feed = self
            .client(&tokens::service("appraisal"))
            .stream_events(pb::StreamEventsRequest::default())
            .await
            .unwrap()
            .into_inner();
        let mut events = Vec::new();
        while events.last().is_none_or(|e: &pb::Event| e.sequence < head) {
            let message = tokio::time::timeout(WAIT, feed.next()).await.expect("the feed went quiet").unwrap().unwrap();
            events.extend(message.event);
        }
        events
    }

    /// The events of one case so far, in order.
    pub async fn events_of(&self, case_id: &str) -> Vec<pb::Event> {
        self.events().await.into_iter().filter(|e| e.case_id == case_id).collect()
    }

    /// A triaged case with a call to each of `departments` (unsigned), and the calls.
    pub async fn called_case(&self, departments: &[&str]) -> (pb::Case, Vec<pb::Call>) {
        let case = self.triaged_case().await;
        let now = self.now();
        let started = self
            .street()
            .start_call(pb::StartCallRequest {
                case_id: case.id.clone(),
                calls: departments.iter().map(|d| call_to(d, now)).collect(),
                request_id: request_id(),
            })
            .await
            .unwrap()
            .into_inner();
        (started.case.unwrap(), started.calls)
    }

    /// Signs a call as its department.
    pub async fn sign(&self, call: &pb::Call) -> pb::Call {
        self.department(&call.department_id)
            .sign_call(pb::SignCallRequest { call_id: call.id.clone(), request_id: request_id() })
            .await
            .unwrap()
            .into_inner()
    }

    /// A case in HANDLING: signed calls to `departments`, a consultation with one task each
    /// (window: now to a day later). Returns the case id, the calls and the tasks.
    pub async fn handling_case(&self, departments: &[&str]) -> (String, Vec<pb::Call>, Vec<pb::Task>) {
        let (case, calls) = self.called_case(departments).await;
        for call in &calls {
            self.sign(call).await;
        }
        let now = self.now();
        let consulted = self
            .street()
            .record_consultation(pb::RecordConsultationRequest {
                case_id: case.id.clone(),
                consultation: Some(pb::Consultation {
                    meeting_time: ts(now),
                    attendee_person_ids: departments.iter().map(|d| officer(d)).collect(),
                    analysis: "联合处置".into(),
                    ..Default::default()
                }),
                tasks: calls
                    .iter()
                    .map(|c| pb::Task {
                        call_id: c.id.clone(),
                        description: format!("{} 的任务", c.department_id),
                        window: Some(common::TimeRange { start_time: ts(now), end_time: ts(now + TimeDelta::days(1)) }),
                        ..Default::default()
                    })
                    .collect(),
                request_id: request_id(),
            })
            .await
            .unwrap()
            .into_inner();
        (case.id, calls, consulted.tasks)
    }

    /// A case in REPORTED: signed calls to `departments`, one task each, fed back and
    /// accepted, and the case report submitted; the reporter not called back yet.
    pub async fn reported_case(&self, departments: &[&str]) -> String {
        let (case_id, _, tasks) = self.handling_case(departments).await;
        let mut results = Vec::new();
        for task in &tasks {
            let feedback = self
                .department(&task.department_id)
                .submit_feedback(pb::SubmitFeedbackRequest {
                    task_id: task.id.clone(),
                    text: "已处置".into(),
                    handling_opinion: "已落实".into(),
                    request_id: request_id(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            self.street()
                .review_feedback(pb::ReviewFeedbackRequest {
                    feedback_id: feedback.id.clone(),
                    decision: pb::ReviewDecision::Accept as i32,
                    request_id: request_id(),
                    ..Default::default()
                })
                .await
                .unwrap();
            results.push(pb::DepartmentResult {
                department_id: task.department_id.clone(),
                summary: "完成".into(),
                feedback_ids: vec![feedback.id],
            });
        }
        self.street()
            .submit_case_report(pb::SubmitCaseReportRequest {
                report: Some(pb::CaseReport {
                    case_id: case_id.clone(),
                    summary: "处置完毕".into(),
                    department_results: results,
                    ..Default::default()
                }),
                request_id: request_id(),
                ..Default::default()
            })
            .await
            .unwrap();
        case_id
    }

    /// A case in RECTIFYING: every department of `departments` fed back, accepted, rated
    /// DISSATISFIED and required to rectify. Returns the case id and the rectifications.
    pub async fn rectifying_case(&self, departments: &[&str]) -> (String, Vec<pb::Rectification>) {
        self.rectifying_case_due(departments, Some(TimeDelta::days(7))).await
    }

    /// The same, each rectification due `due` from now, or with no due time named (the
    /// policy's working days) when `None`.
    pub async fn rectifying_case_due(
        &self,
        departments: &[&str],
        due: Option<TimeDelta>,
    ) -> (String, Vec<pb::Rectification>) {
        let case_id = self.reported_case(departments).await;
        // 回访 before 评价.
        self.street()
            .record_callback(pb::RecordCallbackRequest {
                case_id: case_id.clone(),
                callback: Some(pb::Callback {
                    method: pb::CallbackMethod::Phone as i32,
                    reached: true,
                    reporter_satisfaction: pb::Satisfaction::Satisfied as i32,
                    callback_time: ts(self.now()),
                    ..Default::default()
                }),
                request_id: request_id(),
            })
            .await
            .unwrap();
        let mut rectifications = Vec::new();
        for d in departments {
            self.street()
                .rate_department(pb::RateDepartmentRequest {
                    case_id: case_id.clone(),
                    department_id: (*d).into(),
                    satisfaction: pb::Satisfaction::Dissatisfied as i32,
                    comment: "未按协商意见落实".into(),
                    request_id: request_id(),
                })
                .await
                .unwrap();
            let rect = self
                .street()
                .require_rectification(pb::RequireRectificationRequest {
                    case_id: case_id.clone(),
                    department_id: (*d).into(),
                    requirement: format!("{d} 一周内整改到位"),
                    due_time: due.and_then(|due| ts(self.now() + due)),
                    request_id: request_id(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            rectifications.push(rect);
        }
        (case_id, rectifications)
    }

    /// A new case at the pump room, triaged to start the call procedure. Each further one of
    /// a test lies 60 m further north: at one place it would be a repeat (重复诉求), and
    /// departments are called for a cluster's lead only.
    pub async fn triaged_case(&self) -> pb::Case {
        static PLACES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let k = PLACES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 8;
        let mut request = intake(&request_id());
        if let Some(l) = request.case.as_mut().and_then(|c| c.place.as_mut()).and_then(|p| p.location.as_mut()) {
            l.latitude += k as f64 * 0.00055;
        }
        let case = self.street().create_case(request).await.unwrap().into_inner();
        self.street()
            .triage_case(pb::TriageCaseRequest {
                case_id: case.id.clone(),
                decision: pb::TriageDecision::StartCall as i32,
                request_id: request_id(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn trail_len(&self, case_id: &str) -> usize {
        self.street()
            .list_trail_entries(pb::ListTrailEntriesRequest {
                case_id: case_id.into(),
                page_size: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries
            .len()
    }

    pub async fn case(&self, case_id: &str) -> pb::Case {
        self.street().get_case(pb::GetCaseRequest { case_id: case_id.into() }).await.unwrap().into_inner()
    }
}

/// How long a test waits for something live before it fails.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The case of another street (水果湖街道, at its centre), recorded by that street.
pub fn intake_elsewhere(request_id: &str) -> pb::CreateCaseRequest {
    let mut request = intake(request_id);
    if let Some(c) = request.case.as_mut() {
        c.category = "市场监管/无照经营".into();
        c.title = "水果湖无照经营".into();
        c.place = Some(pb::Place { address: "水果湖街某路口".into(), location: point(SHUIGUOHU) });
    }
    request
}

/// 水果湖街道's centre.
pub const SHUIGUOHU: (f64, f64) = (30.5540, 114.3470);

pub fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

pub fn time(t: prost_types::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap()
}

pub fn point(p: (f64, f64)) -> Option<common::GeoPoint> {
    Some(common::GeoPoint { latitude: p.0, longitude: p.1 })
}

pub fn intake(request_id: &str) -> pb::CreateCaseRequest {
    pb::CreateCaseRequest {
        case: Some(pb::Case {
            channel: pb::Channel::GridWorker as i32,
            category: "城市管理/违法建设".into(),
            title: "海运宿舍水泵房被违规占用".into(),
            description: "水泵房被改成商铺，墙体被打通，产权不清".into(),
            place: Some(pb::Place {
                address: "中南路街海运宿舍3栋水泵房".into(), location: point(PUMP_ROOM)
            }),
            urgency: pb::Urgency::Normal as i32,
            reporter: Some(pb::Reporter {
                name: "张三".into(),
                phone: "13812341234".into(),
                id_number: "420106199001011234".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        request_id: request_id.into(),
        ..Default::default()
    }
}

/// The people the seed gives each department (officer 1 of the street's station; guihua
/// has no station).
pub fn officer(department: &str) -> String {
    let number = if department == "guihua" {
        "guihua-01".to_owned()
    } else {
        minhu_roster::seed::officer_number(&format!("{STREET}-{department}"), 1)
    };
    minhu_roster::seed::person_id(&number).to_string()
}

pub fn qualification(department: &str) -> common::Qualification {
    match department {
        "gongan" => common::Qualification::PoliceOfficer,
        "guihua" => common::Qualification::Surveyor,
        "fangguan" => common::Qualification::BuildingSafetyAppraiser,
        _ => common::Qualification::LawEnforcementCertificate,
    }
}

pub fn call_to(department: &str, now: DateTime<Utc>) -> pb::Call {
    pb::Call {
        department_id: department.into(),
        matters: format!("{department}: 水泵房违规占用的处置"),
        expected_goal: "恢复水泵房原状".into(),
        staff_requirement: Some(pb::StaffRequirement {
            count: 1,
            qualification: qualification(department) as i32,
            note: String::new(),
        }),
        report_time: ts(now + TimeDelta::hours(2)),
        report_place: Some(pb::Place { address: "海运宿舍3栋".into(), location: point(PUMP_ROOM) }),
        ..Default::default()
    }
}

pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The precondition reasons of a FAILED_PRECONDITION status.
pub fn reasons(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    status
        .get_details_precondition_failure()
        .map(|f| f.violations.into_iter().map(|v| v.r#type).collect())
        .unwrap_or_default()
}
