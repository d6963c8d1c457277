//! Departments (区直部门) and their stations (派出机构/基层站所).

use minhu_grpc::FieldViolations;
use minhu_proto::roster::v1 as pb;
use tonic::Request;

use super::{RPCS, Roster, UpdatePaths, caller, convert, found, reason};
use crate::{
    domain::{
        policy::{self, may_manage_department, require},
        validate::{DepartmentInput, StationInput},
    },
    error::RosterError,
    store::{organisations as store, people, structure},
};

pub(super) async fn create_department(
    s: &Roster,
    r: Request<pb::CreateDepartmentRequest>,
) -> Result<pb::Department, RosterError> {
    let (p, req) = caller(r)?;
    require(policy::is_district_admin(&p), "create departments")?;
    let mut v = FieldViolations::new();
    let input = DepartmentInput::parse(&req.department.clone().unwrap_or_default(), &mut v);
    v.into_result()?;
    let key = RPCS.idempotency("CreateDepartment", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let row = store::insert_department(tx, &input).await?;
            Ok(convert::department(row.ok_or(RosterError::AlreadyExists { resource: "department", id: input.id })?))
        })
    })
    .await
}

pub(super) async fn get_department(
    s: &Roster,
    r: Request<pb::GetDepartmentRequest>,
) -> Result<pb::Department, RosterError> {
    let (_, req) = caller(r)?;
    let mut conn = s.pool.acquire().await?;
    let row = store::get_department(&mut conn, &req.department_id, false).await?;
    Ok(convert::department(found(row, "department", &req.department_id)?))
}

pub(super) async fn list_departments(
    s: &Roster,
    r: Request<pb::ListDepartmentsRequest>,
) -> Result<pb::ListDepartmentsResponse, RosterError> {
    let (_, req) = caller(r)?;
    let kind = kind_filter::<pb::DepartmentKind>("kind", req.kind, pb::DepartmentKind::as_str_name)?;
    let page = RPCS.page::<String>(
        req.page_size,
        &req.page_token,
        &["departments", &kind, &req.include_inactive.to_string()],
    )?;
    let mut conn = s.pool.acquire().await?;
    let after = page.after.clone().unwrap_or_default();
    let (mut rows, total) =
        store::list_departments(&mut conn, &kind, req.include_inactive, &after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| r.id.clone());
    Ok(pb::ListDepartmentsResponse {
        departments: rows.into_iter().map(convert::department).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

/// An optional enum filter: UNSPECIFIED means any; an unknown value is INVALID_ARGUMENT.
pub(super) fn kind_filter<E: TryFrom<i32>>(
    field: &str,
    value: i32,
    name: impl Fn(&E) -> &'static str,
) -> Result<String, RosterError> {
    if value == 0 {
        return Ok(String::new());
    }
    E::try_from(value).map(|e| name(&e).to_owned()).map_err(|_| RosterError::field(field, "is not a known value"))
}

pub(super) async fn update_department(
    s: &Roster,
    r: Request<pb::UpdateDepartmentRequest>,
) -> Result<pb::Department, RosterError> {
    let (p, req) = caller(r)?;
    require(policy::is_district_admin(&p), "update departments")?;
    let paths = UpdatePaths::new(req.update_mask.as_ref(), &["name", "kind"])?;
    let patch = req.department.clone().unwrap_or_default();
    let key = RPCS.idempotency("UpdateDepartment", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_department(tx, &patch.id, true).await?, "department", &patch.id)?;
            if !current.active {
                return Err(RosterError::inactive("department", &patch.id));
            }
            let mut merged = convert::department(current);
            if paths.wants("name", !patch.name.is_empty()) {
                merged.name = patch.name.clone();
            }
            if paths.wants("kind", patch.kind != 0) {
                merged.kind = patch.kind;
            }
            let mut v = FieldViolations::new();
            let input = DepartmentInput::parse(&merged, &mut v);
            v.into_result()?;
            Ok(convert::department(store::update_department(tx, &input).await?))
        })
    })
    .await
}

