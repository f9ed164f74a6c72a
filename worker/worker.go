package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

// rawFunc serves a request whose MDP body is not a domo envelope: it gets the
// body frames and returns the reply body frames. See HandleRaw.
type rawFunc func(ctx context.Context, body [][]byte) ([][]byte, error)

// Worker serves one service: it connects to a broker, declares how many
// requests it takes at once, runs handlers for the requests the broker hands
// it, and reconnects when the broker goes away.
//
// Register handlers, then call Run; stop with Shutdown (graceful) or Close
// (hard), or by ending Run's context. A Worker runs once.
type Worker struct {
	service string
	opts    options
	log     *slog.Logger
	ready   [][]byte // the READY message, built by Run

	handlers atomic.Pointer[map[string]registered] // copy on write
	methods  map[string]mdp.MethodContract         // guarded by mu
	raw      atomic.Pointer[rawFunc]

	mu        sync.Mutex // guards the fields below
	started   bool
	stopped   bool // Run is stopping: no new connections
	conns     []*conn
	jobs      chan *job       // the handler pool's queue, shared by every connection
	runCtx    context.Context // Run's context, for connection loops
	loops     sync.WaitGroup  // connection loops
	runDone   chan struct{}   // closed when Run returns
	loopsDone chan struct{}   // closed when every connection loop has stopped

	drain     chan struct{} // closed by Shutdown
	drainOnce sync.Once
	quit      chan struct{} // closed by Close
	quitOnce  sync.Once

	stats counters
}

// New returns a Worker for service, configured by opts. It does not connect:
// Run does. It panics if service is empty.
func New(service string, opts ...Option) *Worker {
	if service == "" {
		panic("worker: empty service name")
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	w := &Worker{
		service: service,
		opts:    o,
		log:     o.logger.With("service", service),
		drain:   make(chan struct{}),
		quit:    make(chan struct{}),
	}
	w.methods = map[string]mdp.MethodContract{}
	empty := map[string]registered{}
	w.handlers.Store(&empty)
	return w
}

// registered is a method's handler, with its name: a request's method is
// looked up by its bytes and named by this string, not a copy of them.
type registered struct {
	name string
	h    Handler
}

// Handle registers h for method, described by opts (Doc, Streaming,
// Schemas) in the worker's contract, which Run sends to the broker; a Typed
// handler brings its own request and reply schemas. Call it before Run; it
// is safe for concurrent use and does not block, and a registration made
// while the worker runs applies to requests that arrive after it (but is
// not published in the contract). It panics if method is empty or h is nil;
// registering a method again replaces its handler and description.
func (w *Worker) Handle(method string, h Handler, opts ...MethodOption) {
	if method == "" {
		panic("worker: Handle with an empty method name")
	}
	if h == nil {
		panic("worker: Handle with a nil handler for " + method)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m := maps.Clone(*w.handlers.Load())
	m[method] = registered{name: method, h: h}
	w.handlers.Store(&m)
	w.methods[method] = describe(method, h, opts)
}

// HandleFunc registers fn for method, like Handle(method, HandlerFunc(fn), opts...).
func (w *Worker) HandleFunc(method string, fn func(context.Context, *Request) ([]byte, error), opts ...MethodOption) {
	if fn == nil {
		panic("worker: HandleFunc with a nil function for " + method)
	}
	w.Handle(method, HandlerFunc(fn), opts...)
}

// HandleRaw registers fn for requests whose MDP body is not a domo envelope,
// as a plain MDP client sends them: fn gets the body frames and returns the
// reply's. Without it such requests are answered with a domo.CodeInvalid
// error envelope. fn runs on the handler pool like any handler, so it must be
// safe for concurrent use; a returned error is sent as an error envelope.
// HandleRaw is safe for concurrent use and does not block; call it before Run.
func (w *Worker) HandleRaw(fn func(ctx context.Context, body [][]byte) ([][]byte, error)) {
	if fn == nil {
		w.raw.Store(nil)
		return
	}
	f := rawFunc(fn)
	w.raw.Store(&f)
}

// Run connects to the broker, says READY, and serves requests until the
// worker is stopped, reconnecting with backoff whenever the broker is lost.
// It blocks. It returns nil after Shutdown or Close, ctx.Err() when ctx ends
// first (handlers' contexts are then cancelled), and domo.ErrClosed if the
// worker was stopped before Run was called. Before returning it waits for
// every handler to return, so handlers should honour their context. Run may
// be called once; a second call returns an error.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	select {
	case <-w.drain:
		w.mu.Unlock()
		return domo.ErrClosed
	case <-w.quit:
		w.mu.Unlock()
		return domo.ErrClosed
	default:
	}
	if w.started {
		w.mu.Unlock()
		return fmt.Errorf("worker %q: Run called twice", w.service)
	}
	w.started = true
	w.ready = w.readyLocked()
	// Each broker may hand the worker up to its credit, so the pool's queue
	// has room for that many per broker, up to maxBrokers of them; beyond
	// that a request is answered "overloaded" rather than block a loop.
	w.jobs = make(chan *job, w.opts.concurrency*maxBrokers)
	w.runCtx = ctx
	w.runDone = make(chan struct{})
	w.loopsDone = make(chan struct{})
	w.mu.Unlock()
	defer close(w.runDone)

	base, cancel := context.WithCancel(ctx)
	defer cancel()

	var pool sync.WaitGroup
	for range w.opts.concurrency {
		pool.Add(1)
		go func() {
			defer pool.Done()
			for j := range w.jobs {
				w.serve(base, j)
			}
		}()
	}

	if err := w.SetBrokers(w.opts.endpoints); err != nil {
		w.log.Error("worker: brokers", "err", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watcher sync.WaitGroup
	if src := w.opts.discovery; src != nil {
		watcher.Add(1)
		go func() {
			defer watcher.Done()
			err := src.Watch(watchCtx, func(endpoints []string) {
				if err := w.SetBrokers(endpoints); err != nil {
					w.log.Error("worker: brokers from discovery", "err", err)
				}
			})
			if err != nil && watchCtx.Err() == nil {
				w.log.Error("worker: discovery stopped", "err", err)
			}
		}()
	}

	stopWake := context.AfterFunc(ctx, w.wakeAll)
	select { // until the worker is told to stop, however many brokers come and go
	case <-ctx.Done():
	case <-w.quit:
	case <-w.drain:
	}
	stopWatch()
	watcher.Wait()
	w.mu.Lock()
	w.stopped = true // SetBrokers adds no connection from now on
	w.mu.Unlock()
	w.wakeAll()
	w.loops.Wait()
	close(w.loopsDone)
	stopWake()

	cancel() // handlers still running are abandoned: their replies have nowhere to go
	close(w.jobs)
	pool.Wait()
	if w.stopping() {
		return nil
	}
	return ctx.Err()
}

// maxBrokers is how many brokers' credit the handler pool's queue holds.
const maxBrokers = 16

// SetBrokers makes the worker serve exactly the given brokers: it connects
// to new endpoints and disconnects from the ones no longer listed (requests
// in flight from those are abandoned, as when a broker dies). It is how a
// discovery source drives a running worker, and is safe for concurrent use;
// before Run it replaces the endpoints Run will connect to.
func (w *Worker) SetBrokers(endpoints []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		w.opts.endpoints = slices.Clone(endpoints)
		return nil
	}
	if w.stopped {
		return domo.ErrClosed
	}
	want := make(map[string]bool, len(endpoints))
	for _, ep := range endpoints {
		want[ep] = true
	}
	kept := make([]*conn, 0, len(w.conns)) // wakeAll may hold the old slice
	for _, c := range w.conns {
		if want[c.endpoint] {
			kept = append(kept, c)
			delete(want, c.endpoint)
			continue
		}
		w.log.Info("worker: leaving broker", "broker", c.endpoint)
		c.stopOnce.Do(func() { close(c.stop) })
		c.waker.Wake()
	}
	w.conns = kept
	var errs []error
	for _, ep := range endpoints {
		if !want[ep] {
			continue
		}
		delete(want, ep) // a duplicate endpoint gets one connection
		c, err := newConn(w, ep, w.jobs)
		if err != nil {
			errs = append(errs, fmt.Errorf("worker %q: %w", w.service, err))
			continue
		}
		w.conns = append(w.conns, c)
		w.loops.Add(1)
		go func() {
			defer w.loops.Done()
			c.loop(w.runCtx)
		}()
	}
	return errors.Join(errs...)
}

// Shutdown stops the worker gracefully: requests that arrive from now on are
// answered with domo.CodeUnavailable (so that they can be retried elsewhere),
// requests in flight are finished and their replies sent, then the worker
// sends DISCONNECT to the broker and Run returns nil. Shutdown blocks until
// then or until ctx ends; in the latter case it stops the worker as Close
// does and returns ctx.Err(). It is idempotent and safe for concurrent use;
// before Run it only makes Run return domo.ErrClosed. A handler must not call
// it (it would wait for itself); it may call Close.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	w.drainOnce.Do(func() { close(w.drain) })
	done := w.runDone
	w.mu.Unlock()
	if done == nil {
		return nil
	}
	w.wakeAll()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		w.Close()
		return ctx.Err()
	}
}

