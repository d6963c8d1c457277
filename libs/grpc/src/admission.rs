//! Admission: which calls may start now, and how slowly an upload may arrive.
//!
//! Two budgets instead of one: ordinary calls share the global concurrency limit; methods a
//! service declares long-running (client-streaming uploads) share a small budget of their
//! own, so however many uploads stall, they can never take the permits every other call
//! needs. Health and reflection take no permit at all: a liveness probe must be answered
//! while the server is saturated, or the orchestrator restarts a busy pod in a loop.
//!
//! A call beyond its budget is refused at once with RESOURCE_EXHAUSTED naming the budget
//! (shedding, not queueing: a queued call would only wait for its deadline).
//!
//! A long-running call's request body is paced ([`PacedBody`]): it fails with
//! DEADLINE_EXCEEDED when nothing arrives for the idle timeout, or when, past a grace
//! period, the bytes received fall below the minimum rate — the two ways a slow-loris
//! upload holds a permit without ever finishing.

use std::{
    collections::HashSet,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};
use tonic::{Status, body::Body};

/// How slowly an upload may arrive before it is ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPace {
    /// Longest wait for the next piece of an upload.
    pub idle_timeout: Duration,
    /// The rate an upload must keep on average once the grace period is over.
    pub min_bytes_per_second: u64,
    /// How long an upload may run before its rate is judged (a slow start is normal).
    pub grace: Duration,
}

impl Default for UploadPace {
    fn default() -> Self {
        Self { idle_timeout: Duration::from_secs(30), min_bytes_per_second: 1024, grace: Duration::from_secs(10) }
    }
}

/// Paths that never take a permit: probes and discovery.
fn exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// Builds [`Admission`].
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    global: Arc<Semaphore>,
    global_limit: usize,
    long: Arc<Semaphore>,
    long_limit: usize,
    long_running: Arc<HashSet<String>>,
    pace: UploadPace,
}

impl AdmissionLayer {
    /// `global_limit` ordinary calls and `long_limit` calls of the `long_running` paths in
    /// flight at once; long-running request bodies paced by `pace`.
    pub fn new(global_limit: usize, long_limit: usize, long_running: HashSet<String>, pace: UploadPace) -> Self {
        Self {
            global: Arc::new(Semaphore::new(global_limit)),
            global_limit,
            long: Arc::new(Semaphore::new(long_limit)),
            long_limit,
            long_running: Arc::new(long_running),
            pace,
        }
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission { inner, layer: self.clone() }
    }
}

/// The service made by [`AdmissionLayer`].
#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    layer: AdmissionLayer,
}

impl<S> tower::Service<http::Request<Body>> for Admission<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path();
        if exempt(path) {
            return Box::pin(self.inner.call(request));
        }
        let l = &self.layer;
        let long = l.long_running.contains(path);
        let (budget, limit, what) = if long {
            (&l.long, l.long_limit, "long-running calls (uploads)")
        } else {
            (&l.global, l.global_limit, "concurrent calls")
        };
        let Ok(permit) = budget.clone().try_acquire_owned() else {
            let status = Status::from(crate::ApiError::ResourceExhausted(format!(
                "the server is at its limit of {limit} {what}; retry later"
            )));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        let request = if long {
            let pace = l.pace;
            request.map(|body| Body::new(PacedBody::new(body, pace)))
        } else {
            request
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop::<OwnedSemaphorePermit>(permit);
            response
        })
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails with DEADLINE_EXCEEDED when it goes idle or falls below
    /// its minimum rate ([`UploadPace`]).
    pub struct PacedBody {
        #[pin]
        inner: Body,
        pace: UploadPace,
        started: Instant,
        received: u64,
        #[pin]
        idle: Sleep,
    }
}

impl PacedBody {
    fn new(inner: Body, pace: UploadPace) -> Self {
        let started = Instant::now();
        Self { inner, pace, started, received: 0, idle: tokio::time::sleep_until(started + pace.idle_timeout) }
    }
}

/// DEADLINE_EXCEEDED with `reason` as its `ErrorInfo`.
fn too_slow(reason: &'static str, message: String) -> Status {
    use tonic_types::{ErrorDetails, StatusExt as _};
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, crate::error::ERROR_DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(tonic::Code::DeadlineExceeded, message, details)
}

impl HttpBody for PacedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let mut this = self.project();
        let frame = match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(other) => return Poll::Ready(other),
            Poll::Pending => {
                ready!(this.idle.as_mut().poll(cx));
                return Poll::Ready(Some(Err(too_slow(
                    "UPLOAD_IDLE",
                    format!("the upload sent nothing for {:?} (the idle limit)", this.pace.idle_timeout),
                ))));
            }
        };
        let now = Instant::now();
        if let Some(data) = frame.data_ref() {
            *this.received += data.len() as u64;
        }
        let elapsed = now - *this.started;
        if elapsed > this.pace.grace {
            let required = (this.pace.min_bytes_per_second as f64 * elapsed.as_secs_f64()) as u64;
            if *this.received < required {
                return Poll::Ready(Some(Err(too_slow(
                    "UPLOAD_TOO_SLOW",
                    format!(
                        "the upload arrived at {} bytes/s, below the minimum of {} bytes/s",
                        (*this.received as f64 / elapsed.as_secs_f64()) as u64,
                        this.pace.min_bytes_per_second
                    ),
                ))));
            }
        }
        this.idle.reset(now + this.pace.idle_timeout);
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
