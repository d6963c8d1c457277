//! The roster, as personnel needs it (stations, people, street leaders and sections,
//! secondments, leadership changes), over real gRPC with personnel's service identity.
//! NOT_FOUND comes back as `None`; an unreachable or refusing roster is UNAVAILABLE.

use std::time::Duration;

use minhu_grpc::client::{TracedChannel, traced};
use minhu_grpc::{
    ServiceIdentity,
    auth::BearerToken,
    tls::{ClientTls, EndpointError},
};
use minhu_proto::roster::v1::{self as pb, roster_service_client::RosterServiceClient};
use tonic::{Code, codegen::InterceptedService};

use crate::error::PersonnelError;

/// The roster's audience: personnel's service token must name it.
const ROSTER_AUDIENCE: &str = "minhu-roster";

fn failure(status: tonic::Status) -> PersonnelError {
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => PersonnelError::Unavailable(
            "the roster refused personnel's service identity; check MINHU_PERSONNEL_SERVICE_TOKEN".into(),
        ),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown | Code::ResourceExhausted => {
            PersonnelError::Unavailable(format!("the roster is not reachable: {}", status.message()))
        }
        _ => PersonnelError::Internal(format!("roster: {status}")),
    }
}

fn optional<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<Option<T>, PersonnelError> {
    match result {
        Ok(r) => Ok(Some(r.into_inner())),
        Err(s) if matches!(s.code(), Code::NotFound | Code::InvalidArgument) => Ok(None),
        Err(s) => Err(failure(s)),
    }
}

fn required<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<T, PersonnelError> {
    result.map(tonic::Response::into_inner).map_err(failure)
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
    /// A client of the roster at `url`; connects lazily, so personnel starts while the roster
    /// is still coming up (calls are UNAVAILABLE until it answers).
    /// `https://` URLs get TLS with `tls`'s CA (and client certificate).
    pub fn new(url: &str, identity: ServiceIdentity, tls: &ClientTls) -> Result<Self, EndpointError> {
        let channel =
            tls.endpoint(url)?.connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(10)).connect_lazy();
        Ok(Self { channel: traced(channel), identity })
    }

    fn client(&self) -> Client {
        RosterServiceClient::with_interceptor(self.channel.clone(), self.identity.bearer_for(ROSTER_AUDIENCE))
    }

    /// A station.
    pub async fn station(&self, id: &str) -> Result<Option<pb::Station>, PersonnelError> {
        optional(self.client().get_station(pb::GetStationRequest { station_id: id.to_owned() }).await)
    }

    /// A department.
    pub async fn department(&self, id: &str) -> Result<Option<pb::Department>, PersonnelError> {
        optional(self.client().get_department(pb::GetDepartmentRequest { department_id: id.to_owned() }).await)
    }

    /// A person.
    pub async fn person(&self, id: &str) -> Result<Option<pb::Person>, PersonnelError> {
        optional(self.client().get_person(pb::GetPersonRequest { person_id: id.to_owned() }).await)
    }

    /// People by id; `None` if any is unknown.
    pub async fn people(&self, ids: &[String]) -> Result<Option<Vec<pb::Person>>, PersonnelError> {
        if ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let request = pb::BatchGetPeopleRequest { person_ids: ids.to_vec() };
        Ok(optional(self.client().batch_get_people(request).await)?.map(|r| r.people))
    }

    /// A street's leaders.
    pub async fn street_leaders(&self, street_id: &str) -> Result<Vec<pb::StreetLeader>, PersonnelError> {
        let request = pb::ListStreetLeadersRequest { street_id: street_id.to_owned() };
        Ok(optional(self.client().list_street_leaders(request).await)?.map(|r| r.leaders).unwrap_or_default())
    }

    /// A street's sections working with `station_id`.
    pub async fn sections(&self, street_id: &str, station_id: &str) -> Result<Vec<pb::StreetSection>, PersonnelError> {
        let request =
            pb::ListStreetSectionsRequest { street_id: street_id.to_owned(), station_id: station_id.to_owned() };
        Ok(optional(self.client().list_street_sections(request).await)?.map(|r| r.sections).unwrap_or_default())
    }

    /// A secondment.
    pub async fn secondment(&self, id: &str) -> Result<Option<pb::Secondment>, PersonnelError> {
        optional(self.client().get_secondment(pb::GetSecondmentRequest { secondment_id: id.to_owned() }).await)
    }

    /// Every secondment matching `filter` (all pages).
    pub async fn secondments(&self, filter: pb::ListSecondmentsRequest) -> Result<Vec<pb::Secondment>, PersonnelError> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let request = pb::ListSecondmentsRequest { page_size: 500, page_token: token, ..filter.clone() };
            let page = required(self.client().list_secondments(request).await)?;
            all.extend(page.secondments);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            token = page.next_page_token;
        }
    }

    /// How many active staff a street office has.
    pub async fn street_staff_count(&self, street_id: &str) -> Result<i32, PersonnelError> {
        let request = pb::ListPeopleRequest { street_id: street_id.to_owned(), page_size: 1, ..Default::default() };
        Ok(required(self.client().list_people(request).await)?.total_size)
    }

    /// Every active station matching the filters (all pages).
    pub async fn stations(&self, department_id: &str, street_id: &str) -> Result<Vec<pb::Station>, PersonnelError> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let request = pb::ListStationsRequest {
                department_id: department_id.to_owned(),
                street_id: street_id.to_owned(),
                page_size: 500,
                page_token: token,
                ..Default::default()
            };
            let page = required(self.client().list_stations(request).await)?;
            all.extend(page.stations);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            token = page.next_page_token;
        }
    }

    /// Leadership changes after `after`, at most `limit`.
    pub async fn leadership_changes(
        &self,
        after: i64,
        limit: i32,
    ) -> Result<Vec<pb::LeadershipChange>, PersonnelError> {
        let request =
            pb::ListLeadershipChangesRequest { after_sequence: after, page_size: limit, ..Default::default() };
        Ok(required(self.client().list_leadership_changes(request).await)?.changes)
    }
}
