package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// Broker is a Majordomo broker. Create one with New, run it with Run, stop it
// with Shutdown (graceful) or Close (hard). Its methods are safe for
// concurrent use.
type Broker struct {
	cfg       Config
	event     Event // the one emit fills
	log       *slog.Logger
	router    *zsock.Socket
	waker     *zsock.Waker
	endpoints []string
	started   time.Time

	mu     sync.Mutex // guards posted
	posted []func()

	lifeMu sync.Mutex // guards life
	life   lifecycle
	done   chan struct{} // closed when the broker has stopped

	// Owned by the loop goroutine from here on.
	services      map[string]*service
	workers       map[string]*worker
	inFlight      map[uint64]*request
	seq           uint64
	peers         []*peer
	selfEndpoints map[string]bool // peer endpoints found to be this broker
	pollerStale   bool            // the peer set changed: wait on a new poller
	readied       bool            // this turn may have woken another goroutine (an event sent, posted work run)
	draining      bool
	stopped       bool
	counters      Counters
	out           [][]byte  // reused send buffer
	in            [][]byte  // reused receive buffer
	sub           [][]byte  // reused: one message of a batch received
	batching      []*worker // workers with requests held for a batch
	batch         mdp.Batch // reused: a batch being built
	inBatch       bool      // handling the messages of a batch
	clientBatches map[string]*clientBatch
	clientOrder   []*clientBatch // the clientBatches of this turn, in order
	freeBatches   []*clientBatch
	scratch       [][]byte // reused: one message of a batch
	badLog        logLimiter
}

// New binds the configured endpoints and returns a broker ready to Run.
func New(cfg Config) (*Broker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	router, err := newRouter(cfg)
	if err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:      cfg,
		log:      cfg.Logger,
		router:   router,
		done:     make(chan struct{}),
		services: make(map[string]*service),
		workers:  make(map[string]*worker),
		inFlight: make(map[uint64]*request),
		started:  time.Now(),
	}
	for _, ep := range cfg.Listen {
		bound, err := router.Bind(ep)
		if err != nil {
			router.Close()
			return nil, fmt.Errorf("broker: %w", err)
		}
		b.endpoints = append(b.endpoints, bound)
	}
	if b.waker, err = zsock.NewWaker(); err != nil {
		router.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	return b, nil
}

