package worker

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// rawClient is a bare DEALER speaking the client side of MDP, driven by the
// test goroutine: the worker package does not import the client SDK.
type rawClient struct {
	t      *testing.T
	sock   *zsock.Socket
	poller *zsock.Poller
}

func newRawClient(t *testing.T, ep string) *rawClient {
	t.Helper()
	s, err := zsock.New(zsock.Dealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Connect(ep); err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, sock: s, poller: zsock.NewPoller(s)}
}

func (c *rawClient) send(version mdp.Version, method, id, payload string) {
	c.t.Helper()
	m := mdp.Message{Role: mdp.Client, Version: version, Command: mdp.Request, Service: []byte("tea"),
		Body: [][]byte{[]byte(method), mdp.AppendHeader(nil, mdp.HeaderID, id), []byte(payload)}}
	frames, err := m.Append(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.sock.Send(frames, true); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) recv() (mdp.Message, mdp.ReplyBody) {
	c.t.Helper()
	m, r, ok := c.tryRecv(waitFor)
	if !ok {
		c.t.Fatalf("client: no reply within %v", waitFor)
	}
	return m, r
}

func (c *rawClient) tryRecv(d time.Duration) (mdp.Message, mdp.ReplyBody, bool) {
	c.t.Helper()
	until := time.Now().Add(d)
	for {
		frames, err := c.sock.Recv(nil, false)
		if err == nil {
			m, err := mdp.Parse(frames)
			if err != nil {
				c.t.Fatalf("client: Parse(%q) = %v", frames, err)
			}
			r, err := mdp.ParseReply(m.Body)
			if err != nil {
				c.t.Fatalf("client: ParseReply(%q) = %v", m.Body, err)
			}
			return m, r, true
		}
		if !errors.Is(err, zsock.ErrAgain) {
			c.t.Fatal(err)
		}
		left := time.Until(until)
		if left <= 0 {
			return mdp.Message{}, mdp.ReplyBody{}, false
		}
		if _, err := c.poller.Wait(left); err != nil {
			c.t.Fatal(err)
		}
	}
}

// callUntilOK repeats a call until it succeeds: the worker may not have said
// READY to the broker yet, or may be reconnecting, and a request sent while
// the broker was away may be lost with its connection.
func (c *rawClient) callUntilOK(method, payload string) mdp.ReplyBody {
	c.t.Helper()
	until := time.Now().Add(waitFor)
	for i := 0; ; i++ {
		if time.Now().After(until) {
			c.t.Fatalf("call %s: no success within %v", method, waitFor)
		}
		id := "try" + strconv.Itoa(i)
		c.send(1, method, id, payload)
		attempt := time.Now().Add(time.Second)
		for {
			_, r, ok := c.tryRecv(time.Until(attempt))
			if !ok {
				break // resend
			}
			if hid, _ := r.Headers.Get(mdp.HeaderID); string(hid) != id {
				continue // the answer to an earlier try
			}
			if r.OK() {
				return r
			}
			time.Sleep(10 * time.Millisecond) // pacing retries, not asserting speed
			break
		}
	}
}

func realWorker(t *testing.T, ep string) *Worker {
	w := New("tea", WithBroker(ep), WithConcurrency(4), WithLogger(quiet()),
		WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness),
		WithReconnect(10*time.Millisecond, 100*time.Millisecond))
	w.HandleFunc("echo", echo)
	w.HandleFunc("count", func(ctx context.Context, req *Request) ([]byte, error) {
		n, _ := strconv.Atoi(string(req.Payload))
		for i := range n {
			if err := req.Send([]byte(strconv.Itoa(i))); err != nil && !errors.Is(err, ErrNotStreaming) {
				return nil, err
			}
		}
		return []byte("done"), nil
	})
	return w
}

func startReal(t *testing.T, w *Worker) {
	errc := run(t, w, context.Background())
	t.Cleanup(func() {
		w.Close()
		select {
		case <-errc:
		case <-time.After(waitFor):
			t.Error("Run did not return")
		}
	})
}

