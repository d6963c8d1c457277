//! gRPC handlers: decode, authorize, validate, call the store, map back. The rules live in
//! [`crate::domain`]; the SQL in [`crate::store`]; the feed in [`crate::consumer`].

mod convert;
mod feed;
mod periods;
mod referrals;
mod scores;

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use minhu_grpc::{FieldViolations, Rpcs};
pub(crate) use minhu_grpc::{caller, found, uuid};
use minhu_proto::appraisal::v1::{self as pb, appraisal_service_server::AppraisalService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::{
    consumer::{self, FeedSource, SharedSubscription},
    error::AppraisalError,
};

/// The handlers' shared state.
#[derive(Debug, Clone)]
pub struct Appraisal {
    pool: PgPool,
    feed: FeedSource,
    subscription: SharedSubscription,
    rebuild: Arc<Mutex<Option<feed::RunningRebuild>>>,
}

impl Appraisal {
    /// Handlers over `pool` (migrated), reading the feed from `feed`.
    pub fn new(pool: PgPool, feed: FeedSource) -> Self {
        Self { pool, feed, subscription: SharedSubscription::default(), rebuild: Arc::default() }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The background consumption of the feed, until `stop` is cancelled. Each event's
    /// effect commits with its cursor, so stopping between two events loses nothing.
    pub async fn consume(self, stop: minhu_grpc::CancellationToken) {
        consumer::report_lag(&self.subscription);
        stop.run_until_cancelled(consumer::run(self.pool, self.feed, self.subscription)).await;
    }
}

/// What scopes this service's idempotency keys and pages.
pub(crate) static RPCS: Rpcs = Rpcs::new("minhu.appraisal.v1.AppraisalService");

type Reply<T> = Result<Response<T>, Status>;

/// A time as a protobuf timestamp.
fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

/// A time range: start inclusive, end exclusive.
type Range = (DateTime<Utc>, DateTime<Utc>);

/// An optional range from a request (`None` when unset); half-set or reversed ranges are
/// INVALID_ARGUMENT on `field`.
fn time_range(
    field: &str,
    range: Option<&minhu_proto::common::v1::TimeRange>,
) -> Result<Option<Range>, AppraisalError> {
    let Some(r) = range else { return Ok(None) };
    let mut v = FieldViolations::new();
    let (start, end) = crate::domain::period::range(
        &mut v,
        field,
        consumer::time(r.start_time.as_ref()),
        consumer::time(r.end_time.as_ref()),
    );
    v.into_result()?;
    Ok(Some((start, end)))
}

/// Runs a handler body and turns its error into a status.
async fn reply<T>(body: impl Future<Output = Result<T, AppraisalError>>) -> Reply<T> {
    body.await.map(Response::new).map_err(Status::from)
}

/// The RebuildScores stream.
pub type RebuildStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::RebuildScoresResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AppraisalService for Appraisal {
    async fn create_period(&self, r: Request<pb::CreatePeriodRequest>) -> Reply<pb::Period> {
        reply(periods::create_period(self, r)).await
    }
    async fn get_period(&self, r: Request<pb::GetPeriodRequest>) -> Reply<pb::Period> {
        reply(periods::get_period(self, r)).await
    }
    async fn list_periods(&self, r: Request<pb::ListPeriodsRequest>) -> Reply<pb::ListPeriodsResponse> {
        reply(periods::list_periods(self, r)).await
    }
    async fn update_period(&self, r: Request<pb::UpdatePeriodRequest>) -> Reply<pb::Period> {
        reply(periods::update_period(self, r)).await
    }
    async fn close_period(&self, r: Request<pb::ClosePeriodRequest>) -> Reply<pb::Period> {
        reply(periods::close_period(self, r)).await
    }
    async fn get_department_score(&self, r: Request<pb::GetDepartmentScoreRequest>) -> Reply<pb::DepartmentScore> {
        reply(scores::get_department_score(self, r)).await
    }
    async fn list_department_scores(
        &self,
        r: Request<pb::ListDepartmentScoresRequest>,
    ) -> Reply<pb::ListDepartmentScoresResponse> {
        reply(scores::list_department_scores(self, r)).await
    }
    async fn list_score_records(&self, r: Request<pb::ListScoreRecordsRequest>) -> Reply<pb::ListScoreRecordsResponse> {
        reply(scores::list_score_records(self, r)).await
    }
    async fn set_annual_weight(&self, r: Request<pb::SetAnnualWeightRequest>) -> Reply<pb::AnnualWeight> {
        reply(periods::set_annual_weight(self, r)).await
    }
    async fn get_annual_weight(&self, r: Request<pb::GetAnnualWeightRequest>) -> Reply<pb::AnnualWeight> {
        reply(periods::get_annual_weight(self, r)).await
    }
    async fn export_annual_assessment(
        &self,
        r: Request<pb::ExportAnnualAssessmentRequest>,
    ) -> Reply<pb::ExportAnnualAssessmentResponse> {
        reply(scores::export_annual_assessment(self, r)).await
    }
    async fn create_referral(&self, r: Request<pb::CreateReferralRequest>) -> Reply<pb::Referral> {
        reply(referrals::create_referral(self, r)).await
    }
    async fn get_referral(&self, r: Request<pb::GetReferralRequest>) -> Reply<pb::Referral> {
        reply(referrals::get_referral(self, r)).await
    }
    async fn list_referrals(&self, r: Request<pb::ListReferralsRequest>) -> Reply<pb::ListReferralsResponse> {
        reply(referrals::list_referrals(self, r)).await
    }
    async fn receive_referral(&self, r: Request<pb::ReceiveReferralRequest>) -> Reply<pb::Referral> {
        reply(referrals::receive_referral(self, r)).await
    }
    async fn record_referral_outcome(&self, r: Request<pb::RecordReferralOutcomeRequest>) -> Reply<pb::Referral> {
        reply(referrals::record_referral_outcome(self, r)).await
    }
    async fn list_suggested_referrals(
        &self,
        r: Request<pb::ListSuggestedReferralsRequest>,
    ) -> Reply<pb::ListSuggestedReferralsResponse> {
        reply(referrals::list_suggested_referrals(self, r)).await
    }
    async fn get_district_kpis(&self, r: Request<pb::GetDistrictKpisRequest>) -> Reply<pb::GetDistrictKpisResponse> {
        reply(scores::get_district_kpis(self, r)).await
    }
    async fn get_feed_status(&self, r: Request<pb::GetFeedStatusRequest>) -> Reply<pb::FeedStatus> {
        reply(feed::get_feed_status(self, r)).await
    }

    type RebuildScoresStream = RebuildStream;

    async fn rebuild_scores(&self, r: Request<pb::RebuildScoresRequest>) -> Reply<Self::RebuildScoresStream> {
        reply(feed::rebuild_scores(self, r)).await
    }
}
