//! The pump-room appeal of the seed article, across both services: dispatch asks the roster
//! where the place is, which station serves the street and who may be sent, and the
//! district watches each step arrive.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use minhu_e2e::{STREET, Suite};
use minhu_proto::{common::v1 as common, dispatch::v1 as pb, roster::v1 as roster};
use minhu_roster::seed;
use minhu_testkit::tokens;
use tokio_stream::StreamExt as _;
use tonic::Streaming;

/// By the pump room of 海运宿舍, in 海运社区.
const PUMP_ROOM: (f64, f64) = (30.5335, 114.3358);
const POLICE: &str = "gongan";
/// How long a live message may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

fn point((latitude, longitude): (f64, f64)) -> Option<common::GeoPoint> {
    Some(common::GeoPoint { latitude, longitude })
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn ts(t: chrono::DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

fn place() -> Option<pb::Place> {
    Some(pb::Place { address: "中南路街海运宿舍3栋水泵房".into(), location: point(PUMP_ROOM) })
}

async fn next(stream: &mut Streaming<pb::WatchCaseResponse>) -> pb::WatchCaseResponse {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("no watch message in time")
        .expect("the watch ended")
        .expect("the watch failed")
}

#[tokio::test]
async fn an_appeal_at_the_pump_room_is_placed_staffed_and_checked_in_through_the_roster_while_the_district_watches() {
    let suite = Suite::start().await;
    let roster_reader = suite.roster(&tokens::district_admin());

    // 诉求受理: no street given, dispatch asks the roster where the place is.
    let case = suite
        .street()
        .create_case(pb::CreateCaseRequest {
            case: Some(pb::Case {
                channel: pb::Channel::GridWorker as i32,
                category: "城市管理/违法建设".into(),
                title: "海运社区水泵房被违规占用".into(),
                description: "水泵房被改成商铺，墙体被打通".into(),
                place: place(),
                urgency: pb::Urgency::Normal as i32,
                reporter: Some(pb::Reporter {
                    name: "张三".into(), phone: "13812341234".into(), ..Default::default()
                }),
                ..Default::default()
            }),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .expect("intake")
        .into_inner();
    let located = roster_reader
        .clone()
        .resolve_location(roster::ResolveLocationRequest { location: point(PUMP_ROOM) })
        .await
        .expect("resolving the pump room")
        .into_inner();
    assert_eq!(
        (case.street_id.as_str(), case.community_id.as_str(), case.grid_id.as_str()),
        (located.street_id.as_str(), located.community_id.as_str(), located.grid_id.as_str()),
        "the case is placed where the roster says the pump room is"
    );
    assert_eq!((case.street_id.as_str(), case.community_id.as_str()), (STREET, seed::HAIYUN));

    let mut watch = suite
        .district()
        .watch_case(pb::WatchCaseRequest { case_id: case.id.clone(), ..Default::default() })
        .await
        .expect("watching the case")
        .into_inner();
    assert!(next(&mut watch).await.event.is_none(), "the first message is the snapshot");

    // 研判 and 呼叫: the call names the station the roster finds for the street.
    suite
        .street()
        .triage_case(pb::TriageCaseRequest {
            case_id: case.id.clone(),
            decision: pb::TriageDecision::StartCall as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .expect("triage");
    let now = Utc::now();
    let started = suite
        .street()
        .start_call(pb::StartCallRequest {
            case_id: case.id.clone(),
            calls: vec![pb::Call {
                department_id: POLICE.into(),
                matters: "核查占用水泵房的经营人员".into(),
                expected_goal: "恢复水泵房原状".into(),
                staff_requirement: Some(pb::StaffRequirement {
                    count: 1,
                    qualification: common::Qualification::PoliceOfficer as i32,
                    note: String::new(),
                }),
                report_time: ts(now + TimeDelta::hours(2)),
                report_place: place(),
                ..Default::default()
            }],
            request_id: request_id(),
        })
        .await
        .expect("starting the call")
        .into_inner();
    let call = &started.calls[0];
    let station = roster_reader
        .clone()
        .find_station(roster::FindStationRequest { department_id: POLICE.into(), street_id: STREET.into() })
        .await
        .expect("finding the police station")
        .into_inner();
    assert_eq!(call.station_id, station.id);

    // 签收, 拟定人选 (the roster verifies the officer) and 报到 on the spot.
    let department = suite.department(POLICE);
    department
        .clone()
        .sign_call(pb::SignCallRequest { call_id: call.id.clone(), request_id: request_id() })
        .await
        .expect("signing");
    let officer = seed::person_id(&seed::officer_number(&station.id, 1)).to_string();
    department
        .clone()
        .designate_responders(pb::DesignateRespondersRequest {
            call_id: call.id.clone(),
            person_ids: vec![officer.clone()],
            request_id: request_id(),
        })
        .await
        .expect("designating the officer");
    let checked = suite
        .officer(&officer, POLICE)
        .check_in(pb::CheckInRequest {
            call_id: call.id.clone(),
            location: point((PUMP_ROOM.0 + 0.0002, PUMP_ROOM.1)),
            device_time: ts(Utc::now()),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .expect("checking in")
        .into_inner();
    assert_eq!(checked.designations[0].check_in_status, pb::CheckInStatus::OnTime as i32);

    // The district saw every step, in order, and the last snapshot names the officer as
    // the roster knows them.
    let mut seen = Vec::new();
    let last = loop {
        let message = next(&mut watch).await;
        let event = message.event.as_ref().expect("every later message carries its event");
        seen.push(event.event_type());
        if event.event_type() == pb::EventType::CheckInOnTime {
            break message;
        }
    };
    assert_eq!(
        seen,
        [
            pb::EventType::CaseTriaged,
            pb::EventType::CallStarted,
            pb::EventType::CallSigned,
            pb::EventType::RespondersDesignated,
            pb::EventType::CheckInOnTime,
        ]
    );
    let person = roster_reader
        .clone()
        .get_person(roster::GetPersonRequest { person_id: officer.clone() })
        .await
        .expect("reading the officer")
        .into_inner();
    // A delta carries the call its event changed (the check-in), not the whole case.
    let designation = &last.changed_call.as_ref().expect("a call event carries its call").designations[0];
    let named = designation.person.as_ref().expect("the designation names a person");
    assert_eq!((named.id.as_str(), named.name.as_str()), (officer.as_str(), person.name.as_str()));
    assert_eq!(designation.check_in_status, pb::CheckInStatus::OnTime as i32);
    assert_eq!(last.event.as_ref().map(|e| e.case_state()), Some(pb::CaseState::Calling));

    drop(watch);
    suite.stop().await;
}
