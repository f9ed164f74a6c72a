package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

func echo(ctx context.Context, req *Request) ([]byte, error) { return req.Payload, nil }

func TestReadyFrames(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b, WithConcurrency(7))
	errc := run(t, w, context.Background())
	t.Cleanup(func() { w.Close(); <-errc })
	_, frames := b.recv()
	want := [][]byte{{}, []byte("MDPW01"), {0x01}, []byte("tea"), mdp.AppendHeader(mdp.AppendHeader(nil, mdp.HeaderCredit, "7"), mdp.HeaderBatch, "1")}
	if len(frames) != len(want) {
		t.Fatalf("READY = %q; want %q", frames, want)
	}
	for i := range want {
		if !bytes.Equal(frames[i], want[i]) {
			t.Fatalf("READY frame %d = %q; want %q (all: %q)", i, frames[i], want[i], frames)
		}
	}
}

func TestRequestV1(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	var got atomic.Pointer[Request]
	var sendErr atomic.Value
	w.HandleFunc("brew", func(ctx context.Context, req *Request) ([]byte, error) {
		got.Store(req)
		sendErr.Store(req.Send([]byte("nope")))
		return append([]byte("brewed "), req.Payload...), nil
	})
	id := start(t, b, w)
	addr := "\x00\x01\x02\x03\xff\x00\x00\x07" // opaque, with zero bytes
	hdr := mdp.AppendHeader(nil, mdp.HeaderID, "req-1")
	hdr = mdp.AppendHeader(hdr, mdp.HeaderAttempt, "3")
	b.request(id, 1, addr, []byte("brew"), hdr, []byte("green"))

	_, m, frames := b.expect(mdp.Reply)
	if m.Version != 1 || !bytes.Equal(frames[0], nil) || string(frames[1]) != mdp.WorkerV1 {
		t.Fatalf("reply = %q; want an MDPW01 REPLY", frames)
	}
	if string(m.Address) != addr {
		t.Fatalf("reply address = %q; want %q", m.Address, addr)
	}
	r, err := mdp.ParseReply(m.Body)
	if err != nil {
		t.Fatalf("ParseReply(%q) = %v", m.Body, err)
	}
	if !r.OK() || string(r.Payload) != "brewed green" {
		t.Fatalf("reply = %s %q; want ok %q", r.Status, r.Payload, "brewed green")
	}
	headersEqual(t, r.Headers, mdp.AppendHeader(nil, mdp.HeaderID, "req-1"))

	req := got.Load()
	if req.Service != "tea" || req.Method != "brew" || req.ID != "req-1" || req.Attempt != 3 || req.Streaming() {
		t.Errorf("request = %+v; want tea/brew id req-1 attempt 3, not streaming", req)
	}
	headersEqual(t, req.Headers, hdr)
	if err, _ := sendErr.Load().(error); !errors.Is(err, ErrNotStreaming) {
		t.Errorf("Send on an MDP/0.1 request = %v; want ErrNotStreaming", err)
	}
	if s := w.Stats(); s.Handled != 1 {
		t.Errorf("Stats().Handled = %d; want 1", s.Handled)
	}
}

func TestStreamingV2(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	w.HandleFunc("pour", func(ctx context.Context, req *Request) ([]byte, error) {
		if !req.Streaming() {
			return nil, errors.New("not streaming")
		}
		for i := range 3 {
			if err := req.Send([]byte("drop " + strconv.Itoa(i))); err != nil {
				return nil, err
			}
		}
		return []byte("done"), nil
	})
	id := start(t, b, w)
	b.request(id, 2, "A1", []byte("pour"), mdp.AppendHeader(nil, mdp.HeaderID, "s1"), nil)
	wantHdr := mdp.AppendHeader(nil, mdp.HeaderID, "s1")
	for i := range 3 {
		r := b.expectReply(mdp.Partial, "A1")
		if !r.OK() || string(r.Payload) != "drop "+strconv.Itoa(i) {
			t.Fatalf("partial %d = %s %q; want ok %q", i, r.Status, r.Payload, "drop "+strconv.Itoa(i))
		}
		headersEqual(t, r.Headers, wantHdr)
	}
	r := b.expectReply(mdp.Final, "A1")
	if !r.OK() || string(r.Payload) != "done" {
		t.Fatalf("final = %s %q; want ok done", r.Status, r.Payload)
	}
	headersEqual(t, r.Headers, wantHdr)
}

