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
    // Another street may not refer this street's call.
    let e = w
        .appraisal(&tokens::street_leader(OTHER_STREET))
        .create_referral(referral(vec![quoted.clone()], apb::ReferralKind::Absent))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
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
