package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineCtx is its parent with a deadline, made without a timer: the
// timer, and the registration with the parent that cancellation needs,
// are made only when something waits for the context (Done) or asks why
// it ended (context.Cause). Most handlers never do, and a
// context.WithDeadline per request, with every handler goroutine
// registering with the worker's one root context, was a tenth of a
// worker's CPU with small requests.
//
// Err is right without the timer: it compares the clock with the
// deadline. release (the handler has returned) cancels it.
type deadlineCtx struct {
	context.Context // the parent
	deadline        time.Time

	once  sync.Once
	timed atomic.Pointer[timedCtx] // set once armed
	// ended is set by release: context.Canceled, or
	// context.DeadlineExceeded if the deadline had passed by then.
	ended atomic.Pointer[error]
}

type timedCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func withLazyDeadline(parent context.Context, d time.Time) *deadlineCtx {
	return &deadlineCtx{Context: parent, deadline: d}
}

// arm makes the real context, once: context.WithDeadline, or if release
// came first and cancelled it, a context cancelled already.
func (c *deadlineCtx) arm() *timedCtx {
	c.once.Do(func() {
		var t timedCtx
		if e := c.ended.Load(); e != nil && *e == context.Canceled {
			t.ctx, t.cancel = context.WithCancel(c.Context)
		} else {
			t.ctx, t.cancel = context.WithDeadline(c.Context, c.deadline)
		}
		c.timed.Store(&t)
	})
	t := c.timed.Load()
	if c.ended.Load() != nil {
		t.cancel() // armed after (or while) release looked
	}
	return t
}

// release ends the context, as the CancelFunc of context.WithDeadline
// would, and frees its timer if it has one.
func (c *deadlineCtx) release() {
	err := &context.Canceled
	if !time.Now().Before(c.deadline) {
		err = &context.DeadlineExceeded
	}
	c.ended.CompareAndSwap(nil, err)
	if t := c.timed.Load(); t != nil {
		t.cancel()
	}
}

// Deadline implements context.Context.
func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Done implements context.Context; it arms the timer.
func (c *deadlineCtx) Done() <-chan struct{} { return c.arm().ctx.Done() }

// Err implements context.Context.
func (c *deadlineCtx) Err() error {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if e := c.ended.Load(); e != nil {
		return *e
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Value implements context.Context. Once the context has ended it arms
// the timer first, so that context.Cause, which finds the cause through
// Value, sees why; and once armed, lookups go through the armed context,
// so that contexts derived from this one register with it directly
// instead of each starting a goroutine to watch it.
func (c *deadlineCtx) Value(key any) any {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Value(key)
	}
	if c.Err() != nil {
		return c.arm().ctx.Value(key)
	}
	return c.Context.Value(key)
}
