//! Calls (呼叫): starting them, signing (签收), designating people (拟定人选), check-in
//! (报到) and sharing the reporter's contact.

use std::collections::HashMap;

use minhu_grpc::{FieldViolations, Principal};
use minhu_proto::{
    dispatch::v1::{self as pb, event::Payload},
    roster::v1 as roster,
};
use serde_json::json;
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use super::{Dispatch, Entry, RPCS, caller, cases::present, convert, readable_case, require_street, uuid, write};
use crate::{
    deadlines as scheduled,
    domain::events::EventKind,
    domain::{
        access::{self, Audience},
        deadlines, geo,
        model::{Call, CallState, PersonRef, Place, StaffRequirement},
        state,
    },
    error::DispatchError,
    escalation,
    events::ToProto as _,
    events::{code, ts},
    store::{
        calls::{self, CallQuery},
        cases::CaseRow,
    },
};

/// A call that `p` may read, with its case and the case's audience; when `lock`, the case
/// and then the call are locked (the order of every write). NOT_FOUND of the call when
/// there is none or `p` may not know of it — never for a database fault.
async fn readable_call(
    conn: &mut PgConnection,
    p: &Principal,
    call_id: Uuid,
    lock: bool,
) -> Result<(CaseRow, Audience, Call), DispatchError> {
    let case_id = calls::case_of(conn, call_id).await?.ok_or_else(|| DispatchError::not_found("call", call_id))?;
    let (row, audience) = match readable_case(conn, p, case_id, lock).await {
        Err(e) if e.is_not_found() => return Err(DispatchError::not_found("call", call_id)),
        other => other?,
    };
    let call = calls::get(conn, call_id, lock).await?.ok_or_else(|| DispatchError::not_found("call", call_id))?;
    Ok((row, audience, call))
}

/// [`readable_call`], locked.
async fn locked_call(
    conn: &mut PgConnection,
    p: &Principal,
    call_id: Uuid,
) -> Result<(CaseRow, Audience, Call), DispatchError> {
    readable_call(conn, p, call_id, true).await
}

fn require_department(p: &Principal, call: &Call, what: &str) -> Result<(), DispatchError> {
    if access::is_department_of(p, &call.department_id) {
        Ok(())
    } else {
        Err(DispatchError::denied(format!("only the department `{}` may {what}", call.department_id)))
    }
}

fn call_json(c: &Call) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    v["designations"] = serde_json::to_value(&c.designations).unwrap_or_default();
    v
}

