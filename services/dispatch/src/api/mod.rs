//! gRPC handlers: decode, authorize, validate, run the domain rules and the store in one
//! transaction (with the journal), map back. One-line delegations here; bodies in the
//! submodules by area.

mod calls;
mod cases;
mod catalogue;
mod closing;
mod clusters;
mod convert;
mod corrections;
mod files;
mod hub;
mod mask;
mod ratings;
mod streams;
mod tasks;
mod watch;
mod write;

use std::{pin::Pin, sync::Arc};

use chrono::{DateTime, Utc};
use futures_util::Stream;
pub use hub::WatchMeter;
use minhu_grpc::{Principal, Rpcs, caller, uuid};
use minhu_proto::dispatch::v1::{self as pb, dispatch_service_server::DispatchService};
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;
pub(crate) use write::Entry;

use crate::{
    AttachmentLimits, DeadlinePolicy, FeedConfig,
    clients::Roster,
    clock::Clock,
    crypto::ReporterCipher,
    domain::{access, access::Audience, model::Case},
    error::DispatchError,
    feed::Head,
    store::cases::{self as case_store, CaseRow},
};

/// Dispatch's RPCs: what scopes their idempotency keys and pages.
static RPCS: Rpcs = Rpcs::new("minhu.dispatch.v1.DispatchService");

/// What the handlers share.
#[derive(Debug)]
pub struct Deps {
    /// The database.
    pub pool: PgPool,
    /// The roster.
    pub roster: Roster,
    /// Reporter encryption.
    pub cipher: ReporterCipher,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Deadline defaults.
    pub deadlines: DeadlinePolicy,
    /// Working time, for what is measured in working days.
    pub calendar: minhu_deadlines::WorkCalendar,
    /// Where requests schedule and cancel deadlines.
    pub scheduler: minhu_deadlines::Deadlines,
    /// Attachment limits.
    pub attachments: AttachmentLimits,
    /// Feed timing.
    pub feed: FeedConfig,
    /// The feed's head.
    pub head: Head,
}

/// Dispatch's handlers.
#[derive(Debug, Clone)]
pub struct Dispatch {
    d: Arc<Deps>,
    /// The replica's one reader of the outbox for every watch stream.
    hub: hub::Hub,
}

impl Dispatch {
    /// Handlers over `deps`; starts the watch hub.
    pub fn new(deps: Deps) -> Self {
        let hub = hub::Hub::start(deps.pool.clone(), deps.head.subscribe(), &deps.feed);
        Self { d: Arc::new(deps), hub }
    }

    /// The watch hub's database meter (tests show it does not grow with the watchers).
    pub fn watch_meter(&self) -> WatchMeter {
        self.hub.meter()
    }

    /// The pool (tests, escalations).
    pub fn pool(&self) -> &PgPool {
        &self.d.pool
    }

    /// The service's clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.d.clock.clone()
    }

    fn now(&self) -> DateTime<Utc> {
        self.d.clock.now()
    }
}

type Reply<T> = Result<Response<T>, Status>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A case (locked when `lock`) that `p` may read, with its audience; NOT_FOUND otherwise.
async fn readable_case(
    conn: &mut PgConnection,
    p: &Principal,
    id: Uuid,
    lock: bool,
) -> Result<(CaseRow, Audience), DispatchError> {
    let row = case_store::get(conn, id, lock).await?.ok_or_else(|| DispatchError::not_found("case", id))?;
    let audience = case_store::audience(conn, id, &row.case.street_id).await?;
    if !access::may_read(p, &audience) {
        return Err(DispatchError::not_found("case", id));
    }
    Ok((row, audience))
}

/// PERMISSION_DENIED unless `p` is the case's street.
fn require_street(p: &Principal, case: &Case, what: &str) -> Result<(), DispatchError> {
    if access::is_street_of(p, &case.street_id) {
        Ok(())
    } else {
        Err(DispatchError::denied(format!("only the street `{}` may {what}", case.street_id)))
    }
}

