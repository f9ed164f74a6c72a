package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/internal/eventbus"
	"github.com/domo-framework/domo/journal"
	_ "github.com/domo-framework/domo/journal/postgres" // journal.Open("postgres:...")
	_ "github.com/domo-framework/domo/journal/sqlite"   // journal.Open("sqlite:...")
	"github.com/domo-framework/domo/metrics"
	"github.com/domo-framework/domo/tracing/brokertrace"
	"github.com/domo-framework/domo/tracing/otlp"
)

// observeFlags configure what watches a broker: the journal, metrics and
// tracing, all fed by the broker's events.
type observeFlags struct {
	journal   string
	retention string
	maxRows   int
	bodies    int
	trace     string
}

func (o *observeFlags) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.journal, "journal", "", "record every request: sqlite:PATH or postgres:DSN (off if empty)")
	f.StringVar(&o.retention, "journal-retention", "7d", "delete journal records older than this (e.g. 36h, 7d; 0 keeps them)")
	f.IntVar(&o.maxRows, "journal-max-rows", 1_000_000, "keep at most this many journal records (0: no limit)")
	f.IntVar(&o.bodies, "journal-bodies", 0, "keep up to this many bytes of each request's and reply's payload in the journal (0: none; methods marked sensitive never)")
	f.StringVar(&o.trace, "trace-endpoint", "", "send OpenTelemetry traces to this OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318 (off if empty)")
}

// observer runs the broker's journal, metrics and tracing. Build it with
// open before the broker (it sets Config.Events), start it once the broker
// exists, and close it after the broker has stopped.
type observer struct {
	flags    observeFlags
	bus      *eventbus.Bus
	store    journal.Store // nil without --journal
	recorder *journal.Recorder
	registry *prometheus.Registry
	stopOTLP func(context.Context) error
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// open prepares the observer and points cfg.OnEvent at it.
func (o observeFlags) open(ctx context.Context, cfg *broker.Config) (*observer, error) {
	// The bus runs on the broker's loop (Config.OnEvent): metrics are
	// counted there, and the journal and the tracer get the events through
	// their subscriptions' buffers. A goroutine of its own between the
	// loop and them cost a wake-up every turn.
	ob := &observer{flags: o, bus: eventbus.New(nil)}
	cfg.OnEvent = ob.bus.Publish
	if o.journal != "" {
		keep, err := journal.ParseRetention(o.retention)
		if err != nil {
			return nil, fmt.Errorf("--journal-retention: %w", err)
		}
		if ob.store, err = journal.Open(o.journal); err != nil {
			return nil, fmt.Errorf("--journal: %w", err)
		}
		cfg.EventBodies = o.bodies
		ob.recorder = journal.NewRecorder(ob.store, journal.Config{
			Broker: cfg.ID, Retention: keep, MaxRows: o.maxRows, MaxBody: o.bodies, Logger: slog.Default(),
		})
	}
	stop, err := otlp.Setup(ctx, o.trace, otlp.ServiceName("domo-broker"))
	if err != nil {
		ob.closeStore()
		return nil, fmt.Errorf("--trace-endpoint: %w", err)
	}
	ob.stopOTLP = stop
	return ob, nil
}

// start begins consuming b's events.
func (ob *observer) start(b *broker.Broker) {
	ctx, cancel := context.WithCancel(context.Background())
	ob.cancel = cancel
	rec := metrics.NewRecorder()
	collectors := []prometheus.Collector{rec, metrics.NewBrokerCollector(b, 0), metrics.EventDrops(ob.bus.Dropped)}
	if ob.recorder != nil {
		collectors = append(collectors, metrics.NewJournalCollector(ob.recorder))
	}
	ob.registry = metrics.NewRegistry(collectors...)
	run := func(f func() error) {
		ob.wg.Add(1)
		go func() {
			defer ob.wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				slog.Error("observer stopped", "err", err)
			}
		}()
	}
	// Metrics are counters: the bus updates them itself, which spares a
	// goroutine woken for every burst of events.
	ob.bus.Handle(rec.Observe)
	if ob.recorder != nil {
		journalEvents := ob.bus.Subscribe("journal", 32768).C
		run(func() error { return ob.recorder.Run(ctx, journalEvents) })
	}
	if ob.flags.trace != "" {
		traceEvents := ob.bus.Subscribe("tracing", 8192).C
		run(func() error { return brokertrace.New(otel.GetTracerProvider()).Run(ctx, traceEvents) })
	}
}

// metricsHandler serves /metrics.
func (ob *observer) metricsHandler() http.Handler { return metrics.Handler(ob.registry) }

// close stops the consumers (the journal writes what it holds) and
// releases the store and the exporter.
func (ob *observer) close() {
	ob.bus.Close() // the broker has stopped: no more events; the subscribers finish
	if ob.cancel != nil {
		ob.cancel()
	}
	ob.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ob.stopOTLP(ctx); err != nil {
		slog.Warn("trace exporter", "err", err)
	}
	ob.closeStore()
}

func (ob *observer) closeStore() {
	if ob.store != nil {
		ob.store.Close()
	}
}
