package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
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
	var level, format string
	root.PersistentFlags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&format, "log-format", "text", "log format: text or json")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		logger, err := newLogger(cmd.ErrOrStderr(), level, format)
		if err != nil {
			return err
		}
		slog.SetDefault(logger)
		return nil
	}
	root.AddCommand(newBrokerCmd(), newCallCmd(), newServicesCmd(), newDemoCmd(), newBenchCmd())
	return root
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
