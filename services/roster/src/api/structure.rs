//! Streets (街道), communities (社区), grids (网格), and placing a point among them.

use minhu_grpc::FieldViolations;
use minhu_proto::roster::v1 as pb;
use tonic::Request;

use super::{RPCS, Roster, UpdatePaths, caller, convert, found, reason};
use crate::{
    domain::{
        area::best_match,
        policy::{self, may_manage_street_area, require},
        validate::{self, CommunityInput, GridInput, StreetInput},
    },
    error::RosterError,
    store::{people, structure as store},
};

const AREA_FIELDS: [&str; 4] = ["name", "center", "radius_meters", "boundary"];

/// Applies the area fields an update asks for.
fn merge_area(
    paths: &UpdatePaths,
    (name, center, radius, boundary): (
        &mut String,
        &mut Option<minhu_proto::common::v1::GeoPoint>,
        &mut f64,
        &mut Vec<minhu_proto::common::v1::GeoPoint>,
    ),
    patch: (&str, Option<&minhu_proto::common::v1::GeoPoint>, f64, &[minhu_proto::common::v1::GeoPoint]),
) {
    if paths.wants("name", !patch.0.is_empty()) {
        *name = patch.0.to_owned();
    }
    if paths.wants("center", patch.1.is_some()) {
        *center = patch.1.copied();
    }
    if paths.wants("radius_meters", patch.2 != 0.0) {
        *radius = patch.2;
    }
    if paths.wants("boundary", !patch.3.is_empty()) {
        *boundary = patch.3.to_vec();
    }
}

pub(super) async fn create_street(s: &Roster, r: Request<pb::CreateStreetRequest>) -> Result<pb::Street, RosterError> {
    let (p, req) = caller(r)?;
    require(policy::is_district_admin(&p), "create streets")?;
    let mut v = FieldViolations::new();
    let input = StreetInput::parse(&req.street.clone().unwrap_or_default(), &mut v);
    v.into_result()?;
    let key = RPCS.idempotency("CreateStreet", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let row = store::insert_street(tx, &input).await?;
            Ok(convert::street(row.ok_or(RosterError::AlreadyExists { resource: "street", id: input.id })?))
        })
    })
    .await
}

pub(super) async fn get_street(s: &Roster, r: Request<pb::GetStreetRequest>) -> Result<pb::Street, RosterError> {
    let (_, req) = caller(r)?;
    let mut conn = s.pool.acquire().await?;
    Ok(convert::street(found(store::get_street(&mut conn, &req.street_id, false).await?, "street", &req.street_id)?))
}

pub(super) async fn list_streets(
    s: &Roster,
    r: Request<pb::ListStreetsRequest>,
) -> Result<pb::ListStreetsResponse, RosterError> {
    let (_, req) = caller(r)?;
    let page = RPCS.page::<String>(req.page_size, &req.page_token, &["streets", &req.include_inactive.to_string()])?;
    let mut conn = s.pool.acquire().await?;
    let after = page.after.clone().unwrap_or_default();
    let (mut rows, total) = store::list_streets(&mut conn, req.include_inactive, &after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| r.id.clone());
    Ok(pb::ListStreetsResponse {
        streets: rows.into_iter().map(convert::street).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

pub(super) async fn update_street(s: &Roster, r: Request<pb::UpdateStreetRequest>) -> Result<pb::Street, RosterError> {
    let (p, req) = caller(r)?;
    require(policy::is_district_admin(&p), "update streets")?;
    let paths = UpdatePaths::new(req.update_mask.as_ref(), &AREA_FIELDS)?;
    let patch = req.street.clone().unwrap_or_default();
    let key = RPCS.idempotency("UpdateStreet", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_street(tx, &patch.id, true).await?, "street", &patch.id)?;
            if !current.active {
                return Err(RosterError::inactive("street", &patch.id));
            }
            let mut merged = convert::street(current);
            merge_area(
                &paths,
                (&mut merged.name, &mut merged.center, &mut merged.radius_meters, &mut merged.boundary),
                (&patch.name, patch.center.as_ref(), patch.radius_meters, &patch.boundary),
            );
            let mut v = FieldViolations::new();
            let input = StreetInput::parse(&merged, &mut v);
            v.into_result()?;
            Ok(convert::street(store::update_street(tx, &input).await?))
        })
    })
    .await
}

