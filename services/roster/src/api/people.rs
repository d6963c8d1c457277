//! People and secondments (常驻+席位), and the look-ups dispatch makes when a department
//! answers a call: who can respond, and whether a designation (拟定人选) is valid.

use chrono::{NaiveDate, Utc};
use minhu_grpc::{FieldViolations, Principal};
use minhu_proto::{common::v1 as common, roster::v1 as pb};
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use super::{RPCS, Roster, UpdatePaths, caller, convert, found, organisations::kind_filter, reason};
use crate::{
    domain::{
        mask_phone,
        policy::{self, Membership, PeopleScope, may_manage_department, may_manage_person, require},
        validate::{self, PersonInput, SecondmentInput},
    },
    error::RosterError,
    store::{history, organisations, people as store, structure},
};

/// Most ids in one BatchGetPeople or VerifyDesignation.
const MAX_BATCH: usize = 500;

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn person_id(field: &str, value: &str) -> Result<Uuid, RosterError> {
    let mut v = FieldViolations::new();
    let id = validate::uuid(&mut v, field, value);
    v.into_result()?;
    Ok(id)
}

/// PERMISSION_DENIED unless `p` may read people at all.
fn readable_scope(p: &Principal) -> Result<PeopleScope, RosterError> {
    match policy::people_scope(p) {
        PeopleScope::Nobody => Err(RosterError::PermissionDenied("the caller may not read the roster's people".into())),
        scope => Ok(scope),
    }
}

/// Checks a person's organisation and station exist and are active.
async fn check_membership(tx: &mut PgConnection, m: &Membership) -> Result<(), RosterError> {
    match m {
        Membership::Department { department_id, station_id } => {
            let d = found(organisations::get_department(tx, department_id, false).await?, "department", department_id)?;
            if !d.active {
                return Err(RosterError::inactive("department", department_id));
            }
            if let Some(station_id) = station_id {
                let station = found(organisations::get_station(tx, station_id, false).await?, "station", station_id)?;
                if station.department_id != *department_id {
                    return Err(RosterError::field(
                        "person.station_id",
                        format!("is not a station of `{department_id}`"),
                    ));
                }
                if !station.active {
                    return Err(RosterError::inactive("station", station_id));
                }
            }
        }
        Membership::Street(street_id) => {
            let street = found(structure::get_street(tx, street_id, false).await?, "street", street_id)?;
            if !street.active {
                return Err(RosterError::inactive("street", street_id));
            }
        }
    }
    Ok(())
}

/// Maps a taken employee number to ALREADY_EXISTS.
fn employee_number_taken(input: &PersonInput) -> impl Fn(sqlx::Error) -> RosterError + '_ {
    move |e| {
        if crate::store::is_unique_violation(&e, "people_employee_number") {
            RosterError::AlreadyExists { resource: "person", id: format!("employee number {}", input.employee_number) }
        } else {
            e.into()
        }
    }
}

pub(super) async fn create_person(s: &Roster, r: Request<pb::CreatePersonRequest>) -> Result<pb::Person, RosterError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let input = PersonInput::parse(&req.person.clone().unwrap_or_default(), &mut v);
    v.into_result()?;
    require(may_manage_person(&p, &input.membership), "create people of this organisation")?;
    let key = RPCS.idempotency("CreatePerson", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            check_membership(tx, &input.membership).await?;
            let row = store::insert_person(tx, Uuid::now_v7(), &input).await.map_err(employee_number_taken(&input))?;
            history::record_member(tx, row.id, None, leadership_station(&row)).await?;
            Ok(convert::person(row, &p))
        })
    })
    .await
}

pub(super) async fn get_person(s: &Roster, r: Request<pb::GetPersonRequest>) -> Result<pb::Person, RosterError> {
    let (p, req) = caller(r)?;
    let id = person_id("person_id", &req.person_id)?;
    let scope = readable_scope(&p)?;
    let mut conn = s.pool.acquire().await?;
    let row = found(store::get_person(&mut conn, id, false).await?, "person", &req.person_id)?;
    require(store::in_scope(&mut conn, &scope, id).await?, "read this person")?;
    Ok(convert::person(row, &p))
}

