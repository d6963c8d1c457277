//! gRPC handlers: decode, authorize, validate, look up the roster (never under a lock), then
//! one transaction guarded by the request's idempotency key: lock in one order
//! (solicitation or plan or the person's leave, then deadline rows), decide in
//! [`crate::domain`], write, stage deadlines; index them after the commit. Bodies by area.

mod compliance;
mod convert;
mod interviews;
mod leave;
mod secondees;
mod solicitations;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use minhu_deadlines::{Clock, Deadlines, WorkCalendar};
use minhu_grpc::{FieldViolations, OrgKind, PageRequest, Principal, Rpcs};
use minhu_proto::{
    common::v1 as common,
    personnel::v1::{self as pb, personnel_service_server::PersonnelService},
};
use minhu_store::{Idempotency, TxFuture};
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    clients::Roster,
    deadlines::Staged,
    domain::{self, Caller},
    error::PersonnelError,
    store::{Ref, Scope},
};

/// Page size when the caller asks for none.
const DEFAULT_PAGE: u32 = 50;
/// Largest page served.
const MAX_PAGE: u32 = 500;
/// Longest free text (proposals, opinions, decisions, reasons).
const MAX_TEXT: usize = 4000;

/// What the handlers share.
pub struct Deps {
    /// The database.
    pub pool: PgPool,
    /// The roster.
    pub roster: Roster,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Working time: reply deadlines and leave days.
    pub calendar: WorkCalendar,
    /// Where requests schedule and cancel deadlines.
    pub scheduler: Deadlines,
    /// Working days a street has to reply by default.
    pub reply_working_days: u32,
}

/// Personnel's handlers.
#[derive(Clone)]
pub struct Personnel {
    d: Arc<Deps>,
}

impl std::fmt::Debug for Personnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Personnel").finish_non_exhaustive()
    }
}

impl Personnel {
    /// Handlers over `deps`.
    pub fn new(deps: Deps) -> Self {
        Self { d: Arc::new(deps) }
    }

    fn now(&self) -> DateTime<Utc> {
        self.d.clock.now()
    }

    fn today(&self) -> NaiveDate {
        self.now().with_timezone(&self.d.calendar.offset()).date_naive()
    }

    fn staged(&self) -> Staged {
        Staged::new(self.d.scheduler.clone())
    }

    /// The write path ([`minhu_store::write`]): a stored first result for `key` returns at
    /// once; otherwise `lookups` (the roster; no transaction, no lock), then `body` in one
    /// transaction that also stores the result.
    async fn write_after<M, L, LF, F>(&self, key: &Idempotency, lookups: LF, body: F) -> Result<M, PersonnelError>
    where
        M: prost::Message + Default,
        LF: Future<Output = Result<L, PersonnelError>>,
        F: for<'c> FnOnce(&'c mut PgConnection, L) -> TxFuture<'c, M, PersonnelError>,
    {
        minhu_store::write(&self.d.pool, key, lookups, body).await
    }

    /// The write path for a request that needs no look-ups.
    async fn write<M, F>(&self, key: &Idempotency, body: F) -> Result<M, PersonnelError>
    where
        M: prost::Message + Default,
        F: for<'c> FnOnce(&'c mut PgConnection) -> TxFuture<'c, M, PersonnelError>,
    {
        minhu_store::write(&self.d.pool, key, std::future::ready(Ok(())), move |tx, ()| body(tx)).await
    }

    /// Reads the roster's leadership changes since the last check and flags those no
    /// decision covers (the background check and CheckLeadershipChanges).
    pub async fn check_leadership_changes(&self) -> Result<pb::CheckLeadershipChangesResponse, PersonnelError> {
        compliance::check(self).await
    }
}

type Reply<T> = Result<Response<T>, Status>;

async fn reply<T>(body: impl Future<Output = Result<T, PersonnelError>>) -> Reply<T> {
    body.await.map(Response::new).map_err(Status::from)
}

/// Personnel's RPCs: what scopes idempotency keys and page tokens.
static RPCS: Rpcs = Rpcs::new("minhu.personnel.v1.PersonnelService").with_pages(DEFAULT_PAGE, MAX_PAGE);

/// The caller and the screened message (the shared input screen).
fn caller<T: prost::Message>(request: Request<T>) -> Result<(Principal, T), PersonnelError> {
    Ok(minhu_grpc::caller(request)?)
}

fn key(
    method: &str,
    p: &Principal,
    request_id: &str,
    request: &impl prost::Message,
) -> Result<Idempotency, PersonnelError> {
    Ok(RPCS.idempotency(method, p, request_id, request)?)
}

fn page<K: serde::Serialize + serde::de::DeserializeOwned>(
    size: i32,
    token: &str,
    query: &[&str],
) -> Result<PageRequest<K>, PersonnelError> {
    Ok(RPCS.page(size, token, query)?)
}

fn uuid(v: &mut FieldViolations, field: &str, value: &str) -> Uuid {
    if value.trim().is_empty() {
        v.add(field, "must not be empty");
        return Uuid::nil();
    }
    Uuid::parse_str(value.trim()).unwrap_or_else(|_| {
        v.add(field, "is not a valid id");
        Uuid::nil()
    })
}

