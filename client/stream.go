package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/domo-framework/domo"
)

// Stream is the stream of replies to one MDP/0.2 request: zero or more
// PARTIAL replies, then a FINAL. Next must not be called from several
// goroutines at once; Close may be called from any goroutine.
type Stream struct {
	c      *Client
	id     uint64
	method string
	items  chan []byte   // partial payloads, then the FINAL's, in order
	done   chan struct{} // closed when the stream has ended
	closed atomic.Bool

	// Guarded by c.mu.
	finished bool
	err      error       // why it ended (io.EOF for a FINAL); set before done closes
	timer    *time.Timer // WithTimeout's deadline, for a ctx without one
	stopCtx  func() bool // unregisters the ctx watch
}

// errStreamClosed ends a stream its reader closed; it is not counted as an
// error.
var errStreamClosed = errors.New("client: stream closed")

// Stream sends method ("service.method") a streaming request (MDP/0.2) and
// returns the stream of its replies. It blocks only while the send queue is
// full, and is safe for concurrent use.
//
// ctx governs the whole stream: its deadline (or WithTimeout, if it has
// none) travels with the request, and when ctx ends the stream ends with
// the matching error. A broker or worker that cannot stream to the client
// sends only the FINAL.
func (c *Client) Stream(ctx context.Context, method string, payload []byte, opts ...CallOption) (*Stream, error) {
	service, m, err := splitMethod(method)
	if err != nil {
		return nil, c.failStream(method, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, c.failStream(method, ctxErr(err))
	}
	deadline, hasDeadline := ctx.Deadline()
	if !hasDeadline {
		deadline = time.Now().Add(c.opts.timeout)
	}
	id := c.seq.Add(1)
	om, err := c.encode(2, service, m, payload, true, id, deadline, collect(traced(ctx, opts)))
	if err != nil {
		return nil, c.failStream(method, err)
	}
	s := &Stream{
		c:      c,
		id:     id,
		method: method,
		items:  make(chan []byte, streamBuffer),
		done:   make(chan struct{}),
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		om.release()
		return nil, c.failStream(method, domo.ErrClosed)
	}
	c.pending[id] = &call{stream: s}
	if !hasDeadline {
		s.timer = time.AfterFunc(c.opts.timeout, func() { c.finishStream(s, errDeadline) })
	}
	s.stopCtx = context.AfterFunc(ctx, func() { c.finishStream(s, ctxErr(ctx.Err())) })
	c.mu.Unlock()

	if err := c.enqueueStream(ctx, s, om); err != nil {
		om.release()
		c.finishStream(s, errStreamClosed)
		return nil, c.failStream(method, err)
	}
	c.stats.calls.Add(1)
	return s, nil
}

func (c *Client) enqueueStream(ctx context.Context, s *Stream, om *outMsg) error {
	select {
	case c.sendq <- om:
	default:
		select {
		case c.sendq <- om:
		case <-ctx.Done():
			return ctxErr(ctx.Err())
		case <-s.done:
			return s.endErr()
		case <-c.quit:
			return domo.ErrClosed
		}
	}
	c.waker.Wake()
	return nil
}

func (c *Client) failStream(method string, err error) error {
	c.stats.errors.Add(1)
	return fmt.Errorf("stream %s: %w", method, err)
}

// Next returns the next reply's payload. After the FINAL it returns io.EOF
// (the FINAL's payload, if not empty, comes first, as the last item). A
// remote failure is a *domo.Error; a stream whose ctx or deadline ended
// fails like Client.Call. Next blocks until a reply arrives, the stream
// ends, or ctx ends (which abandons this wait, not the stream). It must not
// be called from several goroutines at once.
func (s *Stream) Next(ctx context.Context) ([]byte, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("stream %s: %w", s.method, domo.ErrClosed)
	}
	select {
	case p := <-s.items:
		return p, nil
	default:
	}
	select {
	case p := <-s.items:
		return p, nil
	case <-s.done:
		// Everything sent before done closed is in items.
		select {
		case p := <-s.items:
			return p, nil
		default:
		}
		err := s.endErr()
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("stream %s: %w", s.method, err)
	case <-ctx.Done():
		return nil, fmt.Errorf("stream %s: %w", s.method, ctxErr(ctx.Err()))
	}
}

// endErr returns why the stream ended. Only call it after done is closed.
func (s *Stream) endErr() error {
	if s.err == errStreamClosed {
		return domo.ErrClosed
	}
	return s.err
}

// Close abandons the stream: replies still to come are dropped (and
// counted as late). It does not block, is idempotent, is safe for
// concurrent use, and returns nil.
func (s *Stream) Close() error {
	s.closed.Store(true)
	s.c.finishStream(s, errStreamClosed)
	return nil
}

func (c *Client) finishStream(s *Stream, err error) {
	c.mu.Lock()
	c.finishLocked(s, err)
	c.mu.Unlock()
}

// finishLocked ends s with err, once. c.mu is held.
func (c *Client) finishLocked(s *Stream, err error) {
	if s.finished {
		return
	}
	s.finished = true
	if cl := c.pending[s.id]; cl != nil && cl.stream == s {
		c.dropLocked(s.id, cl)
	}
	s.err = err
	close(s.done)
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.stopCtx != nil {
		s.stopCtx()
	}
	if err != io.EOF && err != errStreamClosed {
		c.stats.errors.Add(1)
	}
}

// feedLocked hands one reply to s. It never blocks: a reader that has let
// streamBuffer replies pile up loses the stream with an overloaded error.
// c.mu is held.
func (c *Client) feedLocked(s *Stream, final bool, r result) {
	if r.err != nil {
		c.finishLocked(s, r.err)
		return
	}
	if !final || len(r.payload) > 0 {
		select {
		case s.items <- r.payload:
		default:
			c.finishLocked(s, domo.Errorf(domo.CodeOverloaded, "stream reader fell %d replies behind", streamBuffer))
			return
		}
	}
	if final {
		c.finishLocked(s, io.EOF)
	}
}
