package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
)

// TestBatchesWithARealBroker: a burst of requests reaches the worker SDK in
// batches; it answers in batches (having seen the broker send one), and
// every caller gets its own reply.
func TestBatchesWithARealBroker(t *testing.T) {
	b, ep := testbroker.Start(t)
	w := New("tea", WithBroker(ep), WithConcurrency(64), WithLogger(quiet()),
		WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness))
	w.HandleFunc("echo", echo)
	startReal(t, w)
	c := newRawClient(t, ep)
	c.callUntilOK("echo", "warm")

	const n = 512
	got := map[string]string{}
	for round := 0; round < 50 && got != nil; round++ {
		clear(got)
		for i := range n {
			c.send(2, "echo", fmt.Sprint(round, "-", i), fmt.Sprint("payload ", i))
		}
		for range n {
			_, r := c.recv()
			id, _ := r.Headers.Get(mdp.HeaderID)
			got[string(id)] = string(r.Payload)
		}
		for i := range n {
			if p := got[fmt.Sprint(round, "-", i)]; p != fmt.Sprint("payload ", i) {
				t.Fatalf("request %d-%d: reply payload %q", round, i, p)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := b.Stats(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if s.Counters.BatchesOut > 0 && s.Counters.BatchedIn > 0 {
			t.Logf("round %d: %d requests in %d batches to the worker, %d replies in batches from it",
				round, s.Counters.BatchedOut, s.Counters.BatchesOut, s.Counters.BatchedIn)
			return
		}
	}
	t.Fatal("no batch either way after 50 bursts")
}
