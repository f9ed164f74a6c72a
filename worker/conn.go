package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// readyRetry is how often the loop retries READY while the connection to the
// broker is not yet established (with ZMQ_IMMEDIATE a send fails until then).
const readyRetry = 10 * time.Millisecond

// conn is the worker's link to one broker. Its loop goroutine owns the
// DEALER socket (replaced by a new one on every reconnect) and every field
// marked loop-owned; other goroutines reach it through out and the waker.
type conn struct {
	w        *Worker
	endpoint string
	jobs     chan<- *job // the worker's handler pool
	waker    *zsock.Waker
	out      chan outMsg   // replies and partials from the pool, in order per request
	done     chan struct{} // closed when the loop has stopped
	stop     chan struct{} // closed when the worker leaves this broker
	stopOnce sync.Once
	epoch    atomic.Uint64 // the current socket's generation; 0 while there is none

	// loop-owned
	sock      *zsock.Socket
	poller    *zsock.Poller // over sock and the waker
	idle      *zsock.Poller // over the waker alone, while there is no socket
	gen       uint64
	inflight  int // jobs handed to the pool whose final reply has not come back
	draining  bool
	readySent bool
	heard     bool // the broker has sent something on this socket
	lastSend  time.Time
	lastRecv  time.Time
	backoff   time.Duration
	buf       [][]byte
	sub       [][]byte  // one message of a batch received
	batches   bool      // the broker sent a batch on this socket: it takes them too
	pack      mdp.Batch // replies gathered by takeOut
}

// outMsg is a message for the loop to send: a partial (final false) or the
// final reply of a job (final true; frames nil when there is nothing to send).
type outMsg struct {
	epoch  uint64
	frames [][]byte
	final  bool
}

// job is one request handed from the loop to the pool.
type job struct {
	c       *conn
	epoch   uint64
	version mdp.Version
	address []byte
	body    [][]byte

	// Room for the request's frames and the final reply's parts (its
	// headers, body frames, MDP frames), so that a request with a small
	// id costs one allocation here rather than five. A job is never reused.
	bodyRoom  [4][]byte
	hdrRoom   [48]byte
	replyBody [3][]byte
	replyRoom [8][]byte
}

func newConn(w *Worker, endpoint string, jobs chan<- *job) (*conn, error) {
	wk, err := zsock.NewWaker()
	if err != nil {
		return nil, fmt.Errorf("broker %s: %w", endpoint, err)
	}
	return &conn{
		w:        w,
		endpoint: endpoint,
		jobs:     jobs,
		waker:    wk,
		out:      make(chan outMsg, 4*w.opts.concurrency+16),
		done:     make(chan struct{}),
		stop:     make(chan struct{}),
		idle:     zsock.NewPoller(wk.Socket()),
		backoff:  w.opts.reconnectMin,
	}, nil
}

// deliver hands m to the loop. It blocks while the queue is full, until ctx
// ends or the loop stops. It is safe for concurrent use.
func (c *conn) deliver(ctx context.Context, m outMsg) error {
	select {
	case c.out <- m:
		c.waker.Wake()
		return nil
	case <-c.done:
	case <-ctx.Done():
		if !m.final {
			return ctx.Err()
		}
		// A final reply is never abandoned while the loop runs: the loop
		// counts it to know when the request is over.
		select {
		case c.out <- m:
			c.waker.Wake()
			return nil
		case <-c.done:
		}
	}
	if m.frames != nil {
		c.w.stats.dropped.Add(1)
	}
	return domo.ErrClosed
}

// frames returns the MDP message carrying body as cmd (Partial or the final
// reply, Reply or Final by version) for j.
func (j *job) frames(cmd mdp.Command, body [][]byte) [][]byte {
	return j.appendFrames(make([][]byte, 0, 5+len(body)), cmd, body)
}

// finalFrames is frames for j's final reply, in j's own room (a partial
// reply must not use it: the loop may still hold the last one).
func (j *job) finalFrames(body [][]byte) [][]byte {
	return j.appendFrames(j.replyRoom[:0], mdp.Reply, body)
}

func (j *job) appendFrames(dst [][]byte, cmd mdp.Command, body [][]byte) [][]byte {
	if cmd != mdp.Partial && j.version == 2 {
		cmd = mdp.Final
	}
	m := mdp.Message{Role: mdp.Worker, Version: j.version, Command: cmd, Address: j.address, Body: body}
	f, err := m.Append(dst)
	if err != nil { // cannot happen: versions 1 and 2 only reach here
		return nil
	}
	return f
}

