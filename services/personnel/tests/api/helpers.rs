//! Spawning a seeded roster and a personnel pointed at it, on fresh databases, with a manual
//! clock and the deadline engine fired by hand; clients for each kind of caller.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone as _, Utc};
use minhu_deadlines::{Clock as _, DeadlineEngine};
use minhu_grpc::{AuthConfig, OrgKind, Organization, Principal, Role, ServerConfig, auth::BearerToken};
use minhu_personnel::{Application, Config, ManualClock};
use minhu_proto::{common::v1 as common, personnel::v1 as pb, roster::v1 as roster};
use minhu_roster::seed;
use minhu_testkit::{TestDatabase, TestRedis, tokens};
use pb::personnel_service_client::PersonnelServiceClient;
use tonic::{Code, codegen::InterceptedService, transport::Channel};
use tonic_types::StatusExt as _;

pub type Client = PersonnelServiceClient<InterceptedService<Channel, BearerToken>>;
pub type RosterClient = roster::roster_service_client::RosterServiceClient<InterceptedService<Channel, BearerToken>>;

pub const STREET: &str = "zhongnanlu";
pub const POLICE_STATION: &str = "zhongnanlu-gongan";

/// The roster's serving task.
type RosterTask = tokio::task::JoinHandle<Result<(), minhu_grpc::server::ServeError>>;

pub struct TestApp {
    pub pool: sqlx::PgPool,
    pub clock: ManualClock,
    pub engine: DeadlineEngine,
    pub addr: std::net::SocketAddr,
    channel: Channel,
    roster_channel: Channel,
    _redis: TestRedis,
    _roster_db: TestDatabase,
    _db: TestDatabase,
    _shutdown: Vec<tokio::sync::oneshot::Sender<()>>,
    roster_stop: Option<(tokio::sync::oneshot::Sender<()>, RosterTask)>,
}

/// Monday 2 March 2026, 10:00 China Standard Time.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0).unwrap()
}

impl TestApp {
    pub async fn spawn() -> Self {
        let roster_db = TestDatabase::create("roster").await;
        let roster_app = minhu_roster::Application::build(minhu_roster::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: roster_db.config(),
            auth: AuthConfig::dev(),
            server: ServerConfig::default(),
        })
        .await
        .expect("building the roster");
        seed::load(roster_app.pool()).await.expect("loading the seed");
        let roster_addr = roster_app.local_addr();
        let (roster_tx, roster_rx) = tokio::sync::oneshot::channel::<()>();
        let roster_task = tokio::spawn(roster_app.run_until(async {
            let _ = roster_rx.await;
        }));

        let db = TestDatabase::create("personnel").await;
        let redis = TestRedis::create().await;
        let clock = ManualClock::new(start_time());
        let mut config = Config::local("127.0.0.1:0".parse().unwrap(), db.config(), format!("http://{roster_addr}"));
        config.redis_url = redis.url().into();
        config.deadline_namespace = redis.prefix().into();
        config.fire_in_background = false;
        config.clock = Arc::new(clock.clone());
        let app = Application::build(config).await.expect("building personnel");
        let addr = app.local_addr();
        let pool = app.pool().clone();
        let engine = app.deadline_engine().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let channel = minhu_testkit::connect(addr).await;
        let roster_channel = minhu_testkit::connect(roster_addr).await;
        Self {
            pool,
            clock,
            engine,
            addr,
            channel,
            roster_channel,
            _redis: redis,
            _roster_db: roster_db,
            _db: db,
            _shutdown: vec![tx],
            roster_stop: Some((roster_tx, roster_task)),
        }
    }

    /// Stops the roster (drained): personnel's calls to it fail from now on.
    pub async fn stop_roster(&mut self) {
        if let Some((stop, task)) = self.roster_stop.take() {
            let _ = stop.send(());
            task.await.expect("the roster task").expect("the roster drained");
        }
    }

    pub async fn fire_due(&self) -> usize {
        self.engine.fire_due().await.expect("firing due deadlines")
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    pub fn client(&self, principal: &Principal) -> Client {
        PersonnelServiceClient::with_interceptor(self.channel.clone(), tokens::bearer(principal))
    }

    pub fn roster(&self) -> RosterClient {
        roster::roster_service_client::RosterServiceClient::with_interceptor(
            self.roster_channel.clone(),
            tokens::bearer(&tokens::district_admin()),
        )
    }

    pub fn police(&self) -> Client {
        self.client(&department_leader("gongan"))
    }

    pub fn street(&self) -> Client {
        self.client(&tokens::street_leader(STREET))
    }

    pub fn district(&self) -> Client {
        self.client(&district_personnel())
    }

    /// Files a solicitation about the head of 中南路派出所 (no deadline: the default).
    pub async fn solicit(&self, matter: pb::PersonnelMatter) -> pb::OpinionSolicitation {
        self.police().create_opinion_solicitation(solicitation(matter, &request_id())).await.unwrap().into_inner()
    }

    /// Changes a station's head in the roster (as the district admin).
    pub async fn change_head(&self, station: &str, person: &str) {
        self.roster()
            .update_station(roster::UpdateStationRequest {
                station: Some(roster::Station {
                    id: station.into(),
                    head_person_id: person.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["head_person_id".into()] }),
                request_id: request_id(),
            })
            .await
            .unwrap();
    }
}

