package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/gateway"
)

// brokerFlags binds the broker's configuration to flags.
func brokerFlags(cmd *cobra.Command, cfg *broker.Config) {
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Listen, "listen", cfg.Listen, "endpoints to bind (repeatable): tcp://HOST:PORT or ipc://PATH")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat", cfg.HeartbeatInterval, "heartbeat interval")
	f.IntVar(&cfg.HeartbeatLiveness, "liveness", cfg.HeartbeatLiveness, "missed heartbeats before a worker is dropped")
	f.IntVar(&cfg.QueueLimit, "queue-limit", cfg.QueueLimit, "requests queued per service before callers get 'overloaded'")
	f.DurationVar(&cfg.RequestTTL, "request-ttl", cfg.RequestTTL, "how long a request without a deadline may wait in a queue")
	f.DurationVar(&cfg.StartupGrace, "startup-grace", cfg.StartupGrace, "after start, how long requests for a service no worker has offered wait rather than fail 'unknown_service'")
	f.StringVar(&cfg.ID, "id", cfg.ID, "broker id shown to peers (random if empty)")
	f.StringSliceVar(&cfg.Peers, "peer", cfg.Peers, "peer broker endpoints to offload to (repeatable; the broker's own endpoints are ignored, so one list serves a whole cluster)")
	f.IntVar(&cfg.OffloadQueue, "offload-queue", cfg.OffloadQueue, "queue length at which requests go to peers even while local workers have credit (0: only when none has)")
	f.IntVar(&cfg.Limits.MaxMessageSize, "max-message", cfg.Limits.MaxMessageSize, "largest message accepted, bytes")
	f.IntVar(&cfg.Limits.MaxFrameSize, "max-frame", cfg.Limits.MaxFrameSize, "largest frame accepted, bytes")
	f.IntVar(&cfg.Limits.MaxFrames, "max-frames", cfg.Limits.MaxFrames, "most frames in one message")
}

func newBrokerCmd() *cobra.Command {
	cfg := broker.DefaultConfig()
	var (
		drain    time.Duration
		announce announceFlags
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
			cfg.Logger = slog.Default()
			b, err := broker.New(cfg)
			if err != nil {
				return err
			}
			// Announcements stop (with a "leaving" beacon) when the signal
			// comes, before the drain.
			actx, stop := context.WithCancel(cmd.Context())
			defer stop()
			if err := announce.start(actx, b, b.ID()); err != nil {
				b.Close()
				return err
			}
			if httpAddr == "" {
				return runUntilSignal(cmd.Context(), b, drain)
			}
			// The gateway, in this process, calls through the broker's own
			// endpoint; it stops taking requests when the signal comes,
			// while the broker drains.
			if err := gf.finish(&gcfg); err != nil {
				b.Close()
				return err
			}
			gcfg.Brokers = []string{localEndpoint(b.Endpoints()[0])}
			bctx, stopBroker := context.WithCancel(cmd.Context())
			defer stopBroker()
			gctx, stopGateway := context.WithCancel(cmd.Context())
			gdone := make(chan error, 1)
			go func() {
				err := serveGateway(gctx, gcfg, httpAddr, drain)
				if err != nil {
					stopBroker() // a broker without its gateway is not what was asked for
				}
				gdone <- err
			}()
			err = runUntilSignal(bctx, b, drain)
			stopGateway()
			if gerr := <-gdone; err == nil {
				err = gerr
			}
			return err
		},
	}
	brokerFlags(cmd, &cfg)
	cmd.Flags().StringVar(&httpAddr, "http", "", "also serve the HTTP gateway on this address (HOST:PORT), calling through this broker; see domo gateway --help for its flags")
	gf.bind(cmd, &gcfg)
	announce.bind(cmd)
	cmd.Flags().DurationVar(&drain, "drain", 10*time.Second, "on SIGINT/SIGTERM, how long to let requests in flight finish")
	return cmd
}

// runUntilSignal runs b until ctx ends (a signal), then shuts it down
// gracefully within drain.
func runUntilSignal(ctx context.Context, b *broker.Broker, drain time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down", "drain", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		slog.Warn("drain cut short", "err", err)
	}
	return <-done
}
