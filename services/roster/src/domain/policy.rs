//! Who may do what in the roster.
//!
//! - The district administers everything.
//! - A department's leaders manage its stations, people and secondments.
//! - A street's leaders manage its communities, grids and own staff, and may end
//!   secondments to it.
//! - Everyone authenticated reads the public structure (streets, communities, grids,
//!   departments, stations: names and codes).
//! - People are not public: the district and services see everyone; a department its own
//!   people; a street its own staff, the people seconded to it and those of the stations
//!   serving it. Phone numbers only for those with a need to know.

use minhu_grpc::{OrgKind, Principal, Role};

use crate::error::RosterError;

/// PERMISSION_DENIED unless `allowed`, naming what was refused.
pub fn require(allowed: bool, action: &str) -> Result<(), RosterError> {
    if allowed { Ok(()) } else { Err(RosterError::PermissionDenied(format!("the caller may not {action}"))) }
}

/// District administrators.
pub fn is_district_admin(p: &Principal) -> bool {
    p.is_district() && p.has_role(Role::DistrictAdmin)
}

/// A leader of street `street_id`.
pub fn is_street_leader(p: &Principal, street_id: &str) -> bool {
    p.acts_for(OrgKind::Street, street_id) && p.has_role(Role::StreetLeader)
}

/// A leader of department `department_id`.
pub fn is_department_leader(p: &Principal, department_id: &str) -> bool {
    p.acts_for(OrgKind::Department, department_id) && p.has_role(Role::DepartmentLeader)
}

/// May create or change the communities and grids of `street_id`.
pub fn may_manage_street_area(p: &Principal, street_id: &str) -> bool {
    is_district_admin(p) || is_street_leader(p, street_id)
}

/// May create or change the stations and secondments of `department_id`.
pub fn may_manage_department(p: &Principal, department_id: &str) -> bool {
    is_district_admin(p) || is_department_leader(p, department_id)
}

/// The organisation a person belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// Staff of a department, perhaps of one of its stations.
    Department {
        /// The department.
        department_id: String,
        /// The station, if any.
        station_id: Option<String>,
    },
    /// Staff of a street office.
    Street(String),
}

/// May create, change or deactivate a person of `membership`.
pub fn may_manage_person(p: &Principal, membership: &Membership) -> bool {
    is_district_admin(p)
        || match membership {
            Membership::Department { department_id, .. } => is_department_leader(p, department_id),
            Membership::Street(street_id) => is_street_leader(p, street_id),
        }
}

/// Which people a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeopleScope {
    /// Everyone (the district, services).
    All,
    /// The people of one department.
    Department(String),
    /// A street's own staff, its secondees and the staff of stations serving it.
    Street(String),
    /// Nobody.
    Nobody,
}

/// The people `p` may read.
pub fn people_scope(p: &Principal) -> PeopleScope {
    match p.organization.kind {
        OrgKind::District | OrgKind::Service => PeopleScope::All,
        OrgKind::Department => PeopleScope::Department(p.organization.id.clone()),
        OrgKind::Street => PeopleScope::Street(p.organization.id.clone()),
        OrgKind::DisciplineInspection | OrgKind::OrganizationPersonnel => PeopleScope::Nobody,
    }
}

/// Whether `p` may see the unmasked phone of the person `person_id` of `membership`:
/// the district's administrators, services, the person, and the leaders and dispatchers of
/// the person's own organisation.
pub fn may_see_phone(p: &Principal, person_id: &str, membership: &Membership) -> bool {
    if is_district_admin(p) || p.organization.kind == OrgKind::Service || p.subject == person_id {
        return true;
    }
    match membership {
        Membership::Department { department_id, .. } => {
            p.acts_for(OrgKind::Department, department_id)
                && p.has_any_role(&[Role::DepartmentLeader, Role::DepartmentDispatcher])
        }
        Membership::Street(street_id) => {
            p.acts_for(OrgKind::Street, street_id) && p.has_any_role(&[Role::StreetLeader, Role::StreetDispatcher])
        }
    }
}

/// May look for responders of, or verify a designation by, `department_id`: its
/// dispatchers and leaders, the district, services (dispatch).
pub fn may_staff_calls_of(p: &Principal, department_id: &str) -> bool {
    p.is_district()
        || p.organization.kind == OrgKind::Service
        || (p.acts_for(OrgKind::Department, department_id)
            && p.has_any_role(&[Role::DepartmentDispatcher, Role::DepartmentLeader]))
}

#[cfg(test)]
mod tests {
    use minhu_grpc::Organization;

    use super::*;

    fn who(role: Role, kind: OrgKind, id: &str) -> Principal {
        Principal::new("someone", [role], Organization::new(kind, id))
    }

    #[test]
    fn a_department_leader_manages_only_their_own_people() {
        let leader = who(Role::DepartmentLeader, OrgKind::Department, "fangguan");
        let own = Membership::Department { department_id: "fangguan".into(), station_id: None };
        let other = Membership::Department { department_id: "gongan".into(), station_id: None };
        assert!(may_manage_person(&leader, &own));
        assert!(!may_manage_person(&leader, &other));
        assert!(!may_manage_person(&who(Role::DepartmentDispatcher, OrgKind::Department, "fangguan"), &own));
    }

    #[test]
    fn phones_are_for_those_with_need_to_know() {
        let person = Membership::Street("zhongnanlu".into());
        assert!(may_see_phone(&who(Role::StreetDispatcher, OrgKind::Street, "zhongnanlu"), "p", &person));
        assert!(!may_see_phone(&who(Role::StreetDispatcher, OrgKind::Street, "shuiguohu"), "p", &person));
        assert!(!may_see_phone(&who(Role::DistrictOperator, OrgKind::District, "district"), "p", &person));
        assert!(may_see_phone(&who(Role::DistrictAdmin, OrgKind::District, "district"), "p", &person));
        let mut me = who(Role::FieldOfficer, OrgKind::Department, "fangguan");
        me.subject = "p".into();
        assert!(may_see_phone(&me, "p", &person));
    }

    #[test]
    fn discipline_inspection_reads_no_people() {
        assert_eq!(
            people_scope(&who(Role::DisciplineInspector, OrgKind::DisciplineInspection, "d")),
            PeopleScope::Nobody
        );
    }
}
