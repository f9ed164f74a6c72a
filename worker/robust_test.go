package worker

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

var smallLimits = mdp.Limits{MaxFrames: 8, MaxFrameSize: 1024, MaxMessageSize: 4096}

func TestGarbageFromBroker(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b, WithLimits(smallLimits))
	w.HandleFunc("echo", echo)
	id := start(t, b, w)

	bs := func(s ...string) [][]byte {
		f := make([][]byte, len(s))
		for i := range s {
			f[i] = []byte(s[i])
		}
		return f
	}
	garbage := map[string][][]byte{
		"junk":                   bs("junk"),
		"empty frame only":       bs(""),
		"header only":            bs("", "MDPW01"),
		"unknown command":        bs("", "MDPW01", "\x09"),
		"two-byte command":       bs("", "MDPW01", "\x02\x02"),
		"request no address":     bs("", "MDPW01", "\x02"),
		"address without empty":  bs("", "MDPW01", "\x02", "addr", "x"),
		"client message":         bs("", "MDPC01", "tea", "body"),
		"READY from the broker":  bs("MDPW02", "\x01", "tea"),
		"REPLY to a worker":      bs("", "MDPW01", "\x03", "a", ""),
		"heartbeat with a frame": bs("", "MDPW01", "\x04", "extra"),
		"unknown protocol":       bs("", "MDPX99", "\x02", "a", ""),
		"too many frames":        bs("", "MDPW01", "\x02", "a", "", "1", "2", "3", "4", "5"),
		"frame over the limit":   {{}, []byte("MDPW01"), {2}, []byte("a"), {}, bytes.Repeat([]byte("x"), 2000)},
	}
	for name, frames := range garbage {
		t.Log("sending", name)
		b.send(id, frames...)
	}
	// Bodies that are not domo envelopes, answered as invalid requests.
	notEnvelopes := map[string][][]byte{
		"bad1": bs("echo", "\xd1\x05ab", "payload"),         // headers run past the frame
		"bad2": bs("echo", "no magic", "payload"),           // not a headers frame
		"bad3": bs("just one frame"),                        // plain MDP body
		"bad4": bs("echo", "\xd1"),                          // two frames
		"bad5": {[]byte("echo"), {0xd1, 0x00}, []byte("p")}, // empty header name
	}
	for addr, body := range notEnvelopes {
		b.request(id, 1, addr, body...)
	}
	for range notEnvelopes {
		_, m, _ := b.expect(mdp.Reply)
		r, err := mdp.ParseReply(m.Body)
		if err != nil || string(r.Status) != string(domo.CodeInvalid) || !strings.Contains(string(r.Payload), "not a domo envelope") {
			t.Errorf("reply to %q = %q (%v); want an invalid error envelope", m.Address, m.Body, err)
		}
	}
	b.call(id, "alive", "echo", "1", "still serving")
	if r := b.expectReply(mdp.Reply, "alive"); !r.OK() || string(r.Payload) != "still serving" {
		t.Fatalf("after garbage: %s %q; want ok", r.Status, r.Payload)
	}
	if s := w.Stats(); s.Malformed != uint64(len(garbage)) {
		t.Errorf("Stats().Malformed = %d; want %d", s.Malformed, len(garbage))
	}
	// Batches whose message does not unpack, or is itself a batch: each
	// dropped and counted. (A batch also tells the worker that this broker
	// takes batches; its lone replies still go as plain messages.)
	b.send(id, bs(mdp.BatchHeader, "\x05a")...)
	b.send(id, []byte(mdp.BatchHeader), mdp.AppendPacked(nil, bs(mdp.BatchHeader, "x")))
	b.call(id, "alive2", "echo", "2", "still")
	if r := b.expectReply(mdp.Reply, "alive2"); !r.OK() {
		t.Fatalf("after bad batches: %s %q; want ok", r.Status, r.Payload)
	}
	if s := w.Stats(); s.Malformed != uint64(len(garbage))+2 {
		t.Errorf("Stats().Malformed after bad batches = %d; want %d", s.Malformed, len(garbage)+2)
	}
}

// TestRandomFrames throws random messages built from protocol-like pieces
// at the worker; it must neither crash nor stop serving.
func TestRandomFrames(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b, WithLimits(smallLimits))
	w.HandleFunc("echo", echo)
	id := start(t, b, w)
	pieces := [][]byte{{}, []byte("MDPW01"), []byte("MDPW02"), {1}, {2}, {3}, {4}, {5}, {6}, {0xd1}, {0xd1, 1, 'x', 0, 0, 0, 1, 'y'}, []byte("echo"), []byte("addr"), {0xff, 0xff}}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		n := 1 + rng.IntN(9)
		frames := make([][]byte, n)
		for i := range frames {
			frames[i] = pieces[rng.IntN(len(pieces))]
		}
		if n >= 3 && bytes.Equal(frames[1], []byte("MDPW01")) && bytes.Equal(frames[2], []byte{5}) {
			frames[2] = []byte{4} // a real DISCONNECT would make it reconnect, which is fine but slows the test
		}
		b.send(id, frames...)
	}
	// Whatever the garbage made it answer, an echo still comes back.
	b.call(id, "alive", "echo", "1", "ok")
	for {
		_, frames := b.recv()
		if m, err := mdp.Parse(frames); err == nil && string(m.Address) == "alive" {
			break
		}
	}
}

