package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
	"github.com/domo-framework/domo/worker"
)

// Failover: several brokers, some of which die, stall, restart or are
// removed. The client watches them with fast heartbeats.

const (
	testHeartbeat = 100 * time.Millisecond
	testLiveness  = 3
)

func newMulti(t testing.TB, endpoints []string, opts ...Option) *Client {
	t.Helper()
	all := append([]Option{WithBroker(endpoints...), WithHeartbeat(testHeartbeat, testLiveness)}, opts...)
	c, err := New(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startTeaWorker runs a worker of service "tea" on every endpoint, with
// handler h for method "brew".
func startTeaWorker(t testing.TB, endpoints []string, h worker.HandlerFunc) {
	t.Helper()
	w := worker.New("tea",
		worker.WithBroker(endpoints...),
		worker.WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness),
		worker.WithReconnect(20*time.Millisecond, 200*time.Millisecond),
		worker.WithConcurrency(64))
	w.HandleFunc("brew", h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(context.Background()); err != nil {
			t.Errorf("worker Run: %v", err)
		}
	}()
	t.Cleanup(func() { w.Close(); <-done })
}

func echoHandler(ctx context.Context, req *worker.Request) ([]byte, error) {
	return req.Payload, nil
}

// waitTea waits until b has a worker for "tea".
func waitTea(t testing.TB, b *broker.Broker) {
	t.Helper()
	waitFor(t, "a tea worker on the broker", func() bool {
		st, err := b.Stats(context.Background())
		if err != nil {
			return false
		}
		for _, s := range st.Services {
			if s.Name == "tea" && s.Workers > 0 {
				return true
			}
		}
		return false
	})
}

func brokerState(c *Client, endpoint string) (BrokerStats, bool) {
	for _, b := range c.Stats().Brokers {
		if b.Endpoint == endpoint {
			return b, true
		}
	}
	return BrokerStats{}, false
}

func waitAlive(t testing.TB, c *Client, endpoint string, alive bool) {
	t.Helper()
	waitFor(t, fmt.Sprintf("broker %s alive=%v", endpoint, alive), func() bool {
		b, ok := brokerState(c, endpoint)
		return ok && b.Alive == alive
	})
}

func requests(t testing.TB, b *broker.Broker) uint64 {
	t.Helper()
	st, err := b.Stats(context.Background())
	if err != nil {
		t.Fatalf("broker Stats: %v", err)
	}
	return st.Counters.Requests
}

func TestSpreadOverBrokers(t *testing.T) {
	var brokers []*broker.Broker
	var eps []string
	for range 3 {
		b, ep := testbroker.Start(t)
		brokers, eps = append(brokers, b), append(eps, ep)
	}
	startTeaWorker(t, eps, echoHandler)
	for _, b := range brokers {
		waitTea(t, b)
	}
	c := newMulti(t, eps)
	for _, ep := range eps {
		waitAlive(t, c, ep, true)
	}
	const n = 300
	for i := range n {
		p, err := c.Invoke(testCtx(t), "tea.brew", fmt.Appendf(nil, "%d", i))
		if err != nil || string(p) != fmt.Sprint(i) {
			t.Fatalf("Invoke %d = %q, %v", i, p, err)
		}
	}
	for i, b := range brokers {
		// Sequential calls tie on in-flight (0), so round-robin decides.
		if got := requests(t, b); got < n/3-10 || got > n/3+10 {
			t.Errorf("broker %d got %d requests; want about %d", i, got, n/3)
		}
	}
}

// TestKillBrokerMidLoad kills one of three brokers under load: Retry calls
// all complete exactly once, other calls on the dead broker fail with
// unavailable within about the liveness period, and new calls move to the
// survivors at once.
func TestKillBrokerMidLoad(t *testing.T) {
	var brokers []*broker.Broker
	var eps []string
	for range 3 {
		b, ep := testbroker.Start(t)
		brokers, eps = append(brokers, b), append(eps, ep)
	}
	var mu sync.Mutex
	handled := map[string]int{} // by request id
	startTeaWorker(t, eps, func(ctx context.Context, req *worker.Request) ([]byte, error) {
		mu.Lock()
		handled[req.ID]++
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		return req.Payload, nil
	})
	for _, b := range brokers {
		waitTea(t, b)
	}
	c := newMulti(t, eps)
	for _, ep := range eps {
		waitAlive(t, c, ep, true)
	}

	type outcome struct {
		retry      bool
		err        error
		start, end time.Time
	}
	var (
		outMu    sync.Mutex
		outcomes []outcome
		answers  = map[string]int{} // by token, at the caller
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			retry := g%2 == 0
			for i := 0; !stop.Load(); i++ {
				token := fmt.Sprintf("%d-%d", g, i)
				var opts []CallOption
				if retry {
					opts = append(opts, Retry())
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start := time.Now()
				p, err := c.Invoke(ctx, "tea.brew", []byte(token), opts...)
				end := time.Now()
				cancel()
				if err == nil && string(p) != token {
					err = fmt.Errorf("call %s answered %q", token, p)
				}
				outMu.Lock()
				outcomes = append(outcomes, outcome{retry, err, start, end})
				if err == nil {
					answers[token]++
				}
				outMu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	brokers[0].Close()
	waitAlive(t, c, eps[0], false)
	dead := time.Since(killed)
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	var firstAfter time.Duration = -1
	var retryOK, plainOK, plainUnavailable int
	var slowest time.Duration
	for _, o := range outcomes {
		switch {
		case o.err == nil && o.retry:
			retryOK++
		case o.err == nil:
			plainOK++
		case o.retry:
			t.Errorf("Retry call failed: %v", o.err)
		case errors.Is(o.err, domo.ErrUnavailable):
			plainUnavailable++
			slowest = max(slowest, o.end.Sub(killed))
		default:
			t.Errorf("call failed: %v; want success or unavailable", o.err)
		}
		if o.err == nil && !o.start.Before(killed) && (firstAfter < 0 || o.end.Sub(killed) < firstAfter) {
			firstAfter = o.end.Sub(killed)
		}
	}
	for token, n := range answers {
		if n != 1 {
			t.Errorf("call %s answered %d times", token, n)
		}
	}
	if limit := (testLiveness + 2) * testHeartbeat; slowest > limit {
		t.Errorf("a call on the dead broker failed %v after the kill; want within %v", slowest, limit)
	}
	if firstAfter < 0 || firstAfter > 2*testHeartbeat {
		t.Errorf("first successful call %v after the kill; want within %v", firstAfter, 2*testHeartbeat)
	}
	mu.Lock()
	reruns := 0
	for _, n := range handled {
		reruns += n - 1
	}
	mu.Unlock()
	st := c.Stats()
	t.Logf("dead after %v; first success after the kill %v; retry ok %d, plain ok %d, plain unavailable %d (last %v after the kill); handler re-runs %d; stats: retries %d failovers %d late %d",
		dead.Round(time.Millisecond), firstAfter.Round(time.Microsecond), retryOK, plainOK, plainUnavailable, slowest.Round(time.Millisecond), reruns, st.Retries, st.Failovers, st.Late)
	if b, _ := brokerState(c, eps[0]); b.Alive || b.InFlight != 0 {
		t.Errorf("dead broker: %+v; want not alive, nothing in flight", b)
	}
	if st.InFlight != 0 {
		t.Errorf("InFlight = %d after the load; want 0", st.InFlight)
	}
}

// TestBrokerRestart: a broker that dies and comes back on the same
// endpoint is used again. The client is idle when the broker dies, so it
// need not notice (it waits for nothing): its calls go to the live broker,
// since the dead one's connection is gone (ZMQ_IMMEDIATE).
func TestBrokerRestart(t *testing.T) {
	b1, ep1 := testbroker.Start(t)
	b2, ep2 := testbroker.Start(t)
	startTeaWorker(t, []string{ep1, ep2}, echoHandler)
	waitTea(t, b1)
	waitTea(t, b2)
	c := newMulti(t, []string{ep1, ep2})
	waitAlive(t, c, ep1, true)

	b1.Close()
	// Until the client's libzmq sees the connection close (a moment), a
	// call may still go to the dead broker: it fails unavailable once the
	// liveness period passes. After that, calls go to the live one.
	waitFor(t, "a call to succeed with one broker dead", func() bool {
		_, err := c.Invoke(testCtx(t), "tea.brew", nil)
		return err == nil
	})
	for i := range 10 {
		if _, err := c.Invoke(testCtx(t), "tea.brew", nil); err != nil {
			t.Fatalf("Invoke %d with one broker dead: %v", i, err)
		}
	}

	b1b, _ := testbroker.Start(t, func(cfg *broker.Config) { cfg.Listen = []string{ep1} })
	waitTea(t, b1b)
	restarted := time.Now()
	waitFor(t, "the restarted broker to get a call", func() bool {
		if _, err := c.Invoke(testCtx(t), "tea.brew", nil); err != nil {
			t.Fatalf("Invoke after the restart: %v", err)
		}
		return requests(t, b1b) > 0
	})
	waitAlive(t, c, ep1, true)
	t.Logf("restarted broker used again after %v", time.Since(restarted).Round(time.Millisecond))
	for i := range 20 {
		if _, err := c.Invoke(testCtx(t), "tea.brew", nil); err != nil {
			t.Fatalf("Invoke %d after the restart: %v", i, err)
		}
	}
	if n := requests(t, b1b); n < 5 {
		t.Errorf("restarted broker got %d of 20 requests; want about half", n)
	}
}

// TestNoBrokerWaits: with no broker alive a call waits, within its
// deadline, for one to come.
func TestNoBrokerWaits(t *testing.T) {
	b, ep := testbroker.Start(t)
	b.Close() // nothing listens on ep now
	c := newMulti(t, []string{ep})

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := c.Invoke(ctx, "tea.brew", nil); !errors.Is(err, domo.ErrDeadlineExceeded) {
		t.Errorf("Invoke with no broker = %v; want deadline exceeded", err)
	}

	done := async(func() error {
		_, err := c.Invoke(testCtx(t), "tea.brew", []byte("x"))
		return err
	})
	time.Sleep(100 * time.Millisecond)
	// The grace lets the broker hold the call until the worker is READY.
	b2, _ := testbroker.Start(t, func(cfg *broker.Config) { cfg.Listen = []string{ep}; cfg.StartupGrace = 10 * time.Second })
	startTeaWorker(t, []string{ep}, echoHandler)
	waitTea(t, b2)
	if err := await(t, done); err != nil {
		t.Errorf("Invoke waiting for a broker = %v", err)
	}
}

// TestStalledBroker: a broker that accepts connections but never answers
// gets no calls; one that stops answering is declared dead by the probe,
// and its calls fail or move.
func TestStalledBroker(t *testing.T) {
	silent := startBroker(t, nil)
	silent.mute.Store(true)
	stalling := startBroker(t, echo)
	good := startBroker(t, echo)
	c := newMulti(t, []string{silent.endpoint, stalling.endpoint, good.endpoint})
	waitAlive(t, c, stalling.endpoint, true)
	waitAlive(t, c, good.endpoint, true)
	if b, _ := brokerState(c, silent.endpoint); b.Alive {
		t.Errorf("silent broker alive: %+v", b)
	}
	for i := range 20 {
		if _, err := c.Invoke(testCtx(t), "tea.brew", nil); err != nil {
			t.Fatalf("Invoke %d: %v", i, err)
		}
	}

	stalling.mute.Store(true)
	stalled := time.Now()
	const n = 20
	errs := make(chan error, 2*n)
	for i := range n {
		go func() {
			_, err := c.Invoke(testCtx(t), "tea.brew", []byte("p"))
			errs <- err
		}()
		go func() {
			_, err := c.Invoke(testCtx(t), "tea.brew", []byte("r"), Retry())
			if err != nil {
				err = fmt.Errorf("Retry call %d: %w", i, err)
			}
			errs <- err
		}()
	}
	var unavailable int
	for range 2 * n {
		err := await(t, errs)
		switch {
		case err == nil:
		case errors.Is(err, domo.ErrUnavailable):
			unavailable++
		default:
			t.Error(err)
		}
	}
	took := time.Since(stalled)
	waitAlive(t, c, stalling.endpoint, false)
	if limit := (testLiveness + 3) * testHeartbeat; took > limit {
		t.Errorf("calls ended %v after the stall; want within %v", took, limit)
	}
	st := c.Stats()
	t.Logf("stall: %d plain calls failed unavailable, all ended after %v; failovers %d", unavailable, took.Round(time.Millisecond), st.Failovers)
	if unavailable == 0 || st.Failovers == 0 {
		t.Errorf("unavailable %d, failovers %d; want calls on the stalled broker to fail and move", unavailable, st.Failovers)
	}
	if silent.probes.Load() != 0 {
		t.Errorf("the muted broker answered %d probes", silent.probes.Load())
	}
}

// TestSetBrokers adds and removes brokers; the calls in flight on a removed
// broker fail, or, with Retry, move with the same id and the next attempt.
func TestSetBrokers(t *testing.T) {
	b1 := startBroker(t, nil) // holds requests unanswered
	var mu sync.Mutex
	var seen []request
	b2 := startBroker(t, func(r request) [][][]byte {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		return echo(r)
	})
	c := newMulti(t, []string{b1.endpoint})
	waitAlive(t, c, b1.endpoint, true)

	plain := async(func() error { _, err := c.Invoke(testCtx(t), "tea.brew", []byte("p")); return err })
	retried := async(func() error {
		p, err := c.Invoke(testCtx(t), "tea.brew", []byte("r"), Retry())
		if err == nil && string(p) != "r" {
			err = fmt.Errorf("got %q", p)
		}
		return err
	})
	r1, r2 := b1.next(t), b1.next(t)
	if string(r1.env.Payload) == "r" {
		r1, r2 = r2, r1
	}
	if h, ok := r2.env.Headers.Get(mdp.HeaderRetry); !ok || string(h) != "1" {
		t.Errorf("Retry request headers lack retry: 1")
	}
	if _, ok := r2.env.Headers.Get(mdp.HeaderAttempt); ok {
		t.Errorf("first attempt carries an attempt header")
	}

	c.SetBrokers([]string{b1.endpoint, b2.endpoint, b2.endpoint})
	waitAlive(t, c, b2.endpoint, true)
	if got := len(c.Stats().Brokers); got != 2 {
		t.Errorf("%d brokers after adding one; want 2", got)
	}

	c.SetBrokers([]string{b2.endpoint})
	if err := await(t, plain); !errors.Is(err, domo.ErrUnavailable) {
		t.Errorf("call on the removed broker = %v; want unavailable", err)
	}
	if err := await(t, retried); err != nil {
		t.Errorf("Retry call on the removed broker = %v; want it answered by the other", err)
	}
	mu.Lock()
	var again *request
	for i := range seen {
		if string(seen[i].env.Payload) == "r" {
			again = &seen[i]
		}
	}
	mu.Unlock()
	if again == nil {
		t.Fatal("the Retry call did not reach the other broker")
	}
	if id1, id2 := idOf(r2), idOf(*again); string(id1) != string(id2) {
		t.Errorf("retry id %q; want the first attempt's %q", id2, id1)
	}
	if a, _ := again.env.Headers.Get(mdp.HeaderAttempt); string(a) != "2" {
		t.Errorf("retry attempt header %q; want 2", a)
	}
	// A late answer from the removed broker goes nowhere.
	b1.send(reply(r1, mdp.StatusOK, nil))
	st := c.Stats()
	if len(st.Brokers) != 1 || st.Brokers[0].Endpoint != b2.endpoint {
		t.Errorf("Brokers = %+v; want only %s", st.Brokers, b2.endpoint)
	}
	if st.Retries != 1 || st.Failovers != 1 {
		t.Errorf("Retries, Failovers = %d, %d; want 1, 1", st.Retries, st.Failovers)
	}
	if _, err := c.Invoke(testCtx(t), "tea.brew", nil); err != nil {
		t.Errorf("Invoke after the removal: %v", err)
	}

	c.SetBrokers(nil)
	waitFor(t, "no brokers", func() bool { return len(c.Stats().Brokers) == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Invoke(ctx, "tea.brew", nil); !errors.Is(err, domo.ErrDeadlineExceeded) {
		t.Errorf("Invoke with no brokers = %v; want deadline exceeded", err)
	}
}

// TestRetryOnUnavailableReply: an "unavailable" answer is retried for a
// Retry call, within its deadline, and returned to any other.
func TestRetryOnUnavailableReply(t *testing.T) {
	var attempts sync.Map // id -> attempts seen
	b := startBroker(t, func(r request) [][][]byte {
		id := string(idOf(r))
		n, _ := attempts.LoadOrStore(id, new(atomic.Int32))
		k := n.(*atomic.Int32).Add(1)
		a, _ := r.env.Headers.Get(mdp.HeaderAttempt)
		if k > 1 && string(a) != fmt.Sprint(k) {
			return [][][]byte{errorReply(r, domo.Errorf(domo.CodeInvalid, "attempt %q; want %d", a, k))}
		}
		if string(r.env.Payload) == "always" || k < 3 {
			return [][][]byte{errorReply(r, domo.Errorf(domo.CodeUnavailable, "worker lost"))}
		}
		return [][][]byte{reply(r, mdp.StatusOK, []byte("ok"))}
	})
	c := newMulti(t, []string{b.endpoint})

	if _, err := c.Invoke(testCtx(t), "tea.brew", nil); !errors.Is(err, domo.ErrUnavailable) {
		t.Errorf("Invoke without Retry = %v; want unavailable", err)
	}
	p, err := c.Invoke(testCtx(t), "tea.brew", nil, Retry())
	if err != nil || string(p) != "ok" {
		t.Errorf("Invoke with Retry = %q, %v; want ok on the third attempt", p, err)
	}
	if st := c.Stats(); st.Retries != 2 {
		t.Errorf("Retries = %d; want 2", st.Retries)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Invoke(ctx, "tea.brew", []byte("always"), Retry())
	if !errors.Is(err, domo.ErrUnavailable) && !errors.Is(err, domo.ErrDeadlineExceeded) {
		t.Errorf("Invoke always unavailable = %v; want unavailable or deadline exceeded", err)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("retrying took %v; want within the 300ms deadline", d)
	}
}

// TestFirstReplyWins: a broker answering a request twice delivers one
// answer; the second is late.
func TestFirstReplyWins(t *testing.T) {
	b := startBroker(t, func(r request) [][][]byte {
		return [][][]byte{reply(r, mdp.StatusOK, []byte("first")), reply(r, mdp.StatusOK, []byte("second"))}
	})
	c := newMulti(t, []string{b.endpoint})
	p, err := c.Invoke(testCtx(t), "tea.brew", nil, Retry())
	if err != nil || string(p) != "first" {
		t.Errorf("Invoke = %q, %v; want first", p, err)
	}
	waitFor(t, "the second answer counted late", func() bool { return c.Stats().Late == 1 })
}

// chanSource is a discovery source fed by a channel.
type chanSource struct {
	reports chan []string
	running atomic.Int32
}

func (s *chanSource) Watch(ctx context.Context, fn func([]string)) error {
	s.running.Add(1)
	defer s.running.Add(-1)
	for {
		select {
		case eps := <-s.reports:
			fn(eps)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func TestWithDiscovery(t *testing.T) {
	b1 := startBroker(t, echo)
	b2 := startBroker(t, echo)
	src := &chanSource{reports: make(chan []string)}
	c, err := New(WithDiscovery(src), WithHeartbeat(testHeartbeat, testLiveness))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := len(c.Stats().Brokers); n != 0 {
		t.Errorf("%d brokers before the first report; want 0", n)
	}
	done := async(func() error { _, err := c.Invoke(testCtx(t), "tea.brew", nil); return err })
	src.reports <- []string{b1.endpoint}
	if err := await(t, done); err != nil {
		t.Errorf("Invoke after the first report: %v", err)
	}
	src.reports <- []string{b1.endpoint, b2.endpoint}
	waitAlive(t, c, b2.endpoint, true)
	got := func() []string {
		var eps []string
		for _, b := range c.Stats().Brokers {
			eps = append(eps, b.Endpoint)
		}
		return eps
	}
	if eps := got(); !slices.Equal(eps, []string{b1.endpoint, b2.endpoint}) {
		t.Errorf("brokers %q; want both", eps)
	}
	c.Close()
	if n := src.running.Load(); n != 0 {
		t.Errorf("Watch still running after Close")
	}
}

// TestSupersededUnavailable: once a Retry call has moved to another broker,
// an "unavailable" answer to its earlier attempt does not end it.
func TestSupersededUnavailable(t *testing.T) {
	b1 := startBroker(t, nil)
	b2 := startBroker(t, nil)
	c := newMulti(t, []string{b1.endpoint})
	done := async(func() error {
		p, err := c.Invoke(testCtx(t), "tea.brew", []byte("x"), Retry())
		if err == nil && string(p) != "from b2" {
			err = fmt.Errorf("got %q; want the answer from b2", p)
		}
		return err
	})
	r1 := b1.next(t)
	c.SetBrokers([]string{b1.endpoint, b2.endpoint})
	waitAlive(t, c, b2.endpoint, true)
	b1.mute.Store(true) // b1 stalls: the call moves to b2
	r2 := b2.next(t)
	if a, _ := r2.env.Headers.Get(mdp.HeaderAttempt); string(a) != "2" || string(idOf(r2)) != string(idOf(r1)) {
		t.Errorf("second attempt: id %q attempt %q; want id %q attempt 2", idOf(r2), a, idOf(r1))
	}
	b1.mute.Store(false)
	b1.send(errorReply(r1, domo.Errorf(domo.CodeUnavailable, "worker lost")))
	waitFor(t, "the stale unavailable counted late", func() bool { return c.Stats().Late >= 1 })
	b2.send(reply(r2, mdp.StatusOK, []byte("from b2")))
	if err := await(t, done); err != nil {
		t.Errorf("Retry call = %v", err)
	}
}

// TestIdleClientDoesNotProbe: a client with nothing in flight probes a live
// broker seldom (idleProbeInterval), not every heartbeat: 10,000 idle
// clients would otherwise cost a broker 10,000 requests a second.
func TestIdleClientDoesNotProbe(t *testing.T) {
	b := startBroker(t, echo)
	c := newMulti(t, []string{b.endpoint})
	waitAlive(t, c, b.endpoint, true)
	if _, err := c.Invoke(testCtx(t), "tea.brew", nil); err != nil {
		t.Fatal(err)
	}
	before := b.probes.Load()
	time.Sleep(10 * testHeartbeat)
	if n := b.probes.Load() - before; n != 0 {
		t.Errorf("idle client sent %d probes in 10 heartbeat intervals; want 0", n)
	}
	if st, _ := brokerState(c, b.endpoint); !st.Alive {
		t.Errorf("quiet broker of an idle client declared dead: %+v", st)
	}
}

// TestLostRawMMIServiceIsForgotten: a Raw mmi.service request the broker
// never answers (lost in a reconnection, say) is forgotten after a
// liveness period; kept, the next probe's answer would go to it, that
// probe would stay unanswered for good, and the idle client would probe
// every heartbeat.
func TestLostRawMMIServiceIsForgotten(t *testing.T) {
	b := startBroker(t, func(r request) [][][]byte {
		if string(r.msg.Service) == mdp.MMIService {
			return nil // lost
		}
		return echo(r)
	})
	// A short heartbeat, so that idle probes (every 60) come within the test.
	const beat = 10 * time.Millisecond
	c := newMulti(t, []string{b.endpoint}, WithHeartbeat(beat, testLiveness))
	waitAlive(t, c, b.endpoint, true)
	ctx, cancel := context.WithTimeout(context.Background(), beat/5) // then a call: heard from, the broker is not found dead
	defer cancel()
	if _, err := c.Raw(ctx, mdp.MMIService, []byte("tea")); err == nil {
		t.Fatal("Raw answered by a broker that drops it")
	}
	if _, err := c.Invoke(testCtx(t), "tea.brew", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * beat) // idle probes come and are answered
	before := b.probes.Load()
	time.Sleep(30 * beat)
	if n := b.probes.Load() - before; n > 1 {
		t.Errorf("idle client sent %d probes in 30 heartbeat intervals; want at most 1 (one every 60)", n)
	}
}

// TestIdleClientFindsHungBroker: a broker that stops answering while its
// client is idle is found out by ZMTP heartbeats (libzmq closes the
// connection), so the client's next call goes to a live broker at once.
func TestIdleClientFindsHungBroker(t *testing.T) {
	hung := newFreezer(t, startBroker(t, echo).endpoint)
	good := startBroker(t, echo)
	// A short heartbeat, so that the ZMTP pings (every 30) come within the test.
	const beat = 40 * time.Millisecond
	c := newMulti(t, []string{hung.endpoint, good.endpoint}, WithHeartbeat(beat, 5))
	waitAlive(t, c, hung.endpoint, true)
	waitAlive(t, c, good.endpoint, true)
	hung.freeze()
	// Past a ZMTP heartbeat and its timeout, the connection is closed.
	time.Sleep(2*max(30*beat, time.Second) + 500*time.Millisecond)
	// A plain call sent to the hung broker would fail unavailable after the
	// liveness period: every one must go to the live broker.
	for i := range 10 {
		if _, err := c.Invoke(testCtx(t), "tea.brew", nil); err != nil {
			t.Fatalf("Invoke %d after the broker hung: %v", i, err)
		}
	}
}

// freezer is a TCP relay in front of a broker that can stop relaying while
// keeping its connections open: a broker hung, or a network partition,
// as its clients see it.
type freezer struct {
	endpoint string
	frozen   atomic.Bool
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{endpoint: "tcp://" + ln.Addr().String()}
	var (
		mu     sync.Mutex
		open   []net.Conn
		closed bool
		relays sync.WaitGroup
	)
	relays.Add(1) // the accept loop
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		relays.Wait()
	})
	relay := func(dst, src net.Conn) {
		defer relays.Done()
		defer dst.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			if f.frozen.Load() {
				continue // swallowed: the peer hears nothing
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go func() {
		defer relays.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", strings.TrimPrefix(target, "tcp://"))
			mu.Lock()
			if err != nil || closed {
				mu.Unlock()
				in.Close()
				if out != nil {
					out.Close()
				}
				continue
			}
			open = append(open, in, out)
			relays.Add(2)
			mu.Unlock()
			go relay(out, in)
			go relay(in, out)
		}
	}()
	return f
}

func (f *freezer) freeze() { f.frozen.Store(true) }

// TestRawMMIServiceAmongProbes: a Raw call to mmi.service while the
// client's own probes (also mmi.service requests) are unanswered gets its
// own answer, and the probes theirs: answers come back in the order the
// requests went.
func TestRawMMIServiceAmongProbes(t *testing.T) {
	_, ep := testbroker.Start(t)
	release := make(chan struct{})
	startTeaWorker(t, []string{ep}, func(ctx context.Context, _ *worker.Request) ([]byte, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	// A call kept in flight and a heartbeat this short have the client
	// probe the broker whenever it has been silent for a millisecond:
	// often while a Raw call waits for its answer.
	c := newMulti(t, []string{ep}, WithHeartbeat(time.Millisecond, 1000))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		infos, _ := c.Services(testCtx(t))
		if len(infos) > 0 && infos[0].Ready > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tea worker never became ready")
		}
	}
	held := async(func() error { _, err := c.Invoke(testCtx(t), "tea.brew", nil); return err })
	defer func() {
		close(release)
		if err := await(t, held); err != nil {
			t.Errorf("held call: %v", err)
		}
	}()
	wrong := 0
	for i := 0; i < 300; i++ {
		body, err := c.Raw(testCtx(t), mdp.MMIService, []byte("nosuch"))
		if err != nil {
			t.Fatalf("Raw %d: %v", i, err)
		}
		if len(body) != 1 || string(body[0]) != mdp.MMINotFound {
			wrong++
		}
		time.Sleep(time.Duration(i%3) * time.Millisecond)
	}
	if wrong > 0 {
		t.Errorf("%d of 300 Raw calls to mmi.service about an unknown service got another answer than %s", wrong, mdp.MMINotFound)
	}
	if s := c.Stats(); s.Calls < 300 {
		t.Errorf("Calls = %d", s.Calls)
	}
}
