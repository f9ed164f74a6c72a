package tracing

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

// ScopeName is the instrumentation scope of domo's spans.
const ScopeName = "github.com/domo-framework/domo"

// Attribute keys on domo's spans.
const (
	AttrService   = attribute.Key("rpc.service")
	AttrMethod    = attribute.Key("rpc.method")
	AttrSystem    = attribute.Key("rpc.system") // always "domo"
	AttrRequestID = attribute.Key("domo.request_id")
	AttrCode      = attribute.Key("domo.code") // the domo error code of a failure
	AttrWorker    = attribute.Key("domo.worker")
	AttrSeq       = attribute.Key("domo.seq")
	AttrAttempt   = attribute.Key("domo.attempt")
)

var propagator = propagation.TraceContext{}

// Tracer returns domo's tracer from the global tracer provider.
func Tracer() trace.Tracer { return otel.Tracer(ScopeName) }

// headerCarrier reads a headers frame for the propagator.
type headerCarrier mdp.Headers

func (h headerCarrier) Get(key string) string {
	v, _ := mdp.Headers(h).Get(key)
	return string(v)
}

func (h headerCarrier) Set(string, string) {}

func (h headerCarrier) Keys() []string {
	var keys []string
	for k := range mdp.Headers(h).All() {
		keys = append(keys, k)
	}
	return keys
}

// fieldCarrier collects the two trace context fields.
type fieldCarrier struct{ traceparent, tracestate string }

func (c *fieldCarrier) Get(key string) string {
	switch key {
	case mdp.HeaderTraceparent:
		return c.traceparent
	case mdp.HeaderTracestate:
		return c.tracestate
	}
	return ""
}

func (c *fieldCarrier) Set(key, value string) {
	switch key {
	case mdp.HeaderTraceparent:
		c.traceparent = value
	case mdp.HeaderTracestate:
		c.tracestate = value
	}
}

func (c *fieldCarrier) Keys() []string {
	return []string{mdp.HeaderTraceparent, mdp.HeaderTracestate}
}

// Fields returns the traceparent and tracestate header values for the span
// context in ctx, or two empty strings if ctx carries no valid one. Use it
// with client.Header.
func Fields(ctx context.Context) (traceparent, tracestate string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", "" // most calls: spare the propagator's work
	}
	var c fieldCarrier
	propagator.Inject(ctx, &c)
	return c.traceparent, c.tracestate
}

// Inject appends the traceparent (and, if not empty, tracestate) headers
// for the span context in ctx to h and returns the extended frame; h is
// returned unchanged if ctx carries no valid span context.
func Inject(ctx context.Context, h mdp.Headers) mdp.Headers {
	tp, ts := Fields(ctx)
	if tp == "" {
		return h
	}
	h = mdp.AppendHeader(h, mdp.HeaderTraceparent, tp)
	if ts != "" {
		h = mdp.AppendHeader(h, mdp.HeaderTracestate, ts)
	}
	return h
}

// Extract returns ctx carrying the remote span context in h's traceparent
// and tracestate headers, or ctx unchanged if h has no valid traceparent.
func Extract(ctx context.Context, h mdp.Headers) context.Context {
	if _, ok := h.Get(mdp.HeaderTraceparent); !ok {
		return ctx // most requests: spare the propagator's work
	}
	return propagator.Extract(ctx, headerCarrier(h))
}

// Parse returns the span context the two header values describe, and
// whether traceparent was valid.
func Parse(traceparent, tracestate string) (trace.SpanContext, bool) {
	if traceparent == "" {
		return trace.SpanContext{}, false
	}
	ctx := propagator.Extract(context.Background(), &fieldCarrier{traceparent, tracestate})
	sc := trace.SpanContextFromContext(ctx)
	return sc, sc.IsValid()
}

// StartCall starts a client span named name ("service.method") for a call
// and returns ctx carrying it; put it in the request with Inject or Fields
// and End the span when the call returns (after End, Fail marks it failed).
func StartCall(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	service, method := split(name)
	return Tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(attrs, AttrSystem.String("domo"), AttrService.String(service), AttrMethod.String(method))...))
}

// placeholder is the global tracer provider as OpenTelemetry starts it, a
// stand-in whose spans record nothing until otel.SetTracerProvider
// replaces it; nil if a provider was set before this package initialized
// (another package's init), which then is never taken for the stand-in.
var placeholder = func() trace.TracerProvider {
	tp := otel.GetTracerProvider()
	if reflect.TypeOf(tp).String() != "*global.tracerProvider" {
		return nil
	}
	return tp
}()

// tracingOff reports that no tracer provider was ever set, so that a span
// would record nothing: what it would cost (attributes, a name, the
// provider's lookups; a sixth of a worker's CPU with small requests) can
// be skipped. (OpenTelemetry's eBPF auto-instrumentation, which records
// through the stand-in without setting a provider, then sees no handler
// spans; set a provider to have them.)
func tracingOff() bool { return placeholder != nil && otel.GetTracerProvider() == placeholder }

// StartHandler starts a server span for a request a worker handles, as a
// child of the caller's span found in the request headers h (a new trace
// if they carry none), and returns ctx carrying it. End the span when the
// handler returns.
//
// While no tracer provider is set (otel.SetTracerProvider), it starts no
// span: ctx carries the caller's span context, if the headers have one, so
// that calls the handler makes still join the caller's trace, and the
// span returned is that remote span, which records nothing.
func StartHandler(ctx context.Context, h mdp.Headers, service, method string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx = Extract(ctx, h)
	if tracingOff() {
		span := trace.SpanFromContext(ctx)
		if span.IsRecording() {
			// ctx came with a live span of its own (the worker's, from a
			// provider of the caller's): the handler must not end it.
			// What the stand-in would have started: a span that records
			// nothing, with the parent's span context.
			span = trace.SpanFromContext(trace.ContextWithSpanContext(context.Background(), span.SpanContext()))
		}
		return ctx, span
	}
	// Text from the wire goes into the span as valid UTF-8: OTLP is
	// protobuf, and one span that is not fails the export of its batch.
	service, method = strings.ToValidUTF8(service, "\uFFFD"), strings.ToValidUTF8(method, "\uFFFD")
	attrs = append(attrs, AttrSystem.String("domo"), AttrService.String(service), AttrMethod.String(method))
	if id, ok := h.Get(mdp.HeaderID); ok {
		attrs = append(attrs, AttrRequestID.String(strings.ToValidUTF8(string(id), "\uFFFD")))
	}
	return Tracer().Start(ctx, service+"."+method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
}

// Fail records err on span and marks it failed, with the domo error code
// as the domo.code attribute; a nil err does nothing.
func Fail(span trace.Span, err error) {
	if err == nil {
		return
	}
	code := domo.CodeInternal
	var de *domo.Error
	if errors.As(err, &de) && de.Code != "" {
		code = de.Code
	}
	span.SetAttributes(AttrCode.String(string(code)))
	span.SetStatus(codes.Error, err.Error())
}

func split(name string) (service, method string) {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			return name[:i], name[i+1:]
		}
	}
	return name, ""
}

// LogHandler wraps h so that every record logged with a context carrying
// a valid span (logger.InfoContext(ctx, ...)) gets trace_id and span_id
// attributes, which lets a log line be found from its trace and back.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(attrs)}
}

func (l logHandler) WithGroup(name string) slog.Handler {
	return logHandler{l.Handler.WithGroup(name)}
}
