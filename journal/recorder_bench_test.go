package journal_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/journaltest"
)

// discard is a store that keeps nothing.
type discard struct{ journal.Store }

func (discard) Write(context.Context, []journal.Record) error { return nil }

// BenchmarkRecorder feeds a Recorder the events of b.N requests (received,
// dispatched, completed; 64 in flight) and waits until it has handed them
// all to a store that keeps nothing: the Recorder's own cost per request.
func BenchmarkRecorder(b *testing.B) {
	ch := make(chan broker.Event, 65536)
	rec := journal.NewRecorder(discard{}, journal.Config{Broker: "bench"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx, ch) }()
	defer func() { cancel(); <-done }()
	clients := make([]string, 8)
	for i := range clients {
		clients[i] = fmt.Sprintf("00%08x", i*0x1234567)
	}
	ev := func(kind broker.EventKind, seq int, t time.Time) broker.Event {
		return broker.Event{Kind: kind, Time: t, Seq: uint64(seq), RequestID: "4f1c2b3a-" + clients[seq%8],
			Service: "water", Method: "echo", Client: clients[seq%8], Worker: "000badcafe", Bytes: 64, Received: t}
	}
	const inFlight = 64
	t0 := time.Now()
	cpu0 := journaltest.CPUTime()
	b.ResetTimer()
	for i := range b.N + inFlight {
		t := t0.Add(time.Duration(i) * time.Microsecond)
		if i < b.N {
			ch <- ev(broker.Received, i, t)
			ch <- ev(broker.Dispatched, i, t)
		}
		if j := i - inFlight; j >= 0 {
			ch <- ev(broker.Completed, j, t)
		}
	}
	if err := rec.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(journaltest.CPUTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if st := rec.Stats(); st.Dropped > 0 {
		b.Fatalf("stats %+v", st)
	}
}
