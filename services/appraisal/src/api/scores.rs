//! Department scores (部门考评得分), the league table (排名), the drill-down (考评明细),
//! the annual assessment export (年度考核) and the district KPIs.

use minhu_grpc::{FieldViolations, Principal};
use minhu_proto::{appraisal::v1 as pb, common::v1 as common};
use sqlx::PgConnection;
use tonic::Request;

use super::{Appraisal, RPCS, caller, convert, found, time_range, ts, uuid};
use crate::{
    domain::{
        Counts, Rates,
        period::{self, ANNUAL_WEIGHT_MIN},
        policy::{self, ScoreScope, require},
        score,
    },
    error::AppraisalError,
    store::{
        kpis,
        periods::{self as periods_store, PeriodRow},
        records,
        scores::{self as store, Indicator, Scope},
    },
};

/// One row of a league table.
struct Row {
    counts: Counts,
    rates: Rates,
    rank: i32,
}

/// A period's league table for a street filter ('' = all streets): frozen figures for a
/// closed period, the live aggregation otherwise; ranked.
async fn table(conn: &mut PgConnection, p: &PeriodRow, street_id: &str) -> sqlx::Result<(Vec<Row>, i64)> {
    let (counts, as_of) = if p.closed {
        (store::frozen(conn, p.id, street_id, "").await?, p.frozen_sequence.unwrap_or_default())
    } else {
        let scope = Scope { start: p.start_time, end: p.end_time, street_id, department_id: "" };
        (store::aggregate(conn, &scope).await?, records::cursor(conn, false).await?.last_sequence)
    };
    let w = p.weights();
    let mut rows: Vec<Row> = counts.into_iter().map(|c| Row { rates: c.rates(w), counts: c, rank: 0 }).collect();
    score::order(&mut rows, |r| (r.rates.composite, r.counts.department_id.as_str()));
    let ranks = score::ranks(&rows.iter().map(|r| r.rates.composite).collect::<Vec<_>>());
    for (row, rank) in rows.iter_mut().zip(ranks) {
        row.rank = rank;
    }
    Ok((rows, as_of))
}

/// The period, and the street filter the caller may use.
async fn period_for(
    conn: &mut PgConnection,
    p: &Principal,
    period_id: &str,
    street_id: &str,
) -> Result<(PeriodRow, ScoreScope, String), AppraisalError> {
    let scope = policy::score_scope(p, street_id)?;
    let id = uuid("period_id", period_id)?;
    let period = found(periods_store::get(conn, id, false).await?, "period", period_id)?;
    let street = match &scope {
        ScoreScope::Street(own) => own.clone(),
        _ => street_id.to_owned(),
    };
    Ok((period, scope, street))
}

pub(super) async fn get_department_score(
    s: &Appraisal,
    r: Request<pb::GetDepartmentScoreRequest>,
) -> Result<pb::DepartmentScore, AppraisalError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    v.required_text("department_id", &req.department_id, 64);
    v.into_result()?;
    let mut conn = s.pool.acquire().await?;
    let (period, scope, street) = period_for(&mut conn, &p, &req.period_id, &req.street_id).await?;
    if let ScoreScope::Department(own) = &scope {
        require(*own == req.department_id, "read another department's score")?;
    }
    let (rows, as_of) = table(&mut conn, &period, &street).await?;
    let w = period.weights();
    let row = rows.into_iter().find(|r| r.counts.department_id == req.department_id);
    let (counts, rates, rank) = match row {
        Some(r) => (r.counts, r.rates, r.rank),
        None => (Counts { department_id: req.department_id.clone(), ..Default::default() }, Rates::default(), 0),
    };
    Ok(convert::score(&req.period_id, &street, &counts, rates, rank, w, as_of, period.closed, true))
}

