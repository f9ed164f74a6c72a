// Package metrics exposes a broker's and a worker's numbers to Prometheus.
//
// Three kinds of collector feed one prometheus.Registry:
//
//   - a Recorder reads the broker's request events (broker.Config.Events,
//     usually through a fan-out) and counts requests by service, method and
//     status, with latency histograms;
//   - a BrokerCollector asks the broker for a Stats snapshot on each scrape:
//     queue depth, workers, requests in flight, and the broker's counters
//     (malformed and oversized messages, events dropped, ...);
//   - a WorkerCollector reads a worker's Stats on each scrape, for services
//     that expose their own /metrics. HandlerMetrics times handlers.
//
// Handler serves a registry over HTTP at /metrics:
//
//	events := make(chan broker.Event, 8192)
//	cfg.Events = events
//	b, _ := broker.New(cfg)
//	rec := metrics.NewRecorder()
//	reg := metrics.NewRegistry(rec, metrics.NewBrokerCollector(b))
//	go rec.Run(ctx, events)
//	mux.Handle("/metrics", metrics.Handler(reg))
//
// Every metric name starts with "domo_". Label values that come from the
// network (service and method names) are bounded: see Recorder.
package metrics
