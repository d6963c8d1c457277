//! The records: a plan with its streets' stage opinions, a decision with its streets'
//! opinion items and the department's answers, escalations. Stored as JSON documents
//! (serde) beside the columns lists filter on.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::named_enum;

/// Who did something, as the trail and the records keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Person id (or service name).
    pub id: String,
    /// Display name at the time.
    pub name: String,
    /// `street/<id>`, `department/<id>`, `district/<id>`, `service/<name>`.
    pub organization: String,
}

impl Actor {
    /// The service itself (deadline escalations).
    pub fn service() -> Self {
        Self {
            id: "minhu-consultation".into(),
            name: "minhu-consultation".into(),
            organization: "service/minhu-consultation".into(),
        }
    }

    /// The department id when the actor acts for a department.
    pub fn department_id(&self) -> &str {
        self.organization.strip_prefix("department/").unwrap_or("")
    }
}

named_enum!(
    /// What kind of plan.
    PlanKind { CommunityConstruction = "PLAN_KIND_COMMUNITY_CONSTRUCTION", PublicServiceFacility = "PLAN_KIND_PUBLIC_SERVICE_FACILITY" }
);

named_enum!(
    /// A plan's stage: drafting (编制) → construction (建设) → acceptance (验收) → completed.
    PlanStage {
        Drafting = "PLAN_STAGE_DRAFTING",
        Construction = "PLAN_STAGE_CONSTRUCTION",
        Acceptance = "PLAN_STAGE_ACCEPTANCE",
        Completed = "PLAN_STAGE_COMPLETED",
    }
);

impl PlanStage {
    /// The stage after this one.
    pub fn next(self) -> Option<Self> {
        match self {
            Self::Drafting => Some(Self::Construction),
            Self::Construction => Some(Self::Acceptance),
            Self::Acceptance => Some(Self::Completed),
            Self::Completed => None,
        }
    }
}

named_enum!(
    /// Agree, disagree or conditional.
    Stance { Agree = "OPINION_STANCE_AGREE", Disagree = "OPINION_STANCE_DISAGREE", Conditional = "OPINION_STANCE_CONDITIONAL" }
);

named_enum!(
    /// A street's acceptance verdict (验收).
    Verdict { SignedOff = "ACCEPTANCE_VERDICT_SIGNED_OFF", Objected = "ACCEPTANCE_VERDICT_OBJECTED" }
);

named_enum!(
    /// The department's answer to an opinion item (采纳).
    AdoptionResult {
        Adopted = "ADOPTION_RESULT_ADOPTED",
        PartiallyAdopted = "ADOPTION_RESULT_PARTIALLY_ADOPTED",
        NotAdopted = "ADOPTION_RESULT_NOT_ADOPTED",
    }
);

named_enum!(
    /// Decision or project.
    DecisionKind { MajorDecision = "DECISION_KIND_MAJOR_DECISION", MajorProject = "DECISION_KIND_MAJOR_PROJECT" }
);

named_enum!(
    /// Where a decision consultation stands.
    DecisionState {
        Soliciting = "DECISION_STATE_SOLICITING",
        AwaitingAdoption = "DECISION_STATE_AWAITING_ADOPTION",
        Concluded = "DECISION_STATE_CONCLUDED",
        Finalized = "DECISION_STATE_FINALIZED",
    }
);

named_enum!(
    /// Why a final decision is flagged.
    ComplianceIssue {
        ItemsUnanswered = "COMPLIANCE_ISSUE_ITEMS_UNANSWERED",
        StreetsSilent = "COMPLIANCE_ISSUE_STREETS_SILENT",
        StreetNotConsulted = "COMPLIANCE_ISSUE_STREET_NOT_CONSULTED",
    }
);

named_enum!(
    /// What an escalation is about.
    EscalationKind { ReplyOverdue = "ESCALATION_KIND_REPLY_OVERDUE", AnswerOverdue = "ESCALATION_KIND_ANSWER_OVERDUE" }
);

/// The department's answer to an opinion item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Adopted, partly or not.
    pub result: AdoptionResult,
    /// Why; never empty unless adopted.
    pub reason: String,
    /// Who answered.
    pub recorded_by: Actor,
    /// When.
    pub record_time: DateTime<Utc>,
}

/// One stage change of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTransition {
    /// Left.
    pub from: PlanStage,
    /// Entered.
    pub to: PlanStage,
    /// By.
    pub by: Actor,
    /// When.
    pub time: DateTime<Utc>,
    /// The department's note.
    pub note: String,
}

/// A plan (规划) and what its opinions say about its current stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: PlanKind,
    /// The owning department.
    pub department_id: String,
    /// Covered streets.
    pub street_ids: Vec<String>,
    /// What it is about.
    pub description: String,
    /// Current stage.
    pub stage: PlanStage,
    /// Reminder date for the current stage's opinions.
    pub opinion_deadline: Option<DateTime<Utc>>,
    /// Stage changes, oldest first.
    pub history: Vec<StageTransition>,
    /// Creator.
    pub created_by: Actor,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
    /// Derived: covered streets without a participation record on the current stage.
    pub pending_street_ids: Vec<String>,
    /// Derived: current-stage items awaiting the department's answer.
    pub unanswered: usize,
    /// Derived: acceptance objections (kept once completed).
    pub objections: Vec<PlanOpinion>,
}

