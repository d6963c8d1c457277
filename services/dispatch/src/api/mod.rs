//! gRPC handlers: decode, authorize, validate, run the domain rules and the store in one
//! transaction (with the journal), map back. One-line delegations here; bodies in the
//! submodules by area.

mod calls;
mod cases;
mod convert;
mod corrections;
mod files;
mod streams;
mod watch;
mod work;

use std::{pin::Pin, sync::Arc};

use chrono::{DateTime, Utc};
use futures_util::Stream;
use minhu_grpc::{PageRequest, Principal};
use minhu_proto::dispatch::v1::{self as pb, dispatch_service_server::DispatchService};
use minhu_store::Idempotency;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::{
    AttachmentLimits, DeadlinePolicy, FeedConfig,
    clients::Roster,
    clock::Clock,
    crypto::ReporterCipher,
    deadlines::Staged,
    domain::{access, access::Audience, model::Case},
    error::DispatchError,
    escalation,
    events::encode,
    feed::Head,
    store::{
        cases::{self as case_store, CaseRow},
        journal::{self, Change},
    },
};

/// Page size when the caller asks for none.
const DEFAULT_PAGE: u32 = 50;
/// Largest page served.
const MAX_PAGE: u32 = 500;

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
}

impl Dispatch {
    /// Handlers over `deps`.
    pub fn new(deps: Deps) -> Self {
        Self { d: Arc::new(deps) }
    }

    /// The pool (tests, escalations).
    pub fn pool(&self) -> &PgPool {
        &self.d.pool
    }

    fn now(&self) -> DateTime<Utc> {
        self.d.clock.now()
    }

    /// A request's deadline changes, to make in its transaction and index after it commits.
    fn staged(&self) -> Staged {
        Staged::new(self.d.scheduler.clone())
    }
}

type Reply<T> = Result<Response<T>, Status>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The caller and the request's message.
fn caller<T: prost::Message>(request: Request<T>) -> Result<(Principal, T), DispatchError> {
    Ok(minhu_grpc::caller(request)?)
}

/// The idempotency key of a mutating request.
fn idempotency(
    method: &str,
    principal: &Principal,
    request_id: &str,
    request: &impl prost::Message,
) -> Result<Idempotency, DispatchError> {
    Ok(Idempotency::for_rpc(
        format!("minhu.dispatch.v1.DispatchService/{method}"),
        &principal.subject,
        request_id,
        request,
    )?)
}

/// One `List` request's paging, with dispatch's default and largest page size.
fn page<K: serde::Serialize + serde::de::DeserializeOwned>(
    size: i32,
    token: &str,
    query: &[&str],
) -> Result<PageRequest<K>, DispatchError> {
    Ok(PageRequest::new(size, token, DEFAULT_PAGE, MAX_PAGE, query)?)
}

/// A UUID field, or INVALID_ARGUMENT on it.
fn uuid(field: &str, value: &str) -> Result<Uuid, DispatchError> {
    if value.trim().is_empty() {
        return Err(DispatchError::field(field, "must not be empty"));
    }
    Uuid::parse_str(value.trim()).map_err(|_| DispatchError::field(field, "is not a valid id"))
}

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

/// One change to journal.
struct Entry {
    event_type: &'static str,
    call_id: Option<Uuid>,
    department_id: String,
    before: Value,
    after: Value,
    payload: minhu_proto::dispatch::v1::event::Payload,
}

/// Applies the automatic transitions, saves the case and journals the change, all in `tx`.
async fn commit(
    tx: &mut PgConnection,
    case: &mut Case,
    actor: &crate::domain::model::Actor,
    now: DateTime<Utc>,
    entry: Entry,
) -> Result<(), DispatchError> {
    escalation::settle(tx, case).await?;
    case.update_time = now;
    case_store::update(tx, case, None).await?;
    journal::record(
        tx,
        Change {
            case_id: case.id,
            street_id: case.street_id.clone(),
            call_id: entry.call_id,
            department_id: entry.department_id,
            event_type: entry.event_type,
            actor: actor.clone(),
            occur_time: now,
            case_state: case.state,
            before: entry.before,
            after: entry.after,
            payload: encode(entry.payload),
        },
    )
    .await?;
    Ok(())
}

/// A request's result, once the deadlines it staged are indexed (they are only when its
/// transaction committed).
async fn indexed<T>(staged: Staged, result: Result<T, DispatchError>) -> Result<T, DispatchError> {
    let value = result?;
    staged.index().await;
    Ok(value)
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
        reply(work::record_consultation(self, r)).await
    }
    async fn get_task(&self, r: Request<pb::GetTaskRequest>) -> Reply<pb::Task> {
        reply(work::get_task(self, r)).await
    }
    async fn list_tasks(&self, r: Request<pb::ListTasksRequest>) -> Reply<pb::ListTasksResponse> {
        reply(work::list_tasks(self, r)).await
    }
    async fn report_progress(&self, r: Request<pb::ReportProgressRequest>) -> Reply<pb::Task> {
        reply(work::report_progress(self, r)).await
    }
    async fn submit_feedback(&self, r: Request<pb::SubmitFeedbackRequest>) -> Reply<pb::Feedback> {
        reply(work::submit_feedback(self, r)).await
    }
    async fn review_feedback(&self, r: Request<pb::ReviewFeedbackRequest>) -> Reply<pb::Feedback> {
        reply(work::review_feedback(self, r)).await
    }
    async fn submit_case_report(&self, r: Request<pb::SubmitCaseReportRequest>) -> Reply<pb::CaseReport> {
        reply(work::submit_case_report(self, r)).await
    }
    async fn get_case_report(&self, r: Request<pb::GetCaseReportRequest>) -> Reply<pb::CaseReport> {
        reply(work::get_case_report(self, r)).await
    }
    async fn record_callback(&self, r: Request<pb::RecordCallbackRequest>) -> Reply<pb::Callback> {
        reply(work::record_callback(self, r)).await
    }
    async fn rate_department(&self, r: Request<pb::RateDepartmentRequest>) -> Reply<pb::Rating> {
        reply(work::rate_department(self, r)).await
    }
    async fn list_ratings(&self, r: Request<pb::ListRatingsRequest>) -> Reply<pb::ListRatingsResponse> {
        reply(work::list_ratings(self, r)).await
    }
    async fn require_rectification(&self, r: Request<pb::RequireRectificationRequest>) -> Reply<pb::Rectification> {
        reply(work::require_rectification(self, r)).await
    }
    async fn get_rectification(&self, r: Request<pb::GetRectificationRequest>) -> Reply<pb::Rectification> {
        reply(work::get_rectification(self, r)).await
    }
    async fn list_rectifications(
        &self,
        r: Request<pb::ListRectificationsRequest>,
    ) -> Reply<pb::ListRectificationsResponse> {
        reply(work::list_rectifications(self, r)).await
    }
    async fn rerate_department(&self, r: Request<pb::RerateDepartmentRequest>) -> Reply<pb::Rating> {
        reply(work::rerate_department(self, r)).await
    }
    async fn close_case(&self, r: Request<pb::CloseCaseRequest>) -> Reply<pb::Case> {
        reply(work::close_case(self, r)).await
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
}