// step is what the serving loop asks its caller to do next.
type step int

const (
	stepContinue step = iota
	stepReconnect
	stepStop
)

// loop connects, serves and reconnects until the worker stops.
func (c *conn) loop(ctx context.Context) {
	defer close(c.done)
	defer c.idle.Close()
	defer c.closeSocket()
	log := c.w.log.With("broker", c.endpoint)
	for first := true; ; first = false {
		if !first {
			c.w.stats.reconnects.Add(1)
			if !c.wait(ctx) {
				return
			}
		}
		if err := c.open(); err != nil {
			log.Error("worker: cannot open a connection", "err", err)
			c.grow()
			continue
		}
		log.Debug("worker: connecting", "credit", c.w.opts.concurrency)
		if c.serve(ctx) == stepStop {
			return
		}
		c.closeSocket()
	}
}

// stopNow reports whether the loop must stop at once, and notices a
// Shutdown.
func (c *conn) stopNow(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	select {
	case <-c.w.quit:
		return true
	case <-c.stop:
		return true
	default:
	}
	if !c.draining {
		select {
		case <-c.w.drain:
			c.draining = true
		default:
		}
	}
	return false
}

// wait sleeps for the backoff delay while no socket is open, still taking
// back replies from the pool (and dropping them). It reports false if the
// worker stopped meanwhile.
func (c *conn) wait(ctx context.Context) bool {
	d := c.backoff/2 + rand.N(c.backoff/2+1)
	c.grow()
	until := time.Now().Add(d)
	for {
		if c.stopNow(ctx) || c.draining && c.inflight == 0 {
			return false
		}
		left := time.Until(until)
		if left <= 0 {
			return true
		}
		ready, err := c.idle.Wait(left)
		if err != nil {
			c.w.log.Error("worker: poll", "err", err)
			return false
		}
		if ready[0] {
			c.waker.Drain()
		}
		c.takeOut()
	}
}

func (c *conn) grow() {
	c.backoff = min(2*c.backoff, c.w.opts.reconnectMax)
}

// open creates a new socket and connects it; READY is sent by serve.
func (c *conn) open() error {
	o := zsock.Options{MaxMessageSize: int64(c.w.opts.limits.MaxMessageSize), Immediate: true}
	s, err := zsock.NewDealer(o, !c.w.opts.libzmq)
	if err != nil {
		return err
	}
	if err := s.Connect(c.endpoint); err != nil {
		s.Close()
		return err
	}
	c.sock = s
	c.poller = zsock.NewPoller(s, c.waker.Socket()).Eager() // receive drains the socket
	c.gen++
	c.epoch.Store(c.gen)
	now := time.Now()
	c.readySent, c.heard, c.batches = false, false, false
	c.lastSend, c.lastRecv = now, now
	return nil
}

func (c *conn) closeSocket() {
	if c.sock == nil {
		return
	}
	c.epoch.Store(0)
	c.poller.Close()
	c.sock.Close()
	c.sock, c.poller = nil, nil
}

// serve runs the connected loop on the open socket: its turns, run by the
// poller's Serve, take the replies the pool queued, hand out the requests
// received, and keep READY and heartbeats going.
func (c *conn) serve(ctx context.Context) step {
	log := c.w.log.With("broker", c.endpoint)
	interval := c.w.opts.heartbeat
	expiry := interval * time.Duration(c.w.opts.liveness)
	result := stepContinue
	turn := func(ready []bool) (time.Duration, bool) {
		if ready[1] {
			c.waker.Drain()
		}
		// A stop comes before sending what the stop made handlers return.
		if !ready[1] || !c.stopNow(ctx) {
			c.takeOut()
			if ready[0] {
				handed := c.inflight
				if c.receive() == stepReconnect {
					result = stepReconnect
					return 0, true
				}
				if c.inflight > handed {
					// Let the handlers just given work run first: quick ones
					// answer at once, and their replies then leave in one
					// batch rather than each waking the loop for its own.
					runtime.Gosched()
					// Their Wakes came before this take: clear them, or the
					// loop turns again for replies already taken.
					c.waker.Drain()
					c.takeOut()
				}
			}
		}
		if c.stopNow(ctx) || c.draining && c.inflight == 0 {
			c.disconnect()
			result = stepStop
			return 0, true
		}
		now := time.Now()
		if now.Sub(c.lastRecv) >= expiry {
			log.Warn("worker: broker silent; reconnecting", "silence", now.Sub(c.lastRecv).Round(time.Millisecond))
			result = stepReconnect
			return 0, true
		}
		if !c.readySent {
			if c.send(c.w.ready) == nil {
				c.readySent = true
			}
		} else if now.Sub(c.lastSend) >= interval {
			c.send(heartbeatFrames)
		}
		next := c.lastRecv.Add(expiry)
		if c.readySent {
			next = earliest(next, c.lastSend.Add(interval))
		} else {
			next = earliest(next, now.Add(readyRetry))
		}
		return max(next.Sub(now), 0), false
	}
	if err := c.poller.Serve(turn); err != nil {
		log.Error("worker: poll", "err", err)
		return stepReconnect
	}
	return result
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

var (
	heartbeatFrames  = mustFrames(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Heartbeat})
	disconnectFrames = mustFrames(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Disconnect})
)

