package client

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

// Phases of the one Raw call a Client has at a time.
const (
	rawIdle    = iota
	rawWaiting // a caller holds rawSem and waits on rawCh
	rawOrphan  // the caller gave up; the request is still out, and holds rawSem
)

// rawState tracks the Raw call in flight. A plain MDP reply carries no
// request id, so a Raw request stays "in flight", keeping the next Raw call
// waiting, until its reply arrives or one WithTimeout period passes after
// its caller gave up: a late reply can never be taken for the next call's.
// Guarded by Client.mu.
type rawState struct {
	phase   int
	service string
	gen     uint64      // counts Raw calls, so a stale orphan timer does nothing
	timer   *time.Timer // releases an orphan whose reply never comes
	cn      *conn       // the broker the request went to; nil while not out
}

// Raw sends a plain MDP/0.1 request, without the domo envelope, for workers
// that speak only MDP, and returns the reply's body frames. One Raw call is
// in flight per Client at a time; others wait their turn (on ctx). The reply
// is the next one for service that is not a domo envelope, or a broker error
// envelope without a request id, which becomes a *domo.Error. Raw blocks
// like Call and is safe for concurrent use. The body is copied.
//
// A plain reply carries no request id, so a Raw request whose caller gave
// up stays in flight, and the next Raw call waits, until its reply comes
// (and is dropped) or one WithTimeout period passes: a late reply is never
// taken for the next call's.
func (c *Client) Raw(ctx context.Context, service string, body ...[]byte) ([][]byte, error) {
	if service == "" {
		return nil, c.failRaw(service, domo.Errorf(domo.CodeInvalid, "empty service name"))
	}
	if err := ctx.Err(); err != nil {
		return nil, c.failRaw(service, ctxErr(err))
	}
	var timer <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(c.opts.timeout)
		defer t.Stop()
		timer = t.C
	}
	om, err := c.encodeRaw(service, body)
	if err != nil {
		return nil, c.failRaw(service, err)
	}

	// Take the one raw slot.
	select {
	case c.rawSem <- struct{}{}:
	default:
		select {
		case c.rawSem <- struct{}{}:
		case <-ctx.Done():
			om.release()
			return nil, c.failRaw(service, ctxErr(ctx.Err()))
		case <-timer:
			om.release()
			return nil, c.failRaw(service, errDeadline)
		case <-c.quit:
			om.release()
			return nil, c.failRaw(service, domo.ErrClosed)
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.rawSem
		om.release()
		return nil, c.failRaw(service, domo.ErrClosed)
	}
	c.raw.gen++
	c.raw.phase = rawWaiting
	c.raw.service = service
	c.raw.cn = nil
	c.mu.Unlock()

	if err := c.enqueue(ctx, timer, om); err != nil {
		om.release()
		c.giveUpRaw(false)
		return nil, c.failRaw(service, err)
	}
	c.stats.calls.Add(1)

	select {
	case r := <-c.rawCh:
		<-c.rawSem
		if r.err != nil {
			return nil, c.failRaw(service, r.err)
		}
		return r.frames, nil
	case <-ctx.Done():
		err = ctxErr(ctx.Err())
	case <-timer:
		err = errDeadline
	}
	c.giveUpRaw(true)
	return nil, c.failRaw(service, err)
}

// giveUpRaw ends the caller's wait. If the request went out and no reply
// has come, the slot passes to the orphaned request.
func (c *Client) giveUpRaw(sent bool) {
	c.mu.Lock()
	if c.raw.phase == rawWaiting {
		if sent {
			c.raw.phase = rawOrphan
			gen := c.raw.gen
			c.raw.timer = time.AfterFunc(c.opts.timeout, func() { c.expireRawOrphan(gen) })
			c.mu.Unlock()
			return
		}
		c.raw.phase = rawIdle
		c.mu.Unlock()
		<-c.rawSem
		return
	}
	c.mu.Unlock()
	<-c.rawCh // delivered (or failed by Close) before we looked
	<-c.rawSem
}

