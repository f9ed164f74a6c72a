package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	return ctx
}

// async runs f in a goroutine and returns a channel with its error.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func await(t testing.TB, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(testWait):
		t.Fatal("call did not return")
		return nil
	}
}

func TestSplitMethod(t *testing.T) {
	tests := []struct {
		name, service, method string
		ok                    bool
	}{
		{"tea.brew", "tea", "brew", true},
		{"shop.tea.brew", "shop.tea", "brew", true},
		{"mmi.service", "mmi.service", "", true},
		{"mmi.services", "mmi.services", "", true},
		{"mmi.a.b", "mmi.a.b", "", true},
		{"tea", "", "", false},
		{"tea.", "", "", false},
		{".brew", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		s, m, err := splitMethod(tt.name)
		if (err == nil) != tt.ok || s != tt.service || m != tt.method {
			t.Errorf("splitMethod(%q) = %q, %q, %v; want %q, %q, ok=%v", tt.name, s, m, err, tt.service, tt.method, tt.ok)
		}
		if err != nil && !errors.Is(err, domo.ErrInvalid) {
			t.Errorf("splitMethod(%q) error %v; want domo.ErrInvalid", tt.name, err)
		}
	}
}

func TestRequestIDRoundTrip(t *testing.T) {
	c := &Client{prefix: "7f3a9c01-"}
	for _, n := range []uint64{1, 35, 36, 1 << 40, 1<<64 - 1} {
		id := c.appendID(nil, n)
		got, ok := c.parseID(id)
		if !ok || got != n {
			t.Errorf("parseID(%q) = %d, %v; want %d", id, got, ok, n)
		}
	}
	for _, bad := range []string{"", "7f3a9c01-", "00000000-1", "7f3a9c01-A", "7f3a9c01-zzzzzzzzzzzzzz", "7f3a9c01-3w5e11264sgsg"} {
		if n, ok := c.parseID([]byte(bad)); ok {
			t.Errorf("parseID(%q) = %d, true; want false", bad, n)
		}
	}
}

func TestCallRequestFrames(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b)
	tests := []struct {
		name            string
		method          string
		opts            []CallOption
		service, meth   string
		retry           bool
		extra, extraVal string
	}{
		{name: "plain", method: "tea.brew", service: "tea", meth: "brew"},
		{name: "dotted service", method: "shop.tea.brew", service: "shop.tea", meth: "brew"},
		{name: "retry", method: "tea.brew", opts: []CallOption{Retry()}, service: "tea", meth: "brew", retry: true},
		{name: "header", method: "tea.brew", opts: []CallOption{Header("traceparent", "00-abc-def-01")}, service: "tea", meth: "brew", extra: "traceparent", extraVal: "00-abc-def-01"},
		{name: "mmi", method: "mmi.service", service: "mmi.service", meth: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			wantDeadline, _ := ctx.Deadline()
			done := async(func() error {
				_, err := c.Invoke(ctx, tt.method, []byte(`{"n":1}`), tt.opts...)
				return err
			})
			r := b.next(t)
			f := r.frames
			if len(f) != 6 || len(f[0]) != 0 || string(f[1]) != mdp.ClientV1 || string(f[2]) != tt.service ||
				string(f[3]) != tt.meth || string(f[5]) != `{"n":1}` {
				t.Fatalf("request frames = %q; want [\"\" MDPC01 %q %q headers payload]", f, tt.service, tt.meth)
			}
			h := mdp.Headers(f[4])
			if err := h.Validate(); err != nil || h[0] != mdp.HeadersMagic {
				t.Fatalf("headers %q: %v", f[4], err)
			}
			id, ok := h.Get(mdp.HeaderID)
			if !ok || !strings.HasPrefix(string(id), c.prefix) {
				t.Errorf("id header = %q, %v; want prefix %q", id, ok, c.prefix)
			}
			dl, ok := h.Deadline()
			// The header rounds the deadline up to the millisecond.
			if !ok || dl.Before(wantDeadline) || dl.Sub(wantDeadline) >= time.Millisecond {
				t.Errorf("deadline header = %v, %v; want %v", dl, ok, wantDeadline)
			}
			if v, ok := h.Get(mdp.HeaderRetry); ok != tt.retry || (ok && string(v) != "1") {
				t.Errorf("retry header = %q, %v; want present=%v", v, ok, tt.retry)
			}
			if tt.extra != "" {
				if v, ok := h.Get(tt.extra); !ok || string(v) != tt.extraVal {
					t.Errorf("%s header = %q, %v; want %q", tt.extra, v, ok, tt.extraVal)
				}
			}
			b.send(reply(r, mdp.StatusOK, nil))
			if err := await(t, done); err != nil {
				t.Fatalf("Invoke: %v", err)
			}
		})
	}
}

