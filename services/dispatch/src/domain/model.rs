//! The records of a case, as the service reasons about them and the store keeps them
//! (serde documents); the api maps them to and from the protobuf messages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::named_enum;

/// A point, WGS-84.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lng: f64,
}

/// An address and, when known, its coordinates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// As written.
    pub address: String,
    /// Coordinates.
    pub location: Option<GeoPoint>,
}

/// The organisation an actor acted for, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRef {
    /// `ORGANIZATION_KIND_*` name.
    pub kind: String,
    /// Its roster id.
    pub id: String,
}

/// Who did something (trail, events, output-only `*_by` fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The person's roster id; empty for a service acting on its own.
    pub person_id: String,
    /// The person's name at the time.
    pub person_name: String,
    /// The organisation acted for.
    pub organization: OrgRef,
    /// `ROLE_*` names held at the time, sorted.
    pub roles: Vec<String>,
    /// The service identity when a service acted.
    pub service: String,
}

impl Actor {
    /// The dispatch service itself (deadline escalations).
    pub fn dispatch_service() -> Self {
        Self {
            person_id: String::new(),
            person_name: String::new(),
            organization: OrgRef { kind: "ORGANIZATION_KIND_UNSPECIFIED".into(), id: "minhu-dispatch".into() },
            roles: vec!["ROLE_SERVICE".into()],
            service: "dispatch".into(),
        }
    }
}

/// A light reference to a person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRef {
    /// Roster id.
    pub id: String,
    /// Name at the time.
    pub name: String,
    /// Department, if any.
    pub department_id: String,
    /// Station, if any.
    pub station_id: String,
}

/// A reference to a stored file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// Id.
    pub id: Uuid,
    /// File name.
    pub file_name: String,
    /// Media type.
    pub content_type: String,
    /// Size.
    pub size_bytes: i64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

named_enum! {
    /// Where a case stands; see `CaseState` in case.proto.
    CaseState {
        /// 已受理.
        Received = "CASE_STATE_RECEIVED",
        /// 已研判.
        Triaged = "CASE_STATE_TRIAGED",
        /// 街道自办.
        SolvingAtStreet = "CASE_STATE_SOLVING_AT_STREET",
        /// 呼叫中.
        Calling = "CASE_STATE_CALLING",
        /// 协商中.
        InConsultation = "CASE_STATE_IN_CONSULTATION",
        /// 办理中.
        Handling = "CASE_STATE_HANDLING",
        /// 审核中.
        UnderReview = "CASE_STATE_UNDER_REVIEW",
        /// 已上报.
        Reported = "CASE_STATE_REPORTED",
        /// 回访评价.
        Rating = "CASE_STATE_RATING",
        /// 整改中.
        Rectifying = "CASE_STATE_RECTIFYING",
        /// 办结.
        Closed = "CASE_STATE_CLOSED",
        /// 不予受理.
        Declined = "CASE_STATE_DECLINED",
    }
}

impl CaseState {
    /// Closed or declined: nothing more happens.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Closed | Self::Declined)
    }
}

named_enum! {
    /// Where a case's callback (回访) stands: what rating and closing wait for.
    CallbackOutcome {
        /// 待回访: neither reached nor excused yet.
        Pending = "CALLBACK_OUTCOME_PENDING",
        /// 已回访: the reporter was reached.
        Reached = "CALLBACK_OUTCOME_REACHED",
        /// 匿名诉求: the street recorded that the reporter is anonymous.
        Anonymous = "CALLBACK_OUTCOME_ANONYMOUS",
        /// 多次联系不上: the configured number of attempts, none reached.
        Unreachable = "CALLBACK_OUTCOME_UNREACHABLE",
    }
}

impl CallbackOutcome {
    /// Cases stored before callbacks were required: nothing recorded yet.
    pub fn pending() -> Self {
        Self::Pending
    }
}

named_enum! {
    /// How urgent a case is.
    Urgency {
        /// 紧急.
        Emergency = "URGENCY_EMERGENCY",
        /// 加急.
        Urgent = "URGENCY_URGENT",
        /// 一般.
        Normal = "URGENCY_NORMAL",
    }
}

named_enum! {
    /// The triage decision (研判结论).
    TriageDecision {
        /// 街道自办.
        SolveAtStreet = "TRIAGE_DECISION_SOLVE_AT_STREET",
        /// 启动呼应程序.
        StartCall = "TRIAGE_DECISION_START_CALL",
        /// 不予受理.
        Decline = "TRIAGE_DECISION_DECLINE",
    }
}

