package broker_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
)

// batchWorker registers a domo worker that takes batches.
func batchWorker(t testing.TB, endpoint, service, credit string) *peer {
	return domoWorker(t, endpoint, service, credit, func(h mdp.Headers) mdp.Headers { return mdp.AppendHeader(h, mdp.HeaderBatch, "1") })
}

// expectBatch waits for a batch (skipping heartbeats) and returns its
// messages.
func (p *peer) expectBatch(what string) []mdp.Message {
	p.t.Helper()
	for {
		frames := p.recv(5e9)
		if frames == nil {
			p.t.Fatalf("%s: nothing received in 5s", what)
		}
		if !mdp.IsBatch(frames) {
			if m, err := mdp.Parse(frames); err == nil && m.Command == mdp.Heartbeat {
				continue
			}
			p.t.Fatalf("%s: got %q; want a batch", what, frames)
		}
		var msgs []mdp.Message
		for _, packed := range frames[1:] {
			sub, err := mdp.Unpack(nil, packed, 0)
			if err != nil {
				p.t.Fatalf("%s: Unpack: %v", what, err)
			}
			m, err := mdp.Parse(sub)
			if err != nil {
				p.t.Fatalf("%s: Parse(%q) = %v", what, sub, err)
			}
			msgs = append(msgs, m)
		}
		return msgs
	}
}

// sendBatch sends msgs as one batch.
func (p *peer) sendBatch(msgs ...mdp.Message) {
	p.t.Helper()
	var b mdp.Batch
	for _, m := range msgs {
		frames, err := m.Append(nil)
		if err != nil {
			p.t.Fatal(err)
		}
		if !b.Add(frames) {
			p.t.Fatal("batch full")
		}
	}
	p.send(b.Take()...)
}

// TestBatchesBetweenBrokerAndBatchWorker: requests dispatched in one turn of
// the loop reach a worker that takes batches as one batch, its batch of
// replies reaches each client, and a plain worker never sees a batch.
// TestBatchSplits: requests waiting when a batch worker with room for all
// of them comes go out in batches of at most mdp.BatchMaxMessages.
func TestBatchSplits(t *testing.T) {
	b, ep := testbroker.Start(t)
	c := dial(t, ep)
	const n = mdp.BatchMaxMessages + 8
	for i := range n {
		c.sendMsg(clientV1("tea", []byte(fmt.Sprint(i)))) // plain requests wait for a worker
	}
	waitFor(t, "the queued requests", func() bool { return stats(t, b).Counters.Requests == n })
	w := batchWorker(t, ep, "tea", fmt.Sprint(n))
	first := w.expectBatch("first batch")
	second := w.expectBatch("second batch")
	if len(first) != mdp.BatchMaxMessages || len(second) != n-mdp.BatchMaxMessages {
		t.Fatalf("batches of %d and %d; want %d and %d", len(first), len(second), mdp.BatchMaxMessages, n-mdp.BatchMaxMessages)
	}
	for i, m := range append(first, second...) {
		if got := string(m.Body[len(m.Body)-1]); got != fmt.Sprint(i) {
			t.Fatalf("request %d carries %q; want them in order", i, got)
		}
	}
	if st := stats(t, b).Counters; st.BatchesOut != 2 || st.BatchedOut != n {
		t.Errorf("BatchesOut %d, BatchedOut %d; want 2 and %d", st.BatchesOut, st.BatchedOut, n)
	}
}

