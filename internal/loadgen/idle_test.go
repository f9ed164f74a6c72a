package loadgen

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
)

// The test binary doubles as the broker and holder processes of RunIdle:
// with roleEnv set it plays that role instead of running the tests.
const roleEnv = "DOMO_LOADGEN_IDLE_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "":
		os.Exit(m.Run())
	case "broker":
		os.Exit(runRole(helperBroker))
	case "hold":
		os.Exit(runRole(helperHold))
	default:
		fmt.Fprintln(os.Stderr, "unknown role", os.Getenv(roleEnv))
		os.Exit(2)
	}
}

func runRole(f func(context.Context, []string) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := f(ctx, os.Args[len(os.Args)-3:]); err != nil {
		fmt.Fprintln(os.Stderr, os.Getenv(roleEnv)+":", err)
		return 1
	}
	return 0
}

// helperBroker runs a broker on args[0] until interrupted.
func helperBroker(ctx context.Context, args []string) error {
	cfg := broker.DefaultConfig()
	cfg.Listen = []string{args[0]}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	if err := b.Run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil // stopped by a signal, as RunIdle stops it
}

// helperHold runs Hold: args are the endpoint, clients and workers.
func helperHold(ctx context.Context, args []string) error {
	c, err1 := strconv.Atoi(args[1])
	w, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bad args %q", args)
	}
	return Hold(ctx, HoldConfig{Broker: args[0], Clients: c, Workers: w, Service: "idletest"}, os.Stdin, os.Stdout)
}

// helper returns a command running this test binary in role.
func helper(role string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	return cmd
}

// TestRunIdle runs the whole mechanism at a small scale: a broker process,
// three holder processes with 20 idle clients and 5 idle workers between
// them, the broker's counts checked, every process stopped at the end.
func TestRunIdle(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc:", err)
	}
	var brokerCmd *exec.Cmd
	var holderCmds []*exec.Cmd
	var shares [][2]int
	cfg := IdleConfig{
		Clients: 20, Workers: 5, PerProcess: 9, Service: "idletest",
		Settle: 300 * time.Millisecond, Window: 300 * time.Millisecond, Timeout: 30 * time.Second,
		BrokerCmd: func(listen string) *exec.Cmd {
			brokerCmd = helper("broker", listen, "", "")
			return brokerCmd
		},
		HolderCmd: func(ep string, clients, workers int) *exec.Cmd {
			shares = append(shares, [2]int{clients, workers})
			c := helper("hold", ep, strconv.Itoa(clients), strconv.Itoa(workers))
			holderCmds = append(holderCmds, c)
			return c
		},
	}
	if testing.Verbose() {
		cfg.Log = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := RunIdle(ctx, cfg)
	if err != nil {
		t.Fatalf("RunIdle: %v", err)
	}
	t.Logf("\n%v", res)

	if want := [][2]int{{7, 2}, {7, 2}, {6, 1}}; fmt.Sprint(shares) != fmt.Sprint(want) {
		t.Errorf("holder shares (clients, workers) = %v, want %v", shares, want)
	}
	if res.Holders != 3 || res.Clients != 20 || res.Workers != 5 {
		t.Errorf("holders, clients, workers = %d, %d, %d; want 3, 20, 5", res.Holders, res.Clients, res.Workers)
	}
	if res.BrokerWorkers != 5 || res.ServiceWorkers != 5 {
		t.Errorf("broker lists %d workers, %d of idletest; want 5, 5", res.BrokerWorkers, res.ServiceWorkers)
	}
	// One TCP connection a client or worker: the broker's descriptors grow
	// by exactly 25 (the query client was closed before each reading).
	if d := res.After.FDs - res.Before.FDs; d != 25 {
		t.Errorf("broker fds %d -> %d, grew by %d; want 25", res.Before.FDs, res.After.FDs, d)
	}
	if res.Before.RSS <= 0 || res.After.RSS <= 0 || res.After.Threads <= 0 || res.After.Window < cfg.Window {
		t.Errorf("implausible samples: before %+v, after %+v", res.Before, res.After)
	}
	if res.BrokerPID != brokerCmd.Process.Pid {
		t.Errorf("BrokerPID = %d, started %d", res.BrokerPID, brokerCmd.Process.Pid)
	}
	// Every process RunIdle started has exited and been reaped.
	for _, c := range append(holderCmds, brokerCmd) {
		if c.ProcessState == nil {
			t.Errorf("%v: not waited for", c.Args)
		} else if !c.ProcessState.Success() {
			t.Errorf("%v: %v", c.Args, c.ProcessState)
		}
	}
}

// TestRunIdleHolderFails: a holder that cannot start its share is reported,
// and the broker is still stopped.
func TestRunIdleHolderFails(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc:", err)
	}
	var brokerCmd *exec.Cmd
	cfg := IdleConfig{
		Clients: 2, Settle: time.Millisecond, Window: time.Millisecond, Timeout: 30 * time.Second,
		BrokerCmd: func(listen string) *exec.Cmd {
			brokerCmd = helper("broker", listen, "", "")
			return brokerCmd
		},
		HolderCmd: func(ep string, clients, workers int) *exec.Cmd {
			return helper("hold", ep, "not-a-number", "0")
		},
	}
	if _, err := RunIdle(context.Background(), cfg); err == nil {
		t.Fatal("RunIdle succeeded with a failing holder")
	}
	if brokerCmd.ProcessState == nil {
		t.Error("broker not stopped")
	}
}

// TestOpenIdle checks the in-process half against an in-process broker.
func TestOpenIdle(t *testing.T) {
	_, ep := testbroker.Start(t)
	ctx := context.Background()
	h, err := OpenIdle(ctx, HoldConfig{Broker: ep, Clients: 20, Workers: 5, Service: "idletest"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Clients() != 20 || h.Workers() != 5 {
		t.Fatalf("Clients, Workers = %d, %d", h.Clients(), h.Workers())
	}
	for _, c := range h.clients {
		if s := c.Stats(); s.Calls != 1 || s.Errors != 0 {
			t.Errorf("idle client stats %+v, want one call and no errors", s)
		}
	}
	q, err := client.New(client.WithBroker(ep))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		svcs, err := q.Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got mdp.ServiceInfo
		for _, s := range svcs {
			if s.Name == "idletest" {
				got = s
			}
		}
		if got.Workers == 5 && got.Ready == 5 && got.InFlight == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker lists %+v; want 5 ready workers of idletest", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReadProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc:", err)
	}
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.RSSAnon <= 0 || s.HWM < s.RSS || s.Threads <= 0 || s.FDs < 3 {
		t.Errorf("ReadProc(self) = %+v", s)
	}
	// Burn CPU until it shows (at 100 ticks a second): the counter must move.
	deadline := time.Now().Add(10 * time.Second)
	for {
		x := 0
		for i := range 10_000_000 {
			x += i
		}
		_ = x
		s2, err := ReadProc(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if s2.CPU-s.CPU >= 50*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU did not grow in 10 s of busy loop: %v -> %v", s.CPU, s2.CPU)
		}
	}
	if _, err := ReadProc(-1); err == nil {
		t.Error("ReadProc(-1) succeeded")
	}
}
