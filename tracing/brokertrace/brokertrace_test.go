package brokertrace_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
	"github.com/domo-framework/domo/tracing"
	"github.com/domo-framework/domo/tracing/brokertrace"
	"github.com/domo-framework/domo/worker"
)

// TestTraceThroughBroker follows calls from a client through a real broker
// to a real worker and checks the spans: client -> broker.queue ->
// broker.handle, and the handler's span under the client's.
func TestTraceThroughBroker(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp) // StartCall and StartHandler use the global provider
	defer otel.SetTracerProvider(prev)

	// broker.Event does not carry the request's traceparent yet; until it
	// does, the test tells the tracer which traceparent each method's call
	// sent (one traced call per method).
	var parents sync.Map // "service.method" -> traceparent
	tracer := brokertrace.New(tp, brokertrace.WithParent(func(e broker.Event) (string, string) {
		v, _ := parents.Load(e.Service + "." + e.Method)
		s, _ := v.(string)
		return s, ""
	}))
	events := make(chan broker.Event, 256)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- tracer.Run(ctx, events) }()
	defer func() { cancel(); <-runDone }()

	_, ep := testbroker.Start(t, func(c *broker.Config) { c.Events = events })
	handlerSpans := make(chan trace.SpanContext, 4)
	w := worker.New("tea", worker.WithBroker(ep),
		worker.WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness))
	// What the worker SDK will do around every handler.
	traced := func(h worker.HandlerFunc) worker.HandlerFunc {
		return func(ctx context.Context, req *worker.Request) ([]byte, error) {
			ctx, span := tracing.StartHandler(ctx, req.Headers, req.Service, req.Method)
			defer span.End()
			handlerSpans <- trace.SpanContextFromContext(ctx)
			out, err := h(ctx, req)
			tracing.Fail(span, err)
			return out, err
		}
	}
	w.Handle("brew", traced(func(ctx context.Context, req *worker.Request) ([]byte, error) {
		return []byte(`"cup"`), nil
	}))
	w.Handle("spill", traced(func(ctx context.Context, req *worker.Request) ([]byte, error) {
		return nil, domo.Errorf(domo.CodeInvalid, "no tea")
	}))
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	defer func() { wcancel(); <-wdone }()

	c, err := client.New(client.WithBroker(ep))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// call makes one traced call, as the client SDK will.
	call := func(name string) (trace.SpanContext, error) {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cctx, span := tracing.StartCall(cctx, name)
		defer span.End()
		tp, _ := tracing.Fields(cctx)
		parents.Store(name, tp)
		_, err := c.Invoke(cctx, name, nil, client.Header(mdp.HeaderTraceparent, tp))
		tracing.Fail(span, err)
		return span.SpanContext(), err
	}
	// Wait for the worker: the first call may find none yet.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := c.Invoke(context.Background(), "tea.brew", nil); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("worker never served: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	<-handlerSpans // the untraced warm-up call's handler span

	brew, err := call("tea.brew")
	if err != nil {
		t.Fatal(err)
	}
	if hs := <-handlerSpans; hs.TraceID() != brew.TraceID() {
		t.Fatalf("handler ran in trace %v; want the caller's %v", hs.TraceID(), brew.TraceID())
	}
	spill, err := call("tea.spill")
	if !errors.Is(err, domo.ErrInvalid) {
		t.Fatalf("tea.spill = %v; want invalid", err)
	}
	<-handlerSpans
	nosuch, err := call("coffee.brew")
	if !errors.Is(err, domo.ErrUnknownService) {
		t.Fatalf("coffee.brew = %v; want unknown service", err)
	}

	// The broker's spans come from events, a moment after the reply.
	var spans tracetest.SpanStubs
	for deadline := time.Now().Add(5 * time.Second); ; {
		spans = exp.GetSpans()
		if n := count(spans, "broker."); n >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d broker spans after 5s; want 5:\n%v", count(spans, "broker."), names(spans))
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, tc := range []struct {
		name   string
		caller trace.SpanContext
		status codes.Code // of the handle span (of the queue span if not dispatched)
		code   string
	}{
		{"tea.brew", brew, codes.Ok, ""},
		{"tea.spill", spill, codes.Error, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caller := find(t, spans, tc.caller.TraceID(), tc.name, trace.SpanKindClient)
			queue := find(t, spans, tc.caller.TraceID(), "broker.queue "+tc.name, trace.SpanKindServer)
			handle := find(t, spans, tc.caller.TraceID(), "broker.handle "+tc.name, trace.SpanKindClient)
			handler := find(t, spans, tc.caller.TraceID(), tc.name, trace.SpanKindServer)
			if queue.Parent.SpanID() != caller.SpanContext.SpanID() {
				t.Errorf("queue span's parent = %v; want the client span %v", queue.Parent.SpanID(), caller.SpanContext.SpanID())
			}
			if handle.Parent.SpanID() != queue.SpanContext.SpanID() {
				t.Errorf("handle span's parent = %v; want the queue span %v", handle.Parent.SpanID(), queue.SpanContext.SpanID())
			}
			if handler.Parent.SpanID() != caller.SpanContext.SpanID() {
				t.Errorf("handler span's parent = %v; want the client span %v", handler.Parent.SpanID(), caller.SpanContext.SpanID())
			}
			if !queue.EndTime.Equal(handle.StartTime) {
				t.Errorf("queue ends %v, handle starts %v; want the same instant (the dispatch)", queue.EndTime, handle.StartTime)
			}
			if queue.StartTime.Before(caller.StartTime) || handle.EndTime.After(caller.EndTime) {
				t.Errorf("broker spans [%v, %v] outside the client span [%v, %v]",
					queue.StartTime, handle.EndTime, caller.StartTime, caller.EndTime)
			}
			if handle.Status.Code != tc.status || attr(handle, tracing.AttrCode) != tc.code {
				t.Errorf("handle span status %v, domo.code %q; want %v, %q", handle.Status, attr(handle, tracing.AttrCode), tc.status, tc.code)
			}
			if attr(handle, tracing.AttrWorker) == "" || attr(queue, tracing.AttrRequestID) == "" {
				t.Errorf("handle span has no worker or queue span no request id: %v / %v", handle.Attributes, queue.Attributes)
			}
		})
	}

	// Refused at once: a queue span only, failed.
	queue := find(t, spans, nosuch.TraceID(), "broker.queue coffee.brew", trace.SpanKindServer)
	if queue.Status.Code != codes.Error || attr(queue, tracing.AttrCode) != "unknown_service" {
		t.Errorf("unknown service queue span: status %v, code %q; want error, unknown_service", queue.Status, attr(queue, tracing.AttrCode))
	}
	for _, s := range spans {
		if s.Name == "broker.handle coffee.brew" {
			t.Error("a handle span for a request never dispatched")
		}
	}
	// The untraced warm-up call got no broker spans, and nothing is left open.
	if n := count(spans, "broker."); n != 5 {
		t.Errorf("%d broker spans; want 5 (untraced requests get none):\n%v", n, names(spans))
	}
	if open, _ := tracer.Open(); open != 0 {
		t.Errorf("tracer follows %d requests after all ended; want 0", open)
	}
}

