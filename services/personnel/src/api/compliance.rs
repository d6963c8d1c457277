//! Compliance: decisions departments report, the findings of the district's compliance
//! report, the check of the roster's leadership changes against decisions, escalations of
//! overdue replies, and the Party Working Committee report (党工委委员).

use chrono::{DateTime, Utc};
use minhu_grpc::FieldViolations;
use minhu_proto::{common::v1 as common, personnel::v1 as pb};
use sqlx::types::Json;
use tonic::Request;
use uuid::Uuid;

use super::{MAX_TEXT, Personnel, caller, code, convert, key, me, page, scope, solicitations, total, uuid};
use crate::{
    domain,
    error::PersonnelError,
    store::{self, NewFinding, ReportRow},
};

pub(super) async fn report_decision(
    s: &Personnel,
    r: Request<pb::ReportDecisionRequest>,
) -> Result<pb::DecisionReport, PersonnelError> {
    let (p, req) = caller(r)?;
    let given = req.report.clone().unwrap_or_default();
    let mut v = FieldViolations::new();
    let station_id = code(&mut v, "report.station_id", &given.station_id);
    let street_id = code(&mut v, "report.street_id", &given.street_id);
    let person_id = uuid(&mut v, "report.person_id", &given.person_id).to_string();
    let position = solicitations::leadership_position(&mut v, "report.position", given.position);
    let matter = solicitations::matter(&mut v, "report.matter", given.matter);
    let decision = v.required_text("report.decision", &given.decision, MAX_TEXT).to_owned();
    let cited = (!given.solicitation_id.trim().is_empty())
        .then(|| uuid(&mut v, "report.solicitation_id", &given.solicitation_id));
    v.into_result()?;
    let key = key("ReportDecision", &p, &req.request_id, &req)?;
    let lookups = {
        let (p, station_id, street_id) = (p.clone(), station_id.clone(), street_id.clone());
        async move { solicitations::station_for(s, &p, &station_id, &street_id).await }
    };
    let now = s.now();
    s.write_after(&key, lookups, move |tx, station| {
        Box::pin(async move {
            let solicitation = match cited {
                Some(id) => {
                    let row = store::solicitation(tx, id, true)
                        .await?
                        .filter(|r| r.department_id == station.department_id)
                        .ok_or_else(|| PersonnelError::not_found("minhu.personnel.v1.OpinionSolicitation", id))?;
                    if row.person_id != person_id || row.station_id != station_id {
                        return Err(PersonnelError::field(
                            "report.solicitation_id",
                            "concerns another person or station",
                        ));
                    }
                    Some(row)
                }
                // A solicitation the department did file counts even when not cited.
                None => store::latest_solicitation_about(tx, &person_id, &station_id).await?,
            };
            let finding = domain::decision_finding(solicitation.as_ref().map(|r| (r.state(), r.reply_deadline)), now);
            let row = ReportRow {
                id: Uuid::now_v7(),
                department_id: station.department_id.clone(),
                station_id,
                street_id,
                person_id,
                position: position.into(),
                matter: matter.into(),
                decision,
                solicitation_id: solicitation.as_ref().map(|r| r.id),
                finding: finding.map(str::to_owned),
                decided_by: Json(me(&p)),
                decide_time: now,
            };
            store::insert_report(tx, &row).await?;
            if let Some(kind) = finding {
                let description = if kind == domain::finding::WITHOUT_SOLICITATION {
                    "部门作出人事决定前未事先书面征求街道意见".to_owned()
                } else {
                    "部门在街道回复意见前、回复时限届满前作出人事决定".to_owned()
                };
                let f = NewFinding {
                    kind,
                    department_id: &row.department_id,
                    station_id: &row.station_id,
                    street_id: &row.street_id,
                    person_id: &row.person_id,
                    solicitation_id: row.solicitation_id,
                    decision_report_id: Some(row.id),
                    description,
                    ..NewFinding::default()
                };
                store::insert_finding(tx, &f, now).await?;
            }
            Ok(convert::report(row))
        })
    })
    .await
}

