//! The client side of tracing: every outgoing call made through a [`Traced`] channel is a
//! client span by the OpenTelemetry RPC conventions (`rpc.system`, `rpc.service`,
//! `rpc.method`, `rpc.grpc.status_code`, span status ERROR for any non-OK code), and the
//! trace context sent with the call is that span's, so the server's span is its child.
//!
//! The status is read like the server side reads it ([`observe`](crate::observe)): from the
//! response headers for a trailers-only answer, else from the trailers; a body dropped
//! before its trailers is a call this side abandoned (CANCELLED), a transport failure is
//! UNAVAILABLE, as tonic reports it to the caller.
//!
//! ```no_run
//! # fn example(channel: tonic::transport::Channel) {
//! use minhu_proto::roster::v1::roster_service_client::RosterServiceClient;
//! let roster = RosterServiceClient::new(minhu_grpc::client::traced(channel));
//! # }
//! ```

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Code;
use tracing::Instrument as _;

use crate::observe::status_of;

/// A channel whose calls are client spans.
pub type TracedChannel = Traced<tonic::transport::Channel>;

/// Wraps `channel` so each call through it is a client span.
pub fn traced(channel: tonic::transport::Channel) -> TracedChannel {
    Traced { inner: channel }
}

/// The service made by [`traced`]; works over any HTTP service a tonic client can use.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
}

impl<S> Traced<S> {
    /// Wraps any client transport.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Traced<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: HttpBody,
{
    type Response = http::Response<TracedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let span = minhu_telemetry::client_span(service, method);
        // Replaces the context an interceptor may have put there from the enclosing span:
        // the server's span is this call's child.
        minhu_telemetry::inject_span_context(&span, request.headers_mut());
        let future = self.inner.call(request).instrument(span.clone());
        Box::pin(async move {
            match future.await {
                Ok(response) => {
                    let pending = match status_of(response.headers()) {
                        Some(code) => {
                            minhu_telemetry::record_grpc_status(&span, code, true);
                            None
                        }
                        None => Some(Pending { span, code: None }),
                    };
                    Ok(response.map(|inner| TracedBody { inner, pending }))
                }
                Err(error) => {
                    minhu_telemetry::record_grpc_status(&span, Code::Unavailable as i32, true);
                    Err(error)
                }
            }
        })
    }
}

/// A call whose status is still to come; records it (CANCELLED if none came) when dropped,
/// and the span ends with it.
struct Pending {
    span: tracing::Span,
    code: Option<i32>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        minhu_telemetry::record_grpc_status(&self.span, self.code.unwrap_or(Code::Cancelled as i32), true);
    }
}

pin_project_lite::pin_project! {
    /// A response body that records the call's status when its trailers pass.
    pub struct TracedBody<B> {
        #[pin]
        inner: B,
        pending: Option<Pending>,
    }
}

// Generated clients want an empty body to stand in (tonic's `Grpc` requires it).
impl<B: Default> Default for TracedBody<B> {
    fn default() -> Self {
        Self { inner: B::default(), pending: None }
    }
}

impl<B: HttpBody> HttpBody for TracedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(mut pending) = this.pending.take() {
            match &frame {
                Some(Ok(frame)) => match frame.trailers_ref() {
                    Some(trailers) => pending.code = Some(status_of(trailers).unwrap_or(Code::Unknown as i32)),
                    None => *this.pending = Some(pending),
                },
                // The stream broke (UNAVAILABLE to the caller) or ended without a status.
                Some(Err(_)) => pending.code = Some(Code::Unavailable as i32),
                None => pending.code = Some(Code::Unknown as i32),
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
