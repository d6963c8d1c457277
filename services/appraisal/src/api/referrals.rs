//! Referrals (线索移送) of non-performance to discipline inspection (纪检监察) and
//! organisation/personnel (组织人事), with trail evidence checked against consumed events,
//! and suggestions from repeated incidents.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use minhu_grpc::{FieldViolations, OrgKind, Principal};
use minhu_proto::{appraisal::v1 as pb, common::v1 as common};
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use super::{Appraisal, RPCS, caller, convert, found, time_range, uuid};
use crate::{
    domain::{
        policy::{self, require},
        referral,
    },
    error::AppraisalError,
    store::{
        periods as periods_store, records,
        referrals::{self as store, NewReferral, ReferralFilter, ReferralRow},
    },
};

/// Who sees a referral, and as what.
enum Viewer {
    /// The district: everything.
    District,
    /// A street: its own referrals.
    Street(String),
    /// A recipient: the referrals sent to it.
    Recipient(&'static str),
}

fn viewer(p: &Principal) -> Result<Viewer, AppraisalError> {
    if policy::is_district(p) {
        return Ok(Viewer::District);
    }
    if p.organization.kind == OrgKind::Street {
        return Ok(Viewer::Street(p.organization.id.clone()));
    }
    policy::recipient_of(p).map(Viewer::Recipient).ok_or_else(|| policy::denied("read referrals").into())
}

/// A referral with its parts, if the viewer may see it (NOT_FOUND otherwise: no hint).
async fn load(conn: &mut PgConnection, v: &Viewer, id: Uuid, lock: bool) -> Result<pb::Referral, AppraisalError> {
    let row = found(store::get(conn, id, lock).await?, "referral", &id.to_string())?;
    let (recipients, evidence) = store::parts(conn, &[id]).await?;
    let visible = match v {
        Viewer::District => true,
        Viewer::Street(s) => *s == row.street_id,
        Viewer::Recipient(kind) => recipients.iter().any(|r| r.recipient == *kind),
    };
    if !visible {
        return Err(AppraisalError::NotFound { resource: "referral", id: id.to_string() });
    }
    let own = match v {
        Viewer::Recipient(kind) => Some(*kind),
        _ => None,
    };
    Ok(convert::referral(&row, &recipients, &evidence, own))
}

fn kind_name(field: &str, kind: i32, required: bool) -> Result<String, AppraisalError> {
    match pb::ReferralKind::try_from(kind) {
        Ok(pb::ReferralKind::Unspecified) if !required => Ok(String::new()),
        Ok(pb::ReferralKind::Unspecified) | Err(_) => {
            Err(AppraisalError::field(field, "must be ABSENT, LATE or INACTIVE"))
        }
        Ok(k) => Ok(k.as_str_name().to_owned()),
    }
}

pub(super) async fn create_referral(
    s: &Appraisal,
    r: Request<pb::CreateReferralRequest>,
) -> Result<pb::Referral, AppraisalError> {
    let (p, req) = caller(r)?;
    let input = req.referral.clone().unwrap_or_default();
    let mut v = FieldViolations::new();
    let case_id = v.required_text("referral.case_id", &input.case_id, 64).to_owned();
    let call_id = v.required_text("referral.call_id", &input.call_id, 64).to_owned();
    let department_id = v.required_text("referral.department_id", &input.department_id, 64).to_owned();
    let facts = v.required_text("referral.facts", &input.facts, 4000).to_owned();
    let kind = match kind_name("referral.kind", input.kind, true) {
        Ok(k) => k,
        Err(_) => {
            v.add("referral.kind", "must be ABSENT, LATE or INACTIVE");
            String::new()
        }
    };
    for (i, person) in input.person_ids.iter().enumerate() {
        v.check(
            !person.trim().is_empty() && person.len() <= 64,
            &format!("referral.person_ids[{i}]"),
            "must be a person id",
        );
    }
    v.check(!input.recipients.is_empty(), "referral.recipients", "at least one recipient is required");
    let mut recipients = Vec::new();
    for (i, rec) in input.recipients.iter().enumerate() {
        match common::OrganizationKind::try_from(rec.recipient) {
            Ok(
                k @ (common::OrganizationKind::DisciplineInspection | common::OrganizationKind::OrganizationPersonnel),
            ) => {
                let name = k.as_str_name().to_owned();
                v.check(!recipients.contains(&name), &format!("referral.recipients[{i}]"), "is listed twice");
                recipients.push(name);
            }
            _ => v.add(
                format!("referral.recipients[{i}].recipient"),
                "must be DISCIPLINE_INSPECTION or ORGANIZATION_PERSONNEL",
            ),
        }
    }
    v.check(!input.evidence.is_empty(), "referral.evidence", "at least one trail entry is required");
    for (i, e) in input.evidence.iter().enumerate() {
        v.check(!e.case_id.is_empty(), &format!("referral.evidence[{i}].case_id"), "is required");
        v.check(e.trail_sequence > 0, &format!("referral.evidence[{i}].trail_sequence"), "must be positive");
        v.check(!e.trail_hash.is_empty(), &format!("referral.evidence[{i}].trail_hash"), "is required");
    }
    v.into_result()?;
    let street_id = policy::referring_street(&p)
        .ok_or_else(|| policy::denied("refer non-performance (street leaders only)"))?
        .to_owned();
    let key = RPCS.idempotency("CreateReferral", &p, &req.request_id, &req)?;
    let created_by = convert::actor_json(&p);
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            // The calling street is the call's: only it may refer (谁呼谁评). Another
            // street's call answers exactly like a missing one.
            let street: Option<(String,)> = sqlx::query_as(
                "SELECT street_id FROM call_records \
                 WHERE call_id = $1 AND case_id = $2 AND department_id = $3 AND street_id = $4",
            )
            .bind(&call_id)
            .bind(&case_id)
            .bind(&department_id)
            .bind(&street_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((street_id,)) = street else {
                return Err(AppraisalError::NotFound { resource: "call", id: call_id });
            };
            let mut evidence = Vec::new();
            let mut proves_kind = false;
            let mut people_cited = BTreeSet::new();
            for e in &input.evidence {
                let subject = format!("cases/{}/trail/{}", e.case_id, e.trail_sequence);
                let Some(event) = records::event_at(tx, &e.case_id, e.trail_sequence).await? else {
                    return Err(AppraisalError::precondition(
                        "EVIDENCE_UNKNOWN",
                        subject,
                        "no consumed event has that case and trail sequence",
                    ));
                };
                if event.trail_hash != e.trail_hash {
                    return Err(AppraisalError::precondition("EVIDENCE_MISMATCH", subject, "the trail hash differs"));
                }
                let about = referral::Subject { case_id: &case_id, call_id: &call_id, department_id: &department_id };
                if !about.covers(&event.case_id, &event.call_id, &event.department_id) {
                    return Err(AppraisalError::precondition(
                        "EVIDENCE_NOT_ABOUT_REFERRAL",
                        subject,
                        "the entry is not about the referred call and department",
                    ));
                }
                if !event.person_id.is_empty() {
                    people_cited.insert(event.person_id.clone());
                }
                proves_kind |= referral::proves(&kind, &event.event_type, event.amount);
                evidence.push((e.case_id.clone(), e.trail_sequence, e.trail_hash.clone(), event.sequence));
            }
            if let Some(person) = referral::uncited_person(&input.person_ids, &people_cited) {
                return Err(AppraisalError::precondition(
                    "PERSON_NOT_IN_EVIDENCE",
                    format!("people/{person}"),
                    "no cited entry is about this person",
                ));
            }
            if !proves_kind {
                return Err(AppraisalError::precondition(
                    "EVIDENCE_NOT_MATCHING_KIND",
                    format!("referrals/{kind}"),
                    "no evidence of the kind referred",
                ));
            }
            let new = NewReferral {
                id: Uuid::now_v7(),
                street_id,
                case_id,
                call_id,
                department_id,
                person_ids: input.person_ids.clone(),
                kind,
                facts,
                created_by,
                recipients,
                evidence,
            };
            store::insert(tx, &new, Utc::now()).await?;
            load(tx, &Viewer::District, new.id, false).await
        })
    })
    .await
}

