package interop

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/worker"
)

// TestMain doubles as a domo worker process: with DOMO_TEST_ROLE=worker the
// test binary runs a worker instead of the tests, so tests can start real
// worker processes and kill them.
func TestMain(m *testing.M) {
	if os.Getenv("DOMO_TEST_ROLE") == "worker" {
		os.Exit(runWorkerProcess())
	}
	os.Exit(m.Run())
}

// runWorkerProcess serves DOMO_TEST_SERVICE on DOMO_TEST_BROKER:
//
//	slow  prints "got ID" on stdout, waits DOMO_TEST_DELAY, replies with its pid
//	pid   replies with its pid at once
//	raw   (plain MDP bodies) replies with the frames reversed
func runWorkerProcess() int {
	delay, _ := time.ParseDuration(os.Getenv("DOMO_TEST_DELAY"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	w := worker.New(os.Getenv("DOMO_TEST_SERVICE"),
		worker.WithBroker(os.Getenv("DOMO_TEST_BROKER")),
		worker.WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness),
		worker.WithReconnect(20*time.Millisecond, 200*time.Millisecond))
	pid := []byte(fmt.Sprint(os.Getpid()))
	w.HandleFunc("slow", func(ctx context.Context, r *worker.Request) ([]byte, error) {
		fmt.Printf("got %s\n", r.ID)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return pid, nil
	})
	w.HandleFunc("pid", func(context.Context, *worker.Request) ([]byte, error) { return pid, nil })
	w.HandleRaw(func(_ context.Context, body [][]byte) ([][]byte, error) {
		out := make([][]byte, len(body))
		for i, f := range body {
			out[len(body)-1-i] = f
		}
		return out, nil
	})
	fmt.Println("worker started")
	if err := w.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

// startWorker starts a worker process of service on endpoint.
func startWorker(t *testing.T, endpoint, service string, delay time.Duration) *process {
	t.Helper()
	p := start(t, []string{
		"DOMO_TEST_ROLE=worker",
		"DOMO_TEST_BROKER=" + endpoint,
		"DOMO_TEST_SERVICE=" + service,
		"DOMO_TEST_DELAY=" + delay.String(),
	}, os.Args[0])
	p.expectLine("worker started")
	return p
}
