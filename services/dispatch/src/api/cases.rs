//! Intake (诉求受理), reading and triage (研判) of cases.

use minhu_grpc::{ApiError, FieldViolations, OrgKind, Principal};
use minhu_proto::dispatch::v1::{self as pb, event::Payload};
use serde_json::json;
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use super::{Dispatch, Entry, RPCS, caller, convert, readable_case, require_street, uuid, write};
use crate::{
    clients::RosterFailure,
    crypto::ReporterCipher,
    domain::events::EventKind,
    domain::{
        access::{self, Audience},
        files, geo,
        model::{Case, CaseState, GeoPoint, Place, Reporter, Triage, TriageDecision, Urgency},
        privacy, repeats, state,
    },
    error::DispatchError,
    events::ToProto as _,
    events::{case_state, code, ts},
    store::{
        Scope, attachments,
        cases::{self, CaseQuery, CaseRow},
        catalogue as catalogue_store, closing, is_unique_violation, tasks,
    },
};

/// The case as `p` may see it: links, intake files, consultations, callbacks, the called
/// departments and the reporter masked per the rules.
pub(super) async fn case_pb(
    conn: &mut PgConnection,
    cipher: &ReporterCipher,
    p: &Principal,
    row: &CaseRow,
    audience: &Audience,
) -> Result<pb::Case, DispatchError> {
    let parts = CaseParts::read(conn, row.case.id).await?;
    case_pb_of(cipher, p, row, audience, &parts)
}

/// What a case's message shows besides its row and audience. Read once, it can be
/// presented to any number of callers without the database (the watch hub does).
#[derive(Debug, Clone)]
pub(super) struct CaseParts {
    related: Vec<Uuid>,
    files: Vec<crate::domain::model::Attachment>,
    consultations: Vec<crate::domain::model::Consultation>,
    callbacks: Vec<crate::domain::model::Callback>,
}

impl CaseParts {
    /// Reads the parts of case `id`; four statements.
    pub(super) async fn read(conn: &mut PgConnection, id: Uuid) -> Result<Self, sqlx::Error> {
        Ok(Self {
            related: cases::related(conn, id).await?,
            files: attachments::intake_files(conn, id).await?,
            consultations: tasks::consultations(conn, id).await?,
            callbacks: closing::callbacks(conn, id).await?,
        })
    }
}

/// The case as `p` may see it, from what was read already (no I/O).
pub(super) fn case_pb_of(
    cipher: &ReporterCipher,
    p: &Principal,
    row: &CaseRow,
    audience: &Audience,
    parts: &CaseParts,
) -> Result<pb::Case, DispatchError> {
    let c = &row.case;
    let reporter = cipher.open(c.id, &row.reporter_sealed).map_err(DispatchError::internal)?;
    let (shown, masked) = privacy::present(&reporter, access::reporter_view(p, audience, reporter.confidential));
    let CaseParts { related, files, consultations, callbacks } = parts;
    // A repeat names its lead first: the case it was clustered with at intake.
    let related: Vec<Uuid> = row.lead_case_id.into_iter().chain(related.iter().copied()).collect();
    Ok(pb::Case {
        id: c.id.to_string(),
        street_id: c.street_id.clone(),
        community_id: c.community_id.clone(),
        grid_id: c.grid_id.clone(),
        channel: code(pb::Channel::from_str_name(&c.channel)),
        source_reference: c.source_reference.clone(),
        category: c.category.clone(),
        title: c.title.clone(),
        description: c.description.clone(),
        place: Some(convert::place_pb(&c.place)),
        urgency: c.urgency.to_proto(),
        state: case_state(c.state),
        reporter: Some(pb::Reporter {
            name: shown.name,
            phone: shown.phone,
            id_number: shown.id_number,
            confidential: shown.confidential,
            masked,
        }),
        related_case_ids: related.iter().map(|r| r.to_string()).collect(),
        attachments: files.iter().map(|a| convert::file_pb(&a.file)).collect(),
        triage: c.triage.as_ref().map(convert::triage_pb),
        consultations: consultations.iter().map(convert::consultation_pb).collect(),
        callbacks: callbacks.iter().map(convert::callback_pb).collect(),
        overdue: c.overdue,
        called_department_ids: audience.departments.clone(),
        created_by: Some(convert::actor_pb(&c.created_by)),
        create_time: ts(c.create_time),
        update_time: ts(c.update_time),
        close_time: c.close_time.and_then(ts),
        close_summary: c.close_summary.clone(),
        lead_case_id: row.lead_case_id.map(|l| l.to_string()).unwrap_or_default(),
        cluster_size: if row.lead_case_id.is_some() { 0 } else { row.cluster_size },
        callback_outcome: code(pb::CallbackOutcome::from_str_name(c.callback_outcome.as_str())),
        catalogue_version: c.catalogue.as_ref().map_or(0, |r| r.version),
        matter_class: c.catalogue.as_ref().map_or(0, |r| code(pb::MatterClass::from_str_name(r.matter_class.as_str()))),
    })
}

