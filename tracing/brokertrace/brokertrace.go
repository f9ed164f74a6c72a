// Package brokertrace turns the broker's request events into
// OpenTelemetry spans: for each traced request, a "broker.queue" span from
// the broker receiving it to dispatching it, child of the caller's span,
// and a "broker.handle" span from the dispatch to the answer, child of the
// queue span. The broker's loop never does this work: the spans are built
// from broker.Config.Events, off the routing path, with the events' own
// timestamps.
//
//	t := brokertrace.New(otel.GetTracerProvider())
//	go t.Run(ctx, bus.Subscribe("tracing", 4096).C)
//
// The caller's span comes from the request's traceparent header, which
// the event must carry (see WithParent). A request without one is not
// traced unless WithRootSpans is given. Sampling is the tracer provider's:
// with the default parent-based sampler, a caller that does not sample
// gets no broker spans either.
package brokertrace

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/tracing"
)

// Defaults of a Tracer's bounds.
const (
	DefaultMaxOpen = 100000
	DefaultMaxAge  = 10 * time.Minute
)

// ParentFunc returns the traceparent and tracestate header values of the
// request an event belongs to, "" if none. It is called for Received
// events only.
type ParentFunc func(e broker.Event) (traceparent, tracestate string)

// Option configures a Tracer.
type Option func(*Tracer)

// WithParent sets how the Tracer finds a request's traceparent. The
// default finds none, so that only WithRootSpans traces anything, until
// broker.Event carries the request's trace headers.
func WithParent(f ParentFunc) Option { return func(t *Tracer) { t.parent = f } }

// WithRootSpans traces requests that carry no traceparent too, each as the
// root of a new trace.
func WithRootSpans() Option { return func(t *Tracer) { t.roots = true } }

// WithLimits bounds the requests the Tracer follows at once (DefaultMaxOpen;
// more are not traced) and how long it follows one whose end it never saw,
// say because the event was dropped (DefaultMaxAge; such spans end marked
// abandoned).
func WithLimits(maxOpen int, maxAge time.Duration) Option {
	return func(t *Tracer) { t.maxOpen, t.maxAge = maxOpen, maxAge }
}

// Tracer builds spans from broker events. Its methods are safe for
// concurrent use; events of one request must be observed in order, as one
// Run does.
type Tracer struct {
	tracer  trace.Tracer
	parent  ParentFunc
	roots   bool
	maxOpen int
	maxAge  time.Duration

	mu        sync.Mutex
	open      map[uint64]*request
	lastSweep time.Time
	skipped   uint64
}

type request struct {
	received time.Time
	ctx      context.Context // carries the queue span
	queue    trace.Span
	queued   bool // queue still open
	handle   trace.Span
	attempt  int
}

