package worker

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
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
	ready   [][]byte // the READY message, built once

	handlers atomic.Pointer[map[string]Handler] // copy on write
	raw      atomic.Pointer[rawFunc]

	mu        sync.Mutex // guards the fields below
	started   bool
	conns     []*conn
	runDone   chan struct{} // closed when Run returns
	loopsDone chan struct{} // closed when every connection loop has stopped

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
	hdr := mdp.AppendHeader(nil, mdp.HeaderCredit, strconv.Itoa(o.concurrency))
	ready := mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte(service), Body: [][]byte{hdr}}
	w.ready, _ = ready.Append(nil) // cannot fail: READY exists in MDP/0.1
	empty := map[string]Handler{}
	w.handlers.Store(&empty)
	return w
}

// Handle registers h for method. Call it before Run; it is safe for
// concurrent use and does not block, and a registration made while the worker
// runs applies to requests that arrive after it. It panics if method is empty
// or h is nil; registering a method again replaces its handler.
func (w *Worker) Handle(method string, h Handler) {
	if method == "" {
		panic("worker: Handle with an empty method name")
	}
	if h == nil {
		panic("worker: Handle with a nil handler for " + method)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m := maps.Clone(*w.handlers.Load())
	m[method] = h
	w.handlers.Store(&m)
}

// HandleFunc registers fn for method, like Handle(method, HandlerFunc(fn)).
func (w *Worker) HandleFunc(method string, fn func(context.Context, *Request) ([]byte, error)) {
	if fn == nil {
		panic("worker: HandleFunc with a nil function for " + method)
	}
	w.Handle(method, HandlerFunc(fn))
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
	jobs := make(chan *job, w.opts.concurrency)
	// One connection per broker; multi-broker operation will add one per
	// endpoint here, all feeding the same pool.
	c, err := newConn(w, w.opts.endpoints[0], jobs)
	if err != nil {
		w.mu.Unlock()
		return fmt.Errorf("worker %q: %w", w.service, err)
	}
	w.conns = []*conn{c}
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
			for j := range jobs {
				w.serve(base, j)
			}
		}()
	}

	stopWake := context.AfterFunc(ctx, w.wakeAll)
	var loops sync.WaitGroup
	for _, c := range w.conns {
		loops.Add(1)
		go func() {
			defer loops.Done()
			c.loop(ctx)
		}()
	}
	loops.Wait()
	close(w.loopsDone)
	stopWake()

	cancel() // handlers still running are abandoned: their replies have nowhere to go
	close(jobs)
	pool.Wait()
	for _, c := range w.conns {
		c.waker.Close()
	}
	if w.stopping() {
		return nil
	}
	return ctx.Err()
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
