package client

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
	"github.com/domo-framework/domo/tracing"
)

// call is one request waiting for its reply in Client.pending. The loop (or
// Close, or a failed send) removes it from the map and puts exactly one
// result in ch, both under Client.mu; a caller that gives up removes it
// itself, or, finding it gone, takes the result already in ch. So ch is
// empty whenever a call is back in the pool.
//
// The loop records where the request went (cn) and, for a Retry call, keeps
// its encoded request (om) for a re-send; these fields are guarded by
// Client.mu, and whoever removes the call from pending releases om (the
// loop takes om out of the call while it sends it, so it is never released
// under the loop's feet).
type call struct {
	ch     chan result // one slot; unused by streams
	timer  *time.Timer // WithTimeout's timer, for a ctx without a deadline
	stream *Stream     // set for a stream, which is not pooled

	retry    bool      // the caller allows a re-send (Retry)
	deadline time.Time // the request's deadline
	attempt  int       // attempts sent, 1 for the first
	cn       *conn     // the broker the request was last sent to; nil while not out
	om       *outMsg   // the request, kept for a re-send (Retry calls only)
}

// putCall resets cl and returns it to the pool. cl is out of pending.
func putCall(cl *call) {
	cl.retry, cl.deadline, cl.attempt, cl.cn, cl.om = false, time.Time{}, 0, nil, nil
	callPool.Put(cl)
}

type result struct {
	payload []byte   // envelope payload
	frames  [][]byte // a Raw reply's body
	err     error
}

var callPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &call{ch: make(chan result, 1), timer: t}
}}

// outMsg is one encoded request on its way to the loop, which releases it
// after the send. Callers never touch it after enqueueing it, so its buffers
// are reused.
type outMsg struct {
	frames  [][]byte
	body    [][]byte
	buf     []byte      // service, method and (copied) payload
	hdr     mdp.Headers // headers frame
	id      uint64      // request id; 0 for a Raw call
	raw     bool
	service []byte

	// For re-encoding with an attempt header (setAttempt).
	version mdp.Version
	method  []byte
	payload []byte
	hdrLen  int // length of hdr without an attempt header
}

const maxPooledBuf = 64 << 10

var outPool = sync.Pool{New: func() any {
	return &outMsg{frames: make([][]byte, 0, 8), body: make([][]byte, 0, 3)}
}}

func getOut() *outMsg { return outPool.Get().(*outMsg) }

func (om *outMsg) release() {
	clear(om.frames) // do not keep callers' payloads alive
	clear(om.body)
	om.frames, om.body = om.frames[:0], om.body[:0]
	if cap(om.buf) > maxPooledBuf {
		om.buf = nil
	}
	if cap(om.hdr) > maxPooledBuf {
		om.hdr = nil
	}
	om.id, om.raw, om.service = 0, false, nil
	om.method, om.payload, om.hdrLen = nil, nil, 0
	outPool.Put(om)
}

// setAttempt re-encodes om, an enveloped request, with the attempt header
// set to n: same id, same deadline, same everything else.
func (om *outMsg) setAttempt(n int) {
	var num [20]byte
	om.hdr = mdp.AppendHeader(om.hdr[:om.hdrLen], mdp.HeaderAttempt, strconv.AppendInt(num[:0], int64(n), 10))
	rb := mdp.RequestBody{Method: om.method, Headers: om.hdr, Payload: om.payload}
	om.body = rb.Append(om.body[:0])
	msg := mdp.Message{Role: mdp.Client, Version: om.version, Command: mdp.Request, Service: om.service, Body: om.body}
	frames, err := msg.Append(om.frames[:0])
	if err == nil { // it encoded before with a shorter header frame
		om.frames = frames
	}
}