// TestRetriesAndBounds drives the tracer with events directly: a request
// dispatched twice gets two handle spans, a dropped one a failed queue span,
// and requests beyond the limit are not followed.
func TestRetriesAndBounds(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tr := brokertrace.New(tp, brokertrace.WithRootSpans(), brokertrace.WithLimits(2, time.Minute))
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(kind broker.EventKind, seq uint64, ms int) broker.Event {
		return broker.Event{Kind: kind, Seq: seq, Service: "tea", Method: "brew", Received: t0, Time: at(ms)}
	}
	tr.Observe(ev(broker.Received, 1, 0))
	tr.Observe(ev(broker.Received, 2, 0))
	tr.Observe(ev(broker.Received, 3, 0)) // over the limit of 2
	tr.Observe(ev(broker.Dispatched, 1, 5))
	tr.Observe(ev(broker.Dispatched, 1, 9)) // worker lost, dispatched again
	tr.Observe(ev(broker.Completed, 1, 12))
	tr.Observe(ev(broker.Dropped, 2, 30))
	tr.Observe(ev(broker.Completed, 3, 30)) // never followed: ignored

	if open, skipped := tr.Open(); open != 0 || skipped != 1 {
		t.Errorf("Open() = %d, %d; want 0, 1", open, skipped)
	}
	spans := exp.GetSpans()
	var handles []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == "broker.handle tea.brew" {
			handles = append(handles, s)
		}
	}
	if len(handles) != 2 || handles[0].Status.Code != codes.Error || handles[1].Status.Code != codes.Ok ||
		!handles[0].EndTime.Equal(at(9)) || !handles[1].StartTime.Equal(at(9)) || !handles[1].EndTime.Equal(at(12)) {
		t.Fatalf("handle spans = %+v; want a failed one [5,9] ms and an ok one [9,12] ms", handles)
	}
	if attr(handles[1], tracing.AttrAttempt) != "2" {
		t.Errorf("second handle span attempt = %q; want 2", attr(handles[1], tracing.AttrAttempt))
	}
	var dropped int
	for _, s := range spans {
		if s.Name == "broker.queue tea.brew" && s.Status.Code == codes.Error && s.EndTime.Equal(at(30)) {
			dropped++
		}
	}
	if dropped != 1 || len(spans) != 4 {
		t.Errorf("got %d spans (%v), %d dropped queue spans; want 4 and 1", len(spans), names(spans), dropped)
	}
}

func count(spans tracetest.SpanStubs, prefix string) int {
	n := 0
	for _, s := range spans {
		if len(s.Name) >= len(prefix) && s.Name[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name+" "+s.SpanKind.String())
	}
	return out
}

func find(t *testing.T, spans tracetest.SpanStubs, id trace.TraceID, name string, kind trace.SpanKind) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.SpanContext.TraceID() == id && s.Name == name && s.SpanKind == kind {
			return s
		}
	}
	t.Fatalf("no %v span %q in trace %v among %v", kind, name, id, names(spans))
	return tracetest.SpanStub{}
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// TestNamesNotUTF8: text from the wire that is not UTF-8 reaches the spans
// mended; left as it was, it failed the OTLP export of the whole batch.
func TestNamesNotUTF8(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tr := brokertrace.New(tp, brokertrace.WithRootSpans())
	t0 := time.Now()
	e := broker.Event{Kind: broker.Received, Seq: 1, Service: "tea\xff", Method: "br\xfeew", RequestID: "r\xc3", Received: t0, Time: t0}
	tr.Observe(e)
	e.Kind, e.Worker, e.Code, e.Message = broker.Failed, "w\xff", "bad\xff", "boom \xff"
	tr.Observe(e)
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("got %d spans; want the queue span", len(spans))
	}
	s := spans[0]
	if s.Name != "broker.queue tea\uFFFD.br\uFFFDew" {
		t.Errorf("span name %q", s.Name)
	}
	for _, kv := range s.Attributes {
		if !utf8.ValidString(kv.Value.Emit()) {
			t.Errorf("attribute %s = %q is not UTF-8", kv.Key, kv.Value.Emit())
		}
	}
	if !utf8.ValidString(s.Status.Description) {
		t.Errorf("status %q is not UTF-8", s.Status.Description)
	}
}