func TestRequestIDsUnique(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b)
	seen := map[string]bool{}
	for range 3 {
		done := async(func() error { return c.Call(testCtx(t), "tea.brew", nil, nil) })
		r := b.next(t)
		id, _ := r.env.Headers.Get(mdp.HeaderID)
		if seen[string(id)] {
			t.Errorf("request id %q reused", id)
		}
		seen[string(id)] = true
		b.send(reply(r, mdp.StatusOK, nil))
		if err := await(t, done); err != nil {
			t.Fatal(err)
		}
	}
	// A second client has another prefix.
	c2 := newClient(t, b)
	if c2.prefix == c.prefix {
		t.Errorf("two clients share the id prefix %q", c.prefix)
	}
}

func TestWithTimeoutDeadlineHeader(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b, WithTimeout(150*time.Millisecond))
	start := time.Now()
	done := async(func() error { return c.Call(context.Background(), "tea.brew", nil, nil) })
	r := b.next(t)
	dl, ok := r.env.Headers.Deadline()
	if !ok || dl.Before(start.Add(140*time.Millisecond)) || dl.After(time.Now().Add(160*time.Millisecond)) {
		t.Errorf("deadline header = %v, %v; want about now+150ms", dl, ok)
	}
	err := await(t, done) // no reply: the WithTimeout deadline ends the call
	if !errors.Is(err, domo.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call = %v; want deadline exceeded (both ways)", err)
	}
}

type brew struct {
	Leaves string `json:"leaves"`
	Cups   int    `json:"cups"`
}

func TestCallSuccess(t *testing.T) {
	b := startBroker(t, echo)
	c := newClient(t, b)
	in := brew{Leaves: "sencha", Cups: 2}
	var out brew
	if err := c.Call(testCtx(t), "tea.brew", in, &out); err != nil {
		t.Fatalf("Call: %v", err)
	}
	if out != in {
		t.Errorf("Call reply = %+v; want %+v", out, in)
	}
	// nil in, nil out.
	if err := c.Call(testCtx(t), "tea.brew", nil, nil); err != nil {
		t.Fatalf("Call(nil, nil): %v", err)
	}
	// A reply that is not the JSON out expects.
	var n int
	err := c.Call(testCtx(t), "tea.brew", "text", &n)
	if err == nil || !strings.Contains(err.Error(), "decode reply") {
		t.Errorf("Call into the wrong type = %v; want a decode error", err)
	}
	p, err := c.Invoke(testCtx(t), "tea.brew", []byte("raw bytes"))
	if err != nil || string(p) != "raw bytes" {
		t.Errorf("Invoke = %q, %v; want %q", p, err, "raw bytes")
	}
	if s := c.Stats(); s.Calls != 4 || s.Errors != 1 || s.InFlight != 0 {
		t.Errorf("Stats = %+v; want 4 calls, 1 error, none in flight", s)
	}
}