pub(super) async fn list_people(
    s: &Roster,
    r: Request<pb::ListPeopleRequest>,
) -> Result<pb::ListPeopleResponse, RosterError> {
    let (p, req) = caller(r)?;
    let scope = readable_scope(&p)?;
    let qualification =
        kind_filter::<common::Qualification>("qualification", req.qualification, common::Qualification::as_str_name)?;
    let position = kind_filter::<common::Position>("position", req.position, common::Position::as_str_name)?;
    let mut v = FieldViolations::new();
    let query = v.optional_text("query", &req.query, 100).to_owned();
    v.into_result()?;
    let page = RPCS.page::<(String, Uuid)>(
        req.page_size,
        &req.page_token,
        &[
            "people",
            &format!("{scope:?}"),
            &req.department_id,
            &req.station_id,
            &req.street_id,
            &qualification,
            &position,
            &query,
            &req.include_inactive.to_string(),
        ],
    )?;
    let filter = store::PeopleFilter {
        department_id: &req.department_id,
        station_id: &req.station_id,
        street_id: &req.street_id,
        qualification: &qualification,
        position: &position,
        query: &query,
        include_inactive: req.include_inactive,
    };
    let mut conn = s.pool.acquire().await?;
    let (mut rows, total) = store::list_people(&mut conn, &scope, &filter, page.after.clone(), page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| (r.name.clone(), r.id));
    Ok(pb::ListPeopleResponse {
        people: rows.into_iter().map(|r| convert::person(r, &p)).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

pub(super) async fn batch_get_people(
    s: &Roster,
    r: Request<pb::BatchGetPeopleRequest>,
) -> Result<pb::BatchGetPeopleResponse, RosterError> {
    let (p, req) = caller(r)?;
    let scope = readable_scope(&p)?;
    let mut v = FieldViolations::new();
    v.check(req.person_ids.len() <= MAX_BATCH, "person_ids", format!("at most {MAX_BATCH} ids"));
    let ids: Vec<Uuid> = req
        .person_ids
        .iter()
        .enumerate()
        .map(|(i, id)| validate::uuid(&mut v, &format!("person_ids[{i}]"), id))
        .collect();
    v.into_result()?;
    let mut conn = s.pool.acquire().await?;
    let rows = store::get_people(&mut conn, &ids).await?;
    let mut people = Vec::with_capacity(ids.len());
    for (id, raw) in ids.iter().zip(&req.person_ids) {
        let row = found(rows.iter().find(|r| r.id == *id).cloned(), "person", raw)?;
        require(store::in_scope(&mut conn, &scope, *id).await?, "read these people")?;
        people.push(convert::person(row, &p));
    }
    Ok(pb::BatchGetPeopleResponse { people })
}

pub(super) async fn update_person(s: &Roster, r: Request<pb::UpdatePersonRequest>) -> Result<pb::Person, RosterError> {
    let (p, req) = caller(r)?;
    let paths = UpdatePaths::new(
        req.update_mask.as_ref(),
        &["name", "employee_number", "station_id", "qualifications", "position", "title", "phone"],
    )?;
    let patch = req.person.clone().unwrap_or_default();
    let id = person_id("person.id", &patch.id)?;
    let key = RPCS.idempotency("UpdatePerson", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_person(tx, id, true).await?, "person", &patch.id)?;
            require(may_manage_person(&p, &current.membership()), "update this person")?;
            if !current.active {
                return Err(RosterError::inactive("person", &patch.id));
            }
            let was_member_of = leadership_station(&current).map(str::to_owned);
            let real_phone = current.phone.clone();
            let mut merged = convert::person(current, &p);
            merged.phone = real_phone.clone();
            if paths.wants("name", !patch.name.is_empty()) {
                merged.name = patch.name.clone();
            }
            if paths.wants("employee_number", !patch.employee_number.is_empty()) {
                merged.employee_number = patch.employee_number.clone();
            }
            if paths.wants("station_id", !patch.station_id.is_empty()) {
                merged.station_id = patch.station_id.clone();
            }
            if paths.wants("qualifications", !patch.qualifications.is_empty()) {
                merged.qualifications = patch.qualifications.clone();
            }
            if paths.wants("position", patch.position != 0) {
                merged.position = patch.position;
            }
            if paths.wants("title", !patch.title.is_empty()) {
                merged.title = patch.title.clone();
            }
            // A client echoing back the masked phone it was shown does not erase the real one.
            if paths.wants("phone", !patch.phone.is_empty()) && patch.phone != mask_phone(&real_phone) {
                merged.phone = patch.phone.clone();
            }
            let mut v = FieldViolations::new();
            let input = PersonInput::parse(&merged, &mut v);
            v.into_result()?;
            check_membership(tx, &input.membership).await?;
            let row = store::update_person(tx, id, &input).await.map_err(employee_number_taken(&input))?;
            history::record_member(tx, id, was_member_of.as_deref(), leadership_station(&row)).await?;
            Ok(convert::person(row, &p))
        })
    })
    .await
}