pub(super) async fn deactivate_department(
    s: &Roster,
    r: Request<pb::DeactivateDepartmentRequest>,
) -> Result<pb::Department, RosterError> {
    let (p, req) = caller(r)?;
    require(policy::is_district_admin(&p), "deactivate departments")?;
    let why = reason(&req.reason)?;
    let key = RPCS.idempotency("DeactivateDepartment", &p, &req.request_id, &req)?;
    let id = req.department_id.clone();
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_department(tx, &id, true).await?, "department", &id)?;
            if current.active {
                let stations = structure::count_active(tx, "stations", "department_id", &id).await?;
                let staff = structure::count_active(tx, "people", "department_id", &id).await?;
                if stations + staff > 0 {
                    return Err(RosterError::precondition(
                        "DEPARTMENT_IN_USE",
                        format!("departments/{id}"),
                        format!("department `{id}` still has {stations} active stations and {staff} active people"),
                    ));
                }
                structure::deactivate(tx, "departments", &id, &why).await?;
            }
            Ok(convert::department(found(store::get_department(tx, &id, false).await?, "department", &id)?))
        })
    })
    .await
}

/// Checks what a station refers to: an active department and streets, and a head who is an
/// active person of the station.
async fn check_station_references(tx: &mut sqlx::PgConnection, input: &StationInput) -> Result<(), RosterError> {
    let department =
        found(store::get_department(tx, &input.department_id, false).await?, "department", &input.department_id)?;
    if !department.active {
        return Err(RosterError::inactive("department", &department.id));
    }
    for street_id in std::iter::once(&input.street_id).chain(&input.served_street_ids) {
        let street = found(structure::get_street(tx, street_id, false).await?, "street", street_id)?;
        if !street.active {
            return Err(RosterError::inactive("street", street_id));
        }
    }
    if let Some(head) = input.head_person_id {
        let person = people::get_person(tx, head, false).await?;
        let ok = person.is_some_and(|h| h.active && h.station_id.as_deref() == Some(input.id.as_str()));
        if !ok {
            return Err(RosterError::field("station.head_person_id", "must be an active person of the station"));
        }
    }
    Ok(())
}

pub(super) async fn create_station(
    s: &Roster,
    r: Request<pb::CreateStationRequest>,
) -> Result<pb::Station, RosterError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let input = StationInput::parse(&req.station.clone().unwrap_or_default(), &mut v);
    // A new station has no people yet: its head is named by UpdateStation once they exist.
    v.check(
        input.head_person_id.is_none(),
        "station.head_person_id",
        "is set with UpdateStation once the head is on the station's staff",
    );
    v.into_result()?;
    require(may_manage_department(&p, &input.department_id), "create stations of this department")?;
    let key = RPCS.idempotency("CreateStation", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            check_station_references(tx, &input).await?;
            let row = store::insert_station(tx, &input).await?;
            Ok(convert::station(row.ok_or(RosterError::AlreadyExists { resource: "station", id: input.id })?))
        })
    })
    .await
}

pub(super) async fn get_station(s: &Roster, r: Request<pb::GetStationRequest>) -> Result<pb::Station, RosterError> {
    let (_, req) = caller(r)?;
    let mut conn = s.pool.acquire().await?;
    Ok(convert::station(found(
        store::get_station(&mut conn, &req.station_id, false).await?,
        "station",
        &req.station_id,
    )?))
}

