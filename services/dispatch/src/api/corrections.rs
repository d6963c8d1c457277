//! Corrections to a case: its details (UpdateCase, with a field mask) and its repeat links
//! (重复诉求; LinkCases, UnlinkCases). The street corrects its own cases, the district any.

use std::collections::BTreeMap;

use minhu_grpc::{FieldViolations, Principal, UpdatePaths};
use minhu_proto::dispatch::v1::{self as pb, event::Payload};
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use super::{Dispatch, Entry, RPCS, caller, cases::present, convert, readable_case, uuid, write};
use crate::{
    clients::RosterFailure,
    domain::events::EventKind,
    domain::{
        access, geo,
        model::{Place, Reporter},
        privacy::ReporterView,
        state,
    },
    error::DispatchError,
    store::cases::{self, CaseRow},
};

/// The fields UpdateCase may change, in the order they are applied and reported.
const UPDATABLE: [&str; 8] =
    ["category", "title", "description", "place", "urgency", "community_id", "grid_id", "reporter"];

/// Most cases one LinkCases or UnlinkCases names.
const MAX_LINKS: usize = 100;

/// The validated new values, for the fields the mask names.
#[derive(Debug, Default)]
struct Patch {
    category: Option<String>,
    title: Option<String>,
    description: Option<String>,
    place: Option<Place>,
    urgency: Option<crate::domain::model::Urgency>,
    community_id: Option<String>,
    grid_id: Option<String>,
    reporter: Option<Reporter>,
}

fn patch(input: &pb::Case, paths: &UpdatePaths) -> Result<Patch, DispatchError> {
    let mut v = FieldViolations::new();
    let mut p = Patch::default();
    // The mask is required, so `populated` never decides.
    if paths.wants("category", true) {
        p.category = Some(v.required_text("case.category", &input.category, 100).to_owned());
    }
    if paths.wants("title", true) {
        p.title = Some(v.required_text("case.title", &input.title, 200).to_owned());
    }
    if paths.wants("description", true) {
        p.description = Some(v.required_text("case.description", &input.description, 5000).to_owned());
    }
    if paths.wants("place", true) {
        let place = input.place.clone().unwrap_or_default();
        let address = v.required_text("case.place.address", &place.address, 300).to_owned();
        let location = place.location.as_ref().map(convert::point);
        if let Some(l) = location {
            geo::check(&mut v, "case.place.location", l);
        }
        p.place = Some(Place { address, location });
    }
    if paths.wants("urgency", true) {
        p.urgency = Some(super::cases::urgency(&mut v, "case.urgency", input.urgency));
    }
    if paths.wants("community_id", true) {
        p.community_id = Some(v.optional_text("case.community_id", &input.community_id, 64).to_owned());
    }
    if paths.wants("grid_id", true) {
        p.grid_id = Some(v.optional_text("case.grid_id", &input.grid_id, 64).to_owned());
    }
    if paths.wants("reporter", true) {
        let r = input.reporter.clone().unwrap_or_default();
        p.reporter = Some(Reporter {
            name: v.required_text("case.reporter.name", &r.name, 100).to_owned(),
            phone: v.required_text("case.reporter.phone", &r.phone, 30).to_owned(),
            id_number: v.optional_text("case.reporter.id_number", &r.id_number, 30).to_owned(),
            confidential: r.confidential,
        });
    }
    v.into_result()?;
    Ok(p)
}

/// What an update changed: the paths (for the event) and their values before and after
/// (for the trail).
#[derive(Debug, Default)]
struct Changes {
    paths: Vec<String>,
    before: Map<String, Value>,
    after: Map<String, Value>,
}

impl Changes {
    /// Sets `field` to `new` when given and different, and notes it.
    fn apply<T: PartialEq + serde::Serialize>(&mut self, field: &str, old: &mut T, new: Option<T>) {
        if let Some(new) = new.filter(|n| n != old) {
            self.before.insert(field.to_owned(), json!(old));
            self.after.insert(field.to_owned(), json!(new));
            self.paths.push(field.to_owned());
            *old = new;
        }
    }
}

