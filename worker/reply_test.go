package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

// testConn is a conn without a socket: serve delivers into its out queue,
// which a goroutine drains as the loop would, snapshotting every message the
// moment it takes it. A later write into memory a delivered message still
// uses shows as a snapshot mismatch, and under -race as a race.
func testConn(t *testing.T, w *Worker) *conn {
	t.Helper()
	c, err := newConn(w, "inproc://test", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.gen = 1
	c.epoch.Store(1)
	t.Cleanup(func() { c.idle.Close(); c.waker.Close() })
	return c
}

type taken struct {
	m    outMsg
	snap [][]byte // deep copy when taken
}

func deepCopy(f [][]byte) [][]byte {
	out := make([][]byte, len(f))
	for i, b := range f {
		out[i] = bytes.Clone(b)
	}
	return out
}

// serveOne runs serve for one request (frames body) and returns every
// message delivered, in order, checking that none changed after it was
// delivered.
func serveOne(t *testing.T, w *Worker, c *conn, version mdp.Version, body [][]byte) []taken {
	t.Helper()
	j := newJob(c, mdp.Message{Version: version, Address: []byte("client-A"), Body: body})
	j.epoch = 1
	var got []taken
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range c.out {
			got = append(got, taken{m: m, snap: deepCopy(m.frames)})
			if m.final {
				return
			}
		}
	}()
	w.serve(context.Background(), j)
	<-done
	for i, g := range got {
		if len(g.m.frames) != len(g.snap) {
			t.Fatalf("message %d: %d frames now, %d when taken", i, len(g.m.frames), len(g.snap))
		}
		for k := range g.snap {
			if !bytes.Equal(g.m.frames[k], g.snap[k]) {
				t.Fatalf("message %d frame %d changed after delivery: %q, was %q", i, k, g.m.frames[k], g.snap[k])
			}
		}
	}
	return got
}

func parseOut(t *testing.T, f [][]byte) (mdp.Message, mdp.ReplyBody) {
	t.Helper()
	m, err := mdp.Parse(f)
	if err != nil {
		t.Fatalf("Parse(%q) = %v", f, err)
	}
	if string(m.Address) != "client-A" {
		t.Fatalf("address %q", m.Address)
	}
	r, err := mdp.ParseReply(m.Body)
	if err != nil {
		t.Fatalf("ParseReply(%q) = %v", m.Body, err)
	}
	return m, r
}

func idHeaders(id string) mdp.Headers {
	if id == "" {
		return mdp.Headers{mdp.HeadersMagic}
	}
	return mdp.AppendHeader(nil, mdp.HeaderID, id)
}

// TestReplyStreamingReplies: partials and the final reply, in MDP/0.1 and
// 0.2, for ids in the room, at its edge and past it, have the right frames
// and none is written after delivery; a handler keeping req sees it intact.
func TestReplyStreamingReplies(t *testing.T) {
	ids := []string{"", "x", strings.Repeat("a", 40), strings.Repeat("b", 41), strings.Repeat("c", 300)}
	for _, version := range []mdp.Version{1, 2} {
		for _, id := range ids {
			t.Run(fmt.Sprintf("v%d/id%d", version, len(id)), func(t *testing.T) {
				w := New("tea", WithLogger(quiet()))
				var kept *Request
				w.HandleFunc("pour", func(ctx context.Context, req *Request) ([]byte, error) {
					kept = req
					if req.Streaming() {
						for i := range 6 {
							if err := req.Send([]byte("drop " + strconv.Itoa(i))); err != nil {
								return nil, err
							}
						}
					}
					return []byte("done"), nil
				})
				c := testConn(t, w)
				var hdr mdp.Headers
				if id != "" {
					hdr = mdp.AppendHeader(nil, mdp.HeaderID, id)
				}
				hdr = mdp.AppendHeader(hdr, mdp.HeaderAttempt, "3")
				reqHdr := bytes.Clone(hdr)
				body := mdp.RequestBody{Method: []byte("pour"), Headers: hdr, Payload: []byte("leaves")}.Append(nil)
				got := serveOne(t, w, c, version, body)
				wantN := 1
				if version == 2 {
					wantN = 7
				}
				if len(got) != wantN {
					t.Fatalf("%d messages; want %d", len(got), wantN)
				}
				for i, g := range got {
					m, r := parseOut(t, g.m.frames)
					headersEqual(t, r.Headers, idHeaders(id))
					if i < wantN-1 {
						if m.Command != mdp.Partial || g.m.final || string(r.Payload) != "drop "+strconv.Itoa(i) {
							t.Fatalf("message %d: %s final=%v %q", i, m.Command, g.m.final, r.Payload)
						}
						continue
					}
					want := mdp.Reply
					if version == 2 {
						want = mdp.Final
					}
					if m.Command != want || !g.m.final || !r.OK() || string(r.Payload) != "done" {
						t.Fatalf("final: %s final=%v %s %q", m.Command, g.m.final, r.Status, r.Payload)
					}
				}
				// Outer frame slices of different messages never share memory.
				for a := range got {
					for b := a + 1; b < len(got); b++ {
						fa, fb := got[a].m.frames, got[b].m.frames
						if &fa[:cap(fa)][cap(fa)-1] == &fb[:cap(fb)][cap(fb)-1] {
							t.Fatalf("messages %d and %d share their frames slice", a, b)
						}
					}
				}
				if kept.Method != "pour" || kept.ID != id || kept.Attempt != 3 || !bytes.Equal(kept.Headers, reqHdr) || string(kept.Payload) != "leaves" {
					t.Fatalf("kept request %+v", kept)
				}
				if version == 2 {
					if err := kept.Send([]byte("late")); !errors.Is(err, errHandlerReturned) {
						t.Fatalf("Send after return = %v", err)
					}
				}
			})
		}
	}
}