func TestRemoteError(t *testing.T) {
	b := startBroker(t, func(r request) [][][]byte {
		switch string(r.env.Method) {
		case "missing":
			return [][][]byte{errorReply(r, domo.Errorf(domo.CodeUnknownMethod, "tea has no method %q", r.env.Method))}
		case "busy":
			return [][][]byte{errorReply(r, &domo.Error{Code: domo.CodeOverloaded, Message: "queue full", Details: json.RawMessage(`{"queued":100}`)})}
		default: // an error status with a payload that is not JSON
			return [][][]byte{reply(r, "internal", []byte("boom"))}
		}
	})
	c := newClient(t, b)
	tests := []struct {
		method   string
		sentinel error
		message  string
		details  string
	}{
		{"tea.missing", domo.ErrUnknownMethod, `tea has no method "missing"`, ""},
		{"tea.busy", domo.ErrOverloaded, "queue full", `{"queued":100}`},
		{"tea.other", domo.ErrInternal, "boom", ""},
	}
	for _, tt := range tests {
		err := c.Call(testCtx(t), tt.method, nil, nil)
		if !errors.Is(err, tt.sentinel) {
			t.Errorf("Call(%s) = %v; want errors.Is %v", tt.method, err, tt.sentinel)
		}
		var de *domo.Error
		if !errors.As(err, &de) || de.Message != tt.message || string(de.Details) != tt.details {
			t.Errorf("Call(%s) = %#v; want message %q details %q", tt.method, de, tt.message, tt.details)
		}
		if !strings.HasPrefix(err.Error(), "call "+tt.method+": ") {
			t.Errorf("Call(%s) error %q lacks the method context", tt.method, err)
		}
	}
	if s := c.Stats(); s.Errors != 3 {
		t.Errorf("Stats().Errors = %d; want 3", s.Errors)
	}
}

func TestOutOfOrderReplies(t *testing.T) {
	const n = 100
	b := startBroker(t, nil)
	c := newClient(t, b)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			want := fmt.Sprintf("payload-%d", i)
			var got string
			err := c.Call(testCtx(t), "tea.brew", want, &got)
			if err == nil && got != want {
				err = fmt.Errorf("call %d got %q; want %q", i, got, want)
			}
			errs <- err
		}()
	}
	reqs := make([]request, n)
	for i := range reqs {
		reqs[i] = b.next(t)
	}
	rand.Shuffle(n, func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	for _, r := range reqs {
		b.send(reply(r, mdp.StatusOK, r.env.Payload))
	}
	for range n {
		if err := await(t, errs); err != nil {
			t.Error(err)
		}
	}
	if s := c.Stats(); s.Late != 0 || s.InFlight != 0 {
		t.Errorf("Stats = %+v; want no late replies, none in flight", s)
	}
}

func TestTimeoutThenLateReply(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Call(ctx, "tea.brew", nil, nil)
	if !errors.Is(err, domo.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v; want deadline exceeded (both ways)", err)
	}
	if s := c.Stats(); s.InFlight != 0 {
		t.Errorf("InFlight = %d after the timeout; want 0", s.InFlight)
	}
	r := b.next(t)
	b.send(reply(r, mdp.StatusOK, []byte(`"late"`)))
	waitFor(t, "the late reply to be counted", func() bool { return c.Stats().Late == 1 })

	// The client still works.
	b2 := async(func() error { return c.Call(testCtx(t), "tea.brew", nil, nil) })
	r = b.next(t)
	b.send(reply(r, mdp.StatusOK, nil))
	if err := await(t, b2); err != nil {
		t.Fatal(err)
	}
}

func TestCancel(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	done := async(func() error { return c.Call(ctx, "tea.brew", nil, nil) })
	b.next(t)
	cancel()
	err := await(t, done)
	if !errors.Is(err, domo.ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Errorf("Call = %v; want canceled (both ways)", err)
	}
	// Already canceled: fails without sending.
	err = c.Call(ctx, "tea.brew", nil, nil)
	if !errors.Is(err, domo.ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Errorf("Call with a canceled ctx = %v; want canceled", err)
	}
}

