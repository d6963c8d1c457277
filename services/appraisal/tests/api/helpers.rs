//! A seeded roster, a dispatch on a manual clock, and an appraisal consuming dispatch's
//! feed, each on a fresh database; clients for every kind of caller; and a scripted case
//! runner that walks a case through dispatch with chosen outcomes per department.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use minhu_dispatch::{Clock as _, ManualClock};
use minhu_grpc::{Principal, auth::BearerToken};
use minhu_proto::{appraisal::v1 as apb, common::v1 as common, dispatch::v1 as pb};
use minhu_testkit::tokens;
use tonic::{codegen::InterceptedService, transport::Channel};

pub type Dispatch = pb::dispatch_service_client::DispatchServiceClient<InterceptedService<Channel, BearerToken>>;
pub type Appraisal = apb::appraisal_service_client::AppraisalServiceClient<InterceptedService<Channel, BearerToken>>;

pub const STREET: &str = "zhongnanlu";
pub const OTHER_STREET: &str = "shuiguohu";
/// 海运社区's centre: the pump room.
pub const PUMP_ROOM: (f64, f64) = (30.5335, 114.3378);

pub struct World {
    pub dispatch_pool: sqlx::PgPool,
    pub pool: sqlx::PgPool,
    pub clock: ManualClock,
    dispatch: Channel,
    appraisal: Channel,
    appraisal_addr: std::net::SocketAddr,
    _suite: minhu_harness::Suite,
}

/// 2019-05-06 09:00 in Wuhan: the scripted month is May 2019.
pub fn month_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2019, 5, 6, 1, 0, 0).unwrap()
}

