//! Secondees (常驻人员) under the street's daily management: who they are (from the
//! roster), the street's evaluations and yearly assessments feeding the incentive allowance
//! (五奖) through the district's coefficients, and the street's commendation base and quota
//! (评优基数和比例).

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use minhu_grpc::FieldViolations;
use minhu_proto::{
    common::v1 as common,
    personnel::v1 as pb,
    roster::v1::{self as roster, SecondmentKind},
};
use sqlx::types::Json;
use tonic::Request;
use uuid::Uuid;

use super::{Personnel, caller, code, convert, date, key, me, page, scope, total, uuid, year};
use crate::{
    domain::{self, Caller},
    error::PersonnelError,
    store::{self, AssessmentRow, EvaluationRow},
};

fn naive(d: &Option<common::Date>) -> Option<NaiveDate> {
    d.as_ref().and_then(|d| NaiveDate::from_ymd_opt(d.year, u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?))
}

/// Whether `s` is in force on any day of `[from, to]`.
fn in_force_during(s: &roster::Secondment, from: NaiveDate, to: NaiveDate) -> bool {
    naive(&s.start_date).is_some_and(|start| start <= to) && naive(&s.end_date).is_none_or(|end| end >= from)
}

fn year_span(year: i32) -> (NaiveDate, NaiveDate) {
    (NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default(), NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or_default())
}

fn grade(v: &mut FieldViolations, field: &str, value: i32) -> pb::AssessmentGrade {
    match pb::AssessmentGrade::try_from(value) {
        Ok(pb::AssessmentGrade::Unspecified) | Err(_) => {
            v.add(field, "must be an assessment grade");
            pb::AssessmentGrade::Unspecified
        }
        Ok(g) => g,
    }
}

pub(super) async fn list_secondees(
    s: &Personnel,
    r: Request<pb::ListSecondeesRequest>,
) -> Result<pb::ListSecondeesResponse, PersonnelError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let on = date(&mut v, "active_on", req.active_on.as_ref()).unwrap_or_else(|| s.today());
    let center = match common::StreetCenter::try_from(req.center) {
        Ok(c) => c as i32,
        Err(_) => {
            v.add("center", "must be a street centre");
            0
        }
    };
    let (street, department) = match domain::caller(&p) {
        Caller::District => (req.street_id.trim().to_owned(), req.department_id.trim().to_owned()),
        Caller::Street(own) => {
            if !req.street_id.trim().is_empty() && req.street_id.trim() != own {
                return Ok(Default::default());
            }
            (own.to_owned(), req.department_id.trim().to_owned())
        }
        Caller::Department(own) => {
            if !req.department_id.trim().is_empty() && req.department_id.trim() != own {
                return Ok(Default::default());
            }
            (req.street_id.trim().to_owned(), own.to_owned())
        }
        Caller::Other => return Err(PersonnelError::denied("secondees are for streets, departments and the district")),
    };
    v.into_result()?;
    let q = [street.as_str(), &department, &center.to_string(), &on.to_string()];
    let page = page::<usize>(req.page_size, &req.page_token, &q)?;
    let secondments =
        s.d.roster
            .secondments(roster::ListSecondmentsRequest {
                street_id: street,
                department_id: department,
                kind: SecondmentKind::Resident as i32,
                center,
                active_on: Some(convert::date(on)),
                ..Default::default()
            })
            .await?;
    let ids: Vec<String> = secondments.iter().map(|s| s.person_id.clone()).collect();
    let people = s.d.roster.people(&ids).await?.unwrap_or_default();
    let mut all: Vec<pb::Secondee> = secondments
        .into_iter()
        .map(|sec| {
            let person = people.iter().find(|p| p.id == sec.person_id);
            pb::Secondee {
                person: Some(common::PersonRef {
                    id: sec.person_id.clone(),
                    name: person.map(|p| p.name.clone()).unwrap_or_default(),
                    department_id: sec.department_id.clone(),
                    station_id: person.map(|p| p.station_id.clone()).unwrap_or_default(),
                }),
                secondment_id: sec.id,
                department_id: sec.department_id,
                street_id: sec.street_id,
                center: sec.center,
                start_date: sec.start_date,
                end_date: sec.end_date,
            }
        })
        .collect();
    all.sort_by(|a, b| {
        let name = |s: &pb::Secondee| s.person.as_ref().map(|p| (p.name.clone(), p.id.clone())).unwrap_or_default();
        name(a).cmp(&name(b))
    });
    let total_size = total(all.len() as i64);
    let start = page.after.unwrap_or(0).min(all.len());
    let mut rest: Vec<(usize, pb::Secondee)> =
        all.drain(start..).enumerate().map(|(i, s)| (start + i + 1, s)).take(page.limit() as usize).collect();
    let next_page_token = page.finish(&mut rest, |(end, _)| *end);
    Ok(pb::ListSecondeesResponse { secondees: rest.into_iter().map(|(_, s)| s).collect(), next_page_token, total_size })
}

