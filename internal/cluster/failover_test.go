package cluster

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/client"
)

// failover is what a kill or a stop of one broker measured.
type failover struct {
	dead     time.Duration // until the client gave the broker up
	firstOK  time.Duration // until the first success of a call started after the event
	inFlight time.Duration // until the last call started before the event ended
}

func measure(t *testing.T, recs []record, at time.Time) failover {
	t.Helper()
	var f failover
	f.firstOK = -1
	for _, r := range recs {
		if r.start.Before(at) && r.end.After(at) {
			f.inFlight = max(f.inFlight, r.end.Sub(at))
		}
		if r.err == nil && r.start.After(at) && (f.firstOK < 0 || r.end.Sub(at) < f.firstOK) {
			f.firstOK = r.end.Sub(at)
		}
	}
	return f
}

// TestBrokerKill: three peered brokers, four workers on all of them, a
// client calling in loops (with and without Retry). One broker is SIGKILLed:
// every Retry call completes, no call is answered twice or with another's
// reply, calls without Retry either succeed or fail "unavailable" and never
// run twice, and the client is using the survivors at once. Restarted, the
// broker is rejoined by the workers and the client by themselves.
func TestBrokerKill(t *testing.T) {
	bs := startBrokers(t, 3)
	eps := endpoints(bs)
	var workers []*proc
	for _, name := range []string{"w1", "w2", "w3", "w4"} {
		workers = append(workers, startWorker(t, name, eps, "-delay", "150ms"))
	}
	for _, b := range bs {
		waitWorkers(t, b.ep, 4, 10*time.Second)
	}
	c := newClient(t, eps...)
	victim := bs[1]
	waitFor(t, 5*time.Second, "the client hears every broker", func() bool {
		return brokerAlive(c, eps[0]) && brokerAlive(c, eps[1]) && brokerAlive(c, eps[2])
	})

	retry := startLoad(c, "svc.echo", "r", 4, true)
	plain := startLoad(c, "svc.echo", "p", 2, false)
	time.Sleep(300 * time.Millisecond)

	// Kill the broker while it has calls of this client in flight.
	waitFor(t, 5*time.Second, "a call in flight at the victim", func() bool { return brokerInFlight(c, victim.ep) > 0 })
	killed := time.Now()
	victim.p.kill()
	dead := waitFor(t, 5*time.Second, "the client gives the killed broker up", func() bool { return !brokerAlive(c, victim.ep) })
	waitFor(t, 5*time.Second, "calls succeed after the kill", func() bool { _, ok := retry.count(killed); return ok > 20 })
	time.Sleep(300 * time.Millisecond)

	// Restart it: workers and the client come back to it by themselves.
	restarted := time.Now()
	victim.restart()
	rejoinWorkers := waitWorkers(t, victim.ep, 4, 10*time.Second)
	rejoinClient := waitFor(t, 5*time.Second, "the client uses the restarted broker again", func() bool { return brokerAlive(c, victim.ep) })
	time.Sleep(300 * time.Millisecond)

	recs := append(retry.finish(), plain.finish()...)
	f := measure(t, recs, killed)
	f.dead = dead
	calls, failed, redelivered := checkAnswers(t, recs, executionsOf(workers, recs), domo.ErrUnavailable)
	t.Logf("%d calls, %d without Retry failed (unavailable), %d ran more than once at workers; client: %s", calls, failed, redelivered, statsLine(c))
	t.Logf("after SIGKILL: client gave the broker up in %v; first call started after the kill answered in %v; calls in flight at the kill all ended within %v",
		f.dead.Round(time.Millisecond), f.firstOK.Round(time.Millisecond), f.inFlight.Round(time.Millisecond))
	t.Logf("after restart (%v ago): 4 workers back in %v (from the broker's start), client alive again %v later",
		time.Since(restarted).Round(time.Millisecond), rejoinWorkers.Round(time.Millisecond), rejoinClient.Round(time.Millisecond))

	// "Using the survivors within 2 heartbeat intervals": generous margin
	// for a loaded (race-instrumented) machine.
	if f.firstOK < 0 || f.firstOK > 2*hb+time.Second {
		t.Errorf("first success after the kill took %v; want within 2 heartbeat intervals (%v) plus a margin", f.firstOK, 2*hb)
	}
	if f.dead > expiry+2*hb+time.Second {
		t.Errorf("the client gave the killed broker up after %v; want about %v", f.dead, expiry)
	}

	// The client sends calls to the restarted broker again.
	busy := startLoad(c, "svc.slow", "s", 6, true)
	waitFor(t, 5*time.Second, "calls in flight at the restarted broker", func() bool { return brokerInFlight(c, victim.ep) > 0 })
	busyRecs := busy.finish()
	checkAnswers(t, busyRecs, executionsOf(workers, busyRecs))
}