impl World {
    /// Everything running (the workspace's one spawner, [`minhu_harness`]) with dispatch on
    /// a manual clock at [`month_start`] — the script fires escalations itself, at the times
    /// it chooses; appraisal consumes the feed unless `consume` is false.
    pub async fn spawn(consume: bool) -> Self {
        let clock = ManualClock::new(month_start());
        let suite = minhu_harness::Suite::builder()
            .clock(clock.clone())
            .consume(consume)
            .feed_poll(Duration::from_millis(100))
            .start()
            .await;
        Self {
            dispatch_pool: suite.dispatch_pool().clone(),
            pool: suite.appraisal_pool().clone(),
            clock,
            dispatch: suite.dispatch_service().channel(),
            appraisal: suite.appraisal_service().channel(),
            appraisal_addr: suite.appraisal_service().addr(),
            _suite: suite,
        }
    }

    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.appraisal_addr
    }

    pub fn dispatch(&self, p: &Principal) -> Dispatch {
        pb::dispatch_service_client::DispatchServiceClient::with_interceptor(self.dispatch.clone(), tokens::bearer(p))
    }

    pub fn street(&self) -> Dispatch {
        self.dispatch(&tokens::street_leader(STREET))
    }

    pub fn department(&self, id: &str) -> Dispatch {
        self.dispatch(&tokens::department_dispatcher(id))
    }

    pub fn appraisal(&self, p: &Principal) -> Appraisal {
        apb::appraisal_service_client::AppraisalServiceClient::with_interceptor(
            self.appraisal.clone(),
            tokens::bearer(p),
        )
    }

    pub fn admin(&self) -> Appraisal {
        self.appraisal(&tokens::district_admin())
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The feed's head in dispatch.
    pub async fn head(&self) -> i64 {
        let (head,): (i64,) = sqlx::query_as("SELECT coalesce(max(sequence), 0)::bigint FROM events")
            .fetch_one(&self.dispatch_pool)
            .await
            .unwrap();
        head
    }

    /// Waits until appraisal has applied every event dispatch has (polling the feed status).
    pub async fn caught_up(&self) {
        let head = self.head().await;
        for _ in 0..400 {
            let status = self.admin().get_feed_status(apb::GetFeedStatusRequest {}).await.unwrap().into_inner();
            if status.last_applied_sequence >= head {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("appraisal did not catch up with the feed head {head}");
    }

    pub async fn sign_overdue(&self, call_id: &str) {
        let mut tx = self.dispatch_pool.begin().await.unwrap();
        minhu_dispatch::escalation::mark_sign_overdue(&mut tx, call_id.parse().unwrap(), self.now()).await.unwrap();
        tx.commit().await.unwrap();
    }

    pub async fn close_check_in(&self, call_id: &str) {
        let mut tx = self.dispatch_pool.begin().await.unwrap();
        minhu_dispatch::escalation::close_check_in(&mut tx, call_id.parse().unwrap(), self.now()).await.unwrap();
        tx.commit().await.unwrap();
    }

    pub async fn task_overdue(&self, task_id: &str) {
        let mut tx = self.dispatch_pool.begin().await.unwrap();
        minhu_dispatch::escalation::mark_task_overdue(&mut tx, task_id.parse().unwrap(), self.now()).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// A period of May 2019 (Wuhan time) with default weights.
    pub async fn may_period(&self) -> apb::Period {
        let start = Utc.with_ymd_and_hms(2019, 4, 30, 16, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2019, 5, 31, 16, 0, 0).unwrap();
        self.period("2019年5月", apb::PeriodKind::Month, start, end).await
    }

    pub async fn period(
        &self,
        name: &str,
        kind: apb::PeriodKind,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> apb::Period {
        self.admin()
            .create_period(apb::CreatePeriodRequest {
                period: Some(apb::Period {
                    name: name.into(),
                    kind: kind as i32,
                    range: Some(common::TimeRange { start_time: ts(start), end_time: ts(end) }),
                    ..Default::default()
                }),
                request_id: request_id(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn score(&self, period_id: &str, department: &str) -> apb::DepartmentScore {
        self.admin()
            .get_department_score(apb::GetDepartmentScoreRequest {
                period_id: period_id.into(),
                department_id: department.into(),
                street_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn table(&self, period_id: &str) -> Vec<apb::DepartmentScore> {
        self.admin()
            .list_department_scores(apb::ListDepartmentScoresRequest {
                period_id: period_id.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .scores
    }
}

pub fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

pub fn point(p: (f64, f64)) -> Option<common::GeoPoint> {
    Some(common::GeoPoint { latitude: p.0, longitude: p.1 })
}

pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The seed's officer 1 of the street's station of a department (guihua has no station).
pub fn officer(department: &str) -> String {
    let number = if department == "guihua" {
        "guihua-01".to_owned()
    } else {
        minhu_roster::seed::officer_number(&format!("{STREET}-{department}"), 1)
    };
    minhu_roster::seed::person_id(&number).to_string()
}

fn qualification(department: &str) -> common::Qualification {
    match department {
        "gongan" => common::Qualification::PoliceOfficer,
        "guihua" => common::Qualification::Surveyor,
        "fangguan" => common::Qualification::BuildingSafetyAppraiser,
        _ => common::Qualification::LawEnforcementCertificate,
    }
}

/// How a department signs (签收).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    OnTime,
    Late,
    Never,
}

/// How its officer reports (报到).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    OnTime,
    Late,
    Absent,
}

/// How its task ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    OnTime,
    /// Past its window (TASK_OVERDUE), then completed late.
    Late,
}

/// One department's script in a case.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    pub department: &'static str,
    pub sign: Sign,
    pub report: Report,
    pub work: Work,
    pub rating: pb::Satisfaction,
}

pub fn script(department: &'static str, sign: Sign, report: Report, work: Work, rating: pb::Satisfaction) -> Script {
    Script { department, sign, report, work, rating }
}

/// What a scripted case left behind.
#[derive(Debug, Clone)]
pub struct CaseRun {
    pub case_id: String,
    /// department → call id.
    pub calls: BTreeMap<String, String>,
}

/// Walks one case through dispatch as scripted: intake, triage, calls (report time six
/// hours out), signing (late ones after the sign deadline's escalation), check-in, the
/// window's close, consultation, feedback (late ones after the task's escalation), report,
/// ratings and close. A case with a department that never signs stops after check-in.
pub async fn run_case(w: &World, scripts: &[Script]) -> CaseRun {
    let street = w.street();
    let t0 = w.now();
    let case = street.clone().create_case(intake()).await.unwrap().into_inner();
    street
        .clone()
        .triage_case(pb::TriageCaseRequest {
            case_id: case.id.clone(),
            decision: pb::TriageDecision::StartCall as i32,
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap();
    let report_time = t0 + TimeDelta::hours(6);
    let started = street
        .clone()
        .start_call(pb::StartCallRequest {
            case_id: case.id.clone(),
            calls: scripts
                .iter()
                .map(|s| pb::Call {
                    department_id: s.department.into(),
                    matters: format!("{}: 水泵房违规占用的处置", s.department),
                    expected_goal: "恢复水泵房原状".into(),
                    staff_requirement: Some(pb::StaffRequirement {
                        count: 1,
                        qualification: qualification(s.department) as i32,
                        note: String::new(),
                    }),
                    report_time: ts(report_time),
                    report_place: Some(pb::Place { address: "海运宿舍3栋".into(), location: point(PUMP_ROOM) }),
                    ..Default::default()
                })
                .collect(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    let calls: BTreeMap<String, String> =
        started.calls.iter().map(|c| (c.department_id.clone(), c.id.clone())).collect();
    let call = |d: &str| calls[d].clone();

    let sign = |d: &'static str| {
        let (client, call_id) = (w.department(d), call(d));
        async move {
            client
                .clone()
                .sign_call(pb::SignCallRequest { call_id: call_id.clone(), request_id: request_id() })
                .await
                .unwrap();
            client
                .clone()
                .designate_responders(pb::DesignateRespondersRequest {
                    call_id,
                    person_ids: vec![officer(d)],
                    request_id: request_id(),
                })
                .await
                .unwrap();
        }
    };
    for s in scripts.iter().filter(|s| s.sign == Sign::OnTime) {
        sign(s.department).await;
    }
    if scripts.iter().any(|s| s.sign != Sign::OnTime) {
        w.clock.set(t0 + TimeDelta::hours(4) + TimeDelta::minutes(1));
        for s in scripts.iter().filter(|s| s.sign != Sign::OnTime) {
            w.sign_overdue(&call(s.department)).await;
        }
        for s in scripts.iter().filter(|s| s.sign == Sign::Late) {
            sign(s.department).await;
        }
    }
    let check_in = |d: &'static str| {
        let (client, call_id) = (w.dispatch(&tokens::field_officer(&officer(d), d)), call(d));
        let now = w.now();
        async move {
            client
                .clone()
                .check_in(pb::CheckInRequest {
                    call_id,
                    location: point((PUMP_ROOM.0 + 0.0003, PUMP_ROOM.1)),
                    device_time: ts(now),
                    request_id: request_id(),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
    };
    for s in scripts.iter().filter(|s| s.sign != Sign::Never && s.report == Report::OnTime) {
        check_in(s.department).await;
    }
    w.clock.set(report_time + TimeDelta::minutes(10));
    for s in scripts.iter().filter(|s| s.sign != Sign::Never && s.report == Report::Late) {
        check_in(s.department).await;
    }
    w.clock.set(report_time + TimeDelta::minutes(31));
    for s in scripts {
        w.close_check_in(&call(s.department)).await;
    }
    if scripts.iter().any(|s| s.sign == Sign::Never) {
        w.clock.set(t0 + TimeDelta::days(1));
        return CaseRun { case_id: case.id, calls };
    }

    let now = w.now();
    let consulted = street
        .clone()
        .record_consultation(pb::RecordConsultationRequest {
            case_id: case.id.clone(),
            consultation: Some(pb::Consultation {
                meeting_time: ts(now),
                attendee_person_ids: scripts.iter().map(|s| officer(s.department)).collect(),
                analysis: "水泵房被占用".into(),
                plan: "各部门按分工处置".into(),
                ..Default::default()
            }),
            tasks: scripts
                .iter()
                .map(|s| pb::Task {
                    call_id: call(s.department),
                    description: format!("{} 的任务", s.department),
                    window: Some(common::TimeRange { start_time: ts(now), end_time: ts(now + TimeDelta::days(3)) }),
                    ..Default::default()
                })
                .collect(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    let finish = |task: &pb::Task| {
        let (client, street, task_id) = (w.department(&task.department_id), street.clone(), task.id.clone());
        let department_id = task.department_id.clone();
        async move {
            let feedback = client
                .clone()
                .submit_feedback(pb::SubmitFeedbackRequest {
                    task_id,
                    text: "已处置".into(),
                    handling_opinion: "按协商意见落实".into(),
                    request_id: request_id(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            street
                .clone()
                .review_feedback(pb::ReviewFeedbackRequest {
                    feedback_id: feedback.id.clone(),
                    decision: pb::ReviewDecision::Accept as i32,
                    request_id: request_id(),
                    ..Default::default()
                })
                .await
                .unwrap();
            (department_id, feedback.id)
        }
    };
    let work_of = |d: &str| scripts.iter().find(|s| s.department == d).unwrap().work;
    let mut feedback = Vec::new();
    for task in consulted.tasks.iter().filter(|t| work_of(&t.department_id) == Work::OnTime) {
        feedback.push(finish(task).await);
    }
    if consulted.tasks.iter().any(|t| work_of(&t.department_id) == Work::Late) {
        w.clock.set(now + TimeDelta::days(3) + TimeDelta::hours(1));
        for task in consulted.tasks.iter().filter(|t| work_of(&t.department_id) == Work::Late) {
            w.task_overdue(&task.id).await;
            feedback.push(finish(task).await);
        }
    }
    street
        .clone()
        .submit_case_report(pb::SubmitCaseReportRequest {
            report: Some(pb::CaseReport {
                case_id: case.id.clone(),
                summary: "处置完毕".into(),
                department_results: feedback
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
    // 回访 before 评价.
    street
        .clone()
        .record_callback(pb::RecordCallbackRequest {
            case_id: case.id.clone(),
            callback: Some(pb::Callback {
                method: pb::CallbackMethod::Phone as i32,
                reached: true,
                reporter_satisfaction: pb::Satisfaction::Satisfied as i32,
                callback_time: ts(w.clock.now()),
                ..Default::default()
            }),
            request_id: request_id(),
        })
        .await
        .unwrap();
    for s in scripts {
        street
            .clone()
            .rate_department(pb::RateDepartmentRequest {
                case_id: case.id.clone(),
                department_id: s.department.into(),
                satisfaction: s.rating as i32,
                comment: if s.rating == pb::Satisfaction::Dissatisfied { "拖延".into() } else { String::new() },
                request_id: request_id(),
            })
            .await
            .unwrap();
    }
    street
        .clone()
        .close_case(pb::CloseCaseRequest {
            case_id: case.id.clone(), summary: "办结".into(), request_id: request_id()
        })
        .await
        .unwrap();
    w.clock.set(t0 + TimeDelta::days(4));
    CaseRun { case_id: case.id, calls }
}

pub fn intake() -> pb::CreateCaseRequest {
    pb::CreateCaseRequest {
        case: Some(pb::Case {
            channel: pb::Channel::GridWorker as i32,
            category: "城市管理/违法建设".into(),
            title: "海运宿舍水泵房被违规占用".into(),
            description: "水泵房被改成商铺，墙体被打通，产权不清".into(),
            place: Some(pb::Place {
                address: "中南路街海运宿舍3栋水泵房".into(), location: point(PUMP_ROOM)
            }),
            urgency: pb::Urgency::Normal as i32,
            reporter: Some(pb::Reporter {
                name: "张三".into(),
                phone: "13812341234".into(),
                id_number: "420106199001011234".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        request_id: request_id(),
        ..Default::default()
    }
}

/// The scripted month (May 2019), four cases from 中南路街:
///
/// | case | gongan 公安 | chengguan 城管 | guihua 规划 |
/// |---|---|---|---|
/// | A | all on time; 满意 | all on time; 基本满意 | all on time; 不满意 |
/// | B | officer late; task on time; 满意 | all on time, task late (overdue, then done); 满意 | — |
/// | C | signed late; task on time; 基本满意 | — | officer absent; task on time; 满意 |
/// | D | — | never signed (case stops) | officer absent (case stops) |
pub async fn scripted_month(w: &World) -> Vec<CaseRun> {
    use pb::Satisfaction::*;
    let a = run_case(
        w,
        &[
            script("gongan", Sign::OnTime, Report::OnTime, Work::OnTime, Satisfied),
            script("chengguan", Sign::OnTime, Report::OnTime, Work::OnTime, BasicallySatisfied),
            script("guihua", Sign::OnTime, Report::OnTime, Work::OnTime, Dissatisfied),
        ],
    )
    .await;
    let b = run_case(
        w,
        &[
            script("gongan", Sign::OnTime, Report::Late, Work::OnTime, Satisfied),
            script("chengguan", Sign::OnTime, Report::OnTime, Work::Late, Satisfied),
        ],
    )
    .await;
    let c = run_case(
        w,
        &[
            script("gongan", Sign::Late, Report::OnTime, Work::OnTime, BasicallySatisfied),
            script("guihua", Sign::OnTime, Report::Absent, Work::OnTime, Satisfied),
        ],
    )
    .await;
    let d = run_case(
        w,
        &[
            script("chengguan", Sign::Never, Report::Absent, Work::OnTime, Satisfied),
            script("guihua", Sign::OnTime, Report::Absent, Work::OnTime, Satisfied),
        ],
    )
    .await;
    vec![a, b, c, d]
}

/// The precondition reasons of a FAILED_PRECONDITION status.
pub fn reasons(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    status
        .get_details_precondition_failure()
        .map(|f| f.violations.into_iter().map(|v| v.r#type).collect())
        .unwrap_or_default()
}

/// The fields of an INVALID_ARGUMENT status.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}
