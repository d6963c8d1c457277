//! Repeat clusters (重复诉求): the members of a lead case (ListClusterMembers, paged rather
//! than inlined on the case), and the street's corrections of a wrong clustering
//! (DetachFromCluster, MergeClusters), each on the trail of the cases it changes.

use minhu_grpc::{FieldViolations, Principal, Refusal};
use minhu_proto::dispatch::v1::{self as pb, event::Payload};
use serde_json::json;
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use super::{Dispatch, Entry, RPCS, caller, cases::present, readable_case, uuid, write};
use crate::{
    domain::{access, events::EventKind, model::CallState, repeats},
    error::DispatchError,
    events::{case_state, ts},
    store::{
        calls,
        cases::{self, CaseRow},
    },
};

/// FAILED_PRECONDITION "CASE_IS_REPEAT" unless `row` leads its own cluster.
fn require_lead(row: &CaseRow) -> Result<(), DispatchError> {
    match row.lead_case_id {
        Some(lead) => Err(Refusal::new(
            "CASE_IS_REPEAT",
            format!("cases/{}", row.case.id),
            format!("the case is a repeat in the cluster of case {lead}"),
        )
        .into()),
        None => Ok(()),
    }
}

/// A case `p` may read and correct (the street for its own cases, the district any), locked.
async fn correctable(tx: &mut PgConnection, p: &Principal, id: Uuid) -> Result<CaseRow, DispatchError> {
    let (row, _) = readable_case(tx, p, id, true).await?;
    if !access::may_correct(p, &row.case.street_id) {
        return Err(DispatchError::denied("clusters are corrected by the case's street or the district"));
    }
    Ok(row)
}

fn changed(lead: Uuid, ids: &[Uuid], cluster_size: i32, reason: &str) -> Payload {
    Payload::ClusterChanged(pb::ClusterChanged {
        lead_case_id: lead.to_string(),
        case_ids: ids.iter().map(Uuid::to_string).collect(),
        cluster_size,
        reason: reason.to_owned(),
    })
}

pub(super) async fn list_cluster_members(
    s: &Dispatch,
    r: Request<pb::ListClusterMembersRequest>,
) -> Result<pb::ListClusterMembersResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("case_id", &req.case_id)?;
    let page = RPCS.page::<(chrono::DateTime<chrono::Utc>, Uuid)>(
        req.page_size,
        &req.page_token,
        &["cluster_members", &id.to_string()],
    )?;
    let mut conn = s.d.pool.acquire().await?;
    let (row, _) = readable_case(&mut conn, &p, id, false).await?;
    require_lead(&row)?;
    let mut members = cases::members(&mut conn, id, page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut members, |m| (m.create_time, m.id));
    Ok(pb::ListClusterMembersResponse {
        members: members
            .iter()
            .map(|m| pb::ClusterMember {
                case_id: m.id.to_string(),
                state: case_state(m.state),
                create_time: ts(m.create_time),
            })
            .collect(),
        next_page_token,
        cluster_size: row.cluster_size,
    })
}

pub(super) async fn detach_from_cluster(
    s: &Dispatch,
    r: Request<pb::DetachFromClusterRequest>,
) -> Result<pb::Case, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("case_id", &req.case_id)?;
    let mut v = FieldViolations::new();
    let reason = v.required_text("reason", &req.reason, 2000).to_owned();
    v.into_result()?;
    let key = RPCS.idempotency("DetachFromCluster", &p, &req.request_id, &req)?;
    let dispatch = s.clone();
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let mut member = correctable(tx, &p, id).await?;
            let Some(lead_id) = member.lead_case_id else {
                return Err(Refusal::new("CASE_NOT_IN_CLUSTER", format!("cases/{id}"), "the case is no repeat").into());
            };
            // Member, then lead: the order intake takes them in (its own row, then the lead).
            let mut lead = cases::get(tx, lead_id, true)
                .await?
                .ok_or_else(|| DispatchError::internal("a repeat's lead case vanished"))?;
            let size = cases::detach(tx, id, lead_id).await?;
            let actor = crate::api::convert::actor(&p);
            let entry = Entry {
                event_type: EventKind::CaseDetachedFromCluster,
                call_id: None,
                department_id: String::new(),
                before: json!({"lead_case_id": lead_id}),
                after: json!({"lead_case_id": null, "reason": reason}),
                payload: changed(lead_id, &[id], size, &reason),
            };
            w.record(tx, &mut member.case, &actor, entry).await?;
            let entry = Entry {
                event_type: EventKind::CaseDetachedFromCluster,
                call_id: None,
                department_id: String::new(),
                before: json!({"cluster_size": size + 1}),
                after: json!({"cluster_size": size, "detached_case_id": id, "reason": reason}),
                payload: changed(lead_id, &[id], size, &reason),
            };
            w.record(tx, &mut lead.case, &actor, entry).await?;
            present(&dispatch, tx, &p, id).await
        })
    })
    .await
}

pub(super) async fn merge_clusters(
    s: &Dispatch,
    r: Request<pb::MergeClustersRequest>,
) -> Result<pb::Case, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("case_id", &req.case_id)?;
    let other_id = uuid("other_case_id", &req.other_case_id)?;
    if id == other_id {
        return Err(DispatchError::field("other_case_id", "must be another case"));
    }
    let key = RPCS.idempotency("MergeClusters", &p, &req.request_id, &req)?;
    let dispatch = s.clone();
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            // Intakes near the other lead finish first (they hold its cells) and later ones
            // see it as a repeat: none can join it half-way through the merge.
            if let Some(o) = cases::get(tx, other_id, false).await? {
                if let Some(here) = o.case.place.location {
                    cases::lock_cells(tx, &repeats::cells(&o.case.street_id, &o.case.category, here)).await?;
                }
            }
            // Both leads locked in id order, as LinkCases does.
            let (first, second) = if id < other_id { (id, other_id) } else { (other_id, id) };
            let a = correctable(tx, &p, first).await?;
            let b = correctable(tx, &p, second).await?;
            let (mut lead, mut other) = if a.case.id == id { (a, b) } else { (b, a) };
            require_lead(&lead)?;
            require_lead(&other)?;
            if calls::of_case(tx, other_id).await?.iter().any(|c| c.state != CallState::Withdrawn) {
                return Err(Refusal::new(
                    "CLUSTER_HAS_CALLS",
                    format!("cases/{other_id}"),
                    "the other lead has called departments; a cluster is called, rated and scored once",
                )
                .into());
            }
            let before = lead.cluster_size;
            let (joined, size) = cases::merge(tx, id, other_id).await?;
            let actor = crate::api::convert::actor(&p);
            let entry = Entry {
                event_type: EventKind::ClustersMerged,
                call_id: None,
                department_id: String::new(),
                before: json!({"cluster_size": before}),
                after: json!({"cluster_size": size, "merged_lead_case_id": other_id, "joined_case_ids": joined}),
                payload: changed(id, &joined, size, ""),
            };
            w.record(tx, &mut lead.case, &actor, entry).await?;
            let entry = Entry {
                event_type: EventKind::ClustersMerged,
                call_id: None,
                department_id: String::new(),
                before: json!({"lead_case_id": null, "cluster_size": other.cluster_size}),
                after: json!({"lead_case_id": id, "cluster_size": 0}),
                payload: changed(id, &joined, size, ""),
            };
            w.record(tx, &mut other.case, &actor, entry).await?;
            present(&dispatch, tx, &p, id).await
        })
    })
    .await
}
