//! Paid annual leave (带薪年休假) of secondees, managed by the street they are seconded to:
//! days counted by the working-time calendar, entitlement by statute, balance and overlap
//! checks under a per-person lock, approval by the street.

use chrono::{Datelike as _, NaiveDate};
use minhu_grpc::{FieldViolations, OrgKind, Principal, Role};
use minhu_proto::{
    personnel::v1 as pb,
    roster::v1::{self as roster, SecondmentKind},
};
use sqlx::{PgConnection, types::Json};
use tonic::Request;
use uuid::Uuid;

use super::{Personnel, caller, convert, date, id, key, me, page, required_date, scope, total, uuid, year};
use crate::{
    domain::{self, Caller},
    error::PersonnelError,
    store::{self, LeaveRow, leave_state},
};

const RESOURCE: &str = "minhu.personnel.v1.LeaveApplication";

/// A department caller without leadership sees only their own leave.
fn only_own(p: &Principal) -> bool {
    p.organization.kind == OrgKind::Department && !p.has_any_role(&[Role::DepartmentLeader, Role::PersonnelOfficer])
}

fn may_read(p: &Principal, row: &LeaveRow) -> bool {
    if p.subject == row.person_id {
        return true;
    }
    !only_own(p) && domain::may_read(p, &row.department_id, &row.street_id)
}

/// The applicant or a leader of their department.
fn may_apply_for(p: &Principal, person_id: &str, department_id: &str) -> bool {
    p.subject == person_id || (p.acts_for(OrgKind::Department, department_id) && p.has_role(Role::DepartmentLeader))
}

/// The RESIDENT secondment covering every day of `[start, end]`.
fn covering(secondments: &[roster::Secondment], start: NaiveDate, end: NaiveDate) -> Option<&roster::Secondment> {
    let d = |d: &Option<minhu_proto::common::v1::Date>| {
        d.as_ref()
            .and_then(|d| NaiveDate::from_ymd_opt(d.year, u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?))
    };
    secondments.iter().find(|s| {
        s.kind == SecondmentKind::Resident as i32
            && d(&s.start_date).is_some_and(|from| from <= start)
            && d(&s.end_date).is_none_or(|to| to >= end)
    })
}

async fn resident_secondments(s: &Personnel, person_id: &str) -> Result<Vec<roster::Secondment>, PersonnelError> {
    s.d.roster
        .secondments(roster::ListSecondmentsRequest {
            person_id: person_id.to_owned(),
            kind: SecondmentKind::Resident as i32,
            include_inactive: true,
            ..Default::default()
        })
        .await
}

fn not_seconded(person_id: &str) -> PersonnelError {
    PersonnelError::refused(
        "NOT_SECONDED",
        format!("people/{person_id}"),
        "the person is not seconded (常驻) to a street over every day of the leave",
    )
}

/// The person's entitlement for `year`: (days, set, service start).
async fn entitlement(
    conn: &mut PgConnection,
    person_id: &str,
    year: i32,
) -> sqlx::Result<(i32, bool, Option<NaiveDate>)> {
    Ok(match store::entitlement(conn, person_id, year).await? {
        Some((days, start)) => (days, true, start),
        None => (domain::DEFAULT_ENTITLEMENT, false, None),
    })
}

async fn account(conn: &mut PgConnection, person_id: &str, year: i32) -> sqlx::Result<pb::LeaveBalance> {
    let (entitled, set, start) = entitlement(conn, person_id, year).await?;
    let (approved, pending) = store::used_leave(conn, person_id, year).await?;
    let (approved, pending) = (approved as i32, pending as i32);
    Ok(pb::LeaveBalance {
        person_id: person_id.to_owned(),
        year,
        entitled_days: entitled,
        entitlement_is_default: !set,
        approved_days: approved,
        pending_days: pending,
        remaining_days: entitled - approved - pending,
        service_start_date: start.map(convert::date),
        service_years: start.map(|s| domain::service_years(s, year)).unwrap_or_default(),
    })
}

fn insufficient(person_id: &str, wanted: i32, remaining: i32) -> PersonnelError {
    PersonnelError::refused(
        "INSUFFICIENT_BALANCE",
        format!("people/{person_id}"),
        format!("{wanted} leave days asked, {remaining} remaining"),
    )
}

