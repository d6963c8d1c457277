//! The personnel demo (人事任免建议权), through the public gRPC API of the running suite: the
//! head of 中南路派出所 is considered for promotion — the interview scope the service computes
//! from the roster, the police department's solicitation of the street's written opinion,
//! the street's opinion signed by its Party secretary, the department's decision citing it —
//! then the street's resident police officer applies for annual leave over 中秋, and a
//! second, overlapping application is refused.
//!
//! Request ids are derived from fixed names, so running the demo again against the same
//! databases replays the first results instead of filing everything twice.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use minhu_grpc::{OrgKind, Organization, Principal, Role, TokenIssuer, auth::BearerToken};
use minhu_proto::{common::v1 as common, personnel::v1 as pb};
use tonic::{codegen::InterceptedService, transport::Channel};
use uuid::Uuid;

type Personnel = pb::personnel_service_client::PersonnelServiceClient<InterceptedService<Channel, BearerToken>>;

const STREET: &str = "zhongnanlu";
const POLICE_STATION: &str = "zhongnanlu-gongan";

fn person(number: &str) -> String {
    minhu_roster::seed::person_id(number).to_string()
}

/// A request id stable across runs of the demo.
fn request_id(name: &str) -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("minhu-demo/personnel/{name}").as_bytes()).to_string()
}

fn client(channel: &Channel, principal: &Principal) -> Personnel {
    let token = TokenIssuer::dev().issue(principal, Duration::from_secs(3600));
    pb::personnel_service_client::PersonnelServiceClient::with_interceptor(channel.clone(), BearerToken::new(&token))
}

/// Runs the personnel demo against personnel at `url` (e.g. `http://127.0.0.1:50054`).
pub async fn run(url: &str) -> Result<()> {
    let channel =
        Channel::from_shared(url.to_owned())?.connect().await.with_context(|| format!("connecting to {url}"))?;
    let police = client(
        &channel,
        &Principal::new("gongan-leader", [Role::DepartmentLeader], Organization::new(OrgKind::Department, "gongan")),
    );
    let secretary = person(&minhu_roster::seed::staff_number(STREET, 0));
    let street = client(
        &channel,
        &Principal::new(secretary.clone(), [Role::StreetLeader], Organization::new(OrgKind::Street, STREET)),
    );
    let head = person(&minhu_roster::seed::officer_number(POLICE_STATION, 0));
    println!("\n== 人事任免建议权: 中南路派出所所长 ==\n");

    let scope = police
        .clone()
        .create_interview_plan(pb::CreateInterviewPlanRequest {
            plan: Some(pb::InterviewPlan {
                station_id: POLICE_STATION.into(),
                street_id: STREET.into(),
                candidate_person_id: head.clone(),
                proposed_post: "武昌区公安分局治安大队大队长".into(),
                ..Default::default()
            }),
            validate_only: true,
            request_id: String::new(),
        })
        .await
        .context("computing the interview scope")?
        .into_inner();
    println!("谈话范围 (computed from the roster):");
    for i in &scope.required_interviewees {
        let p = i.person.clone().unwrap_or_default();
        println!("  - {} ({})", p.name, i.position().as_str_name());
    }

    let filed = police
        .clone()
        .create_opinion_solicitation(pb::CreateOpinionSolicitationRequest {
            solicitation: Some(pb::OpinionSolicitation {
                station_id: POLICE_STATION.into(),
                street_id: STREET.into(),
                person_id: head.clone(),
                position: common::Position::StationHead as i32,
                matter: pb::PersonnelMatter::Adjustment as i32,
                proposal: "拟提拔中南路派出所所长任武昌区公安分局治安大队大队长".into(),
                ..Default::default()
            }),
            request_id: request_id("solicitation"),
        })
        .await
        .context("filing the solicitation")?
        .into_inner();
    let deadline = filed.reply_deadline.map(|t| t.seconds).unwrap_or_default();
    println!(
        "征求意见: {} filed by 公安分局, the street replies by {} (5 working days)",
        filed.id,
        chrono::DateTime::from_timestamp(deadline, 0).map(|t| t.to_rfc3339()).unwrap_or_default()
    );
    if filed.state() == pb::SolicitationState::AwaitingOpinion {
        street
            .clone()
            .submit_opinion(pb::SubmitOpinionRequest {
                solicitation_id: filed.id.clone(),
                stance: common::OpinionStance::Agree as i32,
                text: "该同志履职尽责，民呼我应响应及时，同意提拔".into(),
                request_id: request_id("opinion"),
            })
            .await
            .context("the street's opinion")?;
    }
    println!("书面意见: 同意, signed by 中南路街党工委书记");
    let decided = police
        .clone()
        .record_decision(pb::RecordDecisionRequest {
            solicitation_id: filed.id.clone(),
            decision: "经党委研究，同意提拔，采纳街道意见".into(),
            opinion_adopted: true,
            reason: String::new(),
            request_id: request_id("decision"),
        })
        .await
        .context("recording the decision")?
        .into_inner();
    let state = decided.state().as_str_name();
    println!("决定: {} ({state})", decided.decision.unwrap_or_default().decision);

    println!("\n== 常驻人员年休假: 中南路街综合执法中心 ==\n");
    let secondee = person(&minhu_roster::seed::officer_number(POLICE_STATION, 1));
    police
        .clone()
        .set_leave_entitlement(pb::SetLeaveEntitlementRequest {
            person_id: secondee.clone(),
            year: 2026,
            service_start_date: Some(common::Date { year: 2012, month: 7, day: 1 }),
            request_id: request_id("entitlement"),
            ..Default::default()
        })
        .await
        .context("setting the entitlement")?;
    let mut own = client(
        &channel,
        &Principal::new(secondee.clone(), [Role::FieldOfficer], Organization::new(OrgKind::Department, "gongan")),
    );
    let date = |m, d| Some(common::Date { year: 2026, month: m, day: d });
    let leave = own
        .create_leave_application(pb::CreateLeaveApplicationRequest {
            application: Some(pb::LeaveApplication {
                start_date: date(9, 17),
                end_date: date(9, 30),
                reason: "探亲".into(),
                ..Default::default()
            }),
            request_id: request_id("leave"),
        })
        .await
        .context("applying for leave")?
        .into_inner();
    println!(
        "年休假 17–30 Sep 2026: {} leave days (中秋 25–27 Sep and the weekend not counted, Sun 20 Sep worked)",
        leave.days
    );
    match own
        .create_leave_application(pb::CreateLeaveApplicationRequest {
            application: Some(pb::LeaveApplication {
                start_date: date(9, 29),
                end_date: date(10, 9),
                reason: "国庆连休".into(),
                ..Default::default()
            }),
            request_id: request_id("overlapping-leave"),
        })
        .await
    {
        Ok(_) => bail!("an overlapping leave application was accepted"),
        Err(status) => println!("年休假 29 Sep–9 Oct: refused, {}", status.message()),
    }
    Ok(())
}