pub(super) async fn get_referral(
    s: &Appraisal,
    r: Request<pb::GetReferralRequest>,
) -> Result<pb::Referral, AppraisalError> {
    let (p, req) = caller(r)?;
    let v = viewer(&p)?;
    let id = uuid("referral_id", &req.referral_id)?;
    let mut conn = s.pool.acquire().await?;
    load(&mut conn, &v, id, false).await
}

pub(super) async fn list_referrals(
    s: &Appraisal,
    r: Request<pb::ListReferralsRequest>,
) -> Result<pb::ListReferralsResponse, AppraisalError> {
    let (p, req) = caller(r)?;
    let v = viewer(&p)?;
    let recipient = match common::OrganizationKind::try_from(req.recipient) {
        Ok(common::OrganizationKind::Unspecified) => String::new(),
        Ok(k @ (common::OrganizationKind::DisciplineInspection | common::OrganizationKind::OrganizationPersonnel)) => {
            k.as_str_name().to_owned()
        }
        _ => return Err(AppraisalError::field("recipient", "must be DISCIPLINE_INSPECTION or ORGANIZATION_PERSONNEL")),
    };
    let state = match pb::ReferralState::try_from(req.state) {
        Ok(pb::ReferralState::Unspecified) => String::new(),
        Ok(st) => st.as_str_name().trim_start_matches("REFERRAL_STATE_").to_owned(),
        Err(_) => return Err(AppraisalError::field("state", "is not a known value")),
    };
    let mut filter = ReferralFilter {
        street_id: req.street_id.clone(),
        department_id: req.department_id.clone(),
        case_id: req.case_id.clone(),
        recipient,
        state,
        kind: kind_name("kind", req.kind, false)?,
        created: time_range("create_time_range", req.create_time_range.as_ref())?,
    };
    let own = match &v {
        Viewer::District => None,
        Viewer::Street(street) => {
            require(filter.street_id.is_empty() || filter.street_id == *street, "list another street's referrals")?;
            filter.street_id = street.clone();
            None
        }
        Viewer::Recipient(kind) => {
            require(filter.recipient.is_empty() || filter.recipient == *kind, "list referrals sent to others")?;
            filter.recipient = (*kind).to_owned();
            Some(*kind)
        }
    };
    let query = format!("{filter:?}");
    let page = RPCS.page::<(DateTime<Utc>, Uuid)>(req.page_size, &req.page_token, &["referrals", &query])?;
    let mut conn = s.pool.acquire().await?;
    let (mut rows, total) = store::list(&mut conn, &filter, page.after, page.limit()).await?;
    let next_page_token = page.finish(&mut rows, |r: &ReferralRow| (r.create_time, r.id));
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let (recipients, evidence) = store::parts(&mut conn, &ids).await?;
    Ok(pb::ListReferralsResponse {
        referrals: rows.iter().map(|r| convert::referral(r, &recipients, &evidence, own)).collect(),
        next_page_token,
        total_size: total as i32,
    })
}

