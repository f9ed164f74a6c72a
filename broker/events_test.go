package broker_test

import (
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
)

func nextEvent(t *testing.T, events <-chan broker.Event) broker.Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event in 5s")
		return broker.Event{}
	}
}

// TestEventsTraceARequest: a request's events, through either tap: the
// Events channel, or OnEvent called on the loop.
func TestEventsTraceARequest(t *testing.T) {
	t.Run("Events", func(t *testing.T) {
		events := make(chan broker.Event, 100)
		traceARequest(t, events, func(c *broker.Config) { c.Events = events })
	})
	t.Run("OnEvent", func(t *testing.T) {
		events := make(chan broker.Event, 100)
		traceARequest(t, events, func(c *broker.Config) {
			c.OnEvent = func(e broker.Event) bool {
				events <- e // never full here: the test reads them all
				return true
			}
		})
	})
}

func traceARequest(t *testing.T, events <-chan broker.Event, tap func(*broker.Config)) {
	b, ep := testbroker.Start(t, tap)
	w := domoWorker(t, ep, "tea", "2")
	waitWorkers(t, b, 1)
	c := dial(t, ep)

	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	c.sendMsg(clientV1("tea", request("brew", "r1", func(h mdp.Headers) mdp.Headers {
		return mdp.AppendHeader(h, mdp.HeaderTraceparent, tp)
	})...))
	req := w.expect("request")
	env, _ := mdp.ParseRequest(req.Body)
	w.sendMsg(reply(req, mdp.OKReply(env.Headers, []byte("cup")).Append(nil)...))
	c.expect("reply")

	want := []broker.EventKind{broker.Received, broker.Dispatched, broker.Completed}
	var seq uint64
	for i, kind := range want {
		e := nextEvent(t, events)
		if e.Kind != kind || e.RequestID != "r1" || e.Service != "tea" || e.Method != "brew" {
			t.Fatalf("event %d = %+v; want %v of r1 tea.brew", i, e, kind)
		}
		if i == 0 {
			seq = e.Seq
			if e.Traceparent != tp {
				t.Fatalf("received event traceparent = %q; want %q", e.Traceparent, tp)
			}
		} else if e.Seq != seq {
			t.Fatalf("event %d has seq %d; want %d like the first", i, e.Seq, seq)
		}
		if kind != broker.Received && e.Worker == "" {
			t.Fatalf("event %d names no worker", i)
		}
	}

	c.sendMsg(clientV1("nosuch", request("x", "r2")...))
	c.expect("error reply")
	if e := nextEvent(t, events); e.Kind != broker.Received || e.RequestID != "r2" {
		t.Fatalf("event = %+v; want received r2", e)
	}
	if e := nextEvent(t, events); e.Kind != broker.Failed || e.Code != domo.CodeUnknownService {
		t.Fatalf("event = %+v; want failed unknown_service", e)
	}
}

func TestFullEventChannelNeverStallsRouting(t *testing.T) {
	events := make(chan broker.Event) // nobody reads it
	b, ep := testbroker.Start(t, func(c *broker.Config) { c.Events = events })
	w := plainWorker(t, ep, "echo")
	waitWorkers(t, b, 1)
	c := dial(t, ep)
	for i := range 20 {
		c.sendMsg(clientV1("echo", []byte{byte(i)}))
		req := w.expect("request")
		w.sendMsg(reply(req, req.Body...))
		if m := c.expect("reply"); m.Body[0][0] != byte(i) {
			t.Fatalf("reply %d = %q", i, m.Body)
		}
	}
	if s := stats(t, b); s.Counters.EventsDropped != 60 {
		t.Fatalf("EventsDropped = %d; want 60 (3 per request)", s.Counters.EventsDropped)
	}
}