/// Re-reads a case after a change and presents it.
pub(super) async fn present(
    s: &Dispatch,
    conn: &mut PgConnection,
    p: &Principal,
    id: Uuid,
) -> Result<pb::Case, DispatchError> {
    let row = cases::get(conn, id, false).await?.ok_or_else(|| DispatchError::not_found("case", id))?;
    let audience = cases::audience(conn, id, &row.case.street_id).await?;
    case_pb(conn, &s.d.cipher, p, &row, &audience).await
}

/// An urgency field: UNSPECIFIED is NORMAL (the contract's default), an undefined number
/// INVALID_ARGUMENT on `field` — the one rule CreateCase and UpdateCase share.
pub(super) fn urgency(v: &mut FieldViolations, field: &str, value: i32) -> Urgency {
    match pb::Urgency::try_from(value) {
        Ok(pb::Urgency::Unspecified) => Urgency::Normal,
        Ok(u) => Urgency::parse(u.as_str_name()).unwrap_or(Urgency::Normal),
        Err(_) => {
            v.add(field, "is not a known urgency");
            Urgency::Normal
        }
    }
}

pub(super) async fn create_case(s: &Dispatch, r: Request<pb::CreateCaseRequest>) -> Result<pb::Case, DispatchError> {
    let (p, req) = caller(r)?;
    if !access::may_create_somewhere(&p) {
        return Err(DispatchError::denied("only streets, their grid workers and the district record appeals"));
    }
    let input = req.case.clone().unwrap_or_default();
    let mut v = FieldViolations::new();
    let channel = pb::Channel::try_from(input.channel).ok().filter(|c| *c != pb::Channel::Unspecified);
    v.check(channel.is_some(), "case.channel", "must be a known channel");
    let category = v.required_text("case.category", &input.category, 100).to_owned();
    let title = v.required_text("case.title", &input.title, 200).to_owned();
    let description = v.required_text("case.description", &input.description, 5000).to_owned();
    let source_reference = v.optional_text("case.source_reference", &input.source_reference, 100).to_owned();
    let place = input.place.clone().unwrap_or_default();
    let address = v.required_text("case.place.address", &place.address, 300).to_owned();
    let location = place.location.as_ref().map(convert::point);
    if let Some(l) = location {
        geo::check(&mut v, "case.place.location", l);
    }
    let reporter_in = input.reporter.clone().unwrap_or_default();
    let reporter = Reporter {
        name: v.required_text("case.reporter.name", &reporter_in.name, 100).to_owned(),
        phone: v.required_text("case.reporter.phone", &reporter_in.phone, 30).to_owned(),
        id_number: v.optional_text("case.reporter.id_number", &reporter_in.id_number, 30).to_owned(),
        confidential: reporter_in.confidential,
    };
    let mut attachment_ids = Vec::new();
    for (i, id) in req.attachment_ids.iter().enumerate() {
        match Uuid::parse_str(id) {
            Ok(id) => attachment_ids.push(id),
            Err(_) => v.add(format!("attachment_ids[{i}]"), "is not a valid id"),
        }
    }
    if input.street_id.trim().is_empty() && location.is_none() {
        v.add("case.place.location", "is required when street_id is not given");
    }
    let urgency_given = input.urgency != pb::Urgency::Unspecified as i32;
    let urgency = urgency(&mut v, "case.urgency", input.urgency);
    v.into_result()?;
    let channel = channel.map(|c| c.as_str_name().to_owned()).unwrap_or_default();
    let key = RPCS.idempotency("CreateCase", &p, &req.request_id, &req)?;
    let (street_id, community_id, grid_id) =
        (input.street_id.trim().to_owned(), input.community_id.trim().to_owned(), input.grid_id.trim().to_owned());
    let lookups = locate(s, location, street_id, community_id, grid_id);
    let (d, principal, dispatch) = (s.d.clone(), p.clone(), s.clone());
    s.write(&key, lookups, move |tx, w, (street_id, community_id, grid_id)| {
        Box::pin(async move {
            let now = w.now();
            if !access::may_create(&p, &street_id, &channel) {
                return Err(DispatchError::denied(format!(
                    "{} may not record appeals in street `{street_id}`",
                    p.organization
                )));
            }
            let actor = convert::actor(&p);
            // 派单目录: the category must be in the current version, whose rule the case keeps.
            let catalogue = catalogue_store::current(tx)
                .await?
                .ok_or_else(|| DispatchError::internal("no dispatch catalogue is published"))?;
            let rule = catalogue.accept("case.category", &category)?;
            let urgency = if urgency_given {
                urgency
            } else {
                catalogue.category(&category).map_or(urgency, |c| c.default_urgency)
            };
            let case = Case {
                id: Uuid::now_v7(),
                street_id,
                community_id,
                grid_id,
                channel,
                source_reference,
                category,
                title,
                description,
                place: Place { address, location },
                urgency,
                state: CaseState::Received,
                triage: None,
                overdue: false,
                created_by: actor.clone(),
                create_time: now,
                update_time: now,
                close_time: None,
                close_summary: String::new(),
                callback_outcome: crate::domain::model::CallbackOutcome::Pending,
                catalogue: Some(rule),
            };
            let sealed = d.cipher.seal(case.id, &reporter);
            if let Err(e) = cases::insert(tx, &case, &sealed).await {
                if is_unique_violation(&e, "cases_source_reference_key") {
                    return Err(ApiError::AlreadyExists { resource: "case", id: case.source_reference.clone() }.into());
                }
                return Err(e.into());
            }
            let mut files = Vec::new();
            for (i, id) in attachment_ids.iter().enumerate() {
                let field = format!("attachment_ids[{i}]");
                let file = attachments::get(tx, *id).await?;
                let Some(file) = file.filter(|f| files::staged_for(f, &principal.subject, now)) else {
                    return Err(DispatchError::field(field, "is not a file staged by you (or it expired)"));
                };
                if files.iter().any(|f: &crate::domain::model::Attachment| f.file.id == file.file.id) {
                    continue;
                }
                if !attachments::attach_to_case(tx, &file, case.id).await? {
                    return Err(DispatchError::field(field, "is not a file staged by you (or it expired)"));
                }
                files.push(file);
            }
            // A repeat (重复诉求) joins the cluster of the nearest lead: an indexed box
            // look-up and one update, however many cases the street and category hold.
            let mut related = Vec::new();
            let mut lead = None;
            if let Some(here) = case.place.location {
                cases::lock_cells(tx, &repeats::cells(&case.street_id, &case.category, here)).await?;
                let candidates = cases::lead_candidates(
                    tx,
                    &case.street_id,
                    &case.category,
                    here,
                    repeats::bbox(here),
                    repeats::since(now),
                )
                .await?;
                lead = repeats::lead(case.id, here, candidates);
                if let Some(lead) = lead {
                    cases::join_cluster(tx, case.id, lead).await?;
                    related.push(lead.to_string());
                }
            }
            let payload = Payload::CaseCreated(pb::CaseCreated {
                channel: code(pb::Channel::from_str_name(&case.channel)),
                category: case.category.clone(),
                urgency: case.urgency.to_proto(),
                community_id: case.community_id.clone(),
                grid_id: case.grid_id.clone(),
                related_case_ids: related.clone(),
                lead_case_id: lead.map(|l| l.to_string()).unwrap_or_default(),
            });
            let mut after = serde_json::to_value(&case).unwrap_or_default();
            after["reporter_digest"] = json!(d.cipher.digest(case.id, &reporter));
            after["related_case_ids"] = json!(related);
            after["lead_case_id"] = json!(lead);
            let entry = Entry {
                event_type: EventKind::CaseCreated,
                call_id: None,
                department_id: String::new(),
                before: json!({}),
                after,
                payload,
            };
            w.journal(&case, &actor, entry);
            // Each staged file joining the case is a change of its own, on the trail and the feed.
            for file in &files {
                let payload =
                    Payload::AttachmentAdded(pb::AttachmentAdded { attachment: Some(convert::file_pb(&file.file)) });
                let entry = Entry {
                    event_type: EventKind::AttachmentAdded,
                    call_id: None,
                    department_id: String::new(),
                    before: json!({"attachment": {"id": file.file.id, "case_id": null}}),
                    after: json!({"attachment": file.file, "case_id": case.id, "intake": true}),
                    payload,
                };
                w.journal(&case, &actor, entry);
            }
            present(&dispatch, tx, &principal, case.id).await
        })
    })
    .await
}

