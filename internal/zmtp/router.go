package zmtp

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"syscall"
)

// Router is a ZMTP 3 ROUTER socket: peers connect to the endpoints it
// binds, each is known by its routing id (the Identity its READY names,
// else one the router makes up: a zero byte and a 32-bit counter, as
// libzmq does), and each message received is [routing id, frames...].
// Sending to a peer that is not connected fails (libzmq's
// ZMQ_ROUTER_MANDATORY); a peer whose identity is already connected is
// refused (libzmq's default).
//
// A Router is owned by one goroutine. It never blocks: Fd is an epoll set
// the owner waits on (readable when a connection has input, a new peer, or
// room for output it holds), Recv (or Look, LookWait) reads what is ready, Send queues, and
// Flush writes what Send queued, one write a connection, which the owner
// calls before it waits.
type Router struct {
	engine
	listeners map[int32]*listener
	byID      map[string]*conn
	nextID    uint32
}

type listener struct {
	fd       int
	endpoint string
	path     string // an ipc listener's file, removed on Close
}

// NewRouter returns a Router bound to nothing yet.
func NewRouter(opts Options) (*Router, error) {
	r := &Router{
		listeners: make(map[int32]*listener),
		byID:      make(map[string]*conn),
		nextID:    rand.Uint32(),
	}
	var err error
	if r.engine, err = newEngine(opts, r, true); err != nil {
		return nil, err
	}
	return r, nil
}

// Bind listens on endpoint ("tcp://host:port", port "*" for any,
// host "*" for all IPv4 interfaces; or "ipc:///path") and returns the
// endpoint bound, with a wildcard port resolved.
func (r *Router) Bind(endpoint string) (string, error) {
	l, err := listen(endpoint)
	if err != nil {
		return "", err
	}
	if err := r.add(l.fd, syscall.EPOLLIN); err != nil {
		syscall.Close(l.fd)
		return "", err
	}
	r.listeners[int32(l.fd)] = l
	return l.endpoint, nil
}

// Close closes every connection and listener. Output not yet written is
// written first as far as the peers have room for it, without waiting;
// the rest is dropped (libzmq's linger 0).
func (r *Router) Close() error {
	if r.shut {
		return nil
	}
	for _, l := range r.listeners {
		syscall.Close(l.fd)
		if l.path != "" {
			syscall.Unlink(l.path)
		}
	}
	clear(r.listeners)
	clear(r.byID)
	return r.closeAll()
}

// event: a listener has connections to accept.
func (r *Router) event(ev syscall.EpollEvent) {
	if l, ok := r.listeners[ev.Fd]; ok {
		r.accept(l)
	}
}

// accept takes the connections waiting on l, at most a few dozen a call.
func (r *Router) accept(l *listener) {
	for range 64 {
		fd, _, err := syscall.Accept4(l.fd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN, or out of descriptors: the listener stays ready, tried next time
		}
		_, _ = r.open(fd, Property{"Socket-Type", []byte("ROUTER")})
	}
	r.left = true // more may wait: the listener stays ready, and says so to no one
}

// opened admits DEALER, REQ and ROUTER peers under their routing id.
func (r *Router) opened(c *conn, m Metadata) error {
	if err := checkPeerType(m, "DEALER", "REQ", "ROUTER"); err != nil {
		return err
	}
	id, _ := m.Get("Identity")
	if len(id) == 0 {
		var gen [5]byte
		binary.BigEndian.PutUint32(gen[1:], r.nextID)
		r.nextID++
		id = gen[:]
	}
	if _, taken := r.byID[string(id)]; taken {
		return ErrDuplicateID
	}
	c.id = string(id)
	r.byID[c.id] = c
	return nil
}

func (r *Router) gone(c *conn) {
	if c.id != "" && r.byID[c.id] == c {
		delete(r.byID, c.id)
	}
}

// Send queues [routing id, frames...] for its peer; Flush writes it. It
// never blocks: a peer that is not connected is ErrUnroutable, one with
// SendHWM messages unwritten ErrAgain.
func (r *Router) Send(frames [][]byte) error {
	if len(frames) < 2 {
		return errors.New("zmtp: send wants a routing id and a frame")
	}
	c, ok := r.byID[string(frames[0])]
	if !ok || c.dead {
		return ErrUnroutable
	}
	return r.enqueue(c, frames[1:])
}
