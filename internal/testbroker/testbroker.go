// Package testbroker starts a real broker for tests: in-process, on a free
// loopback port, stopped when the test ends.
package testbroker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/domo-framework/domo/broker"
)

// Config returns a broker configuration for tests: a wildcard loopback port,
// fast heartbeats (100 ms, liveness 5: generous, as CI machines are loaded), no start-up grace, logs discarded
// unless the test runs with -v.
func Config(t testing.TB) broker.Config {
	cfg := broker.DefaultConfig()
	cfg.Listen = []string{"tcp://127.0.0.1:*"}
	cfg.HeartbeatInterval = HeartbeatInterval
	cfg.HeartbeatLiveness = HeartbeatLiveness
	cfg.StartupGrace = 0
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

// Heartbeat is the heartbeat interval and liveness of Config, for workers
// in tests to match.
const (
	HeartbeatInterval = 100 * time.Millisecond
	HeartbeatLiveness = 5
)

// Start runs a broker with Config(t), changed by the given functions, and
// returns it and its endpoint. The broker is closed when the test ends.
func Start(t testing.TB, configure ...func(*broker.Config)) (*broker.Broker, string) {
	t.Helper()
	cfg := Config(t)
	for _, f := range configure {
		f(&cfg)
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("testbroker: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	t.Cleanup(func() {
		b.Close()
		if err := <-done; err != nil {
			t.Errorf("testbroker: Run = %v", err)
		}
	})
	return b, b.Endpoints()[0]
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