/// Where the place is, by the roster: the street (a given street must agree with it), the
/// community and the grid. A look-up of the write path: no transaction, no lock.
async fn locate(
    s: &Dispatch,
    location: Option<GeoPoint>,
    mut street_id: String,
    mut community_id: String,
    mut grid_id: String,
) -> Result<(String, String, String), DispatchError> {
    let Some(l) = location else { return Ok((street_id, community_id, grid_id)) };
    match s.d.roster.resolve_location(l.lat, l.lng).await {
        Ok(found) => {
            if street_id.is_empty() {
                street_id = found.street_id.clone();
            } else if street_id != found.street_id {
                return Err(DispatchError::field(
                    "case.street_id",
                    format!("the place lies in street `{}`, not `{street_id}`", found.street_id),
                ));
            }
            if community_id.is_empty() {
                community_id = found.community_id;
            }
            if grid_id.is_empty() {
                grid_id = found.grid_id;
            }
        }
        Err(e) if street_id.is_empty() => {
            return Err(e.or(|| DispatchError::field("case.place.location", "lies in no street of the district")));
        }
        // A given street with a place the roster cannot place: keep the street, but an
        // unreachable roster is still an outage.
        Err(RosterFailure::Other(err)) => return Err(err),
        Err(_) => {}
    }
    Ok((street_id, community_id, grid_id))
}