/// Moves the caller's recipient part on: to RECEIVED, or to HANDLED with `outcome`.
async fn advance(
    s: &Appraisal,
    p: Principal,
    method: &str,
    referral_id: &str,
    request_id: &str,
    request: &impl prost::Message,
    outcome: Option<String>,
) -> Result<pb::Referral, AppraisalError> {
    let recipient = policy::recipient_of(&p).ok_or_else(|| policy::denied("act on referrals as a recipient"))?;
    let id = uuid("referral_id", referral_id)?;
    let key = RPCS.idempotency(method, &p, request_id, request)?;
    let handled_by = convert::person_json(&p);
    key.run(&s.pool, move |tx| {
        Box::pin(async move {
            let viewer = Viewer::Recipient(recipient);
            // Locks the referral: two officers of one recipient take turns.
            load(tx, &viewer, id, true).await?;
            let (parts, _) = store::parts(tx, &[id]).await?;
            let subject = format!("referrals/{id}");
            let Some(part) = parts.iter().find(|r| r.recipient == recipient) else {
                return Err(AppraisalError::precondition("NOT_A_RECIPIENT", subject, "not sent to the caller"));
            };
            let now = Utc::now();
            match (&outcome, part.state.as_str()) {
                (None, "SENT") => store::update_recipient(tx, id, recipient, "RECEIVED", None, now).await?,
                (None, _) => {
                    return Err(AppraisalError::precondition("ALREADY_RECEIVED", subject, "already received"));
                }
                (Some(_), "SENT") => {
                    return Err(AppraisalError::precondition("NOT_RECEIVED", subject, "receive the referral first"));
                }
                (Some(text), "RECEIVED") => {
                    store::update_recipient(tx, id, recipient, "HANDLED", Some((text, handled_by)), now).await?
                }
                (Some(_), _) => {
                    return Err(AppraisalError::precondition("ALREADY_HANDLED", subject, "already handled"));
                }
            }
            load(tx, &viewer, id, false).await
        })
    })
    .await
}

