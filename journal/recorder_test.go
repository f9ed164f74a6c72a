package journal_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/journal"
)

// TestRecorderFullBatch: while the store is stalled and the batch is full,
// a request that goes on is remembered (its events counted as dropped) and
// written whole once it ends after the store came back; one that ended
// while the batch was full is lost and counted.
func TestRecorderFullBatch(t *testing.T) {
	store := &stalled{Store: openSQLite(t), release: make(chan struct{})}
	rec := journal.NewRecorder(store, journal.Config{Broker: "b1", BatchSize: 2, MaxPending: 2, FlushInterval: time.Millisecond})
	ch := make(chan broker.Event, 100)
	run(t, rec, ch)
	t0 := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	ev := func(kind broker.EventKind, seq uint64, worker string) broker.Event {
		at := t0.Add(time.Duration(seq) * time.Second)
		return broker.Event{Kind: kind, Seq: seq, Service: "tea", Method: "brew", Worker: worker,
			Time: at.Add(time.Duration(kind) * time.Millisecond), Received: at}
	}
	waitFor := func(what string, ok func(journal.Stats) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(rec.Stats()); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: stats %+v", what, rec.Stats())
			}
		}
	}

	ch <- ev(broker.Received, 1, "")
	for store.writes.Load() == 0 { // the writer took request 1 and is stuck in the store
		time.Sleep(time.Millisecond)
	}
	ch <- ev(broker.Dispatched, 1, "w1")
	ch <- ev(broker.Received, 2, "") // the batch is now full: 1 and 2
	ch <- ev(broker.Received, 3, "")
	ch <- ev(broker.Dispatched, 3, "w3")
	ch <- ev(broker.Received, 4, "")
	ch <- ev(broker.Completed, 4, "w4")
	waitFor("7 events read", func(s journal.Stats) bool { return s.Events == 7 })
	if st := rec.Stats(); st.Dropped != 4 || st.Live != 2+1 {
		t.Fatalf("with the batch full: %+v; want 4 events dropped (requests 3 and 4), 3 requests live", st)
	}

	close(store.release)
	waitFor("request 1 and 2 written", func(s journal.Stats) bool { return s.Written >= 3 })
	ctx := context.Background()
	ch <- ev(broker.Completed, 3, "w3")
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ch <- ev(broker.Completed, 1, "w1") // two at most, to fit the batch
	ch <- ev(broker.Completed, 2, "w2")
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(ctx, journal.ID{Run: rec.RunID(), Seq: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != journal.StatusCompleted || got.Worker != "w3" || got.Attempts != 1 ||
		!got.Received.Equal(t0.Add(3*time.Second)) || got.Dispatched.IsZero() {
		t.Errorf("request 3 = %+v; want it whole: completed by w3, one attempt, received and dispatched times", got)
	}
	if _, err := store.Get(ctx, journal.ID{Run: rec.RunID(), Seq: 4}); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("request 4 (ended while the batch was full) = %v; want not found", err)
	}
	if st := rec.Stats(); st.Dropped != 4 || st.Live != 0 || st.Pending != 0 {
		t.Errorf("at the end: %+v; want 4 dropped, none live or pending", st)
	}
}
