package journal_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/sqlite"
	"github.com/domo-framework/domo/worker"
)

// system runs a broker (its events into ch, if not nil), a worker of the
// service "tea" (echo; fail answers an internal error) and a client.
func system(t *testing.T, ch chan broker.Event) (*broker.Broker, *client.Client) {
	t.Helper()
	b, ep := testbroker.Start(t, func(c *broker.Config) {
		if ch != nil {
			c.Events = ch
		}
	})
	w := worker.New("tea", worker.WithBroker(ep), worker.WithConcurrency(64),
		worker.WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness))
	w.HandleFunc("echo", func(_ context.Context, r *worker.Request) ([]byte, error) { return r.Payload, nil })
	w.HandleFunc("fail", func(context.Context, *worker.Request) ([]byte, error) {
		return nil, &domo.Error{Code: domo.CodeInternal, Message: "kettle broke"}
	})
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(context.Background()) }()
	t.Cleanup(func() { w.Close(); <-wdone })
	c, err := client.New(client.WithBroker(ep), client.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Wait for the worker.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, err := c.Invoke(ctx, "tea.echo", []byte("ping")); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("worker never ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b, c
}

func run(t *testing.T, r *journal.Recorder, ch chan broker.Event) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, ch) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

func openSQLite(t *testing.T) journal.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBrokerJournal records a real broker's requests and reads them back.
func TestBrokerJournal(t *testing.T) {
	ch := make(chan broker.Event, 10_000)
	store := openSQLite(t)
	rec := journal.NewRecorder(store, journal.Config{Broker: "b1", FlushInterval: 10 * time.Millisecond})
	run(t, rec, ch)
	_, c := system(t, ch)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if _, err := c.Invoke(ctx, "tea.echo", []byte("hello")); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if _, err := c.Invoke(ctx, "tea.fail", nil); !errors.Is(err, domo.ErrInternal) {
			t.Fatalf("tea.fail = %v", err)
		}
	}
	var sum journal.Summary
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := rec.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		var err error
		if sum, err = store.Summary(ctx, journal.Window{Service: "tea"}); err != nil {
			t.Fatal(err)
		}
		if sum.Failed >= 3 && sum.Completed >= 21 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if sum.Failed < 3 || sum.Completed < 21 || sum.Received+sum.Processing != 0 || sum.P50 <= 0 { // the first ping may fail: unknown_service
		t.Fatalf("Summary = %+v; want 3 or more failed, 21 or more completed", sum)
	}
	page, err := store.List(ctx, journal.Filter{Service: "tea", Method: "fail", Limit: 1})
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("List(tea.fail) = %+v, %v", page, err)
	}
	r := page.Records[0]
	if r.Status != journal.StatusFailed || r.Code != "internal" || r.Message != "kettle broke" || r.Worker == "" ||
		r.Client == "" || r.RequestID == "" || r.Broker != "b1" || r.Attempts != 1 || r.Total() <= 0 || r.Handling() <= 0 {
		t.Errorf("failed record = %+v", r)
	}
	byID, err := store.List(ctx, journal.Filter{RequestID: r.RequestID})
	if err != nil || len(byID.Records) != 1 || byID.Records[0].ID != r.ID {
		t.Errorf("List(RequestID %q) = %+v, %v", r.RequestID, byID, err)
	}
	page, _ = store.List(ctx, journal.Filter{Service: "tea", Method: "echo", Limit: 1})
	if r := page.Records[0]; r.RequestBytes == 0 || r.ReplyBytes == 0 || r.Status != journal.StatusCompleted {
		t.Errorf("echo record = %+v", r)
	}
	if tl := r.Timeline(); len(tl) != 3 || tl[1].What != "dispatched" || tl[2].What != "failed" {
		t.Errorf("Timeline = %+v", tl)
	}
}

// stalled is a store whose writes wait until release is closed.
type stalled struct {
	journal.Store
	release chan struct{}
	writes  atomic.Int64
}

func (s *stalled) Write(ctx context.Context, recs []journal.Record) error {
	s.writes.Add(1)
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Write(ctx, recs)
}