func mustFrames(m mdp.Message) [][]byte {
	f, err := m.Append(nil)
	if err != nil {
		panic(err)
	}
	return f
}

// send sends frames without blocking; with ZMQ_IMMEDIATE it fails with
// zsock.ErrAgain while the broker is not connected.
func (c *conn) send(frames [][]byte) error {
	if err := c.sock.Send(frames, false); err != nil {
		return err
	}
	c.lastSend = time.Now()
	return nil
}

// disconnect says DISCONNECT if READY was said.
func (c *conn) disconnect() {
	if c.sock != nil && c.readySent {
		if err := c.send(disconnectFrames); err != nil {
			c.w.log.Debug("worker: DISCONNECT not sent", "broker", c.endpoint, "err", err)
			return
		}
		// Let it be delivered after the socket is closed: a native socket's
		// Close writes it if the connection has room (it has: it is small);
		// libzmq's would throw it away with linger 0. Either way the broker
		// would otherwise only notice the worker gone when heartbeats lapse.
		_ = c.sock.SetLinger(500 * time.Millisecond)
	}
}

// takeOut sends what the pool queued, dropping what belongs to an older
// socket. To a broker that takes batches, several replies leave as one
// batch.
func (c *conn) takeOut() {
	defer c.flushOut()
	for {
		var m outMsg
		select {
		case m = <-c.out:
		default:
			return
		}
		if m.final {
			c.inflight--
		}
		if m.frames == nil {
			continue
		}
		if c.sock == nil || m.epoch != c.gen {
			c.w.stats.dropped.Add(1)
			continue
		}
		if !c.batches {
			c.sendReply(m.frames, 1)
			continue
		}
		if !c.pack.Add(m.frames) {
			c.flushOut()
			c.pack.Add(m.frames)
		}
	}
}

// flushOut sends the replies gathered in c.pack.
func (c *conn) flushOut() {
	if n := c.pack.Len(); n > 0 {
		c.sendReply(c.pack.Take(), n)
	}
}

func (c *conn) sendReply(frames [][]byte, n int) {
	if err := c.send(frames); err != nil {
		c.w.stats.dropped.Add(uint64(n))
		c.w.log.Warn("worker: reply not sent", "broker", c.endpoint, "replies", n, "err", err)
	}
}

// receive drains the socket without blocking.
func (c *conn) receive() step {
	for {
		frames, err := c.sock.Recv(c.buf, false)
		c.buf = frames
		if errors.Is(err, zsock.ErrAgain) {
			return stepContinue
		}
		if err != nil {
			c.w.log.Error("worker: receive", "broker", c.endpoint, "err", err)
			return stepReconnect
		}
		c.lastRecv = time.Now()
		if !c.heard {
			c.heard = true
			c.backoff = c.w.opts.reconnectMin
		}
		if err := c.w.opts.limits.Check(frames); err != nil {
			c.malformed(err, len(frames))
			continue
		}
		if mdp.IsBatch(frames) {
			c.batches = true
			if c.receiveBatch(frames[1:]) == stepReconnect {
				return stepReconnect
			}
			continue
		}
		if c.handle(frames) == stepReconnect {
			return stepReconnect
		}
	}
}