pub(super) async fn start_call(
    s: &Dispatch,
    r: Request<pb::StartCallRequest>,
) -> Result<pb::StartCallResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let case_id = uuid("case_id", &req.case_id)?;
    let now = s.now();
    let mut v = FieldViolations::new();
    v.check(!req.calls.is_empty(), "calls", "must name at least one department");
    let mut seen = std::collections::HashSet::new();
    for (i, c) in req.calls.iter().enumerate() {
        let f = |name: &str| format!("calls[{i}].{name}");
        if v.required_text(&f("department_id"), &c.department_id, 64).is_empty() {
        } else if !seen.insert(c.department_id.trim().to_owned()) {
            v.add(f("department_id"), "appears twice");
        }
        v.required_text(&f("matters"), &c.matters, 2000);
        v.required_text(&f("expected_goal"), &c.expected_goal, 2000);
        let count = c.staff_requirement.as_ref().map_or(0, |s| s.count);
        v.check(count >= 1, &f("staff_requirement.count"), "must be at least 1");
        let qualification = c.staff_requirement.as_ref().map_or(0, |s| s.qualification);
        v.check(
            minhu_proto::common::v1::Qualification::try_from(qualification).is_ok(),
            &f("staff_requirement.qualification"),
            "is not a known qualification",
        );
        let place = c.report_place.clone().unwrap_or_default();
        v.required_text(&f("report_place.address"), &place.address, 300);
        let report = convert::time(c.report_time.as_ref());
        v.check(report.is_some(), &f("report_time"), "is required");
        let beyond =
            |t: Option<&prost_types::Timestamp>| convert::time(t).is_some_and(|t| !deadlines::within_horizon(now, t));
        for (name, t) in [
            ("report_time", &c.report_time),
            ("sign_deadline", &c.sign_deadline),
            ("check_in_close_time", &c.check_in_close_time),
        ] {
            v.check(!beyond(t.as_ref()), &f(name), "must be within a year");
        }
        if let Some(report) = report.filter(|r| deadlines::within_horizon(now, *r)) {
            let sign = convert::time(c.sign_deadline.as_ref());
            let close =
                convert::time(c.check_in_close_time.as_ref()).unwrap_or_else(|| s.d.deadlines.check_in_close(report));
            if let Some(sign) = sign {
                v.check(now < sign, &f("sign_deadline"), "must be in the future");
                v.check(sign <= report, &f("sign_deadline"), "must not be after report_time");
            }
            v.check(now < report, &f("report_time"), "must be in the future");
            v.check(report < close, &f("check_in_close_time"), "must be after report_time");
        }
        v.check(c.check_in_radius_meters >= 0.0, &f("check_in_radius_meters"), "must not be negative");
    }
    v.into_result()?;
    let key = RPCS.idempotency("StartCall", &p, &req.request_id, &req)?;
    let lookups = called_departments(s.clone(), p.clone(), case_id, req.calls.clone());
    let (dispatch, d) = (s.clone(), s.d.clone());
    let write = s.write(&key, lookups, move |tx, w, stations| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, _) = readable_case(tx, &p, case_id, true).await?;
            require_street(&p, &row.case, "call departments")?;
            crate::domain::repeats::may_call(case_id, row.lead_case_id)?;
            let next = state::start_call(row.case.state)?;
            let existing = calls::of_case(tx, case_id).await?;
            let actor = convert::actor(&p);
            // The deadlines of the catalogue version the case was accepted under.
            let policy = d.deadlines.under(row.case.catalogue.as_ref());
            let mut out = Vec::new();
            for c in &req.calls {
                let department_id = c.department_id.trim().to_owned();
                state::may_call(&existing, &department_id)?;
                let report_time = convert::time(c.report_time.as_ref()).unwrap_or(now);
                let station_id = stations.get(&department_id).cloned().unwrap_or_default();
                let req_staff = c.staff_requirement.clone().unwrap_or_default();
                let place = c.report_place.clone().unwrap_or_default();
                let call = Call {
                    id: Uuid::now_v7(),
                    case_id,
                    street_id: row.case.street_id.clone(),
                    department_id: department_id.clone(),
                    station_id,
                    matters: c.matters.trim().to_owned(),
                    expected_goal: c.expected_goal.trim().to_owned(),
                    staff_requirement: StaffRequirement {
                        count: req_staff.count,
                        qualification: minhu_proto::common::v1::Qualification::try_from(req_staff.qualification)
                            .unwrap_or_default()
                            .as_str_name()
                            .to_owned(),
                        note: req_staff.note,
                    },
                    report_time,
                    report_place: Place {
                        address: place.address.trim().to_owned(),
                        location: place.location.as_ref().map(convert::point),
                    },
                    check_in_close_time: convert::time(c.check_in_close_time.as_ref())
                        .unwrap_or_else(|| policy.check_in_close(report_time)),
                    check_in_radius_meters: if c.check_in_radius_meters > 0.0 {
                        c.check_in_radius_meters
                    } else {
                        d.deadlines.check_in_radius_meters
                    },
                    sign_deadline: convert::time(c.sign_deadline.as_ref())
                        .unwrap_or_else(|| policy.sign_deadline(row.case.urgency, now).min(report_time)),
                    state: CallState::PendingSign,
                    signed_time: None,
                    signed_by: None,
                    signed_late: false,
                    designations: vec![],
                    designate_time: None,
                    check_in_closed: false,
                    shortfall_count: 0,
                    contact_shared: false,
                    contact_share_time: None,
                    withdraw_reason: String::new(),
                    created_by: actor.clone(),
                    create_time: now,
                    update_time: now,
                };
                calls::insert(tx, &call).await?;
                w.schedule(tx, scheduled::sign(&call)).await?;
                w.schedule(tx, scheduled::check_in(&call)).await?;
                let before = json!({"case": {"state": row.case.state}});
                row.case.state = next;
                let payload = Payload::CallStarted(pb::CallStarted {
                    sign_deadline: ts(call.sign_deadline),
                    report_time: ts(call.report_time),
                    check_in_close_time: ts(call.check_in_close_time),
                    staff_requirement: convert::call_pb(&call).staff_requirement,
                    urgency: row.case.urgency.to_proto(),
                });
                let after = json!({"call": call_json(&call), "case": {"state": next}});
                let entry = Entry {
                    event_type: EventKind::CallStarted,
                    call_id: Some(call.id),
                    department_id,
                    before,
                    after,
                    payload,
                };
                w.record(tx, &mut row.case, &actor, entry).await?;
                out.push(convert::call_pb(&call));
            }
            Ok(pb::StartCallResponse { case: Some(present(&dispatch, tx, &p, case_id).await?), calls: out })
        })
    });
    write.await
}