pub(super) async fn list_reports(
    s: &Personnel,
    r: Request<pb::ListDecisionReportsRequest>,
) -> Result<pb::ListDecisionReportsResponse, PersonnelError> {
    let (p, req) = caller(r)?;
    let q = [req.street_id.as_str(), &req.department_id, &req.person_id];
    let page = page::<(DateTime<Utc>, Uuid)>(req.page_size, &req.page_token, &q)?;
    let Some(scope) = scope(&p, &req.street_id, &req.department_id)? else {
        return Ok(Default::default());
    };
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, count) =
        store::list_reports(&mut conn, &scope, req.person_id.trim(), page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| (r.decide_time, r.id));
    Ok(pb::ListDecisionReportsResponse {
        reports: rows.into_iter().map(convert::report).collect(),
        next_page_token,
        total_size: total(count),
    })
}

pub(super) async fn list_findings(
    s: &Personnel,
    r: Request<pb::ListComplianceFindingsRequest>,
) -> Result<pb::ListComplianceFindingsResponse, PersonnelError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let kinds: Vec<String> = req
        .kinds
        .iter()
        .enumerate()
        .filter_map(|(i, k)| match pb::FindingKind::try_from(*k) {
            Ok(pb::FindingKind::Unspecified) | Err(_) => {
                v.add(format!("kinds[{i}]"), "must be a finding kind");
                None
            }
            Ok(k) => Some(k.as_str_name().to_owned()),
        })
        .collect();
    v.into_result()?;
    let joined = kinds.join(",");
    let q = [req.street_id.as_str(), &req.department_id, &joined];
    let page = page::<(DateTime<Utc>, Uuid)>(req.page_size, &req.page_token, &q)?;
    let Some(scope) = scope(&p, &req.street_id, &req.department_id)? else {
        return Ok(Default::default());
    };
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, count) = store::list_findings(&mut conn, &scope, &kinds, page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| (r.detect_time, r.id));
    Ok(pb::ListComplianceFindingsResponse {
        findings: rows.into_iter().map(convert::finding).collect(),
        next_page_token,
        total_size: total(count),
    })
}

pub(super) async fn check_rpc(
    s: &Personnel,
    r: Request<pb::CheckLeadershipChangesRequest>,
) -> Result<pb::CheckLeadershipChangesResponse, PersonnelError> {
    let (p, _) = caller(r)?;
    if domain::caller(&p) != domain::Caller::District {
        return Err(PersonnelError::denied("only the district checks the roster's leadership changes"));
    }
    check(s).await
}

/// Reads every roster change after the cursor (no lock held meanwhile), then in one
/// transaction flags those no decision covers and moves the cursor. Concurrent checks
/// serialise on the cursor row; a change already flagged is not flagged twice.
pub(super) async fn check(s: &Personnel) -> Result<pb::CheckLeadershipChangesResponse, PersonnelError> {
    let from = store::cursor(&mut *s.d.pool.acquire().await?).await?;
    let mut changes = Vec::new();
    let mut after = from;
    loop {
        let page = s.d.roster.leadership_changes(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.sequence;
        changes.extend(page);
    }
    let now = s.now();
    let mut tx = s.d.pool.begin().await?;
    let cursor = store::lock_cursor(&mut tx).await?;
    let (mut checked, mut flagged) = (0, 0);
    for c in changes.iter().filter(|c| c.sequence > cursor) {
        checked += 1;
        if store::decision_exists(&mut tx, &c.person_id, &c.station_id).await? {
            continue;
        }
        flagged += 1;
        let joined = c.kind == minhu_proto::roster::v1::LeadershipChangeKind::Joined as i32;
        let what = if c.position == common::Position::StationHead as i32 { "主要负责人" } else { "班子成员" };
        let description = format!(
            "名册显示 {} 的{}{}，但人事模块没有对应的决定（未征求街道意见）",
            c.station_id,
            what,
            if joined { "任职" } else { "免职/调离" }
        );
        let f = NewFinding {
            kind: domain::finding::ROSTER_CHANGE,
            department_id: &c.department_id,
            station_id: &c.station_id,
            street_id: &c.street_id,
            person_id: &c.person_id,
            change_sequence: Some(c.sequence),
            description,
            ..NewFinding::default()
        };
        store::insert_finding(&mut tx, &f, now).await?;
    }
    let last = changes.last().map_or(cursor, |c| c.sequence.max(cursor));
    store::move_cursor(&mut tx, last).await?;
    tx.commit().await?;
    Ok(pb::CheckLeadershipChangesResponse { checked, flagged, last_sequence: last })
}

pub(super) async fn list_escalations(
    s: &Personnel,
    r: Request<pb::ListEscalationsRequest>,
) -> Result<pb::ListEscalationsResponse, PersonnelError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let solicitation =
        (!req.solicitation_id.trim().is_empty()).then(|| uuid(&mut v, "solicitation_id", &req.solicitation_id));
    v.into_result()?;
    let q = [req.street_id.as_str(), &req.solicitation_id];
    let page = page::<(DateTime<Utc>, Uuid)>(req.page_size, &req.page_token, &q)?;
    let Some(scope) = scope(&p, &req.street_id, "")? else {
        return Ok(Default::default());
    };
    let mut conn = s.d.pool.acquire().await?;
    let (mut rows, count) = store::list_escalations(&mut conn, &scope, solicitation, page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r| (r.escalate_time, r.id));
    Ok(pb::ListEscalationsResponse {
        escalations: rows.into_iter().map(convert::escalation).collect(),
        next_page_token,
        total_size: total(count),
    })
}

