package client

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// fakeBroker is a ROUTER on a random loopback port, owned by one goroutine,
// that answers as an MDP broker would. With a handler it answers on its own
// loop; without one it hands each request to the test through reqs, and the
// test answers with send.
type fakeBroker struct {
	endpoint string
	handle   func(r request) [][][]byte // runs on the broker goroutine
	reqs     chan request
	out      chan [][]byte
	waker    *zsock.Waker
	quit     chan struct{}
	done     chan struct{}

	probes atomic.Int64 // liveness probes received
	mute   atomic.Bool  // receive everything, answer nothing: a stalled broker
}

// request is one message the fake broker received.
type request struct {
	identity []byte
	frames   [][]byte // after the identity
	msg      mdp.Message
	env      mdp.RequestBody
	envErr   error // not an envelope: a raw request
}

const testWait = 5 * time.Second

func startBroker(t testing.TB, handle func(r request) [][][]byte) *fakeBroker {
	t.Helper()
	router, err := zsock.New(zsock.Router)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := router.Bind("tcp://127.0.0.1:*")
	if err != nil {
		router.Close()
		t.Fatal(err)
	}
	w, err := zsock.NewWaker()
	if err != nil {
		router.Close()
		t.Fatal(err)
	}
	b := &fakeBroker{
		endpoint: ep,
		handle:   handle,
		reqs:     make(chan request, 4096),
		out:      make(chan [][]byte, 4096),
		waker:    w,
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go b.loop(t, router)
	t.Cleanup(func() {
		close(b.quit)
		b.waker.Wake()
		<-b.done
		router.Close()
		b.waker.Close()
	})
	return b
}

func (b *fakeBroker) loop(t testing.TB, router *zsock.Socket) {
	defer close(b.done)
	poller := zsock.NewPoller(b.waker.Socket(), router)
	var buf [][]byte
	for {
		ready, err := poller.Wait(-1)
		if err != nil {
			t.Errorf("fake broker: poll: %v", err)
			return
		}
		if ready[0] {
			b.waker.Drain()
		}
		select {
		case <-b.quit:
			return
		default:
		}
	sending:
		for {
			select {
			case frames := <-b.out:
				if err := router.Send(frames, true); err != nil {
					t.Errorf("fake broker: send: %v", err)
				}
			default:
				break sending
			}
		}
		if !ready[1] {
			continue
		}
		for {
			buf, err = router.Recv(buf[:0], false)
			if errors.Is(err, zsock.ErrAgain) {
				break
			}
			if err != nil {
				t.Errorf("fake broker: recv: %v", err)
				return
			}
			r := request{identity: buf[0], frames: append([][]byte(nil), buf[1:]...)}
			if r.msg, err = mdp.Parse(r.frames); err != nil {
				t.Errorf("fake broker: parse %q: %v", r.frames, err)
				continue
			}
			r.env, r.envErr = mdp.ParseRequest(r.msg.Body)
			if b.mute.Load() {
				continue
			}
			if r.envErr != nil && string(r.msg.Service) == mdp.MMIService && len(r.msg.Body) == 1 && string(r.msg.Body[0]) == mdp.MMIBatch {
				// A client's liveness probe: answer as an RFC 8 broker.
				b.probes.Add(1)
				ans := encodeTo(r.identity, mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: r.msg.Service, Body: [][]byte{[]byte(mdp.MMINotFound)}})
				if err := router.Send(ans, true); err != nil {
					t.Errorf("fake broker: send: %v", err)
				}
				continue
			}
			if b.handle == nil {
				select {
				case b.reqs <- r:
				case <-b.quit:
					return
				}
				continue
			}
			for _, reply := range b.handle(r) {
				if err := router.Send(reply, true); err != nil {
					t.Errorf("fake broker: send: %v", err)
				}
			}
		}
	}
}

// send queues frames (identity first) for the broker to send.
func (b *fakeBroker) send(frames [][]byte) {
	b.out <- frames
	b.waker.Wake()
}

// next returns the next request, failing the test after testWait.
func (b *fakeBroker) next(t testing.TB) request {
	t.Helper()
	select {
	case r := <-b.reqs:
		return r
	case <-time.After(testWait):
		t.Fatal("fake broker: no request")
		return request{}
	}
}

// reply builds an MDP/0.1 enveloped reply to r: [identity, "", "MDPC01",
// service, status, headers (id echoed), payload].
func reply(r request, status string, payload []byte) [][]byte {
	return replyV(r, 1, mdp.Request, status, payload)
}

// replyV builds an enveloped reply in MDP version v with command cmd
// (mdp.Request for an MDPC01 reply, mdp.Partial or mdp.Final for MDPC02).
func replyV(r request, v mdp.Version, cmd mdp.Command, status string, payload []byte) [][]byte {
	var h mdp.Headers
	if id, ok := r.env.Headers.Get(mdp.HeaderID); ok {
		h = mdp.AppendHeader(h, mdp.HeaderID, id)
	} else {
		h = mdp.Headers{mdp.HeadersMagic}
	}
	body := mdp.ReplyBody{Status: []byte(status), Headers: h, Payload: payload}
	return encodeTo(r.identity, mdp.Message{Role: mdp.Client, Version: v, Command: cmd, Service: r.msg.Service, Body: body.Append(nil)})
}

// errorReply builds an MDP/0.1 error reply carrying e.
func errorReply(r request, e *domo.Error) [][]byte {
	var h mdp.Headers
	if id, ok := r.env.Headers.Get(mdp.HeaderID); ok {
		h = mdp.AppendHeader(h, mdp.HeaderID, id)
	}
	body := mdp.ErrorReply(h, e)
	return encodeTo(r.identity, mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: r.msg.Service, Body: body.Append(nil)})
}

func encodeTo(identity []byte, m mdp.Message) [][]byte {
	frames, err := m.Append([][]byte{identity})
	if err != nil {
		panic(err)
	}
	return frames
}

// echo answers every enveloped request with its own payload.
func echo(r request) [][][]byte {
	return [][][]byte{reply(r, mdp.StatusOK, r.env.Payload)}
}

func newClient(t testing.TB, b *fakeBroker, opts ...Option) *Client {
	t.Helper()
	c, err := New(append([]Option{WithBroker(b.endpoint)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds, failing the test after testWait.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
