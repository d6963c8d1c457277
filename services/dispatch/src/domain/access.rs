//! Who may see and do what with a case (the conventions at the top of dispatch.proto).
//!
//! - "The street": a street dispatcher or leader of the case's street. Anyone of that
//!   street (grid workers included) may read its cases.
//! - "The department": a department dispatcher or leader of a called department.
//! - A field officer reads the cases of the calls they are designated for.
//! - The district reads everything; services (appraisal) too.
//!
//! Refusal policy, applied consistently by the api: a caller who may not *read* a case
//! gets NOT_FOUND (its existence is not theirs to know); a caller who may read it but not
//! do the thing asked gets PERMISSION_DENIED.

use minhu_grpc::{OrgKind, Principal, Role};

use super::privacy::ReporterView;

/// Who is involved in a case, for access decisions.
#[derive(Debug, Clone, Default)]
pub struct Audience {
    /// The owning street.
    pub street_id: String,
    /// Departments with a non-withdrawn call.
    pub departments: Vec<String>,
    /// Departments whose call has the reporter's contact shared.
    pub contact_departments: Vec<String>,
    /// People designated on any call.
    pub designated: Vec<String>,
}

/// A street dispatcher or leader of `street_id`.
pub fn is_street_of(p: &Principal, street_id: &str) -> bool {
    p.acts_for(OrgKind::Street, street_id) && p.has_any_role(&[Role::StreetDispatcher, Role::StreetLeader])
}

/// A department dispatcher or leader of `department_id`.
pub fn is_department_of(p: &Principal, department_id: &str) -> bool {
    p.acts_for(OrgKind::Department, department_id)
        && p.has_any_role(&[Role::DepartmentDispatcher, Role::DepartmentLeader])
}

/// Another Minhu service.
pub fn is_service(p: &Principal) -> bool {
    p.organization.kind == OrgKind::Service && p.has_role(Role::Service)
}

/// The district platform (operators and admins).
pub fn is_district(p: &Principal) -> bool {
    p.is_district() && p.has_any_role(&[Role::DistrictOperator, Role::DistrictAdmin])
}

/// Whether `p` may read a case with this audience. Services may not: the one service that
/// calls dispatch (appraisal) needs the event feed only, which carries no reporter data
/// (least privilege per service identity, #14.7).
pub fn may_read(p: &Principal, a: &Audience) -> bool {
    is_district(p)
        || p.acts_for(OrgKind::Street, &a.street_id)
        || (is_department_of(p, &p.organization.id) && a.departments.contains(&p.organization.id))
        || a.designated.contains(&p.subject)
}

/// Whether `p` may correct a case of `street_id` (UpdateCase, LinkCases, UnlinkCases): the
/// street, or the district platform.
pub fn may_correct(p: &Principal, street_id: &str) -> bool {
    is_street_of(p, street_id) || is_district(p)
}

/// Whether `p` may read a staged file (uploaded without a case): its uploader only.
pub fn may_read_staged(p: &Principal, uploader_subject: &str) -> bool {
    p.subject == uploader_subject
}

/// How much of the reporter `p` sees: unmasked for the case's street only (a service sees
/// masks, should it ever be shown a case). A confidential reporter (要求保密) is masked for
/// every department, whatever was shared before the request for confidentiality.
pub fn reporter_view(p: &Principal, a: &Audience, confidential: bool) -> ReporterView {
    if is_street_of(p, &a.street_id) {
        ReporterView::Full
    } else if !confidential
        && p.organization.kind == OrgKind::Department
        && a.contact_departments.contains(&p.organization.id)
    {
        ReporterView::Contact
    } else {
        ReporterView::Masked
    }
}

/// Whether `p` may record an appeal in `street_id` through `channel` (a `CHANNEL_*` name):
/// the street itself, a grid worker of the street reporting from the grid, the district.
pub fn may_create(p: &Principal, street_id: &str, channel: &str) -> bool {
    is_street_of(p, street_id)
        || (p.acts_for(OrgKind::Street, street_id) && p.has_role(Role::GridWorker) && channel == "CHANNEL_GRID_WORKER")
        || is_district(p)
}

/// Whether `p` may record appeals at all (before the street is known).
pub fn may_create_somewhere(p: &Principal) -> bool {
    is_district(p)
        || (p.organization.kind == OrgKind::Street
            && p.has_any_role(&[Role::StreetDispatcher, Role::StreetLeader, Role::GridWorker]))
}

/// The event feed: services and district admins.
pub fn may_stream_events(p: &Principal) -> bool {
    is_service(p) || (p.is_district() && p.has_role(Role::DistrictAdmin))
}

