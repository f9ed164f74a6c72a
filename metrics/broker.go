package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/domo-framework/domo/broker"
)

// StatsSource is what a BrokerCollector reads: *broker.Broker satisfies it.
type StatsSource interface {
	Stats(ctx context.Context) (broker.Stats, error)
}

// DefaultStatsTimeout bounds how long a scrape waits for the broker's
// snapshot.
const DefaultStatsTimeout = 2 * time.Second

// BrokerCollector asks a broker for a Stats snapshot on each scrape and
// reports it:
//
//	domo_broker_queue_depth{service}       requests waiting for a worker
//	domo_broker_workers{service}           connected workers
//	domo_broker_ready_workers{service}     workers with free credit
//	domo_broker_capacity{service}          requests the workers take at once
//	domo_broker_in_flight{service}         requests at workers
//	domo_broker_peers                      peer brokers known
//	domo_broker_draining                   1 while shutting down
//	domo_broker_start_time_seconds         when the broker started
//	domo_broker_<counter>_total            each of broker.Counters, e.g.
//	    domo_broker_malformed_total, domo_broker_too_large_total,
//	    domo_broker_events_dropped_total (journal, metrics and tracing lose
//	    these events), domo_broker_overloaded_total, ...
//
// A scrape waits for the broker's loop at most the timeout given to
// NewBrokerCollector; a broker that does not answer makes the scrape report
// an error for these metrics only. It is safe for concurrent use.
type BrokerCollector struct {
	src     StatsSource
	timeout time.Duration

	queued, workers, ready, capacity, inFlight *prometheus.Desc
	peers, draining, started                   *prometheus.Desc
	counters                                   []counterDesc
}

type counterDesc struct {
	desc *prometheus.Desc
	get  func(*broker.Counters) uint64
}

// NewBrokerCollector returns a collector for src (usually a *broker.Broker).
// timeout <= 0 means DefaultStatsTimeout.
func NewBrokerCollector(src StatsSource, timeout time.Duration) *BrokerCollector {
	if timeout <= 0 {
		timeout = DefaultStatsTimeout
	}
	svc := []string{"service"}
	c := &BrokerCollector{
		src:      src,
		timeout:  timeout,
		queued:   prometheus.NewDesc("domo_broker_queue_depth", "Requests waiting in the service's queue for a worker.", svc, nil),
		workers:  prometheus.NewDesc("domo_broker_workers", "Workers connected for the service.", svc, nil),
		ready:    prometheus.NewDesc("domo_broker_ready_workers", "Workers of the service with free credit.", svc, nil),
		capacity: prometheus.NewDesc("domo_broker_capacity", "Requests the service's workers take at once, in all.", svc, nil),
		inFlight: prometheus.NewDesc("domo_broker_in_flight", "Requests of the service dispatched and not yet answered.", svc, nil),
		peers:    prometheus.NewDesc("domo_broker_peers", "Peer brokers known.", nil, nil),
		draining: prometheus.NewDesc("domo_broker_draining", "1 while the broker is shutting down, else 0.", nil, nil),
		started:  prometheus.NewDesc("domo_broker_start_time_seconds", "When the broker started, Unix seconds.", nil, nil),
	}
	for _, k := range brokerCounters {
		c.counters = append(c.counters, counterDesc{
			desc: prometheus.NewDesc("domo_broker_"+k.name+"_total", k.help, nil, nil),
			get:  k.get,
		})
	}
	return c
}