func TestErrorReplies(t *testing.T) {
	type brewIn struct {
		Cups int `json:"cups"`
	}
	type brewOut struct {
		Pot int `json:"pot"`
	}
	b := newFakeBroker(t)
	w := newWorker(b)
	var typedRuns atomic.Int32
	w.Handle("typed", Typed(func(ctx context.Context, in brewIn) (brewOut, error) {
		typedRuns.Add(1)
		if in.Cups < 1 {
			return brewOut{}, domo.Errorf(domo.CodeInvalid, "cups must be at least 1")
		}
		return brewOut{Pot: in.Cups * 2}, nil
	}))
	w.HandleFunc("fail", func(ctx context.Context, req *Request) ([]byte, error) {
		return nil, errors.New("kettle broke")
	})
	w.HandleFunc("wrapped", func(ctx context.Context, req *Request) ([]byte, error) {
		return nil, errors.Join(errors.New("context"), domo.Errorf(domo.CodeForbidden, "not your tea"))
	})
	id := start(t, b, w)

	tests := []struct {
		method, payload string
		status          string
		want            string // payload for ok, message substring for an error
	}{
		{"nosuch", "", string(domo.CodeUnknownMethod), `no method "nosuch"`},
		{"typed", `{"cups": "three"}`, string(domo.CodeInvalid), "cups"},
		{"typed", `{"cups":`, string(domo.CodeInvalid), "typed"},
		{"typed", `{"cups": 0}`, string(domo.CodeInvalid), "cups must be at least 1"},
		{"typed", `{"cups": 2}`, mdp.StatusOK, `{"pot":4}`},
		{"fail", "", string(domo.CodeInternal), "kettle broke"},
		{"wrapped", "", string(domo.CodeForbidden), "not your tea"},
	}
	for i, tt := range tests {
		addr := "a" + strconv.Itoa(i)
		b.call(id, addr, tt.method, "id"+strconv.Itoa(i), tt.payload)
		r := b.expectReply(mdp.Reply, addr)
		headersEqual(t, r.Headers, mdp.AppendHeader(nil, mdp.HeaderID, "id"+strconv.Itoa(i)))
		if string(r.Status) != tt.status {
			t.Errorf("%s(%s) status = %q (%s); want %q", tt.method, tt.payload, r.Status, r.Payload, tt.status)
			continue
		}
		if r.OK() {
			if string(r.Payload) != tt.want {
				t.Errorf("%s(%s) = %s; want %s", tt.method, tt.payload, r.Payload, tt.want)
			}
			continue
		}
		var e domo.Error
		if err := json.Unmarshal(r.Payload, &e); err != nil || string(e.Code) != tt.status || !bytes.Contains([]byte(e.Message), []byte(tt.want)) {
			t.Errorf("%s(%s) error payload = %s (%v); want code %s, message containing %q", tt.method, tt.payload, r.Payload, err, tt.status, tt.want)
		}
	}
	if n := typedRuns.Load(); n != 2 {
		t.Errorf("typed handler ran %d times; want 2 (never for bad JSON)", n)
	}
}

func TestPanicRecovered(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	w.HandleFunc("boom", func(ctx context.Context, req *Request) ([]byte, error) { panic("the kettle exploded") })
	w.HandleFunc("echo", echo)
	id := start(t, b, w)
	for i := range 2 {
		addr := "p" + strconv.Itoa(i)
		b.call(id, addr, "boom", "x", "")
		if r := b.expectReply(mdp.Reply, addr); string(r.Status) != string(domo.CodeInternal) {
			t.Fatalf("panicking handler: status %q (%s); want internal", r.Status, r.Payload)
		}
	}
	b.call(id, "e", "echo", "y", "still here")
	if r := b.expectReply(mdp.Reply, "e"); !r.OK() || string(r.Payload) != "still here" {
		t.Fatalf("after panics: %s %q; want ok", r.Status, r.Payload)
	}
	if s := w.Stats(); s.Panics != 2 || s.Failed != 2 || s.Handled != 1 {
		t.Errorf("Stats() = %+v; want 2 panics, 2 failed, 1 handled", s)
	}
}