func TestClose(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b)
	const n = 10
	var calls []<-chan error
	for range n {
		calls = append(calls, async(func() error { return c.Call(testCtx(t), "tea.brew", nil, nil) }))
	}
	s, err := c.Stream(testCtx(t), "tea.steep", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range n + 1 {
		b.next(t)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	for _, ch := range calls {
		if err := await(t, ch); !errors.Is(err, domo.ErrClosed) {
			t.Errorf("pending Call = %v; want domo.ErrClosed", err)
		}
	}
	if _, err := s.Next(testCtx(t)); !errors.Is(err, domo.ErrClosed) {
		t.Errorf("Stream.Next after Close = %v; want domo.ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := c.Call(testCtx(t), "tea.brew", nil, nil); !errors.Is(err, domo.ErrClosed) {
		t.Errorf("Call after Close = %v; want domo.ErrClosed", err)
	}
	if _, err := c.Raw(testCtx(t), "echo", []byte("x")); !errors.Is(err, domo.ErrClosed) {
		t.Errorf("Raw after Close = %v; want domo.ErrClosed", err)
	}
	if _, err := c.Stream(testCtx(t), "tea.steep", nil); !errors.Is(err, domo.ErrClosed) {
		t.Errorf("Stream after Close = %v; want domo.ErrClosed", err)
	}
}

func TestCloseConcurrent(t *testing.T) {
	b := startBroker(t, echo)
	c := newClient(t, b)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := c.Call(testCtx(t), "tea.brew", nil, nil)
				if errors.Is(err, domo.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Call = %v", err)
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(testWait):
		t.Fatal("callers did not stop after Close")
	}
}

func TestStream(t *testing.T) {
	b := startBroker(t, func(r request) [][][]byte {
		switch string(r.env.Method) {
		case "steep":
			return [][][]byte{
				replyV(r, 2, mdp.Partial, mdp.StatusOK, []byte("p1")),
				replyV(r, 2, mdp.Partial, mdp.StatusOK, []byte("p2")),
				replyV(r, 2, mdp.Final, mdp.StatusOK, []byte("p3")),
			}
		case "empty-final":
			return [][][]byte{
				replyV(r, 2, mdp.Partial, mdp.StatusOK, []byte("p1")),
				replyV(r, 2, mdp.Final, mdp.StatusOK, nil),
			}
		case "v1":
			return [][][]byte{reply(r, mdp.StatusOK, []byte("only"))}
		default:
			e := mdp.ErrorReply(mdp.AppendHeader(nil, mdp.HeaderID, idOf(r)), domo.Errorf(domo.CodeInternal, "kettle broke"))
			return [][][]byte{
				replyV(r, 2, mdp.Partial, mdp.StatusOK, []byte("p1")),
				encodeTo(r.identity, mdp.Message{Role: mdp.Client, Version: 2, Command: mdp.Final, Service: r.msg.Service, Body: e.Append(nil)}),
			}
		}
	})
	c := newClient(t, b)
	tests := []struct {
		method  string
		want    []string
		wantErr error
	}{
		{"tea.steep", []string{"p1", "p2", "p3"}, io.EOF},
		{"tea.empty-final", []string{"p1"}, io.EOF},
		{"tea.v1", []string{"only"}, io.EOF},
		{"tea.fail", []string{"p1"}, domo.ErrInternal},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			s, err := c.Stream(testCtx(t), tt.method, []byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got []string
			for {
				p, err := s.Next(testCtx(t))
				if err != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Errorf("Next = %v; want %v", err, tt.wantErr)
					}
					if tt.wantErr == io.EOF && err != io.EOF {
						t.Errorf("Next = %#v; want io.EOF itself", err)
					}
					break
				}
				got = append(got, string(p))
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("stream = %q; want %q", got, tt.want)
			}
			if _, err := s.Next(testCtx(t)); !errors.Is(err, tt.wantErr) {
				t.Errorf("Next after the end = %v; want %v again", err, tt.wantErr)
			}
		})
	}
	if s := c.Stats(); s.InFlight != 0 {
		t.Errorf("InFlight = %d; want 0", s.InFlight)
	}
}

func idOf(r request) []byte {
	id, _ := r.env.Headers.Get(mdp.HeaderID)
	return id
}