named_enum! {
    /// Where a call stands; see `CallState` in call.proto.
    CallState {
        /// 待签收.
        PendingSign = "CALL_STATE_PENDING_SIGN",
        /// 签收超时.
        SignOverdue = "CALL_STATE_SIGN_OVERDUE",
        /// 已签收.
        Signed = "CALL_STATE_SIGNED",
        /// 已拟定人选.
        Designated = "CALL_STATE_DESIGNATED",
        /// 撤回.
        Withdrawn = "CALL_STATE_WITHDRAWN",
        /// 办结.
        Completed = "CALL_STATE_COMPLETED",
    }
}

impl CallState {
    /// Signed in some form (and not withdrawn).
    pub fn is_signed(self) -> bool {
        matches!(self, Self::Signed | Self::Designated | Self::Completed)
    }
}

named_enum! {
    /// A designated person's check-in (报到).
    CheckInStatus {
        /// Not yet.
        Pending = "CHECK_IN_STATUS_PENDING",
        /// 按时到位.
        OnTime = "CHECK_IN_STATUS_ON_TIME",
        /// 慢到位.
        Late = "CHECK_IN_STATUS_LATE",
        /// 不到位.
        Absent = "CHECK_IN_STATUS_ABSENT",
    }
}

named_enum! {
    /// Regular or rectification task.
    TaskKind {
        /// From a consultation.
        Regular = "TASK_KIND_REGULAR",
        /// From a rectification.
        Rectification = "TASK_KIND_RECTIFICATION",
    }
}

named_enum! {
    /// Where a task stands; see `TaskState` in task.proto.
    TaskState {
        /// 办理中.
        Open = "TASK_STATE_OPEN",
        /// 已反馈.
        FeedbackSubmitted = "TASK_STATE_FEEDBACK_SUBMITTED",
        /// 退回.
        Returned = "TASK_STATE_RETURNED",
        /// 审核通过.
        Accepted = "TASK_STATE_ACCEPTED",
    }
}

named_enum! {
    /// A feedback's review state.
    FeedbackState {
        /// 待审核.
        Submitted = "FEEDBACK_STATE_SUBMITTED",
        /// 审核通过.
        Accepted = "FEEDBACK_STATE_ACCEPTED",
        /// 退回.
        Returned = "FEEDBACK_STATE_RETURNED",
    }
}

named_enum! {
    /// The street's verdict on feedback.
    ReviewDecision {
        /// 审核通过.
        Accept = "REVIEW_DECISION_ACCEPT",
        /// 退回.
        Return = "REVIEW_DECISION_RETURN",
    }
}

named_enum! {
    /// Satisfaction (满意度).
    Satisfaction {
        /// 满意.
        Satisfied = "SATISFACTION_SATISFIED",
        /// 基本满意.
        BasicallySatisfied = "SATISFACTION_BASICALLY_SATISFIED",
        /// 不满意.
        Dissatisfied = "SATISFACTION_DISSATISFIED",
    }
}

named_enum! {
    /// Where a rectification stands; see `RectificationState` in task.proto.
    RectificationState {
        /// Required.
        Open = "RECTIFICATION_STATE_OPEN",
        /// Fed back.
        FeedbackSubmitted = "RECTIFICATION_STATE_FEEDBACK_SUBMITTED",
        /// Accepted, awaiting re-rating.
        Accepted = "RECTIFICATION_STATE_ACCEPTED",
        /// Closed by a re-rating.
        Closed = "RECTIFICATION_STATE_CLOSED",
    }
}

/// The reporter (诉求人): personal data, sealed at rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reporter {
    /// Name.
    pub name: String,
    /// Phone.
    pub phone: String,
    /// Identity card number; may be empty.
    pub id_number: String,
    /// Asked for confidentiality (要求保密).
    pub confidential: bool,
}

/// The record of a triage (研判).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Triage {
    /// The decision.
    pub decision: TriageDecision,
    /// Reasoning.
    pub reason: String,
    /// `DECLINE_REASON_*` name; empty unless declined.
    pub decline_reason: String,
    /// The repeated case, for DUPLICATE.
    pub duplicate_of_case_id: Option<Uuid>,
    /// Who.
    pub triaged_by: Actor,
    /// When.
    pub triage_time: DateTime<Utc>,
}

/// A case (案件) as stored in `cases.doc` (the reporter is sealed apart, and the links,
/// consultations, callbacks and calls live in their own tables).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Id.
    pub id: Uuid,
    /// Owning street.
    pub street_id: String,
    /// Community; may be empty.
    pub community_id: String,
    /// Grid; may be empty.
    pub grid_id: String,
    /// `CHANNEL_*` name.
    pub channel: String,
    /// The channel's ticket number; may be empty.
    pub source_reference: String,
    /// 诉求分类.
    pub category: String,
    /// Title.
    pub title: String,
    /// 诉求内容.
    pub description: String,
    /// Where.
    pub place: Place,
    /// How urgent.
    pub urgency: Urgency,
    /// Where it stands.
    pub state: CaseState,
    /// The latest triage.
    pub triage: Option<Triage>,
    /// A deadline is missed and not remedied.
    pub overdue: bool,
    /// 受理人.
    pub created_by: Actor,
    /// Intake time.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// Close or decline time.
    pub close_time: Option<DateTime<Utc>>,
    /// 办结说明.
    pub close_summary: String,
    /// Whether the reporter was called back (回访), or why not (see [`super::callback`]).
    #[serde(default = "CallbackOutcome::pending")]
    pub callback_outcome: CallbackOutcome,
    /// The dispatch catalogue's rule it was accepted under (派单目录); `None` for cases
    /// from before the catalogue.
    #[serde(default)]
    pub catalogue: Option<super::catalogue::CaseRule>,
}