pub(super) async fn update_case(s: &Dispatch, r: Request<pb::UpdateCaseRequest>) -> Result<pb::Case, DispatchError> {
    let (p, req) = caller(r)?;
    let input = req.case.clone().unwrap_or_default();
    let id = uuid("case.id", &input.id)?;
    if req.update_mask.as_ref().is_none_or(|m| m.paths.is_empty()) {
        return Err(DispatchError::field("update_mask", format!("is required (any of: {})", UPDATABLE.join(", "))));
    }
    let paths = UpdatePaths::new(req.update_mask.as_ref(), &UPDATABLE)?;
    let mut patch = patch(&input, &paths)?;
    // A corrected position is placed by the roster: it must stay in the case's street, and
    // fills in the community and grid unless the mask sets them.
    let resolved = match patch.place.as_ref().and_then(|pl| pl.location) {
        Some(l) => Some(s.d.roster.resolve_location(l.lat, l.lng).await.map_err(|e| match e {
            RosterFailure::Other(err) => err,
            _ => DispatchError::field("case.place.location", "lies in no street of the district"),
        })?),
        None => None,
    };
    let key = RPCS.idempotency("UpdateCase", &p, &req.request_id, &req)?;
    let dispatch = s.clone();
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let (mut row, _) = readable_case(tx, &p, id, true).await?;
            if !access::may_correct(&p, &row.case.street_id) {
                return Err(DispatchError::denied("only the case's street or the district may correct it"));
            }
            state::require_open(row.case.state)?;
            if let Some(found) = &resolved {
                if found.street_id != row.case.street_id {
                    return Err(DispatchError::field(
                        "case.place.location",
                        format!(
                            "lies in street `{}`, not in the case's street `{}`",
                            found.street_id, row.case.street_id
                        ),
                    ));
                }
                patch.community_id.get_or_insert_with(|| found.community_id.clone());
                patch.grid_id.get_or_insert_with(|| found.grid_id.clone());
            }
            // A corrected category must be in the current catalogue, whose rule it takes.
            if let Some(category) = patch.category.as_ref().filter(|c| **c != row.case.category) {
                let catalogue = crate::store::catalogue::current(tx)
                    .await?
                    .ok_or_else(|| DispatchError::internal("no dispatch catalogue is published"))?;
                row.case.catalogue = Some(catalogue.accept("case.category", category)?);
            }
            let c = &mut row.case;
            let mut changes = Changes::default();
            changes.apply("category", &mut c.category, patch.category);
            changes.apply("title", &mut c.title, patch.title);
            changes.apply("description", &mut c.description, patch.description);
            changes.apply("place", &mut c.place, patch.place);
            changes.apply("urgency", &mut c.urgency, patch.urgency);
            changes.apply("community_id", &mut c.community_id, patch.community_id);
            changes.apply("grid_id", &mut c.grid_id, patch.grid_id);
            if let Some(new) = patch.reporter {
                let cipher = &dispatch.d.cipher;
                let old = cipher.open(id, &row.reporter_sealed).map_err(DispatchError::internal)?;
                // Only who sees the reporter unmasked may correct it: masked values sent
                // back would overwrite the real ones (the district sees masks only).
                let audience = cases::audience(tx, id, &row.case.street_id).await?;
                if new != old && access::reporter_view(&p, &audience, old.confidential) != ReporterView::Full {
                    return Err(DispatchError::denied(
                        "the reporter is corrected by the case's street, which sees it unmasked",
                    ));
                }
                if new != old {
                    if new.confidential && !old.confidential {
                        // 要求保密 withdraws what was shared with departments, on the trail.
                        let revoked = crate::store::calls::revoke_contact_shares(tx, id).await?;
                        if !revoked.is_empty() {
                            changes.after.insert("contact_shares_revoked".into(), json!(revoked));
                        }
                    }
                    // Personal data enters the trail only as a digest.
                    changes.before.insert("reporter_digest".into(), json!(cipher.digest(id, &old)));
                    changes.after.insert("reporter_digest".into(), json!(cipher.digest(id, &new)));
                    changes.paths.push("reporter".into());
                    row.reporter_sealed = cipher.seal(id, &new);
                    cases::update(tx, &row.case, Some(&row.reporter_sealed)).await?;
                }
            }
            if changes.paths.is_empty() {
                return present(&dispatch, tx, &p, id).await;
            }
            let entry = Entry {
                event_type: EventKind::CaseUpdated,
                call_id: None,
                department_id: String::new(),
                before: Value::Object(changes.before),
                after: Value::Object(changes.after),
                payload: Payload::CaseUpdated(pb::CaseUpdated { updated_paths: changes.paths }),
            };
            w.record(tx, &mut row.case, &convert::actor(&p), entry).await?;
            present(&dispatch, tx, &p, id).await
        })
    })
    .await
}

