package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/internal/loadgen"
	"github.com/domo-framework/domo/worker"
)

func newBenchCmd() *cobra.Command {
	var (
		endpoint    string
		workers     int
		concurrency int
		native      bool
		cfg         = loadgen.Config{Method: "bench.echo"}
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure end-to-end throughput and latency through a broker",
		Long: `bench drives a bounded load of requests through a broker and prints requests/s
and latency percentiles. Without --broker it starts its own broker on a free
loopback port; with --workers K it starts K echo workers of the service "bench".`,
		Example: `  domo bench --clients 8 --inflight 8 --size 64 --duration 10s
  domo bench --broker tcp://127.0.0.1:5555 --workers 0 --method water.echo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg.Libzmq = !native
			if endpoint == "" {
				bcfg := broker.DefaultConfig()
				bcfg.Listen = []string{"tcp://127.0.0.1:*"}
				bcfg.Logger = slog.Default()
				bcfg.NativeTransport = !cfg.Libzmq
				b, err := broker.New(bcfg)
				if err != nil {
					return err
				}
				go b.Run(context.Background())
				defer b.Close()
				endpoint = b.Endpoints()[0]
			}
			wctx, stopWorkers := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { stopWorkers(); wg.Wait() }()
			for range workers {
				w := worker.New("bench", worker.WithBroker(endpoint), worker.WithConcurrency(concurrency),
					worker.WithNativeTransport(!cfg.Libzmq))
				w.HandleFunc("echo", func(_ context.Context, r *worker.Request) ([]byte, error) { return r.Payload, nil })
				wg.Add(1)
				go func() {
					defer wg.Done()
					w.Run(wctx)
				}()
			}
			cfg.Broker = endpoint
			fmt.Fprintf(cmd.OutOrStdout(), "bench: %s via %s, %d clients x %d in flight, %d-byte payloads, %d workers, %v\n",
				cfg.Method, endpoint, cfg.Clients, cfg.InFlight, cfg.Size, workers, cfg.Duration)
			res, err := loadgen.Run(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res)
			if res.Errors > 0 {
				return fmt.Errorf("%d requests failed; first: %v", res.Errors, res.FirstErr)
			}
			return nil
		},
	}
	cmd.AddCommand(newBenchIdleCmd())
	f := cmd.Flags()
	f.StringVar(&endpoint, "broker", "", "broker endpoint; empty starts one in-process")
	f.IntVar(&workers, "workers", 2, "echo workers to start (service \"bench\")")
	f.IntVar(&concurrency, "concurrency", 32, "requests each echo worker handles at once")
	f.StringVar(&cfg.Method, "method", cfg.Method, "method to call")
	f.IntVar(&cfg.Clients, "clients", 8, "client connections")
	f.IntVar(&cfg.InFlight, "inflight", 8, "requests in flight per client")
	f.IntVar(&cfg.Size, "size", 64, "payload bytes")
	f.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long to run")
	f.IntVar(&cfg.MaxRequests, "max-requests", 0, "stop after this many requests (0: 10 million)")
	f.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "deadline of each request")
	f.BoolVar(&native, "native-transport", true, "clients (and the workers and broker bench starts) speak ZMTP without libzmq; false uses libzmq")
	return cmd
}