pub(super) async fn record_evaluation(
    s: &Personnel,
    r: Request<pb::RecordSecondeeEvaluationRequest>,
) -> Result<pb::SecondeeEvaluation, PersonnelError> {
    let (p, req) = caller(r)?;
    let given = req.evaluation.clone().unwrap_or_default();
    let mut v = FieldViolations::new();
    let secondment_id = uuid(&mut v, "evaluation.secondment_id", &given.secondment_id).to_string();
    let kind = match pb::EvaluationKind::try_from(given.kind) {
        Ok(pb::EvaluationKind::Unspecified) | Err(_) => {
            v.add("evaluation.kind", "must be MONTHLY or ANNUAL");
            pb::EvaluationKind::Unspecified
        }
        Ok(k) => k,
    };
    year(&mut v, "evaluation.year", given.year);
    match kind {
        pb::EvaluationKind::Monthly => v.check((1..=12).contains(&given.month), "evaluation.month", "must be 1 to 12"),
        _ => v.check(given.month == 0, "evaluation.month", "must be 0 for an annual evaluation"),
    }
    let grade = grade(&mut v, "evaluation.grade", given.grade);
    let comment = v.optional_text("evaluation.comment", &given.comment, 2000).to_owned();
    v.into_result()?;
    let key = key("RecordSecondeeEvaluation", &p, &req.request_id, &req)?;
    let lookups = {
        let (p, secondment_id) = (p.clone(), secondment_id.clone());
        async move {
            let secondment =
                s.d.roster
                    .secondment(&secondment_id)
                    .await?
                    .filter(|sec| sec.kind == SecondmentKind::Resident as i32)
                    .ok_or_else(|| PersonnelError::not_found("minhu.roster.v1.Secondment", &secondment_id))?;
            domain::require_street_leader(&p, &secondment.street_id)?;
            let (from, to) = if kind == pb::EvaluationKind::Monthly {
                let first = NaiveDate::from_ymd_opt(given.year, given.month as u32, 1).unwrap_or_default();
                let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
                (first, next.pred_opt().unwrap_or(first))
            } else {
                year_span(given.year)
            };
            if !in_force_during(&secondment, from, to) {
                return Err(PersonnelError::refused(
                    "NOT_SECONDED",
                    format!("secondments/{secondment_id}"),
                    "the secondment was not in force during the period",
                ));
            }
            Ok::<_, PersonnelError>(secondment)
        }
    };
    let now = s.now();
    s.write_after(&key, lookups, move |tx, secondment| {
        Box::pin(async move {
            let coefficient_bp = store::coefficient(tx, given.year, grade as i32).await?;
            let row = EvaluationRow {
                id: Uuid::now_v7(),
                secondment_id: secondment_id.clone(),
                person_id: secondment.person_id.clone(),
                street_id: secondment.street_id.clone(),
                department_id: secondment.department_id.clone(),
                kind: kind.as_str_name().into(),
                year: given.year,
                month: given.month,
                grade: grade.as_str_name().into(),
                grade_number: grade as i32,
                comment,
                coefficient_bp,
                evaluated_by: Json(me(&p)),
                create_time: now,
            };
            if !store::insert_evaluation(tx, &row).await? {
                return Err(PersonnelError::refused(
                    "ALREADY_EVALUATED",
                    format!("secondments/{secondment_id}"),
                    "the period was already evaluated",
                ));
            }
            Ok(convert::evaluation(row))
        })
    })
    .await
}

