package worker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// waitFor bounds every wait in these tests; nothing is asserted about speed.
const waitFor = 10 * time.Second

// fakeBroker is a ROUTER socket on a random loopback port, driven by the test
// goroutine (which owns it): enough of a broker to check the worker's side of
// the protocol frame by frame.
type fakeBroker struct {
	t      *testing.T
	sock   *zsock.Socket
	poller *zsock.Poller
	ep     string
}

func newFakeBroker(t *testing.T) *fakeBroker {
	t.Helper()
	s, err := zsock.New(zsock.Router)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := s.Bind("tcp://127.0.0.1:*")
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	b := &fakeBroker{t: t, sock: s, poller: zsock.NewPoller(s), ep: ep}
	t.Cleanup(func() { s.Close() })
	return b
}

// recv returns the next message (identity, then the MDP frames), failing the
// test if none comes within waitFor.
func (b *fakeBroker) recv() (id []byte, frames [][]byte) {
	b.t.Helper()
	id, frames, ok := b.tryRecv(waitFor)
	if !ok {
		b.t.Fatalf("fake broker: no message within %v", waitFor)
	}
	return id, frames
}

func (b *fakeBroker) tryRecv(d time.Duration) (id []byte, frames [][]byte, ok bool) {
	b.t.Helper()
	until := time.Now().Add(d)
	for {
		got, err := b.sock.Recv(nil, false)
		if err == nil {
			if len(got) < 2 {
				b.t.Fatalf("fake broker: message of %d frames", len(got))
			}
			return got[0], got[1:], true
		}
		if !errors.Is(err, zsock.ErrAgain) {
			b.t.Fatalf("fake broker: recv: %v", err)
		}
		left := time.Until(until)
		if left <= 0 {
			return nil, nil, false
		}
		if _, err := b.poller.Wait(left); err != nil {
			b.t.Fatalf("fake broker: poll: %v", err)
		}
	}
}

// expect returns the next message that is not a HEARTBEAT, checking that it
// is a worker command cmd.
func (b *fakeBroker) expect(cmd mdp.Command) ([]byte, mdp.Message, [][]byte) {
	b.t.Helper()
	for {
		id, frames := b.recv()
		m, err := mdp.Parse(frames)
		if err != nil {
			b.t.Fatalf("fake broker: Parse(%q) = %v", frames, err)
		}
		if m.Role != mdp.Worker {
			b.t.Fatalf("fake broker: got a %s message %q", m.Role, frames)
		}
		if m.Command == mdp.Heartbeat && cmd != mdp.Heartbeat {
			continue
		}
		if m.Command != cmd {
			b.t.Fatalf("fake broker: got %s %q; want %s", m.Command, frames, cmd)
		}
		return id, m, frames
	}
}

// expectReply returns the next reply for the request at addr, skipping
// heartbeats; want is Reply, Final or Partial.
func (b *fakeBroker) expectReply(want mdp.Command, addr string) mdp.ReplyBody {
	b.t.Helper()
	_, m, frames := b.expect(want)
	if string(m.Address) != addr {
		b.t.Fatalf("%s address = %q; want %q (frames %q)", want, m.Address, addr, frames)
	}
	r, err := mdp.ParseReply(m.Body)
	if err != nil {
		b.t.Fatalf("%s body %q: ParseReply = %v", want, m.Body, err)
	}
	return r
}

func (b *fakeBroker) send(id []byte, frames ...[]byte) {
	b.t.Helper()
	if err := b.sock.Send(append([][]byte{id}, frames...), true); err != nil {
		b.t.Fatalf("fake broker: send: %v", err)
	}
}

// request sends a REQUEST in MDP/0.1 (version 1) or 0.2 (version 2).
func (b *fakeBroker) request(id []byte, version mdp.Version, addr string, body ...[]byte) {
	b.t.Helper()
	m := mdp.Message{Role: mdp.Worker, Version: version, Command: mdp.Request, Address: []byte(addr), Body: body}
	frames, err := m.Append(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	b.send(id, frames...)
}

// call sends an MDP/0.1 domo request for method with the given id header.
func (b *fakeBroker) call(id []byte, addr, method, reqID string, payload string) {
	b.t.Helper()
	b.request(id, 1, addr, []byte(method), mdp.AppendHeader(nil, mdp.HeaderID, reqID), []byte(payload))
}

func (b *fakeBroker) heartbeat(id []byte) {
	b.send(id, nil, []byte(mdp.WorkerV1), []byte{0x04})
}

// start runs w against b and returns the identity its first READY came from.
// Cleanup closes the worker and waits for Run to return.
func start(t *testing.T, b *fakeBroker, w *Worker) []byte {
	t.Helper()
	errc := run(t, w, context.Background())
	t.Cleanup(func() {
		w.Close()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run = %v; want nil after Close", err)
			}
		case <-time.After(waitFor):
			t.Errorf("Run did not return within %v of Close", waitFor)
		}
	})
	id, _, _ := b.expect(mdp.Ready)
	return id
}

// run starts w.Run in a goroutine and returns its result channel.
func run(t *testing.T, w *Worker, ctx context.Context) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	return errc
}

// newWorker returns a worker on b with a quiet logger and test-sized timers:
// heartbeats every 50ms, and a liveness long enough that a test's own pace
// never makes the worker give the broker up.
func newWorker(b *fakeBroker, opts ...Option) *Worker {
	base := []Option{
		WithBroker(b.ep),
		WithHeartbeat(50*time.Millisecond, 200),
		WithReconnect(10*time.Millisecond, 50*time.Millisecond),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}
	return New("tea", append(base, opts...)...)
}

func headersEqual(t *testing.T, got mdp.Headers, want mdp.Headers) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("headers = %q; want %q", got, want)
	}
}

// waitUntil polls cond until it holds, failing after waitFor.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	until := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(until) {
			t.Fatalf("%s: not within %v", what, waitFor)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
