package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/dashboard"
	"github.com/domo-framework/domo/gateway"
)

// brokerFlags binds the broker's configuration to flags.
func brokerFlags(cmd *cobra.Command, cfg *broker.Config) {
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Listen, "listen", cfg.Listen, "endpoints to bind (repeatable): tcp://HOST:PORT or ipc://PATH")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat", cfg.HeartbeatInterval, "heartbeat interval")
	f.IntVar(&cfg.HeartbeatLiveness, "liveness", cfg.HeartbeatLiveness, "missed heartbeats before a worker is dropped")
	f.IntVar(&cfg.QueueLimit, "queue-limit", cfg.QueueLimit, "requests queued per service before callers get 'overloaded'")
	f.IntVar(&cfg.MaxServices, "max-services", cfg.MaxServices, "services the broker keeps (0: 10000); past it, requests for a service no worker offers get 'overloaded' instead of a queue")
	f.DurationVar(&cfg.RequestTTL, "request-ttl", cfg.RequestTTL, "how long a request without a deadline may wait in a queue")
	f.DurationVar(&cfg.StartupGrace, "startup-grace", cfg.StartupGrace, "after start, how long requests for a service no worker has offered wait rather than fail 'unknown_service'")
	f.StringVar(&cfg.ID, "id", cfg.ID, "broker id shown to peers (random if empty)")
	f.StringSliceVar(&cfg.Peers, "peer", cfg.Peers, "peer broker endpoints to offload to (repeatable; the broker's own endpoints are ignored, so one list serves a whole cluster)")
	f.IntVar(&cfg.OffloadQueue, "offload-queue", cfg.OffloadQueue, "queue length at which requests go to peers even while local workers have credit (0: only when none has)")
	f.BoolVar(&cfg.DedicatedThread, "dedicated-thread", cfg.DedicatedThread, "the routing loop blocks its own OS thread in epoll_wait instead of parking in Go's poller")
	f.BoolVar(&cfg.NativeTransport, "native-transport", cfg.NativeTransport, "speak ZMTP on the broker's endpoints without libzmq (tcp:// and ipc:// only); false uses libzmq")
	f.IntVar(&cfg.Limits.MaxMessageSize, "max-message", cfg.Limits.MaxMessageSize, "largest message accepted, bytes")
	f.IntVar(&cfg.Limits.MaxFrameSize, "max-frame", cfg.Limits.MaxFrameSize, "largest frame accepted, bytes")
	f.IntVar(&cfg.Limits.MaxFrames, "max-frames", cfg.Limits.MaxFrames, "most frames in one message")
}

func newBrokerCmd() *cobra.Command {
	cfg := broker.DefaultConfig()
	cfg.DedicatedThread = true // the broker has this process to itself (its HTTP side and journal are light)
	var (
		drain    time.Duration
		announce announceFlags
		observe  observeFlags
		httpAddr string
		gcfg     = gateway.DefaultConfig()
		gf       gatewayFlags
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run a broker",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := announce.check(); err != nil {
				return err
			}
			if httpAddr != "" {
				if err := gf.finish(&gcfg); err != nil {
					return err
				}
			}
			return runBroker(cmd.Context(), brokerRun{
				cfg: cfg, drain: drain, announce: &announce, observe: observe, httpAddr: httpAddr, gateway: gcfg,
			})
		},
	}
	brokerFlags(cmd, &cfg)
	cmd.Flags().StringVar(&httpAddr, "http", "", "also serve HTTP on this address (HOST:PORT): the dashboard (/), the gateway (/v1/, /openapi.json, /docs) and Prometheus metrics (/metrics); see domo gateway --help for the gateway's flags")
	gf.bind(cmd, &gcfg)
	announce.bind(cmd)
	observe.bind(cmd)
	cmd.Flags().DurationVar(&drain, "drain", 10*time.Second, "on SIGINT/SIGTERM, how long to let requests in flight finish")
	return cmd
}

