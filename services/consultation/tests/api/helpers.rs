//! Spawning a seeded roster and a consultation pointed at it, on fresh databases, and
//! clients for each kind of caller.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use minhu_consultation::{Application, Config, DeadlineConfig, ManualClock};
use minhu_deadlines::{CalendarConfig, DeadlineEngine};
use minhu_grpc::{
    AuthConfig, OrgKind, Organization, Principal, Role, ServerConfig, ServiceIdentity, auth::BearerToken,
};
use minhu_proto::{common::v1 as common, consultation::v1 as pb};
use minhu_testkit::{TestDatabase, TestRedis, tokens};
use pb::consultation_service_client::ConsultationServiceClient;
use tokio_stream::StreamExt as _;
use tonic::{Code, codegen::InterceptedService, transport::Channel};
use tonic_types::StatusExt as _;

pub type Client = ConsultationServiceClient<InterceptedService<Channel, BearerToken>>;

/// The planning department (规划分局), the demo's consulting department.
pub const PLANNING: &str = "guihua";
/// The pump room's street.
pub const ZHONGNANLU: &str = "zhongnanlu";
/// A neighbouring street.
pub const SHUIGUOHU: &str = "shuiguohu";
/// A third street, never affected by the pump room.
pub const LIANGDAO: &str = "liangdao";
/// 海运宿舍's pump room (in 中南路街).
pub const PUMP_ROOM: (f64, f64) = (30.5335, 114.3378);
/// 水果湖街's centre.
pub const SHUIGUOHU_CENTRE: (f64, f64) = (30.5540, 114.3470);
/// 粮道街's centre.
pub const LIANGDAO_CENTRE: (f64, f64) = (30.5530, 114.3060);

/// How long a test waits for something the server pushes.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub pool: sqlx::PgPool,
    pub clock: ManualClock,
    pub engine: DeadlineEngine,
    _redis: TestRedis,
    pub addr: std::net::SocketAddr,
    channel: Channel,
    _roster_db: TestDatabase,
    _db: TestDatabase,
    _shutdown: Vec<tokio::sync::oneshot::Sender<()>>,
    roster: Option<(tokio::sync::oneshot::Sender<()>, RosterTask)>,
}

type RosterTask = tokio::task::JoinHandle<Result<(), minhu_grpc::server::ServeError>>;

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A consultation whose config `configure` adjusted last.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
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
        let roster_addr = roster.local_addr();
        let (roster_tx, roster_rx) = tokio::sync::oneshot::channel::<()>();
        let roster_task = tokio::spawn(roster.run_until(async {
            let _ = roster_rx.await;
        }));

        let db = TestDatabase::create("consultation").await;
        let redis = TestRedis::create().await;
        let clock = ManualClock::new(minhu_consultation::to_micros(Utc::now()));
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: db.config(),
            auth: AuthConfig::dev(),
            server: ServerConfig::default(),
            roster_url: format!("http://{roster_addr}"),
            identity: ServiceIdentity::dev(minhu_consultation::SERVICE_NAME),
            roster_tls: Default::default(),
            deadlines: DeadlineConfig {
                redis_url: redis.url().into(),
                namespace: redis.prefix().into(),
                fire_in_background: false,
                ..Default::default()
            },
            feed: Default::default(),
            clock: Arc::new(clock.clone()),
        };
        config.feed.poll = Duration::from_millis(200);
        configure(&mut config);
        let app = Application::build(config).await.expect("building consultation");
        let addr = app.local_addr();
        let pool = app.pool().clone();
        let engine = app.deadline_engine().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let channel = minhu_testkit::connect(addr).await;
        Self {
            pool,
            clock,
            engine,
            _redis: redis,
            addr,
            channel,
            _roster_db: roster_db,
            _db: db,
            _shutdown: vec![tx],
            roster: Some((roster_tx, roster_task)),
        }
    }

    /// Stops the roster and waits for it to have drained (an outage from here on).
    pub async fn stop_roster(&mut self) {
        let (tx, task) = self.roster.take().expect("the roster is running");
        let _ = tx.send(());
        task.await.expect("the roster task").expect("the roster drained");
    }

    /// One pass of the deadline engine at the clock's time; how many took effect.
    pub async fn fire_due(&self) -> usize {
        self.engine.fire_due().await.expect("firing due deadlines")
    }

    pub fn client(&self, principal: &Principal) -> Client {
        ConsultationServiceClient::with_interceptor(self.channel.clone(), tokens::bearer(principal))
    }

    /// The planning department's dispatcher.
    pub fn planning(&self) -> Client {
        self.client(&tokens::department_dispatcher(PLANNING))
    }

    /// A street's leader (who signs its opinions).
    pub fn leader(&self, street_id: &str) -> Client {
        self.client(&tokens::street_leader(street_id))
    }

    pub fn district(&self) -> Client {
        self.client(&tokens::district_operator())
    }

    /// A decision on the pump room's future use, affecting 中南路街 (the pump room) and
    /// 水果湖街 (a second place), replies due in `days` working days.
    pub async fn pump_room_decision(&self, days: i32) -> pb::Decision {
        self.planning()
            .create_decision(pb::CreateDecisionRequest {
                decision: Some(pb::Decision {
                    kind: pb::DecisionKind::MajorProject as i32,
                    subject: "海运宿舍泵房后续用途".into(),
                    description: "泵房清退后改作社区议事厅或便民服务点".into(),
                    places: vec![place("海运宿舍泵房", PUMP_ROOM), place("水果湖便民点", SHUIGUOHU_CENTRE)],
                    reply_working_days: days,
                    ..Default::default()
                }),
                request_id: request_id(),
            })
            .await
            .expect("opening the consultation")
            .into_inner()
    }

    /// `street`'s leader gives one opinion item.
    pub async fn opinion(&self, decision: &pb::Decision, street: &str, text: &str) -> pb::DecisionOpinion {
        self.leader(street)
            .submit_decision_opinion(pb::SubmitDecisionOpinionRequest {
                decision_id: decision.id.clone(),
                stance: common::OpinionStance::Conditional as i32,
                text: text.into(),
                request_id: request_id(),
            })
            .await
            .expect("giving an opinion")
            .into_inner()
    }

    /// The planning department answers an item.
    pub async fn answer(
        &self,
        opinion: &pb::DecisionOpinion,
        result: pb::AdoptionResult,
        reason: &str,
    ) -> pb::DecisionOpinion {
        self.planning()
            .record_adoption(pb::RecordAdoptionRequest {
                decision_opinion_id: opinion.id.clone(),
                result: result as i32,
                reason: reason.into(),
                request_id: request_id(),
            })
            .await
            .expect("answering")
            .into_inner()
    }

    pub async fn decision(&self, id: &str) -> pb::Decision {
        self.district().get_decision(pb::GetDecisionRequest { decision_id: id.into() }).await.unwrap().into_inner()
    }

    /// A live watch as `principal`, from `after`.
    pub async fn watch(&self, principal: &Principal, after: i64) -> tonic::Streaming<pb::WatchConsultationsResponse> {
        self.client(principal)
            .watch_consultations(pb::WatchConsultationsRequest { after_sequence: after, subject_id: String::new() })
            .await
            .expect("watching")
            .into_inner()
    }

    /// The feed's head now.
    pub async fn head(&self) -> i64 {
        let (last,): (i64,) = sqlx::query_as("SELECT last FROM event_counter").fetch_one(&self.pool).await.unwrap();
        last
    }
}