// receiveBatch handles each message of a batch as if it had come alone.
func (c *conn) receiveBatch(packed [][]byte) step {
	for _, p := range packed {
		sub, err := c.w.opts.limits.UnpackMessage(c.sub[:0], p)
		c.sub = sub
		if err != nil {
			c.malformed(err, len(sub))
			continue
		}
		if c.handle(sub) == stepReconnect {
			return stepReconnect
		}
	}
	clear(c.sub)
	return stepContinue
}

// handle acts on one message from the broker.
func (c *conn) handle(frames [][]byte) step {
	msg, err := mdp.Parse(frames)
	if err == nil && msg.Role != mdp.Worker {
		err = fmt.Errorf("%w: %s message sent to a worker", mdp.ErrMalformed, msg.Role)
	}
	if err != nil {
		c.malformed(err, len(frames))
		return stepContinue
	}
	switch msg.Command {
	case mdp.Request:
		c.dispatch(msg)
	case mdp.Heartbeat:
		c.answerHeartbeat()
	case mdp.Disconnect:
		c.w.log.Info("worker: broker sent DISCONNECT; reconnecting", "broker", c.endpoint)
		return stepReconnect
	default:
		c.malformed(fmt.Errorf("%w: %s sent to a worker", mdp.ErrMalformed, msg.Command), len(frames))
	}
	return stepContinue
}

// answerHeartbeat answers a broker's HEARTBEAT with one at once, unless
// the worker has just sent something (within an eighth of its interval).
// A domo broker heartbeats all its idle workers in one sweep an interval;
// answering in the same breath brings their heartbeats back to it in one
// burst, one wake-up for many, instead of one per worker at whatever phase
// each connected at. The worker's own timer (one interval after its last
// send) is unchanged, so it still sends at least once an interval to a
// broker that sends no heartbeats, and a broker that answers heartbeats with
// heartbeats cannot start a ping-pong: the answer comes within the eighth.
func (c *conn) answerHeartbeat() {
	if c.readySent && time.Since(c.lastSend) >= c.w.opts.heartbeat/8 {
		_ = c.send(heartbeatFrames) // a failure is retried by the timer
	}
}

func (c *conn) malformed(err error, frames int) {
	c.w.stats.malformed.Add(1)
	c.w.log.Warn("worker: dropped a malformed message", "broker", c.endpoint, "frames", frames, "err", err)
}

// newJob is the job of request msg, which came from c's broker.
func newJob(c *conn, msg mdp.Message) *job {
	j := &job{c: c, epoch: c.gen, version: msg.Version, address: msg.Address}
	if len(msg.Body) > 0 { // msg's frames slice is reused; capped, so that a handler's append copies
		j.body = append(j.bodyRoom[:0], msg.Body...)
		j.body = j.body[:len(j.body):len(j.body)]
	}
	return j
}

// dispatch hands a request to the pool, or answers it at once when the worker
// is draining or the pool is full (a broker exceeding the declared credit).
func (c *conn) dispatch(msg mdp.Message) {
	j := newJob(c, msg)
	if c.draining {
		c.reject(j, domo.Errorf(domo.CodeUnavailable, "worker %q is shutting down", c.w.service))
		return
	}
	select {
	case c.jobs <- j:
		c.inflight++
	default:
		c.reject(j, domo.Errorf(domo.CodeOverloaded, "worker %q is handling %d requests, its credit", c.w.service, c.w.opts.concurrency))
	}
}

func (c *conn) reject(j *job, e *domo.Error) {
	c.w.stats.rejected.Add(1)
	var hdr mdp.Headers
	if env, err := mdp.ParseRequest(j.body); err == nil {
		hdr = appendReplyHeaders(j.hdrRoom[:0], env.Headers) // no handler has j: its room is free
	}
	body := mdp.ErrorReply(hdr, e)
	if err := c.send(j.frames(mdp.Reply, body.Append(make([][]byte, 0, 3)))); err != nil {
		c.w.stats.dropped.Add(1)
	}
}

// appendReplyHeaders appends to dst, which must be empty, the headers of
// a reply to a request with headers h: the id, echoed (in a job's room,
// hdrRoom, when it fits; a longer id grows out of it). They are never
// empty: an empty headers frame does not make a domo envelope.
func appendReplyHeaders(dst, h mdp.Headers) mdp.Headers {
	if id, ok := h.Get(mdp.HeaderID); ok {
		return mdp.AppendHeader(dst, mdp.HeaderID, id)
	}
	return append(dst, mdp.HeadersMagic)
}