func TestStreamRequestFrames(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b)
	s, err := c.Stream(testCtx(t), "tea.steep", []byte("leaves"), Retry())
	if err != nil {
		t.Fatal(err)
	}
	r := b.next(t)
	f := r.frames
	if len(f) != 6 || string(f[0]) != mdp.ClientV2 || !bytes.Equal(f[1], []byte{0x01}) || string(f[2]) != "tea" ||
		string(f[3]) != "steep" || string(f[5]) != "leaves" {
		t.Fatalf("stream request = %q; want [MDPC02 0x01 tea steep headers leaves]", f)
	}
	h := mdp.Headers(f[4])
	if _, ok := h.Get(mdp.HeaderID); !ok {
		t.Error("stream request has no id header")
	}
	if _, ok := h.Deadline(); !ok {
		t.Error("stream request has no deadline header")
	}
	if v, ok := h.Get(mdp.HeaderRetry); !ok || string(v) != "1" {
		t.Errorf("retry header = %q, %v; want 1", v, ok)
	}
	// Close drops what comes later.
	s.Close()
	if _, err := s.Next(testCtx(t)); !errors.Is(err, domo.ErrClosed) {
		t.Errorf("Next after Close = %v; want domo.ErrClosed", err)
	}
	b.send(replyV(r, 2, mdp.Final, mdp.StatusOK, []byte("late")))
	waitFor(t, "the late FINAL to be counted", func() bool { return c.Stats().Late == 1 })
}

func TestStreamDeadline(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b, WithTimeout(50*time.Millisecond))
	s, err := c.Stream(context.Background(), "tea.steep", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := b.next(t)
	b.send(replyV(r, 2, mdp.Partial, mdp.StatusOK, []byte("p1")))
	if p, err := s.Next(testCtx(t)); err != nil || string(p) != "p1" {
		t.Fatalf("Next = %q, %v; want p1", p, err)
	}
	_, err = s.Next(context.Background()) // no FINAL: the stream's deadline ends it
	if !errors.Is(err, domo.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next = %v; want deadline exceeded (both ways)", err)
	}

	// A ctx canceled ends the stream; a Next ctx ending only ends that wait.
	ctx, cancel := context.WithCancel(context.Background())
	s, err = c.Stream(ctx, "tea.steep", nil)
	if err != nil {
		t.Fatal(err)
	}
	b.next(t)
	short, cancelShort := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancelShort()
	if _, err := s.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next(short ctx) = %v; want deadline exceeded", err)
	}
	cancel()
	if _, err := s.Next(testCtx(t)); !errors.Is(err, domo.ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Errorf("Next after the stream's ctx was canceled = %v; want canceled", err)
	}
	if s := c.Stats(); s.InFlight != 0 {
		t.Errorf("InFlight = %d; want 0", s.InFlight)
	}
}

func TestStreamOverflow(t *testing.T) {
	b := startBroker(t, func(r request) [][][]byte {
		var out [][][]byte
		for i := range streamBuffer + 10 {
			out = append(out, replyV(r, 2, mdp.Partial, mdp.StatusOK, fmt.Appendf(nil, "%d", i)))
		}
		return append(out, replyV(r, 2, mdp.Final, mdp.StatusOK, nil))
	})
	c := newClient(t, b)
	s, err := c.Stream(testCtx(t), "tea.flood", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitFor(t, "the stream to end", func() bool { return c.Stats().InFlight == 0 })
	n := 0
	for {
		_, err := s.Next(testCtx(t))
		if err != nil {
			if !errors.Is(err, domo.ErrOverloaded) {
				t.Errorf("Next = %v; want domo.ErrOverloaded", err)
			}
			break
		}
		n++
	}
	if n != streamBuffer {
		t.Errorf("got %d items before the overflow; want %d", n, streamBuffer)
	}
}

func TestRaw(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b)
	done := make(chan [][]byte, 1)
	errc := async(func() error {
		body, err := c.Raw(testCtx(t), "echo", []byte("hello"), []byte("world"))
		done <- body
		return err
	})
	r := b.next(t)
	f := r.frames
	if len(f) != 5 || len(f[0]) != 0 || string(f[1]) != mdp.ClientV1 || string(f[2]) != "echo" ||
		string(f[3]) != "hello" || string(f[4]) != "world" {
		t.Fatalf("raw request = %q; want [\"\" MDPC01 echo hello world]", f)
	}
	if r.envErr == nil {
		t.Error("raw request parses as a domo envelope")
	}
	// An enveloped reply for another call and a plain reply for another
	// service do not complete the raw call.
	b.send(encodeTo(r.identity, mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte("other"), Body: [][]byte{[]byte("no")}}))
	b.send(encodeTo(r.identity, mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte("echo"), Body: [][]byte{[]byte("hello"), []byte("world")}}))
	if err := await(t, errc); err != nil {
		t.Fatalf("Raw: %v", err)
	}
	body := <-done
	if len(body) != 2 || string(body[0]) != "hello" || string(body[1]) != "world" {
		t.Errorf("Raw = %q; want [hello world]", body)
	}
	if s := c.Stats(); s.Late != 1 {
		t.Errorf("Late = %d; want 1 (the reply for another service)", s.Late)
	}

	// A broker error envelope without an id answers the raw call.
	errc = async(func() error { _, err := c.Raw(testCtx(t), "nobody", []byte("x")); return err })
	r = b.next(t)
	b.send(errorReply(r, domo.Errorf(domo.CodeUnknownService, "no service nobody")))
	if err := await(t, errc); !errors.Is(err, domo.ErrUnknownService) {
		t.Errorf("Raw to an unknown service = %v; want domo.ErrUnknownService", err)
	}
}