/// The staff a call asks for (报到人员需求).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRequirement {
    /// How many; at least 1.
    pub count: i32,
    /// `QUALIFICATION_*` name; `QUALIFICATION_UNSPECIFIED` for none.
    pub qualification: String,
    /// Further wishes.
    pub note: String,
}

/// One designated person (拟定人选) and their check-in (报到).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Designation {
    /// The person.
    pub person: PersonRef,
    /// Check-in status.
    pub check_in_status: CheckInStatus,
    /// Server time of the check-in.
    pub check_in_time: Option<DateTime<Utc>>,
    /// The device's time, as sent.
    pub check_in_device_time: Option<DateTime<Utc>>,
    /// Where.
    pub check_in_location: Option<GeoPoint>,
    /// Metres from the report place.
    pub check_in_distance_meters: f64,
    /// A street dispatcher who checked the person in.
    pub check_in_recorded_by: Option<Actor>,
    /// 到位不作为 recorded.
    pub inaction_recorded: bool,
    /// The street's account of it.
    pub inaction_note: String,
}

/// A call (呼叫) to one department, as stored in `calls.doc` (designations apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// The calling street.
    pub street_id: String,
    /// The department called.
    pub department_id: String,
    /// Its station serving the street, if the roster knows one.
    pub station_id: String,
    /// 需协调的具体事项.
    pub matters: String,
    /// 预期解决目标.
    pub expected_goal: String,
    /// 报到人员需求.
    pub staff_requirement: StaffRequirement,
    /// 指定时间.
    pub report_time: DateTime<Utc>,
    /// 指定地点.
    pub report_place: Place,
    /// After this, absent.
    pub check_in_close_time: DateTime<Utc>,
    /// Accepted check-in distance.
    pub check_in_radius_meters: f64,
    /// 签收时限.
    pub sign_deadline: DateTime<Utc>,
    /// Where it stands.
    pub state: CallState,
    /// When signed.
    pub signed_time: Option<DateTime<Utc>>,
    /// Who signed.
    pub signed_by: Option<PersonRef>,
    /// Signed after the deadline.
    pub signed_late: bool,
    /// The designated people; loaded from `designations`.
    #[serde(skip)]
    pub designations: Vec<Designation>,
    /// When last designated.
    pub designate_time: Option<DateTime<Utc>>,
    /// The check-in window has closed.
    pub check_in_closed: bool,
    /// Required but never designated, at check-in close.
    pub shortfall_count: i32,
    /// The reporter's contact was shared with the department.
    pub contact_shared: bool,
    /// When shared.
    pub contact_share_time: Option<DateTime<Utc>>,
    /// Why withdrawn.
    pub withdraw_reason: String,
    /// Who started it.
    pub created_by: Actor,
    /// When sent.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
}

/// A consultation (协商).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consultation {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// When the meeting took place.
    pub meeting_time: DateTime<Utc>,
    /// Where.
    pub place: Place,
    /// Who attended.
    pub attendee_person_ids: Vec<String>,
    /// 研判分析.
    pub analysis: String,
    /// 解决方案.
    pub plan: String,
    /// The tasks it fixed.
    pub task_ids: Vec<Uuid>,
    /// Who recorded it.
    pub recorded_by: Actor,
    /// When recorded.
    pub create_time: DateTime<Utc>,
}

/// A progress note (进度).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressReport {
    /// Id.
    pub id: Uuid,
    /// Text.
    pub text: String,
    /// Evidence.
    pub attachments: Vec<AttachmentRef>,
    /// Who.
    pub reported_by: PersonRef,
    /// When.
    pub create_time: DateTime<Utc>,
}

/// A department's feedback (反馈).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// Id.
    pub id: Uuid,
    /// The task.
    pub task_id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// The department.
    pub department_id: String,
    /// 处置过程.
    pub text: String,
    /// 办理意见.
    pub handling_opinion: String,
    /// 影像资料.
    pub attachments: Vec<AttachmentRef>,
    /// 整改反馈.
    pub is_rectification: bool,
    /// Review state.
    pub state: FeedbackState,
    /// At or before the window end.
    pub on_time: bool,
    /// Who.
    pub submitted_by: PersonRef,
    /// When.
    pub submit_time: DateTime<Utc>,
    /// The street's comment.
    pub review_comment: String,
    /// Who reviewed.
    pub reviewed_by: Option<PersonRef>,
    /// When reviewed.
    pub review_time: Option<DateTime<Utc>>,
}