/// StartCall's look-ups, before any lock: each department (known and active) and its
/// station serving the case's street (a street never changes, so an unlocked read names it;
/// the transaction checks the case again under its lock).
async fn called_departments(
    s: Dispatch,
    p: Principal,
    case_id: Uuid,
    calls: Vec<pb::Call>,
) -> Result<HashMap<String, String>, DispatchError> {
    let street_id = {
        let mut conn = s.d.pool.acquire().await?;
        let (row, _) = readable_case(&mut conn, &p, case_id, false).await?;
        require_street(&p, &row.case, "call departments")?;
        row.case.street_id
    };
    let mut stations = HashMap::new();
    for (i, c) in calls.iter().enumerate() {
        let id = c.department_id.trim();
        let department = s.d.roster.department(id).await.map_err(|e| {
            e.or(|| DispatchError::field(format!("calls[{i}].department_id"), "is not a known department"))
        })?;
        state::callable_department(id, department.active)?;
        // A department without a station for the street is called all the same.
        let station = s.d.roster.station(id, &street_id).await.ok().flatten().map(|s| s.id).unwrap_or_default();
        stations.insert(id.to_owned(), station);
    }
    Ok(stations)
}

pub(super) async fn get_call(s: &Dispatch, r: Request<pb::GetCallRequest>) -> Result<pb::Call, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("call_id", &req.call_id)?;
    let mut conn = s.d.pool.acquire().await?;
    let (_, _, call) = readable_call(&mut conn, &p, id, false).await?;
    Ok(convert::call_pb(&call))
}

pub(super) async fn list_calls(
    s: &Dispatch,
    r: Request<pb::ListCallsRequest>,
) -> Result<pb::ListCallsResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let scope = super::cases::scope(&p)?;
    let case_id = if req.case_id.is_empty() { None } else { Some(uuid("case_id", &req.case_id)?) };
    let mut states = Vec::new();
    for (i, st) in req.states.iter().enumerate() {
        match pb::CallState::try_from(*st).ok().filter(|s| *s != pb::CallState::Unspecified) {
            Some(s) => states.push(s.as_str_name().to_owned()),
            None => return Err(DispatchError::field(format!("states[{i}]"), "is not a known state")),
        }
    }
    let range = req.create_time_range.as_ref();
    let q = CallQuery {
        case_id,
        department_id: req.department_id.clone(),
        street_id: req.street_id.clone(),
        states,
        designated_person_id: req.designated_person_id.clone(),
        created_from: convert::time(range.and_then(|r| r.start_time.as_ref())),
        created_to: convert::time(range.and_then(|r| r.end_time.as_ref())),
    };
    let fingerprint = format!("{q:?}");
    let page =
        RPCS.page::<(chrono::DateTime<chrono::Utc>, Uuid)>(req.page_size, &req.page_token, &["calls", &fingerprint])?;
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, total) = calls::list(&mut conn, &scope, &q, page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |c| (c.create_time, c.id));
    Ok(pb::ListCallsResponse {
        calls: rows.iter().map(convert::call_pb).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

pub(super) async fn sign_call(s: &Dispatch, r: Request<pb::SignCallRequest>) -> Result<pb::Call, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("call_id", &req.call_id)?;
    let key = RPCS.idempotency("SignCall", &p, &req.request_id, &req)?;
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let (mut row, _, mut call) = locked_call(tx, &p, id).await?;
            require_department(&p, &call, "sign this call")?;
            let decision = call.sign(convert::person(&p), w.now())?;
            calls::update(tx, &call).await?;
            w.decide(tx, &mut row.case, &convert::actor(&p), &call, decision).await?;
            Ok(convert::call_pb(&call))
        })
    })
    .await
}

