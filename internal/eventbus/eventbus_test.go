package eventbus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/domo-framework/domo/broker"
)

func TestFanOut(t *testing.T) {
	in := make(chan broker.Event)
	bus := New(in)
	fast := bus.Subscribe("fast", 100)
	slow := bus.Subscribe("slow", 2)
	var handled []uint64 // Run's goroutine appends; read after Run returns
	bus.Handle(func(e broker.Event) { handled = append(handled, e.Seq) })
	done := make(chan error, 1)
	go func() { done <- bus.Run(context.Background()) }()

	const n = 10
	for i := range n {
		in <- broker.Event{Kind: broker.Received, Seq: uint64(i + 1)}
	}
	// A subscriber added late sees only later events.
	for bus.Stats().Read < n {
		time.Sleep(time.Millisecond)
	}
	late := bus.Subscribe("late", 10)
	in <- broker.Event{Kind: broker.Completed, Seq: n + 1}
	close(in)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v; want nil after the input closed", err)
	}

	if len(handled) != n+1 || handled[0] != 1 || handled[n] != n+1 {
		t.Errorf("the handler saw %v; want every event in order, 1 to %d", handled, n+1)
	}
	var got []uint64
	for e := range fast.C {
		got = append(got, e.Seq)
	}
	if len(got) != n+1 {
		t.Fatalf("fast got %d events; want %d", len(got), n+1)
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("fast event %d has Seq %d; want %d (order kept)", i, seq, i+1)
		}
	}
	if fast.Dropped() != 0 {
		t.Errorf("fast.Dropped() = %d; want 0", fast.Dropped())
	}
	var slowGot int
	for range slow.C {
		slowGot++
	}
	if slowGot != 2 || slow.Dropped() != n-1 {
		t.Errorf("slow got %d, dropped %d; want 2 and %d", slowGot, slow.Dropped(), n-1)
	}
	var lateGot []uint64
	for e := range late.C {
		lateGot = append(lateGot, e.Seq)
	}
	if len(lateGot) != 1 || lateGot[0] != n+1 {
		t.Errorf("late got %v; want [%d]", lateGot, n+1)
	}

	st := bus.Stats()
	if st.Read != n+1 || len(st.Subscribers) != 3 {
		t.Fatalf("Stats() = %+v; want Read %d and 3 subscribers", st, n+1)
	}
	if d := bus.Dropped(); d["slow"] != n-1 || d["fast"] != 0 {
		t.Errorf("Dropped() = %v; want slow:%d fast:0", d, n-1)
	}
	// After Run, a new subscription is closed at once.
	if _, ok := <-bus.Subscribe("after", 1).C; ok {
		t.Error("Subscribe after Run: C delivered an event; want it closed")
	}
}

// TestNeverBlocks checks that a subscriber nobody reads does not hold up
// the reader: the input channel, unbuffered, keeps being drained.
func TestNeverBlocks(t *testing.T) {
	in := make(chan broker.Event)
	bus := New(in)
	stuck := bus.Subscribe("stuck", 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	deadline := time.After(5 * time.Second)
	for i := range 1000 {
		select {
		case in <- broker.Event{Seq: uint64(i)}:
		case <-deadline:
			t.Fatalf("the bus stopped reading after %d events", i)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v; want context.Canceled", err)
	}
	if stuck.Dropped() != 999 {
		t.Errorf("stuck.Dropped() = %d; want 999", stuck.Dropped())
	}
}

// TestPublish: a Bus without an input channel, fed on the publisher's
// goroutine (broker.Config.OnEvent), hands events to its handlers and
// subscriptions alike, and Close ends the subscriptions.
func TestPublish(t *testing.T) {
	bus := New(nil)
	var handled int
	bus.Handle(func(broker.Event) { handled++ })
	if bus.Publish(broker.Event{Kind: broker.Received, Seq: 1}) {
		t.Error("Publish with no subscription reported one woken")
	}
	sub := bus.Subscribe("journal", 1)
	if !bus.Publish(broker.Event{Kind: broker.Completed, Seq: 1}) {
		t.Error("Publish to a subscription reported none")
	}
	bus.Publish(broker.Event{Kind: broker.Received, Seq: 2}) // no room: dropped
	bus.Close()
	var got []uint64
	for e := range sub.C {
		got = append(got, e.Seq)
	}
	if handled != 3 || len(got) != 1 || got[0] != 1 || sub.Dropped() != 1 {
		t.Errorf("handled %d, subscription got %v and dropped %d; want 3, [1], 1", handled, got, sub.Dropped())
	}
	if st := bus.Stats(); st.Read != 3 {
		t.Errorf("Stats().Read = %d; want 3", st.Read)
	}
}