// TestReplyErrorReplies: unknown method (with bytes that need quoting),
// a handler error, a panic and a passed deadline, each with the id echoed
// and the message text of before the change.
func TestReplyErrorReplies(t *testing.T) {
	w := New("tea", WithLogger(quiet()))
	w.HandleFunc("fail", func(ctx context.Context, req *Request) ([]byte, error) {
		return nil, domo.Errorf(domo.CodeForbidden, "no %s", req.Method)
	})
	w.HandleFunc("boom", func(ctx context.Context, req *Request) ([]byte, error) { panic("x") })
	c := testConn(t, w)
	weird := "no\xffsuch \"m\"\n"
	past := mdp.AppendDeadline(mdp.AppendHeader(nil, mdp.HeaderID, "d1"), time.Now().Add(-time.Second))
	cases := []struct {
		method string
		hdr    mdp.Headers
		status domo.Code
		msg    string
	}{
		{weird, idHeaders("u1"), domo.CodeUnknownMethod, fmt.Sprintf("service %q has no method %q", "tea", weird)},
		{"", idHeaders(strings.Repeat("L", 100)), domo.CodeUnknownMethod, fmt.Sprintf("service %q has no method %q", "tea", "")},
		{"fail", idHeaders("f1"), domo.CodeForbidden, "no fail"},
		{"boom", idHeaders("b1"), domo.CodeInternal, `method "boom" failed`},
		{"fail", past, domo.CodeDeadlineExceeded, `deadline passed before "fail" started`},
	}
	for _, version := range []mdp.Version{1, 2} {
		for _, tc := range cases {
			id, _ := tc.hdr.Get(mdp.HeaderID)
			body := mdp.RequestBody{Method: []byte(tc.method), Headers: tc.hdr, Payload: nil}.Append(nil)
			got := serveOne(t, w, c, version, body)
			if len(got) != 1 {
				t.Fatalf("%q: %d messages", tc.method, len(got))
			}
			_, r := parseOut(t, got[0].m.frames)
			headersEqual(t, r.Headers, idHeaders(string(id)))
			var e domo.Error
			if err := json.Unmarshal(r.Payload, &e); err != nil || string(r.Status) != string(tc.status) || e.Message != tc.msg {
				t.Errorf("v%d %q: %s %s; want %s %q", version, tc.method, r.Status, r.Payload, tc.status, tc.msg)
			}
		}
	}
}