// statsLine is the part of a client's Stats worth logging.
func statsLine(c *client.Client) string {
	s := c.Stats()
	return fmt.Sprintf("calls %d, retries %d, failovers %d, late replies dropped %d", s.Calls, s.Retries, s.Failovers, s.Late)
}

// TestBrokerStop: a broker stalled with SIGSTOP (alive to the kernel, its
// connections open, answering nothing) is given up by the client, its
// peers and its workers by heartbeat, exactly as a dead one; Retry calls
// complete elsewhere. After SIGCONT it works again: the workers rejoin it,
// the client uses it, and what it held during the stall (requests already
// answered elsewhere) reaches no caller twice.
func TestBrokerStop(t *testing.T) {
	bs := startBrokers(t, 3)
	eps := endpoints(bs)
	var workers []*proc
	for _, name := range []string{"w1", "w2"} {
		workers = append(workers, startWorker(t, name, eps))
	}
	for _, b := range bs {
		waitWorkers(t, b.ep, 2, 10*time.Second)
	}
	c := newClient(t, eps...)
	victim := bs[2]
	waitFor(t, 5*time.Second, "the client hears every broker", func() bool {
		return brokerAlive(c, eps[0]) && brokerAlive(c, eps[1]) && brokerAlive(c, eps[2])
	})
	retry := startLoad(c, "svc.echo", "r", 4, true)
	plain := startLoad(c, "svc.echo", "p", 2, false)
	time.Sleep(300 * time.Millisecond)

	waitFor(t, 5*time.Second, "a call in flight at the victim", func() bool { return brokerInFlight(c, victim.ep) > 0 })
	stopped := time.Now()
	victim.p.signal(syscall.SIGSTOP)
	t.Cleanup(func() { _ = victim.p.cmd.Process.Signal(syscall.SIGCONT) })
	dead := waitFor(t, 5*time.Second, "the client gives the stopped broker up", func() bool { return !brokerAlive(c, victim.ep) })
	waitFor(t, 5*time.Second, "calls succeed during the stall", func() bool { _, ok := retry.count(stopped); return ok > 20 })
	time.Sleep(3 * expiry) // the workers give it up too and reconnect, in vain

	resumed := time.Now()
	victim.p.signal(syscall.SIGCONT)
	back := waitFor(t, 5*time.Second, "the client uses the resumed broker again", func() bool { return brokerAlive(c, victim.ep) })
	rejoin := waitWorkers(t, victim.ep, 2, 10*time.Second)
	time.Sleep(300 * time.Millisecond)

	recs := append(retry.finish(), plain.finish()...)
	f := measure(t, recs, stopped)
	calls, failed, redelivered := checkAnswers(t, recs, executionsOf(workers, recs), domo.ErrUnavailable)
	t.Logf("%d calls, %d without Retry failed (unavailable), %d ran more than once at workers; client: %s", calls, failed, redelivered, statsLine(c))
	t.Logf("after SIGSTOP: client gave the broker up in %v; first call started after the stop answered in %v; calls in flight at the stop all ended within %v",
		dead.Round(time.Millisecond), f.firstOK.Round(time.Millisecond), f.inFlight.Round(time.Millisecond))
	t.Logf("after SIGCONT: client alive again in %v, 2 workers there %v later (%v after SIGCONT)",
		back.Round(time.Millisecond), rejoin.Round(time.Millisecond), time.Since(resumed).Round(time.Millisecond))
	if dead > expiry+2*hb+time.Second {
		t.Errorf("the client gave the stopped broker up after %v; want about %v", dead, expiry)
	}

	// The resumed broker serves calls by itself.
	only := newClient(t, victim.ep)
	l := startLoad(only, "svc.echo", "only", 2, false)
	waitFor(t, 5*time.Second, "calls through the resumed broker alone", func() bool { n, _ := l.count(time.Time{}); return n > 20 })
	recs = l.finish()
	if _, failed, _ := checkAnswers(t, recs, executionsOf(workers, recs)); failed > 0 {
		t.Errorf("%d calls through the resumed broker failed", failed)
	}
}
