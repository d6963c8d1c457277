//! Appraisal periods (考核周期) and the annual weight (年度考核权重).

use chrono::Utc;
use minhu_grpc::{FieldViolations, UpdatePaths};
use minhu_proto::appraisal::v1 as pb;
use tonic::Request;
use uuid::Uuid;

use super::{Appraisal, RPCS, caller, convert, found, time_range, ts, uuid};
use crate::{
    consumer,
    domain::{
        Weights,
        period::{self, PeriodInput},
        policy::{self, require},
    },
    error::AppraisalError,
    store::{
        periods::{self as store, PeriodFilter},
        records, scores,
    },
};

fn weights_of(w: Option<&pb::Weights>) -> Weights {
    w.map_or(Weights { response: 0, completion: 0, satisfaction: 0 }, |w| Weights {
        response: w.response_bp,
        completion: w.completion_bp,
        satisfaction: w.satisfaction_bp,
    })
}

/// Parses a period's editable values (kind included: it is only read at creation).
fn parse(p: &pb::Period, v: &mut FieldViolations) -> PeriodInput {
    let name = period::name(v, "period.name", &p.name);
    let kind = match pb::PeriodKind::try_from(p.kind) {
        Ok(pb::PeriodKind::Unspecified) | Err(_) => {
            v.add("period.kind", "must be MONTH, QUARTER, YEAR or CUSTOM");
            String::new()
        }
        Ok(k) => k.as_str_name().to_owned(),
    };
    let r = p.range.as_ref();
    let (start, end) = period::range(
        v,
        "period.range",
        consumer::time(r.and_then(|r| r.start_time.as_ref())),
        consumer::time(r.and_then(|r| r.end_time.as_ref())),
    );
    let weights = period::weights(v, "period.weights", weights_of(p.weights.as_ref()));
    PeriodInput { name, kind, start, end, weights }
}

pub(super) async fn create_period(
    s: &Appraisal,
    r: Request<pb::CreatePeriodRequest>,
) -> Result<pb::Period, AppraisalError> {
    let (p, req) = caller(r)?;
    require(policy::is_district_admin(&p), "create appraisal periods")?;
    let mut v = FieldViolations::new();
    let input = parse(&req.period.clone().unwrap_or_default(), &mut v);
    v.into_result()?;
    let key = RPCS.idempotency("CreatePeriod", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move { Ok(convert::period(&store::insert(tx, Uuid::now_v7(), &input, Utc::now()).await?)) })
    })
    .await
}

pub(super) async fn get_period(s: &Appraisal, r: Request<pb::GetPeriodRequest>) -> Result<pb::Period, AppraisalError> {
    let (p, req) = caller(r)?;
    require(policy::may_read_periods(&p), "read appraisal periods")?;
    let id = uuid("period_id", &req.period_id)?;
    let mut conn = s.pool.acquire().await?;
    Ok(convert::period(&found(store::get(&mut conn, id, false).await?, "period", &req.period_id)?))
}

pub(super) async fn list_periods(
    s: &Appraisal,
    r: Request<pb::ListPeriodsRequest>,
) -> Result<pb::ListPeriodsResponse, AppraisalError> {
    let (p, req) = caller(r)?;
    require(policy::may_read_periods(&p), "read appraisal periods")?;
    let kind = match pb::PeriodKind::try_from(req.kind) {
        Ok(pb::PeriodKind::Unspecified) => String::new(),
        Ok(k) => k.as_str_name().to_owned(),
        Err(_) => return Err(AppraisalError::field("kind", "is not a known value")),
    };
    let closed = match pb::PeriodState::try_from(req.state) {
        Ok(pb::PeriodState::Unspecified) => None,
        Ok(state) => Some(state == pb::PeriodState::Closed),
        Err(_) => return Err(AppraisalError::field("state", "is not a known value")),
    };
    let overlaps = time_range("overlaps", req.overlaps.as_ref())?;
    let filter = PeriodFilter { kind, closed, overlaps };
    let query = format!("{filter:?}");
    let page = RPCS.page::<(chrono::DateTime<Utc>, Uuid)>(req.page_size, &req.page_token, &["periods", &query])?;
    let mut conn = s.pool.acquire().await?;
    let (mut rows, total) = store::list(&mut conn, &filter, page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| (r.start_time, r.id));
    Ok(pb::ListPeriodsResponse {
        periods: rows.iter().map(convert::period).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

pub(super) async fn update_period(
    s: &Appraisal,
    r: Request<pb::UpdatePeriodRequest>,
) -> Result<pb::Period, AppraisalError> {
    let (p, req) = caller(r)?;
    require(policy::is_district_admin(&p), "update appraisal periods")?;
    let patch = req.period.clone().unwrap_or_default();
    let id = uuid("period.id", &patch.id)?;
    let paths = UpdatePaths::new(req.update_mask.as_ref(), &["name", "range", "weights"])?;
    let key = RPCS.idempotency("UpdatePeriod", &p, &req.request_id, &req)?;
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get(tx, id, true).await?, "period", &patch.id)?;
            if current.closed {
                return Err(closed(&current.id));
            }
            let mut merged = convert::period(&current);
            if paths.wants("name", !patch.name.is_empty()) {
                merged.name = patch.name.clone();
            }
            if paths.wants("range", patch.range.is_some()) {
                merged.range = patch.range;
            }
            if paths.wants("weights", patch.weights.is_some()) {
                merged.weights = patch.weights;
            }
            let mut v = FieldViolations::new();
            let input = parse(&merged, &mut v);
            v.into_result()?;
            Ok(convert::period(&store::update(tx, id, &input, Utc::now()).await?))
        })
    })
    .await
}