pub(super) async fn list_evaluations(
    s: &Personnel,
    r: Request<pb::ListSecondeeEvaluationsRequest>,
) -> Result<pb::ListSecondeeEvaluationsResponse, PersonnelError> {
    let (p, req) = caller(r)?;
    let kind = match pb::EvaluationKind::try_from(req.kind) {
        Ok(pb::EvaluationKind::Unspecified) => "",
        Ok(k) => k.as_str_name(),
        Err(_) => return Err(PersonnelError::field("kind", "must be MONTHLY or ANNUAL")),
    };
    let q = [req.street_id.as_str(), &req.person_id, &req.secondment_id, kind, &req.year.to_string()];
    let page = page::<(DateTime<Utc>, Uuid)>(req.page_size, &req.page_token, &q)?;
    // A person sees their own evaluations; a department's leaders those of its people.
    let mut person = req.person_id.trim().to_owned();
    if p.organization.kind == minhu_grpc::OrgKind::Department
        && !p.has_any_role(&[minhu_grpc::Role::DepartmentLeader, minhu_grpc::Role::PersonnelOfficer])
    {
        if !person.is_empty() && person != p.subject {
            return Ok(Default::default());
        }
        person = p.subject.clone();
    }
    let Some(scope) = scope(&p, &req.street_id, "")? else {
        return Ok(Default::default());
    };
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, count) = store::list_evaluations(
        &mut conn,
        &scope,
        &person,
        req.secondment_id.trim(),
        kind,
        req.year,
        page.after,
        page.limit(),
    )
    .await?;
    let next_page_token = page.finish(&mut rows, |r| (r.create_time, r.id));
    Ok(pb::ListSecondeeEvaluationsResponse {
        evaluations: rows.into_iter().map(convert::evaluation).collect(),
        next_page_token,
        total_size: total(count),
    })
}

fn ratio_of(year: i32, set: Option<(i32, DateTime<Utc>)>) -> pb::CommendationRatio {
    match set {
        Some((bp, at)) => {
            pb::CommendationRatio { year, ratio_bp: bp, is_default: false, update_time: Some(convert::ts(at)) }
        }
        None => pb::CommendationRatio { year, ratio_bp: domain::DEFAULT_RATIO_BP, is_default: true, update_time: None },
    }
}

pub(super) async fn set_ratio(
    s: &Personnel,
    r: Request<pb::SetCommendationRatioRequest>,
) -> Result<pb::CommendationRatio, PersonnelError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    year(&mut v, "year", req.year);
    v.check((0..=10_000).contains(&req.ratio_bp), "ratio_bp", "must be from 0 to 10000 basis points");
    v.into_result()?;
    domain::require_district_setter(&p)?;
    let key = key("SetCommendationRatio", &p, &req.request_id, &req)?;
    let now = s.now();
    s.write(&key, move |tx| {
        Box::pin(async move {
            store::set_ratio(tx, req.year, req.ratio_bp, now).await?;
            Ok(ratio_of(req.year, store::ratio(tx, req.year).await?))
        })
    })
    .await
}

