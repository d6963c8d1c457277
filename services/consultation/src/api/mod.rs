//! gRPC handlers: decode, validate into domain values, authorize, run the domain rules and
//! the store in one transaction (with the journal), map back. One-line delegations here;
//! bodies in the submodules by area.

pub mod convert;
mod decisions;
mod plans;
mod records;
mod watch;

use std::{pin::Pin, sync::Arc};

use chrono::{DateTime, Utc};
use futures_util::Stream;
use minhu_grpc::{Principal, Rpcs, caller, uuid};
use minhu_proto::consultation::v1::{self as pb, consultation_service_server::ConsultationService};
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    Clock,
    clients::Roster,
    deadlines::Staged,
    domain::{
        access,
        model::{Decision, Plan},
    },
    error::ConsultationError,
    feed::Head,
    store::{decisions as decision_store, plans as plan_store},
};

/// Resource names in NOT_FOUND.
const PLAN: &str = "minhu.consultation.v1.Plan";
const PLAN_OPINION: &str = "minhu.consultation.v1.PlanOpinion";
const DECISION: &str = "minhu.consultation.v1.Decision";
const DECISION_OPINION: &str = "minhu.consultation.v1.DecisionOpinion";
/// A plan or a decision, named by an id that could be either (trail, watch).
const SUBJECT: &str = "minhu.consultation.v1.Plan or minhu.consultation.v1.Decision";

/// What the handlers share.
pub struct Deps {
    /// The database.
    pub pool: PgPool,
    /// The roster.
    pub roster: Roster,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Working time.
    pub calendar: minhu_deadlines::WorkCalendar,
    /// Working days to answer an opinion item.
    pub answer_working_days: u32,
    /// Where requests schedule and cancel deadlines.
    pub scheduler: minhu_deadlines::Deadlines,
    /// The feed's head.
    pub head: Head,
    /// Idle time before a watch sends a heartbeat.
    pub heartbeat: std::time::Duration,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").field("roster", &self.roster).finish_non_exhaustive()
    }
}

/// Consultation's handlers.
#[derive(Debug, Clone)]
pub struct Consultation {
    d: Arc<Deps>,
}

impl Consultation {
    /// Handlers over `deps`.
    pub fn new(deps: Deps) -> Self {
        Self { d: Arc::new(deps) }
    }

    fn now(&self) -> DateTime<Utc> {
        crate::to_micros(self.d.clock.now())
    }

    /// A request's deadline changes, made in its transaction and indexed after it commits.
    fn staged(&self) -> Staged {
        Staged::new(self.d.scheduler.clone())
    }
}

type Reply<T> = Result<Response<T>, Status>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The service's RPCs: idempotency scopes and paging.
static RPCS: Rpcs = Rpcs::new("minhu.consultation.v1.ConsultationService");

/// A plan (locked when `lock`) that `p` may read; NOT_FOUND, exactly as for a missing one,
/// otherwise.
async fn readable_plan(
    conn: &mut PgConnection,
    p: &Principal,
    id: Uuid,
    lock: bool,
) -> Result<Plan, ConsultationError> {
    match plan_store::get(conn, id, lock).await? {
        Some(plan) if access::may_read(p, &plan.department_id, &plan.street_ids) => Ok(plan),
        _ => Err(ConsultationError::not_found(PLAN, id)),
    }
}

/// A decision (locked when `lock`) that `p` may read; NOT_FOUND otherwise.
async fn readable_decision(
    conn: &mut PgConnection,
    p: &Principal,
    id: Uuid,
    lock: bool,
) -> Result<Decision, ConsultationError> {
    match decision_store::get(conn, id, lock).await? {
        Some(d) if access::may_read(p, &d.department_id, &d.street_ids) => Ok(d),
        _ => Err(ConsultationError::not_found(DECISION, id)),
    }
}

/// Checks that `p` may read the plan or decision `id`; one NOT_FOUND for missing and foreign
/// alike, whichever kind the id names.
async fn readable_subject(conn: &mut PgConnection, p: &Principal, id: Uuid) -> Result<(), ConsultationError> {
    if let Some(plan) = plan_store::get(conn, id, false).await? {
        if access::may_read(p, &plan.department_id, &plan.street_ids) {
            return Ok(());
        }
    } else if let Some(d) = decision_store::get(conn, id, false).await?
        && access::may_read(p, &d.department_id, &d.street_ids)
    {
        return Ok(());
    }
    Err(ConsultationError::not_found(SUBJECT, id))
}

/// PERMISSION_DENIED unless `p` acts for `department_id` with a department role.
fn require_department(p: &Principal, department_id: &str, what: &str) -> Result<(), ConsultationError> {
    if access::department_of(p) == Some(department_id) {
        Ok(())
    } else {
        Err(ConsultationError::denied(format!("only the department `{department_id}` may {what}")))
    }
}