pub(super) async fn designate_responders(
    s: &Dispatch,
    r: Request<pb::DesignateRespondersRequest>,
) -> Result<pb::Call, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("call_id", &req.call_id)?;
    let person_ids = designated_ids(&req.person_ids)?;
    let key = RPCS.idempotency("DesignateResponders", &p, &req.request_id, &req)?;
    let lookups = eligible_people(s.clone(), p.clone(), id, person_ids);
    s.write(&key, lookups, move |tx, w, people| {
        Box::pin(async move {
            let (mut row, _, mut call) = locked_call(tx, &p, id).await?;
            require_department(&p, &call, "designate people for this call")?;
            let people = people
                .into_iter()
                .map(|person| PersonRef {
                    id: person.id,
                    name: person.name,
                    department_id: person.department_id,
                    station_id: person.station_id,
                })
                .collect();
            let decision = call.designate(people, w.now())?;
            calls::update(tx, &call).await?;
            w.decide(tx, &mut row.case, &convert::actor(&p), &call, decision).await?;
            Ok(convert::call_pb(&call))
        })
    })
    .await
}

/// Most people one call designates.
const MAX_DESIGNATED: usize = 50;

/// The people named, each once: ids that are UUIDs in any spelling (case, braces, no
/// hyphens) are made canonical first, so two spellings of one person are one person and
/// the roster's answer matches what is stored; naming someone twice is refused on the field.
fn designated_ids(ids: &[String]) -> Result<Vec<String>, DispatchError> {
    let mut v = FieldViolations::new();
    v.check(!ids.is_empty(), "person_ids", "must name at least one person");
    v.check(ids.len() <= MAX_DESIGNATED, "person_ids", format!("must name at most {MAX_DESIGNATED} people"));
    let mut seen: Vec<(usize, String)> = Vec::new();
    for (i, raw) in ids.iter().enumerate().take(MAX_DESIGNATED) {
        let id = v.required_text(&format!("person_ids[{i}]"), raw, 64).to_owned();
        let id = Uuid::parse_str(&id).map(|u| u.to_string()).unwrap_or(id);
        match seen.iter().find(|(_, o)| *o == id) {
            Some((j, _)) => v.add(format!("person_ids[{i}]"), format!("names the same person as person_ids[{j}]")),
            None => seen.push((i, id)),
        }
    }
    v.into_result()?;
    Ok(seen.into_iter().map(|(_, id)| id).collect())
}

async fn eligible_people(
    s: Dispatch,
    p: Principal,
    id: Uuid,
    person_ids: Vec<String>,
) -> Result<Vec<roster::Person>, DispatchError> {
    let call = {
        let mut conn = s.d.pool.acquire().await?;
        let (_, _, call) = readable_call(&mut conn, &p, id, false).await?;
        require_department(&p, &call, "designate people for this call")?;
        state::designate(call.state, deadlines::passed(call.report_time, s.now()))?;
        call
    };
    let verdict =
        s.d.roster
            .verify_designation(roster::VerifyDesignationRequest {
                department_id: call.department_id.clone(),
                person_ids: person_ids.clone(),
                qualification: code(minhu_proto::common::v1::Qualification::from_str_name(
                    &call.staff_requirement.qualification,
                )),
                required_count: call.staff_requirement.count,
            })
            .await
            .map_err(|e| e.or(|| DispatchError::field("person_ids", "could not be verified")))?;
    let ineligible =
        verdict.checks.iter().filter(|c| !c.eligible).map(|c| (c.person_id.clone(), c.reasons.join("; "))).collect();
    state::designation_verdict(&id.to_string(), ineligible, verdict.eligible_count, call.staff_requirement.count)?;
    let people =
        s.d.roster
            .people(&person_ids)
            .await
            .map_err(|e| e.or(|| DispatchError::field("person_ids", "unknown people")))?;
    Ok(people)
}

pub(super) async fn check_in(s: &Dispatch, r: Request<pb::CheckInRequest>) -> Result<pb::Call, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("call_id", &req.call_id)?;
    let Some(location) = req.location.as_ref().map(convert::point) else {
        return Err(DispatchError::field("location", "is required"));
    };
    let mut v = FieldViolations::new();
    geo::check(&mut v, "location", location);
    v.into_result()?;
    let person_id = if req.person_id.trim().is_empty() { p.subject.clone() } else { req.person_id.trim().to_owned() };
    let device_time = convert::time(req.device_time.as_ref());
    let key = RPCS.idempotency("CheckIn", &p, &req.request_id, &req)?;
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let (mut row, _, mut call) = locked_call(tx, &p, id).await?;
            let on_behalf = person_id != p.subject;
            if on_behalf && !access::is_street_of(&p, &row.case.street_id) {
                return Err(DispatchError::denied("only the person or the street on site may check a person in"));
            }
            let recorder = on_behalf.then(|| convert::actor(&p));
            let decision = call.check_in(&person_id, location, device_time, recorder, w.now())?;
            calls::update(tx, &call).await?;
            w.decide(tx, &mut row.case, &convert::actor(&p), &call, decision).await?;
            Ok(convert::call_pb(&call))
        })
    })
    .await
}

