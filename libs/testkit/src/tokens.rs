//! Dev tokens for each kind of caller, signed with the development key that
//! [`AuthConfig::dev`](minhu_grpc::AuthConfig::dev) accepts.

use std::time::Duration;

use minhu_grpc::{
    OrgKind, Organization, Principal, Role, TokenIssuer,
    auth::{Audience, BearerToken},
};

/// A signed token for `principal`, valid for an hour. People's tokens name the shared
/// audience; a service's (test convenience) names every service's audience, so tests can
/// call any service as it. Real service identities are issued for one service each
/// ([`service_token_for`]).
pub fn token(principal: &Principal) -> String {
    let issuer = TokenIssuer::dev();
    if principal.roles.contains(&Role::Service) {
        let all = minhu_grpc::auth::SERVICE_AUDIENCES.iter().map(|a| (*a).to_owned()).collect();
        issuer.sign(&issuer.claims_for(principal, Audience::Many(all), Duration::from_secs(3600)))
    } else {
        issuer.issue(principal, Duration::from_secs(3600))
    }
}

/// A service identity's token for one service only (`minhu-roster`), as production issues them.
pub fn service_token_for(name: &str, audience: &str) -> String {
    TokenIssuer::dev().issue_for(&service(name), audience, Duration::from_secs(3600))
}

/// A client interceptor carrying a token for `principal`.
pub fn bearer(principal: &Principal) -> BearerToken {
    BearerToken::new(&token(principal))
}

/// 区平台管理员.
pub fn district_admin() -> Principal {
    Principal::new(
        "district-admin",
        [Role::DistrictAdmin, Role::DistrictOperator],
        Organization::new(OrgKind::District, "district"),
    )
}

/// 区平台值班: reads everything, changes nothing.
pub fn district_operator() -> Principal {
    Principal::new("district-operator", [Role::DistrictOperator], Organization::new(OrgKind::District, "district"))
}

/// A dispatcher of the street's command centre (指挥调度中心).
pub fn street_dispatcher(street_id: &str) -> Principal {
    Principal::new(
        format!("{street_id}-dispatcher"),
        [Role::StreetDispatcher],
        Organization::new(OrgKind::Street, street_id),
    )
}

/// A street's leader.
pub fn street_leader(street_id: &str) -> Principal {
    Principal::new(
        format!("{street_id}-leader"),
        [Role::StreetLeader, Role::StreetDispatcher],
        Organization::new(OrgKind::Street, street_id),
    )
}

/// A department's dispatcher (签收 and 拟定人选).
pub fn department_dispatcher(department_id: &str) -> Principal {
    Principal::new(
        format!("{department_id}-dispatcher"),
        [Role::DepartmentDispatcher],
        Organization::new(OrgKind::Department, department_id),
    )
}

/// A field officer of a department.
pub fn field_officer(person_id: &str, department_id: &str) -> Principal {
    Principal::new(person_id, [Role::FieldOfficer], Organization::new(OrgKind::Department, department_id))
}

/// Discipline inspection.
pub fn discipline_inspector() -> Principal {
    Principal::new(
        "discipline-inspector",
        [Role::DisciplineInspector],
        Organization::new(OrgKind::DisciplineInspection, "discipline"),
    )
}

/// Another Minhu service calling on its own behalf.
pub fn service(name: &str) -> Principal {
    Principal::new(name, [Role::Service], Organization::new(OrgKind::Service, name))
}
