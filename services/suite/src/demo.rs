//! The seed article's pump-room case (中南路街海运宿舍水泵房), driven end to end through the
//! public gRPC API of the running suite, printing a timeline a person can follow:
//! intake, triage, the call to four departments (planning signs late, its officer arrives
//! late), check-ins, consultation and tasks, feedback with a photo, review, report,
//! callback, ratings (planning dissatisfied → rectification → re-rating), close; then the
//! trail's verification and the departments' appraisal scores.
//!
//! The demo runs with short deadlines (seconds, not hours) so that the late signature and
//! the late arrival happen while you watch; see [`demo_deadlines`].

use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use chrono::{DateTime, Datelike as _, FixedOffset, TimeDelta, TimeZone as _, Utc};
use minhu_grpc::{OrgKind, Organization, Principal, Role, TokenIssuer, auth::BearerToken};
use minhu_proto::{appraisal::v1 as appraisal, common::v1 as common, dispatch::v1 as dispatch};
use sha2::{Digest as _, Sha256};
use tonic::{codegen::InterceptedService, transport::Channel};

type Dispatch = dispatch::dispatch_service_client::DispatchServiceClient<InterceptedService<Channel, BearerToken>>;
type Appraisal = appraisal::appraisal_service_client::AppraisalServiceClient<InterceptedService<Channel, BearerToken>>;

const STREET: &str = "zhongnanlu";
/// The pump room of 海运宿舍 (30.5335 N, 114.3378 E).
const PUMP_ROOM: (f64, f64) = (30.5335, 114.3378);
/// The departments the article names, in the order they answer.
const DEPARTMENTS: [(&str, &str); 4] =
    [("gongan", "派出所"), ("shichang", "市场监督管理所"), ("chengguan", "城管执法中队"), ("guihua", "规划分局")];
/// The department that signs late, arrives late and is rated dissatisfied.
const LATE: &str = "guihua";
/// From the call to the report time (指定时间).
const REPORT_AFTER: Duration = Duration::from_secs(40);

/// Deadlines short enough to watch: sign within 15 s, check in within 20 s of the report time.
pub fn demo_deadlines(policy: &mut minhu_dispatch::DeadlinePolicy) {
    policy.sign_emergency = Duration::from_secs(15);
    policy.sign_urgent = Duration::from_secs(15);
    policy.sign_normal = Duration::from_secs(15);
    policy.check_in_window = Duration::from_secs(20);
}

/// Where the demo finds the services.
pub struct Endpoints {
    /// Dispatch, e.g. `http://127.0.0.1:50052`.
    pub dispatch: String,
    /// Appraisal.
    pub appraisal: String,
}

struct Demo {
    dispatch: Channel,
    appraisal: Channel,
    issuer: TokenIssuer,
}

fn who(subject: &str, role: Role, kind: OrgKind, org: &str) -> Principal {
    Principal::new(subject, [role], Organization::new(kind, org))
}

impl Demo {
    fn as_who(&self, principal: &Principal) -> BearerToken {
        BearerToken::new(&self.issuer.issue(principal, Duration::from_secs(3600)))
    }

    fn street(&self) -> Dispatch {
        let p = Principal::new(
            "zhongnanlu-leader",
            [Role::StreetLeader, Role::StreetDispatcher],
            Organization::new(OrgKind::Street, STREET),
        );
        dispatch::dispatch_service_client::DispatchServiceClient::with_interceptor(
            self.dispatch.clone(),
            self.as_who(&p),
        )
    }

    fn department(&self, id: &str) -> Dispatch {
        let p = who(&format!("{id}-dispatcher"), Role::DepartmentDispatcher, OrgKind::Department, id);
        dispatch::dispatch_service_client::DispatchServiceClient::with_interceptor(
            self.dispatch.clone(),
            self.as_who(&p),
        )
    }

    fn officer(&self, department: &str) -> Dispatch {
        let p = who(&officer(department), Role::FieldOfficer, OrgKind::Department, department);
        dispatch::dispatch_service_client::DispatchServiceClient::with_interceptor(
            self.dispatch.clone(),
            self.as_who(&p),
        )
    }

