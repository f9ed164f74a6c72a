package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// Client calls methods through a broker. It keeps one connection, owned by
// one goroutine, over which any number of calls are in flight at once.
// All methods are safe for concurrent use.
type Client struct {
	opts   options
	prefix string // request id prefix: 8 random hex digits and "-"
	seq    atomic.Uint64

	mu       sync.Mutex
	pending  map[uint64]*call // calls and streams waiting for replies, by request id
	closed   bool
	raw      rawState // the one Raw call, guarded by mu
	rawSem   chan struct{}
	rawCh    chan result
	sendq    chan *outMsg
	waker    *zsock.Waker
	conns    []*conn // one per broker; the loop owns their sockets
	active   int     // index in conns that requests go to
	quit     chan struct{}
	loopDone chan struct{}
	once     sync.Once

	stats struct {
		calls, errors, late, malformed atomic.Uint64
	}
}

// conn is the connection to one broker.
type conn struct {
	endpoint string
	sock     *zsock.Socket
}

// Stats is a snapshot of a Client's counters.
type Stats struct {
	Calls     uint64 // requests sent: calls, streams and raw calls
	Errors    uint64 // calls and streams that ended in an error, remote or local
	Late      uint64 // replies that matched no waiting call (its caller had given up)
	Malformed uint64 // messages from the broker dropped as malformed or over the limits
	InFlight  int    // calls and streams waiting for replies now
}

// New creates a Client connected to the broker and starts its loop. It does
// not block on the network: the connection is made in the background and
// requests made before it is up wait in ZeroMQ's queue. Close releases it.
func New(opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("client: request id prefix: %w", err)
	}
	c := &Client{
		opts:     o,
		prefix:   hex.EncodeToString(rnd[:]) + "-",
		pending:  make(map[uint64]*call),
		rawSem:   make(chan struct{}, 1),
		rawCh:    make(chan result, 1),
		sendq:    make(chan *outMsg, sendQueueSize),
		quit:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	w, err := zsock.NewWaker()
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c.waker = w
	// One connection for now: the first endpoint. Failover will open one
	// conn per endpoint here and move c.active between them.
	cn, err := c.dial(o.endpoints[0])
	if err != nil {
		w.Close()
		return nil, err
	}
	c.conns = []*conn{cn}
	go c.loop()
	return c, nil
}

func (c *Client) dial(endpoint string) (*conn, error) {
	s, err := zsock.New(zsock.Dealer)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	so := zsock.Options{ReconnectIvl: 100 * time.Millisecond, ReconnectIvlMax: 5 * time.Second}
	// libzmq drops the connection on a frame above this size; smaller
	// violations of the limits are counted and dropped by handle.
	if l := max(c.opts.limits.MaxFrameSize, c.opts.limits.MaxMessageSize); l > 0 {
		so.MaxMessageSize = int64(l)
	}
	if err := s.Apply(so); err != nil {
		s.Close()
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := s.Connect(endpoint); err != nil {
		s.Close()
		return nil, fmt.Errorf("client: %w", err)
	}
	return &conn{endpoint: endpoint, sock: s}, nil
}

// Close fails every pending call, stream and raw call with domo.ErrClosed,
// stops the loop and closes the socket. It blocks until the loop has
// stopped, is safe for concurrent use and idempotent; it always returns nil.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		for id, cl := range c.pending {
			if cl.stream != nil {
				c.finishLocked(cl.stream, domo.ErrClosed)
				continue
			}
			delete(c.pending, id)
			cl.ch <- result{err: domo.ErrClosed}
		}
		c.raw.closeLocked(c)
		c.mu.Unlock()

		close(c.quit)
		c.waker.Wake()
		<-c.loopDone
		for _, cn := range c.conns {
			cn.sock.Close()
		}
		c.waker.Close()
	})
	return nil
}