// load makes n calls from 16 goroutines and returns how long they took;
// every call must succeed.
func load(t *testing.T, c *client.Client, n int) time.Duration {
	t.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	var next, failed atomic.Int64
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := c.Invoke(context.Background(), "tea.echo", []byte("x")); err != nil {
					if failed.Add(1) == 1 {
						t.Errorf("call: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d calls failed", failed.Load(), n)
	}
	return time.Since(start)
}

// TestStalledStore stalls the store: the broker routes as fast as it does
// with no journal, and what could not be journaled is counted as dropped.
func TestStalledStore(t *testing.T) {
	const n = 6000
	_, plain := system(t, nil)
	base := load(t, plain, n)

	ch := make(chan broker.Event, 1000)
	store := &stalled{Store: openSQLite(t), release: make(chan struct{})}
	rec := journal.NewRecorder(store, journal.Config{BatchSize: 100, MaxPending: 500, FlushInterval: 5 * time.Millisecond})
	run(t, rec, ch)
	b, c := system(t, ch)
	took := load(t, c, n)
	// Every call was answered while the store was still stalled (it is
	// released below): routing never waited on the journal. How long they
	// took is logged, not asserted, since this machine's load varies.
	t.Logf("%d calls: %v without a journal, %v with a stalled one", n, base, took)
	st := rec.Stats()
	bs, err := b.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recorder %+v; broker events dropped %d", st, bs.Counters.EventsDropped)
	if store.writes.Load() == 0 || st.Written != 0 {
		t.Errorf("store writes %d, recorder written %d: the store was not stalled", store.writes.Load(), st.Written)
	}
	// Pending is the full batch (MaxPending) plus the records the stalled
	// write holds.
	if st.Dropped == 0 || st.Pending <= 500 || st.Pending > 1000 {
		t.Errorf("Stats = %+v; want events dropped with 500 pending plus those being written", st)
	}
	// Released, the store gets what was kept, and the journal goes on.
	close(store.release)
	if _, err := c.Invoke(context.Background(), "tea.echo", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := rec.Stats(); st.Written < 500 || st.Pending != 0 {
		t.Errorf("after release: Stats = %+v", st)
	}
}

// TestBodies: with bodies on, a request's and reply's payloads are kept,
// capped; a method whose contract marks it sensitive keeps none.
func TestBodies(t *testing.T) {
	ch := make(chan broker.Event, 10_000)
	store := openSQLite(t)
	rec := journal.NewRecorder(store, journal.Config{Broker: "b1", FlushInterval: 10 * time.Millisecond, MaxBody: 8})
	run(t, rec, ch)
	_, ep := testbroker.Start(t, func(c *broker.Config) { c.Events, c.EventBodies = ch, 8 })
	w := worker.New("vault", worker.WithBroker(ep),
		worker.WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness))
	echo := func(_ context.Context, r *worker.Request) ([]byte, error) { return r.Payload, nil }
	w.HandleFunc("echo", echo)
	w.HandleFunc("secret", echo, worker.Sensitive())
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(context.Background()) }()
	t.Cleanup(func() { w.Close(); <-wdone })
	c, err := client.New(client.WithBroker(ep), client.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	for _, m := range []string{"vault.echo", "vault.secret"} {
		for {
			if _, err := c.Invoke(ctx, m, []byte("a long payload")); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond) // the worker is still saying READY
		}
	}
	get := func(method string) journal.Record {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if err := rec.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			page, err := store.List(ctx, journal.Filter{Service: "vault", Method: method, Status: journal.StatusCompleted, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Records) == 1 {
				return page.Records[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("no completed vault.%s in the journal", method)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if r := get("echo"); string(r.RequestBody) != "a long p" || string(r.ReplyBody) != "a long p" {
		t.Errorf("echo bodies = %q, %q; want the first 8 bytes of each", r.RequestBody, r.ReplyBody)
	}
	if r := get("secret"); r.RequestBody != nil || r.ReplyBody != nil || r.RequestBytes == 0 {
		t.Errorf("sensitive method's record = %+v; want sizes but no bodies", r)
	}
}
