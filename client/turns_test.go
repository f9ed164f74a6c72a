//go:build !race

package client

import (
	"context"
	"testing"
)

// TestOneTurnPerSequentialCall: a caller that calls again as soon as its
// reply comes costs the loop one turn a call: the reply's turn yields to
// the caller, whose request leaves in that same turn, and the caller's
// Wake, for work that turn took, is drained rather than making another
// (two turns a call before). It depends on the scheduler running the
// caller within the loop's yield, which the race detector's slower
// goroutines often miss (1.6-1.8 turns there), so it is built without
// -race; make test runs it so.
func TestOneTurnPerSequentialCall(t *testing.T) {
	c := newClient(t, startBroker(t, echo))
	ctx := context.Background()
	call := func() {
		if _, err := c.Invoke(ctx, "tea.brew", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		call() // the connection up, the pools warm
	}
	const calls = 1000
	before := c.stats.turns.Load()
	for range calls {
		call()
	}
	if perCall := float64(c.stats.turns.Load()-before) / calls; perCall > 1.5 {
		t.Errorf("%.2f loop turns a call; want about 1", perCall)
	}
}
