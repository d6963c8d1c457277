//! A per-message size limit that answers RESOURCE_EXHAUSTED.
//!
//! tonic's own `max_decoding_message_size` answers OUT_OF_RANGE and only after the codec
//! has the message. This layer reads the 5-byte gRPC frame headers as the request body
//! streams in and refuses the first message that declares more than the limit, before any
//! of it is buffered. It limits each message, not the stream: a chunked upload of many
//! small messages passes.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::{Status, body::Body};

/// Wraps every request body in a [`LimitedBody`].
#[derive(Debug, Clone, Copy)]
pub struct MessageSizeLimitLayer {
    max_message_bytes: usize,
}

impl MessageSizeLimitLayer {
    /// Refuses gRPC messages larger than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self { max_message_bytes }
    }
}

impl<S> tower::Layer<S> for MessageSizeLimitLayer {
    type Service = MessageSizeLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageSizeLimit { inner, max_message_bytes: self.max_message_bytes }
    }
}

/// The service made by [`MessageSizeLimitLayer`].
#[derive(Debug, Clone)]
pub struct MessageSizeLimit<S> {
    inner: S,
    max_message_bytes: usize,
}

impl<S> tower::Service<http::Request<Body>> for MessageSizeLimit<S>
where
    S: tower::Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let max = self.max_message_bytes;
        self.inner.call(request.map(|body| Body::new(LimitedBody::new(body, max))))
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails with RESOURCE_EXHAUSTED at the first gRPC message whose
    /// declared length exceeds the limit.
    pub struct LimitedBody {
        #[pin]
        inner: Body,
        max: usize,
        header: [u8; 5],
        header_len: usize,
        // Payload bytes of the current message still to pass through.
        remaining: usize,
    }
}

impl LimitedBody {
    fn new(inner: Body, max: usize) -> Self {
        Self { inner, max, header: [0; 5], header_len: 0, remaining: 0 }
    }
}

impl HttpBody for LimitedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        let frame = match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        if let Some(data) = frame.data_ref() {
            let mut rest: &[u8] = data;
            while !rest.is_empty() {
                if *this.remaining > 0 {
                    let skip = (*this.remaining).min(rest.len());
                    *this.remaining -= skip;
                    rest = &rest[skip..];
                    continue;
                }
                let take = (5 - *this.header_len).min(rest.len());
                this.header[*this.header_len..*this.header_len + take].copy_from_slice(&rest[..take]);
                *this.header_len += take;
                rest = &rest[take..];
                if *this.header_len == 5 {
                    let declared =
                        u32::from_be_bytes([this.header[1], this.header[2], this.header[3], this.header[4]]) as usize;
                    if declared > *this.max {
                        return Poll::Ready(Some(Err(Status::from(crate::ApiError::ResourceExhausted(format!(
                            "message of {declared} bytes exceeds the limit of {} bytes",
                            this.max
                        ))))));
                    }
                    *this.remaining = declared;
                    *this.header_len = 0;
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
