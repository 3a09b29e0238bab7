//! W3C trace context: one trace follows a request through every service it touches.
//!
//! Spans are tracing's; `tracing-opentelemetry` gives them OpenTelemetry ids when a span
//! exporter is installed ([`crate::telemetry::init`] with `OTEL_EXPORTER_OTLP_ENDPOINT`).
//! The `traceparent` header carries a span's context to the next hop: from a caller into
//! the HTTP request span, from the request into the events it causes (stored with each
//! outboxed event, since the relay publishes later), from a published event into the
//! span of each service that handles it. Without an exporter spans have no context and
//! every function here does nothing.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header, on HTTP requests and on NATS messages.
pub const HEADER: &str = "traceparent";

/// The `traceparent` naming `span`, if it has a trace.
pub fn of(span: &Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(HEADER)
}

/// The `traceparent` of the span being handled by this task, if any.
pub fn current() -> Option<String> {
    of(&Span::current())
}

/// Makes `span` a child of the remote span `traceparent` names; a missing or malformed
/// one leaves `span` the root of a new trace.
pub fn continue_from(span: &Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = HashMap::from([(HEADER.to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        // Fails only when the span is disabled: then there is nothing to connect.
        let _ = span.set_parent(context);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    const REMOTE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_span_continues_the_callers_trace_and_passes_it_on() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            continue_from(&span, Some(REMOTE));
            let traceparent = of(&span).unwrap();
            // Same trace, a span of its own, sampled.
            assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
            assert!(!traceparent.contains("00f067aa0ba902b7"));
            assert!(traceparent.ends_with("-01"));

            let fresh = tracing::info_span!("request");
            continue_from(&fresh, Some("not a traceparent"));
            let other = of(&fresh).unwrap();
            assert!(!other.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
        });
    }

    #[test]
    fn without_an_exporter_there_is_nothing_to_pass_on() {
        let span = tracing::info_span!("request");
        continue_from(&span, Some(REMOTE));
        assert_eq!(of(&span), None);
    }
}