pub fn solicitation(matter: pb::PersonnelMatter, request_id: &str) -> pb::CreateOpinionSolicitationRequest {
    pb::CreateOpinionSolicitationRequest {
        solicitation: Some(pb::OpinionSolicitation {
            station_id: POLICE_STATION.into(),
            street_id: STREET.into(),
            person_id: head(POLICE_STATION),
            position: common::Position::StationHead as i32,
            matter: matter as i32,
            proposal: "拟对中南路派出所所长进行年度考核，考核等次拟定为优秀".into(),
            ..Default::default()
        }),
        request_id: request_id.into(),
    }
}

/// A leader of a department.
pub fn department_leader(department: &str) -> Principal {
    Principal::new(
        format!("{department}-leader"),
        [Role::DepartmentLeader],
        Organization::new(OrgKind::Department, department),
    )
}

/// The district's organisation/personnel officer.
pub fn district_personnel() -> Principal {
    Principal::new("district-personnel", [Role::PersonnelOfficer], Organization::new(OrgKind::District, "district"))
}

/// A person of a department acting for themselves.
pub fn person(person_id: &str, department: &str) -> Principal {
    Principal::new(person_id, [Role::FieldOfficer], Organization::new(OrgKind::Department, department))
}

/// The head of a seeded station.
pub fn head(station: &str) -> String {
    seed::person_id(&seed::officer_number(station, 0)).to_string()
}

/// Officer `i` of a seeded station.
pub fn officer(station: &str, i: usize) -> String {
    seed::person_id(&seed::officer_number(station, i)).to_string()
}

/// Street staff member `i` of a seeded street.
pub fn staff(street: &str, i: usize) -> String {
    seed::person_id(&seed::staff_number(street, i)).to_string()
}

/// The resident (常驻) police officer of 中南路街.
pub fn secondee() -> String {
    officer(POLICE_STATION, 1)
}

pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn time(t: prost_types::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap()
}

pub fn day(y: i32, m: i32, d: i32) -> Option<common::Date> {
    Some(common::Date { year: y, month: m, day: d })
}

/// The precondition violation types of a FAILED_PRECONDITION status.
pub fn reasons(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    status
        .get_details_precondition_failure()
        .map(|f| f.violations.into_iter().map(|v| v.r#type).collect())
        .unwrap_or_default()
}

/// The fields of an INVALID_ARGUMENT status.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// A NOT_FOUND answer with the id replaced, to compare a foreign object's with a missing one's.
pub fn not_found_shape(status: &tonic::Status, id: &str) -> (Code, String, Vec<u8>) {
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let details = String::from_utf8_lossy(status.details()).replace(id, "<id>").into_bytes();
    (status.code(), status.message().replace(id, "<id>"), details)
}

/// How many rows a table has.
pub async fn count(pool: &sqlx::PgPool, table: &str) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"))).fetch_one(pool).await.unwrap();
    n
}
