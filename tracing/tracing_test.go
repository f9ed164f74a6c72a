package tracing_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
	"github.com/domo-framework/domo/tracing"
)

func remoteCtx(t *testing.T, tp, ts string) context.Context {
	t.Helper()
	sc, ok := tracing.Parse(tp, ts)
	if !ok {
		t.Fatalf("Parse(%q, %q) not valid", tp, ts)
	}
	return trace.ContextWithRemoteSpanContext(context.Background(), sc)
}

func TestRoundTrip(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const ts = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
	ctx := remoteCtx(t, tp, ts)

	h := mdp.AppendHeader(nil, mdp.HeaderID, "r1")
	h = tracing.Inject(ctx, h)
	if err := h.Validate(); err != nil {
		t.Fatalf("Inject made an invalid frame: %v", err)
	}
	if v, _ := h.Get(mdp.HeaderTraceparent); string(v) != tp {
		t.Errorf("traceparent header = %q; want %q", v, tp)
	}
	if v, _ := h.Get(mdp.HeaderTracestate); string(v) != ts {
		t.Errorf("tracestate header = %q; want %q", v, ts)
	}
	if v, _ := h.Get(mdp.HeaderID); string(v) != "r1" {
		t.Errorf("id header = %q; want r1 kept", v)
	}

	got := trace.SpanContextFromContext(tracing.Extract(context.Background(), h))
	want := trace.SpanContextFromContext(ctx)
	if !got.Equal(want) || !got.IsRemote() {
		t.Errorf("Extract(Inject(sc)) = %v; want %v, remote", got, want)
	}
	if p, s := tracing.Fields(ctx); p != tp || s != ts {
		t.Errorf("Fields = %q, %q; want %q, %q", p, s, tp, ts)
	}
}

func TestNoContext(t *testing.T) {
	h := mdp.AppendHeader(nil, mdp.HeaderID, "r1")
	if got := tracing.Inject(context.Background(), h); !bytes.Equal(got, h) {
		t.Errorf("Inject without a span changed the headers: %q", got)
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-zz-01"} {
		h := mdp.AppendHeader(nil, mdp.HeaderTraceparent, bad)
		if sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), h)); sc.IsValid() {
			t.Errorf("Extract(traceparent %q) = %v; want no span context", bad, sc)
		}
		if _, ok := tracing.Parse(bad, ""); ok {
			t.Errorf("Parse(%q) valid; want not", bad)
		}
	}
	if sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), nil)); sc.IsValid() {
		t.Error("Extract(nil headers) found a span context")
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("request_id", "r1")
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "x")
	defer span.End()
	log.InfoContext(ctx, "handled")
	log.Info("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	sc := span.SpanContext()
	if !strings.Contains(lines[0], `"trace_id":"`+sc.TraceID().String()+`"`) ||
		!strings.Contains(lines[0], `"span_id":"`+sc.SpanID().String()+`"`) ||
		!strings.Contains(lines[0], `"request_id":"r1"`) {
		t.Errorf("log line with a span = %s; want trace_id, span_id and request_id", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("log line without a span = %s; want no trace_id", lines[1])
	}
}

func TestFail(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	_, span := tp.Tracer("t").Start(context.Background(), "x")
	tracing.Fail(span, domo.Errorf(domo.CodeInvalid, "bad cups"))
	span.End()
	ro := span.(sdktrace.ReadOnlySpan)
	if ro.Status().Description != "invalid: bad cups" && !strings.Contains(ro.Status().Description, "bad cups") {
		t.Errorf("status = %+v", ro.Status())
	}
	var code string
	for _, a := range ro.Attributes() {
		if a.Key == tracing.AttrCode {
			code = a.Value.AsString()
		}
	}
	if code != "invalid" {
		t.Errorf("domo.code = %q; want invalid", code)
	}
}

// TestStartHandlerWithoutProvider: with no tracer provider set (no test
// in this package sets one), StartHandler starts no span, but the
// handler's context still carries the caller's span context, so that the
// calls it makes join the caller's trace.
func TestStartHandlerWithoutProvider(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	h := mdp.AppendHeader(nil, mdp.HeaderID, "r1")
	h = mdp.AppendHeader(h, mdp.HeaderTraceparent, tp)
	ctx, span := tracing.StartHandler(context.Background(), h, "tea", "brew")
	defer span.End()
	if span.IsRecording() {
		t.Error("span records with no tracer provider set")
	}
	if p, _ := tracing.Fields(ctx); p != tp {
		t.Errorf("Fields(handler's ctx) traceparent = %q; want the caller's %q", p, tp)
	}
	tracing.Fail(span, domo.Errorf(domo.CodeInvalid, "bad")) // must not panic on the remote span

	ctx, span = tracing.StartHandler(context.Background(), mdp.Headers{mdp.HeadersMagic}, "tea", "brew")
	defer span.End()
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		t.Errorf("a request without trace headers got span context %v", sc)
	}

	// A worker run under a live span of a provider that is not the
	// global one: the handler's span must not be that span.
	sdk := sdktrace.NewTracerProvider()
	defer sdk.Shutdown(context.Background())
	runCtx, run := sdk.Tracer("app").Start(context.Background(), "worker.Run")
	defer run.End()
	hctx, hspan := tracing.StartHandler(runCtx, mdp.Headers{mdp.HeadersMagic}, "tea", "brew")
	tracing.Fail(hspan, domo.Errorf(domo.CodeInvalid, "bad"))
	hspan.End()
	if !run.IsRecording() {
		t.Error("the handler's span ended the worker's own span")
	}
	if got := trace.SpanContextFromContext(hctx); !got.Equal(run.SpanContext()) {
		t.Errorf("handler ctx span context = %v; want the worker's %v", got, run.SpanContext())
	}
}

// BenchmarkStartHandler: what the worker SDK spends on tracing for each
// request with no tracer provider set, the default.
func BenchmarkStartHandler(b *testing.B) {
	h := mdp.AppendHeader(nil, mdp.HeaderID, "0badcafe-1f")
	h = mdp.AppendDeadline(h, time.Now().Add(time.Minute))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, span := tracing.StartHandler(ctx, h, "water", "echo")
		span.End()
	}
}
