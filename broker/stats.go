package broker

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

// Counters count what the broker did since it started.
type Counters struct {
	Requests       uint64 // client requests received (MMI excluded)
	Replies        uint64 // worker replies delivered to clients
	Errors         uint64 // error replies the broker itself sent
	Overloaded     uint64 // refused: the service's queue was full
	UnknownService uint64 // refused: no worker ever offered the service
	Expired        uint64 // dropped: deadline or TTL passed before delivery
	Retried        uint64 // requeued after their worker was lost (caller allowed retry)
	WorkerLost     uint64 // failed: their worker was lost
	WorkersExpired uint64 // workers dropped for heartbeat silence
	Malformed      uint64 // messages that failed to parse
	TooLarge       uint64 // messages over the limits
	Unexpected     uint64 // valid commands out of place (e.g. a second READY)
	LateReplies    uint64 // replies for requests no longer in flight
	Unroutable     uint64 // sends to peers that had gone
	SendDropped    uint64 // sends dropped because a peer's queue was full
	Offloaded      uint64 // requests forwarded to a peer broker
	EventsDropped  uint64 // events not sent because Config.Events was full
	BatchedIn      uint64 // messages received inside batches
	BatchedOut     uint64 // messages sent inside batches
	BatchesOut     uint64 // batches sent
}

// Stats is a snapshot of the broker's state.
type Stats struct {
	Started   time.Time
	Endpoints []string
	Draining  bool
	Services  []mdp.ServiceInfo
	Workers   []mdp.WorkerInfo
	InFlight  int
	Peers     []PeerInfo
	Counters  Counters
}

// Stats returns a snapshot of the broker's state, taken by its loop. It
// blocks until the loop answers or ctx ends, and fails with domo.ErrClosed
// once the broker has stopped.
func (b *Broker) Stats(ctx context.Context) (Stats, error) {
	ch := make(chan Stats, 1)
	if !b.post(func() {
		ch <- Stats{
			Started:   b.started,
			Endpoints: b.Endpoints(),
			Draining:  b.draining,
			Services:  b.serviceInfo(),
			Workers:   b.workerInfo(),
			InFlight:  len(b.inFlight),
			Peers:     b.peerInfo(),
			Counters:  b.counters,
		}
	}) {
		return Stats{}, domo.ErrClosed
	}
	select {
	case s := <-ch:
		return s, nil
	case <-b.done:
		return Stats{}, domo.ErrClosed
	case <-ctx.Done():
		return Stats{}, ctx.Err()
	}
}

// refuse counts an input the broker refused in *counter and logs it. Logs
// are rate-limited so a peer sending garbage cannot flood them.
func (b *Broker) refuse(counter *uint64, what string, identity []byte, err error) {
	*counter++
	if b.badLog.allow(time.Now()) {
		b.log.Warn("broker: refused message", "what", what, "peer", hexID(string(identity)), "err", err,
			"malformed_total", b.counters.Malformed, "too_large_total", b.counters.TooLarge,
			"unexpected_total", b.counters.Unexpected)
	}
}

// logLimiter allows a burst of logs per second.
type logLimiter struct {
	window time.Time
	n      int
}

const logBurst = 10

func (l *logLimiter) allow(now time.Time) bool {
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	l.n++
	return l.n <= logBurst
}

func hexID(identity string) string { return hex.EncodeToString([]byte(identity)) }
