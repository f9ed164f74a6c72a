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
// Until then Err looks at the parent and the clock, and the first end it
// sees is kept: Err never changes its answer, and a timer armed later
// ends the same way. release (the handler has returned) cancels it.
type deadlineCtx struct {
	context.Context // the parent
	deadline        time.Time

	once  sync.Once
	timed atomic.Pointer[timedCtx] // set once armed
	ended atomic.Pointer[ending]   // how it ended, if it did before it was armed
}

type timedCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// ending is an end: Err's answer, and context.Cause's.
type ending struct{ err, cause error }

var (
	canceled = &ending{context.Canceled, context.Canceled}
	expired  = &ending{context.DeadlineExceeded, context.DeadlineExceeded}
)

// withLazyDeadline returns parent with deadline d, or the parent's own if
// that is sooner (as context.WithDeadline).
func withLazyDeadline(parent context.Context, d time.Time) *deadlineCtx {
	if pd, ok := parent.Deadline(); ok && pd.Before(d) {
		d = pd
	}
	return &deadlineCtx{Context: parent, deadline: d}
}

// end keeps e as how c ended unless an end is kept already, and returns
// the one kept.
func (c *deadlineCtx) end(e *ending) *ending {
	if c.ended.CompareAndSwap(nil, e) {
		return e
	}
	return c.ended.Load()
}

// status returns how c, not armed, has ended: nil if it has not.
func (c *deadlineCtx) status() *ending {
	if e := c.ended.Load(); e != nil {
		return e
	}
	if err := c.Context.Err(); err != nil {
		return c.end(&ending{err, context.Cause(c.Context)})
	}
	if !time.Now().Before(c.deadline) {
		return c.end(expired)
	}
	return nil
}

// arm makes the real context, once: context.WithDeadline, or if c has
// ended already, a context ended the same way.
func (c *deadlineCtx) arm() *timedCtx {
	c.once.Do(func() {
		var t timedCtx
		switch e := c.ended.Load(); {
		case e == nil:
			t.ctx, t.cancel = context.WithDeadline(c.Context, c.deadline)
		case e.err == context.DeadlineExceeded:
			t.ctx, t.cancel = context.WithDeadlineCause(context.WithoutCancel(c.Context), time.Time{}, e.cause)
		default:
			ctx, cancel := context.WithCancelCause(context.WithoutCancel(c.Context))
			cancel(e.cause)
			t.ctx, t.cancel = ctx, func() {}
		}
		c.timed.Store(&t)
	})
	t := c.timed.Load()
	if c.ended.Load() != nil {
		t.cancel() // released while it was being armed
	}
	return t
}

// release ends the context, as the CancelFunc of context.WithDeadline
// would, and frees its timer if it has one.
func (c *deadlineCtx) release() {
	if t := c.timed.Load(); t != nil {
		t.cancel()
		return
	}
	if c.status() == nil {
		c.end(canceled)
	}
	if t := c.timed.Load(); t != nil {
		t.cancel() // armed meanwhile
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
	if e := c.status(); e != nil {
		return e.err
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
	if c.status() != nil {
		return c.arm().ctx.Value(key)
	}
	return c.Context.Value(key)
}