    fn district(&self) -> Appraisal {
        let p = Principal::new(
            "district-admin",
            [Role::DistrictAdmin, Role::DistrictOperator],
            Organization::new(OrgKind::District, "district"),
        );
        appraisal::appraisal_service_client::AppraisalServiceClient::with_interceptor(
            self.appraisal.clone(),
            self.as_who(&p),
        )
    }
}

/// The seed officer a department sends (officer 1 of its 中南路 station; planning has none).
fn officer(department: &str) -> String {
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
        _ => common::Qualification::LawEnforcementCertificate,
    }
}

fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

fn point(p: (f64, f64)) -> Option<common::GeoPoint> {
    Some(common::GeoPoint { latitude: p.0, longitude: p.1 })
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn say(step: &str, what: impl AsRef<str>) {
    let cst = FixedOffset::east_opt(8 * 3600).expect("+08:00");
    println!("{}  {step:<10} {}", Utc::now().with_timezone(&cst).format("%H:%M:%S"), what.as_ref());
}

/// Polls `check` every 200 ms until it yields a value or `within` passes.
async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let give_up = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= give_up {
            bail!("gave up waiting for {what} after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A 1×1 PNG: the "photo" of the restored pump room.
const PHOTO: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d,
    0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Runs the whole case; returns its id.
pub async fn run(endpoints: &Endpoints) -> Result<String> {
    let connect = |url: String| async move {
        Channel::from_shared(url.clone())?.connect().await.with_context(|| format!("connecting to {url}"))
    };
    let demo = Demo {
        dispatch: connect(endpoints.dispatch.clone()).await?,
        appraisal: connect(endpoints.appraisal.clone()).await?,
        issuer: TokenIssuer::dev(),
    };
    println!("\n== 民呼我应: the pump room of 海运宿舍, 中南路街 ==\n");

    let period = open_period(&demo).await?;
    let street = demo.street();

    // 1. Intake (诉求受理): a grid worker reports; the roster places it.
    let case = street
        .clone()
        .create_case(dispatch::CreateCaseRequest {
            case: Some(dispatch::Case {
                channel: dispatch::Channel::GridWorker as i32,
                category: "城市管理/违法建设".into(),
                title: "海运宿舍水泵房被违规占用".into(),
                description: "公共水泵房被一业主改成副食店：开墙打洞、无证经营、侵占公共空间，居民反复投诉".into(),
                place: Some(dispatch::Place {
                    address: "中南路街海运宿舍3栋水泵房".into(),
                    location: point(PUMP_ROOM),
                }),
                urgency: dispatch::Urgency::Normal as i32,
                reporter: Some(dispatch::Reporter {
                    name: "张三".into(),
                    phone: "13812341234".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            request_id: id(),
            ..Default::default()
        })
        .await?
        .into_inner();
    say("intake", format!("case {} in {}/{} — {}", case.id, case.street_id, case.community_id, case.title));

    // 2. Triage (研判): start the call procedure.
    street
        .clone()
        .triage_case(dispatch::TriageCaseRequest {
            case_id: case.id.clone(),
            decision: dispatch::TriageDecision::StartCall as i32,
            request_id: id(),
            ..Default::default()
        })
        .await?;
    say("triage", "启动呼应程序: the street calls the departments");

    // 3. The call (呼叫) to four departments, to report at the pump room.
    let report_time = Utc::now() + TimeDelta::from_std(REPORT_AFTER)?;
    let started = street
        .clone()
        .start_call(dispatch::StartCallRequest {
            case_id: case.id.clone(),
            calls: DEPARTMENTS
                .iter()
                .map(|(d, _)| dispatch::Call {
                    department_id: (*d).into(),
                    matters: format!("{d}: 水泵房违规占用的处置"),
                    expected_goal: "恢复水泵房原状，查处违法行为".into(),
                    staff_requirement: Some(dispatch::StaffRequirement {
                        count: 1,
                        qualification: qualification(d) as i32,
                        note: String::new(),
                    }),
                    report_time: ts(report_time),
                    report_place: Some(dispatch::Place {
                        address: "海运宿舍3栋".into(), location: point(PUMP_ROOM)
                    }),
                    ..Default::default()
                })
                .collect(),
            request_id: id(),
        })
        .await?
        .into_inner();
    say(
        "call",
        format!("{} departments called; report at the pump room by {}", started.calls.len(), short(report_time)),
    );

    // 4–5. Sign (签收), designate (拟定人选), check in (报到): three at once.
    for call in started.calls.iter().filter(|c| c.department_id != LATE) {
        answer(&demo, call, false).await?;
    }

    // Planning lets its sign deadline pass: the engine marks the call overdue.
    let late_call = started.calls.iter().find(|c| c.department_id == LATE).context("the planning call")?;
    say("waiting", format!("{LATE} has not signed; its deadline is {}", short_ts(late_call.sign_deadline.as_ref())));
    let call_id = late_call.id.clone();
    wait_for("the sign deadline to pass", Duration::from_secs(90), || {
        let mut dispatch = demo.street();
        let call_id = call_id.clone();
        async move {
            let call = dispatch.get_call(dispatch::GetCallRequest { call_id }).await?.into_inner();
            Ok((call.state == dispatch::CallState::SignOverdue as i32).then_some(()))
        }
    })
    .await?;
    say("overdue", format!("{LATE}: sign deadline missed — escalated to its leadership and the district"));
    answer(&demo, late_call, true).await?;

    // The check-in windows close: present on time, late (慢到位), or absent (不到位).
    wait_for("the check-in windows to close", Duration::from_secs(120), || {
        let mut dispatch = demo.street();
        let case_id = case.id.clone();
        async move {
            let case = dispatch.get_case(dispatch::GetCaseRequest { case_id }).await?.into_inner();
            Ok((case.state == dispatch::CaseState::InConsultation as i32).then_some(()))
        }
    })
    .await?;
    say("check-in", "windows closed: three on time, planning late (慢到位); consultation begins");

    // 6. Consultation (协商): a task per department, each with its window.
    let now = Utc::now();
    let consulted = street
        .clone()
        .record_consultation(dispatch::RecordConsultationRequest {
            case_id: case.id.clone(),
            consultation: Some(dispatch::Consultation {
                meeting_time: ts(now),
                attendee_person_ids: DEPARTMENTS.iter().map(|(d, _)| officer(d)).collect(),
                analysis: "开墙打洞、无证经营、侵占公共空间、产权不清，涉及四个部门".into(),
                plan: "城管封闭违规开设的大门，派出所训诫当事人，规划分局确定水泵房权属，市场秩序查处无证经营".into(),
                ..Default::default()
            }),
            tasks: started
                .calls
                .iter()
                .map(|c| dispatch::Task {
                    call_id: c.id.clone(),
                    description: task_of(&c.department_id).into(),
                    window: Some(common::TimeRange { start_time: ts(now), end_time: ts(now + TimeDelta::minutes(30)) }),
                    ..Default::default()
                })
                .collect(),
            request_id: id(),
        })
        .await?
        .into_inner();
    for task in &consulted.tasks {
        say("task", format!("{:<10} {}", task.department_id, task.description));
    }

    // 7–8. Handling and feedback (反馈), urban management with a photo; the street reviews.
    let mut results = Vec::new();
    for task in &consulted.tasks {
        let mut attachment_ids = Vec::new();
        if task.department_id == "chengguan" {
            let photo = upload_photo(&demo, &case.id).await?;
            say(
                "photo",
                format!(
                    "chengguan uploads {} ({} bytes, sha256 {}…)",
                    photo.file_name,
                    photo.size_bytes,
                    &photo.sha256[..12]
                ),
            );
            attachment_ids.push(photo.id);
        }
        let feedback = demo
            .department(&task.department_id)
            .submit_feedback(dispatch::SubmitFeedbackRequest {
                task_id: task.id.clone(),
                text: done_of(&task.department_id).into(),
                handling_opinion: "按协商意见落实到位".into(),
                attachment_ids,
                request_id: id(),
            })
            .await?
            .into_inner();
        street
            .clone()
            .review_feedback(dispatch::ReviewFeedbackRequest {
                feedback_id: feedback.id.clone(),
                decision: dispatch::ReviewDecision::Accept as i32,
                request_id: id(),
                ..Default::default()
            })
            .await?;
        say("feedback", format!("{:<10} {} — accepted", task.department_id, done_of(&task.department_id)));
        results.push((task.department_id.clone(), feedback.id));
    }

    // 9. The case report (办理报告) to the district.
    street
        .clone()
        .submit_case_report(dispatch::SubmitCaseReportRequest {
            report: Some(dispatch::CaseReport {
                case_id: case.id.clone(),
                summary: "水泵房内物资全部搬移，招牌、卷闸门拆除，三个违规大门封闭，当事人已训诫".into(),
                department_results: results
                    .iter()
                    .map(|(d, f)| dispatch::DepartmentResult {
                        department_id: d.clone(),
                        summary: done_of(d).into(),
                        feedback_ids: vec![f.clone()],
                    })
                    .collect(),
                ..Default::default()
            }),
            request_id: id(),
            ..Default::default()
        })
        .await?;
    say("report", "办理报告 submitted to the district platform");

    // 10. Callback (回访) and ratings (评价): who calls, rates; one case, one rating.
    street
        .clone()
        .record_callback(dispatch::RecordCallbackRequest {
            case_id: case.id.clone(),
            callback: Some(dispatch::Callback {
                method: dispatch::CallbackMethod::Phone as i32,
                reached: true,
                reporter_satisfaction: dispatch::Satisfaction::Satisfied as i32,
                reporter_opinion: "居民一致表示满意".into(),
                callback_time: ts(Utc::now()),
                ..Default::default()
            }),
            request_id: id(),
        })
        .await?;
    say("callback", "the reporter is satisfied");
    for (d, _) in DEPARTMENTS {
        let (satisfaction, comment) = if d == LATE {
            (dispatch::Satisfaction::Dissatisfied, "签收超时、慢到位，权属认定未出具书面意见")
        } else {
            (dispatch::Satisfaction::Satisfied, "")
        };
        street
            .clone()
            .rate_department(dispatch::RateDepartmentRequest {
                case_id: case.id.clone(),
                department_id: d.into(),
                satisfaction: satisfaction as i32,
                comment: comment.into(),
                request_id: id(),
            })
            .await?;
        say(
            "rating",
            format!("{d:<10} {}", satisfaction.as_str_name().trim_start_matches("SATISFACTION_").to_lowercase()),
        );
    }

    // 11. Rectification (整改) of planning, then its re-rating; both ratings stay in history.
    let rectification = street
        .clone()
        .require_rectification(dispatch::RequireRectificationRequest {
            case_id: case.id.clone(),
            department_id: LATE.into(),
            requirement: "出具水泵房权属书面认定意见".into(),
            due_time: ts(Utc::now() + TimeDelta::days(7)),
            request_id: id(),
            ..Default::default()
        })
        .await?
        .into_inner();
    say("rectify", format!("{LATE}: 整改 — {}", rectification.requirement));
    let feedback = demo
        .department(LATE)
        .submit_feedback(dispatch::SubmitFeedbackRequest {
            task_id: rectification.task_id.clone(),
            text: "已出具权属认定意见：水泵房为小区业主共有".into(),
            handling_opinion: "整改完成".into(),
            attachment_ids: vec![],
            request_id: id(),
        })
        .await?
        .into_inner();
    street
        .clone()
        .review_feedback(dispatch::ReviewFeedbackRequest {
            feedback_id: feedback.id,
            decision: dispatch::ReviewDecision::Accept as i32,
            request_id: id(),
            ..Default::default()
        })
        .await?;
    street
        .clone()
        .rerate_department(dispatch::RerateDepartmentRequest {
            case_id: case.id.clone(),
            department_id: LATE.into(),
            satisfaction: dispatch::Satisfaction::BasicallySatisfied as i32,
            comment: "整改到位".into(),
            request_id: id(),
        })
        .await?;
    say("re-rating", format!("{LATE:<10} basically_satisfied (replaces dissatisfied for the score)"));

    // 12. Close (办结).
    let closed = street
        .clone()
        .close_case(dispatch::CloseCaseRequest { case_id: case.id.clone(), summary: "办结".into(), request_id: id() })
        .await?
        .into_inner();
    ensure!(closed.state == dispatch::CaseState::Closed as i32, "the case did not close");
    say("closed", "办结");

    print_trail(&demo, &case.id).await?;
    print_scores(&demo, &period).await?;
    Ok(case.id)
}

/// One department answers: signs (late or not), names its officer, who checks in.
async fn answer(demo: &Demo, call: &dispatch::Call, late: bool) -> Result<()> {
    let d = call.department_id.as_str();
    let signed = demo
        .department(d)
        .sign_call(dispatch::SignCallRequest { call_id: call.id.clone(), request_id: id() })
        .await?
        .into_inner();
    say("sign", format!("{d:<10} signed{}", if signed.signed_late { " LATE" } else { "" }));
    demo.department(d)
        .designate_responders(dispatch::DesignateRespondersRequest {
            call_id: call.id.clone(),
            person_ids: vec![officer(d)],
            request_id: id(),
        })
        .await?;
    if late {
        let report_time = call.report_time.as_ref().map(|t| t.seconds).unwrap_or_default();
        let wait = (report_time - Utc::now().timestamp() + 2).max(0) as u64;
        say("waiting", format!("{d}'s officer is on the way ({wait} s after the report time)"));
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    let checked = demo
        .officer(d)
        .check_in(dispatch::CheckInRequest {
            call_id: call.id.clone(),
            location: point((PUMP_ROOM.0 + 0.0002, PUMP_ROOM.1)),
            device_time: ts(Utc::now()),
            request_id: id(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let status = checked
        .designations
        .first()
        .map(|x| x.check_in_status().as_str_name().trim_start_matches("CHECK_IN_STATUS_").to_lowercase())
        .unwrap_or_default();
    say("check-in", format!("{d:<10} officer at the pump room: {status}"));
    Ok(())
}

async fn upload_photo(demo: &Demo, case_id: &str) -> Result<dispatch::Attachment> {
    let digest: String = Sha256::digest(PHOTO).iter().map(|b| format!("{b:02x}")).collect();
    let messages = vec![
        dispatch::UploadAttachmentRequest {
            content: Some(dispatch::upload_attachment_request::Content::Metadata(dispatch::UploadAttachmentMetadata {
                case_id: case_id.into(),
                file_name: "水泵房整改后.png".into(),
                content_type: "image/png".into(),
                size_bytes: PHOTO.len() as i64,
                sha256: digest,
                request_id: id(),
            })),
        },
        dispatch::UploadAttachmentRequest {
            content: Some(dispatch::upload_attachment_request::Content::Chunk(PHOTO.to_vec())),
        },
    ];
    Ok(demo.department("chengguan").upload_attachment(tokio_stream::iter(messages)).await?.into_inner())
}

async fn print_trail(demo: &Demo, case_id: &str) -> Result<()> {
    let mut street = demo.street();
    let entries = street
        .list_trail_entries(dispatch::ListTrailEntriesRequest {
            case_id: case_id.into(),
            page_size: 500,
            ..Default::default()
        })
        .await?
        .into_inner()
        .entries;
    println!("\n== 留痕: the trail ({} entries, each chained to the one before) ==", entries.len());
    for e in &entries {
        let actor = e
            .actor
            .as_ref()
            .map_or(String::new(), |a| if a.service.is_empty() { a.person_id.clone() } else { a.service.clone() });
        println!(
            "  {:>3}  {}  {:<28} {:<24} {}…",
            e.sequence,
            short_ts(e.occur_time.as_ref()),
            e.event_type().as_str_name().trim_start_matches("EVENT_TYPE_").to_lowercase(),
            actor,
            &e.hash[..12.min(e.hash.len())]
        );
    }
    let verdict = street.verify_trail(dispatch::VerifyTrailRequest { case_id: case_id.into() }).await?.into_inner();
    if verdict.verified {
        println!("  trail verified: {} entries untampered, head {}", verdict.entries_checked, verdict.head_hash);
    } else {
        bail!("the trail does not verify at entry {}: {}", verdict.first_broken_sequence, verdict.reason);
    }
    Ok(())
}

/// The appraisal month the case falls in (this month, Beijing time), opened if needed.
async fn open_period(demo: &Demo) -> Result<String> {
    let cst = FixedOffset::east_opt(8 * 3600).expect("+08:00");
    let today = Utc::now().with_timezone(&cst);
    let start = cst.with_ymd_and_hms(today.year(), today.month(), 1, 0, 0, 0).single().context("month start")?;
    let (y, m) = if today.month() == 12 { (today.year() + 1, 1) } else { (today.year(), today.month() + 1) };
    let end = cst.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().context("month end")?;
    let mut district = demo.district();
    let existing = district
        .list_periods(appraisal::ListPeriodsRequest {
            kind: appraisal::PeriodKind::Month as i32,
            page_size: 500,
            ..Default::default()
        })
        .await?
        .into_inner();
    if let Some(p) = existing
        .periods
        .iter()
        .find(|p| p.range.as_ref().and_then(|r| r.start_time.as_ref()).is_some_and(|s| s.seconds == start.timestamp()))
    {
        return Ok(p.id.clone());
    }
    let period = district
        .create_period(appraisal::CreatePeriodRequest {
            period: Some(appraisal::Period {
                name: format!("{}年{}月", today.year(), today.month()),
                kind: appraisal::PeriodKind::Month as i32,
                range: Some(common::TimeRange {
                    start_time: ts(start.with_timezone(&Utc)),
                    end_time: ts(end.with_timezone(&Utc)),
                }),
                weights: Some(appraisal::Weights { response_bp: 1000, completion_bp: 4000, satisfaction_bp: 5000 }),
                ..Default::default()
            }),
            request_id: id(),
        })
        .await?
        .into_inner();
    Ok(period.id)
}

async fn print_scores(demo: &Demo, period_id: &str) -> Result<()> {
    // Appraisal follows dispatch's feed: wait until it has applied everything.
    wait_for("appraisal to catch up with the feed", Duration::from_secs(30), || {
        let mut district = demo.district();
        async move {
            let status = district.get_feed_status(appraisal::GetFeedStatusRequest {}).await?.into_inner();
            Ok((status.head_sequence > 0 && status.last_applied_sequence >= status.head_sequence).then_some(()))
        }
    })
    .await?;
    let scores = demo
        .district()
        .list_department_scores(appraisal::ListDepartmentScoresRequest {
            period_id: period_id.into(),
            page_size: 100,
            ..Default::default()
        })
        .await?
        .into_inner();
    println!("\n== 绩效考评: this month's scores (响应率 10%, 办结率 40%, 满意率 50%) ==");
    println!(
        "  {:>4}  {:<10} {:>5}  {:>8} {:>8} {:>8} {:>8}",
        "rank", "department", "calls", "响应率", "办结率", "满意率", "综合"
    );
    let pct = |bp: Option<i32>| bp.map_or_else(|| "-".into(), |bp| format!("{:.1}%", f64::from(bp) / 100.0));
    for s in scores.scores.iter().filter(|s| s.calls_count > 0) {
        println!(
            "  {:>4}  {:<10} {:>5}  {:>8} {:>8} {:>8} {:>8}",
            s.rank,
            s.department_id,
            s.calls_count,
            pct(s.response_rate_bp),
            pct(s.completion_rate_bp),
            pct(s.satisfaction_rate_bp),
            pct(s.composite_bp)
        );
    }
    Ok(())
}

fn task_of(department: &str) -> &'static str {
    match department {
        "chengguan" => "处理非法开墙打洞，封闭违规开设的大门",
        "gongan" => "对当事人非法侵占公共空间的行为进行训诫教育",
        "guihua" => "确定水泵房的权属",
        _ => "查处无证经营问题",
    }
}

fn done_of(department: &str) -> &'static str {
    match department {
        "chengguan" => "三个违规大门已封闭，招牌、卷闸门已拆除",
        "gongan" => "已对当事人训诫并宣传法律法规",
        "guihua" => "权属初步认定为小区公共设施",
        _ => "无证经营的副食店已查处，物资已搬移",
    }
}

fn short(t: DateTime<Utc>) -> String {
    t.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("+08:00")).format("%H:%M:%S").to_string()
}

fn short_ts(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)).map_or_else(|| "-".into(), short)
}