pub(super) async fn quota(
    s: &Personnel,
    r: Request<pb::GetCommendationQuotaRequest>,
) -> Result<pb::CommendationQuota, PersonnelError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let street = code(&mut v, "street_id", &req.street_id);
    year(&mut v, "year", req.year);
    v.into_result()?;
    match domain::caller(&p) {
        Caller::District => {}
        Caller::Street(own) if own == street => {}
        _ => return Err(PersonnelError::denied("a street's quota is for the street and the district")),
    }
    let today = s.today();
    let reference = if req.year == today.year() { today } else { year_span(req.year).1 };
    let staff = s.d.roster.street_staff_count(&street).await?;
    let mut secondees: Vec<String> =
        s.d.roster
            .secondments(roster::ListSecondmentsRequest {
                street_id: street.clone(),
                kind: SecondmentKind::Resident as i32,
                active_on: Some(convert::date(reference)),
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|s| s.person_id)
            .collect();
    secondees.sort();
    secondees.dedup();
    let mut conn = s.d.pool.acquire().await?;
    let ratio = ratio_of(req.year, store::ratio(&mut conn, req.year).await?);
    let base = staff + secondees.len() as i32;
    Ok(pb::CommendationQuota {
        street_id: street,
        year: req.year,
        street_staff_count: staff,
        secondee_count: secondees.len() as i32,
        base_count: base,
        quota: domain::commendation_quota(base, ratio.ratio_bp),
        ratio: Some(ratio),
        reference_date: Some(convert::date(reference)),
    })
}

pub(super) async fn record_assessment(
    s: &Personnel,
    r: Request<pb::RecordIncentiveAssessmentRequest>,
) -> Result<pb::IncentiveAssessment, PersonnelError> {
    use pb::incentive_assessment::Subject;
    let (p, req) = caller(r)?;
    let given = req.assessment.clone().unwrap_or_default();
    let mut v = FieldViolations::new();
    year(&mut v, "assessment.year", given.year);
    let grade = grade(&mut v, "assessment.grade", given.grade);
    let comment = v.optional_text("assessment.comment", &given.comment, 2000).to_owned();
    let subject = match &given.subject {
        Some(Subject::StationId(id)) => Subject::StationId(code(&mut v, "assessment.station_id", id)),
        Some(Subject::PersonId(id)) => Subject::PersonId(uuid(&mut v, "assessment.person_id", id).to_string()),
        None => {
            v.add("assessment.subject", "a station_id or a person_id is required");
            Subject::StationId(String::new())
        }
    };
    v.into_result()?;
    let Caller::Street(street) = domain::caller(&p) else {
        return Err(PersonnelError::denied("only a street assesses"));
    };
    let street = street.to_owned();
    domain::require_street_leader(&p, &street)?;
    let key = key("RecordIncentiveAssessment", &p, &req.request_id, &req)?;
    let lookups = {
        let street = street.clone();
        async move {
            let subject = match subject {
                Subject::StationId(id) => {
                    let station =
                        s.d.roster
                            .station(&id)
                            .await?
                            .ok_or_else(|| PersonnelError::not_found("minhu.roster.v1.Station", &id))?;
                    if station.street_id != street && !station.served_street_ids.contains(&street) {
                        return Err(PersonnelError::refused(
                            "STATION_NOT_SERVING_STREET",
                            format!("stations/{id}"),
                            "the station does not serve this street",
                        ));
                    }
                    (id, String::new(), station.department_id)
                }
                Subject::PersonId(id) => {
                    let (from, to) = year_span(given.year);
                    let secondments =
                        s.d.roster
                            .secondments(roster::ListSecondmentsRequest {
                                street_id: street.clone(),
                                person_id: id.clone(),
                                kind: SecondmentKind::Resident as i32,
                                include_inactive: true,
                                ..Default::default()
                            })
                            .await?;
                    let sec = secondments.iter().find(|s| in_force_during(s, from, to)).ok_or_else(|| {
                        PersonnelError::refused(
                            "NOT_SECONDED",
                            format!("people/{id}"),
                            "not seconded to this street during the year",
                        )
                    })?;
                    (String::new(), id, sec.department_id.clone())
                }
            };
            Ok::<_, PersonnelError>(subject)
        }
    };
    let now = s.now();
    s.write_after(&key, lookups, move |tx, (station_id, person_id, department_id)| {
        Box::pin(async move {
            let coefficient_bp = store::coefficient(tx, given.year, grade as i32).await?;
            let row = AssessmentRow {
                id: Uuid::now_v7(),
                street_id: street,
                year: given.year,
                station_id,
                person_id,
                department_id,
                grade: grade.as_str_name().into(),
                comment,
                coefficient_bp,
                assessed_by: Json(me(&p)),
                create_time: now,
            };
            if !store::insert_assessment(tx, &row).await? {
                return Err(PersonnelError::refused(
                    "ALREADY_ASSESSED",
                    format!("streets/{}", row.street_id),
                    "the subject was already assessed for the year",
                ));
            }
            Ok(convert::assessment(row))
        })
    })
    .await
}

