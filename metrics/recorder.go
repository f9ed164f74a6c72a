package metrics

import (
	"context"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
)

// Label values the Recorder puts in place of names it will not keep.
const (
	// LabelUnknown replaces the service of a request refused as
	// unknown_service and the method of one answered unknown_method: such
	// names come from callers, so keeping them would let any caller grow
	// the number of series without bound.
	LabelUnknown = "_unknown"
	// LabelOther replaces service and method once MaxSeries pairs are in use.
	LabelOther = "_other"
	// LabelNoMethod is the method of a plain MDP request, which has none.
	LabelNoMethod = "_mdp"
)

// Status label values besides the domo error codes.
const (
	StatusOK      = "ok"      // completed with a success reply
	StatusDropped = "dropped" // dropped unanswered: its deadline passed in a queue
)

// DefaultMaxSeries is the number of service and method pairs a Recorder
// keeps apart by default.
const DefaultMaxSeries = 1000

// DefaultBuckets are the latency buckets in seconds: 100 µs to 10 s.
var DefaultBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Recorder turns broker events into request metrics:
//
//	domo_requests_total{service,method,status}                 counter
//	domo_request_duration_seconds{service,method,status}       histogram, received to answered
//	domo_request_queue_seconds{service}                        histogram, received to dispatched
//
// status is "ok", a domo error code ("unknown_method", "internal",
// "overloaded", ...) or "dropped". A request is counted once, when it ends
// (Completed, Failed or Dropped); a request dispatched again after its worker
// was lost adds one queue observation per dispatch. Service and method
// labels are bounded: see LabelUnknown and LabelOther.
//
// A Recorder is a prometheus.Collector. Its methods are safe for concurrent
// use.
type Recorder struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	queue    *prometheus.HistogramVec

	mu        sync.Mutex
	maxSeries int
	pairs     map[[2]string]struct{}
	services  map[string]struct{}
	statuses  map[string]struct{} // error codes seen, at most MaxStatuses
}

// RecorderOption configures a Recorder.
type RecorderOption func(*Recorder)

// WithMaxSeries sets how many service and method pairs the Recorder keeps
// apart (DefaultMaxSeries); requests beyond them are counted under
// LabelOther.
func WithMaxSeries(n int) RecorderOption {
	return func(r *Recorder) { r.maxSeries = n }
}

// WithBuckets sets the latency histograms' buckets, in seconds.
func WithBuckets(b []float64) RecorderOption {
	return func(r *Recorder) {
		r.duration = newDuration(b)
		r.queue = newQueue(b)
	}
}

func newDuration(b []float64) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "domo_request_duration_seconds",
		Help:    "Time from the broker receiving a request to it passing on the answer, by service, method and status.",
		Buckets: b,
	}, []string{"service", "method", "status"})
}

func newQueue(b []float64) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "domo_request_queue_seconds",
		Help:    "Time from the broker receiving a request to dispatching it to a worker or peer, by service; one observation per dispatch.",
		Buckets: b,
	}, []string{"service"})
}

// NewRecorder returns a Recorder with no counts.
func NewRecorder(opts ...RecorderOption) *Recorder {
	r := &Recorder{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domo_requests_total",
			Help: "Requests the broker finished, by service, method and status (ok, a domo error code, or dropped).",
		}, []string{"service", "method", "status"}),
		duration:  newDuration(DefaultBuckets),
		queue:     newQueue(DefaultBuckets),
		maxSeries: DefaultMaxSeries,
		pairs:     make(map[[2]string]struct{}),
		services:  make(map[string]struct{}),
		statuses:  make(map[string]struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Describe implements prometheus.Collector.
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	r.requests.Describe(ch)
	r.duration.Describe(ch)
	r.queue.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *Recorder) Collect(ch chan<- prometheus.Metric) {
	r.requests.Collect(ch)
	r.duration.Collect(ch)
	r.queue.Collect(ch)
}

// Run records every event from events until events is closed (it returns
// nil) or ctx ends (it returns ctx.Err()). It blocks.
func (r *Recorder) Run(ctx context.Context, events <-chan broker.Event) error {
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return nil
			}
			r.Observe(e)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Observe records one event. It does not block on I/O.
func (r *Recorder) Observe(e broker.Event) {
	switch e.Kind {
	case broker.Dispatched:
		r.queue.WithLabelValues(r.service(e.Service)).Observe(e.Time.Sub(e.Received).Seconds())
	case broker.Completed, broker.Failed:
		status := StatusOK
		if e.Kind == broker.Failed {
			status = r.status(e.Code)
		}
		svc, method := r.labels(e.Service, e.Method, e.Code)
		r.requests.WithLabelValues(svc, method, status).Inc()
		r.duration.WithLabelValues(svc, method, status).Observe(e.Time.Sub(e.Received).Seconds())
	case broker.Dropped:
		svc, method := r.labels(e.Service, e.Method, e.Code)
		r.requests.WithLabelValues(svc, method, StatusDropped).Inc()
	}
}

// labels returns the service and method labels for a request, bounded.
func (r *Recorder) labels(service, method string, code domo.Code) (string, string) {
	if method == "" {
		method = LabelNoMethod
	}
	switch code {
	case domo.CodeUnknownService:
		return LabelUnknown, LabelUnknown
	case domo.CodeUnknownMethod:
		method = LabelUnknown
	}
	service, method = labelValue(service), labelValue(method)
	r.mu.Lock()
	defer r.mu.Unlock()
	key := [2]string{service, method}
	if _, ok := r.pairs[key]; ok {
		return service, method
	}
	if len(r.pairs) >= r.maxSeries {
		if _, ok := r.services[service]; ok {
			return service, LabelOther
		}
		return LabelOther, LabelOther
	}
	r.pairs[key] = struct{}{}
	r.services[service] = struct{}{}
	return service, method
}

// MaxStatuses bounds the error codes the Recorder keeps apart in the
// status label; codes come from workers (applications may define their
// own), and later ones are counted under LabelOther.
const MaxStatuses = 64

// status returns the status label of a request that failed with code.
func (r *Recorder) status(code domo.Code) string {
	if code == "" {
		return string(domo.CodeInternal)
	}
	s := labelValue(string(code))
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.statuses[s]; ok {
		return s
	}
	if len(r.statuses) >= MaxStatuses {
		return LabelOther
	}
	r.statuses[s] = struct{}{}
	return s
}

// service returns the service label for a dispatched request, bounded
// like labels: a request is dispatched only to a service some worker or
// peer offers.
func (r *Recorder) service(service string) string {
	service = labelValue(service)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.services[service]; ok {
		return service
	}
	if len(r.services) >= r.maxSeries {
		return LabelOther
	}
	r.services[service] = struct{}{}
	return service
}

// labelValue returns v as Prometheus takes a label value: valid UTF-8, with
// U+FFFD for what is not. Names come from callers, and a label value that
// is not UTF-8 makes the client library panic (WithLabelValues,
// MustNewConstMetric), which took the broker down.
func labelValue(v string) string { return strings.ToValidUTF8(v, "\uFFFD") }
