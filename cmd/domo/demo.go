package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/examples/coffee"
	"github.com/domo-framework/domo/examples/tea"
	"github.com/domo-framework/domo/examples/water"
	"github.com/domo-framework/domo/gateway"
	"github.com/domo-framework/domo/worker"
)

func newDemoCmd() *cobra.Command {
	cfg := broker.DefaultConfig()
	var (
		httpAddr string
		observe  observeFlags
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a broker with the example services tea, coffee and water, the gateway and the dashboard",
		Long: `demo runs, in one process and on embedded defaults, what a small deployment runs:
a broker, workers of the example services tea, coffee and water, the HTTP
gateway with its OpenAPI page, the dashboard, Prometheus metrics, and a request
journal in SQLite (in a temporary directory unless --journal says otherwise).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if observe.journal == "" {
				dir, err := os.MkdirTemp("", "domo-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				observe.journal = "sqlite:" + filepath.Join(dir, "journal.db")
			}
			ctx, stopWorkers := context.WithCancel(context.Background())
			defer stopWorkers()
			var wg sync.WaitGroup
			defer wg.Wait()
			var brk *broker.Broker
			ready := func(b *broker.Broker, httpURL string) {
				brk = b
				endpoint := b.Endpoints()[0]
				// The workers heartbeat as the broker expects, or it would
				// drop them whenever --heartbeat is shorter than the default.
				wopts := []worker.Option{
					worker.WithBroker(localEndpoint(endpoint)),
					worker.WithHeartbeat(cfg.HeartbeatInterval, cfg.HeartbeatLiveness),
					worker.WithLogger(slog.Default()),
				}
				for _, w := range []*worker.Worker{tea.New(wopts...), coffee.New(wopts...), water.New(wopts...)} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						w.Run(ctx)
					}()
				}
				printDemoHelp(cmd, endpoint, httpURL)
			}
			err := runBroker(cmd.Context(), brokerRun{
				cfg: cfg, drain: 5 * time.Second, observe: observe, httpAddr: httpAddr,
				gateway: demoGatewayConfig(), ready: ready,
				// The workers leave first (finishing what they hold and
				// saying DISCONNECT), then the broker drains.
				stopping: func() {
					stopWorkers()
					wg.Wait()
					waitNoWorkers(brk, 2*time.Second)
				},
			})
			stopWorkers()
			return err
		},
	}
	brokerFlags(cmd, &cfg)
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:8080", "HTTP address of the dashboard, the gateway and /metrics (empty: none)")
	observe.bind(cmd)
	return cmd
}

// demoGatewayConfig is the gateway of the demo: no authentication.
func demoGatewayConfig() gateway.Config {
	return gateway.DefaultConfig()
}

func printDemoHelp(cmd *cobra.Command, endpoint, httpURL string) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, `domo demo: broker on %[1]s with services tea, coffee and water.
Try, in another terminal:
  domo services --broker %[1]s
  domo docs tea --broker %[1]s
  domo call --broker %[1]s tea.brew '{"kind":"green","sugar":1}'
  domo call --broker %[1]s coffee.order '{"size":"large","milk":true}'
  domo call --broker %[1]s water.boil '{"celsius":120}'     # a typed error
  domo bench --broker %[1]s --workers 0 --method water.echo
`, endpoint)
	if httpURL != "" {
		fmt.Fprintf(out, `Over HTTP:
  curl -s -H 'Content-Type: application/json' -d '{"kind":"green","sugar":1}' %[1]s/v1/tea/brew
  %[1]s/                the dashboard: health, services, requests
  %[1]s/docs            the API, rendered from the services' contracts
  %[1]s/openapi.json    the OpenAPI 3.1 document
  %[1]s/metrics         Prometheus metrics
`, httpURL)
	}
	fmt.Fprintln(out, "Ctrl-C stops it.")
}

// waitNoWorkers waits, up to d, until b has seen its workers' DISCONNECT.
func waitNoWorkers(b *broker.Broker, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		st, err := b.Stats(ctx)
		if err != nil || len(st.Workers) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}