// newRouter opens the broker's ROUTER socket, native or libzmq's.
func newRouter(cfg Config) (*zsock.Socket, error) {
	maxMsg := int64(0)
	if cfg.Limits.MaxMessageSize > 0 {
		// Twice the limit: a message a little over it is refused with a clear
		// error by the loop; a monstrous frame gets its peer disconnected.
		maxMsg = 2 * int64(cfg.Limits.MaxMessageSize)
	}
	opts := zsock.Options{
		RouterMandatory: true,
		SendHWM:         cfg.SendHWM,
		RecvHWM:         cfg.RecvHWM,
		MaxMessageSize:  maxMsg,
	}
	if cfg.NativeTransport {
		router, err := zsock.NewNativeRouter(opts)
		if err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		return router, nil
	}
	router, err := zsock.New(zsock.Router)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := router.Apply(opts); err != nil {
		router.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	return router, nil
}

// ID returns the broker's id (Config.ID, or the random one it chose).
func (b *Broker) ID() string { return b.cfg.ID }

// Endpoints returns the endpoints the broker is bound to, with wildcard
// ports resolved. It does not block.
func (b *Broker) Endpoints() []string { return append([]string(nil), b.endpoints...) }

// Run routes messages until ctx ends, Shutdown completes or Close is called.
// It blocks; it returns nil after Shutdown or Close, ctx.Err() if ctx ended
// first. It may be called once.
func (b *Broker) Run(ctx context.Context) error {
	b.lifeMu.Lock()
	switch b.life {
	case running:
		b.lifeMu.Unlock()
		return errors.New("broker: Run called twice")
	case stopped:
		b.lifeMu.Unlock()
		return nil
	}
	b.life = running
	b.lifeMu.Unlock()
	defer b.finish()
	stop := context.AfterFunc(ctx, func() { b.post(func() { b.stopped = true }) })
	defer stop()

	b.log.Info("broker started", "endpoints", b.endpoints, "id", b.cfg.ID)
	b.setPeers(b.cfg.Peers)
	var poller *zsock.Poller
	defer func() { poller.Close() }()
	nextProbe := time.Now()
	// Ticks come four times an interval, on a fixed grid, so that expiry is
	// checked promptly; every fourth tick is a heartbeat sweep (see tick).
	clock := newBeatClock(time.Now(), b.cfg.HeartbeatInterval)
	nextTick := clock.next
	for !b.stopped {
		if poller == nil || b.pollerStale {
			poller.Close()
			poller = b.newPoller()
		}
		peers := b.peers // as polled: the set may change while handling
		ready, err := poller.Wait(max(time.Until(nextTick), 0))
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		if ready[1] {
			b.waker.Drain()
			b.runPosted()
			b.readied = true // a poster may be waiting for the answer
		}
		if ready[0] {
			b.drainRouter()
		}
		for i, p := range peers {
			if ready[2+i] && slices.Contains(b.peers, p) {
				b.drainPeer(p)
			}
		}
		if now := time.Now(); !now.Before(nextTick) {
			sweep := clock.advance(now)
			b.tick(now, sweep, clock.sweep)
			nextTick = clock.next
			if !now.Before(nextProbe) {
				b.probePeers(now)
				nextProbe = now.Add(b.cfg.HeartbeatInterval)
			}
		}
		b.flushBatches()
		if b.cfg.DedicatedThread && b.readied {
			// Let the goroutines this turn readied (the event bus, callers
			// of Stats and Post) run here before the thread blocks in
			// epoll_wait holding its P: otherwise they wait for another
			// thread to steal them or for sysmon to take the P back.
			// Bench defaults: 8-20% more requests a second. Not after a
			// turn that readied none (heartbeats): from a locked thread,
			// Gosched hands the P to another thread and back, two
			// context switches.
			runtime.Gosched()
		}
		b.readied = false
		if b.draining && len(b.inFlight) == 0 && b.forwardedCount() == 0 {
			b.disconnectAll()
			b.stopped = true
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

// newPoller waits on the router, the waker and every peer link, on a
// thread it blocks with Config.DedicatedThread. Every ready socket is
// drained, so the poller may be eager.
func (b *Broker) newPoller() *zsock.Poller {
	socks := []*zsock.Socket{b.router, b.waker.Socket()}
	for _, p := range b.peers {
		socks = append(socks, p.sock)
	}
	b.pollerStale = false
	if b.cfg.DedicatedThread {
		return zsock.NewBlockingPoller(socks...).Eager()
	}
	return zsock.NewPoller(socks...).Eager()
}

func (b *Broker) forwardedCount() int {
	n := 0
	for _, p := range b.peers {
		n += len(p.forwarded)
	}
	return n
}

// SetPeers replaces the broker's peers (see Config.Peers); a discovery
// source drives it. It does not block and is safe for concurrent use.
func (b *Broker) SetPeers(endpoints []string) {
	endpoints = slices.Clone(endpoints)
	b.post(func() { b.setPeers(endpoints) })
}

// drainRouter handles every message waiting on the router, up to a bound
// of MDP messages (a batch counts for what it holds) that keeps heartbeats
// and posted work from starving under load.
func (b *Broker) drainRouter() {
	for n := 0; n < 4096; {
		var err error
		b.in, err = b.router.Recv(b.in, false)
		if err != nil {
			if !errors.Is(err, zsock.ErrAgain) {
				b.log.Warn("broker: receive failed", "err", err)
			}
			return
		}
		n += b.handle(b.in)
	}
}

// post runs fn on the loop. It returns false if the loop has finished.
func (b *Broker) post(fn func()) bool {
	select {
	case <-b.done:
		return false
	default:
	}
	b.mu.Lock()
	b.posted = append(b.posted, fn)
	b.mu.Unlock()
	b.waker.Wake()
	return true
}

func (b *Broker) runPosted() {
	b.mu.Lock()
	fns := b.posted
	b.posted = nil
	b.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Shutdown stops the broker gracefully: it stops taking requests (callers
// get "unavailable" and may retry elsewhere), answers queued ones the same
// way, waits for the requests in flight to complete, sends DISCONNECT to
// every worker and stops. If ctx ends first it closes the broker hard and
// returns ctx.Err(). It blocks and is idempotent.
func (b *Broker) Shutdown(ctx context.Context) error {
	if b.stopIfIdle() {
		return nil
	}
	b.post(b.beginDrain)
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		b.Close()
		return ctx.Err()
	}
}

// Close stops the broker at once: requests in flight are abandoned and
// workers are not told. It blocks until Run has returned, and is idempotent.
func (b *Broker) Close() error {
	if b.stopIfIdle() {
		return nil
	}
	b.post(func() { b.stopped = true })
	<-b.done
	return nil
}

// lifecycle is where a Broker is in its life.
type lifecycle int

const (
	created lifecycle = iota
	running
	stopped
)

// stopIfIdle stops a broker whose Run has not started, so that a later Run
// returns at once. It reports whether the broker is (now) stopped rather
// than running.
func (b *Broker) stopIfIdle() bool {
	b.lifeMu.Lock()
	defer b.lifeMu.Unlock()
	switch b.life {
	case created:
		b.life = stopped
		b.closeSockets()
		close(b.done)
		return true
	case stopped:
		<-b.done
		return true
	}
	return false
}

// finish ends Run: sockets closed, the broker marked stopped.
func (b *Broker) finish() {
	b.lifeMu.Lock()
	b.life = stopped
	b.closeSockets()
	close(b.done)
	b.lifeMu.Unlock()
}

func (b *Broker) closeSockets() {
	b.router.Close()
	b.waker.Close()
	for _, p := range b.peers {
		p.sock.Close()
	}
	b.peers = nil
}

func (b *Broker) beginDrain() {
	if b.draining {
		return
	}
	b.draining = true
	b.log.Info("broker draining", "in_flight", len(b.inFlight))
	for _, svc := range b.services {
		for r := svc.queue.popFront(); r != nil; r = svc.queue.popFront() {
			b.replyError(r, domo.Errorf(domo.CodeUnavailable, "broker is shutting down"))
		}
	}
}

func (b *Broker) disconnectAll() {
	// Linger so the DISCONNECTs and the last replies leave before the close.
	_ = b.router.SetLinger(time.Second)
	for _, w := range b.workers {
		b.sendWorkerCommand(w, mdp.Disconnect)
	}
	b.log.Info("broker stopped", "workers_disconnected", len(b.workers))
}

// beatClock is the broker's tick schedule: ticks four times a heartbeat
// interval on a fixed grid from the start, every fourth of them a heartbeat
// sweep. A fixed grid (rather than "a quarter interval after the last tick")
// keeps sweeps exactly one interval apart however late the loop gets to them.
type beatClock struct {
	origin  time.Time
	quarter time.Duration
	k       int64     // the last tick handled: origin + k*quarter
	next    time.Time // the next tick
	sweep   time.Time // the next sweep
}

func newBeatClock(origin time.Time, interval time.Duration) beatClock {
	c := beatClock{origin: origin, quarter: max(interval/4, 1)}
	c.next = origin.Add(c.quarter)
	c.sweep = origin.Add(4 * c.quarter)
	return c
}

// advance moves the clock to the tick due at now (ticks missed while the
// loop was busy are skipped) and reports whether a sweep is due.
func (c *beatClock) advance(now time.Time) bool {
	k := int64(now.Sub(c.origin) / c.quarter)
	sweep := k/4 > c.k/4
	c.k = k
	c.next = c.origin.Add(time.Duration(k+1) * c.quarter)
	c.sweep = c.origin.Add(time.Duration(k/4+1) * 4 * c.quarter)
	return sweep
}

// tick runs four times a heartbeat interval: it drops silent workers, sends
// heartbeats to the others, and expires queued requests.
//
// Heartbeats leave in one sweep an interval: every worker sent nothing in the
// last quarter interval gets one at the sweep, so 1,000 idle workers cost
// one burst of sends (and, as domo workers answer a heartbeat with theirs,
// one burst of receives) an interval rather than a steady trickle of
// wake-ups. Between sweeps, a worker that would otherwise go more than an
// interval without a message by the next sweep (one skipped at the last
// sweep because it had just been sent a request) gets one at once, so no
// worker waits more than an interval, as RFC 7 asks.
func (b *Broker) tick(now time.Time, sweep bool, nextSweep time.Time) {
	ivl := b.cfg.HeartbeatInterval
	for _, w := range b.workers {
		if now.After(w.expiry) {
			b.counters.WorkersExpired++
			b.log.Warn("worker expired", "worker", w.name, "service", w.service.name, "in_flight", w.inFlight)
			b.deleteWorker(w, false)
			continue
		}
		if due := sweep && now.Sub(w.lastSent) >= ivl/4; due || nextSweep.Sub(w.lastSent) > ivl {
			b.sendWorkerCommand(w, mdp.Heartbeat)
		}
	}
	for _, p := range b.peers {
		for id, r := range p.forwarded {
			if r.expired(now) || (r.deadline.IsZero() && now.Sub(r.received) > b.cfg.RequestTTL) {
				delete(p.forwarded, id) // the caller has given up; a late reply is dropped
				b.drop(r)
			}
		}
	}
	for name, svc := range b.services {
		svc.queue.filter(func(r *request) bool {
			if r.expired(now) || (r.deadline.IsZero() && now.Sub(r.received) > b.cfg.RequestTTL) {
				b.drop(r)
				return false
			}
			return true
		})
		if !svc.known && svc.workers == 0 && svc.queue.len() == 0 {
			delete(b.services, name)
		}
	}
}

// seqOf parses a route frame; ok is false for a frame that is not one.
func seqOf(route []byte) (uint64, bool) {
	if len(route) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(route), true
}