pub(super) async fn create(
    s: &Personnel,
    r: Request<pb::CreateLeaveApplicationRequest>,
) -> Result<pb::LeaveApplication, PersonnelError> {
    let (p, req) = caller(r)?;
    let given = req.application.clone().unwrap_or_default();
    let mut v = FieldViolations::new();
    let person_id = if given.person_id.trim().is_empty() { p.subject.clone() } else { given.person_id.clone() };
    let person_id = uuid(&mut v, "application.person_id", &person_id).to_string();
    let start = required_date(&mut v, "application.start_date", given.start_date.as_ref());
    let end = required_date(&mut v, "application.end_date", given.end_date.as_ref());
    v.check(end >= start, "application.end_date", "must not precede start_date");
    v.check(given.days >= 0, "application.days", "must not be negative");
    let reason = v.optional_text("application.reason", &given.reason, 2000).to_owned();
    let year = if given.entitlement_year == 0 { start.year() } else { given.entitlement_year };
    v.check(
        domain::may_draw_on(year, start),
        "application.entitlement_year",
        "leave draws on the year it starts in or, carried over, the one before",
    );
    let days = domain::leave_days(&s.d.calendar, start, end);
    if v.is_empty() {
        v.check(days > 0, "application.end_date", "the leave spans no working day");
        v.check(
            given.days == 0 || given.days == days,
            "application.days",
            format!("the leave spans {days} working days"),
        );
    }
    v.into_result()?;
    let key = key("CreateLeaveApplication", &p, &req.request_id, &req)?;
    let lookups = async {
        let person =
            s.d.roster
                .person(&person_id)
                .await?
                .ok_or_else(|| PersonnelError::not_found("minhu.roster.v1.Person", &person_id))?;
        if !may_apply_for(&p, &person_id, &person.department_id) {
            return Err(PersonnelError::denied("only the secondee or a leader of their department applies"));
        }
        let secondments = resident_secondments(s, &person_id).await?;
        let secondment = covering(&secondments, start, end).ok_or_else(|| not_seconded(&person_id))?.clone();
        let now = s.now();
        let row = LeaveRow {
            id: Uuid::now_v7(),
            person_id: person_id.clone(),
            secondment_id: secondment.id.clone(),
            street_id: secondment.street_id.clone(),
            department_id: secondment.department_id.clone(),
            start_date: start,
            end_date: end,
            year,
            days,
            reason,
            state: leave_state::PENDING.into(),
            decided_by: None,
            decision_comment: String::new(),
            decide_time: None,
            created_by: Json(me(&p)),
            create_time: now,
            update_time: now,
        };
        Ok::<_, PersonnelError>(row)
    };
    s.write_after(&key, lookups, move |tx, row| {
        Box::pin(async move {
            store::lock_person_leave(tx, &row.person_id).await?;
            if let Some(other) = store::overlapping_leave(tx, &row.person_id, start, end).await?.first() {
                return Err(PersonnelError::refused(
                    "OVERLAPPING_LEAVE",
                    format!("leaveApplications/{}", other.id),
                    format!("the leave overlaps application {} ({} to {})", other.id, other.start_date, other.end_date),
                ));
            }
            let b = account(tx, &row.person_id, row.year).await?;
            if row.days > b.remaining_days {
                return Err(insufficient(&row.person_id, row.days, b.remaining_days));
            }
            store::insert_leave(tx, &row).await?;
            Ok(convert::leave(row))
        })
    })
    .await
}

async fn readable(conn: &mut PgConnection, p: &Principal, id: Uuid, lock: bool) -> Result<LeaveRow, PersonnelError> {
    store::leave(conn, id, lock)
        .await?
        .filter(|r| may_read(p, r))
        .ok_or_else(|| PersonnelError::not_found(RESOURCE, id))
}

pub(super) async fn get(
    s: &Personnel,
    r: Request<pb::GetLeaveApplicationRequest>,
) -> Result<pb::LeaveApplication, PersonnelError> {
    let (p, req) = caller(r)?;
    let id = id("leave_application_id", &req.leave_application_id)?;
    let mut conn = s.d.pool.acquire().await?;
    Ok(convert::leave(readable(&mut conn, &p, id, false).await?))
}