pub(super) async fn deactivate_person(
    s: &Roster,
    r: Request<pb::DeactivatePersonRequest>,
) -> Result<pb::Person, RosterError> {
    let (p, req) = caller(r)?;
    let id = person_id("person_id", &req.person_id)?;
    let why = reason(&req.reason)?;
    let key = RPCS.idempotency("DeactivatePerson", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_person(tx, id, true).await?, "person", &id.to_string())?;
            require(may_manage_person(&p, &current.membership()), "deactivate this person")?;
            if !current.active {
                return Ok(convert::person(current, &p));
            }
            if let Some(station) = store::heads_active_station(tx, id).await? {
                return Err(RosterError::precondition(
                    "PERSON_HEADS_STATION",
                    format!("people/{id}"),
                    format!("the person heads station `{station}`: name another head first"),
                ));
            }
            history::record_member(tx, id, leadership_station(&current), None).await?;
            Ok(convert::person(store::deactivate_person(tx, id, &why).await?, &p))
        })
    })
    .await
}

/// Checks what a secondment refers to and that a resident has no overlapping one.
async fn check_secondment(
    tx: &mut PgConnection,
    input: &SecondmentInput,
    except: Option<Uuid>,
) -> Result<(), RosterError> {
    let department = found(
        organisations::get_department(tx, &input.department_id, false).await?,
        "department",
        &input.department_id,
    )?;
    if !department.active {
        return Err(RosterError::inactive("department", &input.department_id));
    }
    let street = found(structure::get_street(tx, &input.street_id, false).await?, "street", &input.street_id)?;
    if !street.active {
        return Err(RosterError::inactive("street", &input.street_id));
    }
    if let Some(person_id) = input.person_id {
        let person = found(store::get_person(tx, person_id, false).await?, "person", &person_id.to_string())?;
        if !person.active {
            return Err(RosterError::inactive("person", &person_id.to_string()));
        }
        if person.department_id.as_deref() != Some(input.department_id.as_str()) {
            return Err(RosterError::field(
                "secondment.person_id",
                format!("is not a person of `{}`", input.department_id),
            ));
        }
        if let Some(other) =
            store::overlapping_secondment(tx, person_id, input.start_date, input.end_date, except).await?
        {
            return Err(RosterError::precondition(
                "SECONDMENT_OVERLAPS",
                format!("secondments/{other}"),
                format!("the person already has secondment `{other}` overlapping these dates"),
            ));
        }
    }
    Ok(())
}