/// Runs a handler body and turns its error into a status.
async fn reply<T>(body: impl Future<Output = Result<T, DispatchError>>) -> Reply<T> {
    body.await.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl DispatchService for Dispatch {
    async fn create_case(&self, r: Request<pb::CreateCaseRequest>) -> Reply<pb::Case> {
        reply(cases::create_case(self, r)).await
    }
    async fn get_case(&self, r: Request<pb::GetCaseRequest>) -> Reply<pb::Case> {
        reply(cases::get_case(self, r)).await
    }
    async fn list_cases(&self, r: Request<pb::ListCasesRequest>) -> Reply<pb::ListCasesResponse> {
        reply(cases::list_cases(self, r)).await
    }
    async fn count_cases(&self, r: Request<pb::CountCasesRequest>) -> Reply<pb::CountCasesResponse> {
        reply(cases::count_cases(self, r)).await
    }
    async fn update_case(&self, r: Request<pb::UpdateCaseRequest>) -> Reply<pb::Case> {
        reply(corrections::update_case(self, r)).await
    }
    async fn link_cases(&self, r: Request<pb::LinkCasesRequest>) -> Reply<pb::Case> {
        reply(corrections::link_cases(self, r)).await
    }
    async fn unlink_cases(&self, r: Request<pb::UnlinkCasesRequest>) -> Reply<pb::Case> {
        reply(corrections::unlink_cases(self, r)).await
    }
    async fn list_cluster_members(
        &self,
        r: Request<pb::ListClusterMembersRequest>,
    ) -> Reply<pb::ListClusterMembersResponse> {
        reply(clusters::list_cluster_members(self, r)).await
    }
    async fn detach_from_cluster(&self, r: Request<pb::DetachFromClusterRequest>) -> Reply<pb::Case> {
        reply(clusters::detach_from_cluster(self, r)).await
    }
    async fn merge_clusters(&self, r: Request<pb::MergeClustersRequest>) -> Reply<pb::Case> {
        reply(clusters::merge_clusters(self, r)).await
    }
    async fn triage_case(&self, r: Request<pb::TriageCaseRequest>) -> Reply<pb::Case> {
        reply(cases::triage_case(self, r)).await
    }
    async fn start_call(&self, r: Request<pb::StartCallRequest>) -> Reply<pb::StartCallResponse> {
        reply(calls::start_call(self, r)).await
    }
    async fn get_call(&self, r: Request<pb::GetCallRequest>) -> Reply<pb::Call> {
        reply(calls::get_call(self, r)).await
    }
    async fn list_calls(&self, r: Request<pb::ListCallsRequest>) -> Reply<pb::ListCallsResponse> {
        reply(calls::list_calls(self, r)).await
    }
    async fn withdraw_call(&self, r: Request<pb::WithdrawCallRequest>) -> Reply<pb::Call> {
        reply(calls::withdraw_call(self, r)).await
    }
    async fn sign_call(&self, r: Request<pb::SignCallRequest>) -> Reply<pb::Call> {
        reply(calls::sign_call(self, r)).await
    }
    async fn designate_responders(&self, r: Request<pb::DesignateRespondersRequest>) -> Reply<pb::Call> {
        reply(calls::designate_responders(self, r)).await
    }
    async fn check_in(&self, r: Request<pb::CheckInRequest>) -> Reply<pb::Call> {
        reply(calls::check_in(self, r)).await
    }
    async fn share_reporter_contact(&self, r: Request<pb::ShareReporterContactRequest>) -> Reply<pb::Call> {
        reply(calls::share_reporter_contact(self, r)).await
    }
    async fn record_inaction(&self, r: Request<pb::RecordInactionRequest>) -> Reply<pb::Call> {
        reply(calls::record_inaction(self, r)).await
    }
    async fn record_consultation(
        &self,
        r: Request<pb::RecordConsultationRequest>,
    ) -> Reply<pb::RecordConsultationResponse> {
        reply(tasks::record_consultation(self, r)).await
    }
    async fn get_task(&self, r: Request<pb::GetTaskRequest>) -> Reply<pb::Task> {
        reply(tasks::get_task(self, r)).await
    }
    async fn list_tasks(&self, r: Request<pb::ListTasksRequest>) -> Reply<pb::ListTasksResponse> {
        reply(tasks::list_tasks(self, r)).await
    }
    async fn report_progress(&self, r: Request<pb::ReportProgressRequest>) -> Reply<pb::Task> {
        reply(tasks::report_progress(self, r)).await
    }
    async fn submit_feedback(&self, r: Request<pb::SubmitFeedbackRequest>) -> Reply<pb::Feedback> {
        reply(tasks::submit_feedback(self, r)).await
    }
    async fn review_feedback(&self, r: Request<pb::ReviewFeedbackRequest>) -> Reply<pb::Feedback> {
        reply(tasks::review_feedback(self, r)).await
    }
    async fn submit_case_report(&self, r: Request<pb::SubmitCaseReportRequest>) -> Reply<pb::CaseReport> {
        reply(closing::submit_case_report(self, r)).await
    }
    async fn get_case_report(&self, r: Request<pb::GetCaseReportRequest>) -> Reply<pb::CaseReport> {
        reply(closing::get_case_report(self, r)).await
    }
    async fn record_callback(&self, r: Request<pb::RecordCallbackRequest>) -> Reply<pb::Callback> {
        reply(closing::record_callback(self, r)).await
    }
    async fn rate_department(&self, r: Request<pb::RateDepartmentRequest>) -> Reply<pb::Rating> {
        reply(ratings::rate_department(self, r)).await
    }
    async fn list_ratings(&self, r: Request<pb::ListRatingsRequest>) -> Reply<pb::ListRatingsResponse> {
        reply(ratings::list_ratings(self, r)).await
    }
    async fn require_rectification(&self, r: Request<pb::RequireRectificationRequest>) -> Reply<pb::Rectification> {
        reply(ratings::require_rectification(self, r)).await
    }
    async fn get_rectification(&self, r: Request<pb::GetRectificationRequest>) -> Reply<pb::Rectification> {
        reply(ratings::get_rectification(self, r)).await
    }
    async fn list_rectifications(
        &self,
        r: Request<pb::ListRectificationsRequest>,
    ) -> Reply<pb::ListRectificationsResponse> {
        reply(ratings::list_rectifications(self, r)).await
    }
    async fn rerate_department(&self, r: Request<pb::RerateDepartmentRequest>) -> Reply<pb::Rating> {
        reply(ratings::rerate_department(self, r)).await
    }
    async fn close_case(&self, r: Request<pb::CloseCaseRequest>) -> Reply<pb::Case> {
        reply(closing::close_case(self, r)).await
    }
    async fn list_trail_entries(&self, r: Request<pb::ListTrailEntriesRequest>) -> Reply<pb::ListTrailEntriesResponse> {
        reply(streams::list_trail_entries(self, r)).await
    }
    async fn verify_trail(&self, r: Request<pb::VerifyTrailRequest>) -> Reply<pb::VerifyTrailResponse> {
        reply(streams::verify_trail(self, r)).await
    }

    type StreamEventsStream = BoxStream<pb::StreamEventsResponse>;
    async fn stream_events(&self, r: Request<pb::StreamEventsRequest>) -> Reply<Self::StreamEventsStream> {
        reply(streams::stream_events(self, r)).await
    }

    type WatchCaseStream = BoxStream<pb::WatchCaseResponse>;
    async fn watch_case(&self, r: Request<pb::WatchCaseRequest>) -> Reply<Self::WatchCaseStream> {
        reply(watch::watch_case(self, r)).await
    }

    type WatchCasesStream = BoxStream<pb::WatchCasesResponse>;
    async fn watch_cases(&self, r: Request<pb::WatchCasesRequest>) -> Reply<Self::WatchCasesStream> {
        reply(watch::watch_cases(self, r)).await
    }

    async fn upload_attachment(&self, r: Request<Streaming<pb::UploadAttachmentRequest>>) -> Reply<pb::Attachment> {
        reply(files::upload_attachment(self, r)).await
    }

    type DownloadAttachmentStream = BoxStream<pb::DownloadAttachmentResponse>;
    async fn download_attachment(
        &self,
        r: Request<pb::DownloadAttachmentRequest>,
    ) -> Reply<Self::DownloadAttachmentStream> {
        reply(files::download_attachment(self, r)).await
    }
    async fn get_attachment(&self, r: Request<pb::GetAttachmentRequest>) -> Reply<pb::Attachment> {
        reply(files::get_attachment(self, r)).await
    }
    async fn publish_catalogue(&self, r: Request<pb::PublishCatalogueRequest>) -> Reply<pb::Catalogue> {
        reply(catalogue::publish_catalogue(self, r)).await
    }
    async fn get_catalogue(&self, r: Request<pb::GetCatalogueRequest>) -> Reply<pb::Catalogue> {
        reply(catalogue::get_catalogue(self, r)).await
    }
    async fn propose_calls(&self, r: Request<pb::ProposeCallsRequest>) -> Reply<pb::ProposeCallsResponse> {
        reply(catalogue::propose_calls(self, r)).await
    }
}
