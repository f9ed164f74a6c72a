// Package tracing carries OpenTelemetry trace context through domo
// requests in the W3C "traceparent" and "tracestate" headers of the domo
// envelope (mdp.HeaderTraceparent, mdp.HeaderTracestate).
//
// A caller starts a span and puts its context in the request's headers; the
// broker, which never rewrites a request, reports the request's steps as
// events, from which package tracing/brokertrace builds the broker's spans
// (time in the queue, then time at the worker) as children of the caller's
// span; the worker takes the context out of the headers and runs the
// handler in a span of its own, also a child of the caller's:
//
//	caller span "tea.brew" (client)
//	├── broker.queue tea.brew   (received -> dispatched)
//	│   └── broker.handle tea.brew (dispatched -> answered)
//	└── tea.brew (server, in the worker, around the handler)
//
// Caller side:
//
//	ctx, span := tracing.StartCall(ctx, "tea.brew")
//	defer span.End()
//	h := tracing.Inject(ctx, nil) // or tracing.Fields(ctx) for client.Header
//
// Worker side:
//
//	ctx, span := tracing.StartHandler(ctx, req.Headers, req.Service, req.Method)
//	defer span.End()
//
// The functions here use only the OpenTelemetry API and the global tracer
// provider (otel.SetTracerProvider): with none set, spans cost next to
// nothing and record nothing. Package tracing/otlp sets up an exporter.
// The propagation format is always W3C Trace Context, whatever global
// propagator is set, since the header names are part of the protocol.
package tracing
