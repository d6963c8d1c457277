//! Decision consultations (决策建议): affected streets from places, opinion items, answers
//! with reasons reaching the street live, final decisions with their flags.

use minhu_proto::{common::v1 as common, consultation::v1 as pb};
use minhu_testkit::tokens;
use pb::{AdoptionResult as R, ConsultationEventType as Ev, watch_consultations_response::Record};

use crate::helpers::*;

#[tokio::test]
async fn the_streets_consulted_are_those_its_places_lie_in_and_those_named_by_hand() {
    let app = TestApp::spawn().await;
    let d = app
        .planning()
        .create_decision(pb::CreateDecisionRequest {
            decision: Some(pb::Decision {
                kind: pb::DecisionKind::MajorProject as i32,
                subject: "海运宿舍泵房后续用途".into(),
                description: "改作社区议事厅".into(),
                street_ids: vec![LIANGDAO.into(), ZHONGNANLU.into()],
                places: vec![place("泵房", PUMP_ROOM), place("便民点", SHUIGUOHU_CENTRE)],
                reply_working_days: 5,
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.street_ids, [LIANGDAO, ZHONGNANLU, SHUIGUOHU]);
    assert_eq!(d.affected_street_ids, [ZHONGNANLU, SHUIGUOHU]);
    assert_eq!(d.places.iter().map(|p| p.street_id.as_str()).collect::<Vec<_>>(), [ZHONGNANLU, SHUIGUOHU]);
    assert_eq!(d.pending_street_ids, d.street_ids);
    assert_eq!(d.state, pb::DecisionState::Soliciting as i32);
    assert!(d.reply_deadline.is_some());
}

#[tokio::test]
async fn adopted_partly_adopted_and_not_adopted_answers_reach_the_street_with_their_reasons() {
    let app = TestApp::spawn().await;
    let d = app.pump_room_decision(5).await;
    let mut watch = app.watch(&tokens::street_leader(ZHONGNANLU), app.head().await).await;

    let first = app.opinion(&d, ZHONGNANLU, "保留消防通道").await;
    let second = app.opinion(&d, ZHONGNANLU, "议事厅须对居民全天开放").await;
    let third = app.opinion(&d, SHUIGUOHU, "便民点选址改在小区东门").await;
    assert_eq!(app.decision(&d.id).await.state, pb::DecisionState::AwaitingAdoption as i32, "every street replied");

    app.answer(&first, R::Adopted, "").await;
    app.answer(&third, R::PartiallyAdopted, "东门场地不足，仅设临时点").await;
    let refused = app
        .planning()
        .record_adoption(pb::RecordAdoptionRequest {
            decision_opinion_id: second.id.clone(),
            result: R::NotAdopted as i32,
            reason: "  ".into(),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&refused), ["reason"]);
    assert_eq!(reason(&refused), "REASON_REQUIRED");
    let pending = app
        .district()
        .list_decision_opinions(pb::ListDecisionOpinionsRequest {
            decision_id: d.id.clone(),
            adoption_pending_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.opinions.iter().map(|o| &o.id).collect::<Vec<_>>(), [&second.id], "the refusal wrote nothing");

    let answered = app.answer(&second, R::NotAdopted, "夜间开放涉及安全管理，暂不采纳").await;
    assert_eq!(answered.adoption.as_ref().unwrap().reason, "夜间开放涉及安全管理，暂不采纳");

    // The street's portal sees each answer as it was given, reason included.
    let mut seen = std::collections::HashMap::new();
    while !(seen.contains_key(&first.id) && seen.contains_key(&second.id)) {
        let m = next_of(&mut watch, Ev::AdoptionRecorded).await;
        let Some(Record::DecisionOpinion(o)) = m.record else { panic!("an answer carries its opinion: {m:?}") };
        seen.insert(o.id, o.adoption.unwrap());
    }
    assert_eq!(seen[&first.id].result, R::Adopted as i32);
    assert_eq!(seen[&second.id].result, R::NotAdopted as i32);
    assert_eq!(seen[&second.id].reason, "夜间开放涉及安全管理，暂不采纳");
    let concluded = next_of(&mut watch, Ev::DecisionStateChanged).await;
    let Some(Record::Decision(done)) = concluded.record else { panic!() };
    assert_eq!(done.state, pb::DecisionState::Concluded as i32);

    let report =
        app.district().get_consultation_report(pb::GetConsultationReportRequest::default()).await.unwrap().into_inner();
    let planning = report.departments.iter().find(|f| f.organization_id == PLANNING).unwrap();
    assert_eq!((planning.consultations, planning.streets_consulted, planning.opinions), (1, 2, 3));
    assert_eq!((planning.adopted, planning.partially_adopted, planning.not_adopted), (1, 1, 1));
    assert!((planning.adoption_rate - 2.0 / 3.0).abs() < 1e-9);
    let zhongnanlu = report.streets.iter().find(|f| f.organization_id == ZHONGNANLU).unwrap();
    assert_eq!((zhongnanlu.opinions, zhongnanlu.adopted, zhongnanlu.not_adopted), (2, 1, 1));
}

#[tokio::test]
async fn a_watch_resumed_from_a_sequence_continues_exactly_after_it() {
    let app = TestApp::spawn().await;
    let d = app.pump_room_decision(5).await;
    app.opinion(&d, ZHONGNANLU, "一").await;
    let mut first = app.watch(&tokens::street_leader(ZHONGNANLU), 0).await;
    let created = next(&mut first).await;
    assert_eq!(created.event_type, Ev::DecisionCreated as i32);
    drop(first);
    let mut resumed = app.watch(&tokens::street_leader(ZHONGNANLU), created.sequence).await;
    let m = next(&mut resumed).await;
    assert_eq!((m.sequence, m.event_type), (created.sequence + 1, Ev::DecisionOpinionSubmitted as i32));
    let beyond = app
        .leader(ZHONGNANLU)
        .watch_consultations(pb::WatchConsultationsRequest { after_sequence: 1000, subject_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(beyond.code(), tonic::Code::OutOfRange);
}

#[tokio::test]
async fn a_final_decision_with_an_unanswered_item_and_an_unconsulted_street_is_flagged_for_the_district() {
    let app = TestApp::spawn().await;
    let d = app.pump_room_decision(5).await;
    let a = app.opinion(&d, ZHONGNANLU, "保留消防通道").await;
    let b = app.opinion(&d, SHUIGUOHU, "增设无障碍坡道").await;
    app.answer(&a, R::Adopted, "").await;
    let finalized = app
        .planning()
        .finalize_decision(pb::FinalizeDecisionRequest {
            decision_id: d.id.clone(),
            summary: "泵房改作社区议事厅".into(),
            places: vec![place("粮道街停车点", LIANGDAO_CENTRE)],
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(finalized.state, pb::DecisionState::Finalized as i32);
    let flags: Vec<_> = finalized.flags.iter().map(|f| (f.issue, f.subject.clone())).collect();
    assert_eq!(
        flags,
        [
            (pb::ComplianceIssue::ItemsUnanswered as i32, format!("decisionOpinions/{}", b.id)),
            (pb::ComplianceIssue::StreetNotConsulted as i32, format!("streets/{LIANGDAO}")),
        ]
    );
    let again = app
        .planning()
        .finalize_decision(pb::FinalizeDecisionRequest {
            decision_id: d.id.clone(),
            summary: "再次".into(),
            places: vec![],
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(refusals(&again)[0].0, "DECISION_FINALIZED");
    let report =
        app.district().get_consultation_report(pb::GetConsultationReportRequest::default()).await.unwrap().into_inner();
    assert_eq!(report.flagged_decisions.iter().map(|d| &d.id).collect::<Vec<_>>(), [&d.id]);
    let planning = report.departments.iter().find(|f| f.organization_id == PLANNING).unwrap();
    assert_eq!((planning.decisions_finalized, planning.decisions_flagged, planning.unanswered), (1, 1, 1));
}

#[tokio::test]
async fn finalising_before_the_reply_deadline_with_a_street_silent_is_flagged() {
    let app = TestApp::spawn().await;
    let d = app.pump_room_decision(5).await;
    let a = app.opinion(&d, ZHONGNANLU, "同意").await;
    app.answer(&a, R::Adopted, "").await;
    let finalized = app
        .planning()
        .finalize_decision(pb::FinalizeDecisionRequest {
            decision_id: d.id.clone(),
            summary: "泵房改作议事厅".into(),
            places: vec![],
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    let flags: Vec<_> = finalized.flags.iter().map(|f| (f.issue, f.subject.clone())).collect();
    assert_eq!(flags, [(pb::ComplianceIssue::StreetsSilent as i32, format!("streets/{SHUIGUOHU}"))]);
}

#[tokio::test]
async fn a_retry_with_the_same_request_id_returns_the_first_result_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let request = pb::CreateDecisionRequest {
        decision: Some(pb::Decision {
            kind: pb::DecisionKind::MajorDecision as i32,
            subject: "社区养老设施布点".into(),
            description: "d".into(),
            street_ids: vec![ZHONGNANLU.into()],
            reply_working_days: 3,
            ..Default::default()
        }),
        request_id: request_id(),
    };
    let first = app.planning().create_decision(request.clone()).await.unwrap().into_inner();
    let retry = app.planning().create_decision(request).await.unwrap().into_inner();
    assert_eq!(first, retry);
    let d = app.decision(&first.id).await;
    let opinion = pb::SubmitDecisionOpinionRequest {
        decision_id: d.id.clone(),
        stance: common::OpinionStance::Agree as i32,
        text: "同意".into(),
        request_id: request_id(),
    };
    let o1 = app.leader(ZHONGNANLU).submit_decision_opinion(opinion.clone()).await.unwrap().into_inner();
    let o2 = app.leader(ZHONGNANLU).submit_decision_opinion(opinion).await.unwrap().into_inner();
    assert_eq!(o1, o2);
    let answer = pb::RecordAdoptionRequest {
        decision_opinion_id: o1.id.clone(),
        result: R::NotAdopted as i32,
        reason: "预算不足".into(),
        request_id: request_id(),
    };
    let a1 = app.planning().record_adoption(answer.clone()).await.unwrap().into_inner();
    let a2 = app.planning().record_adoption(answer).await.unwrap().into_inner();
    assert_eq!(a1, a2, "a retry is not ALREADY_RECORDED");
    let list = app.district().list_decisions(pb::ListDecisionsRequest::default()).await.unwrap().into_inner();
    assert_eq!(list.total_size, 1);
    let items = app
        .district()
        .list_decision_opinions(pb::ListDecisionOpinionsRequest { decision_id: d.id, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(items.total_size, 1);
}

#[tokio::test]
async fn bad_input_names_every_bad_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let status = app
        .planning()
        .create_decision(pb::CreateDecisionRequest {
            decision: Some(pb::Decision {
                kind: 0,
                subject: " ".into(),
                description: "d".into(),
                street_ids: vec![ZHONGNANLU.into(), ZHONGNANLU.into()],
                places: vec![place("", (200.0, 114.0))],
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "decision.kind",
            "decision.subject",
            "decision.street_ids[1]",
            "decision.places[0].name",
            "decision.places[0].location.latitude",
            "decision.reply_deadline",
        ]
    );
    let unknown = app
        .planning()
        .create_decision(pb::CreateDecisionRequest {
            decision: Some(pb::Decision {
                kind: 1,
                subject: "s".into(),
                description: "d".into(),
                street_ids: vec!["atlantis".into()],
                places: vec![place("海上", (10.0, 10.0))],
                reply_working_days: 3,
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&unknown), ["decision.street_ids[0]"]);
    let list = app.district().list_decisions(pb::ListDecisionsRequest::default()).await.unwrap().into_inner();
    assert_eq!(list.total_size, 0);
    assert_eq!(app.head().await, 0, "nothing journalled");
}

#[tokio::test]
async fn an_idle_watch_sends_heartbeats_at_the_feeds_position() {
    let app = TestApp::spawn_with(|c| c.feed.heartbeat = std::time::Duration::from_millis(100)).await;
    app.pump_room_decision(5).await;
    let mut watch = app.watch(&tokens::street_leader(ZHONGNANLU), 0).await;
    let created = next(&mut watch).await;
    assert!(!created.heartbeat);
    let beat = next(&mut watch).await;
    assert!(beat.heartbeat && beat.record.is_none(), "{beat:?}");
    assert_eq!((beat.sequence, beat.event_type), (created.sequence, 0));
}

#[tokio::test]
async fn lists_page_newest_first_and_a_token_belongs_to_its_filters() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.pump_room_decision(5).await.id);
        app.clock.advance(chrono::TimeDelta::seconds(1));
    }
    let first = app
        .district()
        .list_decisions(pb::ListDecisionsRequest { page_size: 2, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.total_size, 3);
    assert_eq!(first.decisions.iter().map(|d| &d.id).collect::<Vec<_>>(), [&ids[2], &ids[1]]);
    let second = app
        .district()
        .list_decisions(pb::ListDecisionsRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.decisions.iter().map(|d| &d.id).collect::<Vec<_>>(), [&ids[0]]);
    assert!(second.next_page_token.is_empty());
    let other = app
        .district()
        .list_decisions(pb::ListDecisionsRequest {
            page_size: 2,
            page_token: first.next_page_token,
            street_id: ZHONGNANLU.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&other), ["page_token"]);

    let d = app.decision(&ids[0]).await;
    // Items are taken until every street has replied: 水果湖街 gives two first.
    app.opinion(&d, SHUIGUOHU, "一").await;
    app.opinion(&d, SHUIGUOHU, "三").await;
    app.opinion(&d, ZHONGNANLU, "二").await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .district()
            .list_decision_opinions(pb::ListDecisionOpinionsRequest {
                decision_id: d.id.clone(),
                page_size: 1,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.opinions.into_iter().map(|o| (o.street_id, o.text)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let by_street: Vec<(&str, &str)> = seen.iter().map(|(s, t)| (s.as_str(), t.as_str())).collect();
    assert_eq!(by_street, [(SHUIGUOHU, "一"), (SHUIGUOHU, "三"), (ZHONGNANLU, "二")]);
}

#[tokio::test]
async fn a_retry_during_a_roster_outage_still_gets_its_first_answer_and_a_new_request_is_unavailable() {
    let mut app = TestApp::spawn().await;
    let request = pb::CreateDecisionRequest {
        decision: Some(pb::Decision {
            kind: pb::DecisionKind::MajorProject as i32,
            subject: "泵房后续用途".into(),
            description: "d".into(),
            places: vec![place("泵房", PUMP_ROOM)],
            reply_working_days: 5,
            ..Default::default()
        }),
        request_id: request_id(),
    };
    let first = app.planning().create_decision(request.clone()).await.unwrap().into_inner();
    app.stop_roster().await;
    let retry = app.planning().create_decision(request.clone()).await.unwrap().into_inner();
    assert_eq!(first, retry, "replayed before any roster call");
    let fresh = app
        .planning()
        .create_decision(pb::CreateDecisionRequest { request_id: request_id(), ..request })
        .await
        .unwrap_err();
    assert_eq!(fresh.code(), tonic::Code::Unavailable, "{fresh:?}");
    let list = app.district().list_decisions(pb::ListDecisionsRequest::default()).await.unwrap().into_inner();
    assert_eq!(list.total_size, 1);
}
