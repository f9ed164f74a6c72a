package client

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// conn is the connection to one broker. The loop owns its socket and its
// liveness fields; alive and inflight are also read by Stats and pick.
type conn struct {
	endpoint string
	sock     *zsock.Socket

	// Owned by the loop.
	lastRecv  time.Time // when the broker was last heard from (or the conn was made)
	lastProbe time.Time // the last probe attempt
	misses    int       // probe attempts in a row that could not be sent
	// mmiSent holds the mmi.service requests sent and not answered, oldest
	// first: probes and Raw calls. Their plain answers do not say which
	// request they answer, but a broker answers MMI in the order it
	// receives it, so each answer goes to the oldest. One unanswered for a
	// liveness period was lost (a reconnection drops what was queued):
	// tick forgets it.
	mmiSent   []mmiRequest
	heardOnce bool // the broker has answered at least once
	full      bool // a send found no room during this flush
	// waiting is when the client began to wait for an answer it has not
	// had (a call or a probe sent since the broker was last heard from);
	// zero while it expects none. Silence only counts while waiting: an
	// idle client cannot tell a quiet broker from a dead one, and need not.
	waiting time.Time
	// batches: the broker takes batches (it answered the probe's question
	// about "mmi.batch" with 200); requests sent in one flush then leave
	// as one batch.
	batches bool
	batch   mdp.Batch
	queued  []queuedSend // the requests in batch

	alive    atomic.Bool  // heard from within the liveness period: it gets calls
	inflight atomic.Int32 // calls and streams sent here and not answered; changed under Client.mu
}

// probeFrames is the liveness probe: a plain MDP/0.1 MMI request asking
// whether service "mmi.batch" exists. Any RFC 8 broker answers it ("404",
// or "501" from a broker without MMI), a domo broker that takes batches
// "200"; it costs the broker a map lookup.
var probeFrames = func() [][]byte {
	m := mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte(mdp.MMIService), Body: [][]byte{[]byte(mdp.MMIBatch)}}
	f, err := m.Append(nil)
	if err != nil {
		panic(err) // a constant message
	}
	return f
}()

// dial opens a DEALER to endpoint, native unless WithNativeTransport(false).
// ZMQ_IMMEDIATE makes a send fail with ErrAgain while the connection is not
// up, instead of queueing the request for a broker that may never come back.
func (c *Client) dial(endpoint string) (*conn, error) {
	// ZMTP heartbeats find a dead or hung broker for an idle client, which
	// sends no probes of its own for a long while (idleProbeInterval): the
	// socket closes the silent connection, and ZMQ_IMMEDIATE (which the
	// native dealer always acts as) then steers calls to other brokers.
	// They cost the broker a PONG, written by its loop (native) or its
	// libzmq I/O thread.
	// Every 30 heartbeats (30 s by default): 10,000 idle clients pinging
	// every 3 s cost a broker 12% of a core, every 10 s 9%.
	ping := max(30*c.opts.heartbeat, time.Second)
	so := zsock.Options{
		ReconnectIvl:     100 * time.Millisecond,
		ReconnectIvlMax:  min(max(c.opts.heartbeat, 100*time.Millisecond), 5*time.Second),
		Immediate:        true,
		HeartbeatIvl:     ping,
		HeartbeatTimeout: ping,
	}
	// The socket drops the connection on a frame above this size; smaller
	// violations of the limits are counted and dropped by handle.
	if l := max(c.opts.limits.MaxFrameSize, c.opts.limits.MaxMessageSize); l > 0 {
		so.MaxMessageSize = int64(l)
	}
	s, err := zsock.NewDealer(so, !c.opts.libzmq)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := s.Connect(endpoint); err != nil {
		s.Close()
		return nil, fmt.Errorf("client: %w", err)
	}
	return &conn{endpoint: endpoint, sock: s, lastRecv: time.Now()}, nil
}

