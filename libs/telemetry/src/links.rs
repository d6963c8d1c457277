//! Trace contexts kept beside stored work, so that background work done later — a deadline
//! firing, a feed batch consumed — can link its own span to the request that caused it.
//!
//! Background work is its own trace (a deadline may fire days after its request ended), so
//! the stored context becomes an OpenTelemetry span *link*, never a parent.

use opentelemetry::{
    propagation::{Extractor, Injector},
    trace::{SpanContext, TraceContextExt as _},
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// A W3C trace context as text: `traceparent` (`00-<trace id>-<span id>-<flags>`) and
/// `tracestate` (empty when there is none). It names a span, never anyone's data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredContext {
    /// The `traceparent` header value.
    pub traceparent: String,
    /// The `tracestate` header value, often empty.
    pub tracestate: String,
}

#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Injector for Fields {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

impl Extractor for Fields {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// The current span's trace context, to store with work it schedules; `None` outside any
/// exported span (no OTLP endpoint, or a span the trace filter drops).
pub fn current_context() -> Option<StoredContext> {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut fields = Fields::default();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut fields));
    let traceparent = fields.get("traceparent")?.to_owned();
    let tracestate = fields.get("tracestate").unwrap_or_default().to_owned();
    Some(StoredContext { traceparent, tracestate })
}

/// The span a stored `traceparent` (and `tracestate`) names; `None` when it does not parse
/// (an old row, a value from elsewhere): the work then simply has no link.
pub fn parse_context(traceparent: &str, tracestate: &str) -> Option<SpanContext> {
    let mut fields = Fields(vec![("traceparent".into(), traceparent.to_owned())]);
    if !tracestate.is_empty() {
        fields.0.push(("tracestate".into(), tracestate.to_owned()));
    }
    let context = opentelemetry::global::get_text_map_propagator(|p| p.extract(&fields));
    let span = context.span().span_context().clone();
    span.is_valid().then_some(span)
}

/// Links `span` to the span a stored context names (no-op when it does not parse). Call it
/// before the span is first entered.
pub fn link_to(span: &tracing::Span, traceparent: &str, tracestate: &str) -> bool {
    match parse_context(traceparent, tracestate) {
        Some(linked) => {
            span.add_link(linked);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    use super::*;

    #[test]
    fn a_stored_traceparent_names_its_span_and_garbage_names_none() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let span = parse_context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "a=1").expect("valid");
        assert_eq!(span.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(span.trace_state().header(), "a=1");
        assert!(parse_context("", "").is_none());
        assert!(parse_context("00-zz-yy-01", "").is_none());
    }

    #[test]
    fn outside_any_span_there_is_no_context_to_store() {
        assert_eq!(current_context(), None);
    }
}