pub(super) async fn get_case(s: &Dispatch, r: Request<pb::GetCaseRequest>) -> Result<pb::Case, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("case_id", &req.case_id)?;
    let mut conn = s.d.pool.acquire().await?;
    let (row, audience) = readable_case(&mut conn, &p, id, false).await?;
    case_pb(&mut conn, &s.d.cipher, &p, &row, &audience).await
}

/// The SQL scope of what `p` may read.
pub(super) fn scope(p: &Principal) -> Result<Scope, DispatchError> {
    if access::is_district(p) {
        return Ok(Scope::All);
    }
    match p.organization.kind {
        OrgKind::Street => Ok(Scope::Street(p.organization.id.clone())),
        OrgKind::Department if access::is_department_of(p, &p.organization.id) => {
            Ok(Scope::Department(p.organization.id.clone()))
        }
        OrgKind::Department => Ok(Scope::Person(p.subject.clone())),
        _ => Err(DispatchError::denied("cases are read by streets, departments, field officers and the district")),
    }
}

pub(super) fn query(filter: Option<&pb::CaseFilter>) -> Result<CaseQuery, DispatchError> {
    let Some(f) = filter else { return Ok(CaseQuery::default()) };
    let mut v = FieldViolations::new();
    let mut states = Vec::new();
    for (i, s) in f.states.iter().enumerate() {
        match pb::CaseState::try_from(*s).ok().filter(|s| *s != pb::CaseState::Unspecified) {
            Some(s) => states.push(s.as_str_name().to_owned()),
            None => v.add(format!("filter.states[{i}]"), "is not a known state"),
        }
    }
    let name = |field: &str, value: i32, v: &mut FieldViolations, f: fn(i32) -> Option<&'static str>| {
        if value == 0 {
            String::new()
        } else {
            f(value).map(str::to_owned).unwrap_or_else(|| {
                v.add(field, "is not a known value");
                String::new()
            })
        }
    };
    let channel = name("filter.channel", f.channel, &mut v, |x| pb::Channel::try_from(x).ok().map(|c| c.as_str_name()));
    let urgency = name("filter.urgency", f.urgency, &mut v, |x| pb::Urgency::try_from(x).ok().map(|c| c.as_str_name()));
    let mut callback_outcomes = Vec::new();
    for (i, o) in f.callback_outcomes.iter().enumerate() {
        match pb::CallbackOutcome::try_from(*o).ok().filter(|o| *o != pb::CallbackOutcome::Unspecified) {
            Some(o) => callback_outcomes.push(o.as_str_name().to_owned()),
            None => v.add(format!("filter.callback_outcomes[{i}]"), "is not a known callback outcome"),
        }
    }
    let range = f.create_time_range.as_ref();
    v.into_result()?;
    Ok(CaseQuery {
        states,
        street_id: f.street_id.clone(),
        department_id: f.department_id.clone(),
        category: f.category.clone(),
        channel,
        urgency,
        created_from: convert::time(range.and_then(|r| r.start_time.as_ref())),
        created_to: convert::time(range.and_then(|r| r.end_time.as_ref())),
        overdue_only: f.overdue_only,
        query: f.query.clone(),
        callback_outcomes,
    })
}