// rebuildPoller makes the loop's poller watch the waker and every conn.
func (c *Client) rebuildPoller() {
	if c.poller != nil {
		c.poller.Close()
	}
	socks := []*zsock.Socket{c.waker.Socket()}
	for _, cn := range c.conns {
		socks = append(socks, cn.sock)
	}
	c.polled = append(c.polled[:0:0], c.conns...)
	c.stalePoller = false
	c.poller = zsock.NewPoller(socks...).Eager() // drain reads each ready socket to ErrAgain
}

// pick returns the broker for the next request: one that is alive and had
// room at its last send. It prefers, in order: a broker heard from within
// one and a half intervals (a healthy one answers its probe well within
// that, so a broker past it is probably stalling), one other than avoid,
// the one with the fewest requests in flight, and among equals the next in
// round-robin order. nil means none can take it now.
func (c *Client) pick(avoid *conn) *conn {
	n := len(c.conns)
	suspectAfter := c.opts.heartbeat + c.opts.heartbeat/2
	var best *conn
	var bestTier, bestLoad int32
	for k := range n {
		cn := c.conns[(c.rr+k)%n]
		if cn.full || !cn.alive.Load() {
			continue
		}
		var tier int32
		if c.now.Sub(cn.lastRecv) > suspectAfter {
			tier += 2
		}
		if cn == avoid {
			tier++
		}
		load := cn.inflight.Load()
		if best != nil && (tier > bestTier || (tier == bestTier && load >= bestLoad)) {
			continue
		}
		best, bestTier, bestLoad = cn, tier, load
	}
	if n > 0 {
		c.rr = (c.rr + 1) % n
	}
	return best
}

func (c *Client) anyAlive() bool {
	for _, cn := range c.conns {
		if cn.alive.Load() {
			return true
		}
	}
	return false
}

// deadAfter is how long a broker may be silent before it is dead.
func (c *Client) deadAfter() time.Duration {
	return c.opts.heartbeat * time.Duration(c.opts.liveness)
}

// idleProbeInterval is how often a client probes a live broker it has
// nothing in flight with: seldom, since a broker's process dying closes
// the connection and a hung one stops answering ZMTP heartbeats (see
// dial), after which ZMQ_IMMEDIATE steers calls elsewhere. Probing idle brokers every heartbeat cost a broker with 10,000
// idle clients 10,000 requests a second.
func (c *Client) idleProbeInterval() time.Duration {
	return 60 * c.opts.heartbeat
}

// idle reports whether the client has no call in flight on any broker. An
// active client probes every silent broker each interval, so that one that
// came back (or was only quiet) gets its share of calls again; an idle one
// has no calls to place.
func (c *Client) idle() bool {
	for _, cn := range c.conns {
		if cn.inflight.Load() > 0 {
			return false
		}
	}
	return true
}

// probeAt is when cn is next probed: one interval after it was last heard
// from or probed while the client has calls in flight or cn is dead (to see
// it come back), idleProbeInterval after that while it is alive and the
// client idle, or,
// while probes cannot be sent (no connection, under ZMQ_IMMEDIATE), soon
// again with a backoff from 1 ms to a quarter interval. A broker never
// heard from is probed at once.
func (c *Client) probeAt(cn *conn) time.Time {
	if cn.misses > 0 {
		return cn.lastProbe.Add(min(time.Millisecond<<min(cn.misses-1, 20), c.opts.heartbeat/4))
	}
	if !cn.heardOnce && cn.lastProbe.IsZero() {
		return cn.lastRecv
	}
	ivl := c.opts.heartbeat
	if cn.alive.Load() && !cn.probing() && c.idle() {
		ivl = c.idleProbeInterval()
	}
	t := cn.lastProbe.Add(ivl)
	if r := cn.lastRecv.Add(ivl); r.After(t) {
		t = r
	}
	return t
}

// deadAt is when cn counts as dead if it stays silent: the liveness
// period after the client began to wait for it. ok is false while the
// client waits for nothing from it.
func (c *Client) deadAt(cn *conn) (t time.Time, ok bool) {
	if !cn.alive.Load() || cn.waiting.IsZero() {
		return time.Time{}, false
	}
	return cn.waiting.Add(c.deadAfter()), true
}

