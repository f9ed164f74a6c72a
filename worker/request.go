package worker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

// ErrNotStreaming is returned by Request.Send when the caller cannot receive
// partial replies: the broker delivered the request in MDP/0.1.
var ErrNotStreaming = errors.New("worker: request is not streaming")

// errHandlerReturned is returned by Request.Send after the handler returned.
var errHandlerReturned = errors.New("worker: Send after the handler returned")

// Request is one request delivered to a Handler. The handler owns it and may
// keep its fields after it returns; it must not call Send after it returns.
type Request struct {
	Service string      // the service the worker serves
	Method  string      // the method called, the first frame of the envelope
	ID      string      // the request id (the "id" header), "" if the caller sent none
	Headers mdp.Headers // a copy of the request headers, owned by the handler
	Payload []byte      // the request payload, owned by the handler
	Attempt int         // the delivery attempt, from the "attempt" header; 1 if absent

	job      *job
	ctx      context.Context
	replyHdr mdp.Headers // the headers of every reply: the id, echoed
	done     atomic.Bool
}

// Streaming reports whether the caller accepts partial replies, which is so
// when the broker delivered the request as an MDP/0.2 (MDPW02) REQUEST. It
// does not block and is safe for concurrent use.
func (r *Request) Streaming() bool { return r.job != nil && r.job.version == 2 }

// Send sends payload to the caller as one partial reply (an MDPW02 PARTIAL
// whose body is an "ok" reply envelope), ahead of the final reply the handler
// returns. It returns ErrNotStreaming if the request is not Streaming.
//
// Send is safe to call from the handler's goroutine only, and only until the
// handler returns. It blocks while the worker's outgoing queue is full, until
// there is room or the request's context ends (it then returns ctx.Err()). It
// returns an error wrapping domo.ErrUnavailable once the connection the
// request came on is lost (the caller will not see further replies), and
// domo.ErrTooLarge if the partial would break the worker's limits.
func (r *Request) Send(payload []byte) error {
	if !r.Streaming() {
		return ErrNotStreaming
	}
	if r.done.Load() {
		return errHandlerReturned
	}
	j := r.job
	if j.c.epoch.Load() != j.epoch {
		return fmt.Errorf("worker: partial reply to %s: %w", r.Method, domo.ErrUnavailable)
	}
	env := mdp.OKReply(r.replyHdr, payload)
	frames := j.frames(mdp.Partial, env.Append(make([][]byte, 0, 3)))
	if err := j.c.w.opts.limits.Check(frames); err != nil {
		return fmt.Errorf("worker: partial reply to %s: %w: %v", r.Method, domo.ErrTooLarge, err)
	}
	return j.c.deliver(r.ctx, outMsg{epoch: j.epoch, frames: frames})
}

// Handler serves the requests for one method. ServeMDP runs on one of the
// worker's pool goroutines, several at once for different requests, so an
// implementation must be safe for concurrent use. It may block; it should
// return soon after ctx ends (the caller's deadline passed or the worker is
// stopping). The returned payload becomes the reply; a returned error becomes
// an error reply, carrying its code if it is (or wraps) a *domo.Error and
// domo.CodeInternal otherwise.
type Handler interface {
	ServeMDP(ctx context.Context, req *Request) ([]byte, error)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, req *Request) ([]byte, error)

// ServeMDP calls f(ctx, req). It is as blocking and as goroutine-safe as f.
func (f HandlerFunc) ServeMDP(ctx context.Context, req *Request) ([]byte, error) {
	return f(ctx, req)
}
