package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// Client calls methods through one or more brokers. It keeps one
// connection per broker, all owned by one goroutine, and carries any number
// of calls in flight at once over them, spread over the brokers that are
// alive. All methods are safe for concurrent use.
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
	conns    []*conn  // one per broker; the loop owns them and changes the slice under mu
	want     []string // endpoints SetBrokers asked for, until the loop applies them
	wantSet  bool
	quit     chan struct{}
	loopDone chan struct{}
	once     sync.Once

	watchCancel context.CancelFunc // stops WithDiscovery's goroutine
	watchDone   chan struct{}

	// Owned by the loop.
	poller   *zsock.Poller
	polled   []*conn     // the conns of poller, in its order after the waker
	backlog  []sendItem  // requests no broker could take yet, in order
	batching []*conn     // conns with a batch being built in this flush
	sub      [][]byte    // reused: one message of a batch received
	redo     []sendItem  // requests of batches that could not be sent
	retries  []retryItem // Retry calls to send again, each not before its time
	rr       int         // where pick starts, for round-robin among equals
	now      time.Time   // when the loop last woke
	rbuf     [][]byte    // reused: the frames of one message received
	blocked  bool        // the backlog is waiting for a broker with room
	// stalePoller: the set of brokers changed, and the loop must rebuild
	// its poller (outside the poller's Serve).
	stalePoller bool

	stats struct {
		calls, errors, late, malformed, retries, failovers atomic.Uint64
		batchesOut, batchedIn                              atomic.Uint64
		turns                                              atomic.Uint64 // the loop's (for tests)
	}
}

// Stats is a snapshot of a Client's counters.
type Stats struct {
	Calls      uint64 // requests sent: calls, streams and raw calls (a retried call counts once)
	Errors     uint64 // calls and streams that ended in an error, remote or local
	Late       uint64 // replies that matched no waiting call (its caller had given up, or another attempt answered first)
	Malformed  uint64 // messages from a broker dropped as malformed or over the limits
	Retries    uint64 // requests sent again (Retry calls), after their broker died, was removed or answered "unavailable"
	Failovers  uint64 // Retry calls moved off a broker that died or was removed
	BatchesOut uint64 // batches of requests sent (to brokers that take them)
	BatchedIn  uint64 // replies received inside batches
	InFlight   int    // calls and streams waiting for replies now
	Brokers    []BrokerStats
}

// BrokerStats is the state of the connection to one broker.
type BrokerStats struct {
	Endpoint string
	Alive    bool // heard from within the liveness period: it gets calls
	InFlight int  // calls and streams sent to it and not answered
}

// New creates a Client and starts its loop. It does not block on the
// network: connections are made in the background. A broker gets calls
// once it has answered (its first answer to a probe proves it alive); until
// some broker is alive, calls wait for one, within their deadlines. With
// WithDiscovery, New also starts the goroutine that follows the source.
// Close releases the client.
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
	endpoints := o.endpoints
	if o.discovery != nil && !o.explicit {
		endpoints = nil // the source's first report says where the brokers are
	}
	for _, ep := range endpoints {
		cn, err := c.dial(ep)
		if err != nil {
			for _, cn := range c.conns {
				cn.sock.Close()
			}
			w.Close()
			return nil, err
		}
		c.conns = append(c.conns, cn)
	}
	go c.loop()
	if o.discovery != nil {
		ctx, cancel := context.WithCancel(context.Background())
		c.watchCancel, c.watchDone = cancel, make(chan struct{})
		go c.watch(ctx)
	}
	return c, nil
}

// SetBrokers makes endpoints the set of brokers the client uses: it
// connects to the new ones and closes the connections to those not in the
// set, whose calls in flight fail with domo.ErrUnavailable or, if made with
// Retry, are sent again to another broker, as for a dead broker. An empty
// set leaves the client with no broker: calls wait, within their deadlines,
// for a later SetBrokers. An endpoint that cannot be connected to (a
// malformed one) is logged and skipped. SetBrokers does not block on the
// network, is safe for concurrent use, and does nothing after Close.
func (c *Client) SetBrokers(endpoints []string) {
	eps := dedupe(endpoints)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.want, c.wantSet = eps, true
	c.mu.Unlock()
	c.waker.Wake()
}