/// The next message of a watch, or a failure after [`WAIT`].
pub async fn next(watch: &mut tonic::Streaming<pb::WatchConsultationsResponse>) -> pb::WatchConsultationsResponse {
    tokio::time::timeout(WAIT, watch.next()).await.expect("the watch went quiet").expect("the watch ended").unwrap()
}

/// Messages of a watch until one of `event_type` arrives; that one.
pub async fn next_of(
    watch: &mut tonic::Streaming<pb::WatchConsultationsResponse>,
    event_type: pb::ConsultationEventType,
) -> pb::WatchConsultationsResponse {
    loop {
        let m = next(watch).await;
        if m.event_type == event_type as i32 {
            return m;
        }
    }
}

pub fn place(name: &str, (latitude, longitude): (f64, f64)) -> pb::DecisionPlace {
    pb::DecisionPlace {
        name: name.into(),
        location: Some(common::GeoPoint { latitude, longitude }),
        street_id: String::new(),
    }
}

pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A department's leader (部门领导).
pub fn department_leader(department_id: &str) -> Principal {
    Principal::new(
        "leader-of-".to_owned() + department_id,
        [Role::DepartmentLeader],
        Organization::new(OrgKind::Department, department_id),
    )
}

/// The fields of an INVALID_ARGUMENT, after checking the code.
pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &tonic::Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

/// The reasons of a FAILED_PRECONDITION's violations, after checking the code.
pub fn refusals(status: &tonic::Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    status
        .get_details_precondition_failure()
        .map(|f| f.violations.into_iter().map(|v| (v.r#type, v.subject)).collect())
        .unwrap_or_default()
}

/// The 2026 calendar around 国庆: Oct 1–7 off, Sun Sep 20 and Sat Oct 10 working.
pub fn national_day_2026() -> CalendarConfig {
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    CalendarConfig {
        holidays: (1..=7).map(|d| day(10, d)).collect(),
        make_up_days: vec![day(9, 20), day(10, 10)],
        ..CalendarConfig::default()
    }
}

/// A local (China Standard Time) time in 2026.
pub fn cst(month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    use chrono::TimeZone as _;
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, month, day, hour, minute, 0)
        .unwrap()
        .with_timezone(&Utc)
}