pub(super) async fn list(
    s: &Personnel,
    r: Request<pb::ListLeaveApplicationsRequest>,
) -> Result<pb::ListLeaveApplicationsResponse, PersonnelError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let states: Vec<String> = req
        .states
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match pb::LeaveState::try_from(*n) {
            Ok(pb::LeaveState::Unspecified) | Err(_) => {
                v.add(format!("states[{i}]"), "must be a leave state");
                None
            }
            Ok(s) => Some(s.as_str_name().to_owned()),
        })
        .collect();
    let from = date(&mut v, "overlaps_start_date", req.overlaps_start_date.as_ref());
    let to = date(&mut v, "overlaps_end_date", req.overlaps_end_date.as_ref());
    v.into_result()?;
    let joined = states.join(",");
    let window = format!("{from:?}..{to:?}");
    let q = [req.street_id.as_str(), &req.department_id, &req.person_id, &joined, &window];
    let page = page::<(NaiveDate, Uuid)>(req.page_size, &req.page_token, &q)?;
    let mut person = req.person_id.trim().to_owned();
    if only_own(&p) {
        if !person.is_empty() && person != p.subject {
            return Ok(Default::default());
        }
        person = p.subject.clone();
    }
    let Some(scope) = scope(&p, &req.street_id, &req.department_id)? else {
        return Ok(Default::default());
    };
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, count) =
        store::list_leave(&mut conn, &scope, &person, &states, (from, to), page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| (r.start_date, r.id));
    Ok(pb::ListLeaveApplicationsResponse {
        applications: rows.into_iter().map(convert::leave).collect(),
        next_page_token,
        total_size: total(count),
    })
}

fn not_pending(row: &LeaveRow) -> PersonnelError {
    PersonnelError::refused("NOT_PENDING", format!("leaveApplications/{}", row.id), "the application is not pending")
}

/// The application, read then locked after its person's leave lock (the lock order of every
/// leave change: person, then application).
async fn locked(tx: &mut PgConnection, p: &Principal, id: Uuid) -> Result<LeaveRow, PersonnelError> {
    let row = readable(tx, p, id, false).await?;
    store::lock_person_leave(tx, &row.person_id).await?;
    readable(tx, p, id, true).await
}

pub(super) async fn approve(
    s: &Personnel,
    r: Request<pb::ApproveLeaveApplicationRequest>,
) -> Result<pb::LeaveApplication, PersonnelError> {
    let (p, req) = caller(r)?;
    let id = id("leave_application_id", &req.leave_application_id)?;
    let mut v = FieldViolations::new();
    let comment = v.optional_text("comment", &req.comment, 2000).to_owned();
    v.into_result()?;
    let key = key("ApproveLeaveApplication", &p, &req.request_id, &req)?;
    let now = s.now();
    s.write(&key, move |tx| {
        Box::pin(async move {
            let row = locked(tx, &p, id).await?;
            domain::require_street_leader(&p, &row.street_id)?;
            if row.state != leave_state::PENDING {
                return Err(not_pending(&row));
            }
            let b = account(tx, &row.person_id, row.year).await?;
            let remaining = b.entitled_days - b.approved_days;
            if row.days > remaining {
                return Err(insufficient(&row.person_id, row.days, remaining));
            }
            Ok(convert::leave(store::decide_leave(tx, id, leave_state::APPROVED, Some(&me(&p)), &comment, now).await?))
        })
    })
    .await
}

pub(super) async fn reject(
    s: &Personnel,
    r: Request<pb::RejectLeaveApplicationRequest>,
) -> Result<pb::LeaveApplication, PersonnelError> {
    let (p, req) = caller(r)?;
    let id = id("leave_application_id", &req.leave_application_id)?;
    let mut v = FieldViolations::new();
    let reason = v.required_text("reason", &req.reason, 2000).to_owned();
    v.into_result()?;
    let key = key("RejectLeaveApplication", &p, &req.request_id, &req)?;
    let now = s.now();
    s.write(&key, move |tx| {
        Box::pin(async move {
            let row = locked(tx, &p, id).await?;
            domain::require_street_leader(&p, &row.street_id)?;
            if row.state != leave_state::PENDING {
                return Err(not_pending(&row));
            }
            Ok(convert::leave(store::decide_leave(tx, id, leave_state::REJECTED, Some(&me(&p)), &reason, now).await?))
        })
    })
    .await
}

