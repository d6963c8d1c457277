//! The seed's pump-room case (中南路街海运宿舍水泵房), walked through every step.

use chrono::TimeDelta;
use minhu_proto::dispatch::v1 as pb;
use minhu_testkit::tokens;
use tokio_stream::StreamExt as _;

use crate::helpers::*;

const DEPARTMENTS: [&str; 4] = ["gongan", "shichang", "chengguan", "guihua"];

#[tokio::test]
async fn the_pump_room_case_runs_from_intake_to_close_with_a_verified_trail() {
    let app = TestApp::spawn().await;
    let street = app.street();

    // Intake: the roster places it in 中南路街 / 海运社区; the reporter is sealed and masked.
    let case = street.clone().create_case(intake(&request_id())).await.unwrap().into_inner();
    assert_eq!(case.street_id, STREET);
    assert_eq!(case.community_id, "zhongnanlu-haiyun");
    assert_eq!(case.state, pb::CaseState::Received as i32);
    assert_eq!(case.reporter.as_ref().unwrap().name, "张三");
    let district = app.client(&tokens::district_operator());
    let seen = district.clone().get_case(pb::GetCaseRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    let masked = seen.reporter.unwrap();
    assert_eq!((masked.name.as_str(), masked.phone.as_str(), masked.masked), ("张*", "138****1234", true));
    assert_eq!(masked.id_number, "420106********1234");

    // Triage and the call to four departments.
    let triaged = app.triaged_case_of(&case.id).await;
    assert_eq!(triaged.state, pb::CaseState::Triaged as i32);
    let now = app.now();
    let started = street
        .clone()
        .start_call(pb::StartCallRequest {
            case_id: case.id.clone(),
            calls: DEPARTMENTS.iter().map(|d| call_to(d, now)).collect(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.case.unwrap().state, pb::CaseState::Calling as i32);
    assert_eq!(started.calls.len(), 4);
    assert_eq!(started.calls[0].station_id, "zhongnanlu-gongan");

    // Each department signs, names its officer, who checks in on site before report time.
    for call in &started.calls {
        let department = app.department(&call.department_id);
        let signed = department
            .clone()
            .sign_call(pb::SignCallRequest { call_id: call.id.clone(), request_id: request_id() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(signed.state, pb::CallState::Signed as i32);
        assert!(!signed.signed_late);
        let person = officer(&call.department_id);
        let designated = department
            .clone()
            .designate_responders(pb::DesignateRespondersRequest {
                call_id: call.id.clone(),
                person_ids: vec![person.clone()],
                request_id: request_id(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(designated.state, pb::CallState::Designated as i32);
        let checked = app
            .client(&tokens::field_officer(&person, &call.department_id))
            .check_in(pb::CheckInRequest {
                call_id: call.id.clone(),
                location: point((PUMP_ROOM.0 + 0.0003, PUMP_ROOM.1)),
                device_time: ts(app.now()),
                request_id: request_id(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(checked.designations[0].check_in_status, pb::CheckInStatus::OnTime as i32);
    }
    // The street shares the reporter's contact with the police: they now see name and phone.
    street
        .clone()
        .share_reporter_contact(pb::ShareReporterContactRequest {
            call_id: started.calls[0].id.clone(),
            request_id: request_id(),
        })
        .await
        .unwrap();
    let police_view =
        app.department("gongan").get_case(pb::GetCaseRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    assert_eq!(police_view.reporter.unwrap().phone, "13812341234");

    // The check-in windows close (the deadline hook, at a chosen time): consultation.
    app.clock.advance(TimeDelta::hours(3));
    for call in &started.calls {
        assert!(app.close_check_in(&call.id).await);
        assert!(!app.close_check_in(&call.id).await, "a second run records nothing");
    }
    assert_eq!(app.case(&case.id).await.state, pb::CaseState::InConsultation as i32);

    // Consultation: a task per department, each with its window.
    let now = app.now();
    let consulted = street
        .clone()
        .record_consultation(pb::RecordConsultationRequest {
            case_id: case.id.clone(),
            consultation: Some(pb::Consultation {
                meeting_time: ts(now),
                attendee_person_ids: DEPARTMENTS.iter().map(|d| officer(d)).collect(),
                analysis: "水泵房被占用，涉及违建、无照经营、产权".into(),
                plan: "城管拆除违建，派出所训诫，规划确权，市场查处无照经营".into(),
                ..Default::default()
            }),
            tasks: started
                .calls
                .iter()
                .map(|c| pb::Task {
                    call_id: c.id.clone(),
                    description: format!("{} 的任务", c.department_id),
                    window: Some(minhu_proto::common::v1::TimeRange {
                        start_time: ts(now),
                        end_time: ts(now + TimeDelta::days(3)),
                    }),
                    ..Default::default()
                })
                .collect(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(consulted.case.unwrap().state, pb::CaseState::Handling as i32);
    assert_eq!(consulted.tasks.len(), 4);

    // Feedback from each department, accepted by the street.
    let mut feedback_ids = Vec::new();
    for task in &consulted.tasks {
        let feedback = app
            .department(&task.department_id)
            .submit_feedback(pb::SubmitFeedbackRequest {
                task_id: task.id.clone(),
                text: "已处置".into(),
                handling_opinion: "按协商意见落实到位".into(),
                request_id: request_id(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(feedback.on_time);
        let reviewed = street
            .clone()
            .review_feedback(pb::ReviewFeedbackRequest {
                feedback_id: feedback.id.clone(),
                decision: pb::ReviewDecision::Accept as i32,
                request_id: request_id(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reviewed.state, pb::FeedbackState::Accepted as i32);
        feedback_ids.push((task.department_id.clone(), feedback.id));
    }
    assert_eq!(app.case(&case.id).await.state, pb::CaseState::UnderReview as i32);

    // The report, the callback, the ratings.
    street
        .clone()
        .submit_case_report(pb::SubmitCaseReportRequest {
            report: Some(pb::CaseReport {
                case_id: case.id.clone(),
                summary: "水泵房恢复原状".into(),
                department_results: feedback_ids
                    .iter()
                    .map(|(d, f)| pb::DepartmentResult {
                        department_id: d.clone(),
                        summary: "完成".into(),
                        feedback_ids: vec![f.clone()],
                    })
                    .collect(),
                ..Default::default()
            }),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(app.case(&case.id).await.state, pb::CaseState::Reported as i32);
    street
        .clone()
        .record_callback(pb::RecordCallbackRequest {
            case_id: case.id.clone(),
            callback: Some(pb::Callback {
                method: pb::CallbackMethod::Phone as i32,
                reached: true,
                reporter_satisfaction: pb::Satisfaction::Satisfied as i32,
                callback_time: ts(app.now()),
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap();
    for d in DEPARTMENTS {
        let (satisfaction, comment) = if d == "guihua" {
            (pb::Satisfaction::Dissatisfied, "产权认定拖延")
        } else {
            (pb::Satisfaction::Satisfied, "")
        };
        street
            .clone()
            .rate_department(pb::RateDepartmentRequest {
                case_id: case.id.clone(),
                department_id: d.into(),
                satisfaction: satisfaction as i32,
                comment: comment.into(),
                request_id: request_id(),
            })
            .await
            .unwrap();
    }
    assert_eq!(app.case(&case.id).await.state, pb::CaseState::Rating as i32);

    // Rectification of planning, its feedback accepted, the re-rating supersedes.
    let rect = street
        .clone()
        .require_rectification(pb::RequireRectificationRequest {
            case_id: case.id.clone(),
            department_id: "guihua".into(),
            requirement: "一周内出具产权认定意见".into(),
            due_time: ts(app.now() + TimeDelta::days(7)),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(app.case(&case.id).await.state, pb::CaseState::Rectifying as i32);
    let feedback = app
        .department("guihua")
        .submit_feedback(pb::SubmitFeedbackRequest {
            task_id: rect.task_id.clone(),
            text: "已出具产权认定意见".into(),
            handling_opinion: "产权归小区业主共有".into(),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(feedback.is_rectification);
    street
        .clone()
        .review_feedback(pb::ReviewFeedbackRequest {
            feedback_id: feedback.id,
            decision: pb::ReviewDecision::Accept as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    let rerated = street
        .clone()
        .rerate_department(pb::RerateDepartmentRequest {
            case_id: case.id.clone(),
            department_id: "guihua".into(),
            satisfaction: pb::Satisfaction::BasicallySatisfied as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!rerated.supersedes_rating_id.is_empty());
    assert_eq!(rerated.rectification_id, rect.id);
    let history = street
        .clone()
        .list_ratings(pb::ListRatingsRequest {
            case_id: case.id.clone(),
            include_superseded: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.ratings.len(), 5);
    assert_eq!(app.case(&case.id).await.state, pb::CaseState::Rating as i32);

    // Close.
    let closed = street
        .clone()
        .close_case(pb::CloseCaseRequest {
            case_id: case.id.clone(), summary: "办结".into(), request_id: request_id()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.state, pb::CaseState::Closed as i32);
    assert_eq!(closed.called_department_ids.len(), 4);

    // The trail verifies; the feed carries one event per trail entry, in order, no gaps.
    let verified =
        street.clone().verify_trail(pb::VerifyTrailRequest { case_id: case.id.clone() }).await.unwrap().into_inner();
    assert!(verified.verified, "{verified:?}");
    let entries = app.trail_len(&case.id).await;
    assert_eq!(verified.entries_checked as usize, entries);
    let mut feed = app
        .client(&tokens::service("appraisal"))
        .stream_events(pb::StreamEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while events.len() < entries {
        let message = feed.next().await.unwrap().unwrap();
        if let Some(event) = message.event {
            events.push(event);
        }
    }
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.sequence, i as i64 + 1);
        assert_eq!(e.trail_sequence, i as i64 + 1);
    }
    assert_eq!(events.last().unwrap().event_type, pb::EventType::CaseClosed as i32);
    assert!(events.iter().any(|e| e.event_type == pb::EventType::RatingReplaced as i32));
    let report = street
        .clone()
        .get_case_report(pb::GetCaseReportRequest { case_id: case.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.department_results.len(), 4);
}

impl TestApp {
    pub async fn triaged_case_of(&self, case_id: &str) -> pb::Case {
        self.street()
            .triage_case(pb::TriageCaseRequest {
                case_id: case_id.into(),
                decision: pb::TriageDecision::StartCall as i32,
                request_id: request_id(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }
}