// TestReplyRaw: plain MDP bodies of 0 to 9 frames; the raw handler keeps
// its body, echoes it, or appends to it (twice, keeping the first: the
// second must not write over it); its body is intact afterwards.
func TestReplyRaw(t *testing.T) {
	for _, mode := range []string{"echo", "append", "upper"} {
		for n := 1; n <= 9; n++ {
			t.Run(fmt.Sprintf("%s/%d", mode, n), func(t *testing.T) {
				w := New("tea", WithLogger(quiet()))
				var kept [][]byte
				w.HandleRaw(func(ctx context.Context, body [][]byte) ([][]byte, error) {
					kept = body
					switch mode {
					case "echo":
						return body, nil
					case "append":
						reply := append(body, []byte("tail"))
						_ = append(body, []byte("other"))
						return reply, nil
					}
					out := make([][]byte, len(body))
					for i, f := range body {
						out[i] = bytes.ToUpper(f)
					}
					return out, nil
				})
				c := testConn(t, w)
				body := make([][]byte, n)
				for i := range body {
					body[i] = []byte("f" + strconv.Itoa(i))
				}
				for _, version := range []mdp.Version{1, 2} {
					got := serveOne(t, w, c, version, body)
					if len(got) != 1 {
						t.Fatalf("%d messages", len(got))
					}
					m, err := mdp.Parse(got[0].m.frames)
					if err != nil {
						t.Fatal(err)
					}
					want := deepCopy(body)
					switch mode {
					case "append":
						want = append(want, []byte("tail"))
					case "upper":
						for i := range want {
							want[i] = bytes.ToUpper(want[i])
						}
					}
					if len(m.Body) != len(want) {
						t.Fatalf("v%d reply body %q; want %q", version, m.Body, want)
					}
					for i := range want {
						if !bytes.Equal(m.Body[i], want[i]) {
							t.Fatalf("v%d reply body %q; want %q", version, m.Body, want)
						}
					}
					if len(kept) != n {
						t.Fatalf("kept body has %d frames; want %d", len(kept), n)
					}
					for i := range kept {
						if string(kept[i]) != "f"+strconv.Itoa(i) {
							t.Fatalf("kept body %q changed", kept)
						}
					}
				}
			})
		}
	}
}

// TestReplyOverLimitsEchoesID: a reply over the limits becomes too_large with the
// id echoed, for ids in and past the room.
func TestReplyOverLimitsEchoesID(t *testing.T) {
	for _, id := range []string{"1", strings.Repeat("z", 60)} {
		w := New("tea", WithLogger(quiet()), WithLimits(mdp.Limits{MaxFrames: 8, MaxFrameSize: 1024, MaxMessageSize: 4096}))
		w.HandleFunc("big", func(ctx context.Context, req *Request) ([]byte, error) { return make([]byte, 2000), nil })
		c := testConn(t, w)
		body := mdp.RequestBody{Method: []byte("big"), Headers: idHeaders(id), Payload: nil}.Append(nil)
		for _, version := range []mdp.Version{1, 2} {
			got := serveOne(t, w, c, version, body)
			_, r := parseOut(t, got[0].m.frames)
			if string(r.Status) != string(domo.CodeTooLarge) {
				t.Fatalf("status %s", r.Status)
			}
			headersEqual(t, r.Headers, idHeaders(id))
		}
	}
}

// TestReplyConcurrentServe: many requests served at once on one conn,
// streaming, each checked; under -race any sharing between jobs shows.
func TestReplyConcurrentServe(t *testing.T) {
	w := New("tea", WithLogger(quiet()))
	w.HandleFunc("pour", func(ctx context.Context, req *Request) ([]byte, error) {
		for i := range 3 {
			if err := req.Send([]byte(req.ID + "/" + strconv.Itoa(i))); err != nil {
				return nil, err
			}
		}
		return []byte(req.ID), nil
	})
	c := testConn(t, w)
	const n = 64
	var taken [][][]byte
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		finals := 0
		for m := range c.out {
			mu.Lock()
			taken = append(taken, m.frames)
			mu.Unlock()
			if m.final {
				if finals++; finals == n {
					return
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := strconv.Itoa(i) + strings.Repeat("-", i) // some in the room, some not
			j := &job{c: c, epoch: 1, version: 2, address: []byte("client-A")}
			body := mdp.RequestBody{Method: []byte("pour"), Headers: idHeaders(id), Payload: nil}.Append(nil)
			j.body = append(j.bodyRoom[:0], body...)
			w.serve(context.Background(), j)
		}()
	}
	wg.Wait()
	<-done
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]int{}
	for _, f := range taken {
		_, r := parseOut(t, f)
		id, _ := r.Headers.Get(mdp.HeaderID)
		p := string(r.Payload)
		if !strings.HasPrefix(p, string(id)) {
			t.Fatalf("reply %q carries id %q", p, id)
		}
		seen[string(id)]++
	}
	if len(seen) != n {
		t.Fatalf("%d ids seen; want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 4 {
			t.Fatalf("id %q: %d messages; want 4", id, k)
		}
	}
}
