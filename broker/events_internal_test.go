package broker

import (
	"testing"

	"github.com/domo-framework/domo/mdp"
)

// TestEmitAllocatesNothing: an event for a request that had one already
// costs no allocation (its names are made at the first; the Event is
// filled in the broker's own, not in one moved to the heap because fill
// gets its address): the journal's tap is on every request's path.
func TestEmitAllocatesNothing(t *testing.T) {
	events := make(chan Event, 1)
	b := &Broker{cfg: Config{Events: events}}
	r := &request{id: []byte("id-1"), method: []byte("tea.brew"), client: "\x00abc", service: &service{name: "tea"}}
	b.emit(Received, r, nil)
	<-events
	w := "worker-1"
	if n := testing.AllocsPerRun(100, func() {
		b.emit(Dispatched, r, func(e *Event) { e.Worker = w })
		if e := <-events; e.Worker != w || e.Method != "tea.brew" || e.Kind != Dispatched {
			t.Fatalf("event %+v", e)
		}
	}); n != 0 {
		t.Errorf("%v allocations an event; want 0", n)
	}
}

// TestNewRequestAllocations: a client request the broker takes in is two
// allocations: the request (the body's frames in it) and the client's
// identity as a string.
func TestNewRequestAllocations(t *testing.T) {
	b := &Broker{}
	h := mdp.AppendHeader(nil, mdp.HeaderID, "id-1")
	body := (&mdp.RequestBody{Method: []byte("tea.brew"), Headers: h, Payload: []byte(`{}`)}).Append(nil)
	msg := &mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte("tea"), Body: body}
	svc := newService("tea")
	identity := []byte("\x00client")
	var r *request
	if n := testing.AllocsPerRun(100, func() {
		r = b.newRequest(identity, msg, svc)
	}); n > 2 {
		t.Errorf("%v allocations a request; want 2", n)
	}
	if string(r.method) != "tea.brew" || string(r.id) != "id-1" || len(r.body) != len(body) {
		t.Errorf("request %+v", r)
	}
}
