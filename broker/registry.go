package broker

import (
	"time"

	"github.com/domo-framework/domo/mdp"
)

// request is one client request the broker holds, queued or in flight.
type request struct {
	seq      uint64 // broker-local number of the current dispatch; the route frame workers echo
	num      uint64 // broker-local number of the request, for events; stable across retries
	route    []byte // seq, 8 bytes big-endian
	client   string // the client's routing identity
	version  mdp.Version
	service  *service
	body     [][]byte // the MDP body, as received
	envelope bool     // body is a domo envelope
	id       []byte   // request id header, when enveloped
	method   []byte   // method frame, when enveloped
	deadline time.Time
	retry    bool // the caller allows redelivery
	received time.Time
	worker   *worker // while in flight at a local worker
	peer     *peer   // while in flight at a peer broker
	fromPeer bool    // sent by a peer broker: never offloaded again
	batched  bool    // came in a batch: its client takes batched replies

	// The request's names as events report them, made once at its first
	// event rather than at each.
	evID, evMethod, evClient string

	// Room for the route and the body's frames (a domo request has three
	// or four), so that a request is one allocation, not three.
	routeRoom [8]byte
	bodyRoom  [4][]byte
}

func (r *request) expired(now time.Time) bool {
	return !r.deadline.IsZero() && now.After(r.deadline)
}

// worker is one connected worker.
type worker struct {
	identity string
	name     string // identity in hex, for logs and events
	service  *service
	version  mdp.Version // the version of its READY
	domo     bool        // sent the domo READY extension
	batch    bool        // takes batches (READY header "batch")
	credit   int         // requests it takes at once
	inFlight int
	expiry   time.Time // dropped if silent past this
	lastSent time.Time
	digest   string // of the contract it sent in READY, if any

	// requests dispatched in this turn of the loop, sent as one batch at
	// its end (batch workers only)
	pending []*request

	// links in its service's ready list, while it has free credit
	prev, next *worker
	ready      bool
}

// service is a named queue and the workers that serve it.
type service struct {
	name      string
	nameBytes []byte // the service frame of replies
	queue     deque
	workers   int
	known     bool // a worker has offered it since the broker started
	ready     readyList
	docs      *serviceDocs // contracts its workers sent; nil if none did
}

func newService(name string) *service {
	return &service{name: name, nameBytes: []byte(name)}
}

// readyList holds a service's workers with free credit, least recently used
// first. It is intrusive: the links live in the workers.
type readyList struct {
	head, tail *worker
	n          int
}

func (l *readyList) pushBack(w *worker) {
	if w.ready {
		return
	}
	w.ready = true
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.n++
}

func (l *readyList) remove(w *worker) {
	if !w.ready {
		return
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next, w.ready = nil, nil, false
	l.n--
}

// deque is a ring buffer of requests; it grows as needed up to the caller's
// limit and never shrinks below its high-water mark.
type deque struct {
	buf        []*request
	head, size int
}

func (q *deque) len() int { return q.size }

func (q *deque) grow() {
	n := max(16, 2*len(q.buf))
	buf := make([]*request, n)
	for i := range q.size {
		buf[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = buf, 0
}

func (q *deque) pushBack(r *request) {
	if q.size == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.size)%len(q.buf)] = r
	q.size++
}

func (q *deque) pushFront(r *request) {
	if q.size == len(q.buf) {
		q.grow()
	}
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = r
	q.size++
}

func (q *deque) popFront() *request {
	if q.size == 0 {
		return nil
	}
	r := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return r
}

// filter keeps the requests for which keep returns true, in order.
func (q *deque) filter(keep func(*request) bool) {
	n := q.size
	for range n {
		r := q.popFront()
		if keep(r) {
			q.pushBack(r)
		}
	}
}
