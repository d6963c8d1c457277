//! Spawning a seeded roster and a dispatch pointed at it, on fresh databases, and clients
//! for each kind of caller.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use minhu_dispatch::{Application, Config, ManualClock, clients::ServiceIdentity};
use minhu_grpc::{AuthConfig, Principal, ServerConfig, auth::BearerToken};
use minhu_proto::{common::v1 as common, dispatch::v1 as pb};
use minhu_testkit::{TestDatabase, tokens};
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
    channel: Channel,
    _roster_db: TestDatabase,
    _db: TestDatabase,
    _shutdown: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
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
        tokio::spawn(roster.run_until(async {
            let _ = roster_rx.await;
        }));

        let db = TestDatabase::create("dispatch").await;
        let clock = ManualClock::new(Utc::now());
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: db.config(),
            auth: AuthConfig::dev(),
            server: ServerConfig::default(),
            roster_url: format!("http://{roster_addr}"),
            identity: ServiceIdentity::Dev,
            reporter_key: minhu_dispatch::ReporterKey::dev(),
            deadlines: Default::default(),
            attachments: Default::default(),
            feed: Default::default(),
            clock: Arc::new(clock.clone()),
        };
        config.feed.poll = std::time::Duration::from_millis(200);
        let app = Application::build(config).await.expect("building dispatch");
        let addr = app.local_addr();
        let pool = app.pool().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let channel = minhu_testkit::connect(addr).await;
        Self { pool, clock, channel, _roster_db: roster_db, _db: db, _shutdown: vec![tx, roster_tx] }
    }

    pub fn client(&self, principal: &Principal) -> Client {
        DispatchServiceClient::with_interceptor(self.channel.clone(), tokens::bearer(principal))
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

    /// A new case at the pump room, triaged to start the call procedure.
    pub async fn triaged_case(&self) -> pb::Case {
        let case = self.street().create_case(intake(&request_id())).await.unwrap().into_inner();
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

pub fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
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