// Call calls method ("service.method") with in encoded as JSON and decodes
// the reply's JSON payload into out (a pointer; nil to discard the reply).
// A nil in sends an empty payload. It blocks until the reply arrives, ctx
// ends, the WithTimeout deadline passes (if ctx has none) or the client is
// closed, and is safe for concurrent use.
//
// A remote failure is a *domo.Error (errors.Is matches the domo sentinels
// by code). A passed deadline matches both domo.ErrDeadlineExceeded and
// context.DeadlineExceeded; a canceled ctx both domo.ErrCanceled and
// context.Canceled; a closed client domo.ErrClosed.
func (c *Client) Call(ctx context.Context, method string, in, out any) error {
	var payload []byte
	if in != nil {
		p, err := json.Marshal(in)
		if err != nil {
			return c.fail(method, fmt.Errorf("encode request: %w", err))
		}
		payload = p
	}
	reply, err := c.invoke(ctx, method, payload, false, nil)
	if err != nil {
		return err
	}
	if out != nil && len(reply) > 0 {
		if err := json.Unmarshal(reply, out); err != nil {
			return c.fail(method, fmt.Errorf("decode reply: %w", err))
		}
	}
	return nil
}

// Invoke calls method ("service.method") with a raw payload inside the domo
// envelope and returns the reply's payload. It blocks like Call, reports
// errors like Call, and is safe for concurrent use. The payload is copied:
// the caller may reuse it as soon as Invoke returns.
//
// A method starting with "mmi." is a broker query: the whole name is the
// service and the method is empty.
func (c *Client) Invoke(ctx context.Context, method string, payload []byte, opts ...CallOption) ([]byte, error) {
	return c.invoke(ctx, method, payload, true, opts)
}

func (c *Client) invoke(ctx context.Context, name string, payload []byte, copyPayload bool, opts []CallOption) ([]byte, error) {
	service, method, err := splitMethod(name)
	if err != nil {
		return nil, c.fail(name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, c.fail(name, ctxErr(err))
	}
	deadline, hasDeadline := ctx.Deadline()
	if !hasDeadline {
		deadline = time.Now().Add(c.opts.timeout)
	}
	id := c.seq.Add(1)
	co := collect(traced(ctx, opts))
	om, err := c.encode(1, service, method, payload, copyPayload, id, deadline, co)
	if err != nil {
		return nil, c.fail(name, err)
	}

	cl := callPool.Get().(*call)
	cl.retry = co != nil && co.retry
	cl.deadline = deadline
	cl.attempt = 1
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		om.release()
		putCall(cl)
		return nil, c.fail(name, domo.ErrClosed)
	}
	c.pending[id] = cl
	c.mu.Unlock()

	var timer <-chan time.Time
	if !hasDeadline {
		cl.timer.Reset(c.opts.timeout)
		timer = cl.timer.C
	}
	if err := c.enqueue(ctx, timer, om); err != nil {
		om.release()
		c.abandon(id, cl)
		return nil, c.fail(name, err)
	}
	c.stats.calls.Add(1)

	select {
	case r := <-cl.ch:
		cl.timer.Stop()
		putCall(cl)
		if r.err != nil {
			return nil, c.fail(name, r.err)
		}
		return r.payload, nil
	case <-ctx.Done():
		err = ctxErr(ctx.Err())
	case <-timer:
		err = errDeadline
	}
	c.abandon(id, cl)
	return nil, c.fail(name, err)
}

// abandon removes a call whose caller gave up. A reply that comes later is
// dropped by the loop and counted as late.
func (c *Client) abandon(id uint64, cl *call) {
	cl.timer.Stop()
	c.mu.Lock()
	_, waiting := c.pending[id]
	if waiting {
		c.dropLocked(id, cl)
	}
	c.mu.Unlock()
	if !waiting {
		<-cl.ch // delivered under the lock before we looked; never blocks
	}
	putCall(cl)
}

// dropLocked removes call cl, with request id id, from pending: it no
// longer counts as in flight on its broker, and its kept request is
// released. c.mu is held.
func (c *Client) dropLocked(id uint64, cl *call) {
	delete(c.pending, id)
	if cl.cn != nil {
		cl.cn.inflight.Add(-1)
		cl.cn = nil
	}
	if cl.om != nil {
		cl.om.release()
		cl.om = nil
	}
}

// fail counts an error and wraps it with the method name.
func (c *Client) fail(name string, err error) error {
	c.stats.errors.Add(1)
	return fmt.Errorf("call %s: %w", name, err)
}

