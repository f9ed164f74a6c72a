package worker

import (
	"context"
	"testing"
	"time"

	"github.com/domo-framework/domo/mdp"
)

// TestAnswerAllocations: answering a request allocates only what the
// handler is handed as its own (the Request, a copy of its headers, its
// id as a string) and its deadline's context: the method's name comes
// from the handler table, and the reply's headers, body frames and MDP
// frames are built in the job's room.
func TestAnswerAllocations(t *testing.T) {
	w := New("echo")
	w.Handle("say", HandlerFunc(func(_ context.Context, req *Request) ([]byte, error) {
		return req.Payload, nil
	}))
	hdr := mdp.AppendHeader(nil, mdp.HeaderID, "0123456789abcdef")
	hdr = mdp.AppendDeadline(hdr, time.Now().Add(time.Hour))
	body := mdp.RequestBody{Method: []byte("say"), Headers: hdr, Payload: []byte("hello")}.Append(nil)
	ctx := context.Background()
	address := []byte("client")
	var reply [][]byte
	n := testing.AllocsPerRun(100, func() {
		j := &job{version: 1, address: address} // one allocation, as in dispatch
		j.body = append(j.bodyRoom[:0], body...)
		reply = j.finalFrames(w.answer(ctx, j))
	})
	if string(reply[len(reply)-1]) != "hello" {
		t.Fatalf("reply %q; want the payload echoed last", reply)
	}
	if n > 5 {
		t.Errorf("%v allocations a request; want at most 5 (job, Request, headers, id, deadline)", n)
	}
}