// Stats returns a snapshot of the client's counters. It does not block on
// the loop and is safe for concurrent use.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	n := len(c.pending)
	c.mu.Unlock()
	return Stats{
		Calls:     c.stats.calls.Load(),
		Errors:    c.stats.errors.Load(),
		Late:      c.stats.late.Load(),
		Malformed: c.stats.malformed.Load(),
		InFlight:  n,
	}
}

// enqueue hands om to the loop. It waits, on ctx, the WithTimeout timer and
// Close, only when the send queue is full.
func (c *Client) enqueue(ctx context.Context, timer <-chan time.Time, om *outMsg) error {
	select {
	case c.sendq <- om:
	default:
		select {
		case c.sendq <- om:
		case <-ctx.Done():
			return ctxErr(ctx.Err())
		case <-timer:
			return errDeadline
		case <-c.quit:
			return domo.ErrClosed
		}
	}
	c.waker.Wake()
	return nil
}

// loop owns the sockets: it sends what callers queue and routes replies to
// them. It is the only goroutine that touches a zsock.Socket of c.
func (c *Client) loop() {
	defer close(c.loopDone)
	socks := []*zsock.Socket{c.waker.Socket()}
	for _, cn := range c.conns {
		socks = append(socks, cn.sock)
	}
	poller := zsock.NewPoller(socks...)
	defer poller.Close()
	var held *outMsg // a request the socket had no room for
	var rbuf [][]byte
	for {
		timeout := time.Duration(-1)
		if held != nil {
			timeout = time.Millisecond // retry the send soon
		}
		ready, err := poller.Wait(timeout)
		if err != nil {
			select {
			case <-c.quit:
				return
			default:
			}
			c.opts.logger.Warn("client: poll failed", "err", err)
			time.Sleep(10 * time.Millisecond) // never spin on a persistent failure
			continue
		}
		if ready[0] {
			c.waker.Drain()
		}
		select {
		case <-c.quit:
			return
		default:
		}
		held = c.flush(held)
		for i, cn := range c.conns {
			if ready[i+1] {
				rbuf = c.drain(cn, rbuf)
			}
		}
	}
}

// flush sends held, then everything queued, until the socket would block.
// It returns the message that could not be sent yet, if any.
func (c *Client) flush(held *outMsg) *outMsg {
	if held != nil && !c.send(held) {
		return held
	}
	for {
		select {
		case om := <-c.sendq:
			if !c.send(om) {
				return om
			}
		default:
			return nil
		}
	}
}

// send sends om without blocking. It returns false if the socket has no
// room; on any other outcome om is finished with.
func (c *Client) send(om *outMsg) bool {
	cn := c.conns[c.active]
	err := cn.sock.Send(om.frames, false)
	if errors.Is(err, zsock.ErrAgain) {
		return false
	}
	if err != nil {
		c.opts.logger.Warn("client: send failed", "broker", cn.endpoint, "err", err)
		c.failSend(om, domo.Errorf(domo.CodeUnavailable, "send to %s: %v", cn.endpoint, err))
	}
	om.release()
	return true
}

// drain receives until the socket is empty and handles each message.
func (c *Client) drain(cn *conn, rbuf [][]byte) [][]byte {
	for {
		var err error
		rbuf, err = cn.sock.Recv(rbuf, false)
		if errors.Is(err, zsock.ErrAgain) {
			return rbuf
		}
		if err != nil {
			// Only a closing socket fails mid-message; poll again.
			c.malformed("recv failed", err)
			clear(rbuf)
			return rbuf
		}
		c.handle(rbuf)
		clear(rbuf) // drop references to the frames, now owned by callers
	}
}

func (c *Client) malformed(what string, err error) {
	c.stats.malformed.Add(1)
	c.opts.logger.Debug("client: dropped message from broker", "reason", what, "err", err)
}

func (c *Client) late(what string) {
	c.stats.late.Add(1)
	c.opts.logger.Debug("client: dropped reply", "reason", what)
}

