package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/tracing"
)

// defaultBroker is where the CLI looks for a broker unless told otherwise;
// DOMO_BROKER overrides it.
func defaultBroker() string {
	if ep := os.Getenv("DOMO_BROKER"); ep != "" {
		return ep
	}
	return "tcp://127.0.0.1:5555"
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "domo",
		Short:         "domo: microservices over ZeroMQ brokers",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var level, format, cpuProfile, memProfile string
	root.PersistentFlags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&format, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process to FILE")
	root.PersistentFlags().StringVar(&memProfile, "memprofile", "", "write an allocation profile of this process to FILE when it ends")
	var stopProfile func()
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		logger, err := newLogger(cmd.ErrOrStderr(), level, format)
		if err != nil {
			return err
		}
		slog.SetDefault(logger)
		if cpuProfile != "" {
			if stopProfile, err = startCPUProfile(cpuProfile); err != nil {
				return err
			}
		}
		return nil
	}
	root.PersistentPostRunE = func(*cobra.Command, []string) error {
		if stopProfile != nil {
			stopProfile()
		}
		if memProfile != "" {
			return writeAllocProfile(memProfile)
		}
		return nil
	}
	root.AddCommand(newBrokerCmd(), newCallCmd(), newServicesCmd(), newDocsCmd(), newDemoCmd(), newServeCmd(), newBenchCmd(), newGatewayCmd())
	return root
}

// startCPUProfile profiles the process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeAllocProfile writes the allocations the process has made (pprof's
// "allocs" profile: go tool pprof -sample_index=alloc_space) to path.
func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(tracing.LogHandler(slog.NewTextHandler(w, opts))), nil
	case "json":
		return slog.New(tracing.LogHandler(slog.NewJSONHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