// watch follows WithDiscovery's source until Close.
func (c *Client) watch(ctx context.Context) {
	defer close(c.watchDone)
	for {
		err := c.opts.discovery.Watch(ctx, c.SetBrokers)
		if ctx.Err() != nil {
			return
		}
		c.opts.logger.Warn("client: discovery failed; trying again in a second", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func dedupe(endpoints []string) []string {
	out := make([]string, 0, len(endpoints))
	for _, ep := range endpoints {
		if ep != "" && !slices.Contains(out, ep) {
			out = append(out, ep)
		}
	}
	return out
}

// Close stops following WithDiscovery's source, fails every pending call,
// stream and raw call with domo.ErrClosed, stops the loop and closes the
// sockets. It blocks until the loop has stopped, is safe for concurrent use
// and idempotent; it always returns nil.
func (c *Client) Close() error {
	c.once.Do(func() {
		if c.watchCancel != nil {
			c.watchCancel()
			<-c.watchDone
		}
		c.mu.Lock()
		c.closed = true
		for id, cl := range c.pending {
			if cl.stream != nil {
				c.finishLocked(cl.stream, domo.ErrClosed)
				continue
			}
			c.dropLocked(id, cl)
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
	brokers := make([]BrokerStats, len(c.conns))
	for i, cn := range c.conns {
		brokers[i] = BrokerStats{Endpoint: cn.endpoint, Alive: cn.alive.Load(), InFlight: int(cn.inflight.Load())}
	}
	c.mu.Unlock()
	return Stats{
		Calls:      c.stats.calls.Load(),
		Errors:     c.stats.errors.Load(),
		Late:       c.stats.late.Load(),
		Malformed:  c.stats.malformed.Load(),
		Retries:    c.stats.retries.Load(),
		Failovers:  c.stats.failovers.Load(),
		BatchesOut: c.stats.batchesOut.Load(),
		BatchedIn:  c.stats.batchedIn.Load(),
		InFlight:   n,
		Brokers:    brokers,
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

// loop owns the sockets: it sends what callers queue to the brokers that
// are alive, routes replies to their callers, probes silent brokers and
// moves calls off dead ones. It is the only goroutine that touches a
// zsock.Socket of c.
func (c *Client) loop() {
	defer close(c.loopDone)
	c.rebuildPoller()
	defer func() { c.poller.Close() }()
	for {
		err := c.poller.Serve(c.turn)
		select {
		case <-c.quit:
			return
		default:
		}
		if err != nil {
			c.opts.logger.Warn("client: poll failed", "err", err)
			time.Sleep(10 * time.Millisecond) // never spin on a persistent failure
			continue
		}
		if c.stalePoller {
			c.rebuildPoller()
		}
	}
}

// turn is one turn of the loop (run by the poller's Serve): it reads the
// replies that came, then sends what callers queued, and returns how long
// the loop may wait for the next, or stop when the loop must leave Serve
// (Close, or a poller to rebuild for a changed set of brokers).
func (c *Client) turn(ready []bool) (time.Duration, bool) {
	c.stats.turns.Add(1)
	received := false
	for i, cn := range c.polled {
		if ready[i+1] {
			c.rbuf = c.drain(cn, c.rbuf)
			received = true
		}
	}
	if received {
		// Let the callers just answered run first: many call again at
		// once, and their requests then leave in this turn's batch
		// rather than each waking the loop for one of its own.
		runtime.Gosched()
	}
	// Drained here, just before the work it signals is looked at (a
	// Close, the brokers set, the requests queued): a Wake from a
	// caller that ran in the yield above is for work this turn takes,
	// not a reason for another turn.
	c.waker.Drain()
	select {
	case <-c.quit:
		return 0, true
	default:
	}
	if c.applyBrokers(); c.stalePoller {
		return 0, true // rebuilt outside Serve; its first turn sends what is queued
	}
	now := time.Now()
	c.now = now
	c.tick(now)
	c.dueRetries(now)
	c.blocked = c.flush()
	return c.timeout(now, c.blocked), false
}

// timeout is how long the loop may wait: until the next probe, liveness
// check or retry, or a millisecond when requests wait for room on a broker
// that is alive.
func (c *Client) timeout(now time.Time, blocked bool) time.Duration {
	if blocked && c.anyAlive() {
		return time.Millisecond
	}
	var next time.Time
	earliest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, cn := range c.conns {
		earliest(c.probeAt(cn))
		if at, ok := c.deadAt(cn); ok {
			earliest(at)
		}
	}
	for _, r := range c.retries {
		earliest(r.at)
	}
	if next.IsZero() {
		return -1
	}
	return max(next.Sub(now), 0)
}

// sendItem is a request on its way to a broker: a new one, or a Retry
// call's next attempt, which prefers a broker other than avoid.
type sendItem struct {
	om    *outMsg
	avoid *conn
}

// flush sends the backlog, then everything queued, until no broker can
// take the next request. It reports whether requests are left waiting.
func (c *Client) flush() bool {
	for _, cn := range c.conns {
		cn.full = false
	}
	for {
		blocked := c.dispatchAll()
		c.sendBatches()
		if len(c.redo) == 0 {
			return blocked
		}
		// Requests of batches that could not be sent go to another broker,
		// or wait in the backlog, first.
		c.backlog = append(c.redo, c.backlog...)
		c.redo = nil
		if blocked {
			return true
		}
	}
}

// dispatchAll dispatches the backlog, then everything queued. It reports
// whether a request found no broker with room (it waits in the backlog).
func (c *Client) dispatchAll() bool {
	for len(c.backlog) > 0 {
		if !c.dispatch(c.backlog[0]) {
			return true
		}
		c.backlog[0] = sendItem{}
		c.backlog = c.backlog[1:]
	}
	c.backlog = nil
	for {
		select {
		case om := <-c.sendq:
			it := sendItem{om: om}
			if !c.dispatch(it) {
				c.backlog = append(c.backlog, it)
				return true
			}
		default:
			return false
		}
	}
}

// dispatch sends it to the best broker that is alive and has room, or adds
// it to that broker's batch. It returns false, keeping it, if there is
// none; on any other outcome the request is finished with (sent or
// batched, or its call failed or gone).
func (c *Client) dispatch(it sendItem) bool {
	for {
		cn := c.pick(it.avoid)
		if cn == nil {
			return false
		}
		q, gone := c.assign(it, cn)
		if gone {
			return true
		}
		// A Raw call goes alone: the broker answers a request from a
		// batch in a batch at the end of its turn, after answers to plain
		// requests sent later, and plain mmi.service answers are matched
		// to their requests by order (conn.mmiSent).
		if cn.batches && !it.om.raw {
			if cn.batch.Len() > 0 && !cn.batch.Add(it.om.frames) {
				c.sendBatch(cn) // full: send it, then start the next
				if cn.full {
					c.sent(q, zsock.ErrAgain) // unassign it: try another broker
					continue
				}
			}
			if cn.batch.Len() == 0 {
				cn.batch.Add(it.om.frames)
				c.batching = append(c.batching, cn)
			}
			cn.queued = append(cn.queued, q)
			return true
		}
		if c.sent(q, cn.sock.Send(it.om.frames, false)) {
			return true
		}
	}
}

// queuedSend is a request assigned to a broker, waiting for its send's
// outcome.
type queuedSend struct {
	it   sendItem
	cn   *conn
	cl   *call // nil for a Raw call
	keep bool  // a Retry call: the request is kept for a re-send
}

// assign records that it goes to cn, before it can be answered. gone
// reports a call whose caller has given up (it is released).
func (c *Client) assign(it sendItem, cn *conn) (q queuedSend, gone bool) {
	om := it.om
	q = queuedSend{it: it, cn: cn}
	c.mu.Lock()
	defer c.mu.Unlock()
	if om.raw {
		if c.raw.phase != rawIdle {
			c.raw.cn = cn
		}
		if string(om.service) == mdp.MMIService {
			cn.mmiSent = append(cn.mmiSent, mmiRequest{at: c.now}) // its answer is not a probe's
		}
		return q, false
	}
	q.cl = c.pending[om.id]
	if q.cl == nil { // its caller gave up
		om.release()
		return q, true
	}
	q.cl.cn = cn
	cn.inflight.Add(1)
	q.keep = q.cl.retry
	return q, false
}

// sent settles q after its send returned err. It reports false when the
// broker had no room (or no connection): the request is unassigned, the
// broker marked full, and the caller must send it elsewhere.
func (c *Client) sent(q queuedSend, err error) bool {
	om, cn, cl := q.it.om, q.cn, q.cl
	if err == nil {
		cn.sent(c.now)
		if q.keep {
			c.mu.Lock()
			if c.pending[om.id] == cl && cl.om == nil {
				cl.om, om = om, nil // kept for a re-send
			}
			c.mu.Unlock()
		}
		if om != nil {
			om.release()
		}
		return true
	}
	c.mu.Lock()
	if cl != nil && c.pending[om.id] == cl && cl.cn == cn {
		cl.cn = nil
		cn.inflight.Add(-1)
	}
	if om.raw && c.raw.cn == cn {
		c.raw.cn = nil
	}
	if om.raw && string(om.service) == mdp.MMIService {
		cn.unsentRawMMI()
	}
	c.mu.Unlock()
	if errors.Is(err, zsock.ErrAgain) {
		// No room, or (ZMQ_IMMEDIATE) no connection: try another.
		cn.full = true
		return false
	}
	c.opts.logger.Warn("client: send failed", "broker", cn.endpoint, "err", err)
	c.failSend(om, domo.Errorf(domo.CodeUnavailable, "send to %s: %v", cn.endpoint, err))
	om.release()
	return true
}

// sendBatches sends every batch built during this flush.
func (c *Client) sendBatches() {
	for _, cn := range c.batching {
		c.sendBatch(cn)
	}
	clear(c.batching)
	c.batching = c.batching[:0]
}

// sendBatch sends cn's batch (a lone request as itself) and settles its
// requests; those it could not send go to c.redo.
func (c *Client) sendBatch(cn *conn) {
	if cn.batch.Len() == 0 {
		return
	}
	n := cn.batch.Len()
	err := cn.sock.Send(cn.batch.Take(), false)
	if err == nil && n > 1 {
		c.stats.batchesOut.Add(1)
	}
	for _, q := range cn.queued {
		if !c.sent(q, err) {
			c.redo = append(c.redo, q.it)
		}
	}
	clear(cn.queued)
	cn.queued = cn.queued[:0]
}

// drain receives until cn's socket is empty and handles each message. Any
// message, even a malformed one, proves the broker alive.
func (c *Client) drain(cn *conn, rbuf [][]byte) [][]byte {
	heard := false
	defer func() {
		if heard {
			c.heard(cn, time.Now())
		}
	}()
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
		heard = true
		if mdp.IsBatch(rbuf) {
			c.handleBatch(cn, rbuf[1:])
		} else {
			c.handle(cn, rbuf)
		}
		clear(rbuf) // drop references to the frames, now owned by callers
	}
}

// handleBatch handles each message of a batch as if it had come alone.
func (c *Client) handleBatch(cn *conn, packed [][]byte) {
	for _, p := range packed {
		sub, err := c.opts.limits.UnpackMessage(c.sub[:0], p)
		c.sub = sub
		if err != nil {
			c.malformed("batch", err)
			continue
		}
		c.stats.batchedIn.Add(1)
		c.handle(cn, sub)
	}
	clear(c.sub)
}

func (c *Client) malformed(what string, err error) {
	c.stats.malformed.Add(1)
	c.opts.logger.Debug("client: dropped message from broker", "reason", what, "err", err)
}

func (c *Client) late(what string) {
	c.stats.late.Add(1)
	c.opts.logger.Debug("client: dropped reply", "reason", what)
}

// handle routes one message from broker cn. Frames from the network are
// untrusted: anything unexpected is counted and dropped.
func (c *Client) handle(cn *conn, frames [][]byte) {
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
	if len(cn.mmiSent) > 0 && msg.Version == 1 && string(msg.Service) == mdp.MMIService && !mdp.IsEnvelope(msg.Body) {
		if cn.answeredMMI() { // the answer to a probe: it has done its work
			cn.batches = len(msg.Body) == 1 && string(msg.Body[0]) == mdp.MMIFound
			return
		}
		// Else the answer to a Raw call, delivered below.
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
			if string(msg.Service) == mdp.MMIService && len(cn.mmiSent) > 0 && !cn.mmiSent[0].probe {
				cn.answeredMMI() // a Raw mmi.service call the broker refused
			}
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
	c.deliver(cn, id, final, &rep)
}

// deliver completes the call or feeds the stream with request id id, from
// broker cn. The first final reply completes a call; a Retry call answered
// "unavailable" by the broker it was last sent to is sent again instead,
// while its deadline allows.
func (c *Client) deliver(cn *conn, id uint64, final bool, rep *mdp.ReplyBody) {
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
	if r.err != nil && cl.retry && errors.Is(r.err, domo.ErrUnavailable) {
		if cl.cn != cn {
			// From an attempt the call has moved on from: the newer one
			// will answer.
			c.late("unavailable from an earlier attempt")
			return
		}
		if c.retryLocked(id, cl, cn, time.Now()) {
			return
		}
	}
	c.dropLocked(id, cl)
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
	c.dropLocked(om.id, cl)
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
