//! Each call's outcome, once it is known: the gRPC status code on the request's span (and
//! span status ERROR for the server's own failures) and the RPC metrics
//! ([`RpcServerMetrics`]).
//!
//! The status comes from the `grpc-status` response header when the response is
//! trailers-only (tonic answers a unary call's error that way, before any body), else from
//! the trailers at the end of the body, so the duration of a streaming call is the whole
//! stream. A body dropped before its trailers is a call the client abandoned: CANCELLED.
//! A refusal of a layer below (load shedding) is an error of the service, mapped the way
//! tonic maps it for the client.
//!
//! Metric attributes name only methods the server serves: any other path (a scanner's
//! guesses) is counted as `rpc.service = rpc.method = "_OTHER"`, as the conventions say, so
//! callers cannot grow the number of series without bound.

use std::{
    collections::HashSet,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Instant,
};

use http_body::{Body as HttpBody, Frame, SizeHint};
use minhu_telemetry::metrics::RpcServerMetrics;
use tonic::Code;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Observes every call of the service it wraps.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    metrics: Arc<RpcServerMetrics>,
    served: Arc<HashSet<String>>,
}

impl ObserveLayer {
    /// Records into `metrics`, naming the methods at the `served` paths
    /// (`/package.Service/Method`).
    pub fn new(metrics: RpcServerMetrics, served: impl IntoIterator<Item = String>) -> Self {
        Self { metrics: Arc::new(metrics), served: Arc::new(served.into_iter().collect()) }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, metrics: self.metrics.clone(), served: self.served.clone() }
    }
}

/// The service made by [`ObserveLayer`].
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<RpcServerMetrics>,
    served: Arc<HashSet<String>>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Observe<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    ResBody: HttpBody,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        let outcome = Outcome {
            path: if self.served.contains(path) { path.to_owned() } else { OTHER.to_owned() },
            // Inside the trace layer: the current span is this request's.
            span: tracing::Span::current(),
            started: Instant::now(),
            metrics: self.metrics.clone(),
            code: None,
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            match future.await {
                Ok(response) => {
                    let outcome = match status_of(response.headers()) {
                        // Trailers-only: the status is final now.
                        Some(code) => {
                            outcome.finish(code);
                            None
                        }
                        None => Some(outcome),
                    };
                    Ok(response.map(|inner| ObservedBody { inner, outcome }))
                }
                Err(error) => {
                    let error = error.into();
                    outcome.finish(tonic::Status::from_error(error_copy(&*error)).code() as i32);
                    Err(error)
                }
            }
        })
    }
}

/// What an unknown path is counted as: service and method `_OTHER`.
const OTHER: &str = "/_OTHER/_OTHER";

/// `Status::from_error` takes ownership; the error itself goes on to tonic, which answers
/// the client with the same mapping.
fn error_copy(error: &(dyn std::error::Error + Send + Sync + 'static)) -> BoxError {
    if error.is::<tower::load_shed::error::Overloaded>() {
        return Box::new(tower::load_shed::error::Overloaded::new());
    }
    if let Some(status) = error.downcast_ref::<tonic::Status>() {
        return Box::new(tonic::Status::new(status.code(), ""));
    }
    Box::new(tonic::Status::new(Code::Unknown, ""))
}

/// The `grpc-status` in `headers` (response headers or trailers), if there is one.
pub(crate) fn status_of(headers: &http::HeaderMap) -> Option<i32> {
    let value = headers.get("grpc-status")?;
    // A status we cannot read is the server's failure to speak gRPC: UNKNOWN.
    Some(value.to_str().ok().and_then(|v| v.parse().ok()).unwrap_or(Code::Unknown as i32))
}

/// Records once, when dropped: at the end of the body, or earlier for trailers-only
/// responses and refusals.
struct Outcome {
    path: String,
    span: tracing::Span,
    started: Instant,
    metrics: Arc<RpcServerMetrics>,
    code: Option<i32>,
}

impl Outcome {
    fn finish(mut self, code: i32) {
        self.code = Some(code);
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(Code::Cancelled as i32);
        minhu_telemetry::record_grpc_status(&self.span, code, false);
        let (service, method) = self.path.trim_start_matches('/').split_once('/').unwrap_or((&self.path, ""));
        self.metrics.record(service, method, code, self.started.elapsed());
    }
}

pin_project_lite::pin_project! {
    /// A response body that records the call's outcome when its trailers pass.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        outcome: Option<Outcome>,
    }
}

impl<B: HttpBody> HttpBody for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(outcome) = this.outcome.take() {
            match &frame {
                Some(Ok(frame)) => match frame.trailers_ref() {
                    Some(trailers) => outcome.finish(status_of(trailers).unwrap_or(Code::Unknown as i32)),
                    // A data frame: not over yet.
                    None => *this.outcome = Some(outcome),
                },
                // The stream broke, or ended without a status: not a gRPC answer.
                Some(Err(_)) | None => outcome.finish(Code::Unknown as i32),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
