package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/internal/eventbus"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/metrics"
	"github.com/domo-framework/domo/worker"
)

// scrape GETs url and returns its samples keyed by the series as printed,
// e.g. `domo_requests_total{method="brew",service="tea",status="ok"}`
// (client_golang prints labels sorted by name).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET %s: Content-Type %q; want text/plain", url, ct)
	}
	samples := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: bad sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return samples
}

// waitFor scrapes until every series in want has its value, or fails
// after 5 s showing what differs.
func waitFor(t *testing.T, url string, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := scrape(t, url)
		var diff []string
		for k, v := range want {
			if g, ok := got[k]; !ok {
				diff = append(diff, k+" missing")
			} else if g != v {
				diff = append(diff, k+" = "+strconv.FormatFloat(g, 'g', -1, 64)+"; want "+strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		if len(diff) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrape after 5s:\n  %s", strings.Join(diff, "\n  "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startWorker(t *testing.T, w *worker.Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("worker Run = %v", err)
		}
	})
}

func TestBrokerMetricsScrape(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	events := make(chan broker.Event, 1024)
	bus := eventbus.New(events)
	forMetrics := bus.Subscribe("metrics", 1024)
	bus.Subscribe("journal", 1) // a journal that never reads: its drops are counted
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); bus.Run(ctx) }()
	rec := metrics.NewRecorder()
	go func() { defer wg.Done(); rec.Run(ctx, forMetrics.C) }()
	defer wg.Wait()
	defer cancel()

	b, ep := testbroker.Start(t, func(c *broker.Config) { c.Events = events })
	reg := metrics.NewRegistry(rec, metrics.NewBrokerCollector(b, 0), metrics.EventDrops(bus.Dropped))
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	url := srv.URL + "/metrics"

	hm := metrics.NewHandlerMetrics(nil)
	tea := worker.New("tea", worker.WithBroker(ep), worker.WithConcurrency(4),
		worker.WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness))
	tea.Handle("brew", hm.Wrap("tea", "brew", worker.HandlerFunc(func(ctx context.Context, req *worker.Request) ([]byte, error) {
		return []byte(`"cup"`), nil
	})))
	tea.Handle("spill", hm.Wrap("tea", "spill", worker.HandlerFunc(func(ctx context.Context, req *worker.Request) ([]byte, error) {
		return nil, domo.Errorf(domo.CodeInvalid, "no tea to spill")
	})))
	startWorker(t, tea)

	// slow takes one request at a time and holds it until release closes,
	// so that requests queue at the broker.
	release := make(chan struct{})
	slow := worker.New("slow", worker.WithBroker(ep), worker.WithConcurrency(1),
		worker.WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness))
	slow.Handle("wait", worker.HandlerFunc(func(ctx context.Context, req *worker.Request) ([]byte, error) {
		select {
		case <-release:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}))
	startWorker(t, slow)

	c, err := client.New(client.WithBroker(ep))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, url, map[string]float64{
		`domo_broker_workers{service="tea"}`:  1,
		`domo_broker_workers{service="slow"}`: 1,
	})

	callCtx, callCancel := context.WithTimeout(ctx, 5*time.Second)
	defer callCancel()
	for range 3 {
		if _, err := c.Invoke(callCtx, "tea.brew", nil); err != nil {
			t.Fatalf("tea.brew: %v", err)
		}
	}
	if _, err := c.Invoke(callCtx, "tea.spill", nil); !errors.Is(err, domo.ErrInvalid) {
		t.Fatalf("tea.spill = %v; want invalid", err)
	}
	for range 2 {
		if _, err := c.Invoke(callCtx, "tea.pour", nil); !errors.Is(err, domo.ErrUnknownMethod) {
			t.Fatalf("tea.pour = %v; want unknown method", err)
		}
	}
	if _, err := c.Invoke(callCtx, "coffee.brew", nil); !errors.Is(err, domo.ErrUnknownService) {
		t.Fatalf("coffee.brew = %v; want unknown service", err)
	}

	// Garbage straight to the broker's socket counts as malformed.
	raw, err := zsock.New(zsock.Dealer)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetLinger(0)
	if err := raw.Connect(ep); err != nil {
		t.Fatal(err)
	}
	if err := raw.Send([][]byte{[]byte("not"), []byte("mdp")}, true); err != nil {
		t.Fatal(err)
	}

	// Three calls to slow: one in flight at its worker, two queued.
	var slowCalls sync.WaitGroup
	for range 3 {
		slowCalls.Add(1)
		go func() {
			defer slowCalls.Done()
			if _, err := c.Invoke(callCtx, "slow.wait", nil); err != nil {
				t.Errorf("slow.wait: %v", err)
			}
		}()
	}

	got := waitFor(t, url, map[string]float64{
		`domo_requests_total{method="brew",service="tea",status="ok"}`:                            3,
		`domo_requests_total{method="spill",service="tea",status="invalid"}`:                      1,
		`domo_requests_total{method="_unknown",service="tea",status="unknown_method"}`:            2,
		`domo_requests_total{method="_unknown",service="_unknown",status="unknown_service"}`:      1,
		`domo_request_duration_seconds_count{method="brew",service="tea",status="ok"}`:            3,
		`domo_request_duration_seconds_bucket{method="brew",service="tea",status="ok",le="+Inf"}`: 3,
		`domo_request_duration_seconds_bucket{method="brew",service="tea",status="ok",le="10"}`:   3,
		`domo_broker_queue_depth{service="slow"}`:                                                 2,
		`domo_broker_in_flight{service="slow"}`:                                                   1,
		`domo_broker_queue_depth{service="tea"}`:                                                  0,
		`domo_broker_workers{service="tea"}`:                                                      1,
		`domo_broker_ready_workers{service="slow"}`:                                               0,
		`domo_broker_capacity{service="tea"}`:                                                     4,
		`domo_broker_malformed_total`:                                                             1,
		`domo_broker_unknown_service_total`:                                                       1,
		`domo_broker_events_dropped_total`:                                                        0,
		`domo_broker_draining`:                                                                    0,
	})
	// The queue wait was observed for every dispatch to tea: 6 requests.
	if n := got[`domo_request_queue_seconds_count{service="tea"}`]; n != 6 {
		t.Errorf(`domo_request_queue_seconds_count{service="tea"} = %v; want 6`, n)
	}
	// The journal subscriber (buffer 1, never read) dropped all but one.
	if n := got[`domo_eventbus_dropped_total{subscriber="journal"}`]; n < 10 {
		t.Errorf(`domo_eventbus_dropped_total{subscriber="journal"} = %v; want at least 10`, n)
	}
	if n, ok := got[`domo_eventbus_dropped_total{subscriber="metrics"}`]; !ok || n != 0 {
		t.Errorf(`domo_eventbus_dropped_total{subscriber="metrics"} = %v, %v; want 0, true`, n, ok)
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("go_goroutines missing: the registry has no Go collector")
	}

	close(release)
	slowCalls.Wait()
	waitFor(t, url, map[string]float64{
		`domo_requests_total{method="wait",service="slow",status="ok"}`: 3,
		`domo_broker_queue_depth{service="slow"}`:                       0,
		`domo_broker_in_flight{service="slow"}`:                         0,
	})

	// The worker's own metrics, as a service would expose them.
	wreg := metrics.NewRegistry(metrics.NewWorkerCollector("tea", tea), hm)
	wsrv := httptest.NewServer(metrics.Handler(wreg))
	defer wsrv.Close()
	waitFor(t, wsrv.URL, map[string]float64{
		`domo_worker_handled_total{service="tea"}`:                                           3,
		`domo_worker_failed_total{service="tea"}`:                                            3, // spill and twice pour
		`domo_worker_panics_total{service="tea"}`:                                            0,
		`domo_handler_duration_seconds_count{method="brew",service="tea",status="ok"}`:       3,
		`domo_handler_duration_seconds_count{method="spill",service="tea",status="invalid"}`: 1,
	})
}