pub(super) async fn create_secondment(
    s: &Roster,
    r: Request<pb::CreateSecondmentRequest>,
) -> Result<pb::Secondment, RosterError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let input = SecondmentInput::parse(&req.secondment.clone().unwrap_or_default(), &mut v);
    v.into_result()?;
    require(may_manage_department(&p, &input.department_id), "second people of this department")?;
    let key = RPCS.idempotency("CreateSecondment", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            check_secondment(tx, &input, None).await?;
            Ok(convert::secondment(store::insert_secondment(tx, Uuid::now_v7(), &input).await?, today()))
        })
    })
    .await
}

pub(super) async fn get_secondment(
    s: &Roster,
    r: Request<pb::GetSecondmentRequest>,
) -> Result<pb::Secondment, RosterError> {
    let (p, req) = caller(r)?;
    let id = person_id("secondment_id", &req.secondment_id)?;
    let mut conn = s.pool.acquire().await?;
    let row = found(store::get_secondment(&mut conn, id, false).await?, "secondment", &req.secondment_id)?;
    require(may_read_secondment(&p, &row), "read this secondment")?;
    Ok(convert::secondment(row, today()))
}

/// Secondments are read by the district, services, the department and the street.
fn may_read_secondment(p: &Principal, row: &store::SecondmentRow) -> bool {
    match policy::people_scope(p) {
        PeopleScope::All => true,
        PeopleScope::Department(d) => d == row.department_id,
        PeopleScope::Street(s) => s == row.street_id,
        PeopleScope::Nobody => false,
    }
}

pub(super) async fn list_secondments(
    s: &Roster,
    r: Request<pb::ListSecondmentsRequest>,
) -> Result<pb::ListSecondmentsResponse, RosterError> {
    let (p, req) = caller(r)?;
    // Scope by narrowing the filter to the caller's organisation.
    let (street_id, department_id) = match readable_scope(&p)? {
        PeopleScope::Street(own) if req.street_id.is_empty() || req.street_id == own => {
            (own, req.department_id.clone())
        }
        PeopleScope::Department(own) if req.department_id.is_empty() || req.department_id == own => {
            (req.street_id.clone(), own)
        }
        PeopleScope::All => (req.street_id.clone(), req.department_id.clone()),
        _ => return Err(RosterError::PermissionDenied("the caller may not read these secondments".into())),
    };
    let kind = kind_filter::<pb::SecondmentKind>("kind", req.kind, pb::SecondmentKind::as_str_name)?;
    let center = kind_filter::<common::StreetCenter>("center", req.center, common::StreetCenter::as_str_name)?;
    let mut v = FieldViolations::new();
    let person = (!req.person_id.is_empty()).then(|| validate::uuid(&mut v, "person_id", &req.person_id));
    let active_on = validate::date(&mut v, "active_on", req.active_on.as_ref());
    v.into_result()?;
    let page = RPCS.page::<(NaiveDate, Uuid)>(
        req.page_size,
        &req.page_token,
        &[
            "secondments",
            &street_id,
            &department_id,
            &req.person_id,
            &kind,
            &center,
            &format!("{active_on:?}"),
            &req.include_inactive.to_string(),
        ],
    )?;
    let filter = store::SecondmentFilter {
        street_id: &street_id,
        department_id: &department_id,
        person_id: person,
        kind: &kind,
        center: &center,
        active_on,
        include_inactive: req.include_inactive,
    };
    let mut conn = s.pool.acquire().await?;
    let (mut rows, total) = store::list_secondments(&mut conn, &filter, page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| (r.start_date, r.id));
    let today = today();
    Ok(pb::ListSecondmentsResponse {
        secondments: rows.into_iter().map(|r| convert::secondment(r, today)).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

pub(super) async fn update_secondment(
    s: &Roster,
    r: Request<pb::UpdateSecondmentRequest>,
) -> Result<pb::Secondment, RosterError> {
    let (p, req) = caller(r)?;
    let paths = UpdatePaths::new(req.update_mask.as_ref(), &["center", "start_date", "end_date", "note"])?;
    let patch = req.secondment.clone().unwrap_or_default();
    let id = person_id("secondment.id", &patch.id)?;
    let key = RPCS.idempotency("UpdateSecondment", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_secondment(tx, id, true).await?, "secondment", &patch.id)?;
            require(may_manage_department(&p, &current.department_id), "update secondments of this department")?;
            if current.end_date.is_some_and(|end| end < today()) {
                return Err(RosterError::precondition(
                    "SECONDMENT_ENDED",
                    format!("secondments/{id}"),
                    "the secondment has ended",
                ));
            }
            let mut merged = convert::secondment(current, today());
            if paths.wants("center", patch.center != 0) {
                merged.center = patch.center;
            }
            if paths.wants("start_date", patch.start_date.is_some()) {
                merged.start_date = patch.start_date;
            }
            if paths.wants("end_date", patch.end_date.is_some()) {
                merged.end_date = patch.end_date;
            }
            if paths.wants("note", !patch.note.is_empty()) {
                merged.note = patch.note.clone();
            }
            let mut v = FieldViolations::new();
            let input = SecondmentInput::parse(&merged, &mut v);
            v.into_result()?;
            check_secondment(tx, &input, Some(id)).await?;
            Ok(convert::secondment(store::update_secondment(tx, id, &input).await?, today()))
        })
    })
    .await
}

