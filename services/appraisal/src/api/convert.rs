//! Rows and domain values to protobuf messages, and the caller as an actor.

use minhu_grpc::{OrgKind, Principal, Role};
use minhu_proto::{appraisal::v1 as pb, common::v1 as common};
use serde_json::json;

use super::ts;
use crate::{
    domain::{Counts, Rates, Weights, referral},
    store::{
        periods::PeriodRow,
        referrals::{EvidenceRow, RecipientRow, ReferralRow},
    },
};

fn code<E: Into<i32>>(e: Option<E>) -> i32 {
    e.map_or(0, Into::into)
}

/// A period.
pub(super) fn period(row: &PeriodRow) -> pb::Period {
    pb::Period {
        id: row.id.to_string(),
        name: row.name.clone(),
        kind: code(pb::PeriodKind::from_str_name(&row.kind)),
        range: Some(common::TimeRange { start_time: ts(row.start_time), end_time: ts(row.end_time) }),
        weights: Some(weights(row.weights())),
        state: if row.closed { pb::PeriodState::Closed } else { pb::PeriodState::Open } as i32,
        create_time: ts(row.create_time),
        update_time: ts(row.update_time),
        close_time: row.close_time.and_then(ts),
    }
}

/// Weights.
pub(super) fn weights(w: Weights) -> pb::Weights {
    pb::Weights { response_bp: w.response, completion_bp: w.completion, satisfaction_bp: w.satisfaction }
}

