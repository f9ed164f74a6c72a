// Package eventbus fans the broker's event tap out to several readers.
//
// The broker sends each request's steps to one channel (broker.Config.Events)
// and never waits on it. A journal, metrics and a tracer all want those
// events, and none of them may slow the others or the broker down. A Bus
// reads the one channel and copies each event to every Subscription, each
// with a bounded buffer of its own; an event a Subscription has no room for
// is dropped and counted for that Subscription, and the Bus goes on.
//
//	events := make(chan broker.Event, 8192)
//	cfg.Events = events
//	bus := eventbus.New(events)
//	journal := bus.Subscribe("journal", 8192)
//	tracer := bus.Subscribe("tracing", 4096)
//	go bus.Run(ctx)
//	for e := range journal.C { ... }
package eventbus

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/domo-framework/domo/broker"
)

// DefaultBuffer is the buffer a Subscription gets when Subscribe is given
// a size below 1.
const DefaultBuffer = 4096

// Subscription is one reader's share of the events. Read C until it is
// closed, which happens when the Bus stops.
type Subscription struct {
	// C delivers the events in the order the broker sent them, less any
	// dropped because C was full.
	C <-chan broker.Event

	name      string
	ch        chan broker.Event
	delivered atomic.Uint64
	dropped   atomic.Uint64
}

// Name returns the name given to Subscribe.
func (s *Subscription) Name() string { return s.name }

// Dropped returns how many events were dropped because C was full. It is
// safe to call from any goroutine.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Delivered returns how many events were put in C. It is safe to call from
// any goroutine.
func (s *Subscription) Delivered() uint64 { return s.delivered.Load() }

// Bus copies events from one channel to many subscriptions. Create it with
// New, add subscriptions with Subscribe, then call Run; or create it with
// New(nil) and have one goroutine call Publish, then Close. Its methods are
// safe for concurrent use, but for Publish, which one goroutine calls, and
// Close, which comes after its last Publish.
type Bus struct {
	in <-chan broker.Event

	mu       sync.Mutex
	subs     atomic.Pointer[[]*Subscription]      // copy on write under mu
	handlers atomic.Pointer[[]func(broker.Event)] // copy on write under mu
	closed   bool
	read     atomic.Uint64
}

// New returns a Bus that reads in. It reads nothing until Run.
func New(in <-chan broker.Event) *Bus {
	b := &Bus{in: in}
	b.subs.Store(new([]*Subscription))
	b.handlers.Store(new([]func(broker.Event)))
	return b
}

// Handle adds a function that Run calls with each event, in Run's own
// goroutine, before it copies the event to the subscriptions. It spares a
// reader its goroutine: no channel and no thread to wake per burst of
// events. fn must be quick and must not block (counters and histograms,
// not I/O): while it runs, the Bus reads nothing, and once the broker's
// channel is full the broker drops events. Events read before Handle
// returns are not given to fn.
func (b *Bus) Handle(fn func(broker.Event)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	hs := append(slices.Clone(*b.handlers.Load()), fn)
	b.handlers.Store(&hs)
}

// Subscribe adds a reader named name (for Stats and metrics) with a buffer
// of buffer events (DefaultBuffer if below 1). A subscription added while
// Run is running sees the events read after it was added. Subscribing to a
// stopped Bus returns a subscription whose C is already closed.
func (b *Bus) Subscribe(name string, buffer int) *Subscription {
	if buffer < 1 {
		buffer = DefaultBuffer
	}
	ch := make(chan broker.Event, buffer)
	s := &Subscription{C: ch, name: name, ch: ch}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(ch)
		return s
	}
	subs := append(slices.Clone(*b.subs.Load()), s)
	b.subs.Store(&subs)
	return s
}

// Run reads events and copies them to the subscriptions until the input
// channel is closed or ctx ends, then closes every subscription's C. It
// blocks; it never blocks on a subscription. It returns nil when the input
// was closed and ctx.Err() when ctx ended. Call it once.
func (b *Bus) Run(ctx context.Context) error {
	defer b.stop()
	for {
		select {
		case e, ok := <-b.in:
			if !ok {
				return nil
			}
			b.publish(e)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Publish hands e to the handlers and copies it to every subscription
// without blocking, on the caller's goroutine: it is a
// broker.Config.OnEvent, for a Bus that has no channel to Run on (New(nil)).
// It reports whether there is a subscription, whose reader the copy may
// have woken. One goroutine calls it; Close ends the subscriptions once it
// no longer does.
func (b *Bus) Publish(e broker.Event) bool { return b.publish(e) }

// Close closes every subscription's channel. Call it once whoever calls
// Publish has stopped; a Bus that Runs closes them when Run returns.
func (b *Bus) Close() { b.stop() }

// publish copies e to every subscription without blocking. Only Run (or
// the one goroutine calling Publish) calls it, so it never races with stop
// closing the channels.
func (b *Bus) publish(e broker.Event) bool {
	for _, fn := range *b.handlers.Load() {
		fn(e)
	}
	subs := *b.subs.Load()
	for _, s := range subs {
		select {
		case s.ch <- e:
			s.delivered.Add(1)
		default:
			s.dropped.Add(1)
		}
	}
	b.read.Add(1)
	return len(subs) > 0
}

func (b *Bus) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, s := range *b.subs.Load() {
		close(s.ch)
	}
}

// SubscriberStats counts one subscription's events.
type SubscriberStats struct {
	Name      string
	Delivered uint64
	Dropped   uint64
	Buffered  int // events waiting in C now
	Buffer    int // C's capacity
}

// Stats counts the events read and, per subscription in the order they
// were added, the events delivered and dropped. It is safe to call from
// any goroutine.
type Stats struct {
	Read        uint64
	Subscribers []SubscriberStats
}

// Stats returns a snapshot of the Bus's counters.
func (b *Bus) Stats() Stats {
	subs := *b.subs.Load()
	st := Stats{Read: b.read.Load(), Subscribers: make([]SubscriberStats, len(subs))}
	for i, s := range subs {
		st.Subscribers[i] = SubscriberStats{
			Name:      s.name,
			Delivered: s.delivered.Load(),
			Dropped:   s.dropped.Load(),
			Buffered:  len(s.ch),
			Buffer:    cap(s.ch),
		}
	}
	return st
}

// Dropped returns, per subscription name, the events dropped because that
// subscription was full. Subscriptions sharing a name are summed. It suits
// metrics.EventDrops.
func (b *Bus) Dropped() map[string]uint64 {
	m := make(map[string]uint64)
	for _, s := range *b.subs.Load() {
		m[s.name] += s.dropped.Load()
	}
	return m
}
