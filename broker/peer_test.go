package broker_test

import (
	"testing"
	"time"

	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// peer is a raw DEALER socket speaking MDP by hand, so the tests see the
// broker's frames exactly. It is used from the test goroutine only.
type peer struct {
	t    testing.TB
	sock *zsock.Socket
	poll *zsock.Poller
}

func dial(t testing.TB, endpoint string) *peer {
	t.Helper()
	s, err := zsock.New(zsock.Dealer)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(endpoint); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &peer{t: t, sock: s, poll: zsock.NewPoller(s)}
}

func (p *peer) send(frames ...[]byte) {
	p.t.Helper()
	if err := p.sock.Send(frames, true); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

func (p *peer) sendMsg(m mdp.Message) {
	p.t.Helper()
	frames, err := m.Append(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(frames...)
}

// recv waits up to d for a message; nil if none came.
func (p *peer) recv(d time.Duration) [][]byte {
	p.t.Helper()
	ready, err := p.poll.Wait(d)
	if err != nil {
		p.t.Fatal(err)
	}
	if !ready[0] {
		return nil
	}
	frames, err := p.sock.Recv(nil, true)
	if err != nil {
		p.t.Fatal(err)
	}
	return frames
}

// expect waits for a message that parses as MDP, skipping heartbeats.
func (p *peer) expect(what string) mdp.Message {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		frames := p.recv(time.Until(deadline))
		if frames == nil {
			break
		}
		m, err := mdp.Parse(frames)
		if err != nil {
			p.t.Fatalf("%s: Parse(%q) = %v", what, frames, err)
		}
		if m.Command == mdp.Heartbeat {
			continue
		}
		return m
	}
	p.t.Fatalf("%s: nothing received in 5s", what)
	return mdp.Message{}
}

// expectNothing checks that no message other than heartbeats comes in d.
func (p *peer) expectNothing(what string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		frames := p.recv(left)
		if frames == nil {
			return
		}
		if m, err := mdp.Parse(frames); err == nil && m.Command == mdp.Heartbeat {
			continue
		}
		p.t.Fatalf("%s: got %q; want nothing", what, frames)
	}
}

// plainWorker registers a plain MDP/0.1 worker (credit 1).
func plainWorker(t testing.TB, endpoint, service string) *peer {
	w := dial(t, endpoint)
	w.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte(service)})
	return w
}

// domoWorker registers a worker with the domo READY extension.
func domoWorker(t testing.TB, endpoint, service string, credit string, extra ...func(mdp.Headers) mdp.Headers) *peer {
	w := dial(t, endpoint)
	h := mdp.AppendHeader(nil, mdp.HeaderCredit, credit)
	for _, f := range extra {
		h = f(h)
	}
	w.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte(service), Body: [][]byte{h}})
	return w
}

// request builds a domo envelope body.
func request(method, id string, extra ...func(mdp.Headers) mdp.Headers) [][]byte {
	h := mdp.AppendHeader(nil, mdp.HeaderID, id)
	for _, f := range extra {
		h = f(h)
	}
	return (&mdp.RequestBody{Method: []byte(method), Headers: h, Payload: []byte(`{}`)}).Append(nil)
}

func withDeadline(t time.Time) func(mdp.Headers) mdp.Headers {
	return func(h mdp.Headers) mdp.Headers { return mdp.AppendDeadline(h, t) }
}

func withRetry(h mdp.Headers) mdp.Headers { return mdp.AppendHeader(h, mdp.HeaderRetry, "1") }

func clientV1(service string, body ...[]byte) mdp.Message {
	return mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte(service), Body: body}
}

func reply(req mdp.Message, body ...[]byte) mdp.Message {
	cmd := mdp.Reply
	if req.Version == 2 {
		cmd = mdp.Final
	}
	return mdp.Message{Role: mdp.Worker, Version: req.Version, Command: cmd, Address: req.Address, Body: body}
}