#[cfg(test)]
mod tests {
    use minhu_grpc::Organization;

    use super::*;

    fn audience() -> Audience {
        Audience {
            street_id: "zhongnanlu".into(),
            departments: vec!["gongan".into(), "chengguan".into()],
            contact_departments: vec!["gongan".into()],
            designated: vec!["officer-1".into()],
        }
    }

    fn p(subject: &str, role: Role, kind: OrgKind, id: &str) -> Principal {
        Principal::new(subject, [role], Organization::new(kind, id))
    }

    #[test]
    fn the_street_the_district_called_departments_and_designated_people_read() {
        let a = audience();
        assert!(may_read(&p("s", Role::StreetDispatcher, OrgKind::Street, "zhongnanlu"), &a));
        assert!(may_read(&p("g", Role::GridWorker, OrgKind::Street, "zhongnanlu"), &a));
        assert!(!may_read(&p("s", Role::StreetDispatcher, OrgKind::Street, "shuiguohu"), &a));
        assert!(may_read(&p("d", Role::DistrictOperator, OrgKind::District, "district"), &a));
        assert!(may_read(&p("d", Role::DepartmentDispatcher, OrgKind::Department, "gongan"), &a));
        assert!(!may_read(&p("d", Role::DepartmentDispatcher, OrgKind::Department, "guihua"), &a));
        assert!(may_read(&p("officer-1", Role::FieldOfficer, OrgKind::Department, "gongan"), &a));
        assert!(!may_read(&p("appraisal", Role::Service, OrgKind::Service, "appraisal"), &a));
    }

    #[test]
    fn the_street_and_the_district_correct_cases_departments_do_not() {
        assert!(may_correct(&p("s", Role::StreetDispatcher, OrgKind::Street, "zhongnanlu"), "zhongnanlu"));
        assert!(!may_correct(&p("s", Role::StreetDispatcher, OrgKind::Street, "shuiguohu"), "zhongnanlu"));
        assert!(!may_correct(&p("g", Role::GridWorker, OrgKind::Street, "zhongnanlu"), "zhongnanlu"));
        assert!(may_correct(&p("d", Role::DistrictOperator, OrgKind::District, "district"), "zhongnanlu"));
        assert!(!may_correct(&p("d", Role::DepartmentDispatcher, OrgKind::Department, "gongan"), "zhongnanlu"));
        assert!(may_read_staged(&p("s", Role::StreetDispatcher, OrgKind::Street, "zhongnanlu"), "s"));
        assert!(!may_read_staged(&p("d", Role::DistrictAdmin, OrgKind::District, "district"), "s"));
    }

    #[test]
    fn the_reporter_is_masked_without_need_to_know() {
        let a = audience();
        let view = |pr: Principal| reporter_view(&pr, &a, false);
        assert_eq!(view(p("s", Role::StreetDispatcher, OrgKind::Street, "zhongnanlu")), ReporterView::Full);
        assert_eq!(view(p("x", Role::Service, OrgKind::Service, "appraisal")), ReporterView::Masked);
        assert_eq!(view(p("d", Role::DepartmentDispatcher, OrgKind::Department, "gongan")), ReporterView::Contact);
        assert_eq!(view(p("d", Role::DepartmentDispatcher, OrgKind::Department, "chengguan")), ReporterView::Masked);
        assert_eq!(view(p("d", Role::DistrictAdmin, OrgKind::District, "district")), ReporterView::Masked);
        let gongan = p("d", Role::DepartmentDispatcher, OrgKind::Department, "gongan");
        assert_eq!(reporter_view(&gongan, &a, true), ReporterView::Masked, "confidential beats a share");
    }

    #[test]
    fn intake_is_for_the_street_its_grid_workers_and_the_district() {
        let grid = p("g", Role::GridWorker, OrgKind::Street, "zhongnanlu");
        assert!(may_create(&grid, "zhongnanlu", "CHANNEL_GRID_WORKER"));
        assert!(!may_create(&grid, "zhongnanlu", "CHANNEL_HOTLINE"));
        assert!(!may_create(
            &p("d", Role::DepartmentDispatcher, OrgKind::Department, "gongan"),
            "zhongnanlu",
            "CHANNEL_APP"
        ));
        assert!(may_create(
            &p("d", Role::DistrictOperator, OrgKind::District, "district"),
            "zhongnanlu",
            "CHANNEL_HOTLINE"
        ));
        assert!(may_stream_events(&p("a", Role::Service, OrgKind::Service, "appraisal")));
        assert!(!may_stream_events(&p("d", Role::DistrictOperator, OrgKind::District, "district")));
    }
}
