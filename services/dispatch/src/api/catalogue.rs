//! The dispatch catalogue (派单目录): publishing a version (the district admin), reading
//! one (everyone) and the calls it proposes for a case (研判派单建议).

use minhu_grpc::{Principal, Role};
use minhu_proto::dispatch::v1 as pb;
use tonic::Request;

use super::{Dispatch, RPCS, caller, convert, readable_case, uuid, write};
use crate::{
    domain::{
        catalogue::{self, Catalogue, CatalogueCategory, MatterClass},
        model::{CallState, Urgency},
    },
    error::DispatchError,
    events::{code, ts},
    store::{calls, catalogue as store},
};

fn require_district_admin(p: &Principal) -> Result<(), DispatchError> {
    if p.is_district() && p.has_role(Role::DistrictAdmin) {
        Ok(())
    } else {
        Err(DispatchError::denied("only the district admin publishes the dispatch catalogue"))
    }
}

fn class_pb(c: MatterClass) -> i32 {
    code(pb::MatterClass::from_str_name(c.as_str()))
}

fn catalogue_pb(c: &Catalogue) -> pb::Catalogue {
    // Read as class → categories: grouped by class, each class in publication order.
    let mut categories: Vec<&CatalogueCategory> = c.categories.iter().collect();
    categories.sort_by_key(|k| MatterClass::ALL.iter().position(|m| *m == k.matter_class));
    pb::Catalogue {
        version: c.version,
        categories: categories
            .into_iter()
            .map(|k| pb::CatalogueCategory {
                code: k.code.clone(),
                name: k.name.clone(),
                matter_class: class_pb(k.matter_class),
                department_ids: k.department_ids.clone(),
                default_urgency: code(pb::Urgency::from_str_name(k.default_urgency.as_str())),
                sign_minutes: k.sign_minutes as i32,
                check_in_window_minutes: k.check_in_window_minutes as i32,
            })
            .collect(),
        note: c.note.clone(),
        published_by: Some(convert::actor_pb(&c.published_by)),
        publish_time: ts(c.publish_time),
    }
}

/// The categories as sent, or INVALID_ARGUMENT naming the first bad enum or number (the
/// rest is [`catalogue::validate`]'s).
fn categories(input: &[pb::CatalogueCategory]) -> Result<Vec<CatalogueCategory>, DispatchError> {
    let mut out = Vec::with_capacity(input.len());
    for (i, k) in input.iter().enumerate() {
        let f = |name: &str| format!("catalogue.categories[{i}].{name}");
        let matter_class = pb::MatterClass::try_from(k.matter_class)
            .ok()
            .and_then(|m| MatterClass::parse(m.as_str_name()))
            .ok_or_else(|| DispatchError::field(f("matter_class"), "must be one of the four classes"))?;
        let default_urgency = match pb::Urgency::try_from(k.default_urgency) {
            Ok(pb::Urgency::Unspecified) => Urgency::Normal,
            Ok(u) => Urgency::parse(u.as_str_name()).unwrap_or(Urgency::Normal),
            Err(_) => return Err(DispatchError::field(f("default_urgency"), "is not a known urgency")),
        };
        let minutes = |name: &str, m: i32| {
            u32::try_from(m).map_err(|e| DispatchError::field(f(name), format!("must not be negative ({e})")))
        };
        out.push(CatalogueCategory {
            code: k.code.trim().to_owned(),
            name: k.name.trim().to_owned(),
            matter_class,
            department_ids: k.department_ids.iter().map(|d| d.trim().to_owned()).collect(),
            default_urgency,
            sign_minutes: minutes("sign_minutes", k.sign_minutes)?,
            check_in_window_minutes: minutes("check_in_window_minutes", k.check_in_window_minutes)?,
        });
    }
    catalogue::validate(&out)?;
    Ok(out)
}

pub(super) async fn publish_catalogue(
    s: &Dispatch,
    r: Request<pb::PublishCatalogueRequest>,
) -> Result<pb::Catalogue, DispatchError> {
    let (p, req) = caller(r)?;
    require_district_admin(&p)?;
    let input = req.catalogue.clone().unwrap_or_default();
    let categories = categories(&input.categories)?;
    let mut v = minhu_grpc::FieldViolations::new();
    let note = v.optional_text("catalogue.note", &input.note, 2000).to_owned();
    v.into_result()?;
    let key = RPCS.idempotency("PublishCatalogue", &p, &req.request_id, &req)?;
    s.write(&key, write::none(), move |tx, w, ()| {
        Box::pin(async move {
            let published = store::publish(tx, categories, note, convert::actor(&p), w.now()).await?;
            Ok(catalogue_pb(&published))
        })
    })
    .await
}

pub(super) async fn get_catalogue(
    s: &Dispatch,
    r: Request<pb::GetCatalogueRequest>,
) -> Result<pb::Catalogue, DispatchError> {
    let (_, req) = caller(r)?;
    let mut conn = s.d.pool.acquire().await?;
    let found = match req.version {
        0 => store::current(&mut conn).await?,
        v if v < 0 => return Err(DispatchError::field("version", "must not be negative")),
        v => store::get(&mut conn, v).await?,
    };
    let found = found.ok_or_else(|| DispatchError::not_found("catalogue version", req.version))?;
    Ok(catalogue_pb(&found))
}

pub(super) async fn propose_calls(
    s: &Dispatch,
    r: Request<pb::ProposeCallsRequest>,
) -> Result<pb::ProposeCallsResponse, DispatchError> {
    let (p, req) = caller(r)?;
    let case_id = uuid("case_id", &req.case_id)?;
    let mut conn = s.d.pool.acquire().await?;
    let (row, _) = readable_case(&mut conn, &p, case_id, false).await?;
    let Some(rule) = row.case.catalogue.clone() else { return Ok(pb::ProposeCallsResponse::default()) };
    let live: Vec<String> = calls::of_case(&mut conn, case_id)
        .await?
        .into_iter()
        .filter(|c| !matches!(c.state, CallState::Withdrawn | CallState::Completed))
        .map(|c| c.department_id)
        .collect();
    let policy = s.d.deadlines.under(Some(&rule));
    let now = s.now();
    let drafts = rule
        .department_ids
        .iter()
        .filter(|d| !live.contains(d))
        .map(|d| pb::Call {
            case_id: case_id.to_string(),
            street_id: row.case.street_id.clone(),
            department_id: d.clone(),
            matters: rule.category_name.clone(),
            staff_requirement: Some(pb::StaffRequirement { count: 1, ..Default::default() }),
            // As StartCall would set it now; informative until the street sends the call.
            sign_deadline: ts(policy.sign_deadline(row.case.urgency, now)),
            ..Default::default()
        })
        .collect();
    Ok(pb::ProposeCallsResponse {
        catalogue_version: rule.version,
        matter_class: class_pb(rule.matter_class),
        calls: drafts,
    })
}
