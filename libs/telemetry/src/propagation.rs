//! W3C trace context (`traceparent`, `tracestate`) in gRPC metadata, so the server's span
//! continues the caller's trace.

use opentelemetry::propagation::{Extractor, Injector};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // A header the propagator cannot express in ASCII is dropped, not fatal: the call
        // still goes through, it only starts a new trace on the other side.
        if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(key.as_bytes()), MetadataValue::try_from(value)) {
            self.0.insert(key, value);
        }
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::try_from(value))
        {
            self.0.insert(key, value);
        }
    }
}

/// Writes `span`'s trace context into outgoing request headers (a client span's own,
/// rather than the enclosing span's).
pub fn inject_span_context(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut HeaderInjector(headers)));
}

/// The remote parent carried in a request's headers (empty context when there is none).
pub fn extract_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Writes the current span's trace context into outgoing metadata.
pub fn inject_context(metadata: &mut MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut MetadataInjector(metadata)));
}

/// The span for one incoming gRPC request, child of the caller's span when the request
/// carries a `traceparent`. Used as tower-http's `make_span_with`.
///
/// Its attributes follow the OpenTelemetry RPC conventions. Those known only later are
/// declared empty here and recorded on the span as they become known (a field not declared
/// when the span is made cannot be recorded): `rpc.grpc.status_code` and `otel.status_code`
/// by [`record_grpc_status`] when the status is sent, `enduser.id`, `minhu.org.kind` and
/// `minhu.org.id` by the authenticator once the token is verified.
pub fn server_span<B>(request: &http::Request<B>) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc.request",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
        enduser.id = tracing::field::Empty,
        minhu.org.kind = tracing::field::Empty,
        minhu.org.id = tracing::field::Empty,
    );
    let _ = span.set_parent(extract_context(request.headers()));
    span
}

/// The span for one outgoing call to `service` (`minhu.roster.v1.RosterService`) `method`
/// (`ResolveLocation`), a client span by the same conventions; enter it (or `instrument` the
/// call with it) before the call so the trace context sent is its own, and record the
/// outcome with [`record_grpc_status`].
pub fn client_span(service: &str, method: &str) -> tracing::Span {
    tracing::info_span!(
        "grpc.call",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
    )
}

/// The codes the RPC conventions count as the server's failure (span status ERROR on a
/// server span): UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
/// DATA_LOSS. A caller's mistake (INVALID_ARGUMENT, NOT_FOUND, …) leaves the status unset.
pub fn is_server_error(code: i32) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// Records a call's gRPC status `code` on `span` (made by [`server_span`] or
/// [`client_span`]): `rpc.grpc.status_code`, and span status ERROR when the code is a
/// server failure — on a client span every non-OK code is one, as the conventions say.
pub fn record_grpc_status(span: &tracing::Span, code: i32, client: bool) {
    span.record("rpc.grpc.status_code", i64::from(code));
    if (client && code != 0) || (!client && is_server_error(code)) {
        span.record("otel.status_code", "ERROR");
    }
}

/// A client interceptor that puts the current trace context on every outgoing call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextInterceptor;

impl tonic::service::Interceptor for TraceContextInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        inject_context(request.metadata_mut());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    use super::*;

    #[test]
    fn a_trace_context_survives_the_trip_through_grpc_metadata() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let remote = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let context = opentelemetry::Context::new().with_remote_span_context(remote.clone());

        let mut metadata = MetadataMap::new();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&context, &mut MetadataInjector(&mut metadata))
        });
        assert_eq!(
            metadata.get("traceparent").unwrap().to_str().unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );

        let headers = metadata.into_headers();
        let extracted = extract_context(&headers);
        assert_eq!(extracted.span().span_context().trace_id(), remote.trace_id());
        assert_eq!(extracted.span().span_context().span_id(), remote.span_id());
        assert!(extracted.span().span_context().is_remote());
    }

    #[test]
    fn only_the_servers_own_failures_are_server_errors() {
        // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
        let errors: Vec<i32> = (0..=16).filter(|&code| is_server_error(code)).collect();
        assert_eq!(errors, [2, 4, 12, 13, 14, 15]);
    }

    #[test]
    fn a_request_without_traceparent_starts_no_remote_parent() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let extracted = extract_context(&http::HeaderMap::new());
        assert!(!extracted.span().span_context().is_valid());
    }
}
