//! The roster, as dispatch needs it (resolving places, departments, stations, people and
//! designations), over real gRPC with dispatch's service identity. Roster failures become
//! UNAVAILABLE (it is down or refuses us) or the caller-facing error the call site chooses.

use std::time::Duration;

use minhu_grpc::client::{TracedChannel, traced};
use minhu_grpc::{ApiError, OrgKind, Organization, Principal, Role, TokenIssuer, auth::BearerToken};
use minhu_proto::roster::v1::{self as pb, roster_service_client::RosterServiceClient};
use tonic::{Code, codegen::InterceptedService};

use crate::error::DispatchError;

/// How dispatch proves who it is to the roster.
#[derive(Clone)]
pub enum ServiceIdentity {
    /// Development: sign a service token with the development key per request
    /// (`MINHU_AUTH_DEV=true`).
    Dev,
    /// Production: a pre-issued service token (`MINHU_DISPATCH_SERVICE_TOKEN`).
    Token(String),
}

impl std::fmt::Debug for ServiceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Dev => "Dev",
            Self::Token(_) => "Token(<secret>)",
        })
    }
}

impl ServiceIdentity {
    /// The principal dispatch acts as.
    pub fn principal() -> Principal {
        Principal::new("minhu-dispatch", [Role::Service], Organization::new(OrgKind::Service, "minhu-dispatch"))
    }

    fn token(&self) -> String {
        match self {
            Self::Dev => TokenIssuer::dev().issue_for(&Self::principal(), "minhu-roster", Duration::from_secs(300)),
            Self::Token(token) => token.clone(),
        }
    }
}

/// A roster answer that was not a success.
#[derive(Debug)]
pub enum RosterFailure {
    /// The roster said NOT_FOUND.
    NotFound,
    /// The roster said INVALID_ARGUMENT.
    Invalid(String),
    /// Anything else: already mapped (UNAVAILABLE / INTERNAL).
    Other(DispatchError),
}

fn failure(status: tonic::Status) -> RosterFailure {
    match status.code() {
        Code::NotFound => RosterFailure::NotFound,
        Code::InvalidArgument => RosterFailure::Invalid(status.message().to_owned()),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown | Code::ResourceExhausted => {
            RosterFailure::Other(
                ApiError::Unavailable(format!("the roster is not reachable: {}", status.message())).into(),
            )
        }
        Code::Unauthenticated | Code::PermissionDenied => RosterFailure::Other(
            ApiError::Unavailable(
                "the roster refused dispatch's service identity; check MINHU_DISPATCH_SERVICE_TOKEN".into(),
            )
            .into(),
        ),
        // The roster's own status is the cause: logged whole, not sent.
        _ => RosterFailure::Other(DispatchError::internal(status)),
    }
}

impl RosterFailure {
    /// The failure as the caller's error, with NOT_FOUND / INVALID_ARGUMENT turned into
    /// `on_missing`.
    pub fn or(self, on_missing: impl FnOnce() -> DispatchError) -> DispatchError {
        match self {
            Self::NotFound | Self::Invalid(_) => on_missing(),
            Self::Other(e) => e,
        }
    }
}

/// The roster client.
#[derive(Debug, Clone)]
pub struct Roster {
    /// Each call through it is a client span (`minhu_grpc::client`).
    channel: TracedChannel,
    identity: ServiceIdentity,
}

type Client = RosterServiceClient<InterceptedService<TracedChannel, BearerToken>>;

impl Roster {
    /// A client of the roster at `url`; connects lazily, so dispatch starts while the
    /// roster is still coming up (calls are UNAVAILABLE until it answers).
    pub fn new(url: &str, identity: ServiceIdentity) -> Result<Self, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Self { channel: traced(channel), identity })
    }

    fn client(&self) -> Client {
        RosterServiceClient::with_interceptor(self.channel.clone(), BearerToken::new(&self.identity.token()))
    }

    /// The street, community and grid at a point.
    pub async fn resolve_location(
        &self,
        latitude: f64,
        longitude: f64,
    ) -> Result<pb::ResolveLocationResponse, RosterFailure> {
        let location = Some(minhu_proto::common::v1::GeoPoint { latitude, longitude });
        self.client()
            .resolve_location(pb::ResolveLocationRequest { location })
            .await
            .map(|r| r.into_inner())
            .map_err(failure)
    }

    /// A department.
    pub async fn department(&self, department_id: &str) -> Result<pb::Department, RosterFailure> {
        self.client()
            .get_department(pb::GetDepartmentRequest { department_id: department_id.to_owned() })
            .await
            .map(|r| r.into_inner())
            .map_err(failure)
    }

    /// The department's station serving the street, if any.
    pub async fn station(&self, department_id: &str, street_id: &str) -> Result<Option<pb::Station>, RosterFailure> {
        let request =
            pb::FindStationRequest { department_id: department_id.to_owned(), street_id: street_id.to_owned() };
        match self.client().find_station(request).await {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(failure(s)),
        }
    }

    /// The roster's verdict on a designation.
    pub async fn verify_designation(
        &self,
        request: pb::VerifyDesignationRequest,
    ) -> Result<pb::VerifyDesignationResponse, RosterFailure> {
        self.client().verify_designation(request).await.map(|r| r.into_inner()).map_err(failure)
    }

    /// People by id (names for designations).
    pub async fn people(&self, ids: &[String]) -> Result<Vec<pb::Person>, RosterFailure> {
        let request = pb::BatchGetPeopleRequest { person_ids: ids.to_vec() };
        self.client().batch_get_people(request).await.map(|r| r.into_inner().people).map_err(failure)
    }
}