// Close stops the worker at once: it sends DISCONNECT to the broker, closes
// the connection, drops the replies of requests still in flight and cancels
// their handlers' contexts. It blocks until the connection is closed (not for
// handlers to return: Run waits for those). It is idempotent, safe for
// concurrent use, and always returns nil.
func (w *Worker) Close() error {
	w.mu.Lock()
	w.quitOnce.Do(func() { close(w.quit) })
	done := w.loopsDone
	w.mu.Unlock()
	if done == nil {
		return nil
	}
	w.wakeAll()
	<-done
	return nil
}

// stopping reports whether Shutdown or Close has been called.
func (w *Worker) stopping() bool {
	select {
	case <-w.drain:
		return true
	case <-w.quit:
		return true
	default:
		return false
	}
}

func (w *Worker) wakeAll() {
	w.mu.Lock()
	conns := w.conns
	w.mu.Unlock()
	for _, c := range conns {
		c.waker.Wake()
	}
}

// Stats is a snapshot of a worker's counters since New.
type Stats struct {
	Handled        uint64 // requests answered with a success
	Failed         uint64 // requests answered with an error by the handler or the SDK (panics included)
	Panics         uint64 // handler panics recovered
	Rejected       uint64 // requests refused without running a handler: overloaded or shutting down
	Malformed      uint64 // messages from the broker dropped as malformed or over the limits
	DroppedReplies uint64 // replies and partials not sent: their connection was lost, or the send failed
	Reconnects     uint64 // connections to a broker replaced by a new one
}

type counters struct {
	handled, failed, panics, rejected, malformed, dropped, reconnects atomic.Uint64
}

// Stats returns a snapshot of the worker's counters. It does not block and is
// safe for concurrent use; each counter is read atomically, the set is not.
func (w *Worker) Stats() Stats {
	s := &w.stats
	return Stats{
		Handled:        s.handled.Load(),
		Failed:         s.failed.Load(),
		Panics:         s.panics.Load(),
		Rejected:       s.rejected.Load(),
		Malformed:      s.malformed.Load(),
		DroppedReplies: s.dropped.Load(),
		Reconnects:     s.reconnects.Load(),
	}
}