pub(super) async fn receive_referral(
    s: &Appraisal,
    r: Request<pb::ReceiveReferralRequest>,
) -> Result<pb::Referral, AppraisalError> {
    let (p, req) = caller(r)?;
    advance(s, p, "ReceiveReferral", &req.referral_id, &req.request_id, &req, None).await
}

pub(super) async fn record_referral_outcome(
    s: &Appraisal,
    r: Request<pb::RecordReferralOutcomeRequest>,
) -> Result<pb::Referral, AppraisalError> {
    let (p, req) = caller(r)?;
    let mut v = FieldViolations::new();
    let outcome = v.required_text("outcome", &req.outcome, 4000).to_owned();
    v.into_result()?;
    advance(s, p, "RecordReferralOutcome", &req.referral_id, &req.request_id, &req, Some(outcome)).await
}

fn summary(kind: &str, n: usize) -> String {
    let what = match kind {
        "REFERRAL_KIND_ABSENT" => "不到位",
        "REFERRAL_KIND_LATE" => "慢到位",
        _ => "到位不作为",
    };
    format!("{n} 次{what}")
}

pub(super) async fn list_suggested_referrals(
    s: &Appraisal,
    r: Request<pb::ListSuggestedReferralsRequest>,
) -> Result<pb::ListSuggestedReferralsResponse, AppraisalError> {
    let (p, req) = caller(r)?;
    let street = if policy::is_district(&p) {
        req.street_id.clone()
    } else if p.organization.kind == OrgKind::Street && (req.street_id.is_empty() || req.street_id == p.organization.id)
    {
        p.organization.id.clone()
    } else {
        return Err(policy::denied("read suggested referrals").into());
    };
    let kind = kind_name("kind", req.kind, false)?;
    if req.min_occurrences < 0 {
        return Err(AppraisalError::field("min_occurrences", "must not be negative"));
    }
    let min = if req.min_occurrences == 0 { 2 } else { req.min_occurrences as usize };
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
    let query =
        [req.period_id.as_str(), &format!("{start}{end}"), &street, &req.department_id, &kind, &min.to_string()];
    let page = RPCS.page::<usize>(req.page_size, &req.page_token, &query)?;
    let incidents = store::incidents(&mut conn, start, end, &street, &req.department_id, &kind).await?;
    let mut suggestions = Vec::new();
    for group in incidents
        .chunk_by(|a, b| (&a.kind, &a.department_id, &a.person_id) == (&b.kind, &b.department_id, &b.person_id))
    {
        if group.len() < min {
            continue;
        }
        let first = &group[0];
        let cases: BTreeSet<&str> = group.iter().map(|i| i.case_id.as_str()).collect();
        let referred = store::referred_cases(&mut conn, &first.kind, &first.department_id, &first.person_id).await?;
        if cases.iter().all(|c| referred.iter().any(|r| r == c)) {
            continue;
        }
        suggestions.push(pb::SuggestedReferral {
            kind: pb::ReferralKind::from_str_name(&first.kind).map_or(0, |k| k as i32),
            department_id: first.department_id.clone(),
            person_id: first.person_id.clone(),
            occurrences: group.len() as i32,
            case_ids: cases.iter().map(|c| (*c).to_owned()).collect(),
            call_ids: group.iter().map(|i| i.call_id.clone()).collect::<BTreeSet<_>>().into_iter().collect(),
            evidence: group
                .iter()
                .map(|i| pb::EvidenceRef {
                    case_id: i.case_id.clone(),
                    trail_sequence: i.trail_sequence,
                    trail_hash: i.trail_hash.clone(),
                    event_sequence: i.sequence,
                })
                .collect(),
            summary: summary(&first.kind, group.len()),
        });
    }
    // Most occurrences first; the stable sort keeps (kind, department, person) order.
    suggestions.sort_by_key(|s| std::cmp::Reverse(s.occurrences));
    let total = suggestions.len();
    let skip = page.after.map_or(0, |a| a + 1);
    let mut rows: Vec<(usize, pb::SuggestedReferral)> =
        suggestions.into_iter().enumerate().skip(skip).take(page.limit() as usize).collect();
    let next_page_token = page.finish(&mut rows, |(i, _)| *i);
    Ok(pb::ListSuggestedReferralsResponse {
        suggestions: rows.into_iter().map(|(_, s)| s).collect(),
        next_page_token,
        total_size: total as i32,
    })
}