// sent records that the client now waits for an answer from cn.
func (cn *conn) sent(now time.Time) {
	if cn.waiting.IsZero() {
		cn.waiting = now
	}
}

// tick declares silent brokers dead and probes those that are due.
func (c *Client) tick(now time.Time) {
	lost := now.Add(-c.deadAfter())
	for _, cn := range c.conns {
		for len(cn.mmiSent) > 0 && cn.mmiSent[0].at.Before(lost) {
			cn.mmiSent = cn.mmiSent[1:] // never answered: lost
		}
		if at, ok := c.deadAt(cn); ok && !now.Before(at) {
			c.markDead(cn, now)
		}
		if !now.Before(c.probeAt(cn)) {
			c.probe(cn, now)
		}
	}
}

// probe sends cn a probe, without blocking.
func (c *Client) probe(cn *conn, now time.Time) {
	cn.lastProbe = now
	cn.sent(now) // even unsent: a broker that cannot be reached for the liveness period is dead
	if err := cn.sock.Send(probeFrames, false); err != nil {
		cn.misses++
		return
	}
	cn.misses = 0
	cn.mmiSent = append(cn.mmiSent, mmiRequest{probe: true, at: now})
}

// mmiRequest is an mmi.service request sent and not answered.
type mmiRequest struct {
	probe bool      // a probe; else a Raw call
	at    time.Time // when it was sent
}

// probing reports a probe sent to cn and not answered.
func (cn *conn) probing() bool {
	return slices.ContainsFunc(cn.mmiSent, func(m mmiRequest) bool { return m.probe })
}

// answeredMMI takes the oldest mmi.service request off mmiSent, for the
// answer that came, and reports whether it was a probe.
func (cn *conn) answeredMMI() (probe bool) {
	probe = cn.mmiSent[0].probe
	cn.mmiSent = cn.mmiSent[1:]
	return probe
}

// unsentRawMMI takes back the entry mmiSent got for a Raw call to
// mmi.service that could not be sent: the last Raw entry, since the one
// Raw call in flight is queued after the probes already sent.
func (cn *conn) unsentRawMMI() {
	for i := len(cn.mmiSent) - 1; i >= 0; i-- {
		if !cn.mmiSent[i].probe {
			cn.mmiSent = slices.Delete(cn.mmiSent, i, i+1)
			return
		}
	}
}

// heard records a message from cn: proof of life, and a dead broker's
// return.
func (c *Client) heard(cn *conn, now time.Time) {
	cn.lastRecv = now
	cn.waiting = time.Time{}
	if cn.inflight.Load() > 0 || cn.probing() {
		cn.waiting = now // more answers are due: silence from now on counts
	}
	if !cn.alive.Load() {
		cn.alive.Store(true)
		if cn.heardOnce {
			c.opts.logger.Info("client: broker alive again", "broker", cn.endpoint)
		} else {
			c.opts.logger.Debug("client: broker alive", "broker", cn.endpoint)
		}
	}
	cn.heardOnce = true
}

// markDead stops sending to cn and moves its calls off it.
func (c *Client) markDead(cn *conn, now time.Time) {
	cn.alive.Store(false)
	cn.mmiSent = cn.mmiSent[:0] // answers to probes sent so far no longer count
	cn.waiting = time.Time{}
	cn.batches = false // it may come back as another broker; its next answer says
	silent := now.Sub(cn.lastRecv).Round(time.Millisecond)
	c.opts.logger.Warn("client: broker dead", "broker", cn.endpoint, "silent", silent, "in_flight", cn.inflight.Load())
	c.evacuate(cn, domo.Errorf(domo.CodeUnavailable, "broker %s is not answering (silent for %v)", cn.endpoint, silent))
}

