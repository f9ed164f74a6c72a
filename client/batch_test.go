package client

import (
	"fmt"
	"sync"
	"testing"

	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
)

// TestBatchesWithABroker: a client whose broker answered the probe's
// mmi.batch question sends what one flush holds as one batch, and gets the
// replies to those requests in batches; every caller gets its own answer.
func TestBatchesWithABroker(t *testing.T) {
	b, ep := testbroker.Start(t)
	startTeaWorker(t, []string{ep}, echoHandler)
	waitTea(t, b)
	c := newMulti(t, []string{ep})
	waitAlive(t, c, ep, true)

	for round := range 50 {
		var wg sync.WaitGroup
		errs := make(chan error, 256)
		for i := range 256 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := fmt.Sprint(round, "/", i)
				p, err := c.Invoke(testCtx(t), "tea.brew", []byte(want))
				if err == nil && string(p) != want {
					err = fmt.Errorf("call %s got %q", want, p)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if st := c.Stats(); st.BatchesOut > 0 && st.BatchedIn > 0 {
			t.Logf("round %d: %d batches of requests sent, %d replies received in batches", round, st.BatchesOut, st.BatchedIn)
			return
		}
	}
	t.Fatal("no batches from the client after 50 bursts")
}

// TestMalformedBatchFromBroker: a batch from the broker whose message does
// not unpack, or is itself a batch, is counted and dropped; the reply after
// it still completes its call.
func TestMalformedBatchFromBroker(t *testing.T) {
	b := startBroker(t, func(r request) [][][]byte {
		return [][][]byte{
			{r.identity, []byte(mdp.BatchHeader), {0x09, 'x'}},
			{r.identity, []byte(mdp.BatchHeader), mdp.AppendPacked(nil, [][]byte{[]byte(mdp.BatchHeader), []byte("x")})},
			reply(r, mdp.StatusOK, r.env.Payload),
		}
	})
	c := newClient(t, b)
	if p, err := c.Invoke(testCtx(t), "tea.brew", []byte("x")); err != nil || string(p) != "x" {
		t.Fatalf("Invoke = %q, %v", p, err)
	}
	if n := c.Stats().Malformed; n != 2 {
		t.Errorf("Malformed = %d; want 2", n)
	}
}
