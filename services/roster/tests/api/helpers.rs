//! Spawning a roster on a fresh database, and clients for each kind of caller.

use minhu_grpc::{AuthConfig, Principal, ServerConfig, auth::BearerToken};
use minhu_proto::{common::v1 as common, roster::v1 as pb};
use minhu_roster::{Application, Config};
use minhu_testkit::{TestDatabase, tokens};
use pb::roster_service_client::RosterServiceClient;
use tonic::{Code, codegen::InterceptedService, transport::Channel};
use tonic_types::StatusExt as _;

pub(crate) type Client = RosterServiceClient<InterceptedService<Channel, BearerToken>>;

pub(crate) struct TestApp {
    _db: TestDatabase,
    pub(crate) pool: sqlx::PgPool,
    channel: Channel,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestApp {
    /// A roster on an empty database.
    pub(crate) async fn spawn() -> Self {
        let db = TestDatabase::create("roster").await;
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: db.config(),
            auth: AuthConfig::dev(),
            server: ServerConfig::default(),
        };
        let app = Application::build(config).await.expect("building the roster");
        let addr = app.local_addr();
        let pool = app.pool().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let channel = minhu_testkit::connect(addr).await;
        Self { _db: db, pool, channel, _shutdown: tx }
    }

    /// A roster with the Wuchang seed district loaded.
    pub(crate) async fn seeded() -> Self {
        let app = Self::spawn().await;
        minhu_roster::seed::load(&app.pool).await.expect("loading the seed");
        app
    }

    pub(crate) fn client(&self, principal: &Principal) -> Client {
        RosterServiceClient::with_interceptor(self.channel.clone(), tokens::bearer(principal))
    }

    /// A client without a token.
    pub(crate) fn anonymous(&self) -> RosterServiceClient<Channel> {
        RosterServiceClient::new(self.channel.clone())
    }

    pub(crate) fn admin(&self) -> Client {
        self.client(&tokens::district_admin())
    }

    /// Rows in `table`: refused requests must not change it.
    pub(crate) async fn count(&self, table: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap();
        n
    }
}

pub(crate) fn point(latitude: f64, longitude: f64) -> Option<common::GeoPoint> {
    Some(common::GeoPoint { latitude, longitude })
}

pub(crate) fn street(id: &str, name: &str, lat: f64, lng: f64) -> pb::Street {
    pb::Street {
        id: id.into(),
        name: name.into(),
        center: point(lat, lng),
        radius_meters: 1500.0,
        ..Default::default()
    }
}

pub(crate) fn department(id: &str, kind: pb::DepartmentKind) -> pb::Department {
    pb::Department { id: id.into(), name: format!("{id} 局"), kind: kind as i32, ..Default::default() }
}

/// The fields named in a status's BadRequest details.
pub(crate) fn violated_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