func TestRawLateReply(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b, WithTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := c.Raw(ctx, "echo", []byte("first")); !errors.Is(err, domo.ErrDeadlineExceeded) {
		t.Fatalf("Raw = %v; want deadline exceeded", err)
	}
	first := b.next(t)
	// The next raw call waits for the orphaned one's reply, which is
	// dropped, not taken for its own.
	type res struct {
		body [][]byte
		err  error
	}
	out := make(chan res, 1)
	go func() {
		body, err := c.Raw(testCtx(t), "echo", []byte("second"))
		out <- res{body, err}
	}()
	select {
	case r := <-b.reqs:
		t.Fatalf("second raw request %q sent while the first is in flight", r.frames)
	case <-time.After(50 * time.Millisecond):
	}
	b.send(encodeTo(first.identity, mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte("echo"), Body: [][]byte{[]byte("first")}}))
	second := b.next(t)
	b.send(encodeTo(second.identity, mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte("echo"), Body: [][]byte{[]byte("second")}}))
	select {
	case r := <-out:
		if r.err != nil || len(r.body) != 1 || string(r.body[0]) != "second" {
			t.Errorf("second Raw = %q, %v; want [second]", r.body, r.err)
		}
	case <-time.After(testWait):
		t.Fatal("second Raw did not return")
	}
	if s := c.Stats(); s.Late != 1 {
		t.Errorf("Late = %d; want 1", s.Late)
	}
}

func TestRawOrphanExpires(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b, WithTimeout(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.Raw(ctx, "echo", []byte("lost")); !errors.Is(err, domo.ErrDeadlineExceeded) {
		t.Fatalf("Raw = %v; want deadline exceeded", err)
	}
	b.next(t) // never answered
	errc := async(func() error { _, err := c.Raw(testCtx(t), "echo", []byte("next")); return err })
	r := b.next(t) // sent once the orphan's grace period passed
	b.send(encodeTo(r.identity, mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte("echo"), Body: [][]byte{[]byte("next")}}))
	if err := await(t, errc); err != nil {
		t.Errorf("Raw after the orphan expired = %v", err)
	}
}

func TestServices(t *testing.T) {
	want := []mdp.ServiceInfo{{Name: "tea", Workers: 2, Ready: 1, Capacity: 8, InFlight: 3}, {Name: "coffee", Workers: 1}}
	b := startBroker(t, func(r request) [][][]byte {
		if string(r.msg.Service) != mdp.MMIServices || len(r.env.Method) != 0 {
			return [][][]byte{errorReply(r, domo.Errorf(domo.CodeInvalid, "service %q method %q", r.msg.Service, r.env.Method))}
		}
		p, _ := json.Marshal(want)
		return [][][]byte{reply(r, mdp.StatusOK, p)}
	})
	c := newClient(t, b)
	got, err := c.Services(testCtx(t))
	if err != nil {
		t.Fatalf("Services: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Services = %+v; want %+v", got, want)
	}
}