/// The other cases of a link request, deduplicated in request order.
fn others(case_id: Uuid, ids: &[String], linking: bool) -> Result<Vec<Uuid>, DispatchError> {
    let mut v = FieldViolations::new();
    v.check(!ids.is_empty(), "related_case_ids", "must name at least one case");
    v.check(ids.len() <= MAX_LINKS, "related_case_ids", format!("must name at most {MAX_LINKS} cases"));
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        match Uuid::parse_str(id.trim()) {
            Ok(other) if other == case_id && linking => {
                v.add(format!("related_case_ids[{i}]"), "must not be the case itself")
            }
            Ok(other) if other == case_id => {}
            Ok(other) if !out.contains(&other) => out.push(other),
            Ok(_) => {}
            Err(_) => v.add(format!("related_case_ids[{i}]"), "is not a valid id"),
        }
    }
    v.into_result()?;
    Ok(out)
}

/// Locks every case of a link request, in id order (two requests over the same cases
/// cannot deadlock), each one readable and correctable by `p`: a case `p` may not read
/// answers NOT_FOUND exactly like a missing one.
pub(super) async fn lock_all(
    tx: &mut PgConnection,
    p: &Principal,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<BTreeMap<Uuid, CaseRow>, DispatchError> {
    let mut rows = BTreeMap::new();
    for id in ids.into_iter().collect::<std::collections::BTreeSet<_>>() {
        let (row, _) = readable_case(tx, p, id, true).await?;
        if !access::may_correct(p, &row.case.street_id) {
            return Err(DispatchError::denied(
                "repeat links are set by the street for its own cases, or by the district across streets",
            ));
        }
        rows.insert(id, row);
    }
    Ok(rows)
}

/// LinkCases (`linking`) or UnlinkCases: changes the links both ways, and journals one
/// entry on every case whose links changed.
async fn relink(
    s: &Dispatch,
    p: Principal,
    case_id: Uuid,
    others: Vec<Uuid>,
    linking: bool,
    key: minhu_store::Idempotency,
) -> Result<pb::Case, DispatchError> {
    let dispatch = s.clone();
    let event_type = if linking { EventKind::CasesLinked } else { EventKind::CasesUnlinked };
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let now = w.now();
            let mut rows = lock_all(tx, &p, others.iter().copied().chain([case_id])).await?;
            let before = cases::related(tx, case_id).await?;
            let mut changed = Vec::new();
            for other in &others {
                let done = if linking {
                    cases::link(tx, case_id, *other, now).await?
                } else {
                    cases::unlink(tx, case_id, *other).await?
                };
                if done {
                    changed.push(*other);
                }
            }
            if changed.is_empty() {
                return present(&dispatch, tx, &p, case_id).await;
            }
            let after = cases::related(tx, case_id).await?;
            let actor = convert::actor(&p);
            let links = |ids: &[Uuid]| pb::CaseLinksChanged { case_ids: ids.iter().map(Uuid::to_string).collect() };
            let entry = Entry {
                event_type,
                call_id: None,
                department_id: String::new(),
                before: json!({"related_case_ids": before}),
                after: json!({"related_case_ids": after}),
                payload: Payload::CaseLinksChanged(links(&changed)),
            };
            let main = rows.get_mut(&case_id).ok_or_else(|| DispatchError::internal("locked case vanished"))?;
            w.record(tx, &mut main.case, &actor, entry).await?;
            // The other side of each link gets its own entry: its trail shows the link too.
            for other in changed {
                let row = rows.get_mut(&other).ok_or_else(|| DispatchError::internal("locked case vanished"))?;
                let entry = Entry {
                    event_type,
                    call_id: None,
                    department_id: String::new(),
                    before: json!({"related_case_id": case_id, "linked": !linking}),
                    after: json!({"related_case_id": case_id, "linked": linking}),
                    payload: Payload::CaseLinksChanged(links(&[case_id])),
                };
                w.record(tx, &mut row.case, &actor, entry).await?;
            }
            present(&dispatch, tx, &p, case_id).await
        })
    })
    .await
}

pub(super) async fn link_cases(s: &Dispatch, r: Request<pb::LinkCasesRequest>) -> Result<pb::Case, DispatchError> {
    let (p, req) = caller(r)?;
    let case_id = uuid("case_id", &req.case_id)?;
    let others = others(case_id, &req.related_case_ids, true)?;
    let key = RPCS.idempotency("LinkCases", &p, &req.request_id, &req)?;
    relink(s, p, case_id, others, true, key).await
}

pub(super) async fn unlink_cases(s: &Dispatch, r: Request<pb::UnlinkCasesRequest>) -> Result<pb::Case, DispatchError> {
    let (p, req) = caller(r)?;
    let case_id = uuid("case_id", &req.case_id)?;
    let others = others(case_id, &req.related_case_ids, false)?;
    let key = RPCS.idempotency("UnlinkCases", &p, &req.request_id, &req)?;
    relink(s, p, case_id, others, false, key).await
}
