package cluster

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domo-framework/domo/client"
)

// TestBenchCluster measures what docs/benchmarks.md ("Many brokers") records. It
// runs only with DOMO_CLUSTER_BENCH=1, and should run without -race:
//
//	DOMO_CLUSTER_BENCH=1 go test -run TestBenchCluster -v -count=1 ./internal/cluster/
func TestBenchCluster(t *testing.T) {
	if os.Getenv("DOMO_CLUSTER_BENCH") != "1" {
		t.Skip("a benchmark: set DOMO_CLUSTER_BENCH=1 to run it")
	}
	if raceEnabled {
		t.Skip("a benchmark: run it without -race")
	}
	t.Logf("GOMAXPROCS %d, %s/%s, %s", runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	t.Run("throughput", func(t *testing.T) {
		for _, n := range []int{1, 3, 1, 3} { // alternated: the machine is shared and noisy
			benchThroughput(t, n)
		}
	})
	t.Run("failover", func(t *testing.T) {
		for _, heartbeat := range []time.Duration{100 * time.Millisecond, 500 * time.Millisecond} {
			benchFailover(t, heartbeat, 5)
		}
	})
}

// benchThroughput: n peered brokers, 4 echo workers connected to all of
// them, 8 clients of all of them with 8 calls in flight each, 64-byte
// payloads, for 5 s.
func benchThroughput(t *testing.T, n int) {
	const (
		clients  = 8
		inflight = 8
		size     = 64
		duration = 5 * time.Second
	)
	bs := startBrokers(t, n)
	eps := endpoints(bs)
	for i := range 4 {
		startWorker(t, fmt.Sprintf("w%d", i), eps, "-quiet", "-concurrency", "32")
	}
	for _, b := range bs {
		waitWorkers(t, b.ep, 4, 10*time.Second)
	}
	cs := make([]*client.Client, clients)
	for i := range cs {
		cs[i] = newClient(t, eps...)
		waitFor(t, 5*time.Second, "client hears every broker", func() bool {
			for _, ep := range eps {
				if !brokerAlive(cs[i], ep) {
					return false
				}
			}
			return true
		})
	}
	payload := []byte(strings.Repeat("x", size))
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range cs {
		for range inflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				for ctx.Err() == nil {
					t0 := time.Now()
					cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err := c.Invoke(cctx, "svc.echo", payload)
					ccancel()
					if err != nil {
						failed.Add(1)
						continue
					}
					ok.Add(1)
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	q := func(f float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(f*float64(len(lat)-1))].Round(time.Microsecond)
	}
	t.Logf("%d broker(s): %d requests in %v: %.0f req/s, %d errors; latency p50 %v p99 %v",
		n, ok.Load(), elapsed.Round(time.Millisecond), float64(ok.Load())/elapsed.Seconds(), failed.Load(), q(0.5), q(0.99))
	for _, c := range cs {
		c.Close()
	}
	for _, b := range bs {
		b.p.kill()
	}
}

// benchFailover: 3 peered brokers, 2 workers, one client calling svc.echo
// with Retry in 4 loops; rounds times, one broker that has calls in flight
// is SIGKILLed, then restarted.
func benchFailover(t *testing.T, heartbeat time.Duration, rounds int) {
	eps := []string{freeEndpoint(t), freeEndpoint(t), freeEndpoint(t)}
	bs := make([]*brokerProc, 3)
	for i := range bs {
		bs[i] = startBrokerHB(t, fmt.Sprintf("b%d", i), eps[i], eps, heartbeat)
	}
	for i := range 2 {
		startWorker(t, fmt.Sprintf("w%d", i), eps, "-quiet", "-heartbeat", heartbeat.String())
	}
	c, err := client.New(client.WithBroker(eps...), client.WithHeartbeat(heartbeat, liveness))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var firstOK, stall, dead []time.Duration
	for round := range rounds {
		victim := bs[round%3]
		for _, b := range bs {
			waitWorkers(t, b.ep, 2, 20*time.Second)
		}
		waitFor(t, 20*time.Second, "the client hears every broker", func() bool {
			return brokerAlive(c, eps[0]) && brokerAlive(c, eps[1]) && brokerAlive(c, eps[2])
		})
		l := startLoad(c, "svc.echo", fmt.Sprintf("r%d", round), 4, true)
		time.Sleep(200 * time.Millisecond)
		waitFor(t, 5*time.Second, "a call in flight at the victim", func() bool { return brokerInFlight(c, victim.ep) > 0 })
		killed := time.Now()
		victim.p.kill()
		d := waitFor(t, 20*time.Second, "the client gives the broker up", func() bool { return !brokerAlive(c, victim.ep) })
		time.Sleep(heartbeat)
		recs := l.finish()
		f := measure(t, recs, killed)
		for _, r := range recs {
			if r.err != nil {
				t.Errorf("Retry call %s failed: %v", r.key, r.err)
			}
		}
		firstOK, stall, dead = append(firstOK, f.firstOK), append(stall, f.inFlight), append(dead, d)
		t.Logf("heartbeat %v round %d: broker given up after %v, first new call answered %v after the kill, calls in flight at the kill answered within %v",
			heartbeat, round, d.Round(time.Millisecond), f.firstOK.Round(time.Microsecond), f.inFlight.Round(time.Millisecond))
		victim.restart()
	}
	med := func(ds []time.Duration) string {
		s := slices.Clone(ds)
		slices.Sort(s)
		return fmt.Sprintf("median %v, max %v", s[len(s)/2].Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond))
	}
	t.Logf("heartbeat %v x %d, %d rounds: first new call answered after the kill: %s; in-flight calls answered (via another broker): %s; broker given up: %s",
		heartbeat, liveness, rounds, med(firstOK), med(stall), med(dead))
}