/// A task (任务), as stored in `tasks.doc` (progress and feedback apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// The department's call.
    pub call_id: Uuid,
    /// The department.
    pub department_id: String,
    /// Regular or rectification.
    pub kind: TaskKind,
    /// The consultation that fixed it.
    pub consultation_id: Option<Uuid>,
    /// The rectification it carries out.
    pub rectification_id: Option<Uuid>,
    /// What to do.
    pub description: String,
    /// Window start.
    pub window_start: DateTime<Utc>,
    /// Window end.
    pub window_end: DateTime<Utc>,
    /// Where it stands.
    pub state: TaskState,
    /// The window ended before completion (任务超时).
    pub overdue: bool,
    /// Set on acceptance.
    pub completed_on_time: bool,
    /// Progress notes; loaded apart.
    #[serde(skip)]
    pub progress_reports: Vec<ProgressReport>,
    /// Feedback history; loaded apart.
    #[serde(skip)]
    pub feedback: Vec<Feedback>,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// Accepted.
    pub complete_time: Option<DateTime<Utc>>,
}

impl Task {
    /// Still to be worked on (OPEN or RETURNED).
    pub fn is_open(&self) -> bool {
        matches!(self.state, TaskState::Open | TaskState::Returned)
    }
}

/// A callback (回访).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// `CALLBACK_METHOD_*` name.
    pub method: String,
    /// Reached.
    pub reached: bool,
    /// The reporter's satisfaction when reached.
    pub reporter_satisfaction: Option<Satisfaction>,
    /// 诉求人意见.
    pub reporter_opinion: String,
    /// When it took place.
    pub callback_time: DateTime<Utc>,
    /// Recorded in place of an attempt: the reporter is anonymous (匿名), no callback possible.
    #[serde(default)]
    pub reporter_anonymous: bool,
    /// Who recorded it.
    pub recorded_by: Actor,
    /// When recorded.
    pub create_time: DateTime<Utc>,
}

/// A rating (评价).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// The rating street.
    pub street_id: String,
    /// The department rated.
    pub department_id: String,
    /// The department's calls it covers.
    pub call_ids: Vec<Uuid>,
    /// 满意度.
    pub satisfaction: Satisfaction,
    /// Comment.
    pub comment: String,
    /// Who.
    pub rated_by: PersonRef,
    /// When.
    pub create_time: DateTime<Utc>,
    /// The rating it replaces.
    pub supersedes_rating_id: Option<Uuid>,
    /// The rectification after which it was given.
    pub rectification_id: Option<Uuid>,
    /// The rating that replaced it.
    pub superseded_by_rating_id: Option<Uuid>,
    /// Current.
    pub current: bool,
}

/// A rectification (整改).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rectification {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// The department.
    pub department_id: String,
    /// The dissatisfied rating.
    pub rating_id: Uuid,
    /// The yardstick consultation.
    pub consultation_id: Option<Uuid>,
    /// 整改要求.
    pub requirement: String,
    /// 整改时限.
    pub due_time: DateTime<Utc>,
    /// Where it stands.
    pub state: RectificationState,
    /// The carrying task.
    pub task_id: Uuid,
    /// Due time passed before acceptance.
    pub overdue: bool,
    /// The re-rating that closed it.
    pub rerating_id: Option<Uuid>,
    /// Who required it.
    pub required_by: PersonRef,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
}

/// One department's part of a case report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentResult {
    /// The department.
    pub department_id: String,
    /// Summary.
    pub summary: String,
    /// Accepted feedback it rests on.
    pub feedback_ids: Vec<Uuid>,
}

/// The case report (办理报告).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    /// The case.
    pub case_id: Uuid,
    /// Overall account.
    pub summary: String,
    /// Per department.
    pub department_results: Vec<DepartmentResult>,
    /// Attachments.
    pub attachments: Vec<AttachmentRef>,
    /// Who submitted.
    pub submitted_by: PersonRef,
    /// When.
    pub submit_time: DateTime<Utc>,
}

/// A stored file's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// The reference (id, name, type, size, digest).
    pub file: AttachmentRef,
    /// The case; `None` while staged.
    pub case_id: Option<Uuid>,
    /// Who uploaded it.
    pub uploaded_by: Actor,
    /// The uploader's subject (staged files are theirs only).
    pub uploader_subject: String,
    /// When.
    pub create_time: DateTime<Utc>,
    /// Staged files expire.
    pub expire_time: Option<DateTime<Utc>>,
}
