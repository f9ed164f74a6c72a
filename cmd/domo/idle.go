package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/internal/loadgen"
)

func newBenchIdleCmd() *cobra.Command {
	var (
		cfg     loadgen.IdleConfig
		hold    bool
		broker  string
		timeout time.Duration
		beat    time.Duration
		cbeat   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "idle",
		Short: "Measure what idle clients and workers cost a broker (Linux)",
		Long: `idle starts a broker in a process of its own (this binary, "domo broker"), reads
its memory and CPU from /proc while nothing is connected, then starts holder
processes (this binary again) that open --clients idle clients, each of which
makes one mmi.service call and then stays connected doing nothing, and
--workers idle workers, registered and heartbeating but never called. Once the
broker lists every worker it reads the broker's /proc again: VmRSS, RssAnon,
VmHWM, threads, file descriptors, and CPU (utime+stime) used over --window.
Everything listens on 127.0.0.1, and every process it started is stopped
before it returns. Each holder takes at most --per-process connections, as a
client holds four file descriptors in its process (the TCP connection, its
socket's epoll set and timer, its poller's copy of that set's descriptor;
with libzmq, three) and RLIMIT_NOFILE bounds them.
docs/benchmarks.md ("Idle connections") has figures.`,
		Example: `  domo bench idle --clients 1000
  domo bench idle --workers 1000
  domo bench idle --clients 10000 --window 10s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if hold {
				return loadgen.Hold(ctx, loadgen.HoldConfig{
					Broker: broker, Clients: cfg.Clients, Workers: cfg.Workers,
					Service: cfg.Service, Heartbeat: beat, ClientHeartbeat: cbeat, Timeout: timeout, Logger: slog.Default(),
				}, os.Stdin, cmd.OutOrStdout())
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.Timeout = timeout
			cfg.Log = cmd.ErrOrStderr()
			// The children log warnings only, to this command's stderr.
			cfg.BrokerCmd = func(listen string) *exec.Cmd {
				return exec.Command(exe, "--log-level", "warn", "broker", "--listen", listen, "--heartbeat", beat.String())
			}
			cfg.HolderCmd = func(ep string, clients, workers int) *exec.Cmd {
				return exec.Command(exe, "--log-level", "warn", "bench", "idle", "--hold", "--broker", ep,
					"--clients", strconv.Itoa(clients), "--workers", strconv.Itoa(workers),
					"--service", cfg.Service, "--heartbeat", beat.String(), "--client-heartbeat", cbeat.String(),
					"--timeout", timeout.String())
			}
			// Bounded: connecting, two settles and two windows, with room.
			ctx, cancel := context.WithTimeout(ctx, 2*timeout+2*(cfg.Settle+cfg.Window)+30*time.Second)
			defer cancel()
			res, err := loadgen.RunIdle(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Clients, "clients", 0, "idle clients to open")
	f.IntVar(&cfg.Workers, "workers", 0, "idle workers to start")
	f.IntVar(&cfg.PerProcess, "per-process", 2000, "clients plus workers per holder process")
	f.StringVar(&cfg.Service, "service", "idle", "the idle workers' service")
	f.IntVar(&cfg.Port, "port", 0, "broker port on 127.0.0.1 (0: a free one)")
	f.DurationVar(&cfg.Settle, "settle", 2*time.Second, "quiet time before each measurement")
	f.DurationVar(&cfg.Window, "window", 10*time.Second, "length of each CPU measurement")
	f.DurationVar(&beat, "heartbeat", 2500*time.Millisecond, "heartbeat interval of the broker and the idle workers")
	f.DurationVar(&cbeat, "client-heartbeat", 0, "heartbeat of the idle clients (0: the client's default, 1s); idle, a client pings the broker over ZMTP every 30 heartbeats and probes it with an MMI request every 60")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "bound on starting the broker and connecting everything")
	f.BoolVar(&hold, "hold", false, "internal: be a holder process for --broker")
	f.StringVar(&broker, "broker", "", "internal: the broker a holder connects to")
	f.MarkHidden("hold")
	f.MarkHidden("broker")
	return cmd
}
