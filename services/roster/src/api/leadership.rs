//! What personnel reads: a street's leaders and sections (谈话范围), and the history of
//! station leadership changes it checks decisions against.

use minhu_grpc::{FieldViolations, OrgKind};
use minhu_proto::{
    common::v1 as common,
    roster::v1::{self as pb},
};
use tonic::Request;

use super::{Roster, caller, convert, found};
use crate::{
    error::RosterError,
    store::{history, structure},
};

/// Most changes on one page.
const MAX_CHANGES: i64 = 500;

fn position(name: &str) -> i32 {
    convert::enum_value(name, |s| common::Position::from_str_name(s).map(|p| p as i32))
}

async fn known_street(conn: &mut sqlx::PgConnection, street_id: &str) -> Result<(), RosterError> {
    let mut v = FieldViolations::new();
    v.required_text("street_id", street_id, 63);
    v.into_result()?;
    found(structure::get_street(conn, street_id, false).await?, "street", street_id)?;
    Ok(())
}

pub(super) async fn list_street_leaders(
    s: &Roster,
    r: Request<pb::ListStreetLeadersRequest>,
) -> Result<pb::ListStreetLeadersResponse, RosterError> {
    let (_, req) = caller(r)?;
    let mut conn = s.pool.acquire().await?;
    known_street(&mut conn, &req.street_id).await?;
    let leaders = history::street_leaders(&mut conn, &req.street_id)
        .await?
        .into_iter()
        .map(|l| pb::StreetLeader {
            person_id: l.id.to_string(),
            name: l.name,
            title: l.title,
            position: position(&l.position),
            areas_in_charge: l
                .areas
                .iter()
                .filter_map(|a| pb::DepartmentKind::from_str_name(a).map(|k| k as i32))
                .collect(),
        })
        .collect();
    Ok(pb::ListStreetLeadersResponse { leaders })
}

pub(super) async fn list_street_sections(
    s: &Roster,
    r: Request<pb::ListStreetSectionsRequest>,
) -> Result<pb::ListStreetSectionsResponse, RosterError> {
    let (_, req) = caller(r)?;
    let mut conn = s.pool.acquire().await?;
    known_street(&mut conn, &req.street_id).await?;
    let sections = history::sections(&mut conn, &req.street_id, req.station_id.trim())
        .await?
        .into_iter()
        .map(|s| pb::StreetSection {
            id: s.id,
            street_id: s.street_id,
            name: s.name,
            head_person_id: s.head_person_id.map(|id| id.to_string()).unwrap_or_default(),
            station_ids: s.station_ids,
        })
        .collect();
    Ok(pb::ListStreetSectionsResponse { sections })
}

pub(super) async fn list_leadership_changes(
    s: &Roster,
    r: Request<pb::ListLeadershipChangesRequest>,
) -> Result<pb::ListLeadershipChangesResponse, RosterError> {
    let (p, req) = caller(r)?;
    if !(p.is_district() || p.organization.kind == OrgKind::Service) {
        return Err(RosterError::PermissionDenied("leadership changes are for the district and services".into()));
    }
    let mut v = FieldViolations::new();
    v.check(req.after_sequence >= 0, "after_sequence", "must not be negative");
    v.check(req.page_size >= 0, "page_size", "must not be negative");
    let since = req.since.as_ref().and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32));
    v.check(req.since.is_none() || since.is_some(), "since", "is not a valid time");
    v.into_result()?;
    let limit = if req.page_size == 0 { 50 } else { i64::from(req.page_size).min(MAX_CHANGES) };
    let mut conn = s.pool.acquire().await?;
    let changes = history::changes(&mut conn, req.after_sequence, since, req.station_id.trim(), limit)
        .await?
        .into_iter()
        .map(|c| pb::LeadershipChange {
            sequence: c.sequence,
            station_id: c.station_id,
            department_id: c.department_id,
            street_id: c.street_id,
            person_id: c.person_id.to_string(),
            position: position(&c.position),
            kind: pb::LeadershipChangeKind::from_str_name(&c.kind).map(|k| k as i32).unwrap_or_default(),
            change_time: Some(convert::timestamp(c.change_time)),
        })
        .collect();
    Ok(pb::ListLeadershipChangesResponse { changes })
}