pub(super) async fn list_cases(
    s: &Dispatch,
    r: Request<pb::ListCasesRequest>,
) -> Result<pb::ListCasesResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let scope = scope(&p)?;
    let q = query(req.filter.as_ref())?;
    let fingerprint = format!("{q:?}");
    let page =
        RPCS.page::<(chrono::DateTime<chrono::Utc>, Uuid)>(req.page_size, &req.page_token, &["cases", &fingerprint])?;
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, total) = cases::list(&mut conn, &scope, &q, page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| (r.case.create_time, r.case.id));
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let audience = cases::audience(&mut conn, row.case.id, &row.case.street_id).await?;
        out.push(case_pb(&mut conn, &s.d.cipher, &p, row, &audience).await?);
    }
    Ok(pb::ListCasesResponse { cases: out, next_page_token, total_size: total as i32 })
}

pub(super) async fn count_cases(
    s: &Dispatch,
    r: Request<pb::CountCasesRequest>,
) -> Result<pb::CountCasesResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let scope = scope(&p)?;
    let q = query(req.filter.as_ref())?;
    let mut conn = s.d.pool.acquire().await?;
    let (counts, overdue) = cases::count(&mut conn, &scope, &q).await?;
    Ok(pb::CountCasesResponse {
        total_count: counts.iter().map(|(_, n)| *n as i32).sum(),
        counts: counts.into_iter().map(|(s, n)| pb::CaseStateCount { state: case_state(s), count: n as i32 }).collect(),
        overdue_count: overdue as i32,
    })
}