fn n(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// A department's score; `with_counts` false shows rates and rank only (another
/// department's row, seen by a department).
#[allow(clippy::too_many_arguments)]
pub(super) fn score(
    period_id: &str,
    street_id: &str,
    c: &Counts,
    r: Rates,
    rank: i32,
    w: Weights,
    as_of: i64,
    frozen: bool,
    with_counts: bool,
) -> pb::DepartmentScore {
    let mut s = pb::DepartmentScore {
        period_id: period_id.to_owned(),
        department_id: c.department_id.clone(),
        street_id: street_id.to_owned(),
        response_rate_bp: r.response,
        completion_rate_bp: r.completion,
        satisfaction_rate_bp: r.satisfaction,
        composite_bp: r.composite,
        rank,
        weights: Some(weights(w)),
        as_of_sequence: as_of,
        frozen,
        ..Default::default()
    };
    if with_counts {
        s.calls_count = n(c.calls);
        s.signed_on_time_count = n(c.signed_on_time);
        s.signed_late_count = n(c.signed_late);
        s.unsigned_count = n(c.unsigned);
        s.check_in_on_time_count = n(c.check_in_on_time);
        s.check_in_late_count = n(c.check_in_late);
        s.check_in_absent_count = n(c.check_in_absent);
        s.inaction_count = n(c.inaction);
        s.response_due_count = n(c.response_due);
        s.responded_count = n(c.responded);
        s.completion_due_count = n(c.completion_due);
        s.completed_count = n(c.completed);
        s.completed_late_count = n(c.completed_late);
        s.rated_count = n(c.rated);
        s.satisfied_count = n(c.satisfied);
        s.basically_satisfied_count = n(c.basically_satisfied);
        s.dissatisfied_count = n(c.dissatisfied);
        s.rectification_count = n(c.rectifications);
    }
    s
}

fn org_kind(kind: OrgKind) -> common::OrganizationKind {
    match kind {
        OrgKind::District => common::OrganizationKind::District,
        OrgKind::Street => common::OrganizationKind::Street,
        OrgKind::Department => common::OrganizationKind::Department,
        OrgKind::DisciplineInspection => common::OrganizationKind::DisciplineInspection,
        OrgKind::OrganizationPersonnel => common::OrganizationKind::OrganizationPersonnel,
        OrgKind::Service => common::OrganizationKind::Unspecified,
    }
}

fn role(r: Role) -> common::Role {
    match r {
        Role::DistrictAdmin => common::Role::DistrictAdmin,
        Role::DistrictOperator => common::Role::DistrictOperator,
        Role::StreetLeader => common::Role::StreetLeader,
        Role::StreetDispatcher => common::Role::StreetDispatcher,
        Role::GridWorker => common::Role::GridWorker,
        Role::DepartmentLeader => common::Role::DepartmentLeader,
        Role::DepartmentDispatcher => common::Role::DepartmentDispatcher,
        Role::FieldOfficer => common::Role::FieldOfficer,
        Role::DisciplineInspector => common::Role::DisciplineInspector,
        Role::PersonnelOfficer => common::Role::PersonnelOfficer,
        Role::Service => common::Role::Service,
    }
}

/// The caller as stored (JSON): enough to rebuild its `Actor`.
pub(super) fn actor_json(p: &Principal) -> serde_json::Value {
    let mut roles: Vec<i32> = p.roles.iter().map(|r| role(*r) as i32).collect();
    roles.sort_unstable();
    json!({
        "person_id": p.subject,
        "person_name": p.name,
        "org_kind": org_kind(p.organization.kind) as i32,
        "org_id": p.organization.id,
        "roles": roles,
        "service": if p.organization.kind == OrgKind::Service { p.subject.as_str() } else { "" },
    })
}

/// A stored actor.
pub(super) fn actor(v: &serde_json::Value) -> common::Actor {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
    common::Actor {
        person_id: s("person_id"),
        person_name: s("person_name"),
        organization: Some(common::OrganizationRef {
            kind: v.get("org_kind").and_then(|x| x.as_i64()).unwrap_or_default() as i32,
            id: s("org_id"),
        }),
        roles: v
            .get("roles")
            .and_then(|x| x.as_array())
            .map(|a| a.iter().filter_map(|r| r.as_i64()).map(|r| r as i32).collect())
            .unwrap_or_default(),
        service: s("service"),
    }
}

/// The caller as a person reference.
pub(super) fn person_json(p: &Principal) -> serde_json::Value {
    json!({"id": p.subject, "name": p.name})
}

/// A referral with its parts; `show_outcomes` false hides outcomes (recipients other than
/// the referring street and the district see only their own part's outcome).
pub(super) fn referral(
    row: &ReferralRow,
    recipients: &[RecipientRow],
    evidence: &[EvidenceRow],
    own_recipient: Option<&str>,
) -> pb::Referral {
    let mine: Vec<&RecipientRow> = recipients.iter().filter(|r| r.referral_id == row.id).collect();
    pb::Referral {
        id: row.id.to_string(),
        street_id: row.street_id.clone(),
        case_id: row.case_id.clone(),
        call_id: row.call_id.clone(),
        department_id: row.department_id.clone(),
        person_ids: row.person_ids.clone(),
        kind: code(pb::ReferralKind::from_str_name(&row.kind)),
        facts: row.facts.clone(),
        evidence: evidence
            .iter()
            .filter(|e| e.referral_id == row.id)
            .map(|e| pb::EvidenceRef {
                case_id: e.case_id.clone(),
                trail_sequence: e.trail_sequence,
                trail_hash: e.trail_hash.clone(),
                event_sequence: e.event_sequence,
            })
            .collect(),
        recipients: mine
            .iter()
            .map(|r| {
                let visible = own_recipient.is_none_or(|own| own == r.recipient);
                pb::ReferralRecipient {
                    recipient: code(common::OrganizationKind::from_str_name(&r.recipient)),
                    state: code(pb::ReferralState::from_str_name(&format!("REFERRAL_STATE_{}", r.state))),
                    receive_time: r.receive_time.and_then(ts),
                    handle_time: r.handle_time.and_then(ts),
                    outcome: if visible { r.outcome.clone() } else { String::new() },
                    handled_by: r.handled_by.as_ref().map(|j| common::PersonRef {
                        id: j.0.get("id").and_then(|x| x.as_str()).unwrap_or_default().to_owned(),
                        name: j.0.get("name").and_then(|x| x.as_str()).unwrap_or_default().to_owned(),
                        ..Default::default()
                    }),
                }
            })
            .collect(),
        state: code(pb::ReferralState::from_str_name(&format!(
            "REFERRAL_STATE_{}",
            referral::overall(mine.iter().map(|r| r.state.as_str()))
        ))),
        created_by: Some(actor(&row.created_by.0)),
        create_time: ts(row.create_time),
        update_time: ts(row.update_time),
    }
}