// handle routes one message from the broker. Frames from the network are
// untrusted: anything unexpected is counted and dropped.
func (c *Client) handle(frames [][]byte) {
	if err := c.opts.limits.Check(frames); err != nil {
		c.malformed("over limits", err)
		return
	}
	msg, err := mdp.Parse(frames)
	if err != nil {
		c.malformed("parse", err)
		return
	}
	if msg.Role != mdp.Client {
		c.malformed("not a client message", nil)
		return
	}
	final := true
	switch {
	case msg.Version == 1 && msg.Command == mdp.Request: // MDPC01 reply
	case msg.Version == 2 && msg.Command == mdp.Final:
	case msg.Version == 2 && msg.Command == mdp.Partial:
		final = false
	default:
		c.malformed("unexpected command", fmt.Errorf("%s in MDP/0.%d", msg.Command, msg.Version))
		return
	}
	rep, err := mdp.ParseReply(msg.Body)
	if err != nil {
		if msg.Version == 1 && !mdp.IsEnvelope(msg.Body) {
			// A plain MDP reply, for a Raw call. Its frames are fresh from
			// the socket; only the slice holding them is reused.
			body := append([][]byte(nil), msg.Body...)
			c.deliverRaw(msg.Service, result{frames: body})
			return
		}
		c.malformed("reply envelope", err)
		return
	}
	idv, ok := rep.Headers.Get(mdp.HeaderID)
	if !ok {
		// No id: the broker answering a request that carried none, which
		// only a Raw call sends (unknown service, overloaded, ...).
		if !rep.OK() && final {
			c.deliverRaw(msg.Service, result{err: rep.Err()})
			return
		}
		c.late("reply without an id")
		return
	}
	id, ok := c.parseID(idv)
	if !ok {
		c.late("reply with a foreign id")
		return
	}
	c.deliver(id, final, &rep)
}

// deliver completes the call or feeds the stream with request id id.
func (c *Client) deliver(id uint64, final bool, rep *mdp.ReplyBody) {
	var r result
	if rep.OK() {
		r.payload = rep.Payload
	} else {
		r.err = rep.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.pending[id]
	if cl == nil {
		c.late("no pending call")
		return
	}
	if s := cl.stream; s != nil {
		c.feedLocked(s, final, r)
		return
	}
	if !final {
		// A PARTIAL for a plain call: the broker should not send one.
		c.late("partial reply to a call")
		return
	}
	delete(c.pending, id)
	cl.ch <- r // never blocks: one slot, one delivery
}

// failSend fails the call that om belonged to after a send error.
func (c *Client) failSend(om *outMsg, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if om.raw {
		c.raw.deliverLocked(c, om.service, result{err: err})
		return
	}
	cl := c.pending[om.id]
	if cl == nil {
		return
	}
	if cl.stream != nil {
		c.finishLocked(cl.stream, err)
		return
	}
	delete(c.pending, om.id)
	cl.ch <- result{err: err}
}

// appendID appends the wire form of request id n: the client's prefix and
// n in base 36.
func (c *Client) appendID(dst []byte, n uint64) []byte {
	dst = append(dst, c.prefix...)
	return appendBase36(dst, n)
}

// parseID returns the request number of an id this client made.
func (c *Client) parseID(v []byte) (uint64, bool) {
	if len(v) <= len(c.prefix) || len(v) > len(c.prefix)+13 || string(v[:len(c.prefix)]) != c.prefix {
		return 0, false
	}
	var n uint64
	for _, ch := range v[len(c.prefix):] {
		var d byte
		switch {
		case ch >= '0' && ch <= '9':
			d = ch - '0'
		case ch >= 'a' && ch <= 'z':
			d = ch - 'a' + 10
		default:
			return 0, false
		}
		if n > (1<<64-1-uint64(d))/36 {
			return 0, false
		}
		n = n*36 + uint64(d)
	}
	return n, true
}

func appendBase36(dst []byte, n uint64) []byte {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var buf [13]byte
	i := len(buf)
	for {
		i--
		buf[i] = digits[n%36]
		n /= 36
		if n == 0 {
			break
		}
	}
	return append(dst, buf[i:]...)
}
