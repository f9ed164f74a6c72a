package mdp_test

import (
	"testing"
	"time"

	"github.com/domo-framework/domo/mdp"
)

// The benchmarks cover the hot path of a broker and a worker. Each should
// run at 0 allocs/op.

// BenchmarkParseWorkerRequest decodes a worker REQUEST carrying a domo
// envelope, as a worker does for every request: MDP, the envelope, the id
// and the deadline.
func BenchmarkParseWorkerRequest(b *testing.B) {
	frames := fr(mdp.WorkerV2, "\x02", route, "", "tea.brew", vReqHeaders, `{"cups":2}`)
	b.ReportAllocs()
	for b.Loop() {
		m, err := mdp.Parse(frames)
		if err != nil {
			b.Fatal(err)
		}
		r, err := mdp.ParseRequest(m.Body)
		if err != nil {
			b.Fatal(err)
		}
		if id, ok := r.Headers.Get(mdp.HeaderID); !ok || len(id) != 2 {
			b.Fatal("no id")
		}
		if _, ok := r.Headers.Deadline(); !ok {
			b.Fatal("no deadline")
		}
	}
}

// BenchmarkParseClientRequest decodes what a broker receives from a client:
// identity frame dropped, an MDPC02 REQUEST, the limits checked.
func BenchmarkParseClientRequest(b *testing.B) {
	frames := fr("\x00\x6b\x8b\x45\x67", mdp.ClientV2, "\x01", "tea", "tea.brew", vReqHeaders, `{"cups":2}`)
	limits := mdp.DefaultLimits()
	b.ReportAllocs()
	for b.Loop() {
		if err := limits.Check(frames); err != nil {
			b.Fatal(err)
		}
		m, err := mdp.Parse(frames[1:])
		if err != nil || mdp.IsMMI(m.Service) {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendReply encodes a worker REPLY with an envelope body into a
// reused slice, as a worker sends it.
func BenchmarkAppendReply(b *testing.B) {
	headers := mdp.Headers(vReplyHeaders)
	payload := []byte(`{"tea":"green"}`)
	addr := []byte(route)
	dst := make([][]byte, 0, 16)
	body := make([][]byte, 0, 3)
	b.ReportAllocs()
	for b.Loop() {
		reply := mdp.OKReply(headers, payload)
		body = reply.Append(body[:0])
		m := mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Reply, Address: addr, Body: body}
		var err error
		dst, err = m.Append(dst[:0])
		if err != nil || len(dst) != 8 {
			b.Fatal(err)
		}
	}
}

func BenchmarkHeadersGetID(b *testing.B) {
	h := mdp.Headers(hdr(mdp.HeaderTraceparent, vTrace, mdp.HeaderDeadline, vDeadline, mdp.HeaderID, "r1"))
	b.ReportAllocs()
	for b.Loop() {
		if v, ok := h.Get(mdp.HeaderID); !ok || len(v) != 2 {
			b.Fatal("no id")
		}
	}
}

func BenchmarkHeadersDeadline(b *testing.B) {
	h := mdp.Headers(vReqHeaders)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := h.Deadline(); !ok {
			b.Fatal("no deadline")
		}
	}
}

// BenchmarkAppendHeader builds the headers of a request into a reused
// buffer: id, deadline and traceparent.
func BenchmarkAppendHeader(b *testing.B) {
	buf := make(mdp.Headers, 0, 256)
	id := []byte("0123456789abcdef")
	deadline := time.UnixMilli(1767225600000)
	b.ReportAllocs()
	for b.Loop() {
		h := mdp.AppendHeader(buf[:0], mdp.HeaderID, id)
		h = mdp.AppendDeadline(h, deadline)
		h = mdp.AppendHeader(h, mdp.HeaderTraceparent, vTrace)
		if len(h) < 80 {
			b.Fatal("short")
		}
	}
}