pub(super) async fn cancel(
    s: &Personnel,
    r: Request<pb::CancelLeaveApplicationRequest>,
) -> Result<pb::LeaveApplication, PersonnelError> {
    let (p, req) = caller(r)?;
    let id = id("leave_application_id", &req.leave_application_id)?;
    let key = key("CancelLeaveApplication", &p, &req.request_id, &req)?;
    let now = s.now();
    let today = s.today();
    s.write(&key, move |tx| {
        Box::pin(async move {
            let row = locked(tx, &p, id).await?;
            if !may_apply_for(&p, &row.person_id, &row.department_id) {
                return Err(PersonnelError::denied("only the applicant or a leader of their department cancels"));
            }
            let subject = format!("leaveApplications/{id}");
            match row.state.as_str() {
                leave_state::PENDING => {}
                leave_state::APPROVED if today < row.start_date => {}
                leave_state::APPROVED => {
                    return Err(PersonnelError::refused("LEAVE_STARTED", subject, "the leave has already started"));
                }
                _ => return Err(PersonnelError::refused("NOT_CANCELLABLE", subject, "the application is closed")),
            }
            Ok(convert::leave(store::decide_leave(tx, id, leave_state::CANCELLED, None, "", now).await?))
        })
    })
    .await
}

/// Whether `p` may see or manage `person`'s leave account: themselves, a leader or officer
/// of their department, the street they are seconded to, the district.
async fn may_manage_account(
    s: &Personnel,
    p: &Principal,
    person_id: &str,
    write: bool,
) -> Result<bool, PersonnelError> {
    if p.subject == person_id {
        return Ok(!write);
    }
    if !write && domain::caller(p) == Caller::District {
        return Ok(true);
    }
    let Some(person) = s.d.roster.person(person_id).await? else { return Ok(false) };
    if p.acts_for(OrgKind::Department, &person.department_id) {
        return Ok(p.has_any_role(&[Role::DepartmentLeader, Role::PersonnelOfficer]));
    }
    if let Caller::Street(street) = domain::caller(p) {
        let seconded = resident_secondments(s, person_id).await?.iter().any(|s| s.street_id == street);
        return Ok(seconded && (!write || p.has_role(Role::StreetLeader)));
    }
    Ok(false)
}

pub(super) async fn balance_rpc(
    s: &Personnel,
    p: &Principal,
    person_id: &str,
    year: i32,
) -> Result<pb::LeaveBalance, PersonnelError> {
    if !may_manage_account(s, p, person_id, false).await? {
        return Err(PersonnelError::not_found("minhu.personnel.v1.LeaveBalance", person_id));
    }
    let mut conn = s.d.pool.acquire().await?;
    Ok(account(&mut conn, person_id, year).await?)
}

pub(super) async fn balance(
    s: &Personnel,
    r: Request<pb::GetLeaveBalanceRequest>,
) -> Result<pb::LeaveBalance, PersonnelError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let person = if req.person_id.trim().is_empty() { p.subject.clone() } else { req.person_id.clone() };
    let person = uuid(&mut v, "person_id", &person).to_string();
    year(&mut v, "year", req.year);
    v.into_result()?;
    balance_rpc(s, &p, &person, req.year).await
}

pub(super) async fn set_entitlement(
    s: &Personnel,
    r: Request<pb::SetLeaveEntitlementRequest>,
) -> Result<pb::LeaveBalance, PersonnelError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let person = uuid(&mut v, "person_id", &req.person_id).to_string();
    year(&mut v, "year", req.year);
    v.check((0..=365).contains(&req.entitled_days), "entitled_days", "must be from 0 to 365");
    let start = date(&mut v, "service_start_date", req.service_start_date.as_ref());
    if start.is_some() {
        v.check(req.entitled_days == 0, "entitled_days", "must be 0 when service_start_date is set");
    }
    v.into_result()?;
    let days = match start {
        Some(start) => domain::statutory_leave_days(domain::service_years(start, req.year)),
        None => req.entitled_days,
    };
    let key = key("SetLeaveEntitlement", &p, &req.request_id, &req)?;
    let (caller_p, of) = (p.clone(), person.clone());
    let lookups = async move {
        if !may_manage_account(s, &caller_p, &of, true).await? {
            return Err(PersonnelError::denied(
                "only a leader of the person's department or street sets the entitlement",
            ));
        }
        Ok(())
    };
    let now = s.now();
    let year = req.year;
    s.write_after(&key, lookups, move |tx, ()| {
        Box::pin(async move {
            store::lock_person_leave(tx, &person).await?;
            store::set_entitlement(tx, &person, year, days, start, now).await?;
            Ok(account(tx, &person, year).await?)
        })
    })
    .await
}
