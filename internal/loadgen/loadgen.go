// Package loadgen drives a bounded end-to-end load through a broker and
// reports throughput and latency: the engine of `domo bench`.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/client"
)

// Config describes one load run.
type Config struct {
	Broker   string        // broker endpoints, comma-separated
	Method   string        // method to call, e.g. "water.echo"
	Clients  int           // client connections
	InFlight int           // requests in flight per client
	Size     int           // payload bytes
	Duration time.Duration // how long to run; the run also stops at MaxRequests
	// MaxRequests bounds the run's total requests; 0 means 10 million.
	MaxRequests int
	// Timeout is each request's deadline.
	Timeout time.Duration
	// Libzmq makes the clients connect through libzmq instead of the
	// native transport (client.WithNativeTransport).
	Libzmq bool
}

// Result is what a run measured.
type Result struct {
	Requests int           // successful requests
	Errors   int           // failed requests
	FirstErr error         // the first failure, if any
	Elapsed  time.Duration // wall time of the run
	P50      time.Duration
	P99      time.Duration
	P999     time.Duration
	Max      time.Duration
}

// Rate returns successful requests per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

func (r Result) String() string {
	return fmt.Sprintf("%d requests in %v: %.0f req/s, %d errors; latency p50 %v p99 %v p99.9 %v max %v",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.Rate(), r.Errors,
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.P999.Round(time.Microsecond), r.Max.Round(time.Microsecond))
}

// Run runs the load until cfg.Duration passes, cfg.MaxRequests complete or
// ctx ends. It blocks.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Clients <= 0 || cfg.InFlight <= 0 || cfg.Duration <= 0 {
		return Result{}, fmt.Errorf("loadgen: clients, in-flight and duration must be positive")
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = 10_000_000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	clients := make([]*client.Client, cfg.Clients)
	for i := range clients {
		c, err := client.New(client.WithBroker(strings.Split(cfg.Broker, ",")...), client.WithTimeout(cfg.Timeout),
			client.WithNativeTransport(!cfg.Libzmq))
		if err != nil {
			for _, c := range clients[:i] {
				c.Close()
			}
			return Result{}, fmt.Errorf("loadgen: %w", err)
		}
		clients[i] = c
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	payload := make([]byte, cfg.Size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}

	// Warm up: one call per client, so connections exist before the clock starts.
	for _, c := range clients {
		if _, err := c.Invoke(ctx, cfg.Method, payload); err != nil {
			return Result{}, fmt.Errorf("loadgen: warm-up call to %s: %w", cfg.Method, err)
		}
	}

	end := time.Now().Add(cfg.Duration)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	var (
		mu     sync.Mutex // guards res and lats
		res    Result
		lats   []time.Duration
		wg     sync.WaitGroup
		issued atomic.Int64
	)
	take := func() bool { return issued.Add(1) <= int64(cfg.MaxRequests) }
	start := time.Now()
	for _, c := range clients {
		for range cfg.InFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := make([]time.Duration, 0, 256) // thousands of these goroutines start inside the measured window
				var ok, failed int
				var firstErr error
				for ctx.Err() == nil && take() {
					t0 := time.Now()
					_, err := c.Invoke(ctx, cfg.Method, payload)
					if err != nil {
						if ctx.Err() != nil || (errors.Is(err, domo.ErrDeadlineExceeded) && !time.Now().Before(end)) {
							// The run ended mid-call (the worker may say so
							// before this goroutine's timer does): not a failure.
							break
						}
						failed++
						if firstErr == nil {
							firstErr = err
						}
						continue
					}
					ok++
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				res.Requests += ok
				res.Errors += failed
				if res.FirstErr == nil {
					res.FirstErr = firstErr
				}
				lats = append(lats, local...)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(lats)
	res.P50, res.P99, res.P999 = quantile(lats, 0.50), quantile(lats, 0.99), quantile(lats, 0.999)
	if len(lats) > 0 {
		res.Max = lats[len(lats)-1]
	}
	return res, nil
}

// quantile returns the q-quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)))
	return sorted[min(i, len(sorted)-1)]
}