/// The street `p` leads, or PERMISSION_DENIED.
fn require_street_leader<'p>(p: &'p Principal, what: &str) -> Result<&'p str, ConsultationError> {
    access::street_led_by(p).ok_or_else(|| ConsultationError::denied(format!("only a street leader may {what}")))
}

/// Runs a handler body and turns its error into a status.
async fn reply<T>(body: impl Future<Output = Result<T, ConsultationError>>) -> Reply<T> {
    body.await.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl ConsultationService for Consultation {
    async fn create_plan(&self, r: Request<pb::CreatePlanRequest>) -> Reply<pb::Plan> {
        reply(plans::create_plan(self, r)).await
    }
    async fn get_plan(&self, r: Request<pb::GetPlanRequest>) -> Reply<pb::Plan> {
        reply(plans::get_plan(self, r)).await
    }
    async fn list_plans(&self, r: Request<pb::ListPlansRequest>) -> Reply<pb::ListPlansResponse> {
        reply(plans::list_plans(self, r)).await
    }
    async fn update_plan(&self, r: Request<pb::UpdatePlanRequest>) -> Reply<pb::Plan> {
        reply(plans::update_plan(self, r)).await
    }
    async fn advance_plan_stage(&self, r: Request<pb::AdvancePlanStageRequest>) -> Reply<pb::Plan> {
        reply(plans::advance_plan_stage(self, r)).await
    }
    async fn submit_plan_opinion(&self, r: Request<pb::SubmitPlanOpinionRequest>) -> Reply<pb::PlanOpinion> {
        reply(plans::submit_plan_opinion(self, r)).await
    }
    async fn list_plan_opinions(&self, r: Request<pb::ListPlanOpinionsRequest>) -> Reply<pb::ListPlanOpinionsResponse> {
        reply(plans::list_plan_opinions(self, r)).await
    }
    async fn answer_plan_opinion(&self, r: Request<pb::AnswerPlanOpinionRequest>) -> Reply<pb::PlanOpinion> {
        reply(plans::answer_plan_opinion(self, r)).await
    }
    async fn create_decision(&self, r: Request<pb::CreateDecisionRequest>) -> Reply<pb::Decision> {
        reply(decisions::create_decision(self, r)).await
    }
    async fn get_decision(&self, r: Request<pb::GetDecisionRequest>) -> Reply<pb::Decision> {
        reply(decisions::get_decision(self, r)).await
    }
    async fn list_decisions(&self, r: Request<pb::ListDecisionsRequest>) -> Reply<pb::ListDecisionsResponse> {
        reply(decisions::list_decisions(self, r)).await
    }
    async fn submit_decision_opinion(
        &self,
        r: Request<pb::SubmitDecisionOpinionRequest>,
    ) -> Reply<pb::DecisionOpinion> {
        reply(decisions::submit_decision_opinion(self, r)).await
    }
    async fn record_adoption(&self, r: Request<pb::RecordAdoptionRequest>) -> Reply<pb::DecisionOpinion> {
        reply(decisions::record_adoption(self, r)).await
    }
    async fn list_decision_opinions(
        &self,
        r: Request<pb::ListDecisionOpinionsRequest>,
    ) -> Reply<pb::ListDecisionOpinionsResponse> {
        reply(decisions::list_decision_opinions(self, r)).await
    }
    async fn finalize_decision(&self, r: Request<pb::FinalizeDecisionRequest>) -> Reply<pb::Decision> {
        reply(decisions::finalize_decision(self, r)).await
    }
    async fn list_trail_entries(&self, r: Request<pb::ListTrailEntriesRequest>) -> Reply<pb::ListTrailEntriesResponse> {
        reply(records::list_trail_entries(self, r)).await
    }
    async fn verify_trail(&self, r: Request<pb::VerifyTrailRequest>) -> Reply<pb::VerifyTrailResponse> {
        reply(records::verify_trail(self, r)).await
    }
    type WatchConsultationsStream = BoxStream<pb::WatchConsultationsResponse>;
    async fn watch_consultations(
        &self,
        r: Request<pb::WatchConsultationsRequest>,
    ) -> Reply<Self::WatchConsultationsStream> {
        reply(watch::watch_consultations(self, r)).await
    }
    async fn list_escalations(&self, r: Request<pb::ListEscalationsRequest>) -> Reply<pb::ListEscalationsResponse> {
        reply(records::list_escalations(self, r)).await
    }
    async fn get_consultation_report(
        &self,
        r: Request<pb::GetConsultationReportRequest>,
    ) -> Reply<pb::ConsultationReport> {
        reply(records::get_consultation_report(self, r)).await
    }
}