pub(super) async fn deactivate_street(
    s: &Roster,
    r: Request<pb::DeactivateStreetRequest>,
) -> Result<pb::Street, RosterError> {
    let (p, req) = caller(r)?;
    require(policy::is_district_admin(&p), "deactivate streets")?;
    let why = reason(&req.reason)?;
    let key = RPCS.idempotency("DeactivateStreet", &p, &req.request_id, &req)?;
    let id = req.street_id.clone();
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_street(tx, &id, true).await?, "street", &id)?;
            if current.active {
                let communities = store::count_active(tx, "communities", "street_id", &id).await?;
                let stations = store::count_active(tx, "stations", "street_id", &id).await?;
                if communities + stations > 0 {
                    return Err(RosterError::precondition(
                        "STREET_IN_USE",
                        format!("streets/{id}"),
                        format!(
                            "street `{id}` still has {communities} active communities and {stations} active stations"
                        ),
                    ));
                }
                store::deactivate(tx, "streets", &id, &why).await?;
            }
            Ok(convert::street(found(store::get_street(tx, &id, false).await?, "street", &id)?))
        })
    })
    .await
}

/// The active street `id`, or NOT_FOUND / FAILED_PRECONDITION.
async fn active_street(tx: &mut sqlx::PgConnection, id: &str) -> Result<store::StreetRow, RosterError> {
    let street = found(store::get_street(tx, id, false).await?, "street", id)?;
    if street.active { Ok(street) } else { Err(RosterError::inactive("street", id)) }
}

pub(super) async fn create_community(
    s: &Roster,
    r: Request<pb::CreateCommunityRequest>,
) -> Result<pb::Community, RosterError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let input = CommunityInput::parse(&req.community.clone().unwrap_or_default(), &mut v);
    v.into_result()?;
    require(may_manage_street_area(&p, &input.street_id), "create communities in this street")?;
    let key = RPCS.idempotency("CreateCommunity", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            active_street(tx, &input.street_id).await?;
            let row = store::insert_community(tx, &input).await?;
            Ok(convert::community(row.ok_or(RosterError::AlreadyExists { resource: "community", id: input.id })?))
        })
    })
    .await
}

pub(super) async fn get_community(
    s: &Roster,
    r: Request<pb::GetCommunityRequest>,
) -> Result<pb::Community, RosterError> {
    let (_, req) = caller(r)?;
    let mut conn = s.pool.acquire().await?;
    let row = store::get_community(&mut conn, &req.community_id, false).await?;
    Ok(convert::community(found(row, "community", &req.community_id)?))
}

pub(super) async fn list_communities(
    s: &Roster,
    r: Request<pb::ListCommunitiesRequest>,
) -> Result<pb::ListCommunitiesResponse, RosterError> {
    let (_, req) = caller(r)?;
    let page = RPCS.page::<String>(
        req.page_size,
        &req.page_token,
        &["communities", &req.street_id, &req.include_inactive.to_string()],
    )?;
    let mut conn = s.pool.acquire().await?;
    let after = page.after.clone().unwrap_or_default();
    let (mut rows, total) =
        store::list_communities(&mut conn, &req.street_id, req.include_inactive, &after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| r.id.clone());
    Ok(pb::ListCommunitiesResponse {
        communities: rows.into_iter().map(convert::community).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

pub(super) async fn update_community(
    s: &Roster,
    r: Request<pb::UpdateCommunityRequest>,
) -> Result<pb::Community, RosterError> {
    let (p, req) = caller(r)?;
    let paths = UpdatePaths::new(req.update_mask.as_ref(), &AREA_FIELDS)?;
    let patch = req.community.clone().unwrap_or_default();
    let key = RPCS.idempotency("UpdateCommunity", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_community(tx, &patch.id, true).await?, "community", &patch.id)?;
            require(may_manage_street_area(&p, &current.street_id), "update communities of this street")?;
            if !current.active {
                return Err(RosterError::inactive("community", &patch.id));
            }
            let mut merged = convert::community(current);
            merge_area(
                &paths,
                (&mut merged.name, &mut merged.center, &mut merged.radius_meters, &mut merged.boundary),
                (&patch.name, patch.center.as_ref(), patch.radius_meters, &patch.boundary),
            );
            let mut v = FieldViolations::new();
            let input = CommunityInput::parse(&merged, &mut v);
            v.into_result()?;
            Ok(convert::community(store::update_community(tx, &input).await?))
        })
    })
    .await
}