// splitMethod splits "tea.brew" into service "tea" and method "brew" at the
// last dot. A name starting with "mmi." is a service as a whole.
func splitMethod(name string) (service, method string, err error) {
	if strings.HasPrefix(name, mdp.MMIPrefix) {
		return name, "", nil
	}
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 {
		return "", "", domo.Errorf(domo.CodeInvalid, "method name %q is not service.method", name)
	}
	return name[:i], name[i+1:], nil
}

func collect(opts []CallOption) *callOptions {
	if len(opts) == 0 {
		return nil
	}
	co := new(callOptions)
	for _, o := range opts {
		o(co)
	}
	return co
}

// checkSize refuses a request that cannot fit the limits before any copy.
func (c *Client) checkSize(n int) error {
	l := c.opts.limits
	if (l.MaxFrameSize > 0 && n > l.MaxFrameSize) || (l.MaxMessageSize > 0 && n > l.MaxMessageSize) {
		return domo.Errorf(domo.CodeTooLarge, "request of %d bytes exceeds the limits", n)
	}
	return nil
}

// encode builds an enveloped request in MDP/0.1 or MDP/0.2. The service,
// method and, if copyPayload, the payload are copied into the message's own
// buffer; the caller keeps ownership of its slices.
func (c *Client) encode(v mdp.Version, service, method string, payload []byte, copyPayload bool, id uint64, deadline time.Time, co *callOptions) (*outMsg, error) {
	if err := c.checkSize(len(payload)); err != nil {
		return nil, err
	}
	if co != nil {
		for _, h := range co.headers {
			if len(h.name) == 0 || len(h.name) > 255 {
				return nil, domo.Errorf(domo.CodeInvalid, "header name %q must be 1 to 255 bytes", h.name)
			}
		}
	}
	om := getOut()
	n := len(service) + len(method)
	if copyPayload {
		n += len(payload)
	}
	buf := slices.Grow(om.buf[:0], n) // no reallocation below: the slices stay valid
	buf = append(buf, service...)
	svc := buf[:len(service):len(service)]
	buf = append(buf, method...)
	meth := buf[len(service):len(buf):len(buf)]
	if copyPayload {
		start := len(buf)
		buf = append(buf, payload...)
		payload = buf[start:len(buf):len(buf)]
	}
	om.buf = buf

	var idb [32]byte
	h := mdp.AppendHeader(om.hdr[:0], mdp.HeaderID, c.appendID(idb[:0], id))
	h = mdp.AppendDeadline(h, deadline)
	if co != nil {
		if co.retry {
			h = mdp.AppendHeader(h, mdp.HeaderRetry, "1")
		}
		for _, kv := range co.headers {
			h = mdp.AppendHeader(h, kv.name, kv.value)
		}
	}
	om.hdr = h

	rb := mdp.RequestBody{Method: meth, Headers: h, Payload: payload}
	om.body = rb.Append(om.body[:0])
	msg := mdp.Message{Role: mdp.Client, Version: v, Command: mdp.Request, Service: svc, Body: om.body}
	frames, err := msg.Append(om.frames[:0])
	om.frames = frames
	if err == nil {
		err = c.opts.limits.Check(frames)
		if err != nil {
			err = domo.Errorf(domo.CodeTooLarge, "%v", err)
		}
	}
	if err != nil {
		om.release()
		return nil, err
	}
	om.id = id
	om.version, om.service, om.method, om.payload, om.hdrLen = v, svc, meth, payload, len(h)
	return om, nil
}

// traced adds the W3C trace context of ctx, if it carries a span, to the
// request's headers, so the broker and the handler join the caller's trace.
func traced(ctx context.Context, opts []CallOption) []CallOption {
	tp, ts := tracing.Fields(ctx)
	if tp == "" {
		return opts
	}
	opts = append(opts[:len(opts):len(opts)], Header(mdp.HeaderTraceparent, tp))
	if ts != "" {
		opts = append(opts, Header(mdp.HeaderTracestate, ts))
	}
	return opts
}