func TestMMIName(t *testing.T) {
	b := startBroker(t, func(r request) [][][]byte {
		if string(r.msg.Service) == mdp.MMIService && len(r.env.Method) == 0 && string(r.env.Payload) == "tea" {
			return [][][]byte{reply(r, mdp.StatusOK, []byte(mdp.MMIFound))}
		}
		return [][][]byte{reply(r, mdp.StatusOK, []byte(mdp.MMINotFound))}
	})
	c := newClient(t, b)
	p, err := c.Invoke(testCtx(t), "mmi.service", []byte("tea"))
	if err != nil || string(p) != mdp.MMIFound {
		t.Errorf("Invoke(mmi.service, tea) = %q, %v; want %q", p, err, mdp.MMIFound)
	}
}

func TestGarbageFromBroker(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b, WithLimits(mdp.Limits{MaxFrames: 16, MaxFrameSize: 1 << 16, MaxMessageSize: 1 << 17}))
	done := async(func() error {
		var got string
		if err := c.Call(testCtx(t), "tea.brew", "real", &got); err != nil {
			return err
		}
		if got != "real" {
			return fmt.Errorf("got %q; want real", got)
		}
		return nil
	})
	r := b.next(t)
	id := idOf(r)
	hdr := mdp.AppendHeader(nil, mdp.HeaderID, id)
	badHdr := append(mdp.Headers{mdp.HeadersMagic, 5}, "id"...)
	peer := r.identity
	frames := func(f ...string) [][]byte {
		out := [][]byte{peer}
		for _, s := range f {
			out = append(out, []byte(s))
		}
		return out
	}
	garbage := [][][]byte{
		frames("x"),
		frames(""),
		frames("", "MDPC99", "tea"),
		frames("", "MDPW01", "\x02", "addr", ""),
		frames("", "MDPC01"),
		frames("MDPC02", "\x09", "tea", "ok", string(hdr), "x"),
		frames("MDPC02", "\x01", "tea", "ok", string(hdr), "x"), // a REQUEST is not a reply
		frames("MDPC02", "\x02", "tea", "not", "an envelope"),
		frames("", "MDPC01", "tea", "", string(hdr), "empty status"),
		frames("", "MDPC01", "tea", "ok", string(badHdr), "bad headers"),
		frames("", "MDPC01", "tea", "ok", string(mdp.AppendHeader(nil, mdp.HeaderID, "deadbeef-1")), "foreign id"),
		frames("", "MDPC01", "tea", "ok", string(mdp.AppendHeader(nil, mdp.HeaderID, c.prefix+"zzzz")), "unknown id"),
		frames("", "MDPC01", "tea", "ok", string(mdp.AppendHeader(nil, mdp.HeaderID, c.prefix+"!")), "bad id"),
		frames("MDPC02", "\x02", "tea", "ok", string(hdr), `"partial to a call"`),
		append(frames("", "MDPC01", "tea"), make([][]byte, 20)...),                   // too many frames
		frames("", "MDPC01", "tea", "ok", string(hdr), strings.Repeat("x", 1<<16+1)), // frame too large
	}
	for _, g := range garbage {
		b.send(g)
	}
	// The real reply still completes the call.
	b.send(reply(r, mdp.StatusOK, []byte(`"real"`)))
	if err := await(t, done); err != nil {
		t.Fatalf("Call among garbage: %v", err)
	}
	s := c.Stats()
	if s.Malformed < 10 {
		t.Errorf("Malformed = %d; want at least 10", s.Malformed)
	}
	if s.Malformed+s.Late < uint64(len(garbage))-1 {
		t.Errorf("Malformed+Late = %d+%d; want %d garbage messages accounted for", s.Malformed, s.Late, len(garbage))
	}
	// And a later call works too.
	b2 := async(func() error { return c.Call(testCtx(t), "tea.brew", nil, nil) })
	r = b.next(t)
	b.send(reply(r, mdp.StatusOK, nil))
	if err := await(t, b2); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidRequests(t *testing.T) {
	b := startBroker(t, nil)
	c := newClient(t, b, WithLimits(mdp.Limits{MaxFrames: 16, MaxFrameSize: 1024, MaxMessageSize: 2048}))
	if err := c.Call(testCtx(t), "tea", nil, nil); !errors.Is(err, domo.ErrInvalid) {
		t.Errorf("Call(tea) = %v; want domo.ErrInvalid", err)
	}
	if _, err := c.Invoke(testCtx(t), "tea.brew", make([]byte, 1025)); !errors.Is(err, domo.ErrTooLarge) {
		t.Errorf("Invoke(too large) = %v; want domo.ErrTooLarge", err)
	}
	if _, err := c.Invoke(testCtx(t), "tea.brew", nil, Header("", "x")); !errors.Is(err, domo.ErrInvalid) {
		t.Errorf("Invoke(empty header name) = %v; want domo.ErrInvalid", err)
	}
	if _, err := c.Raw(testCtx(t), "echo", make([]byte, 1000), make([]byte, 1000), make([]byte, 1000)); !errors.Is(err, domo.ErrTooLarge) {
		t.Errorf("Raw(too large) = %v; want domo.ErrTooLarge", err)
	}
	if _, err := c.Raw(testCtx(t), ""); !errors.Is(err, domo.ErrInvalid) {
		t.Errorf("Raw(empty service) = %v; want domo.ErrInvalid", err)
	}
	if _, err := c.Stream(testCtx(t), "nodot", nil); !errors.Is(err, domo.ErrInvalid) {
		t.Errorf("Stream(nodot) = %v; want domo.ErrInvalid", err)
	}
	select {
	case r := <-b.reqs:
		t.Errorf("invalid request sent: %q", r.frames)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestInvokeCopiesPayload(t *testing.T) {
	b := startBroker(t, echo)
	c := newClient(t, b)
	payload := []byte("original")
	p, err := c.Invoke(testCtx(t), "tea.brew", payload)
	copy(payload, "XXXXXXXX")
	if err != nil || string(p) != "original" {
		t.Errorf("Invoke = %q, %v; want original", p, err)
	}
}

func TestBackpressure(t *testing.T) {
	// More calls than the send queue and the socket's high-water mark hold,
	// answered by a broker: every one completes.
	b := startBroker(t, echo)
	c := newClient(t, b)
	const n = 3000
	errs := make(chan error, n)
	for i := range n {
		go func() {
			p, err := c.Invoke(testCtx(t), "tea.brew", fmt.Appendf(nil, "%d", i))
			if err == nil && string(p) != fmt.Sprint(i) {
				err = fmt.Errorf("call %d got %q", i, p)
			}
			errs <- err
		}()
	}
	for range n {
		if err := await(t, errs); err != nil {
			t.Error(err)
		}
	}
}

func BenchmarkCallParallel(b *testing.B) {
	br := startBroker(b, echo)
	c := newClient(b, br)
	type msg struct {
		N int    `json:"n"`
		S string `json:"s"`
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		in := msg{N: 42, S: "sencha"}
		var out msg
		for pb.Next() {
			if err := c.Call(ctx, "tea.brew", in, &out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkInvokeParallel(b *testing.B) {
	br := startBroker(b, echo)
	c := newClient(b, br)
	ctx := context.Background()
	payload := []byte(`{"n":42}`)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Invoke(ctx, "tea.brew", payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestNewBadEndpoint(t *testing.T) {
	if c, err := New(WithBroker("nonsense://x")); err == nil {
		c.Close()
		t.Fatal("New(nonsense://x) succeeded; want an error")
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	b := startBroker(t, echo)
	before := runtime.NumGoroutine()
	for range 10 {
		c, err := New(WithBroker(b.endpoint))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Call(testCtx(t), "tea.brew", nil, nil); err != nil {
			t.Fatal(err)
		}
		s, err := c.Stream(context.Background(), "tea.steep", nil) // left open
		if err != nil {
			t.Fatal(err)
		}
		_ = s
		c.Close()
	}
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}

// TestCloseRightAfterCalls: Close, coming while the loop is between its
// turn's work and its next wait (the caller's last reply just delivered),
// stops the loop at once: its Wake is not drained away unseen.
func TestCloseRightAfterCalls(t *testing.T) {
	b := startBroker(t, echo)
	ctx := context.Background()
	for round := range 40 {
		c := newClient(t, b)
		for range 20 {
			if _, err := c.Invoke(ctx, "tea.brew", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		closed := make(chan struct{})
		go func() {
			c.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Close did not return within 5 s", round)
		}
	}
}