fn closed(id: &Uuid) -> AppraisalError {
    AppraisalError::precondition(
        "PERIOD_CLOSED",
        format!("periods/{id}"),
        "the period is closed; its figures are frozen",
    )
}

pub(super) async fn close_period(
    s: &Appraisal,
    r: Request<pb::ClosePeriodRequest>,
) -> Result<pb::Period, AppraisalError> {
    let (p, req) = caller(r)?;
    require(policy::is_district_admin(&p), "close appraisal periods")?;
    let id = uuid("period_id", &req.period_id)?;
    let key = RPCS.idempotency("ClosePeriod", &p, &req.request_id, &req)?;
    let subscription = s.subscription.clone();
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let current = found(store::get(tx, id, true).await?, "period", &id.to_string())?;
            if current.closed {
                return Err(closed(&id));
            }
            let now = Utc::now();
            if current.end_time > now {
                return Err(AppraisalError::precondition(
                    "PERIOD_NOT_ENDED",
                    format!("periods/{id}"),
                    "a period closes only after its range ends",
                ));
            }
            let cursor = records::cursor(tx, false).await?;
            let sub = consumer::snapshot(&subscription);
            let position = period::FeedPosition {
                applied: cursor.last_sequence,
                last_event_time: cursor.last_event_time,
                head: sub.head_sequence.max(cursor.last_sequence),
                head_time: sub.head_time,
                connected: sub.connected,
                rebuilding: sub.rebuilding,
            };
            // Scores cannot freeze wrong: not while events of the period may be unapplied.
            if let Err(lag) = period::feed_consumed_past(current.end_time, &position) {
                return Err(AppraisalError::precondition("FEED_LAGGING", format!("periods/{id}"), lag));
            }
            let sequence = cursor.last_sequence;
            freeze(tx, &current).await?;
            Ok(convert::period(&store::close(tx, id, now, sequence).await?))
        })
    })
    .await
}

/// Stores a period's figures as they stand: all streets, and each calling street.
pub(crate) async fn freeze(tx: &mut sqlx::PgConnection, p: &store::PeriodRow) -> Result<(), sqlx::Error> {
    let mut streets = vec![String::new()];
    streets.extend(scores::streets_in(tx, p.start_time, p.end_time).await?);
    for street in streets {
        let scope = scores::Scope { start: p.start_time, end: p.end_time, street_id: &street, department_id: "" };
        let counts = scores::aggregate(tx, &scope).await?;
        scores::freeze(tx, p.id, &street, &counts).await?;
    }
    Ok(())
}

/// Whether the YEAR period of `year` is closed.
async fn year_closed(tx: &mut sqlx::PgConnection, year: i32) -> sqlx::Result<bool> {
    Ok(store::year_periods(tx).await?.iter().any(|p| p.closed && period::spans_year(p.start_time, p.end_time, year)))
}

fn annual(row: Option<store::AnnualWeightRow>, year: i32) -> pb::AnnualWeight {
    match row {
        Some(w) => pb::AnnualWeight {
            year,
            weight_bp: w.weight_bp,
            is_default: false,
            updated_by: Some(convert::actor(&w.updated_by.0)),
            update_time: ts(w.update_time),
        },
        None => pb::AnnualWeight { year, weight_bp: period::ANNUAL_WEIGHT_MIN, is_default: true, ..Default::default() },
    }
}

pub(super) async fn set_annual_weight(
    s: &Appraisal,
    r: Request<pb::SetAnnualWeightRequest>,
) -> Result<pb::AnnualWeight, AppraisalError> {
    let (p, req) = caller(r)?;
    require(policy::is_district_admin(&p), "set the annual assessment weight")?;
    let mut v = FieldViolations::new();
    period::year(&mut v, req.year);
    period::annual_weight(&mut v, req.weight_bp);
    v.into_result()?;
    let key = RPCS.idempotency("SetAnnualWeight", &p, &req.request_id, &req)?;
    let by = convert::actor_json(&p);
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            if year_closed(tx, req.year).await? {
                return Err(AppraisalError::precondition(
                    "YEAR_PERIOD_CLOSED",
                    format!("years/{}", req.year),
                    "the year's appraisal is closed; its weight is final",
                ));
            }
            let row = store::set_weight(tx, req.year, req.weight_bp, by, Utc::now()).await?;
            Ok(annual(Some(row), req.year))
        })
    })
    .await
}

pub(super) async fn get_annual_weight(
    s: &Appraisal,
    r: Request<pb::GetAnnualWeightRequest>,
) -> Result<pb::AnnualWeight, AppraisalError> {
    let (p, req) = caller(r)?;
    require(policy::may_read_periods(&p), "read the annual assessment weight")?;
    let mut v = FieldViolations::new();
    period::year(&mut v, req.year);
    v.into_result()?;
    let mut conn = s.pool.acquire().await?;
    Ok(annual(store::weight(&mut conn, req.year).await?, req.year))
}