func TestBatchesBetweenBrokerAndBatchWorker(t *testing.T) {
	b, ep := testbroker.Start(t)
	c := dial(t, ep)
	// Plain bodies wait for a worker of a service nobody offers yet, so
	// the four are queued when the worker comes and leave in one turn.
	for i := range 4 {
		c.sendMsg(clientV1("batched", []byte(fmt.Sprint("req", i))))
	}
	waitFor(t, "4 queued requests", func() bool { return stats(t, b).Counters.Requests == 4 })
	w := batchWorker(t, ep, "batched", "8")
	reqs := w.expectBatch("worker requests")
	if len(reqs) != 4 {
		t.Fatalf("batch of %d requests; want 4", len(reqs))
	}
	var replies []mdp.Message
	for i, r := range reqs {
		if r.Command != mdp.Request || string(r.Body[0]) != fmt.Sprint("req", i) {
			t.Fatalf("request %d = %+v; want REQUEST req%d, in order", i, r, i)
		}
		replies = append(replies, reply(r, bytes.ToUpper(r.Body[0])))
	}
	w.sendBatch(replies...)
	for i := range 4 {
		m := c.expect("reply")
		if want := fmt.Sprint("REQ", i); string(m.Body[0]) != want {
			t.Errorf("reply %d = %q; want %s", i, m.Body, want)
		}
	}
	got := stats(t, b).Counters
	if got.BatchesOut != 1 || got.BatchedOut != 4 || got.BatchedIn != 4 || got.Replies != 4 {
		t.Errorf("counters: %d batches out holding %d, %d in, %d replies; want 1, 4, 4, 4",
			got.BatchesOut, got.BatchedOut, got.BatchedIn, got.Replies)
	}

	// A plain worker with the same backlog gets one request at a time.
	for i := range 3 {
		c.sendMsg(clientV1("plain", []byte(fmt.Sprint("p", i))))
	}
	waitFor(t, "3 more queued requests", func() bool { return stats(t, b).Counters.Requests == 7 })
	pw := domoWorker(t, ep, "plain", "8")
	for i := range 3 {
		frames := pw.recv(5e9)
		if mdp.IsBatch(frames) {
			t.Fatalf("worker without the batch header got a batch: %q", frames)
		}
		if m, err := mdp.Parse(frames); err != nil || string(m.Body[0]) != fmt.Sprint("p", i) {
			t.Fatalf("plain worker got %q (%v); want request p%d", frames, err, i)
		}
	}
}

// TestMalformedBatchDropsTheWorker: a batch whose packed message does not
// unpack is malformed; the broker forgets the worker that sent it and goes
// on.
func TestMalformedBatchDropsTheWorker(t *testing.T) {
	b, ep := testbroker.Start(t)
	w := batchWorker(t, ep, "bad", "2")
	waitWorkers(t, b, 1)
	for _, frames := range [][][]byte{
		{[]byte(mdp.BatchHeader), {0x05, 'a'}},                                                  // truncated
		{[]byte(mdp.BatchHeader), mdp.AppendPacked(nil, [][]byte{[]byte(mdp.BatchHeader), {}})}, // nested
	} {
		w.send(frames...)
		if m := w.expect("DISCONNECT"); m.Command != mdp.Disconnect {
			t.Fatalf("after %q the worker got %v; want DISCONNECT", frames, m.Command)
		}
		waitWorkers(t, b, 0)
		w = batchWorker(t, ep, "bad", "2")
		waitWorkers(t, b, 1)
	}
	if n := stats(t, b).Counters.Malformed; n != 2 {
		t.Errorf("Malformed = %d; want 2", n)
	}
}

// TestMalformedBatchFromClient: a client's batch that does not unpack is
// counted and dropped; the broker goes on serving that client.
func TestMalformedBatchFromClient(t *testing.T) {
	b, ep := testbroker.Start(t)
	w := plainWorker(t, ep, "echo")
	waitWorkers(t, b, 1)
	c := dial(t, ep)
	c.send([]byte(mdp.BatchHeader), []byte{0x09, 'x'})
	c.sendMsg(clientV1("echo", []byte("hi")))
	req := w.expect("request after the bad batch")
	w.sendMsg(reply(req, []byte("HI")))
	if m := c.expect("reply"); string(m.Body[0]) != "HI" {
		t.Fatalf("reply = %q; want HI", m.Body)
	}
	if n := stats(t, b).Counters.Malformed; n != 1 {
		t.Errorf("Malformed = %d; want 1", n)
	}
}