pub(super) async fn triage_case(s: &Dispatch, r: Request<pb::TriageCaseRequest>) -> Result<pb::Case, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("case_id", &req.case_id)?;
    let mut v = FieldViolations::new();
    let decision = pb::TriageDecision::try_from(req.decision).ok().and_then(|d| TriageDecision::parse(d.as_str_name()));
    v.check(decision.is_some(), "decision", "must be SOLVE_AT_STREET, START_CALL or DECLINE");
    let reason = v.optional_text("reason", &req.reason, 2000).to_owned();
    let decline = pb::DeclineReason::try_from(req.decline_reason).unwrap_or(pb::DeclineReason::Unspecified);
    let mut duplicate_of = None;
    if decision == Some(TriageDecision::Decline) {
        v.check(!reason.is_empty(), "reason", "is required when declining");
        v.check(decline != pb::DeclineReason::Unspecified, "decline_reason", "is required when declining");
        if decline == pb::DeclineReason::Duplicate {
            match Uuid::parse_str(&req.duplicate_of_case_id) {
                Ok(d) if d != id => duplicate_of = Some(d),
                Ok(_) => v.add("duplicate_of_case_id", "must be another case"),
                Err(_) => v.add("duplicate_of_case_id", "is required for DUPLICATE"),
            }
        }
    }
    v.into_result()?;
    let decision = decision.ok_or_else(|| DispatchError::field("decision", "must be set"))?;
    let key = RPCS.idempotency("TriageCase", &p, &req.request_id, &req)?;
    let dispatch = s.clone();
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            // The repeated case is held to LinkCases' rule (readable and correctable by the
            // caller, foreign = missing) and locked with this one in id order.
            let mut rows = super::corrections::lock_all(tx, &p, std::iter::once(id).chain(duplicate_of)).await?;
            let mut row = rows.remove(&id).ok_or_else(|| DispatchError::internal("locked case vanished"))?;
            require_street(&p, &row.case, "triage its cases")?;
            let before = json!({"state": row.case.state, "triage": row.case.triage});
            row.case.state = state::triage(row.case.state, decision)?;
            let actor = convert::actor(&p);
            let mut joined = None;
            if let Some(other) = duplicate_of {
                let linked = cases::link(tx, id, other, now).await?;
                let other_row = rows.get_mut(&other).ok_or_else(|| DispatchError::internal("locked case vanished"))?;
                // A duplicate that leads no repeats of its own joins the other case's
                // cluster (重复诉求), so one lead is called, rated and scored.
                let lead = other_row.lead_case_id.unwrap_or(other);
                if row.lead_case_id.is_none() && row.cluster_size == 1 && lead != id {
                    cases::join_cluster(tx, id, lead).await?;
                    joined = Some(lead);
                }
                if linked {
                    // The repeated case's own trail shows the link too, as LinkCases does.
                    let entry = Entry {
                        event_type: EventKind::CasesLinked,
                        call_id: None,
                        department_id: String::new(),
                        before: json!({"related_case_id": id, "linked": false}),
                        after: json!({"related_case_id": id, "linked": true, "duplicate": true}),
                        payload: Payload::CaseLinksChanged(pb::CaseLinksChanged { case_ids: vec![id.to_string()] }),
                    };
                    w.record(tx, &mut other_row.case, &actor, entry).await?;
                }
            }
            let is_decline = decision == TriageDecision::Decline;
            row.case.triage = Some(Triage {
                decision,
                reason,
                decline_reason: if is_decline { decline.as_str_name().to_owned() } else { String::new() },
                duplicate_of_case_id: duplicate_of,
                triaged_by: actor.clone(),
                triage_time: now,
            });
            if row.case.state == CaseState::Declined {
                row.case.close_time = Some(now);
            }
            let payload = Payload::CaseTriaged(pb::CaseTriaged {
                decision: decision.to_proto(),
                decline_reason: if is_decline { decline as i32 } else { 0 },
                duplicate_of_case_id: duplicate_of.map(|d| d.to_string()).unwrap_or_default(),
            });
            let mut after = json!({"state": row.case.state, "triage": row.case.triage});
            if let Some(lead) = joined {
                after["lead_case_id"] = json!(lead);
            }
            let entry = Entry {
                event_type: EventKind::CaseTriaged,
                call_id: None,
                department_id: String::new(),
                before,
                after,
                payload,
            };
            w.record(tx, &mut row.case, &actor, entry).await?;
            present(&dispatch, tx, &p, id).await
        })
    })
    .await
}