pub(super) async fn end_secondment(
    s: &Roster,
    r: Request<pb::EndSecondmentRequest>,
) -> Result<pb::Secondment, RosterError> {
    let (p, req) = caller(r)?;
    let id = person_id("secondment_id", &req.secondment_id)?;
    let why = reason(&req.reason)?;
    let mut v = FieldViolations::new();
    let end = validate::date(&mut v, "end_date", req.end_date.as_ref());
    v.check(req.end_date.is_some(), "end_date", "is required");
    v.into_result()?;
    let end = end.unwrap_or_default();
    let key = RPCS.idempotency("EndSecondment", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_secondment(tx, id, true).await?, "secondment", &id.to_string())?;
            let allowed =
                may_manage_department(&p, &current.department_id) || policy::is_street_leader(&p, &current.street_id);
            require(allowed, "end this secondment")?;
            if current.end_date.is_some_and(|e| e < today()) {
                return Err(RosterError::precondition(
                    "SECONDMENT_ENDED",
                    format!("secondments/{id}"),
                    "the secondment has already ended",
                ));
            }
            if end < current.start_date {
                return Err(RosterError::precondition(
                    "END_BEFORE_START",
                    format!("secondments/{id}"),
                    format!("the end date {end} is before the start date {}", current.start_date),
                ));
            }
            Ok(convert::secondment(store::end_secondment(tx, id, end, &why).await?, today()))
        })
    })
    .await
}

pub(super) async fn find_responders(
    s: &Roster,
    r: Request<pb::FindRespondersRequest>,
) -> Result<pb::FindRespondersResponse, RosterError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let department_id = validate::reference(&mut v, "department_id", &req.department_id);
    let street_id = validate::reference(&mut v, "street_id", &req.street_id);
    v.check((0..=1000).contains(&req.count), "count", "must be between 0 and 1000");
    v.into_result()?;
    require(policy::may_staff_calls_of(&p, &department_id), "look for responders of this department")?;
    let qualification =
        kind_filter::<common::Qualification>("qualification", req.qualification, common::Qualification::as_str_name)?;
    let page = RPCS.page::<(i32, String, Uuid)>(
        req.page_size,
        &req.page_token,
        &["responders", &department_id, &street_id, &qualification],
    )?;
    let mut conn = s.pool.acquire().await?;
    found(organisations::get_department(&mut conn, &department_id, false).await?, "department", &department_id)?;
    found(structure::get_street(&mut conn, &street_id, false).await?, "street", &street_id)?;
    let (mut rows, total) =
        store::find_responders(&mut conn, &department_id, &street_id, &qualification, page.after.clone(), page.limit())
            .await?;
    let next_page_token = page.finish(&mut rows, |r| (r.source, r.person.name.clone(), r.person.id));
    let responders = rows
        .into_iter()
        .map(|r| pb::Responder {
            source: match r.source {
                1 => pb::ResponderSource::SecondedToStreet,
                2 => pb::ResponderSource::StationServingStreet,
                _ => pb::ResponderSource::Department,
            } as i32,
            person: Some(convert::person(r.person, &p)),
        })
        .collect();
    Ok(pb::FindRespondersResponse {
        responders,
        eligible_count: total as i32,
        requirement_can_be_met: total >= i64::from(req.count),
        next_page_token,
    })
}

