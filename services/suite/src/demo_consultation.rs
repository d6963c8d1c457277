//! The consultation half of the demo (决策建议 · 规划参与), driven through the public gRPC
//! API of the running suite: the planning department (规划分局) consults the two streets the
//! pump room's future use affects — computed from the places it names, through the roster —
//! one opinion is adopted, the other not, and the reason reaches that street's live watch;
//! the decision is recorded as final without a flag. Then a plan's drafting stage is refused
//! until the covered street has taken part, and completes once it has and its opinion is
//! answered. Finally the decision's trail is verified.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use minhu_grpc::{OrgKind, Organization, Principal, Role, TokenIssuer, auth::BearerToken};
use minhu_proto::{
    common::v1 as common,
    consultation::v1::{self as pb, ConsultationEventType as Ev, watch_consultations_response::Record},
};
use tokio_stream::StreamExt as _;
use tonic::{codegen::InterceptedService, transport::Channel};

type Client = pb::consultation_service_client::ConsultationServiceClient<InterceptedService<Channel, BearerToken>>;

const PLANNING: &str = "guihua";
const ZHONGNANLU: &str = "zhongnanlu";
const SHUIGUOHU: &str = "shuiguohu";

fn client(channel: &Channel, principal: &Principal) -> Client {
    let token = TokenIssuer::dev().issue(principal, Duration::from_secs(3600));
    pb::consultation_service_client::ConsultationServiceClient::with_interceptor(
        channel.clone(),
        BearerToken::new(&token),
    )
}

fn planning(channel: &Channel) -> Client {
    client(
        channel,
        &Principal::new(
            "guihua-dispatcher",
            [Role::DepartmentDispatcher],
            Organization::new(OrgKind::Department, PLANNING),
        ),
    )
}

fn leader(channel: &Channel, street: &str) -> Client {
    client(
        channel,
        &Principal::new(format!("{street}-leader"), [Role::StreetLeader], Organization::new(OrgKind::Street, street)),
    )
}

