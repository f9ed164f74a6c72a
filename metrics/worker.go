package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/worker"
)

// WorkerStatsSource is what a WorkerCollector reads: *worker.Worker
// satisfies it.
type WorkerStatsSource interface {
	Stats() worker.Stats
}

// WorkerCollector reports a worker's counters on each scrape, labeled with
// its service:
//
//	domo_worker_handled_total, domo_worker_failed_total,
//	domo_worker_panics_total, domo_worker_rejected_total,
//	domo_worker_malformed_total, domo_worker_dropped_replies_total,
//	domo_worker_reconnects_total
//
// It is safe for concurrent use.
type WorkerCollector struct {
	src     WorkerStatsSource
	service string
	descs   []workerDesc
}

type workerDesc struct {
	desc *prometheus.Desc
	get  func(*worker.Stats) uint64
}

var workerCounters = []struct {
	name, help string
	get        func(*worker.Stats) uint64
}{
	{"handled", "Requests answered with a success.", func(s *worker.Stats) uint64 { return s.Handled }},
	{"failed", "Requests answered with an error by the handler or the SDK.", func(s *worker.Stats) uint64 { return s.Failed }},
	{"panics", "Handler panics recovered.", func(s *worker.Stats) uint64 { return s.Panics }},
	{"rejected", "Requests refused without running a handler: overloaded or shutting down.", func(s *worker.Stats) uint64 { return s.Rejected }},
	{"malformed", "Messages from the broker dropped as malformed or over the limits.", func(s *worker.Stats) uint64 { return s.Malformed }},
	{"dropped_replies", "Replies not sent: their connection was lost or the send failed.", func(s *worker.Stats) uint64 { return s.DroppedReplies }},
	{"reconnects", "Connections to a broker replaced by a new one.", func(s *worker.Stats) uint64 { return s.Reconnects }},
}

// NewWorkerCollector returns a collector of w's counters, labeled
// service="<service>" (the name w was created with).
func NewWorkerCollector(service string, w WorkerStatsSource) *WorkerCollector {
	c := &WorkerCollector{src: w, service: service}
	for _, k := range workerCounters {
		c.descs = append(c.descs, workerDesc{
			desc: prometheus.NewDesc("domo_worker_"+k.name+"_total", k.help, nil, prometheus.Labels{"service": service}),
			get:  k.get,
		})
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *WorkerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d.desc
	}
}

// Collect implements prometheus.Collector.
func (c *WorkerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	for _, d := range c.descs {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.get(&st)))
	}
}

// HandlerMetrics times handlers in a worker:
//
//	domo_handler_duration_seconds{service,method,status}   histogram
//
// status is "ok" or the domo error code the handler's error carries
// ("internal" for a plain error). Wrap each handler with Wrap; the labels
// are fixed when wrapping, so callers cannot add series. It is a
// prometheus.Collector and safe for concurrent use.
type HandlerMetrics struct {
	duration *prometheus.HistogramVec
}

// NewHandlerMetrics returns HandlerMetrics with the given buckets in
// seconds (DefaultBuckets if nil).
func NewHandlerMetrics(buckets []float64) *HandlerMetrics {
	if buckets == nil {
		buckets = DefaultBuckets
	}
	return &HandlerMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "domo_handler_duration_seconds",
		Help:    "Time a handler took, by service, method and status.",
		Buckets: buckets,
	}, []string{"service", "method", "status"})}
}

// Describe implements prometheus.Collector.
func (m *HandlerMetrics) Describe(ch chan<- *prometheus.Desc) { m.duration.Describe(ch) }

// Collect implements prometheus.Collector.
func (m *HandlerMetrics) Collect(ch chan<- prometheus.Metric) { m.duration.Collect(ch) }

// Wrap returns h timed under service and method. A panic in h is timed as
// "internal" and passed on to the worker, which recovers it.
func (m *HandlerMetrics) Wrap(service, method string, h worker.Handler) worker.Handler {
	service, method = labelValue(service), labelValue(method)
	return worker.HandlerFunc(func(ctx context.Context, req *worker.Request) (out []byte, err error) {
		start := time.Now()
		status := string(domo.CodeInternal)
		defer func() {
			m.duration.WithLabelValues(service, method, status).Observe(time.Since(start).Seconds())
		}()
		out, err = h.ServeMDP(ctx, req)
		status = statusOf(err)
		return out, err
	})
}

func statusOf(err error) string {
	if err == nil {
		return StatusOK
	}
	var de *domo.Error
	if errors.As(err, &de) && de.Code != "" {
		return labelValue(string(de.Code))
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return string(domo.CodeDeadlineExceeded)
	case errors.Is(err, context.Canceled):
		return string(domo.CodeCanceled)
	}
	return string(domo.CodeInternal)
}