/// A street's opinion item (or "no opinion" record, or acceptance verdict) on a plan stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOpinion {
    /// Id.
    pub id: Uuid,
    /// The plan.
    pub plan_id: Uuid,
    /// The street.
    pub street_id: String,
    /// The stage it is about.
    pub stage: PlanStage,
    /// Agree, disagree, conditional; none for "no opinion".
    pub stance: Option<Stance>,
    /// The opinion.
    pub text: String,
    /// How the street took part.
    pub participation: String,
    /// The street leader who signed.
    pub signed_by: Actor,
    /// When.
    pub create_time: DateTime<Utc>,
    /// The department's answer.
    pub answer: Option<Answer>,
    /// Took part with no opinion (无意见).
    pub no_opinion: bool,
    /// Acceptance sign-off or objection.
    pub acceptance: Option<Verdict>,
    /// When the answer is due, for an item that needs one.
    #[serde(default)]
    pub answer_deadline: Option<DateTime<Utc>>,
    /// The answer deadline passed unanswered.
    #[serde(default)]
    pub answer_overdue: bool,
}

impl PlanOpinion {
    /// Whether the department owes this item an answer: anything with something to say.
    pub fn needs_answer(&self) -> bool {
        !self.no_opinion && !self.text.is_empty()
    }
}

/// A place a decision names, with the street the roster put it in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// What is there.
    pub name: String,
    /// Latitude (WGS-84).
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
    /// The street containing it.
    pub street_id: String,
}

/// A document attached to a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Attachment id.
    pub id: String,
    /// File name.
    pub file_name: String,
    /// Media type.
    pub content_type: String,
    /// Size.
    pub size_bytes: i64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// One compliance flag of a final decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    /// What was wrong.
    pub issue: ComplianceIssue,
    /// The street or item.
    pub subject: String,
    /// For a person.
    pub description: String,
}

/// A department's major decision or project and its consultation (决策建议).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Id.
    pub id: Uuid,
    /// The consulting department.
    pub department_id: String,
    /// The streets consulted: named by hand ∪ affected.
    pub street_ids: Vec<String>,
    /// The streets the places lie in.
    pub affected_street_ids: Vec<String>,
    /// The places named.
    pub places: Vec<Place>,
    /// Decision or project.
    pub kind: DecisionKind,
    /// Subject.
    pub subject: String,
    /// Description.
    pub description: String,
    /// Documents.
    pub documents: Vec<Document>,
    /// When replies are due.
    pub reply_deadline: DateTime<Utc>,
    /// The reply time in working days, if given that way.
    pub reply_working_days: u32,
    /// Where it stands.
    pub state: DecisionState,
    /// Derived: consulted streets without any reply.
    pub pending_street_ids: Vec<String>,
    /// The reply deadline passed with streets silent.
    pub reply_overdue: bool,
    /// Flags of the final decision.
    pub flags: Vec<Flag>,
    /// When finalised.
    pub finalize_time: Option<DateTime<Utc>>,
    /// The final decision.
    pub final_summary: String,
    /// Creator.
    pub created_by: Actor,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
}

/// A street's opinion item on a decision, and the department's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionOpinion {
    /// Id.
    pub id: Uuid,
    /// The decision.
    pub decision_id: Uuid,
    /// The decision's department.
    pub department_id: String,
    /// The street.
    pub street_id: String,
    /// Stance.
    pub stance: Stance,
    /// The opinion and suggestions.
    pub text: String,
    /// The street leader.
    pub signed_by: Actor,
    /// When.
    pub create_time: DateTime<Utc>,
    /// The answer (采纳 feedback).
    pub adoption: Option<Answer>,
    /// When the answer is due.
    pub answer_deadline: DateTime<Utc>,
    /// The answer deadline passed unanswered.
    pub answer_overdue: bool,
}

/// An escalation (督办).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// Id.
    pub id: Uuid,
    /// Reply or answer overdue.
    pub kind: EscalationKind,
    /// The decision, for a decision's escalation.
    pub decision_id: Option<Uuid>,
    /// The plan, for a plan item's.
    #[serde(default)]
    pub plan_id: Option<Uuid>,
    /// The item, for answers.
    pub opinion_id: Option<Uuid>,
    /// The department.
    pub department_id: String,
    /// The street.
    pub street_id: String,
    /// The deadline missed.
    pub due_time: DateTime<Utc>,
    /// When recorded.
    pub escalate_time: DateTime<Utc>,
    /// Whom it is addressed to.
    pub addressed_to: Vec<String>,
}

/// The distinct values of `ids`, in order of first appearance.
pub fn distinct(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    ids.into_iter().filter(|id| seen.insert(id.clone())).collect()
}