// evacuate takes every request in flight on cn off it: a Retry call is
// sent again (to another broker if there is one) while its deadline
// allows, anything else fails with err.
func (c *Client) evacuate(cn *conn, err *domo.Error) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, cl := range c.pending {
		if cl.cn != cn {
			continue
		}
		if cl.stream != nil {
			c.finishLocked(cl.stream, err)
			continue
		}
		if cl.retry && c.retryLocked(id, cl, cn, now) {
			c.stats.failovers.Add(1)
			continue
		}
		c.dropLocked(id, cl)
		cl.ch <- result{err: err}
	}
	c.raw.lostLocked(c, cn, err)
}

// retryItem is a Retry call waiting to be sent again.
type retryItem struct {
	id    uint64
	at    time.Time // not before
	avoid *conn     // the broker that failed it
}

// retryLocked schedules the next attempt of Retry call cl (request id id),
// last sent to cn, after a backoff, and reports whether it did: not if the
// backoff would outlast the call's deadline. Only the loop calls it; c.mu
// is held.
func (c *Client) retryLocked(id uint64, cl *call, cn *conn, now time.Time) bool {
	if cl.om == nil {
		return false
	}
	d := c.backoff(cl.attempt + 1)
	if !now.Add(d).Before(cl.deadline) {
		return false
	}
	if cl.cn != nil {
		cl.cn.inflight.Add(-1)
		cl.cn = nil
	}
	c.retries = append(c.retries, retryItem{id: id, at: now.Add(d), avoid: cn})
	return true
}

// backoff is the wait before attempt n (2 or more): 10 ms, doubling for
// each attempt, at most one heartbeat interval, jittered between half and
// all of it.
func (c *Client) backoff(n int) time.Duration {
	d := min(10*time.Millisecond<<min(max(n-2, 0), 16), c.opts.heartbeat)
	return d/2 + rand.N(d/2+1)
}

// dueRetries moves the retries whose time has come to the backlog, each
// re-encoded with its next attempt number.
func (c *Client) dueRetries(now time.Time) {
	if len(c.retries) == 0 {
		return
	}
	keep := c.retries[:0]
	for _, r := range c.retries {
		if now.Before(r.at) {
			keep = append(keep, r)
			continue
		}
		c.mu.Lock()
		cl := c.pending[r.id]
		if cl == nil || cl.om == nil { // answered or abandoned meanwhile
			c.mu.Unlock()
			continue
		}
		om := cl.om
		cl.om = nil
		cl.attempt++
		n := cl.attempt
		c.mu.Unlock()
		om.setAttempt(n)
		c.stats.retries.Add(1)
		c.backlog = append(c.backlog, sendItem{om: om, avoid: r.avoid})
	}
	clear(c.retries[len(keep):])
	c.retries = keep
}

// applyBrokers makes the set of conns the one SetBrokers last asked for;
// when it changed, the poller is stale (the loop rebuilds it).
func (c *Client) applyBrokers() {
	c.mu.Lock()
	if !c.wantSet {
		c.mu.Unlock()
		return
	}
	want := c.want
	c.want, c.wantSet = nil, false
	c.mu.Unlock()

	old := make(map[string]*conn, len(c.conns))
	for _, cn := range c.conns {
		old[cn.endpoint] = cn
	}
	next := make([]*conn, 0, len(want))
	for _, ep := range want {
		if cn := old[ep]; cn != nil {
			next = append(next, cn)
			delete(old, ep)
			continue
		}
		cn, err := c.dial(ep)
		if err != nil {
			c.opts.logger.Warn("client: cannot use broker", "broker", ep, "err", err)
			continue
		}
		c.opts.logger.Info("client: broker added", "broker", ep)
		next = append(next, cn)
	}
	if slices.Equal(next, c.conns) {
		return
	}
	c.mu.Lock()
	c.conns = next
	c.mu.Unlock()
	for _, cn := range old {
		c.opts.logger.Info("client: broker removed", "broker", cn.endpoint)
		c.evacuate(cn, domo.Errorf(domo.CodeUnavailable, "broker %s was removed", cn.endpoint))
		cn.sock.Close()
	}
	c.stalePoller = true
}
