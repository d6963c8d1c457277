//! Who may do what. Departments open plans and consultations for their own work and answer
//! them (their leaders and dispatchers); only covered or consulted streets give opinions
//! and verdicts, by their leaders; the district reads everything. What a caller may not
//! read answers exactly like what does not exist.

use minhu_grpc::{OrgKind, Principal, Role};

/// Roles that act for a department here.
pub const DEPARTMENT_ROLES: [Role; 2] = [Role::DepartmentLeader, Role::DepartmentDispatcher];

/// The department `p` acts for with a department role, if any.
pub fn department_of(p: &Principal) -> Option<&str> {
    (p.organization.kind == OrgKind::Department && p.has_any_role(&DEPARTMENT_ROLES))
        .then_some(p.organization.id.as_str())
}

/// The street `p` leads, if any (opinions and verdicts are signed by street leaders).
pub fn street_led_by(p: &Principal) -> Option<&str> {
    (p.organization.kind == OrgKind::Street && p.has_role(Role::StreetLeader)).then_some(p.organization.id.as_str())
}

/// Whether `p` may read a plan or decision of `department_id` involving `street_ids`.
pub fn may_read(p: &Principal, department_id: &str, street_ids: &[String]) -> bool {
    match p.organization.kind {
        OrgKind::District => true,
        OrgKind::Department => p.organization.id == department_id,
        OrgKind::Street => street_ids.iter().any(|s| s == &p.organization.id),
        _ => false,
    }
}

/// What a caller's lists are limited to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    District,
    /// One department's.
    Department(String),
    /// Those involving one street.
    Street(String),
    /// Nothing.
    Nothing,
}

/// The scope of `p`'s lists.
pub fn scope(p: &Principal) -> Scope {
    match p.organization.kind {
        OrgKind::District => Scope::District,
        OrgKind::Department => Scope::Department(p.organization.id.clone()),
        OrgKind::Street => Scope::Street(p.organization.id.clone()),
        _ => Scope::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use minhu_grpc::Organization;

    use super::*;

    #[test]
    fn a_street_reads_only_what_involves_it_and_a_department_only_its_own() {
        let street = Principal::new("p", [Role::StreetDispatcher], Organization::new(OrgKind::Street, "a"));
        assert!(may_read(&street, "guihua", &["a".into()]));
        assert!(!may_read(&street, "guihua", &["b".into()]));
        assert_eq!(street_led_by(&street), None, "a dispatcher is not a leader");
        let dept = Principal::new("q", [Role::DepartmentDispatcher], Organization::new(OrgKind::Department, "guihua"));
        assert!(may_read(&dept, "guihua", &[]) && !may_read(&dept, "fangguan", &[]));
        assert_eq!(department_of(&dept), Some("guihua"));
    }
}
