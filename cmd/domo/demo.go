package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/examples/coffee"
	"github.com/domo-framework/domo/examples/tea"
	"github.com/domo-framework/domo/examples/water"
	"github.com/domo-framework/domo/worker"
)

func newDemoCmd() *cobra.Command {
	cfg := broker.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a broker with the example services tea, coffee and water",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = slog.Default()
			b, err := broker.New(cfg)
			if err != nil {
				return err
			}
			endpoint := b.Endpoints()[0]
			ctx, stopWorkers := context.WithCancel(context.Background())
			defer stopWorkers()
			var wg sync.WaitGroup
			// The workers heartbeat as the broker expects, or it would drop
			// them whenever --heartbeat is shorter than the default.
			wopts := []worker.Option{
				worker.WithBroker(endpoint),
				worker.WithHeartbeat(cfg.HeartbeatInterval, cfg.HeartbeatLiveness),
				worker.WithLogger(slog.Default()),
			}
			for _, w := range []*worker.Worker{
				tea.New(wopts...),
				coffee.New(wopts...),
				water.New(wopts...),
			} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w.Run(ctx)
				}()
			}
			fmt.Fprintf(cmd.OutOrStdout(), `domo demo: broker on %[1]s with services tea, coffee and water.
Try, in another terminal:
  domo services --broker %[1]s
  domo call --broker %[1]s tea.brew '{"kind":"green","sugar":1}'
  domo call --broker %[1]s coffee.order '{"size":"large","milk":true}'
  domo call --broker %[1]s water.boil '{"celsius":120}'     # a typed error
  domo bench --broker %[1]s --workers 0 --method water.echo
Ctrl-C stops it.
`, endpoint)
			err = runUntilSignal(cmd.Context(), b, 5*time.Second)
			stopWorkers()
			wg.Wait()
			return err
		},
	}
	brokerFlags(cmd, &cfg)
	return cmd
}