// brokerRun is everything a broker process runs: the broker, its
// announcements, its observers and its HTTP side.
type brokerRun struct {
	cfg      broker.Config
	drain    time.Duration
	announce *announceFlags
	observe  observeFlags
	httpAddr string
	gateway  gateway.Config
	// ready, if set, is called once the broker is bound, with the base URL
	// of the HTTP side ("" without one).
	ready func(b *broker.Broker, httpURL string)
	// stopping, if set, is called when the signal comes, before the broker
	// drains: the demo stops its own workers there, so that the broker does
	// not have to send them DISCONNECT.
	stopping func()
}

// runBroker runs a broker process until ctx ends (a signal), then drains.
func runBroker(ctx context.Context, r brokerRun) error {
	r.cfg.Logger = slog.Default()
	ob, err := r.observe.open(ctx, &r.cfg)
	if err != nil {
		return err
	}
	defer ob.close() // after the broker: the journal records the drain too
	b, err := broker.New(r.cfg)
	if err != nil {
		return err
	}
	ob.start(b)
	// Announcements stop (with a "leaving" beacon) when the signal comes,
	// before the drain.
	actx, stop := context.WithCancel(ctx)
	defer stop()
	if r.announce != nil {
		if err := r.announce.start(actx, b, b.ID()); err != nil {
			b.Close()
			return err
		}
	}
	done := launchBroker(b) // before the gateway, which asks the broker for contracts
	if r.httpAddr == "" {
		if r.ready != nil {
			r.ready(b, "")
		}
		return waitUntilSignal(ctx, b, done, r.drain, r.stopping)
	}
	// abort stops the started broker when the HTTP side cannot start.
	abort := func(err error) error {
		b.Close()
		<-done
		return err
	}
	ln, err := net.Listen("tcp", r.httpAddr)
	if err != nil {
		return abort(fmt.Errorf("--http: %w", err))
	}
	// The gateway, in this process, calls through the broker's own
	// endpoint; HTTP stops taking requests when the signal comes, while
	// the broker drains.
	r.gateway.Brokers = []string{localEndpoint(b.Endpoints()[0])}
	r.gateway.Logger = slog.Default()
	g, err := gateway.New(r.gateway)
	if err != nil {
		ln.Close()
		return abort(err)
	}
	defer g.Close()
	// The dashboard reads contracts over MMI like any client.
	mc, err := client.New(client.WithBroker(r.gateway.Brokers...), client.WithLogger(slog.Default()))
	if err != nil {
		ln.Close()
		return abort(err)
	}
	defer mc.Close()
	dashCfg := dashboard.Config{Broker: b, Contracts: dashboard.MMIDocs(mc), Title: "domo " + b.ID(), Logger: slog.Default()}
	if ob.store != nil {
		dashCfg.Journal = ob.store
	}
	dash := dashboard.New(dashCfg)
	defer dash.Close()
	mux := http.NewServeMux()
	mux.Handle("/v1/", g) // the gateway
	mux.Handle("/openapi.json", g)
	mux.Handle("/docs", g)
	mux.Handle("GET /metrics", ob.metricsHandler())
	mux.Handle("/", dash) // pages at /, its API under /api/
	bctx, stopBroker := context.WithCancel(ctx)
	defer stopBroker()
	hctx, stopHTTP := context.WithCancel(ctx)
	hdone := make(chan error, 1)
	if r.ready != nil {
		r.ready(b, "http://"+ln.Addr().String())
	}
	go func() {
		err := serveHTTP(hctx, ln, mux, r.drain)
		if err != nil {
			stopBroker() // a broker without the HTTP side it was asked for is not what was asked for
		}
		hdone <- err
	}()
	err = waitUntilSignal(bctx, b, done, r.drain, r.stopping)
	dash.Close() // ends its event streams, which would hold up the HTTP drain
	stopHTTP()
	if herr := <-hdone; err == nil {
		err = herr
	}
	return err
}

// launchBroker runs b in the background; the channel yields Run's result.
func launchBroker(b *broker.Broker) <-chan error {
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	return done
}

// waitUntilSignal waits until the started broker b stops (done) or ctx
// ends, and then calls stopping (if not nil) and shuts b down gracefully
// within drain.
func waitUntilSignal(ctx context.Context, b *broker.Broker, done <-chan error, drain time.Duration, stopping func()) error {
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down", "drain", drain)
	if stopping != nil {
		stopping()
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		slog.Warn("drain cut short", "err", err)
	}
	return <-done
}
