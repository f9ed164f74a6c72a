package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
	"github.com/domo-framework/domo/tracing"
)

// serve runs on a pool goroutine: it answers one job and hands the reply to
// the job's connection loop. Every job yields exactly one final outMsg, which
// is how the loop counts requests in flight.
func (w *Worker) serve(ctx context.Context, j *job) {
	final := outMsg{epoch: j.epoch, final: true}
	if ctx.Err() != nil || j.c.epoch.Load() != j.epoch {
		w.stats.dropped.Add(1)
	} else {
		body := w.answer(ctx, j)
		if ctx.Err() != nil {
			// The worker stopped while the handler ran: the broker will
			// report the request lost (and may retry it), which says more
			// than the handler's "canceled".
			w.stats.dropped.Add(1)
			j.c.deliver(ctx, final)
			return
		}
		final.frames = j.finalFrames(body)
		if err := w.opts.limits.Check(final.frames); err != nil {
			w.log.Warn("worker: reply over the limits", "err", err)
			e := domo.Errorf(domo.CodeTooLarge, "reply: %v", err)
			env := mdp.ErrorReply(requestReplyHeaders(j.body), e)
			final.frames = j.frames(mdp.Reply, env.Append(nil))
		}
	}
	// Skipped (the worker is stopping, or the connection that brought the
	// request is gone): nothing to send, but the loop still counts it.
	j.c.deliver(ctx, final)
}

func requestReplyHeaders(body [][]byte) mdp.Headers {
	if env, err := mdp.ParseRequest(body); err == nil {
		return appendReplyHeaders(nil, env.Headers)
	}
	return mdp.Headers{mdp.HeadersMagic}
}

// answer computes the reply body for j.
func (w *Worker) answer(ctx context.Context, j *job) [][]byte {
	env, err := mdp.ParseRequest(j.body)
	if err != nil {
		if raw := w.raw.Load(); raw != nil {
			return w.answerRaw(ctx, *raw, j.body)
		}
		w.stats.failed.Add(1)
		e := domo.Errorf(domo.CodeInvalid, "not a domo envelope")
		return errorBody(mdp.Headers{mdp.HeadersMagic}, e)
	}
	hdr := appendReplyHeaders(j.hdrRoom[:0], env.Headers)
	m, ok := (*w.handlers.Load())[string(env.Method)]
	if !ok {
		w.stats.failed.Add(1)
		return errorBody(hdr, domo.Errorf(domo.CodeUnknownMethod, "service %q has no method %q", w.service, env.Method))
	}
	method, h := m.name, m.h
	if dl, ok := env.Headers.Deadline(); ok {
		if !time.Now().Before(dl) {
			w.stats.failed.Add(1)
			return errorBody(hdr, domo.Errorf(domo.CodeDeadlineExceeded, "deadline passed before %q started", method))
		}
		dctx := withLazyDeadline(ctx, dl)
		defer dctx.release()
		ctx = dctx
	}
	ctx, span := tracing.StartHandler(ctx, env.Headers, w.service, method)
	defer span.End()
	req := &Request{
		Service:  w.service,
		Method:   method,
		Headers:  bytes.Clone(env.Headers),
		Payload:  env.Payload,
		Attempt:  1,
		job:      j,
		ctx:      ctx,
		replyHdr: hdr,
	}
	if id, ok := env.Headers.Get(mdp.HeaderID); ok {
		req.ID = string(id)
	}
	if n, ok := env.Headers.Int(mdp.HeaderAttempt); ok && n >= 1 {
		req.Attempt = int(n)
	}
	payload, err := w.call(ctx, h, req)
	req.done.Store(true)
	tracing.Fail(span, err)
	if err != nil {
		w.stats.failed.Add(1)
		return errorBody(hdr, wireError(ctx, err))
	}
	w.stats.handled.Add(1)
	env2 := mdp.OKReply(hdr, payload)
	return env2.Append(j.replyBody[:0])
}

// call runs the handler, turning a panic into an internal error.
func (w *Worker) call(ctx context.Context, h Handler, req *Request) (payload []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			w.stats.panics.Add(1)
			w.log.ErrorContext(ctx, "worker: handler panicked", "method", req.Method, "request_id", req.ID,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			payload, err = nil, domo.Errorf(domo.CodeInternal, "method %q failed", req.Method)
		}
	}()
	return h.ServeMDP(ctx, req)
}

// answerRaw runs the raw handler for a plain MDP body.
func (w *Worker) answerRaw(ctx context.Context, fn rawFunc, body [][]byte) (reply [][]byte) {
	defer func() {
		if p := recover(); p != nil {
			w.stats.panics.Add(1)
			w.stats.failed.Add(1)
			w.log.Error("worker: raw handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			reply = errorBody(mdp.Headers{mdp.HeadersMagic}, domo.Errorf(domo.CodeInternal, "request failed"))
		}
	}()
	reply, err := fn(ctx, body)
	if err != nil {
		w.stats.failed.Add(1)
		return errorBody(mdp.Headers{mdp.HeadersMagic}, wireError(ctx, err))
	}
	w.stats.handled.Add(1)
	return reply
}

// wireError maps a handler's error to the error sent: a *domo.Error as is,
// the context's own errors to their codes, anything else as internal.
func wireError(ctx context.Context, err error) *domo.Error {
	var e *domo.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.DeadlineExceeded):
		return domo.Errorf(domo.CodeDeadlineExceeded, "%v", err)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return domo.Errorf(domo.CodeCanceled, "%v", err)
	}
	return domo.AsError(err)
}

func errorBody(hdr mdp.Headers, e *domo.Error) [][]byte {
	env := mdp.ErrorReply(hdr, e)
	return env.Append(make([][]byte, 0, 3))
}