fn place(name: &str, latitude: f64, longitude: f64) -> pb::DecisionPlace {
    pb::DecisionPlace {
        name: name.into(),
        location: Some(common::GeoPoint { latitude, longitude }),
        street_id: String::new(),
    }
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn say(step: &str, what: impl AsRef<str>) {
    println!("  {step:<10} {}", what.as_ref());
}

/// Runs the consultation demo against consultation at `url` (e.g. `http://127.0.0.1:50055`);
/// returns the decision's id.
pub async fn run(url: &str) -> Result<String> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
        .connect()
        .await
        .context("connecting to consultation")?;
    println!("\n== 决策建议: 规划分局 asks the affected streets about the pump room's future use ==\n");
    let decision = planning(&channel)
        .create_decision(pb::CreateDecisionRequest {
            decision: Some(pb::Decision {
                kind: pb::DecisionKind::MajorProject as i32,
                subject: "海运宿舍泵房后续用途".into(),
                description: "清退后的泵房改作社区议事厅，在水果湖一侧设配套停车点".into(),
                places: vec![place("海运宿舍泵房", 30.5335, 114.3378), place("配套停车点", 30.5540, 114.3470)],
                reply_working_days: 5,
                ..Default::default()
            }),
            request_id: id(),
        })
        .await
        .context("opening the consultation")?
        .into_inner();
    say(
        "征求意见",
        format!("consultation opened; affected streets from its places: {}", decision.affected_street_ids.join(", ")),
    );

    // 水果湖街's portal watches from now on: it sees the answer as it is given.
    let mut watch = leader(&channel, SHUIGUOHU)
        .watch_consultations(pb::WatchConsultationsRequest { after_sequence: 0, subject_id: decision.id.clone() })
        .await?
        .into_inner();

    let submit = |street: &'static str, text: &'static str| {
        let mut c = leader(&channel, street);
        let decision_id = decision.id.clone();
        async move {
            c.submit_decision_opinion(pb::SubmitDecisionOpinionRequest {
                decision_id,
                stance: common::OpinionStance::Conditional as i32,
                text: text.into(),
                request_id: id(),
            })
            .await
            .map(|r| r.into_inner())
        }
    };
    let zhongnanlu = submit(ZHONGNANLU, "同意改作议事厅，须保留消防通道").await?;
    say("意见建议", format!("中南路街: {}", zhongnanlu.text));
    let shuiguohu = submit(SHUIGUOHU, "停车点应夜间对居民免费开放").await?;
    say("意见建议", format!("水果湖街: {}", shuiguohu.text));

    let answer = |opinion: &pb::DecisionOpinion, result: pb::AdoptionResult, reason: &'static str| {
        let mut c = planning(&channel);
        let decision_opinion_id = opinion.id.clone();
        async move {
            c.record_adoption(pb::RecordAdoptionRequest {
                decision_opinion_id,
                result: result as i32,
                reason: reason.into(),
                request_id: id(),
            })
            .await
        }
    };
    answer(&zhongnanlu, pb::AdoptionResult::Adopted, "").await?;
    say("采纳", "中南路街's opinion adopted");
    answer(&shuiguohu, pb::AdoptionResult::NotAdopted, "停车点夜间无人值守，免费开放存在安全隐患，不予采纳").await?;

    let feedback = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = watch.next().await {
            let message = message?;
            if message.event_type == Ev::AdoptionRecorded as i32
                && let Some(Record::DecisionOpinion(o)) = message.record
                && o.street_id == SHUIGUOHU
            {
                return Ok::<_, anyhow::Error>(o.adoption.map(|a| a.reason).unwrap_or_default());
            }
        }
        bail!("the watch ended")
    })
    .await
    .context("水果湖街's watch went quiet")??;
    say("不予采纳", format!("水果湖街's portal receives the reason: {feedback}"));

    let finalized = planning(&channel)
        .finalize_decision(pb::FinalizeDecisionRequest {
            decision_id: decision.id.clone(),
            summary: "泵房改作社区议事厅，保留消防通道；停车点按规定时段开放".into(),
            places: vec![],
            request_id: id(),
        })
        .await?
        .into_inner();
    say("决策", format!("recorded as final with {} compliance flags", finalized.flags.len()));

    println!("\n== 规划参与: the street in every stage of a plan ==\n");
    let plan = planning(&channel)
        .create_plan(pb::CreatePlanRequest {
            plan: Some(pb::Plan {
                name: "海运社区公共服务设施规划".into(),
                kind: pb::PlanKind::PublicServiceFacility as i32,
                street_ids: vec![ZHONGNANLU.into()],
                description: "议事厅、日间照料中心与便民服务点布局".into(),
                ..Default::default()
            }),
            request_id: id(),
        })
        .await?
        .into_inner();
    let advance = || {
        let mut c = planning(&channel);
        let plan_id = plan.id.clone();
        async move {
            c.advance_plan_stage(pb::AdvancePlanStageRequest {
                plan_id,
                expected_stage: pb::PlanStage::Drafting as i32,
                note: "编制完成".into(),
                request_id: id(),
                ..Default::default()
            })
            .await
        }
    };
    match advance().await {
        Err(status) => say("编制", format!("completing drafting refused: {}", status.message())),
        Ok(_) => bail!("drafting completed without the street"),
    }
    let opinion = leader(&channel, ZHONGNANLU)
        .submit_plan_opinion(pb::SubmitPlanOpinionRequest {
            plan_id: plan.id.clone(),
            stance: common::OpinionStance::Conditional as i32,
            text: "日间照料中心应设在一楼临街".into(),
            participation: "现场踏勘，居民议事会".into(),
            request_id: id(),
            ..Default::default()
        })
        .await?
        .into_inner();
    say("参与", format!("中南路街 takes part: {}", opinion.text));
    planning(&channel)
        .answer_plan_opinion(pb::AnswerPlanOpinionRequest {
            plan_opinion_id: opinion.id.clone(),
            result: pb::AdoptionResult::Adopted as i32,
            reason: String::new(),
            request_id: id(),
        })
        .await?;
    let plan = advance().await?.into_inner();
    say(
        "编制",
        format!(
            "drafting completed; the plan is now {}",
            pb::PlanStage::try_from(plan.stage).map(|s| s.as_str_name()).unwrap_or("?")
        ),
    );

    let verdict =
        planning(&channel).verify_trail(pb::VerifyTrailRequest { subject_id: decision.id.clone() }).await?.into_inner();
    say("留痕", format!("the decision's trail: {} entries, verified {}", verdict.entries_checked, verdict.verified));
    Ok(decision.id)
}