pub(super) async fn deactivate_community(
    s: &Roster,
    r: Request<pb::DeactivateCommunityRequest>,
) -> Result<pb::Community, RosterError> {
    let (p, req) = caller(r)?;
    let why = reason(&req.reason)?;
    let key = RPCS.idempotency("DeactivateCommunity", &p, &req.request_id, &req)?;
    let id = req.community_id.clone();
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_community(tx, &id, true).await?, "community", &id)?;
            require(may_manage_street_area(&p, &current.street_id), "deactivate communities of this street")?;
            if current.active {
                let grids = store::count_active(tx, "grids", "community_id", &id).await?;
                if grids > 0 {
                    return Err(RosterError::precondition(
                        "COMMUNITY_IN_USE",
                        format!("communities/{id}"),
                        format!("community `{id}` still has {grids} active grids"),
                    ));
                }
                store::deactivate(tx, "communities", &id, &why).await?;
            }
            Ok(convert::community(found(store::get_community(tx, &id, false).await?, "community", &id)?))
        })
    })
    .await
}

/// Grid workers must be active staff of the grid's street.
async fn check_grid_workers(
    tx: &mut sqlx::PgConnection,
    input: &GridInput,
    street_id: &str,
) -> Result<(), RosterError> {
    let workers = people::get_people(tx, &input.grid_workers).await?;
    let mut v = FieldViolations::new();
    for (i, id) in input.grid_workers.iter().enumerate() {
        let ok = workers.iter().any(|w| w.id == *id && w.active && w.street_id.as_deref() == Some(street_id));
        v.check(
            ok,
            &format!("grid.grid_worker_person_ids[{i}]"),
            format!("`{id}` is not active staff of street `{street_id}`"),
        );
    }
    Ok(v.into_result()?)
}

pub(super) async fn create_grid(s: &Roster, r: Request<pb::CreateGridRequest>) -> Result<pb::Grid, RosterError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let input = GridInput::parse(&req.grid.clone().unwrap_or_default(), &mut v);
    v.into_result()?;
    let key = RPCS.idempotency("CreateGrid", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let community =
                found(store::get_community(tx, &input.community_id, false).await?, "community", &input.community_id)?;
            require(may_manage_street_area(&p, &community.street_id), "create grids in this street")?;
            if !community.active {
                return Err(RosterError::inactive("community", &community.id));
            }
            check_grid_workers(tx, &input, &community.street_id).await?;
            let row = store::insert_grid(tx, &input, &community.street_id).await?;
            Ok(convert::grid(row.ok_or(RosterError::AlreadyExists { resource: "grid", id: input.id })?))
        })
    })
    .await
}

pub(super) async fn get_grid(s: &Roster, r: Request<pb::GetGridRequest>) -> Result<pb::Grid, RosterError> {
    let (_, req) = caller(r)?;
    let mut conn = s.pool.acquire().await?;
    Ok(convert::grid(found(store::get_grid(&mut conn, &req.grid_id, false).await?, "grid", &req.grid_id)?))
}