var brokerCounters = []struct {
	name, help string
	get        func(*broker.Counters) uint64
}{
	{"requests", "Client requests received (MMI excluded).", func(c *broker.Counters) uint64 { return c.Requests }},
	{"replies", "Worker replies delivered to clients.", func(c *broker.Counters) uint64 { return c.Replies }},
	{"errors", "Error replies the broker itself sent.", func(c *broker.Counters) uint64 { return c.Errors }},
	{"overloaded", "Requests refused because the service's queue was full.", func(c *broker.Counters) uint64 { return c.Overloaded }},
	{"unknown_service", "Requests refused because no worker ever offered the service.", func(c *broker.Counters) uint64 { return c.UnknownService }},
	{"expired", "Requests dropped because their deadline or TTL passed before delivery.", func(c *broker.Counters) uint64 { return c.Expired }},
	{"retried", "Requests queued again after their worker was lost.", func(c *broker.Counters) uint64 { return c.Retried }},
	{"worker_lost", "Requests failed because their worker was lost.", func(c *broker.Counters) uint64 { return c.WorkerLost }},
	{"workers_expired", "Workers dropped for heartbeat silence.", func(c *broker.Counters) uint64 { return c.WorkersExpired }},
	{"malformed", "Messages that failed to parse.", func(c *broker.Counters) uint64 { return c.Malformed }},
	{"too_large", "Messages over the limits.", func(c *broker.Counters) uint64 { return c.TooLarge }},
	{"unexpected", "Valid commands out of place.", func(c *broker.Counters) uint64 { return c.Unexpected }},
	{"late_replies", "Replies for requests no longer in flight.", func(c *broker.Counters) uint64 { return c.LateReplies }},
	{"unroutable", "Sends to peers that had gone.", func(c *broker.Counters) uint64 { return c.Unroutable }},
	{"send_dropped", "Sends dropped because a peer's queue was full.", func(c *broker.Counters) uint64 { return c.SendDropped }},
	{"offloaded", "Requests forwarded to a peer broker.", func(c *broker.Counters) uint64 { return c.Offloaded }},
	{"events_dropped", "Request events not sent to the journal, metrics and tracing because the events channel was full.", func(c *broker.Counters) uint64 { return c.EventsDropped }},
	{"batched_in", "Messages received inside batches (from domo clients and workers).", func(c *broker.Counters) uint64 { return c.BatchedIn }},
	{"batched_out", "Messages sent inside batches.", func(c *broker.Counters) uint64 { return c.BatchedOut }},
	{"batches_out", "Batches sent.", func(c *broker.Counters) uint64 { return c.BatchesOut }},
}

// Describe implements prometheus.Collector.
func (c *BrokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queued, c.workers, c.ready, c.capacity, c.inFlight, c.peers, c.draining, c.started} {
		ch <- d
	}
	for _, k := range c.counters {
		ch <- k.desc
	}
}

// Collect implements prometheus.Collector. It blocks until the broker
// answers or the timeout passes.
func (c *BrokerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.src.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.queued, err)
		return
	}
	for _, s := range st.Services {
		name := labelValue(s.Name) // a plain client's request queues under any name it gives
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.Queued), name)
		ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(s.Workers), name)
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, float64(s.Ready), name)
		ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(s.Capacity), name)
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(s.InFlight), name)
	}
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(len(st.Peers)))
	draining := 0.0
	if st.Draining {
		draining = 1
	}
	ch <- prometheus.MustNewConstMetric(c.draining, prometheus.GaugeValue, draining)
	ch <- prometheus.MustNewConstMetric(c.started, prometheus.GaugeValue, float64(st.Started.UnixNano())/1e9)
	for _, k := range c.counters {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(k.get(&st.Counters)))
	}
}

// EventDrops returns a collector of domo_eventbus_dropped_total{subscriber}:
// events a fan-out of the broker's tap dropped because that subscriber
// (journal, metrics, tracing, ...) was full. dropped is called on each
// scrape and must be safe for concurrent use; the internal event bus's
// Dropped method fits.
func EventDrops(dropped func() map[string]uint64) prometheus.Collector {
	return &dropsCollector{
		desc: prometheus.NewDesc("domo_eventbus_dropped_total",
			"Broker events dropped because the subscriber's buffer was full, by subscriber.", []string{"subscriber"}, nil),
		fn: dropped,
	}
}

type dropsCollector struct {
	desc *prometheus.Desc
	fn   func() map[string]uint64
}

func (d *dropsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d *dropsCollector) Collect(ch chan<- prometheus.Metric) {
	for name, n := range d.fn() {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(n), name)
	}
}