// New returns a Tracer whose spans come from tp's tracer for
// tracing.ScopeName.
func New(tp trace.TracerProvider, opts ...Option) *Tracer {
	t := &Tracer{
		tracer:  tp.Tracer(tracing.ScopeName),
		parent:  func(e broker.Event) (string, string) { return e.Traceparent, e.Tracestate },
		maxOpen: DefaultMaxOpen,
		maxAge:  DefaultMaxAge,
		open:    make(map[uint64]*request),
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Run observes every event from events until events is closed (it returns
// nil) or ctx ends (it returns ctx.Err()); either way it then ends the
// spans still open, marked abandoned. It blocks.
func (t *Tracer) Run(ctx context.Context, events <-chan broker.Event) error {
	defer t.abandonAll(time.Now())
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return nil
			}
			t.Observe(e)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Open returns how many requests the Tracer follows now, and how many it
// did not trace because it followed MaxOpen already.
func (t *Tracer) Open() (open int, skipped uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open), t.skipped
}

// Observe handles one event. It does not block on I/O (span export is the
// tracer provider's, batched).
func (t *Tracer) Observe(e broker.Event) {
	// Names, ids and messages come from callers and workers; a span with
	// text that is not UTF-8 fails the export of its whole batch (OTLP is
	// protobuf, whose strings must be UTF-8).
	for _, f := range []*string{&e.Service, &e.Method, &e.RequestID, &e.Worker, &e.Message} {
		*f = strings.ToValidUTF8(*f, "\uFFFD")
	}
	e.Code = domo.Code(strings.ToValidUTF8(string(e.Code), "\uFFFD"))
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Kind == broker.Received {
		t.received(e)
		return
	}
	r := t.open[e.Seq]
	if r == nil {
		return
	}
	switch e.Kind {
	case broker.Dispatched:
		end := trace.WithTimestamp(e.Time)
		if r.queued {
			r.queue.End(end)
			r.queued = false
		}
		if r.handle != nil { // dispatched again: the worker was lost
			r.handle.SetStatus(codes.Error, "worker lost; dispatched again")
			r.handle.End(end)
		}
		r.attempt++
		_, r.handle = t.tracer.Start(r.ctx, "broker.handle "+name(e), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithTimestamp(e.Time),
			trace.WithAttributes(tracing.AttrWorker.String(e.Worker), tracing.AttrAttempt.Int(r.attempt)))
	case broker.Completed:
		t.finish(e, r, codes.Ok, "")
	case broker.Failed:
		t.finish(e, r, codes.Error, e.Message)
	case broker.Dropped:
		t.finish(e, r, codes.Error, "dropped: deadline passed in the queue")
	}
}

func (t *Tracer) received(e broker.Event) {
	if e.Time.Sub(t.lastSweep) > time.Minute || len(t.open) >= t.maxOpen {
		t.sweep(e.Time)
	}
	if len(t.open) >= t.maxOpen {
		t.skipped++
		return
	}
	ctx := context.Background()
	tp, ts := t.parent(e)
	if sc, ok := tracing.Parse(tp, ts); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	} else if !t.roots {
		return
	}
	ctx, span := t.tracer.Start(ctx, "broker.queue "+name(e), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(e.Received),
		trace.WithAttributes(
			tracing.AttrSystem.String("domo"),
			tracing.AttrService.String(e.Service),
			tracing.AttrMethod.String(e.Method),
			tracing.AttrRequestID.String(e.RequestID),
			tracing.AttrSeq.Int64(int64(e.Seq)),
		))
	if !span.IsRecording() { // not sampled: nothing to follow
		span.End()
		return
	}
	t.open[e.Seq] = &request{received: e.Received, ctx: ctx, queue: span, queued: true}
}

func (t *Tracer) finish(e broker.Event, r *request, code codes.Code, msg string) {
	delete(t.open, e.Seq)
	span := r.handle
	if span == nil || r.queued {
		span = r.queue
	}
	if e.Code != "" {
		span.SetAttributes(tracing.AttrCode.String(string(e.Code)))
	}
	span.SetStatus(code, msg)
	span.End(trace.WithTimestamp(e.Time))
	if r.queued && r.handle != nil { // cannot happen, but never leak a span
		r.handle.End(trace.WithTimestamp(e.Time))
	}
}

// sweep ends the spans of requests older than maxAge.
func (t *Tracer) sweep(now time.Time) {
	t.lastSweep = now
	for seq, r := range t.open {
		if now.Sub(r.received) > t.maxAge {
			abandon(r, now)
			delete(t.open, seq)
		}
	}
}

func (t *Tracer) abandonAll(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for seq, r := range t.open {
		abandon(r, now)
		delete(t.open, seq)
	}
}

func abandon(r *request, now time.Time) {
	for _, s := range []trace.Span{r.queue, r.handle} {
		if s != nil {
			s.SetStatus(codes.Error, "abandoned: the request's end was not seen")
			s.End(trace.WithTimestamp(now))
		}
	}
}

func name(e broker.Event) string {
	if e.Method == "" {
		return e.Service
	}
	return e.Service + "." + e.Method
}