pub(super) async fn share_reporter_contact(
    s: &Dispatch,
    r: Request<pb::ShareReporterContactRequest>,
) -> Result<pb::Call, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("call_id", &req.call_id)?;
    let key = RPCS.idempotency("ShareReporterContact", &p, &req.request_id, &req)?;
    let d = s.d.clone();
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let (mut row, _, mut call) = locked_call(tx, &p, id).await?;
            require_street(&p, &row.case, "share the reporter's contact")?;
            let reporter = d.cipher.open(row.case.id, &row.reporter_sealed).map_err(DispatchError::internal)?;
            let subject = format!("cases/{}", row.case.id);
            if let Some(decision) = call.share_contact(reporter.confidential, &subject, w.now())? {
                calls::update(tx, &call).await?;
                w.decide(tx, &mut row.case, &convert::actor(&p), &call, decision).await?;
            }
            Ok(convert::call_pb(&call))
        })
    })
    .await
}

pub(super) async fn withdraw_call(
    s: &Dispatch,
    r: Request<pb::WithdrawCallRequest>,
) -> Result<pb::Call, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("call_id", &req.call_id)?;
    let mut v = FieldViolations::new();
    let reason = v.required_text("reason", &req.reason, 2000).to_owned();
    v.into_result()?;
    let key = RPCS.idempotency("WithdrawCall", &p, &req.request_id, &req)?;
    let write = s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let (mut row, _, mut call) = locked_call(tx, &p, id).await?;
            require_street(&p, &row.case, "withdraw its calls")?;
            state::require_open(row.case.state)?;
            let before = json!({
                "call": {"id": id, "state": call.state},
                "case": {"state": row.case.state, "overdue": row.case.overdue},
            });
            call.state = state::withdraw(call.state)?;
            call.withdraw_reason = reason.clone();
            call.update_time = now;
            calls::update(tx, &call).await?;
            w.cancel(tx, scheduled::SIGN, call.id).await?;
            w.cancel(tx, scheduled::CHECK_IN, call.id).await?;
            // Settled here as well as in `commit`, so the trail shows where the case went
            // (CALLING → TRIAGED when this was the last active call).
            escalation::settle(tx, &mut row.case).await?;
            let after = json!({
                "call": {"id": id, "state": call.state, "withdraw_reason": call.withdraw_reason},
                "case": {"state": row.case.state, "overdue": row.case.overdue},
            });
            let entry = Entry {
                event_type: EventKind::CallWithdrawn,
                call_id: Some(id),
                department_id: call.department_id.clone(),
                before,
                after,
                payload: Payload::CallWithdrawn(pb::CallWithdrawn { reason }),
            };
            w.record(tx, &mut row.case, &convert::actor(&p), entry).await?;
            Ok(convert::call_pb(&call))
        })
    });
    write.await
}

pub(super) async fn record_inaction(
    s: &Dispatch,
    r: Request<pb::RecordInactionRequest>,
) -> Result<pb::Call, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("call_id", &req.call_id)?;
    let mut v = FieldViolations::new();
    let person_id = v.required_text("person_id", &req.person_id, 64).to_owned();
    let note = v.required_text("note", &req.note, 2000).to_owned();
    v.into_result()?;
    let key = RPCS.idempotency("RecordInaction", &p, &req.request_id, &req)?;
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let (mut row, _, mut call) = locked_call(tx, &p, id).await?;
            require_street(&p, &row.case, "record inaction")?;
            state::require_open(row.case.state)?;
            let decision = call.record_inaction(&person_id, &note, w.now())?;
            calls::update(tx, &call).await?;
            w.decide(tx, &mut row.case, &convert::actor(&p), &call, decision).await?;
            Ok(convert::call_pb(&call))
        })
    })
    .await
}