/// A solicitation, plan, … id: malformed is INVALID_ARGUMENT.
fn id(field: &str, value: &str) -> Result<Uuid, PersonnelError> {
    let mut v = FieldViolations::new();
    let id = uuid(&mut v, field, value);
    v.into_result()?;
    Ok(id)
}

fn code(v: &mut FieldViolations, field: &str, value: &str) -> String {
    v.required_text(field, value, 63).to_owned()
}

fn date(v: &mut FieldViolations, field: &str, value: Option<&common::Date>) -> Option<NaiveDate> {
    let d = value?;
    let parsed = u32::try_from(d.month)
        .ok()
        .zip(u32::try_from(d.day).ok())
        .and_then(|(m, day)| NaiveDate::from_ymd_opt(d.year, m, day));
    if parsed.is_none() {
        v.add(field, "is not a valid date");
    }
    parsed
}

fn required_date(v: &mut FieldViolations, field: &str, value: Option<&common::Date>) -> NaiveDate {
    if value.is_none() {
        v.add(field, "is required");
    }
    date(v, field, value).unwrap_or_default()
}

fn year(v: &mut FieldViolations, field: &str, year: i32) {
    v.check((2000..=2100).contains(&year), field, "must be a year from 2000 to 2100");
}

/// Who the caller is, for the record.
fn me(p: &Principal) -> Ref {
    Ref {
        id: p.subject.clone(),
        name: p.name.clone(),
        department_id: if p.organization.kind == OrgKind::Department {
            p.organization.id.clone()
        } else {
            String::new()
        },
        station_id: String::new(),
    }
}

/// The filters of a list narrowed to what the caller may read; `None` when the filters ask
/// for what the caller may not see (an empty answer).
fn scope(p: &Principal, street: &str, department: &str) -> Result<Option<Scope>, PersonnelError> {
    let want = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let (street, department) = (want(street), want(department));
    Ok(match domain::caller(p) {
        Caller::District => Some(Scope { street_id: street, department_id: department }),
        Caller::Street(own) => match street {
            Some(s) if s != own => None,
            _ => Some(Scope { street_id: Some(own.to_owned()), department_id: department }),
        },
        Caller::Department(own) => match department {
            Some(d) if d != own => None,
            _ => Some(Scope { street_id: street, department_id: Some(own.to_owned()) }),
        },
        Caller::Other => {
            return Err(PersonnelError::denied("personnel records are for streets, departments and the district"));
        }
    })
}

