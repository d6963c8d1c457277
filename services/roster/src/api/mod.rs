//! gRPC handlers: decode, authorize, validate, call the store, map back. The rules live in
//! [`crate::domain`]; the SQL in [`crate::store`].

mod convert;
mod leadership;
mod organisations;
mod people;
mod structure;

use minhu_grpc::{FieldViolations, Rpcs, UpdatePaths};
pub(crate) use minhu_grpc::{caller, found};
use minhu_proto::roster::v1::{self as pb, roster_service_server::RosterService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::error::RosterError;

/// Longest deactivation or end reason.
const MAX_REASON: usize = 500;

/// The roster's handlers.
#[derive(Debug, Clone)]
pub struct Roster {
    pool: PgPool,
}

impl Roster {
    /// Handlers over `pool` (migrated).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// What scopes this service's idempotency keys and pages.
pub(crate) static RPCS: Rpcs = Rpcs::new("minhu.roster.v1.RosterService");

type Reply<T> = Result<Response<T>, Status>;

/// A required reason of at most [`MAX_REASON`] characters, trimmed.
fn reason(value: &str) -> Result<String, RosterError> {
    let mut v = FieldViolations::new();
    let reason = v.optional_text("reason", value, MAX_REASON).to_owned();
    v.into_result()?;
    Ok(reason)
}

/// Runs a handler body and turns its error into a status.
async fn reply<T>(body: impl Future<Output = Result<T, RosterError>>) -> Reply<T> {
    body.await.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl RosterService for Roster {
    async fn create_street(&self, r: Request<pb::CreateStreetRequest>) -> Reply<pb::Street> {
        reply(structure::create_street(self, r)).await
    }
    async fn get_street(&self, r: Request<pb::GetStreetRequest>) -> Reply<pb::Street> {
        reply(structure::get_street(self, r)).await
    }
    async fn list_streets(&self, r: Request<pb::ListStreetsRequest>) -> Reply<pb::ListStreetsResponse> {
        reply(structure::list_streets(self, r)).await
    }
    async fn update_street(&self, r: Request<pb::UpdateStreetRequest>) -> Reply<pb::Street> {
        reply(structure::update_street(self, r)).await
    }
    async fn deactivate_street(&self, r: Request<pb::DeactivateStreetRequest>) -> Reply<pb::Street> {
        reply(structure::deactivate_street(self, r)).await
    }
    async fn create_community(&self, r: Request<pb::CreateCommunityRequest>) -> Reply<pb::Community> {
        reply(structure::create_community(self, r)).await
    }
    async fn get_community(&self, r: Request<pb::GetCommunityRequest>) -> Reply<pb::Community> {
        reply(structure::get_community(self, r)).await
    }
    async fn list_communities(&self, r: Request<pb::ListCommunitiesRequest>) -> Reply<pb::ListCommunitiesResponse> {
        reply(structure::list_communities(self, r)).await
    }
    async fn update_community(&self, r: Request<pb::UpdateCommunityRequest>) -> Reply<pb::Community> {
        reply(structure::update_community(self, r)).await
    }
    async fn deactivate_community(&self, r: Request<pb::DeactivateCommunityRequest>) -> Reply<pb::Community> {
        reply(structure::deactivate_community(self, r)).await
    }
    async fn create_grid(&self, r: Request<pb::CreateGridRequest>) -> Reply<pb::Grid> {
        reply(structure::create_grid(self, r)).await
    }
    async fn get_grid(&self, r: Request<pb::GetGridRequest>) -> Reply<pb::Grid> {
        reply(structure::get_grid(self, r)).await
    }
    async fn list_grids(&self, r: Request<pb::ListGridsRequest>) -> Reply<pb::ListGridsResponse> {
        reply(structure::list_grids(self, r)).await
    }
    async fn update_grid(&self, r: Request<pb::UpdateGridRequest>) -> Reply<pb::Grid> {
        reply(structure::update_grid(self, r)).await
    }
    async fn deactivate_grid(&self, r: Request<pb::DeactivateGridRequest>) -> Reply<pb::Grid> {
        reply(structure::deactivate_grid(self, r)).await
    }
    async fn create_department(&self, r: Request<pb::CreateDepartmentRequest>) -> Reply<pb::Department> {
        reply(organisations::create_department(self, r)).await
    }
    async fn get_department(&self, r: Request<pb::GetDepartmentRequest>) -> Reply<pb::Department> {
        reply(organisations::get_department(self, r)).await
    }
    async fn list_departments(&self, r: Request<pb::ListDepartmentsRequest>) -> Reply<pb::ListDepartmentsResponse> {
        reply(organisations::list_departments(self, r)).await
    }
    async fn update_department(&self, r: Request<pb::UpdateDepartmentRequest>) -> Reply<pb::Department> {
        reply(organisations::update_department(self, r)).await
    }
    async fn deactivate_department(&self, r: Request<pb::DeactivateDepartmentRequest>) -> Reply<pb::Department> {
        reply(organisations::deactivate_department(self, r)).await
    }
    async fn create_station(&self, r: Request<pb::CreateStationRequest>) -> Reply<pb::Station> {
        reply(organisations::create_station(self, r)).await
    }
    async fn get_station(&self, r: Request<pb::GetStationRequest>) -> Reply<pb::Station> {
        reply(organisations::get_station(self, r)).await
    }
    async fn list_stations(&self, r: Request<pb::ListStationsRequest>) -> Reply<pb::ListStationsResponse> {
        reply(organisations::list_stations(self, r)).await
    }
    async fn update_station(&self, r: Request<pb::UpdateStationRequest>) -> Reply<pb::Station> {
        reply(organisations::update_station(self, r)).await
    }
    async fn deactivate_station(&self, r: Request<pb::DeactivateStationRequest>) -> Reply<pb::Station> {
        reply(organisations::deactivate_station(self, r)).await
    }
    async fn create_person(&self, r: Request<pb::CreatePersonRequest>) -> Reply<pb::Person> {
        reply(people::create_person(self, r)).await
    }
    async fn get_person(&self, r: Request<pb::GetPersonRequest>) -> Reply<pb::Person> {
        reply(people::get_person(self, r)).await
    }
    async fn list_people(&self, r: Request<pb::ListPeopleRequest>) -> Reply<pb::ListPeopleResponse> {
        reply(people::list_people(self, r)).await
    }
    async fn batch_get_people(&self, r: Request<pb::BatchGetPeopleRequest>) -> Reply<pb::BatchGetPeopleResponse> {
        reply(people::batch_get_people(self, r)).await
    }
    async fn update_person(&self, r: Request<pb::UpdatePersonRequest>) -> Reply<pb::Person> {
        reply(people::update_person(self, r)).await
    }
    async fn deactivate_person(&self, r: Request<pb::DeactivatePersonRequest>) -> Reply<pb::Person> {
        reply(people::deactivate_person(self, r)).await
    }
    async fn create_secondment(&self, r: Request<pb::CreateSecondmentRequest>) -> Reply<pb::Secondment> {
        reply(people::create_secondment(self, r)).await
    }
    async fn get_secondment(&self, r: Request<pb::GetSecondmentRequest>) -> Reply<pb::Secondment> {
        reply(people::get_secondment(self, r)).await
    }
    async fn list_secondments(&self, r: Request<pb::ListSecondmentsRequest>) -> Reply<pb::ListSecondmentsResponse> {
        reply(people::list_secondments(self, r)).await
    }
    async fn update_secondment(&self, r: Request<pb::UpdateSecondmentRequest>) -> Reply<pb::Secondment> {
        reply(people::update_secondment(self, r)).await
    }
    async fn end_secondment(&self, r: Request<pb::EndSecondmentRequest>) -> Reply<pb::Secondment> {
        reply(people::end_secondment(self, r)).await
    }
    async fn resolve_location(&self, r: Request<pb::ResolveLocationRequest>) -> Reply<pb::ResolveLocationResponse> {
        reply(structure::resolve_location(self, r)).await
    }
    async fn find_station(&self, r: Request<pb::FindStationRequest>) -> Reply<pb::Station> {
        reply(organisations::find_station(self, r)).await
    }
    async fn find_responders(&self, r: Request<pb::FindRespondersRequest>) -> Reply<pb::FindRespondersResponse> {
        reply(people::find_responders(self, r)).await
    }
    async fn verify_designation(
        &self,
        r: Request<pb::VerifyDesignationRequest>,
    ) -> Reply<pb::VerifyDesignationResponse> {
        reply(people::verify_designation(self, r)).await
    }
    async fn list_street_leaders(
        &self,
        r: Request<pb::ListStreetLeadersRequest>,
    ) -> Reply<pb::ListStreetLeadersResponse> {
        reply(leadership::list_street_leaders(self, r)).await
    }
    async fn list_street_sections(
        &self,
        r: Request<pb::ListStreetSectionsRequest>,
    ) -> Reply<pb::ListStreetSectionsResponse> {
        reply(leadership::list_street_sections(self, r)).await
    }
    async fn list_leadership_changes(
        &self,
        r: Request<pb::ListLeadershipChangesRequest>,
    ) -> Reply<pb::ListLeadershipChangesResponse> {
        reply(leadership::list_leadership_changes(self, r)).await
    }
}
