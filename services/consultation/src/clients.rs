//! The roster, as consultation needs it (the street a place lies in, streets and
//! departments by id), over real gRPC with consultation's service identity. Roster failures become
//! UNAVAILABLE (it is down or refuses us) or the caller-facing error the call site chooses.

use std::time::Duration;

use minhu_grpc::client::{TracedChannel, traced};
use minhu_grpc::{ServiceIdentity, auth::BearerToken};
use minhu_proto::roster::v1::{self as pb, roster_service_client::RosterServiceClient};
use tonic::{Code, codegen::InterceptedService};

use crate::error::ConsultationError;

/// A roster answer that was not a success.
#[derive(Debug)]
pub enum RosterFailure {
    /// The roster said NOT_FOUND.
    NotFound,
    /// The roster said INVALID_ARGUMENT.
    Invalid(String),
    /// Anything else: already mapped (UNAVAILABLE / INTERNAL).
    Other(ConsultationError),
}

fn failure(status: tonic::Status) -> RosterFailure {
    match status.code() {
        Code::NotFound => RosterFailure::NotFound,
        Code::InvalidArgument => RosterFailure::Invalid(status.message().to_owned()),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown | Code::ResourceExhausted => {
            RosterFailure::Other(ConsultationError::Unavailable(format!(
                "the roster is not reachable: {}",
                status.message()
            )))
        }
        Code::Unauthenticated | Code::PermissionDenied => RosterFailure::Other(ConsultationError::Unavailable(
            "the roster refused consultation's service identity; check MINHU_CONSULTATION_SERVICE_TOKEN".into(),
        )),
        _ => RosterFailure::Other(ConsultationError::internal(format!("roster: {status}"))),
    }
}

impl RosterFailure {
    /// The failure as the caller's error, with NOT_FOUND / INVALID_ARGUMENT turned into
    /// `on_missing`.
    pub fn or(self, on_missing: impl FnOnce() -> ConsultationError) -> ConsultationError {
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
    /// A client of the roster at `url`; connects lazily, so consultation starts while the
    /// roster is still coming up (calls are UNAVAILABLE until it answers).
    /// `https://` URLs speak TLS with `tls` (the configured CA, and this process's certificate
    /// for mutual TLS).
    pub fn new(
        url: &str,
        identity: ServiceIdentity,
        tls: &minhu_grpc::tls::ClientTls,
    ) -> Result<Self, minhu_grpc::tls::EndpointError> {
        let channel =
            tls.endpoint(url)?.connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(10)).connect_lazy();
        Ok(Self { channel: traced(channel), identity })
    }

    fn client(&self) -> Client {
        RosterServiceClient::with_interceptor(self.channel.clone(), self.identity.bearer_for("minhu-roster"))
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

    /// A street, active or not.
    pub async fn street(&self, street_id: &str) -> Result<pb::Street, RosterFailure> {
        self.client()
            .get_street(pb::GetStreetRequest { street_id: street_id.to_owned() })
            .await
            .map(|r| r.into_inner())
            .map_err(failure)
    }
}