pub(super) async fn list_grids(
    s: &Roster,
    r: Request<pb::ListGridsRequest>,
) -> Result<pb::ListGridsResponse, RosterError> {
    let (_, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let grid_worker = (!req.grid_worker_person_id.is_empty())
        .then(|| validate::uuid(&mut v, "grid_worker_person_id", &req.grid_worker_person_id));
    v.into_result()?;
    let page = RPCS.page::<String>(
        req.page_size,
        &req.page_token,
        &["grids", &req.street_id, &req.community_id, &req.grid_worker_person_id, &req.include_inactive.to_string()],
    )?;
    let filter = store::GridFilter {
        street_id: &req.street_id,
        community_id: &req.community_id,
        grid_worker,
        include_inactive: req.include_inactive,
    };
    let mut conn = s.pool.acquire().await?;
    let after = page.after.clone().unwrap_or_default();
    let (mut rows, total) = store::list_grids(&mut conn, &filter, &after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| r.id.clone());
    Ok(pb::ListGridsResponse {
        grids: rows.into_iter().map(convert::grid).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

pub(super) async fn update_grid(s: &Roster, r: Request<pb::UpdateGridRequest>) -> Result<pb::Grid, RosterError> {
    let (p, req) = caller(r)?;
    let paths = UpdatePaths::new(
        req.update_mask.as_ref(),
        &["name", "center", "radius_meters", "boundary", "grid_worker_person_ids"],
    )?;
    let patch = req.grid.clone().unwrap_or_default();
    let key = RPCS.idempotency("UpdateGrid", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_grid(tx, &patch.id, true).await?, "grid", &patch.id)?;
            require(may_manage_street_area(&p, &current.street_id), "update grids of this street")?;
            if !current.active {
                return Err(RosterError::inactive("grid", &patch.id));
            }
            let street_id = current.street_id.clone();
            let mut merged = convert::grid(current);
            merge_area(
                &paths,
                (&mut merged.name, &mut merged.center, &mut merged.radius_meters, &mut merged.boundary),
                (&patch.name, patch.center.as_ref(), patch.radius_meters, &patch.boundary),
            );
            if paths.wants("grid_worker_person_ids", !patch.grid_worker_person_ids.is_empty()) {
                merged.grid_worker_person_ids = patch.grid_worker_person_ids.clone();
            }
            let mut v = FieldViolations::new();
            let input = GridInput::parse(&merged, &mut v);
            v.into_result()?;
            check_grid_workers(tx, &input, &street_id).await?;
            Ok(convert::grid(store::update_grid(tx, &input).await?))
        })
    })
    .await
}

pub(super) async fn deactivate_grid(
    s: &Roster,
    r: Request<pb::DeactivateGridRequest>,
) -> Result<pb::Grid, RosterError> {
    let (p, req) = caller(r)?;
    let why = reason(&req.reason)?;
    let key = RPCS.idempotency("DeactivateGrid", &p, &req.request_id, &req)?;
    let id = req.grid_id.clone();
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get_grid(tx, &id, true).await?, "grid", &id)?;
            require(may_manage_street_area(&p, &current.street_id), "deactivate grids of this street")?;
            if current.active {
                store::deactivate(tx, "grids", &id, &why).await?;
            }
            Ok(convert::grid(found(store::get_grid(tx, &id, false).await?, "grid", &id)?))
        })
    })
    .await
}

pub(super) async fn resolve_location(
    s: &Roster,
    r: Request<pb::ResolveLocationRequest>,
) -> Result<pb::ResolveLocationResponse, RosterError> {
    let (_, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let point = validate::point(&mut v, "location", req.location.as_ref());
    v.into_result()?;
    let mut conn = s.pool.acquire().await?;
    let streets = store::active_streets(&mut conn).await?;
    let areas: Vec<_> = streets.iter().map(|s| (s.area.area(), s.id.as_str())).collect();
    let Some((street_id, by_boundary)) = best_match(&point, areas.iter().map(|(a, id)| (a, *id))) else {
        return Err(RosterError::NotFound { resource: "street", id: format!("at ({}, {})", point.lat, point.lng) });
    };
    let communities = store::active_communities(&mut conn, street_id).await?;
    let areas: Vec<_> = communities.iter().map(|c| (c.area.area(), c.id.as_str())).collect();
    let community = best_match(&point, areas.iter().map(|(a, id)| (a, *id)));
    let grid = match community {
        Some((community_id, _)) => {
            let grids = store::active_grids(&mut conn, community_id).await?;
            let areas: Vec<_> = grids.iter().map(|g| (g.area.area(), g.id.clone())).collect();
            best_match(&point, areas.iter().map(|(a, id)| (a, id.clone())))
        }
        None => None,
    };
    Ok(pb::ResolveLocationResponse {
        street_id: street_id.to_owned(),
        community_id: community.map(|(id, _)| id.to_owned()).unwrap_or_default(),
        grid_id: grid.map(|(id, _)| id).unwrap_or_default(),
        matched_by_boundary: by_boundary,
    })
}
