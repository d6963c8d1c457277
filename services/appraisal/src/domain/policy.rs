//! Who may do what (DESIGN.md "Who may do what", applied to appraisal): the district reads
//! everything and administers periods and weights; a department reads its own figures; a
//! street reads the figures of the calls it made and refers non-performance; discipline
//! inspection and organisation/personnel read the referrals sent to them.

use minhu_grpc::{ApiError, OrgKind, Principal, Role};

/// A refusal naming what was attempted.
pub fn denied(what: &str) -> ApiError {
    ApiError::PermissionDenied(format!("the caller may not {what}"))
}

/// Fails with PERMISSION_DENIED unless `allowed`.
pub fn require(allowed: bool, what: &str) -> Result<(), ApiError> {
    if allowed { Ok(()) } else { Err(denied(what)) }
}

/// A district admin (区平台管理员).
pub fn is_district_admin(p: &Principal) -> bool {
    p.organization.kind == OrgKind::District && p.has_role(Role::DistrictAdmin)
}

/// Anyone of the district platform.
pub fn is_district(p: &Principal) -> bool {
    p.organization.kind == OrgKind::District
}

/// Whose score figures a caller asks for, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScoreScope {
    /// Everything (the district).
    All,
    /// One department's own figures; other rows of a table show rates and rank only.
    Department(String),
    /// Calls made by one street: the request's street filter is forced to it.
    Street(String),
}

/// The scope of a score read, refusing callers without one. `street_id` is the request's
/// street filter; a street may only ask for its own (or nothing, meaning its own).
pub fn score_scope(p: &Principal, street_id: &str) -> Result<ScoreScope, ApiError> {
    match p.organization.kind {
        OrgKind::District => Ok(ScoreScope::All),
        OrgKind::Department => Ok(ScoreScope::Department(p.organization.id.clone())),
        OrgKind::Street if street_id.is_empty() || street_id == p.organization.id => {
            Ok(ScoreScope::Street(p.organization.id.clone()))
        }
        OrgKind::Street => Err(denied("read scores of another street's calls")),
        _ => Err(denied("read scores")),
    }
}

/// The street whose leader the caller is: street leaders refer (线索移送) non-performance
/// on their own street's calls (谁呼谁评: the calling street judges its calls). Referring
/// people to discipline inspection is a leader's decision, not a dispatcher's.
pub fn referring_street(p: &Principal) -> Option<&str> {
    (p.organization.kind == OrgKind::Street && p.has_role(Role::StreetLeader)).then_some(p.organization.id.as_str())
}

/// Who reads periods (考核周期) and annual weights: the district, the appraised (every
/// department and street: the rules they are scored by) and organisation/personnel (the
/// annual assessment). Discipline inspection and services have no need.
pub fn may_read_periods(p: &Principal) -> bool {
    matches!(p.organization.kind, OrgKind::District | OrgKind::Street | OrgKind::Department)
        || recipient_of(p) == Some(PERSONNEL)
}

/// The recipient kind a caller handles referrals for: discipline inspectors for discipline
/// inspection, personnel officers for organisation/personnel.
pub fn recipient_of(p: &Principal) -> Option<&'static str> {
    match p.organization.kind {
        OrgKind::DisciplineInspection if p.has_role(Role::DisciplineInspector) => Some(DISCIPLINE),
        OrgKind::OrganizationPersonnel if p.has_role(Role::PersonnelOfficer) => Some(PERSONNEL),
        _ => None,
    }
}

/// The stored name of the discipline inspection recipient (纪检监察).
pub const DISCIPLINE: &str = "ORGANIZATION_KIND_DISCIPLINE_INSPECTION";
/// The stored name of the organisation/personnel recipient (组织人事).
pub const PERSONNEL: &str = "ORGANIZATION_KIND_ORGANIZATION_PERSONNEL";

/// District admins and organisation/personnel export the annual assessment.
pub fn may_export(p: &Principal) -> bool {
    is_district_admin(p) || recipient_of(p) == Some(PERSONNEL)
}

/// District admins and services read the feed's state.
pub fn may_read_feed(p: &Principal) -> bool {
    is_district_admin(p) || (p.organization.kind == OrgKind::Service && p.has_role(Role::Service))
}

#[cfg(test)]
mod tests {
    use super::*;
    use minhu_grpc::Organization;

    #[test]
    fn a_street_reads_only_its_own_calls() {
        let street = Principal::new("s", [Role::StreetLeader], Organization::new(OrgKind::Street, "zhongnanlu"));
        assert_eq!(score_scope(&street, "").unwrap(), ScoreScope::Street("zhongnanlu".into()));
        assert!(score_scope(&street, "shuiguohu").is_err());
        let di =
            Principal::new("d", [Role::DisciplineInspector], Organization::new(OrgKind::DisciplineInspection, "x"));
        assert!(score_scope(&di, "").is_err());
        assert_eq!(recipient_of(&di), Some(DISCIPLINE));
    }
}
