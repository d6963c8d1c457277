//! Request timeouts that know which calls are long by nature.
//!
//! tonic's own timeout covers the whole handler future, which for a client-streaming call
//! includes receiving the stream: a 20 MiB video uploaded from a phone would be cut off at
//! the default 30 s. This layer applies the server's limit to every call except the methods
//! a service declares long-running, and answers DEADLINE_EXCEEDED. The caller's own
//! `grpc-timeout` is still enforced by tonic on every call (answering CANCELLED).
//! Server-streaming calls are unaffected either way: the handler future ends when the
//! stream starts.

use std::{
    collections::HashSet,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tonic::{Status, body::Body};

/// Applies a deadline to each call except the long-running methods.
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    limit: Duration,
    exempt: Arc<HashSet<String>>,
}

impl TimeoutLayer {
    /// `limit` for every call but the `exempt` paths (`/package.Service/Method`).
    pub fn new(limit: Duration, exempt: HashSet<String>) -> Self {
        Self { limit, exempt: Arc::new(exempt) }
    }
}

impl<S> tower::Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout { inner, limit: self.limit, exempt: self.exempt.clone() }
    }
}

/// The service made by [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    limit: Duration,
    exempt: Arc<HashSet<String>>,
}

impl<S> tower::Service<http::Request<Body>> for Timeout<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let limit = (!self.exempt.contains(request.uri().path())).then_some(self.limit);
        let future = self.inner.call(request);
        Box::pin(async move {
            match limit {
                None => future.await,
                Some(limit) => match tokio::time::timeout(limit, future).await {
                    Ok(result) => result,
                    Err(_) => Ok(deadline_exceeded(limit).into_http()),
                },
            }
        })
    }
}

/// DEADLINE_EXCEEDED with the `ErrorInfo` every Minhu error carries.
fn deadline_exceeded(limit: std::time::Duration) -> Status {
    use tonic_types::{ErrorDetails, StatusExt as _};
    let mut details = ErrorDetails::new();
    details.set_error_info("DEADLINE_EXCEEDED", crate::error::ERROR_DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(tonic::Code::DeadlineExceeded, format!("the call took longer than {limit:?}"), details)
}