func TestRealBroker(t *testing.T) {
	_, ep := testbroker.Start(t)
	w := realWorker(t, ep)
	startReal(t, w)
	c := newRawClient(t, ep)
	if r := c.callUntilOK("echo", "hello"); string(r.Payload) != "hello" {
		t.Fatalf("echo = %q; want hello", r.Payload)
	}

	// MDP/0.2 caller: partials then FINAL.
	c.send(2, "count", "s", "3")
	for i := range 3 {
		m, r := c.recv()
		if m.Command != mdp.Partial || string(r.Payload) != strconv.Itoa(i) {
			t.Fatalf("stream item %d = %s %q; want PARTIAL %d", i, m.Command, r.Payload, i)
		}
	}
	if m, r := c.recv(); m.Command != mdp.Final || string(r.Payload) != "done" {
		t.Fatalf("stream end = %s %q; want FINAL done", m.Command, r.Payload)
	}
	// MDP/0.1 caller of the same method: no partials, one reply.
	c.send(1, "count", "p", "3")
	if m, r := c.recv(); m.Version != 1 || string(r.Payload) != "done" {
		t.Fatalf("MDP/0.1 call = v%d %q; want one reply done", m.Version, r.Payload)
	}
}

// TestRealBrokerRestart: the broker goes away and a new one takes its
// endpoint; the worker finds it and serves again.
func TestRealBrokerRestart(t *testing.T) {
	b1, ep := testbroker.Start(t)
	w := realWorker(t, ep)
	startReal(t, w)
	c := newRawClient(t, ep)
	c.callUntilOK("echo", "before")

	b1.Close()
	var b2 *broker.Broker
	waitUntil(t, "restart the broker on "+ep, func() bool {
		cfg := testbroker.Config(t)
		cfg.Listen = []string{ep}
		b, err := broker.New(cfg)
		if err != nil {
			return false // the port may linger briefly
		}
		b2 = b
		return true
	})
	done := make(chan error, 1)
	go func() { done <- b2.Run(context.Background()) }()
	t.Cleanup(func() { b2.Close(); <-done })

	if r := c.callUntilOK("echo", "after"); string(r.Payload) != "after" {
		t.Fatalf("echo after restart = %q", r.Payload)
	}
	if s := w.Stats(); s.Reconnects < 1 {
		t.Errorf("Stats().Reconnects = %d; want at least 1", s.Reconnects)
	}
}

// workersOf returns how many workers of tea broker b has.
func workersOf(t *testing.T, b *broker.Broker) int {
	t.Helper()
	s, err := b.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range s.Services {
		if svc.Name == "tea" {
			return svc.Workers
		}
	}
	return 0
}

func waitWorkersOf(t *testing.T, b *broker.Broker, want int) {
	t.Helper()
	until := time.Now().Add(waitFor)
	for workersOf(t, b) != want {
		if time.Now().After(until) {
			t.Fatalf("broker has %d tea workers; want %d", workersOf(t, b), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// staticSource is a BrokerSource whose set the test changes.
type staticSource struct{ sets chan []string }

func (s staticSource) Watch(ctx context.Context, fn func([]string)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case set := <-s.sets:
			fn(set)
		}
	}
}

func TestServesEveryBroker(t *testing.T) {
	b1, ep1 := testbroker.Start(t)
	b2, ep2 := testbroker.Start(t)
	b3, ep3 := testbroker.Start(t)
	src := staticSource{sets: make(chan []string)}
	w := realWorker(t, ep1)
	w.opts.endpoints = []string{ep1, ep2}
	w.opts.discovery = src
	startReal(t, w)
	waitWorkersOf(t, b1, 1)
	waitWorkersOf(t, b2, 1)
	for _, ep := range []string{ep1, ep2} {
		if r := newRawClient(t, ep).callUntilOK("echo", "via "+ep); string(r.Payload) != "via "+ep {
			t.Fatalf("call via %s = %q", ep, r.Payload)
		}
	}

	// Discovery reports a new set: join b3, leave b1.
	src.sets <- []string{ep2, ep3}
	waitWorkersOf(t, b3, 1)
	waitWorkersOf(t, b1, 0) // the worker said DISCONNECT
	if r := newRawClient(t, ep3).callUntilOK("echo", "new"); string(r.Payload) != "new" {
		t.Fatalf("call via the joined broker = %q", r.Payload)
	}
	if n := workersOf(t, b2); n != 1 {
		t.Fatalf("the broker kept in the set has %d workers; want 1", n)
	}
}