pub(super) async fn list_department_scores(
    s: &Appraisal,
    r: Request<pb::ListDepartmentScoresRequest>,
) -> Result<pb::ListDepartmentScoresResponse, AppraisalError> {
    let (p, req) = caller(r)?;
    let mut conn = s.pool.acquire().await?;
    let (period, scope, street) = period_for(&mut conn, &p, &req.period_id, &req.street_id).await?;
    let page = RPCS.page::<usize>(req.page_size, &req.page_token, &["scores", &req.period_id, &street])?;
    let (rows, as_of) = table(&mut conn, &period, &street).await?;
    let total = rows.len();
    let w = period.weights();
    let start = page.after.map_or(0, |a| a + 1);
    let mut scores: Vec<(usize, pb::DepartmentScore)> = rows
        .iter()
        .enumerate()
        .skip(start)
        .take(page.limit() as usize)
        .map(|(i, r)| {
            let own = match &scope {
                ScoreScope::Department(own) => *own == r.counts.department_id,
                _ => true,
            };
            let score =
                convert::score(&req.period_id, &street, &r.counts, r.rates, r.rank, w, as_of, period.closed, own);
            (i, score)
        })
        .collect();
    let next_page_token = page.finish(&mut scores, |(i, _)| *i);
    Ok(pb::ListDepartmentScoresResponse {
        scores: scores.into_iter().map(|(_, s)| s).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

/// The indicator and stored outcome a drill-down filters on.
fn indicator_and_outcome(indicator: i32, outcome: i32) -> Result<(Indicator, &'static str), AppraisalError> {
    use pb::ScoreOutcome as O;
    let indicator = match pb::ScoreIndicator::try_from(indicator) {
        Ok(pb::ScoreIndicator::Response) => Indicator::Response,
        Ok(pb::ScoreIndicator::Completion) => Indicator::Completion,
        Ok(pb::ScoreIndicator::Satisfaction) => Indicator::Satisfaction,
        _ => return Err(AppraisalError::field("indicator", "must be RESPONSE, COMPLETION or SATISFACTION")),
    };
    let (of, stored) = match O::try_from(outcome) {
        Ok(O::Unspecified) => return Ok((indicator, "")),
        Ok(O::ResponsePending) => (Indicator::Response, "PENDING"),
        Ok(O::ResponseResponded) => (Indicator::Response, "RESPONDED"),
        Ok(O::ResponseNotSigned) => (Indicator::Response, "NOT_SIGNED"),
        Ok(O::ResponseSignedLate) => (Indicator::Response, "SIGNED_LATE"),
        Ok(O::ResponseCheckInAbsent) => (Indicator::Response, "CHECK_IN_ABSENT"),
        Ok(O::ResponseCheckInLate) => (Indicator::Response, "CHECK_IN_LATE"),
        Ok(O::CompletionPending) => (Indicator::Completion, "PENDING"),
        Ok(O::CompletionOnTime) => (Indicator::Completion, "ON_TIME"),
        Ok(O::CompletionLate) => (Indicator::Completion, "LATE"),
        Ok(O::CompletionNotCompleted) => (Indicator::Completion, "NOT_COMPLETED"),
        Ok(O::SatisfactionPending) => (Indicator::Satisfaction, "PENDING"),
        Ok(O::SatisfactionSatisfied) => (Indicator::Satisfaction, "SATISFIED"),
        Ok(O::SatisfactionBasicallySatisfied) => (Indicator::Satisfaction, "BASICALLY_SATISFIED"),
        Ok(O::SatisfactionDissatisfied) => (Indicator::Satisfaction, "DISSATISFIED"),
        Err(_) => return Err(AppraisalError::field("outcome", "is not a known value")),
    };
    if of != indicator {
        return Err(AppraisalError::field("outcome", "is not an outcome of the indicator"));
    }
    Ok((indicator, stored))
}

/// The proto outcome, whether it counts in the denominator and numerator, and a short
/// explanation in Chinese.
fn outcome_of(indicator: Indicator, row: &store::RecordRow) -> (pb::ScoreOutcome, bool, bool, String) {
    use pb::ScoreOutcome as O;
    match (indicator, row.outcome.as_str()) {
        (Indicator::Response, "RESPONDED") => (O::ResponseResponded, true, true, "按时签收，全员按时到位".into()),
        (Indicator::Response, "NOT_SIGNED") => (O::ResponseNotSigned, true, false, "未签收".into()),
        (Indicator::Response, "SIGNED_LATE") => {
            (O::ResponseSignedLate, true, false, format!("签收超时 {} 分钟", (row.sign_lateness_secs + 59) / 60))
        }
        (Indicator::Response, "CHECK_IN_ABSENT") => {
            (O::ResponseCheckInAbsent, true, false, format!("{} 人不到位", row.absent_count))
        }
        (Indicator::Response, "CHECK_IN_LATE") => {
            (O::ResponseCheckInLate, true, false, format!("{} 人慢到位", row.late_count))
        }
        (Indicator::Response, _) => (O::ResponsePending, false, false, "报到时间未结束".into()),
        (Indicator::Completion, "ON_TIME") => (O::CompletionOnTime, true, true, "任务均在时间段内办结".into()),
        (Indicator::Completion, "LATE") => (O::CompletionLate, true, false, "任务办结，部分超时".into()),
        (Indicator::Completion, "NOT_COMPLETED") => (O::CompletionNotCompleted, true, false, "任务超时未办结".into()),
        (Indicator::Completion, _) => (O::CompletionPending, false, false, "任务办理中".into()),
        (Indicator::Satisfaction, "SATISFIED") => (O::SatisfactionSatisfied, true, true, "满意".into()),
        (Indicator::Satisfaction, "BASICALLY_SATISFIED") => {
            (O::SatisfactionBasicallySatisfied, true, true, "基本满意".into())
        }
        (Indicator::Satisfaction, "DISSATISFIED") => (O::SatisfactionDissatisfied, true, false, "不满意".into()),
        (Indicator::Satisfaction, _) => (O::SatisfactionPending, false, false, "未评价".into()),
    }
}

pub(super) async fn list_score_records(
    s: &Appraisal,
    r: Request<pb::ListScoreRecordsRequest>,
) -> Result<pb::ListScoreRecordsResponse, AppraisalError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    v.required_text("department_id", &req.department_id, 64);
    v.into_result()?;
    let (indicator, outcome) = indicator_and_outcome(req.indicator, req.outcome)?;
    let mut conn = s.pool.acquire().await?;
    let (period, scope, street) = period_for(&mut conn, &p, &req.period_id, &req.street_id).await?;
    if let ScoreScope::Department(own) = &scope {
        require(*own == req.department_id, "read another department's records")?;
    }
    let query = [req.period_id.as_str(), &req.department_id, &street, &req.indicator.to_string(), outcome];
    let page = RPCS.page::<(chrono::DateTime<chrono::Utc>, String)>(req.page_size, &req.page_token, &query)?;
    let scope =
        Scope { start: period.start_time, end: period.end_time, street_id: &street, department_id: &req.department_id };
    let (mut rows, total) =
        store::records(&mut conn, &scope, indicator, outcome, page.after.clone(), page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| (r.start_time, r.id.clone()));
    let records = rows
        .iter()
        .map(|row| {
            let (outcome, denominator, numerator, detail) = outcome_of(indicator, row);
            let mut sequences = row.sequences.clone();
            sequences.sort_unstable();
            pb::ScoreRecord {
                indicator: req.indicator,
                outcome: outcome as i32,
                case_id: row.case_id.clone(),
                call_id: row.call_id.clone(),
                street_id: row.street_id.clone(),
                department_id: row.department_id.clone(),
                counts_in_denominator: denominator,
                counts_in_numerator: numerator,
                detail,
                event_sequences: sequences,
                update_time: ts(row.update_time),
            }
        })
        .collect();
    Ok(pb::ListScoreRecordsResponse { records, next_page_token, total_size: total as i32 })
}

/// composite × weight / 10000, rounded half up.
fn contribution(composite: i32, weight_bp: i32) -> i32 {
    let product = i64::from(composite) * i64::from(weight_bp);
    ((product * 2 + score::FULL) / (score::FULL * 2)) as i32
}

pub(super) async fn export_annual_assessment(
    s: &Appraisal,
    r: Request<pb::ExportAnnualAssessmentRequest>,
) -> Result<pb::ExportAnnualAssessmentResponse, AppraisalError> {
    let (p, req) = caller(r)?;
    require(policy::may_export(&p), "export the annual assessment")?;
    let mut v = FieldViolations::new();
    period::year(&mut v, req.year);
    v.into_result()?;
    let mut conn = s.pool.acquire().await?;
    let year_period = periods_store::year_periods(&mut conn)
        .await?
        .into_iter()
        .find(|p| period::spans_year(p.start_time, p.end_time, req.year))
        .ok_or_else(|| {
            AppraisalError::precondition(
                "NO_YEAR_PERIOD",
                format!("years/{}", req.year),
                "no period of kind YEAR spans exactly that calendar year",
            )
        })?;
    let weight_bp = periods_store::weight(&mut conn, req.year).await?.map_or(ANNUAL_WEIGHT_MIN, |w| w.weight_bp);
    let (rows, _) = table(&mut conn, &year_period, "").await?;
    Ok(pb::ExportAnnualAssessmentResponse {
        year: req.year,
        period_id: year_period.id.to_string(),
        weight_bp,
        frozen: year_period.closed,
        contributions: rows
            .iter()
            .map(|r| pb::AnnualContribution {
                department_id: r.counts.department_id.clone(),
                composite_bp: r.rates.composite,
                contribution_bp: r.rates.composite.map(|c| contribution(c, weight_bp)),
                rank: r.rank,
            })
            .collect(),
    })
}

fn kpis_pb(row: &kpis::KpiRow) -> pb::Kpis {
    let n = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let share = score::rate(row.cases_closed, row.cases_closed + row.declined_out_of_jurisdiction);
    let goal = 9000;
    let average = if row.calls_signed > 0 { row.sign_millis / row.calls_signed } else { 0 };
    pb::Kpis {
        street_id: row.street_id.clone(),
        cases_received: n(row.cases_received),
        cases_closed: n(row.cases_closed),
        closed_by_street_alone: n(row.closed_by_street_alone),
        closed_with_calls: n(row.cases_closed - row.closed_by_street_alone),
        cases_declined: n(row.cases_declined),
        declined_out_of_jurisdiction: n(row.declined_out_of_jurisdiction),
        street_level_share_bp: share,
        goal_bp: goal,
        goal_met: share.is_some_and(|s| s >= goal),
        calls_started: n(row.calls_started),
        average_sign_duration: Some(prost_types::Duration {
            seconds: average / 1000,
            nanos: ((average % 1000) * 1_000_000) as i32,
        }),
        sign_overdue_count: n(row.sign_overdue),
        check_in_late_count: n(row.check_in_late),
        check_in_absent_count: n(row.check_in_absent),
        task_overdue_count: n(row.task_overdue),
        rectification_count: n(row.rectifications),
        rectification_overdue_count: n(row.rectification_overdue),
    }
}

pub(super) async fn get_district_kpis(
    s: &Appraisal,
    r: Request<pb::GetDistrictKpisRequest>,
) -> Result<pb::GetDistrictKpisResponse, AppraisalError> {
    let (p, req) = caller(r)?;
    let street_filter = match policy::score_scope(&p, &req.street_id)? {
        ScoreScope::All => req.street_id.clone(),
        ScoreScope::Street(own) => own,
        ScoreScope::Department(_) => return Err(policy::denied("read district KPIs").into()),
    };
    let mut conn = s.pool.acquire().await?;
    let (start, end) = match (req.period_id.is_empty(), time_range("range", req.range.as_ref())?) {
        (false, None) => {
            let id = uuid("period_id", &req.period_id)?;
            let period = found(periods_store::get(&mut conn, id, false).await?, "period", &req.period_id)?;
            (period.start_time, period.end_time)
        }
        (true, Some(range)) => range,
        _ => return Err(AppraisalError::field("period_id", "exactly one of period_id and range is required")),
    };
    let rows = kpis::by_street(&mut conn, start, end).await?;
    let mut district = kpis::KpiRow::default();
    for r in &rows {
        district.cases_received += r.cases_received;
        district.cases_closed += r.cases_closed;
        district.closed_by_street_alone += r.closed_by_street_alone;
        district.cases_declined += r.cases_declined;
        district.declined_out_of_jurisdiction += r.declined_out_of_jurisdiction;
        district.calls_started += r.calls_started;
        district.calls_signed += r.calls_signed;
        district.sign_millis += r.sign_millis;
        district.sign_overdue += r.sign_overdue;
        district.check_in_late += r.check_in_late;
        district.check_in_absent += r.check_in_absent;
        district.task_overdue += r.task_overdue;
        district.rectifications += r.rectifications;
        district.rectification_overdue += r.rectification_overdue;
    }
    let as_of = records::cursor(&mut conn, false).await?.last_sequence;
    Ok(pb::GetDistrictKpisResponse {
        range: Some(common::TimeRange { start_time: ts(start), end_time: ts(end) }),
        district: Some(kpis_pb(&district)),
        streets: rows
            .iter()
            .filter(|r| street_filter.is_empty() || r.street_id == street_filter)
            .map(kpis_pb)
            .collect(),
        as_of_sequence: as_of,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn contributions_round_half_up() {
        assert_eq!(super::contribution(7500, 3000), 2250);
        assert_eq!(super::contribution(6667, 3000), 2000);
        assert_eq!(super::contribution(5, 5000), 3); // 2.5 rounds up
    }
}