pub(super) async fn committee_status(
    s: &Personnel,
    r: Request<pb::ListStationHeadCommitteeStatusRequest>,
) -> Result<pb::ListStationHeadCommitteeStatusResponse, PersonnelError> {
    let (_, req) = caller(r)?;
    let q = [req.street_id.as_str(), &req.department_id, if req.only_missing { "missing" } else { "all" }];
    let page = page::<usize>(req.page_size, &req.page_token, &q)?;
    let street = req.street_id.trim();
    let mut stations: Vec<_> =
        s.d.roster
            .stations(req.department_id.trim(), street)
            .await?
            .into_iter()
            // The committee that counts is that of the street the station lies in.
            .filter(|st| st.active && (street.is_empty() || st.street_id == street))
            .collect();
    stations.sort_by(|a, b| (&a.street_id, &a.id).cmp(&(&b.street_id, &b.id)));
    let heads: Vec<String> =
        stations.iter().filter(|s| !s.head_person_id.is_empty()).map(|s| s.head_person_id.clone()).collect();
    let people = s.d.roster.people(&heads).await?.unwrap_or_default();
    let mut statuses: Vec<pb::StationHeadCommitteeStatus> = stations
        .into_iter()
        .map(|st| {
            let head = people.iter().find(|p| p.id == st.head_person_id).map(|p| common::PersonRef {
                id: p.id.clone(),
                name: p.name.clone(),
                department_id: p.department_id.clone(),
                station_id: p.station_id.clone(),
            });
            let issue = if head.is_none() {
                pb::CommitteeIssue::HeadVacant
            } else if st.head_on_party_working_committee {
                pb::CommitteeIssue::None
            } else {
                pb::CommitteeIssue::NotOnCommittee
            };
            pb::StationHeadCommitteeStatus {
                station_id: st.id,
                station_name: st.name,
                department_id: st.department_id,
                street_id: st.street_id,
                head,
                on_committee: st.head_on_party_working_committee,
                issue: issue as i32,
                note: st.party_working_committee_note,
            }
        })
        .filter(|s| !req.only_missing || s.issue != pb::CommitteeIssue::None as i32)
        .collect();
    let total_size = total(statuses.len() as i64);
    let start = page.after.unwrap_or(0).min(statuses.len());
    let mut rest: Vec<(usize, pb::StationHeadCommitteeStatus)> =
        statuses.drain(start..).enumerate().map(|(i, s)| (start + i + 1, s)).take(page.limit() as usize).collect();
    let next_page_token = page.finish(&mut rest, |(end, _)| *end);
    Ok(pb::ListStationHeadCommitteeStatusResponse {
        statuses: rest.into_iter().map(|(_, s)| s).collect(),
        next_page_token,
        total_size,
    })
}
