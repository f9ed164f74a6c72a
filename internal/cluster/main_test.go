package cluster

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/discovery"
	"github.com/domo-framework/domo/worker"
)

// roleEnv names the role a re-executed test binary plays instead of running
// the tests: "worker" or "client".
const roleEnv = "DOMO_CLUSTER_ROLE"

// domoBin is the domo command, built by TestMain into a temporary directory.
var domoBin string

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role, os.Args[1:]))
	}
	dir, err := os.MkdirTemp("", "domo-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
	code := 1
	if domoBin, err = buildDomo(dir); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildDomo builds the domo command into dir, with the race detector when
// the tests have it.
func buildDomo(dir string) (string, error) {
	bin := filepath.Join(dir, "domo")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/domo-framework/domo/cmd/domo")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// runRole runs a helper process's role until SIGTERM and returns its exit
// status.
func runRole(role string, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch role {
	case "worker":
		err = workerRole(ctx, args)
	case "client":
		err = clientRole(ctx, args)
	default:
		err = fmt.Errorf("no role %q", role)
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "cluster: role %s: %v\n", role, err)
		return 1
	}
	return 0
}

// workerRole serves a service on brokers (or those a --discover source
// finds) with the worker SDK:
//
//	echo  prints "exec NAME ID ATTEMPT PAYLOAD" (unless -quiet), replies "NAME PAYLOAD"
//	slow  prints "got NAME ID ATTEMPT PAYLOAD", waits -delay, replies "NAME PAYLOAD"
//
// It prints "worker started" once it runs.
func workerRole(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	name := fs.String("name", "w", "name in replies and output lines")
	service := fs.String("service", "svc", "service")
	brokers := fs.String("brokers", "", "broker endpoints, comma-separated")
	discover := fs.String("discover", "", "discovery source (docs/discovery.md)")
	hb := fs.Duration("heartbeat", 100*time.Millisecond, "heartbeat interval")
	delay := fs.Duration("delay", 300*time.Millisecond, "how long slow takes")
	concurrency := fs.Int("concurrency", 16, "requests handled at once")
	quiet := fs.Bool("quiet", false, "print nothing per request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := []worker.Option{
		worker.WithHeartbeat(*hb, 3),
		worker.WithReconnect(20*time.Millisecond, 200*time.Millisecond),
		worker.WithConcurrency(*concurrency),
	}
	if *brokers != "" {
		opts = append(opts, worker.WithBroker(strings.Split(*brokers, ",")...))
	}
	if *discover != "" {
		src, err := discovery.Parse(*discover)
		if err != nil {
			return err
		}
		opts = append(opts, worker.WithDiscovery(src))
	}
	w := worker.New(*service, opts...)
	reply := func(r *worker.Request) []byte { return []byte(*name + " " + string(r.Payload)) }
	w.HandleFunc("echo", func(_ context.Context, r *worker.Request) ([]byte, error) {
		if !*quiet {
			fmt.Printf("exec %s %s %d %s\n", *name, r.ID, r.Attempt, r.Payload)
		}
		return reply(r), nil
	})
	w.HandleFunc("slow", func(ctx context.Context, r *worker.Request) ([]byte, error) {
		fmt.Printf("got %s %s %d %s\n", *name, r.ID, r.Attempt, r.Payload)
		select {
		case <-time.After(*delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return reply(r), nil
	})
	fmt.Println("worker started")
	return w.Run(ctx)
}

// clientRole finds brokers with a --discover source and calls METHOD with
// PAYLOAD (Retry) until one call succeeds, printing "reply REPLY".
func clientRole(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	discover := fs.String("discover", "", "discovery source (docs/discovery.md)")
	method := fs.String("method", "svc.echo", "method to call")
	payload := fs.String("payload", "hello", "payload")
	timeout := fs.Duration("timeout", 20*time.Second, "how long to keep trying")
	if err := fs.Parse(args); err != nil {
		return err
	}
	src, err := discovery.Parse(*discover)
	if err != nil {
		return err
	}
	c, err := client.New(client.WithDiscovery(src), client.WithHeartbeat(100*time.Millisecond, 3))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		rep, err := c.Invoke(cctx, *method, []byte(*payload), client.Retry())
		ccancel()
		if err == nil {
			fmt.Printf("reply %s\n", rep)
			for _, b := range c.Stats().Brokers {
				fmt.Printf("broker %s alive=%v\n", b.Endpoint, b.Alive)
			}
			return nil
		}
		fmt.Printf("error %v\n", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("no successful call: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