pub(super) async fn list_stations(
    s: &Roster,
    r: Request<pb::ListStationsRequest>,
) -> Result<pb::ListStationsResponse, RosterError> {
    let (_, req) = caller(r)?;
    let kind = kind_filter::<pb::StationKind>("kind", req.kind, pb::StationKind::as_str_name)?;
    let page = RPCS.page::<String>(
        req.page_size,
        &req.page_token,
        &["stations", &req.department_id, &req.street_id, &kind, &req.include_inactive.to_string()],
    )?;
    let filter = store::StationFilter {
        department_id: &req.department_id,
        street_id: &req.street_id,
        kind: &kind,
        include_inactive: req.include_inactive,
    };
    let mut conn = s.pool.acquire().await?;
    let after = page.after.clone().unwrap_or_default();
    let (mut rows, total) = store::list_stations(&mut conn, &filter, &after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| r.id.clone());
    Ok(pb::ListStationsResponse {
        stations: rows.into_iter().map(convert::station).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

pub(super) async fn update_station(
    s: &Roster,
    r: Request<pb::UpdateStationRequest>,
) -> Result<pb::Station, RosterError> {
    let (p, req) = caller(r)?;
    let paths = UpdatePaths::new(
        req.update_mask.as_ref(),
        &[
            "name",
            "kind",
            "served_street_ids",
            "head_person_id",
            "head_on_party_working_committee",
            "party_working_committee_note",
        ],
    )?;
    let patch = req.station.clone().unwrap_or_default();
    let key = RPCS.idempotency("UpdateStation", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_station(tx, &patch.id, true).await?, "station", &patch.id)?;
            require(may_manage_department(&p, &current.department_id), "update stations of this department")?;
            if !current.active {
                return Err(RosterError::inactive("station", &patch.id));
            }
            let previous_head = current.head_person_id;
            let mut merged = convert::station(current);
            if paths.wants("name", !patch.name.is_empty()) {
                merged.name = patch.name.clone();
            }
            if paths.wants("kind", patch.kind != 0) {
                merged.kind = patch.kind;
            }
            if paths.wants("served_street_ids", !patch.served_street_ids.is_empty()) {
                merged.served_street_ids = patch.served_street_ids.clone();
            }
            if paths.wants("head_person_id", !patch.head_person_id.is_empty()) {
                merged.head_person_id = patch.head_person_id.clone();
            }
            if paths.wants("head_on_party_working_committee", patch.head_on_party_working_committee) {
                merged.head_on_party_working_committee = patch.head_on_party_working_committee;
            }
            if paths.wants("party_working_committee_note", !patch.party_working_committee_note.is_empty()) {
                merged.party_working_committee_note = patch.party_working_committee_note.clone();
            }
            let mut v = FieldViolations::new();
            let input = StationInput::parse(&merged, &mut v);
            v.into_result()?;
            check_station_references(tx, &input).await?;
            let updated = store::update_station(tx, &input).await?;
            // The history personnel checks decisions against, in the change's transaction.
            if updated.head_person_id != previous_head {
                let head = crate::store::history::HEAD;
                if let Some(old) = previous_head {
                    crate::store::history::record(tx, &updated, old, head, false).await?;
                }
                if let Some(new) = updated.head_person_id {
                    crate::store::history::record(tx, &updated, new, head, true).await?;
                }
            }
            Ok(convert::station(updated))
        })
    })
    .await
}

pub(super) async fn deactivate_station(
    s: &Roster,
    r: Request<pb::DeactivateStationRequest>,
) -> Result<pb::Station, RosterError> {
    let (p, req) = caller(r)?;
    let why = reason(&req.reason)?;
    let key = RPCS.idempotency("DeactivateStation", &p, &req.request_id, &req)?;
    let id = req.station_id.clone();
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_station(tx, &id, true).await?, "station", &id)?;
            require(may_manage_department(&p, &current.department_id), "deactivate stations of this department")?;
            if current.active {
                let staff = structure::count_active(tx, "people", "station_id", &id).await?;
                if staff > 0 {
                    return Err(RosterError::precondition(
                        "STATION_IN_USE",
                        format!("stations/{id}"),
                        format!("station `{id}` still has {staff} active people"),
                    ));
                }
                structure::deactivate(tx, "stations", &id, &why).await?;
            }
            Ok(convert::station(found(store::get_station(tx, &id, false).await?, "station", &id)?))
        })
    })
    .await
}

pub(super) async fn find_station(s: &Roster, r: Request<pb::FindStationRequest>) -> Result<pb::Station, RosterError> {
    let (_, req) = caller(r)?;
    let mut v = FieldViolations::new();
    v.required_text("department_id", &req.department_id, 63);
    v.required_text("street_id", &req.street_id, 63);
    v.into_result()?;
    let mut conn = s.pool.acquire().await?;
    let row = store::find_station(&mut conn, &req.department_id, &req.street_id).await?;
    Ok(convert::station(found(row, "station", &format!("of {} serving {}", req.department_id, req.street_id))?))
}