fn total(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[tonic::async_trait]
impl PersonnelService for Personnel {
    async fn create_opinion_solicitation(
        &self,
        r: Request<pb::CreateOpinionSolicitationRequest>,
    ) -> Reply<pb::OpinionSolicitation> {
        reply(solicitations::create(self, r)).await
    }
    async fn get_opinion_solicitation(
        &self,
        r: Request<pb::GetOpinionSolicitationRequest>,
    ) -> Reply<pb::OpinionSolicitation> {
        reply(solicitations::get(self, r)).await
    }
    async fn list_opinion_solicitations(
        &self,
        r: Request<pb::ListOpinionSolicitationsRequest>,
    ) -> Reply<pb::ListOpinionSolicitationsResponse> {
        reply(solicitations::list(self, r)).await
    }
    async fn submit_opinion(&self, r: Request<pb::SubmitOpinionRequest>) -> Reply<pb::OpinionSolicitation> {
        reply(solicitations::submit_opinion(self, r)).await
    }
    async fn record_decision(&self, r: Request<pb::RecordDecisionRequest>) -> Reply<pb::OpinionSolicitation> {
        reply(solicitations::record_decision(self, r)).await
    }
    async fn withdraw_opinion_solicitation(
        &self,
        r: Request<pb::WithdrawOpinionSolicitationRequest>,
    ) -> Reply<pb::OpinionSolicitation> {
        reply(solicitations::withdraw(self, r)).await
    }
    async fn create_interview_plan(&self, r: Request<pb::CreateInterviewPlanRequest>) -> Reply<pb::InterviewPlan> {
        reply(interviews::create(self, r)).await
    }
    async fn get_interview_plan(&self, r: Request<pb::GetInterviewPlanRequest>) -> Reply<pb::InterviewPlan> {
        reply(interviews::get(self, r)).await
    }
    async fn list_interview_plans(
        &self,
        r: Request<pb::ListInterviewPlansRequest>,
    ) -> Reply<pb::ListInterviewPlansResponse> {
        reply(interviews::list(self, r)).await
    }
    async fn record_interview(&self, r: Request<pb::RecordInterviewRequest>) -> Reply<pb::InterviewPlan> {
        reply(interviews::record_interview(self, r)).await
    }
    async fn record_promotion(&self, r: Request<pb::RecordPromotionRequest>) -> Reply<pb::InterviewPlan> {
        reply(interviews::record_promotion(self, r)).await
    }
    async fn list_secondees(&self, r: Request<pb::ListSecondeesRequest>) -> Reply<pb::ListSecondeesResponse> {
        reply(secondees::list_secondees(self, r)).await
    }
    async fn record_secondee_evaluation(
        &self,
        r: Request<pb::RecordSecondeeEvaluationRequest>,
    ) -> Reply<pb::SecondeeEvaluation> {
        reply(secondees::record_evaluation(self, r)).await
    }
    async fn list_secondee_evaluations(
        &self,
        r: Request<pb::ListSecondeeEvaluationsRequest>,
    ) -> Reply<pb::ListSecondeeEvaluationsResponse> {
        reply(secondees::list_evaluations(self, r)).await
    }
    async fn set_commendation_ratio(
        &self,
        r: Request<pb::SetCommendationRatioRequest>,
    ) -> Reply<pb::CommendationRatio> {
        reply(secondees::set_ratio(self, r)).await
    }
    async fn get_commendation_quota(
        &self,
        r: Request<pb::GetCommendationQuotaRequest>,
    ) -> Reply<pb::CommendationQuota> {
        reply(secondees::quota(self, r)).await
    }
    async fn record_incentive_assessment(
        &self,
        r: Request<pb::RecordIncentiveAssessmentRequest>,
    ) -> Reply<pb::IncentiveAssessment> {
        reply(secondees::record_assessment(self, r)).await
    }
    async fn list_incentive_assessments(
        &self,
        r: Request<pb::ListIncentiveAssessmentsRequest>,
    ) -> Reply<pb::ListIncentiveAssessmentsResponse> {
        reply(secondees::list_assessments(self, r)).await
    }
    async fn set_incentive_coefficient(
        &self,
        r: Request<pb::SetIncentiveCoefficientRequest>,
    ) -> Reply<pb::IncentiveCoefficient> {
        reply(secondees::set_coefficient(self, r)).await
    }
    async fn list_incentive_coefficients(
        &self,
        r: Request<pb::ListIncentiveCoefficientsRequest>,
    ) -> Reply<pb::ListIncentiveCoefficientsResponse> {
        reply(secondees::list_coefficients(self, r)).await
    }
    async fn create_leave_application(
        &self,
        r: Request<pb::CreateLeaveApplicationRequest>,
    ) -> Reply<pb::LeaveApplication> {
        reply(leave::create(self, r)).await
    }
    async fn get_leave_application(&self, r: Request<pb::GetLeaveApplicationRequest>) -> Reply<pb::LeaveApplication> {
        reply(leave::get(self, r)).await
    }
    async fn list_leave_applications(
        &self,
        r: Request<pb::ListLeaveApplicationsRequest>,
    ) -> Reply<pb::ListLeaveApplicationsResponse> {
        reply(leave::list(self, r)).await
    }
    async fn approve_leave_application(
        &self,
        r: Request<pb::ApproveLeaveApplicationRequest>,
    ) -> Reply<pb::LeaveApplication> {
        reply(leave::approve(self, r)).await
    }
    async fn reject_leave_application(
        &self,
        r: Request<pb::RejectLeaveApplicationRequest>,
    ) -> Reply<pb::LeaveApplication> {
        reply(leave::reject(self, r)).await
    }
    async fn cancel_leave_application(
        &self,
        r: Request<pb::CancelLeaveApplicationRequest>,
    ) -> Reply<pb::LeaveApplication> {
        reply(leave::cancel(self, r)).await
    }
    async fn get_leave_balance(&self, r: Request<pb::GetLeaveBalanceRequest>) -> Reply<pb::LeaveBalance> {
        reply(leave::balance(self, r)).await
    }
    async fn set_leave_entitlement(&self, r: Request<pb::SetLeaveEntitlementRequest>) -> Reply<pb::LeaveBalance> {
        reply(leave::set_entitlement(self, r)).await
    }
    async fn list_station_head_committee_status(
        &self,
        r: Request<pb::ListStationHeadCommitteeStatusRequest>,
    ) -> Reply<pb::ListStationHeadCommitteeStatusResponse> {
        reply(compliance::committee_status(self, r)).await
    }
    async fn report_decision(&self, r: Request<pb::ReportDecisionRequest>) -> Reply<pb::DecisionReport> {
        reply(compliance::report_decision(self, r)).await
    }
    async fn list_decision_reports(
        &self,
        r: Request<pb::ListDecisionReportsRequest>,
    ) -> Reply<pb::ListDecisionReportsResponse> {
        reply(compliance::list_reports(self, r)).await
    }
    async fn list_compliance_findings(
        &self,
        r: Request<pb::ListComplianceFindingsRequest>,
    ) -> Reply<pb::ListComplianceFindingsResponse> {
        reply(compliance::list_findings(self, r)).await
    }
    async fn check_leadership_changes(
        &self,
        r: Request<pb::CheckLeadershipChangesRequest>,
    ) -> Reply<pb::CheckLeadershipChangesResponse> {
        reply(compliance::check_rpc(self, r)).await
    }
    async fn list_escalations(&self, r: Request<pb::ListEscalationsRequest>) -> Reply<pb::ListEscalationsResponse> {
        reply(compliance::list_escalations(self, r)).await
    }
}