type failingStats struct{}

func (failingStats) Stats(ctx context.Context) (broker.Stats, error) {
	return broker.Stats{}, domo.ErrClosed
}

// TestBrokerGoneStillServes checks that a broker that cannot answer does
// not take the other metrics down with it.
func TestBrokerGoneStillServes(t *testing.T) {
	rec := metrics.NewRecorder()
	rec.Observe(broker.Event{Kind: broker.Completed, Service: "tea", Method: "brew", Received: time.Now(), Time: time.Now()})
	reg := metrics.NewRegistry(rec, metrics.NewBrokerCollector(failingStats{}, time.Second))
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	got := scrape(t, srv.URL)
	if got[`domo_requests_total{method="brew",service="tea",status="ok"}`] != 1 {
		t.Errorf("requests_total missing from a scrape whose broker collector failed: %v", got)
	}
}

// TestSeriesBounded checks that names from callers cannot grow the series
// without bound.
func TestSeriesBounded(t *testing.T) {
	rec := metrics.NewRecorder(metrics.WithMaxSeries(2))
	now := time.Now()
	for _, e := range []broker.Event{
		{Kind: broker.Completed, Service: "tea", Method: "brew"},
		{Kind: broker.Failed, Service: "tea", Method: "x1", Code: domo.CodeUnknownMethod},
		{Kind: broker.Failed, Service: "tea", Method: "x2", Code: domo.CodeUnknownMethod},
		{Kind: broker.Failed, Service: "zz1", Method: "a", Code: domo.CodeUnknownService},
		{Kind: broker.Completed, Service: "tea", Method: "steep"},   // a third pair: over the limit
		{Kind: broker.Completed, Service: "coffee", Method: "brew"}, // a new service over the limit
		{Kind: broker.Dropped, Service: "tea", Method: "brew", Code: domo.CodeDeadlineExceeded},
		{Kind: broker.Failed, Service: "tea", Method: "brew"}, // no code: internal
		{Kind: broker.Completed, Service: "echo"},             // plain MDP: no method
	} {
		e.Received, e.Time = now, now
		rec.Observe(e)
	}
	reg := metrics.NewRegistry(rec)
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	got := scrape(t, srv.URL)
	want := map[string]float64{
		`domo_requests_total{method="brew",service="tea",status="ok"}`:                       1,
		`domo_requests_total{method="_unknown",service="tea",status="unknown_method"}`:       2,
		`domo_requests_total{method="_unknown",service="_unknown",status="unknown_service"}`: 1,
		`domo_requests_total{method="_other",service="tea",status="ok"}`:                     1,
		`domo_requests_total{method="_other",service="_other",status="ok"}`:                  2,
		`domo_requests_total{method="brew",service="tea",status="dropped"}`:                  1,
		`domo_requests_total{method="brew",service="tea",status="internal"}`:                 1,
	}
	var n int
	for k := range got {
		if strings.HasPrefix(k, "domo_requests_total{") {
			n++
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v; want %v", k, got[k], v)
		}
	}
	if n != len(want) {
		t.Errorf("%d domo_requests_total series; want %d", n, len(want))
	}
}