pub(super) async fn list_assessments(
    s: &Personnel,
    r: Request<pb::ListIncentiveAssessmentsRequest>,
) -> Result<pb::ListIncentiveAssessmentsResponse, PersonnelError> {
    let (p, req) = caller(r)?;
    let q = [req.street_id.as_str(), &req.department_id, &req.station_id, &req.person_id, &req.year.to_string()];
    let page = page::<(DateTime<Utc>, Uuid)>(req.page_size, &req.page_token, &q)?;
    let Some(scope) = scope(&p, &req.street_id, &req.department_id)? else {
        return Ok(Default::default());
    };
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, count) = store::list_assessments(
        &mut conn,
        &scope,
        req.year,
        req.station_id.trim(),
        req.person_id.trim(),
        page.after,
        page.limit(),
    )
    .await?;
    let next_page_token = page.finish(&mut rows, |r| (r.create_time, r.id));
    Ok(pb::ListIncentiveAssessmentsResponse {
        assessments: rows.into_iter().map(convert::assessment).collect(),
        next_page_token,
        total_size: total(count),
    })
}

fn coefficients_of(year: i32, set: &[(i32, i32, DateTime<Utc>)]) -> Vec<pb::IncentiveCoefficient> {
    [
        pb::AssessmentGrade::Excellent,
        pb::AssessmentGrade::Competent,
        pb::AssessmentGrade::BasicallyCompetent,
        pb::AssessmentGrade::Incompetent,
    ]
    .into_iter()
    .map(|g| match set.iter().find(|c| c.0 == g as i32) {
        Some(&(_, bp, at)) => pb::IncentiveCoefficient {
            year,
            grade: g as i32,
            coefficient_bp: bp,
            is_default: false,
            update_time: Some(convert::ts(at)),
        },
        None => pb::IncentiveCoefficient {
            year,
            grade: g as i32,
            coefficient_bp: domain::default_coefficient_bp(g as i32),
            is_default: true,
            update_time: None,
        },
    })
    .collect()
}

pub(super) async fn set_coefficient(
    s: &Personnel,
    r: Request<pb::SetIncentiveCoefficientRequest>,
) -> Result<pb::IncentiveCoefficient, PersonnelError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    year(&mut v, "year", req.year);
    let grade = grade(&mut v, "grade", req.grade);
    v.check((0..=100_000).contains(&req.coefficient_bp), "coefficient_bp", "must be from 0 to 100000 basis points");
    v.into_result()?;
    domain::require_district_setter(&p)?;
    let key = key("SetIncentiveCoefficient", &p, &req.request_id, &req)?;
    let now = s.now();
    s.write(&key, move |tx| {
        Box::pin(async move {
            store::set_coefficient(tx, req.year, grade as i32, req.coefficient_bp, now).await?;
            let set = store::coefficients(tx, req.year).await?;
            coefficients_of(req.year, &set)
                .into_iter()
                .find(|c| c.grade == grade as i32)
                .ok_or_else(|| PersonnelError::Internal("a coefficient just set is missing".into()))
        })
    })
    .await
}

pub(super) async fn list_coefficients(
    s: &Personnel,
    r: Request<pb::ListIncentiveCoefficientsRequest>,
) -> Result<pb::ListIncentiveCoefficientsResponse, PersonnelError> {
    let (_, req) = caller(r)?;
    let mut v = FieldViolations::new();
    year(&mut v, "year", req.year);
    v.into_result()?;
    let mut conn = s.d.pool.acquire().await?;
    let set = store::coefficients(&mut conn, req.year).await?;
    Ok(pb::ListIncentiveCoefficientsResponse { coefficients: coefficients_of(req.year, &set) })
}
