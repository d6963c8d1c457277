//! Referrals (线索移送): evidence checked against the consumed trail, recipients' views,
//! the status flow, and suggestions from repeated absences.

use minhu_grpc::{OrgKind, Organization, Principal, Role};
use minhu_proto::{appraisal::v1 as apb, common::v1 as common, dispatch::v1 as pb};
use minhu_testkit::tokens;
use tonic::Code;

use crate::helpers::*;

fn personnel() -> Principal {
    Principal::new(
        "zuzhibu-officer",
        [Role::PersonnelOfficer],
        Organization::new(OrgKind::OrganizationPersonnel, "zuzhibu"),
    )
}

fn recipient(kind: common::OrganizationKind) -> apb::ReferralRecipient {
    apb::ReferralRecipient { recipient: kind as i32, ..Default::default() }
}

#[tokio::test]
async fn referrals_need_matching_evidence_reach_only_their_recipients_and_move_through_their_states() {
    let w = World::spawn(true).await;
    let period = w.may_period().await;
    let cases = scripted_month(&w).await;
    w.caught_up().await;

    // Suggestions: guihua's officer was absent twice (cases C and D); the evidence is ready.
    let suggestions = w
        .appraisal(&tokens::street_leader(STREET))
        .list_suggested_referrals(apb::ListSuggestedReferralsRequest {
            period_id: period.id.clone(),
            kind: apb::ReferralKind::Absent as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .suggestions;
    assert_eq!(suggestions.len(), 1, "{suggestions:?}");
    let absent = &suggestions[0];
    assert_eq!((absent.department_id.as_str(), absent.person_id.as_str()), ("guihua", officer("guihua").as_str()));
    assert_eq!((absent.occurrences, absent.summary.as_str()), (2, "2 次不到位"));
    assert_eq!(absent.case_ids.len(), 2);

    // The trail entry of case C's absence, quoted from dispatch's own trail.
    let case_c = &cases[2];
    let evidence = absent.evidence.iter().find(|e| e.case_id == case_c.case_id).unwrap().clone();
    let trail = w
        .street()
        .list_trail_entries(pb::ListTrailEntriesRequest {
            case_id: case_c.case_id.clone(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let entry = trail.iter().find(|t| t.sequence == evidence.trail_sequence).unwrap();
    assert_eq!(entry.hash, evidence.trail_hash);
    assert_eq!(entry.event_type, pb::EventType::CheckInAbsent as i32);

    let referral = |evidence: Vec<apb::EvidenceRef>, kind: apb::ReferralKind| apb::CreateReferralRequest {
        referral: Some(apb::Referral {
            case_id: case_c.case_id.clone(),
            call_id: case_c.calls["guihua"].clone(),
            department_id: "guihua".into(),
            person_ids: vec![officer("guihua")],
            kind: kind as i32,
            facts: "规划分局人员两次不到位".into(),
            evidence,
            recipients: vec![
                recipient(common::OrganizationKind::DisciplineInspection),
                recipient(common::OrganizationKind::OrganizationPersonnel),
            ],
            ..Default::default()
        }),
        request_id: request_id(),
    };
    let leader = w.appraisal(&tokens::street_leader(STREET));
    let quoted = apb::EvidenceRef {
        case_id: evidence.case_id.clone(),
        trail_sequence: evidence.trail_sequence,
        trail_hash: evidence.trail_hash.clone(),
        event_sequence: 0,
    };
    // Wrong evidence: a forged hash, an unknown entry, an entry of another kind.
    let mut forged = quoted.clone();
    forged.trail_hash = "0".repeat(64);
    let e = leader.clone().create_referral(referral(vec![forged], apb::ReferralKind::Absent)).await.unwrap_err();
    assert_eq!(reasons(&e), ["EVIDENCE_MISMATCH"]);
    let mut unknown = quoted.clone();
    unknown.trail_sequence = 9999;
    let e = leader.clone().create_referral(referral(vec![unknown], apb::ReferralKind::Absent)).await.unwrap_err();
    assert_eq!(reasons(&e), ["EVIDENCE_UNKNOWN"]);
    let e = leader.clone().create_referral(referral(vec![quoted.clone()], apb::ReferralKind::Late)).await.unwrap_err();
    assert_eq!(reasons(&e), ["EVIDENCE_NOT_MATCHING_KIND"]);
    // Another street may not refer this street's call: to it the call does not exist.
    let e = w
        .appraisal(&tokens::street_leader(OTHER_STREET))
        .create_referral(referral(vec![quoted.clone()], apb::ReferralKind::Absent))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM referrals").fetch_one(&w.pool).await.unwrap();
    assert_eq!(n, 0);

    let created = leader
        .clone()
        .create_referral(referral(vec![quoted.clone()], apb::ReferralKind::Absent))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.state, apb::ReferralState::Sent as i32);
    assert_eq!(created.street_id, STREET);
    assert_eq!(created.evidence[0].event_sequence, evidence.event_sequence);

    // A second referral, to organisation/personnel only (a late check-in in case B).
    let case_b = &cases[1];
    let late = w
        .admin()
        .list_suggested_referrals(apb::ListSuggestedReferralsRequest {
            period_id: period.id.clone(),
            kind: apb::ReferralKind::Late as i32,
            min_occurrences: 1,
            department_id: "gongan".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .suggestions;
    let late_evidence =
        late.iter().flat_map(|s| s.evidence.iter()).find(|e| e.case_id == case_b.case_id).unwrap().clone();
    let mut request = referral(vec![late_evidence], apb::ReferralKind::Late);
    if let Some(r) = request.referral.as_mut() {
        r.case_id = case_b.case_id.clone();
        r.call_id = case_b.calls["gongan"].clone();
        r.department_id = "gongan".into();
        r.person_ids = vec![officer("gongan")];
        r.recipients = vec![recipient(common::OrganizationKind::OrganizationPersonnel)];
    }
    leader.clone().create_referral(request).await.unwrap();

    // Discipline inspection sees only what was sent to it.
    let inspector = w.appraisal(&tokens::discipline_inspector());
    let seen = inspector.clone().list_referrals(apb::ListReferralsRequest::default()).await.unwrap().into_inner();
    assert_eq!(seen.referrals.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [created.id.as_str()]);
    let all = w.admin().list_referrals(apb::ListReferralsRequest::default()).await.unwrap().into_inner();
    assert_eq!(all.total_size, 2);
    let others = all.referrals.iter().find(|r| r.id != created.id).unwrap();
    let e =
        inspector.clone().get_referral(apb::GetReferralRequest { referral_id: others.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // The status flow of the discipline inspection part.
    let id = created.id.clone();
    let e = inspector
        .clone()
        .record_referral_outcome(apb::RecordReferralOutcomeRequest {
            referral_id: id.clone(),
            outcome: "诫勉谈话".into(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["NOT_RECEIVED"]);
    let received = inspector
        .clone()
        .receive_referral(apb::ReceiveReferralRequest { referral_id: id.clone(), request_id: request_id() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(received.state, apb::ReferralState::Received as i32);
    let e = inspector
        .clone()
        .receive_referral(apb::ReceiveReferralRequest { referral_id: id.clone(), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["ALREADY_RECEIVED"]);
    let e = inspector
        .clone()
        .record_referral_outcome(apb::RecordReferralOutcomeRequest {
            referral_id: id.clone(),
            outcome: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["outcome"]);
    let handled = inspector
        .clone()
        .record_referral_outcome(apb::RecordReferralOutcomeRequest {
            referral_id: id.clone(),
            outcome: "诫勉谈话".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    // Organisation/personnel has not acted yet: overall still RECEIVED.
    assert_eq!(handled.state, apb::ReferralState::Received as i32);
    let org = w.appraisal(&personnel());
    org.clone()
        .receive_referral(apb::ReceiveReferralRequest { referral_id: id.clone(), request_id: request_id() })
        .await
        .unwrap();
    let done = org
        .clone()
        .record_referral_outcome(apb::RecordReferralOutcomeRequest {
            referral_id: id.clone(),
            outcome: "年度考核扣分".into(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state, apb::ReferralState::Handled as i32);
    let street_view =
        leader.clone().get_referral(apb::GetReferralRequest { referral_id: id.clone() }).await.unwrap().into_inner();
    let outcomes: Vec<&str> = street_view.recipients.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["诫勉谈话", "年度考核扣分"]);
    // A street leader is no recipient.
    let e = leader
        .clone()
        .receive_referral(apb::ReceiveReferralRequest { referral_id: id.clone(), request_id: request_id() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // The referred pattern (case C only) still shows, since case D is not referred yet.
    let again = leader
        .clone()
        .list_suggested_referrals(apb::ListSuggestedReferralsRequest {
            period_id: period.id.clone(),
            kind: apb::ReferralKind::Absent as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.total_size, 1);
}

/// The guihua absence of case C as the street would cite it, and the request referring it.
struct Fixture {
    cases: Vec<CaseRun>,
    absent_c: apb::EvidenceRef,
    absent_d: apb::EvidenceRef,
    gongan_late_c: apb::EvidenceRef,
}

async fn fixture(w: &World) -> Fixture {
    let period = w.may_period().await;
    let cases = scripted_month(w).await;
    w.caught_up().await;
    let suggested = |kind: apb::ReferralKind, department: &str| {
        let request = apb::ListSuggestedReferralsRequest {
            period_id: period.id.clone(),
            kind: kind as i32,
            min_occurrences: 1,
            department_id: department.into(),
            ..Default::default()
        };
        async move { w.admin().list_suggested_referrals(request).await.unwrap().into_inner().suggestions }
    };
    let absent = suggested(apb::ReferralKind::Absent, "guihua").await;
    let late = suggested(apb::ReferralKind::Late, "gongan").await;
    let find = |s: &[apb::SuggestedReferral], case: &CaseRun| {
        let mut e = s.iter().flat_map(|s| s.evidence.iter()).find(|e| e.case_id == case.case_id).unwrap().clone();
        e.event_sequence = 0;
        e
    };
    Fixture {
        absent_c: find(&absent, &cases[2]),
        absent_d: find(&absent, &cases[3]),
        gongan_late_c: find(&late, &cases[2]),
        cases,
    }
}

fn refer(
    case: &CaseRun,
    department: &str,
    kind: apb::ReferralKind,
    evidence: Vec<apb::EvidenceRef>,
) -> apb::CreateReferralRequest {
    apb::CreateReferralRequest {
        referral: Some(apb::Referral {
            case_id: case.case_id.clone(),
            call_id: case.calls[department].clone(),
            department_id: department.into(),
            person_ids: vec![officer(department)],
            kind: kind as i32,
            facts: "规划分局人员不到位".into(),
            evidence,
            recipients: vec![recipient(common::OrganizationKind::DisciplineInspection)],
            ..Default::default()
        }),
        request_id: request_id(),
    }
}

#[tokio::test]
async fn referral_evidence_must_be_about_the_referred_call_department_and_people() {
    let w = World::spawn(true).await;
    let f = fixture(&w).await;
    let case_c = &f.cases[2];
    let leader = w.appraisal(&tokens::street_leader(STREET));

    // guihua's absence in case D cited against case C's guihua call.
    let e = leader
        .clone()
        .create_referral(refer(case_c, "guihua", apb::ReferralKind::Absent, vec![f.absent_d.clone()]))
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["EVIDENCE_NOT_ABOUT_REFERRAL"]);
    // gongan's late signing in case C cited against guihua's call in the same case.
    let e = leader
        .clone()
        .create_referral(refer(case_c, "guihua", apb::ReferralKind::Late, vec![f.gongan_late_c.clone()]))
        .await
        .unwrap_err();
    assert_eq!(reasons(&e), ["EVIDENCE_NOT_ABOUT_REFERRAL"]);
    // The right entry, but naming a person it is not about.
    let mut other_person = refer(case_c, "guihua", apb::ReferralKind::Absent, vec![f.absent_c.clone()]);
    other_person.referral.as_mut().unwrap().person_ids = vec![officer("guihua"), officer("gongan")];
    let e = leader.clone().create_referral(other_person).await.unwrap_err();
    assert_eq!(reasons(&e), ["PERSON_NOT_IN_EVIDENCE"]);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM referrals").fetch_one(&w.pool).await.unwrap();
    assert_eq!(n, 0, "a refused referral writes nothing");

    let created = leader
        .clone()
        .create_referral(refer(case_c, "guihua", apb::ReferralKind::Absent, vec![f.absent_c.clone()]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.person_ids, [officer("guihua")]);
}

#[tokio::test]
async fn only_a_leader_of_the_calling_street_refers_and_a_foreign_call_answers_like_a_missing_one() {
    let w = World::spawn(true).await;
    let f = fixture(&w).await;
    let case_c = &f.cases[2];
    let request = || refer(case_c, "guihua", apb::ReferralKind::Absent, vec![f.absent_c.clone()]);

    // The contract says leaders: the street's own dispatcher is refused.
    let e = w.appraisal(&tokens::street_dispatcher(STREET)).create_referral(request()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // Another street's leader: the call exists, but answers exactly as a missing one.
    let other = w.appraisal(&tokens::street_leader(OTHER_STREET));
    let foreign = other.clone().create_referral(request()).await.unwrap_err();
    let mut missing_request = request();
    missing_request.referral.as_mut().unwrap().call_id = uuid::Uuid::now_v7().to_string();
    let missing_id = missing_request.referral.as_ref().unwrap().call_id.clone();
    let missing = other.clone().create_referral(missing_request).await.unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound, "{foreign:?}");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let call_id = &case_c.calls["guihua"];
    assert_eq!(foreign.message().replace(call_id.as_str(), "<id>"), missing.message().replace(&missing_id, "<id>"));
    assert_eq!(foreign.details().len(), missing.details().len());
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM referrals").fetch_one(&w.pool).await.unwrap();
    assert_eq!(n, 0);
}
