//! `--as`: whom a development token speaks for.

use std::{str::FromStr, time::Duration};

use minhu_grpc::{OrgKind, Organization, Principal, Role, TokenIssuer};

/// A caller to mint a development token for.
#[derive(Debug, Clone)]
pub(crate) struct Identity(Principal);

impl Identity {
    /// A token signed with the development key, valid for `ttl`.
    pub(crate) fn mint(&self, ttl: Duration) -> String {
        TokenIssuer::dev().issue(&self.0, ttl)
    }
}

impl FromStr for Identity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let district = || Organization::new(OrgKind::District, "district");
        let principal = match parts.as_slice() {
            ["district-admin"] => {
                Principal::new("district-admin", [Role::DistrictAdmin, Role::DistrictOperator], district())
            }
            ["district-operator"] => Principal::new("district-operator", [Role::DistrictOperator], district()),
            ["street-dispatcher", street] => street_principal(street, "dispatcher", &[Role::StreetDispatcher]),
            ["street-leader", street] => {
                street_principal(street, "leader", &[Role::StreetLeader, Role::StreetDispatcher])
            }
            ["department-dispatcher", dept] => department_principal(dept, "dispatcher", Role::DepartmentDispatcher),
            ["department-leader", dept] => department_principal(dept, "leader", Role::DepartmentLeader),
            ["field-officer", dept, person] => {
                Principal::new(*person, [Role::FieldOfficer], Organization::new(OrgKind::Department, *dept))
            }
            ["discipline-inspector"] => Principal::new(
                "discipline-inspector",
                [Role::DisciplineInspector],
                Organization::new(OrgKind::DisciplineInspection, "discipline"),
            ),
            ["service", name] => Principal::new(*name, [Role::Service], Organization::new(OrgKind::Service, *name)),
            _ => {
                return Err(format!(
                    "`{s}` is not an identity (try district-admin, street-dispatcher:zhongnanlu, \
                     department-dispatcher:gongan, field-officer:gongan:<person-id>)"
                ));
            }
        };
        Ok(Self(principal))
    }
}

fn street_principal(street: &str, what: &str, roles: &[Role]) -> Principal {
    Principal::new(format!("{street}-{what}"), roles.iter().copied(), Organization::new(OrgKind::Street, street))
}

fn department_principal(department: &str, what: &str, role: Role) -> Principal {
    Principal::new(format!("{department}-{what}"), [role], Organization::new(OrgKind::Department, department))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_into_the_organisation_they_name() {
        let Identity(p) = "street-dispatcher:zhongnanlu".parse().unwrap();
        assert!(p.acts_for(OrgKind::Street, "zhongnanlu"));
        assert!(p.has_role(Role::StreetDispatcher));
        let Identity(p) = "field-officer:gongan:abc".parse().unwrap();
        assert_eq!(p.subject, "abc");
        assert!("mayor".parse::<Identity>().is_err());
    }
}
