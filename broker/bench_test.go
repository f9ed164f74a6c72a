package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// BenchmarkRouteRaw measures the broker alone: one raw DEALER client keeps
// `window` requests in flight to raw echo workers that declare credit, so
// neither SDK is in the measurement.
func BenchmarkRouteRaw(b *testing.B) {
	for _, tc := range []struct {
		name    string
		workers int
		window  int
	}{{"w2/inflight1", 2, 1}, {"w2/inflight64", 2, 64}} {
		b.Run(tc.name, func(b *testing.B) {
			_, ep := testbroker.Start(b)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for range tc.workers {
				go rawEchoWorker(ctx, b, ep, "echo", "64")
			}
			c := dial(b, ep)
			body := request("echo", "r")
			frames, _ := (&mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte("echo"), Body: body}).Append(nil)
			// Wait until a worker answers.
			c.send(frames...)
			if c.recv(5*time.Second) == nil {
				b.Fatal("no reply from the echo workers")
			}
			b.ReportAllocs()
			b.ResetTimer()
			sent, got := 0, 0
			var buf [][]byte
			for got < b.N {
				for sent < b.N && sent-got < tc.window {
					if err := c.sock.Send(frames, true); err != nil {
						b.Fatal(err)
					}
					sent++
				}
				var err error
				if buf, err = c.sock.Recv(buf, true); err != nil {
					b.Fatal(err)
				}
				got++
			}
		})
	}
}

func rawEchoWorker(ctx context.Context, tb testing.TB, ep, service, credit string) {
	s, err := zsock.New(zsock.Dealer)
	if err != nil {
		tb.Error(err)
		return
	}
	defer s.Close()
	s.Connect(ep)
	h := mdp.AppendHeader(nil, mdp.HeaderCredit, credit)
	ready, _ := (&mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte(service), Body: [][]byte{h}}).Append(nil)
	s.Send(ready, true)
	p := zsock.NewPoller(s)
	var in, out [][]byte
	for ctx.Err() == nil {
		r, err := p.Wait(100 * time.Millisecond)
		if err != nil {
			return
		}
		if !r[0] {
			continue
		}
		for {
			if in, err = s.Recv(in, false); err != nil {
				break
			}
			m, err := mdp.Parse(in)
			if err != nil || m.Command != mdp.Request {
				continue
			}
			env, _ := mdp.ParseRequest(m.Body)
			rep := mdp.OKReply(env.Headers, env.Payload)
			reply := mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Reply, Address: m.Address, Body: rep.Append(nil)}
			out, _ = reply.Append(out[:0])
			s.Send(out, true)
		}
	}
}
