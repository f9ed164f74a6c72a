package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/examples/coffee"
	"github.com/domo-framework/domo/examples/tea"
	"github.com/domo-framework/domo/examples/water"
	"github.com/domo-framework/domo/worker"
)

// exampleServices are the services `domo serve` and `domo demo` can run.
var exampleServices = map[string]func(...worker.Option) *worker.Worker{
	tea.Service:    tea.New,
	coffee.Service: coffee.New,
	water.Service:  water.New,
}

func exampleNames() string {
	names := make([]string, 0, len(exampleServices))
	for n := range exampleServices {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func newServeCmd() *cobra.Command {
	var (
		endpoint    string
		replicas    int
		concurrency int
		heartbeat   time.Duration
		discover    string
		drain       time.Duration
		native      bool
	)
	cmd := &cobra.Command{
		Use:   "serve SERVICE...",
		Short: "Run workers of the example services (" + exampleNames() + ")",
		Example: `  domo serve tea coffee --broker tcp://127.0.0.1:5555
  domo serve water --replicas 2 --concurrency 64`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := parseDiscover(discover)
			if err != nil {
				return err
			}
			var workers []*worker.Worker
			for _, name := range args {
				newWorker, ok := exampleServices[name]
				if !ok {
					return fmt.Errorf("no example service %q; there are %s", name, exampleNames())
				}
				for range replicas {
					opts := []worker.Option{
						worker.WithBroker(strings.Split(endpoint, ",")...),
						worker.WithConcurrency(concurrency),
						worker.WithHeartbeat(heartbeat, 3),
						worker.WithLogger(slog.Default()),
						worker.WithNativeTransport(native),
					}
					if src != nil {
						opts = append(opts, worker.WithDiscovery(src))
					}
					workers = append(workers, newWorker(opts...))
				}
			}
			return runWorkers(cmd.Context(), workers, drain)
		},
	}
	f := cmd.Flags()
	f.StringVar(&endpoint, "broker", defaultBroker(), "broker endpoints, comma-separated ($DOMO_BROKER); the worker serves every one")
	f.StringVar(&discover, "discover", "", "find brokers: static:EP,EP | dns:NAME:PORT | multicast:IFACE[@GROUP][#CLUSTER]; replaces --broker")
	f.IntVar(&replicas, "replicas", 1, "workers per service")
	f.IntVar(&concurrency, "concurrency", 16, "requests each worker handles at once")
	f.DurationVar(&heartbeat, "heartbeat", 2500*time.Millisecond, "heartbeat interval (match the broker's)")
	f.DurationVar(&drain, "drain", 10*time.Second, "on SIGINT/SIGTERM, how long to let requests in flight finish")
	f.BoolVar(&native, "native-transport", true, "speak ZMTP to the brokers without libzmq (tcp:// and ipc:// only); false uses libzmq")
	return cmd
}

// runWorkers runs workers until ctx ends, then shuts them down gracefully
// within drain.
func runWorkers(ctx context.Context, workers []*worker.Worker, drain time.Duration) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(workers))
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(context.Background()); err != nil {
				errs <- err
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		for _, w := range workers {
			w.Close()
		}
		wg.Wait()
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Shutdown(sctx)
		}()
	}
	wg.Wait()
	return nil
}