func (c *Client) expireRawOrphan(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.raw.phase == rawOrphan && c.raw.gen == gen {
		c.raw.phase = rawIdle
		<-c.rawSem
	}
}

// deliverLocked hands r to the Raw call for service, if there is one. It
// reports whether a waiting caller took it. c.mu is held.
func (r *rawState) deliverLocked(c *Client, service []byte, res result) bool {
	if string(service) != r.service {
		return false
	}
	switch r.phase {
	case rawWaiting:
		r.phase = rawIdle
		c.rawCh <- res // the caller takes it and frees the slot
		return true
	case rawOrphan:
		r.phase = rawIdle
		r.timer.Stop()
		<-c.rawSem
	}
	return false
}

// closeLocked fails the waiting Raw call and frees an orphaned slot. c.mu
// is held.
func (r *rawState) closeLocked(c *Client) {
	switch r.phase {
	case rawWaiting:
		r.phase = rawIdle
		c.rawCh <- result{err: domo.ErrClosed}
	case rawOrphan:
		r.phase = rawIdle
		r.timer.Stop()
		<-c.rawSem
	}
}

// lostLocked ends the Raw call if its request went to broker cn, which is
// dead or removed: a waiting caller gets err, an orphan frees the slot.
// c.mu is held.
func (r *rawState) lostLocked(c *Client, cn *conn, err error) {
	if r.cn != cn {
		return
	}
	r.cn = nil
	switch r.phase {
	case rawWaiting:
		r.phase = rawIdle
		c.rawCh <- result{err: err}
	case rawOrphan:
		r.phase = rawIdle
		r.timer.Stop()
		<-c.rawSem
	}
}

// deliverRaw routes a plain reply, or an id-less broker error, from the
// loop.
func (c *Client) deliverRaw(service []byte, res result) {
	c.mu.Lock()
	ok := c.raw.deliverLocked(c, service, res)
	c.mu.Unlock()
	if !ok {
		c.late("raw reply with no raw call waiting")
	}
}

func (c *Client) failRaw(service string, err error) error {
	c.stats.errors.Add(1)
	return fmt.Errorf("raw %s: %w", service, err)
}

// encodeRaw builds a plain MDP/0.1 request, copying service and body.
func (c *Client) encodeRaw(service string, body [][]byte) (*outMsg, error) {
	n := len(service)
	for _, b := range body {
		n += len(b)
	}
	if err := c.checkSize(n); err != nil {
		return nil, err
	}
	om := getOut()
	buf := slices.Grow(om.buf[:0], n) // no reallocation below: the slices stay valid
	buf = append(buf, service...)
	svc := buf[:len(service):len(service)]
	frames := om.body[:0]
	for _, b := range body {
		start := len(buf)
		buf = append(buf, b...)
		frames = append(frames, buf[start:len(buf):len(buf)])
	}
	om.buf, om.body = buf, frames
	msg := mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: svc, Body: frames}
	out, err := msg.Append(om.frames[:0])
	om.frames = out
	if err == nil {
		if err = c.opts.limits.Check(out); err != nil {
			err = domo.Errorf(domo.CodeTooLarge, "%v", err)
		}
	}
	if err != nil {
		om.release()
		return nil, err
	}
	om.raw, om.service = true, svc
	return om, nil
}

// Services asks the broker for its services (MMI mmi.services). It blocks
// like Call and is safe for concurrent use.
func (c *Client) Services(ctx context.Context) ([]mdp.ServiceInfo, error) {
	p, err := c.invoke(ctx, mdp.MMIServices, nil, false, nil)
	if err != nil {
		return nil, err
	}
	var out []mdp.ServiceInfo
	if err := json.Unmarshal(p, &out); err != nil {
		return nil, c.fail(mdp.MMIServices, fmt.Errorf("decode reply: %w", err))
	}
	return out, nil
}