func TestDeadline(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	var runs atomic.Int32
	var gotDeadline atomic.Int64
	w.HandleFunc("slow", func(ctx context.Context, req *Request) ([]byte, error) {
		runs.Add(1)
		if dl, ok := ctx.Deadline(); ok {
			gotDeadline.Store(dl.UnixMilli())
		}
		return nil, nil
	})
	id := start(t, b, w)

	past := mdp.AppendDeadline(mdp.AppendHeader(nil, mdp.HeaderID, "late"), time.Now().Add(-time.Second))
	b.request(id, 1, "late", []byte("slow"), past, nil)
	if r := b.expectReply(mdp.Reply, "late"); string(r.Status) != string(domo.CodeDeadlineExceeded) {
		t.Fatalf("expired request: status %q (%s); want deadline_exceeded", r.Status, r.Payload)
	}
	if n := runs.Load(); n != 0 {
		t.Fatalf("handler ran %d times for an expired request; want 0", n)
	}

	dl := time.Now().Add(time.Hour).Truncate(time.Millisecond) // what the header can carry
	future := mdp.AppendDeadline(mdp.AppendHeader(nil, mdp.HeaderID, "ok"), dl)
	b.request(id, 1, "ok", []byte("slow"), future, nil)
	if r := b.expectReply(mdp.Reply, "ok"); !r.OK() {
		t.Fatalf("request with a future deadline: %s %s", r.Status, r.Payload)
	}
	if got := gotDeadline.Load(); got != dl.UnixMilli() {
		t.Errorf("handler ctx deadline = %d; want %d", got, dl.UnixMilli())
	}

	// A handler waiting on its context is stopped by the deadline, and
	// its context ends once it has returned.
	kept := make(chan context.Context, 1)
	w.HandleFunc("wait", func(ctx context.Context, req *Request) ([]byte, error) {
		kept <- ctx
		if req.Payload != nil && string(req.Payload) == "return" {
			return []byte("returned"), nil
		}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	soon := mdp.AppendDeadline(mdp.AppendHeader(nil, mdp.HeaderID, "soon"), time.Now().Add(200*time.Millisecond))
	b.request(id, 1, "soon", []byte("wait"), soon, nil)
	if r := b.expectReply(mdp.Reply, "soon"); string(r.Status) != string(domo.CodeDeadlineExceeded) {
		t.Fatalf("handler waiting past its deadline: status %q (%s); want deadline_exceeded", r.Status, r.Payload)
	}
	select {
	case <-kept:
	default: // a slow machine: the deadline passed before the handler started, also deadline_exceeded
	}
	b.request(id, 1, "done", []byte("wait"), future, []byte("return"))
	if r := b.expectReply(mdp.Reply, "done"); !r.OK() {
		t.Fatalf("handler returning at once: %s %s", r.Status, r.Payload)
	}
	var ctx context.Context
	select {
	case ctx = <-kept:
	case <-time.After(waitFor):
		t.Fatal("the handler that answered never ran")
	}
	select {
	case <-ctx.Done():
		if ctx.Err() != context.Canceled {
			t.Errorf("handler's context after it returned: Err = %v; want Canceled", ctx.Err())
		}
	case <-time.After(waitFor):
		t.Error("handler's context not done after the handler returned")
	}
}

// TestConcurrency checks that n requests run at once: each handler waits until
// all n have started, which never happens if they run one after another.
func TestConcurrency(t *testing.T) {
	const n = 5
	b := newFakeBroker(t)
	w := newWorker(b, WithConcurrency(n))
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
	)
	w.HandleFunc("wait", func(ctx context.Context, req *Request) ([]byte, error) {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return []byte("together"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(waitFor):
			return nil, errors.New("the others never came")
		}
	})
	id := start(t, b, w)
	for i := range n {
		b.call(id, "c"+strconv.Itoa(i), "wait", strconv.Itoa(i), "")
	}
	seen := map[string]bool{}
	for range n {
		_, m, _ := b.expect(mdp.Reply)
		r, err := mdp.ParseReply(m.Body)
		if err != nil || !r.OK() {
			t.Fatalf("reply %q: %v %s %s", m.Address, err, r.Status, r.Payload)
		}
		seen[string(m.Address)] = true
	}
	if len(seen) != n {
		t.Fatalf("replies for %v; want %d distinct", seen, n)
	}
}

// TestOverCredit: a broker sending more than the credit gets overloaded
// replies at once, not a blocked worker.
func TestOverCredit(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b, WithConcurrency(1))
	release := make(chan struct{})
	started := make(chan struct{}, 64)
	w.HandleFunc("hold", func(ctx context.Context, req *Request) ([]byte, error) {
		started <- struct{}{}
		select {
		case <-release:
			return []byte("held"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	id := start(t, b, w)
	// One runs, concurrency*maxBrokers wait in the pool's queue (room for
	// the credit of every broker), the next finds no room.
	b.call(id, "h0", "hold", "0", "")
	select {
	case <-started:
	case <-time.After(waitFor):
		t.Fatal("first request never started")
	}
	queued := maxBrokers // concurrency 1
	for i := 1; i <= queued; i++ {
		b.call(id, fmt.Sprint("h", i), "hold", fmt.Sprint(i), "")
	}
	over := fmt.Sprint(queued + 1)
	b.call(id, "h"+over, "hold", over, "")
	r := b.expectReply(mdp.Reply, "h"+over)
	if string(r.Status) != string(domo.CodeOverloaded) {
		t.Fatalf("request over the credit: %s %s; want overloaded", r.Status, r.Payload)
	}
	headersEqual(t, r.Headers, mdp.AppendHeader(nil, mdp.HeaderID, over))
	close(release)
	for i := 0; i <= queued; i++ {
		if r := b.expectReply(mdp.Reply, fmt.Sprint("h", i)); !r.OK() {
			t.Fatalf("h%d: %s %s; want ok", i, r.Status, r.Payload)
		}
	}
	if s := w.Stats(); s.Rejected != 1 {
		t.Errorf("Stats().Rejected = %d; want 1", s.Rejected)
	}
}

func TestHeartbeatsSent(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	id := start(t, b, w)
	for range 3 {
		gotID, _, frames := b.expect(mdp.Heartbeat)
		if !bytes.Equal(gotID, id) {
			t.Fatalf("heartbeat from %q; want %q", gotID, id)
		}
		want := [][]byte{{}, []byte(mdp.WorkerV1), {0x04}}
		if len(frames) != 3 || !bytes.Equal(frames[1], want[1]) || !bytes.Equal(frames[2], want[2]) || len(frames[0]) != 0 {
			t.Fatalf("heartbeat = %q; want %q", frames, want)
		}
	}
}

func TestSilentBrokerReconnect(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b, WithHeartbeat(50*time.Millisecond, 3))
	id := start(t, b, w)
	// Say nothing: after 150ms of silence the worker must give us up and
	// come back on a new socket.
	id2, m, _ := b.expect(mdp.Ready)
	if string(m.Service) != "tea" {
		t.Fatalf("READY for %q; want tea", m.Service)
	}
	if bytes.Equal(id, id2) {
		t.Errorf("second READY from the same identity %q; want a new socket", id)
	}
	if s := w.Stats(); s.Reconnects < 1 {
		t.Errorf("Stats().Reconnects = %d; want at least 1", s.Reconnects)
	}
}

// TestHeartbeatsKeepAlive: a broker that heartbeats is not given up.
func TestHeartbeatsKeepAlive(t *testing.T) {
	b := newFakeBroker(t)
	// Liveness 10 leaves room for a loaded test machine; 30 beats answered
	// run three times past the 500ms of silence that would make the worker
	// reconnect.
	w := newWorker(b, WithHeartbeat(50*time.Millisecond, 10))
	id := start(t, b, w)
	for range 30 {
		b.expect(mdp.Heartbeat)
		b.heartbeat(id)
	}
	if s := w.Stats(); s.Reconnects != 0 {
		t.Errorf("Stats().Reconnects = %d; want 0 with a heartbeating broker", s.Reconnects)
	}
}

func TestBrokerDisconnect(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	release := make(chan struct{})
	w.HandleFunc("hold", func(ctx context.Context, req *Request) ([]byte, error) {
		select {
		case <-release:
			return []byte("late"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	w.HandleFunc("echo", echo)
	id := start(t, b, w)
	b.call(id, "old", "hold", "1", "")
	b.send(id, nil, []byte(mdp.WorkerV1), []byte{0x05}) // DISCONNECT
	id2, _, _ := b.expect(mdp.Ready)
	if bytes.Equal(id, id2) {
		t.Errorf("READY after DISCONNECT from the same identity %q; want a new socket", id)
	}
	close(release) // the old request's reply must not reach the new connection
	waitUntil(t, "old reply dropped", func() bool { return w.Stats().DroppedReplies == 1 })
	b.call(id2, "new", "echo", "2", "fresh")
	_, m, _ := b.expect(mdp.Reply)
	if string(m.Address) != "new" {
		t.Fatalf("reply for %q on the new connection; want only %q", m.Address, "new")
	}
}

func TestShutdownDrains(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	w.HandleFunc("hold", func(ctx context.Context, req *Request) ([]byte, error) {
		started <- struct{}{}
		select {
		case <-release:
			return []byte("finished"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	w.HandleFunc("echo", echo)
	errc := run(t, w, context.Background())
	t.Cleanup(func() { w.Close() })
	id, _, _ := b.expect(mdp.Ready)
	b.call(id, "in-flight", "hold", "1", "")
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		shut <- w.Shutdown(ctx)
	}()
	// Requests after Shutdown began are refused; retry until one sees it.
	for i := 0; ; i++ {
		addr := "late" + strconv.Itoa(i)
		b.call(id, addr, "echo", "late", "")
		r := b.expectReply(mdp.Reply, addr)
		if string(r.Status) == string(domo.CodeUnavailable) {
			break
		}
		// Served before Shutdown took effect.
		if i > 1000 {
			t.Fatal("Shutdown never took effect")
		}
	}
	close(release)
	r := b.expectReply(mdp.Reply, "in-flight")
	if !r.OK() || string(r.Payload) != "finished" {
		t.Fatalf("in-flight reply = %s %q; want ok finished", r.Status, r.Payload)
	}
	b.expect(mdp.Disconnect)
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown = %v; want nil", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Shutdown did not return")
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run = %v; want nil after Shutdown", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Run did not return")
	}
	if err := w.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown = %v; want nil", err)
	}
	if err := w.Run(context.Background()); !errors.Is(err, domo.ErrClosed) {
		t.Errorf("Run after Shutdown = %v; want ErrClosed", err)
	}
}

// TestHeartbeatAnswersBroker: a HEARTBEAT from the broker is answered at
// once (so that a broker's sweep comes back as one burst), except right
// after the worker sent something, so two peers that both answer cannot
// ping-pong.
func TestHeartbeatAnswersBroker(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b, WithHeartbeat(time.Second, 200)) // its own timer: 1 s after READY
	id := start(t, b, w)
	time.Sleep(200 * time.Millisecond) // more than an eighth of the interval
	sent := time.Now()
	b.heartbeat(id)
	b.expect(mdp.Heartbeat)
	if d := time.Since(sent); d > 700*time.Millisecond {
		t.Fatalf("heartbeat answered after %v; want at once, before the worker's own 1s timer", d)
	}
	b.heartbeat(id) // just answered: no second answer now
	if _, frames, ok := b.tryRecv(50 * time.Millisecond); ok {
		t.Fatalf("got %q right after answering a heartbeat; want nothing", frames)
	}
}
