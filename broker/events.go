package broker

import (
	"bytes"
	"encoding/hex"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

// EventKind is a step in a request's life.
type EventKind uint8

// The steps the broker reports. A request is Received, then Dispatched
// (perhaps several times, when a retry moves it), then Completed or Failed;
// or Dropped, unanswered, when its deadline passes in a queue.
const (
	Received EventKind = iota + 1
	Dispatched
	Completed
	Failed
	Dropped
)

var eventKindNames = [...]string{"", "received", "dispatched", "completed", "failed", "dropped"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "unknown"
}

// Event is one step of one request, as the broker saw it. The broker sends
// events to Config.Events without blocking: when the channel is full the
// event is dropped and counted (Counters.EventsDropped), and routing goes
// on. A journal, metrics or a tracer reads the channel.
type Event struct {
	Kind      EventKind
	Time      time.Time
	Seq       uint64 // the broker's number for the request: every event of one request has it
	RequestID string // the domo request id; empty for a plain MDP request
	Service   string
	Method    string
	Client    string // the client's routing id, hex
	Worker    string // Dispatched, Completed, Failed: the worker's routing id, hex; or the peer broker's endpoint
	Code      domo.Code
	Message   string    // Failed: the error message
	Bytes     int       // Received: request body bytes; Completed, Failed: reply body bytes
	Received  time.Time // when the broker received the request (every kind)

	// Traceparent and Tracestate are the request's W3C trace context
	// headers, on Received only; empty if it carried none.
	Traceparent string
	Tracestate  string

	// Body is a copy of the payload, at most Config.EventBodies bytes: the
	// request's on Received, the reply's on Completed and Failed. Nil when
	// bodies are off or the method is sensitive.
	Body []byte
	// Sensitive reports that the method's contract forbids recording its
	// bodies.
	Sensitive bool
}

// tapped reports that events have a taker (Config.Events or OnEvent).
func (b *Broker) tapped() bool { return b.cfg.Events != nil || b.cfg.OnEvent != nil }

// emit sends an event for r if anyone listens. It never blocks.
func (b *Broker) emit(kind EventKind, r *request, fill func(*Event)) {
	if !b.tapped() {
		return
	}
	if r.num == 0 {
		b.seq++
		r.num = b.seq
		r.evID, r.evMethod, r.evClient = string(r.id), string(r.method), hex.EncodeToString([]byte(r.client))
	}
	// Filled in the broker's own Event: one on the stack would be moved
	// to the heap (fill, unknown here, gets its address), at every event.
	b.event = Event{
		Kind:      kind,
		Time:      time.Now(),
		Seq:       r.num,
		RequestID: r.evID,
		Service:   r.service.name,
		Method:    r.evMethod,
		Client:    r.evClient,
		Received:  r.received,
	}
	if fill != nil {
		fill(&b.event)
	}
	e := b.event
	if b.cfg.OnEvent != nil && b.cfg.OnEvent(e) {
		b.readied = true
	}
	if b.cfg.Events == nil {
		return
	}
	b.readied = true // the reader may have been parked on the channel
	select {
	case b.cfg.Events <- e:
	default:
		b.counters.EventsDropped++
	}
}

// emitReply reports the end of r from the reply body a worker or peer sent.
func (b *Broker) emitReply(r *request, by string, body [][]byte) {
	if !b.tapped() {
		return
	}
	size := bodySize(body)
	kind, code, msg := Completed, domo.Code(""), ""
	rep, err := mdp.ParseReply(body)
	if err == nil && !rep.OK() {
		e := rep.Err()
		kind, code, msg = Failed, e.Code, e.Message
	}
	b.emit(kind, r, func(e *Event) {
		e.Worker, e.Code, e.Message, e.Bytes = by, code, msg, size
		if err == nil {
			b.copyBody(e, r, rep.Payload)
		}
	})
}

// copyBody puts a capped copy of payload in e, if bodies are on and r's
// method is not sensitive.
func (b *Broker) copyBody(e *Event, r *request, payload []byte) {
	if b.cfg.EventBodies <= 0 || !r.envelope {
		return
	}
	if sensitive(r.service, string(r.method)) {
		e.Sensitive = true
		return
	}
	e.Body = bytes.Clone(payload[:min(len(payload), b.cfg.EventBodies)])
}

func bodySize(body [][]byte) int {
	n := 0
	for _, f := range body {
		n += len(f)
	}
	return n
}