pub(super) async fn verify_designation(
    s: &Roster,
    r: Request<pb::VerifyDesignationRequest>,
) -> Result<pb::VerifyDesignationResponse, RosterError> {
    use pb::DesignationProblem as Problem;
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let department_id = validate::reference(&mut v, "department_id", &req.department_id);
    v.check(!req.person_ids.is_empty(), "person_ids", "must name at least one person");
    v.check(req.person_ids.len() <= MAX_BATCH, "person_ids", format!("at most {MAX_BATCH} ids"));
    v.check((0..=1000).contains(&req.required_count), "required_count", "must be between 0 and 1000");
    v.into_result()?;
    require(policy::may_staff_calls_of(&p, &department_id), "verify designations of this department")?;
    let qualification =
        kind_filter::<common::Qualification>("qualification", req.qualification, common::Qualification::as_str_name)?;
    let mut conn = s.pool.acquire().await?;
    found(organisations::get_department(&mut conn, &department_id, false).await?, "department", &department_id)?;
    let ids: Vec<Uuid> = req.person_ids.iter().filter_map(|id| Uuid::parse_str(id.trim()).ok()).collect();
    let rows = store::get_people(&mut conn, &ids).await?;

    let mut seen = std::collections::HashSet::new();
    let mut checks = Vec::with_capacity(req.person_ids.len());
    for raw in &req.person_ids {
        let mut problems = Vec::new();
        let mut reasons = Vec::new();
        let row = Uuid::parse_str(raw.trim()).ok().and_then(|id| rows.iter().find(|r| r.id == id));
        if !seen.insert(raw.trim().to_owned()) {
            problems.push(Problem::Duplicate);
            reasons.push("named more than once".to_owned());
        }
        match row {
            None => {
                problems.push(Problem::NotFound);
                reasons.push("no such person in the roster".to_owned());
            }
            Some(person) => {
                if person.department_id.as_deref() != Some(department_id.as_str()) {
                    problems.push(Problem::NotInDepartment);
                    reasons.push(format!("not a person of `{department_id}`"));
                }
                if !person.active {
                    problems.push(Problem::Inactive);
                    reasons.push("no longer active".to_owned());
                }
                if !qualification.is_empty() && !person.qualifications.contains(&qualification) {
                    problems.push(Problem::MissingQualification);
                    reasons.push(format!("lacks {qualification}"));
                }
            }
        }
        checks.push(pb::DesignationCheck {
            person_id: raw.clone(),
            eligible: problems.is_empty(),
            problems: problems.into_iter().map(|p| p as i32).collect(),
            reasons,
        });
    }
    let eligible_count = checks.iter().filter(|c| c.eligible).count() as i32;
    Ok(pb::VerifyDesignationResponse {
        valid: eligible_count == checks.len() as i32 && eligible_count >= req.required_count,
        eligible_count,
        checks,
    })
}

/// The station of which the person is a leadership-team member (班子成员), if they are one.
fn leadership_station(row: &store::PersonRow) -> Option<&str> {
    (row.active && row.position == history::MEMBER).then_some(row.station_id.as_deref()).flatten()
}
