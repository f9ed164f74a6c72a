package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/mdp"
)

// Heartbeats of every broker, worker and client in these tests: a peer
// silent for hb*liveness (300 ms) is dead.
const (
	hb       = 100 * time.Millisecond
	liveness = 3
	expiry   = hb * liveness
)

// brokerProc is a `domo broker` process on a fixed loopback endpoint, so
// that it can be restarted where its workers and clients expect it.
type brokerProc struct {
	t    testing.TB
	name string
	ep   string
	args []string
	p    *proc
}

// freeEndpoint returns a tcp endpoint on a loopback port that was free a
// moment ago.
func freeEndpoint(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "tcp://" + l.Addr().String()
}

// startBrokers starts n peered brokers on loopback ports: each is given
// every endpoint as a peer (a broker ignores its own).
func startBrokers(t testing.TB, n int) []*brokerProc {
	t.Helper()
	eps := make([]string, n)
	for i := range eps {
		eps[i] = freeEndpoint(t)
	}
	bs := make([]*brokerProc, n)
	for i := range bs {
		bs[i] = startBroker(t, fmt.Sprintf("b%d", i), eps[i], eps)
	}
	return bs
}

// startBroker starts `domo broker` on ep with the tests' heartbeats,
// offloading to peers, and waits until it has bound its endpoint.
func startBroker(t testing.TB, name, ep string, peers []string) *brokerProc {
	t.Helper()
	return startBrokerHB(t, name, ep, peers, hb)
}

// startBrokerHB is startBroker with the heartbeat interval heartbeat.
func startBrokerHB(t testing.TB, name, ep string, peers []string, heartbeat time.Duration) *brokerProc {
	t.Helper()
	b := &brokerProc{t: t, name: name, ep: ep, args: []string{
		"broker", "--listen", ep, "--id", name,
		"--heartbeat", heartbeat.String(), "--liveness", fmt.Sprint(liveness),
		"--startup-grace", "2s", "--drain", "0s",
	}}
	if len(peers) > 0 {
		b.args = append(b.args, "--peer", strings.Join(peers, ","))
	}
	b.start()
	return b
}

func (b *brokerProc) start() {
	b.t.Helper()
	b.p = startProc(b.t, "broker "+b.name, exec.Command(domoBin, b.args...))
	b.p.waitLine(20*time.Second, "broker started")
}

// restart starts the broker again, with the same endpoint and flags, after
// it was killed.
func (b *brokerProc) restart() { b.start() }

func endpoints(bs []*brokerProc) []string {
	eps := make([]string, len(bs))
	for i, b := range bs {
		eps[i] = b.ep
	}
	return eps
}

// startWorker starts the test binary as a worker process (workerRole) of
// service "svc" on brokers and waits until it runs.
func startWorker(t testing.TB, name string, brokers []string, extra ...string) *proc {
	t.Helper()
	// A later -heartbeat in extra overrides this one.
	args := append([]string{"-name", name, "-brokers", strings.Join(brokers, ","), "-heartbeat", hb.String()}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), roleEnv+"=worker")
	p := startProc(t, "worker "+name, cmd)
	p.waitLine(20*time.Second, "worker started")
	return p
}

