package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/client"
)

// gotBy waits for a "got" line (a slow request started) of key from any of
// workers and returns that worker's index.
func gotBy(t *testing.T, workers []*proc, key string) int {
	t.Helper()
	var who int
	waitFor(t, 10*time.Second, "a worker starts "+key, func() bool {
		for i, w := range workers {
			for _, l := range w.linesWith("got ") {
				if strings.HasSuffix(l, " "+key) {
					who = i
					return true
				}
			}
		}
		return false
	})
	return who
}

type result struct {
	reply string
	err   error
	at    time.Time
}

func callAsync(c *client.Client, key string, opts ...client.CallOption) <-chan result {
	ch := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rep, err := c.Invoke(ctx, "svc.slow", []byte(key), opts...)
		ch <- result{string(rep), err, time.Now()}
	}()
	return ch
}

// TestWorkerKill: a worker SIGKILLed in the middle of a request is dropped
// by the broker within the heartbeat expiry; the request, made with Retry,
// is then delivered to another worker and completes. Without Retry the
// caller gets "unavailable" and the request is not run again.
func TestWorkerKill(t *testing.T) {
	bs := startBrokers(t, 3)
	eps := endpoints(bs)
	workers := []*proc{
		startWorker(t, "w1", eps[:1], "-delay", "1s"),
		startWorker(t, "w2", eps[:1], "-delay", "1s"),
	}
	waitWorkers(t, eps[0], 2, 10*time.Second)
	c := newClient(t, eps[0])

	// With Retry: completes on the other worker.
	done := callAsync(c, "k1", client.Retry())
	victim := gotBy(t, workers, "k1")
	killed := time.Now()
	workers[victim].kill()
	dropped := waitWorkers(t, eps[0], 1, 5*time.Second)
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the Retry call did not end within 10s of the worker's death")
	}
	survivor := workers[1-victim]
	if r.err != nil || !strings.HasPrefix(r.reply, strings.TrimPrefix(survivor.name, "worker ")+" ") {
		t.Fatalf("Retry call after the worker's death = %q, %v; want the reply of %s", r.reply, r.err, survivor.name)
	}
	t.Logf("SIGKILL of %s mid-request: dropped by the broker within %v (expiry %v); the request, retried on %s, answered %v after the kill",
		workers[victim].name, dropped.Round(time.Millisecond), expiry, survivor.name, r.at.Sub(killed).Round(time.Millisecond))
	if dropped > expiry+2*hb+time.Second {
		t.Errorf("the dead worker was dropped after %v; want within the heartbeat expiry %v (plus a margin)", dropped, expiry)
	}
	// The survivor's line about its run may still be in the pipe.
	waitFor(t, 5*time.Second, "the survivor's report of its run", func() bool { return executions(workers)["k1"] >= 2 })
	if n := executions(workers)["k1"]; n != 2 {
		t.Errorf("k1 ran %d times at workers; want 2 (the killed attempt and the retry)", n)
	}

	// Without Retry: the caller is told, and nothing runs it again.
	workers = []*proc{survivor, startWorker(t, "w3", eps[:1], "-delay", "1s")}
	waitWorkers(t, eps[0], 2, 10*time.Second)
	done = callAsync(c, "k2")
	victim = gotBy(t, workers, "k2")
	workers[victim].kill()
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the call without Retry did not end within 10s of the worker's death")
	}
	var de *domo.Error
	if !errors.Is(r.err, domo.ErrUnavailable) || !errors.As(r.err, &de) {
		t.Fatalf("call without Retry after its worker's death = %q, %v; want a domo.Error matching domo.ErrUnavailable", r.reply, r.err)
	}
	t.Logf("without Retry the caller got: %v", r.err)
	time.Sleep(2 * hb)
	if n := executions(workers)["k2"]; n != 1 {
		t.Errorf("k2 (no Retry) ran %d times at workers; want 1", n)
	}
}

// TestOffload: a service whose only worker is connected to broker B is
// callable through broker A, which offloads to its peer B.
func TestOffload(t *testing.T) {
	bs := startBrokers(t, 2)
	a, b := bs[0].ep, bs[1].ep
	w := startWorker(t, "wb", []string{b})
	waitWorkers(t, b, 1, 10*time.Second)
	c := newClient(t, a) // a client of A alone

	// A learns of B's capacity from a probe every heartbeat interval; until
	// then (and within A's start-up grace) the call waits in A's queue.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	rep, err := c.Invoke(ctx, "svc.echo", []byte("via-a"))
	if err != nil || string(rep) != "wb via-a" {
		t.Fatalf("svc.echo through A = %q, %v; want %q", rep, err, "wb via-a")
	}
	t.Logf("first call through A answered by B's worker in %v", time.Since(start).Round(time.Millisecond))
	if info, err := serviceInfo(c, "svc"); err != nil || info.Workers != 0 {
		t.Errorf("A's own workers of svc: %+v, %v; want none (the call went through B)", info, err)
	}
	for i := range 50 {
		key := "via-a-" + string(rune('a'+i%26))
		rep, err := c.Invoke(ctx, "svc.echo", []byte(key))
		if err != nil || string(rep) != "wb "+key {
			t.Fatalf("call %d through A = %q, %v", i, rep, err)
		}
	}
	if n := len(w.linesWith("exec ")); n != 51 {
		t.Errorf("B's worker ran %d requests; want 51", n)
	}
}