func TestHandleRaw(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	w.HandleRaw(func(ctx context.Context, body [][]byte) ([][]byte, error) {
		if len(body) == 0 {
			return nil, errors.New("empty body")
		}
		out := make([][]byte, len(body))
		for i, f := range body {
			out[i] = bytes.ToUpper(f)
		}
		return out, nil
	})
	w.HandleFunc("echo", echo)
	id := start(t, b, w)

	b.request(id, 1, "r1", []byte("hello"), []byte("world"))
	_, m, _ := b.expect(mdp.Reply)
	if string(m.Address) != "r1" || len(m.Body) != 2 || string(m.Body[0]) != "HELLO" || string(m.Body[1]) != "WORLD" {
		t.Fatalf("raw reply = %q %q; want r1 [HELLO WORLD]", m.Address, m.Body)
	}
	b.request(id, 2, "r2", []byte("streamed"))
	_, m, _ = b.expect(mdp.Final)
	if string(m.Address) != "r2" || len(m.Body) != 1 || string(m.Body[0]) != "STREAMED" {
		t.Fatalf("raw FINAL = %q %q; want r2 [STREAMED]", m.Address, m.Body)
	}
	b.request(id, 1, "r3")
	if r := b.expectReply(mdp.Reply, "r3"); string(r.Status) != string(domo.CodeInternal) {
		t.Fatalf("raw error = %s %s; want internal", r.Status, r.Payload)
	}
	// Envelopes still go to the method handlers.
	b.call(id, "e", "echo", "1", "enveloped")
	if r := b.expectReply(mdp.Reply, "e"); !r.OK() || string(r.Payload) != "enveloped" {
		t.Fatalf("envelope with HandleRaw set: %s %q", r.Status, r.Payload)
	}
}

func TestReplyOverLimits(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b, WithLimits(smallLimits))
	sendErr := make(chan error, 1)
	w.HandleFunc("big", func(ctx context.Context, req *Request) ([]byte, error) {
		if req.Streaming() {
			sendErr <- req.Send(make([]byte, 2000))
			return []byte("small"), nil
		}
		return make([]byte, 2000), nil
	})
	id := start(t, b, w)
	b.call(id, "big", "big", "1", "")
	r := b.expectReply(mdp.Reply, "big")
	if string(r.Status) != string(domo.CodeTooLarge) {
		t.Fatalf("reply over the limits: %s %s; want too_large", r.Status, r.Payload)
	}
	headersEqual(t, r.Headers, mdp.AppendHeader(nil, mdp.HeaderID, "1"))
	b.request(id, 2, "big2", []byte("big"), mdp.AppendHeader(nil, mdp.HeaderID, "2"), nil)
	if r := b.expectReply(mdp.Final, "big2"); !r.OK() {
		t.Fatalf("final after a refused partial: %s %s", r.Status, r.Payload)
	}
	if err := <-sendErr; !errors.Is(err, domo.ErrTooLarge) {
		t.Errorf("Send over the limits = %v; want domo.ErrTooLarge", err)
	}
}

// TestBrokerStartsLate: a worker started before its broker says READY once
// the broker is there.
func TestBrokerStartsLate(t *testing.T) {
	probe, err := zsock.New(zsock.Router)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := probe.Bind("tcp://127.0.0.1:*")
	probe.Close()
	if err != nil {
		t.Fatal(err)
	}
	w := New("tea", WithBroker(ep), WithHeartbeat(50*time.Millisecond, 4),
		WithReconnect(10*time.Millisecond, 50*time.Millisecond), WithLogger(quiet()))
	errc := run(t, w, context.Background())
	t.Cleanup(func() {
		w.Close()
		select {
		case <-errc:
		case <-time.After(waitFor):
			t.Error("Run did not return")
		}
	})

	s, err := zsock.New(zsock.Router)
	if err != nil {
		t.Fatal(err)
	}
	var bindErr error
	waitUntil(t, "rebind "+ep, func() bool { // the port may linger briefly
		_, bindErr = s.Bind(ep)
		return bindErr == nil
	})
	b := &fakeBroker{t: t, sock: s, poller: zsock.NewPoller(s), ep: ep}
	t.Cleanup(func() { s.Close() })
	_, m, _ := b.expect(mdp.Ready)
	if string(m.Service) != "tea" {
		t.Fatalf("READY for %q; want tea", m.Service)
	}
}

func TestRunEndsWithContext(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	cancelled := make(chan struct{})
	started := make(chan struct{})
	w.HandleFunc("hold", func(ctx context.Context, req *Request) ([]byte, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := run(t, w, ctx)
	id, _, _ := b.expect(mdp.Ready)
	b.call(id, "h", "hold", "1", "")
	<-started
	cancel()
	b.expect(mdp.Disconnect)
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v; want context.Canceled", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Run did not return after its context ended")
	}
	select {
	case <-cancelled:
	default:
		t.Fatal("Run returned before the handler saw its context end")
	}
	w.Close()
	w.Close()
}

func TestShutdownTimesOut(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	started := make(chan struct{})
	w.HandleFunc("stuck", func(ctx context.Context, req *Request) ([]byte, error) {
		close(started)
		<-ctx.Done() // only a stop ends it
		return nil, ctx.Err()
	})
	errc := run(t, w, context.Background())
	id, _, _ := b.expect(mdp.Ready)
	b.call(id, "s", "stuck", "1", "")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v; want context.DeadlineExceeded", err)
	}
	b.expect(mdp.Disconnect)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Run did not return")
	}
	if s := w.Stats(); s.DroppedReplies != 1 {
		t.Errorf("Stats().DroppedReplies = %d; want 1 (the stuck request's)", s.DroppedReplies)
	}
}

func TestLifecycleErrors(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	if err := w.Close(); err != nil {
		t.Fatalf("Close before Run = %v", err)
	}
	if err := w.Run(context.Background()); !errors.Is(err, domo.ErrClosed) {
		t.Fatalf("Run after Close = %v; want domo.ErrClosed", err)
	}

	w2 := newWorker(b)
	start(t, b, w2)
	if err := w2.Run(context.Background()); err == nil {
		t.Fatal("second Run = nil; want an error")
	}
}