// newClient returns a client of brokers with the tests' heartbeats, closed
// when the test ends.
func newClient(t testing.TB, brokers ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.WithBroker(brokers...), client.WithHeartbeat(hb, liveness), client.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond every 2 ms until it is true, and returns how long that
// took; it fails the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// serviceInfo asks the broker(s) of c for mmi.services and returns the
// entry of service (zero if it has none).
func serviceInfo(c *client.Client, service string) (mdp.ServiceInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rep, err := c.Invoke(ctx, mdp.MMIServices, nil)
	if err != nil {
		return mdp.ServiceInfo{}, err
	}
	var infos []mdp.ServiceInfo
	if err := json.Unmarshal(rep, &infos); err != nil {
		return mdp.ServiceInfo{}, err
	}
	for _, s := range infos {
		if s.Name == service {
			return s, nil
		}
	}
	return mdp.ServiceInfo{}, nil
}

// waitWorkers waits until the broker at ep has n workers of "svc" of its
// own (connected to it, not reached through a peer), and returns how long
// that took.
func waitWorkers(t testing.TB, ep string, n int, timeout time.Duration) time.Duration {
	t.Helper()
	c := newClient(t, ep)
	defer c.Close()
	var last mdp.ServiceInfo
	var lastErr error
	start := time.Now()
	for {
		last, lastErr = serviceInfo(c, "svc")
		if lastErr == nil && last.Workers == n {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("broker %s: %d workers of svc, not %d, after %v (last: %+v, %v)", ep, last.Workers, n, timeout, last, lastErr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// brokerAlive reports whether c considers the broker at ep alive.
func brokerAlive(c *client.Client, ep string) bool {
	for _, b := range c.Stats().Brokers {
		if b.Endpoint == ep {
			return b.Alive
		}
	}
	return false
}

// brokerInFlight returns c's calls in flight at the broker at ep.
func brokerInFlight(c *client.Client, ep string) int {
	for _, b := range c.Stats().Brokers {
		if b.Endpoint == ep {
			return b.InFlight
		}
	}
	return 0
}

// record is one call of a load: its payload (the key), when it started and
// ended, the reply and the error.
type record struct {
	key        string
	retry      bool
	start, end time.Time
	reply      string
	err        error
}

// load calls svc.echo (or another method) in loops, each one call after
// the other, each call with a payload of its own, until stopped.
type load struct {
	c      *client.Client
	method string
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	recs   []record
}

// startLoad runs loops goroutines calling method through c, with Retry if
// retry, until stop. Calls are not cancelled by stop: each runs to its
// answer or its deadline.
func startLoad(c *client.Client, method, prefix string, loops int, retry bool) *load {
	l := &load{c: c, method: method, stop: make(chan struct{})}
	for i := range loops {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				r := record{key: fmt.Sprintf("%s-%d-%d", prefix, i, n), retry: retry, start: time.Now()}
				var opts []client.CallOption
				if retry {
					opts = append(opts, client.Retry())
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				rep, err := c.Invoke(ctx, method, []byte(r.key), opts...)
				cancel()
				r.end, r.reply, r.err = time.Now(), string(rep), err
				l.mu.Lock()
				l.recs = append(l.recs, r)
				l.mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond) // no hot loop while nothing is reachable
				}
			}
		}()
	}
	return l
}

// finish stops the loops, waits for their last calls and returns every
// record.
func (l *load) finish() []record {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recs
}

// count returns how many calls have ended so far, and how many of those
// succeeded after since.
func (l *load) count(since time.Time) (all, okAfter int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.err == nil && r.start.After(since) {
			okAfter++
		}
	}
	return len(l.recs), okAfter
}

// executions counts, per key, the "exec" and "got" lines of workers: how many times
// a handler ran for each call.
func executions(workers []*proc) map[string]int {
	n := map[string]int{}
	for _, w := range workers {
		for _, prefix := range []string{"exec ", "got "} {
			for _, line := range w.linesWith(prefix) {
				f := strings.Fields(line) // exec|got NAME ID ATTEMPT KEY
				if len(f) == 5 {
					n[f[4]]++
				}
			}
		}
	}
	return n
}

// executionsOf is executions once the workers' output has caught up with
// the answers in recs: a worker prints a line when it runs a call, and the
// test reads that output asynchronously, so the last lines may still be in
// the pipe when the last answer arrives. It waits at most 5 s.
func executionsOf(workers []*proc, recs []record) map[string]int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := executions(workers)
		missing := false
		for _, r := range recs {
			if r.err == nil && n[r.key] == 0 {
				missing = true
				break
			}
		}
		if !missing || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkAnswers checks what the callers got: every call answered once, with
// the reply to its own request (a worker's name, then the call's key),
// every Retry call successful, every failed call failed with one of
// allowed, and at least one worker execution behind every success and at
// most one behind any call without Retry. It returns the number of calls,
// of failures and of calls executed more than once.
func checkAnswers(t testing.TB, recs []record, exec map[string]int, allowed ...error) (calls, failed, redelivered int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.key]++
		if seen[r.key] > 1 {
			t.Errorf("call %s answered %d times", r.key, seen[r.key])
		}
		switch {
		case r.err != nil:
			failed++
			if r.retry {
				t.Errorf("Retry call %s failed after %v: %v", r.key, r.end.Sub(r.start).Round(time.Millisecond), r.err)
			} else if !isOneOf(r.err, allowed) {
				t.Errorf("call %s failed with %v; want one of %v", r.key, r.err, allowed)
			}
		case !strings.HasSuffix(r.reply, " "+r.key):
			t.Errorf("call %s answered %q: the reply of another request", r.key, r.reply)
		case exec[r.key] == 0:
			t.Errorf("call %s answered %q but no worker ran it", r.key, r.reply)
		}
		if n := exec[r.key]; n > 1 {
			redelivered++
			if !r.retry {
				t.Errorf("call %s without Retry ran %d times at workers; want at most once", r.key, n)
			}
		}
	}
	return len(recs), failed, redelivered
}

func isOneOf(err error, targets []error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
