package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
)

func stats(t *testing.T, b *broker.Broker) broker.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitWorkers(t *testing.T, b *broker.Broker, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d workers", n), func() bool { return len(stats(t, b).Workers) == n })
}

func replyEnvelope(t *testing.T, m mdp.Message) mdp.ReplyBody {
	t.Helper()
	r, err := mdp.ParseReply(m.Body)
	if err != nil {
		t.Fatalf("ParseReply(%q) = %v", m.Body, err)
	}
	return r
}

func TestPlainClientAndWorkerRoundTrip(t *testing.T) {
	b, ep := testbroker.Start(t)
	w := plainWorker(t, ep, "echo")
	waitWorkers(t, b, 1)
	c := dial(t, ep)
	c.sendMsg(clientV1("echo", []byte("hello"), []byte("world")))

	req := w.expect("worker request")
	if req.Command != mdp.Request || req.Version != 1 || len(req.Address) != 8 {
		t.Fatalf("worker got %+v; want an MDPW01 REQUEST with an 8-byte route", req)
	}
	if got := fmt.Sprintf("%q", req.Body); got != `["hello" "world"]` {
		t.Fatalf("request body = %s; want [hello world]", got)
	}
	w.sendMsg(reply(req, []byte("HELLO"), []byte("WORLD")))

	rep := c.expect("client reply")
	if rep.Role != mdp.Client || rep.Version != 1 || string(rep.Service) != "echo" {
		t.Fatalf("client got %+v; want an MDPC01 reply from echo", rep)
	}
	if got := fmt.Sprintf("%q", rep.Body); got != `["HELLO" "WORLD"]` {
		t.Fatalf("reply body = %s; want [HELLO WORLD]", got)
	}
}

// TestDedicatedThread: with its loop blocking a thread in epoll_wait, the
// broker routes, answers work posted to it (Stats, through its Waker) and
// stops.
func TestDedicatedThread(t *testing.T) {
	b, ep := testbroker.Start(t, func(c *broker.Config) { c.DedicatedThread = true })
	w := plainWorker(t, ep, "echo")
	waitWorkers(t, b, 1)
	c := dial(t, ep)
	for i := range 50 {
		c.sendMsg(clientV1("echo", []byte(fmt.Sprint(i))))
		w.sendMsg(reply(w.expect("worker request"), []byte(fmt.Sprint("re ", i))))
		if got := c.expect("client reply"); string(got.Body[0]) != fmt.Sprint("re ", i) {
			t.Fatalf("reply %d = %q", i, got.Body)
		}
	}
	if s := stats(t, b); s.Counters.Requests < 50 {
		t.Fatalf("Requests = %d; want 50", s.Counters.Requests)
	}
}

func TestUnknownServiceIsRefusedForDomoClients(t *testing.T) {
	b, ep := testbroker.Start(t)
	c := dial(t, ep)
	c.sendMsg(clientV1("nosuch", request("brew", "r1")...))
	rep := replyEnvelope(t, c.expect("reply"))
	if err := rep.Err(); !errors.Is(err, domo.ErrUnknownService) {
		t.Fatalf("reply error = %v; want unknown_service", err)
	}
	if id, _ := rep.Headers.Get(mdp.HeaderID); string(id) != "r1" {
		t.Fatalf("reply id = %q; want r1", id)
	}
	// A plain client waits for a worker instead, as RFC 7 asks.
	c.sendMsg(clientV1("later", []byte("x")))
	c.expectNothing("plain request for an unknown service", 100*time.Millisecond)
	w := plainWorker(t, ep, "later")
	req := w.expect("queued request")
	w.sendMsg(reply(req, []byte("done")))
	if got := c.expect("reply"); string(got.Body[0]) != "done" {
		t.Fatalf("reply = %q; want done", got.Body)
	}
	if s := stats(t, b); s.Counters.UnknownService != 1 {
		t.Fatalf("UnknownService = %d; want 1", s.Counters.UnknownService)
	}
}

// TestMaxServices: requests for services no worker offers wait in queues
// of their own only up to Config.MaxServices services; past it they are
// answered overloaded, and a worker's service is still taken.
func TestMaxServices(t *testing.T) {
	b, ep := testbroker.Start(t, func(c *broker.Config) { c.MaxServices = 2 })
	c := dial(t, ep)
	c.sendMsg(clientV1("one", []byte("x")))
	c.sendMsg(clientV1("two", []byte("x")))
	c.sendMsg(clientV1("three", []byte("x")))
	rep := replyEnvelope(t, c.expect("reply for a third service"))
	if err := rep.Err(); !errors.Is(err, domo.ErrOverloaded) {
		t.Fatalf("third service's request = %v; want overloaded", err)
	}
	c.expectNothing("replies for the two queued", 50*time.Millisecond)
	w := plainWorker(t, ep, "echo") // a fourth service, offered: taken
	waitWorkers(t, b, 1)
	if s := stats(t, b); s.Counters.Overloaded != 1 || len(s.Services) == 0 {
		t.Fatalf("stats %+v; want one overloaded answer and the echo service", s)
	}
	c.sendMsg(clientV1("echo", []byte("hi")))
	w.sendMsg(reply(w.expect("echo request"), []byte("hi")))
	if got := c.expect("echo reply"); string(got.Body[0]) != "hi" {
		t.Fatalf("echo reply = %q", got.Body)
	}
}

func TestNegativeMaxServicesIsRefused(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.MaxServices = []string{"tcp://127.0.0.1:*"}, -1
	if _, err := broker.New(cfg); err == nil || !strings.Contains(err.Error(), "max services") {
		t.Fatalf("New with MaxServices -1 = %v; want an error about max services", err)
	}
}

func TestCreditAllowsManyRequestsInFlight(t *testing.T) {
	b, ep := testbroker.Start(t)
	w := domoWorker(t, ep, "tea", "3")
	waitWorkers(t, b, 1)
	c := dial(t, ep)
	for i := range 4 {
		c.sendMsg(clientV1("tea", request("brew", fmt.Sprint("r", i))...))
	}
	var reqs []mdp.Message
	for i := range 3 {
		reqs = append(reqs, w.expect(fmt.Sprint("request ", i)))
	}
	w.expectNothing("a fourth request beyond credit 3", 100*time.Millisecond)
	w.sendMsg(reply(reqs[0], mdp.OKReply(mdp.AppendHeader(nil, mdp.HeaderID, "r0"), nil).Append(nil)...))
	fourth := w.expect("fourth request after a reply freed credit")
	env, err := mdp.ParseRequest(fourth.Body)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := env.Headers.Get(mdp.HeaderID); string(id) != "r3" {
		t.Fatalf("fourth request id = %q; want r3", id)
	}
	if got := stats(t, b).Workers[0]; got.Credit != 3 || got.InFlight != 3 || got.Protocol != "MDPW01+domo" {
		t.Fatalf("worker info = %+v; want credit 3, 3 in flight, MDPW01+domo", got)
	}
}

func TestDispatchIsRoundRobin(t *testing.T) {
	b, ep := testbroker.Start(t)
	w1 := plainWorker(t, ep, "svc")
	waitWorkers(t, b, 1)
	w2 := plainWorker(t, ep, "svc")
	waitWorkers(t, b, 2)
	c := dial(t, ep)
	for round := range 3 {
		c.sendMsg(clientV1("svc", []byte("a")))
		r1 := w1.expect("first worker, round " + fmt.Sprint(round))
		w1.sendMsg(reply(r1, []byte("1")))
		c.expect("reply")
		c.sendMsg(clientV1("svc", []byte("b")))
		r2 := w2.expect("second worker, round " + fmt.Sprint(round))
		w2.sendMsg(reply(r2, []byte("2")))
		c.expect("reply")
	}
}

func TestFullQueueAnswersOverloaded(t *testing.T) {
	b, ep := testbroker.Start(t, func(c *broker.Config) { c.QueueLimit = 2 })
	w := plainWorker(t, ep, "slow")
	waitWorkers(t, b, 1)
	c := dial(t, ep)
	for i := range 4 { // one in flight, two queued, one refused
		c.sendMsg(clientV1("slow", request("m", fmt.Sprint("r", i))...))
	}
	rep := replyEnvelope(t, c.expect("overloaded reply"))
	if err := rep.Err(); !errors.Is(err, domo.ErrOverloaded) {
		t.Fatalf("reply error = %v; want overloaded", err)
	}
	if id, _ := rep.Headers.Get(mdp.HeaderID); string(id) != "r3" {
		t.Fatalf("overloaded reply id = %q; want r3", id)
	}
	w.expect("first request")
	if s := stats(t, b); s.Counters.Overloaded != 1 || s.Services[0].Queued != 2 {
		t.Fatalf("Overloaded = %d, queued = %d; want 1, 2", s.Counters.Overloaded, s.Services[0].Queued)
	}
}

func TestExpiredRequestIsNotDelivered(t *testing.T) {
	b, ep := testbroker.Start(t)
	w := plainWorker(t, ep, "svc")
	waitWorkers(t, b, 1)
	c := dial(t, ep)
	c.sendMsg(clientV1("svc", request("m", "busy")...))
	first := w.expect("first request")
	c.sendMsg(clientV1("svc", request("m", "late", withDeadline(time.Now().Add(30*time.Millisecond)))...))
	c.sendMsg(clientV1("svc", request("m", "past", withDeadline(time.Now().Add(-time.Second)))...))
	time.Sleep(60 * time.Millisecond) // let the queued one expire
	w.sendMsg(reply(first, []byte("ok")))
	c.expect("first reply")
	w.expectNothing("expired requests", 150*time.Millisecond)
	if s := stats(t, b); s.Counters.Expired != 2 {
		t.Fatalf("Expired = %d; want 2", s.Counters.Expired)
	}
}

func TestLostWorkerFailsOrRetriesItsRequests(t *testing.T) {
	b, ep := testbroker.Start(t)
	dying := domoWorker(t, ep, "svc", "2")
	waitWorkers(t, b, 1)
	c := dial(t, ep)
	c.sendMsg(clientV1("svc", request("m", "once")...))
	c.sendMsg(clientV1("svc", request("m", "again", withRetry)...))
	dying.expect("first")
	dying.expect("second")
	dying.sock.Close() // it goes silent; the broker notices by heartbeat

	rep := replyEnvelope(t, c.expect("error for the request that allowed no retry"))
	if err := rep.Err(); !errors.Is(err, domo.ErrUnavailable) {
		t.Fatalf("reply error = %v; want unavailable", err)
	}
	if id, _ := rep.Headers.Get(mdp.HeaderID); string(id) != "once" {
		t.Fatalf("error reply id = %q; want once", id)
	}
	survivor := plainWorker(t, ep, "svc")
	req := survivor.expect("retried request")
	env, _ := mdp.ParseRequest(req.Body)
	if id, _ := env.Headers.Get(mdp.HeaderID); string(id) != "again" {
		t.Fatalf("retried id = %q; want again", id)
	}
	survivor.sendMsg(reply(req, mdp.OKReply(env.Headers, []byte("42")).Append(nil)...))
	if got := replyEnvelope(t, c.expect("retried reply")); string(got.Payload) != "42" {
		t.Fatalf("payload = %q; want 42", got.Payload)
	}
	s := stats(t, b)
	if s.Counters.WorkersExpired < 1 || s.Counters.Retried != 1 || s.Counters.WorkerLost != 1 { // the survivor, which never heartbeats, may expire too on a slow machine
		t.Fatalf("counters = %+v; want 1 or more expired workers, 1 retried, 1 lost", s.Counters)
	}
}

func TestStreamedRepliesReachV2ClientsOnly(t *testing.T) {
	b, ep := testbroker.Start(t)
	w := domoWorker(t, ep, "feed", "4")
	waitWorkers(t, b, 1)

	v2 := dial(t, ep)
	v2.sendMsg(mdp.Message{Role: mdp.Client, Version: 2, Command: mdp.Request, Service: []byte("feed"), Body: request("tail", "s1")})
	req := w.expect("v2 request")
	if req.Version != 2 {
		t.Fatalf("a domo worker got a v%d REQUEST for a v2 client; want v2", req.Version)
	}
	for _, part := range []string{"a", "b"} {
		w.sendMsg(mdp.Message{Role: mdp.Worker, Version: 2, Command: mdp.Partial, Address: req.Address, Body: [][]byte{[]byte(part)}})
	}
	w.sendMsg(mdp.Message{Role: mdp.Worker, Version: 2, Command: mdp.Final, Address: req.Address, Body: [][]byte{[]byte("end")}})
	for _, want := range []struct {
		cmd  mdp.Command
		body string
	}{{mdp.Partial, "a"}, {mdp.Partial, "b"}, {mdp.Final, "end"}} {
		m := v2.expect(want.body)
		if m.Version != 2 || m.Command != want.cmd || string(m.Body[0]) != want.body {
			t.Fatalf("v2 client got %v %q; want %v %q", m.Command, m.Body, want.cmd, want.body)
		}
	}

	v1 := dial(t, ep)
	v1.sendMsg(clientV1("feed", request("tail", "s2")...))
	req = w.expect("v1 request")
	if req.Version != 1 {
		t.Fatalf("worker got a v%d REQUEST for a v1 client; want v1", req.Version)
	}
	w.sendMsg(mdp.Message{Role: mdp.Worker, Version: 2, Command: mdp.Partial, Address: req.Address, Body: [][]byte{[]byte("dropped")}})
	w.sendMsg(reply(req, []byte("only")))
	if m := v1.expect("v1 reply"); string(m.Body[0]) != "only" {
		t.Fatalf("v1 client got %q; want only the final reply", m.Body)
	}
}

func TestMMI(t *testing.T) {
	b, ep := testbroker.Start(t)
	domoWorker(t, ep, "tea", "5")
	waitWorkers(t, b, 1)
	c := dial(t, ep)
	for _, tt := range []struct{ service, arg, want string }{
		{mdp.MMIService, "tea", "200"},
		{mdp.MMIService, "coffee", "404"},
		{"mmi.nosuch", "", "501"},
	} {
		c.sendMsg(clientV1(tt.service, []byte(tt.arg)))
		m := c.expect(tt.service)
		if string(m.Service) != tt.service || string(m.Body[0]) != tt.want {
			t.Errorf("%s %q = %s %q; want %q", tt.service, tt.arg, m.Service, m.Body, tt.want)
		}
	}
	c.sendMsg(clientV1(mdp.MMIServices, request("", "q1")...))
	rep := replyEnvelope(t, c.expect("mmi.services"))
	var services []mdp.ServiceInfo
	if err := json.Unmarshal(rep.Payload, &services); err != nil {
		t.Fatal(err)
	}
	if len(services) != 1 || services[0].Name != "tea" || services[0].Workers != 1 || services[0].Capacity != 5 {
		t.Fatalf("mmi.services = %+v; want tea with 1 worker, capacity 5", services)
	}
}

func TestBadInputIsCountedAndServiceGoesOn(t *testing.T) {
	b, ep := testbroker.Start(t, func(c *broker.Config) { c.Limits = mdp.Limits{MaxFrames: 16, MaxFrameSize: 1024, MaxMessageSize: 4096} })
	w := plainWorker(t, ep, "echo")
	waitWorkers(t, b, 1)

	bad := dial(t, ep)
	bad.send([]byte("garbage"))                                                   // no empty frame, not a v2 header
	bad.send([]byte{}, []byte("MDPX01"), []byte("echo"))                          // unknown protocol
	bad.send([]byte{}, []byte(mdp.WorkerV1), []byte{0x09})                        // unknown command
	bad.send([]byte{}, []byte(mdp.WorkerV1), []byte{0x02, 0x02})                  // two-byte command
	bad.send([]byte{})                                                            // nothing after the empty frame
	bad.send([]byte(mdp.ClientV2), []byte{0x02}, []byte("echo"))                  // a client may not send PARTIAL
	bad.send([]byte{}, []byte(mdp.WorkerV1), []byte{0x03}, []byte{})              // REPLY without an address
	bad.send([]byte{}, []byte(mdp.WorkerV1), []byte{0x03}, []byte("a"), []byte{}) // REPLY from an unknown worker
	if m := bad.expect("DISCONNECT for a reply from a stranger"); m.Command != mdp.Disconnect {
		t.Fatalf("got %v; want DISCONNECT", m.Command)
	}
	tooMany := make([][]byte, 20)
	for i := range tooMany {
		tooMany[i] = []byte("x")
	}
	bad.sendMsg(clientV1("echo", tooMany...))
	bad.sendMsg(clientV1("echo", request("m", "big")[0], request("m", "big")[1], make([]byte, 2048)))
	rep := replyEnvelope(t, bad.expect("too_large reply"))
	if err := rep.Err(); !errors.Is(err, domo.ErrTooLarge) {
		t.Fatalf("reply error = %v; want too_large", err)
	}

	// Raw bytes on a TCP connection: not even ZMTP.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ep, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\xfe garbage"))
	conn.Close()

	// The broker still serves.
	c := dial(t, ep)
	c.sendMsg(clientV1("echo", []byte("still here")))
	req := w.expect("request after garbage")
	w.sendMsg(reply(req, req.Body...))
	if m := c.expect("reply after garbage"); string(m.Body[0]) != "still here" {
		t.Fatalf("reply = %q", m.Body)
	}
	s := stats(t, b)
	if s.Counters.Malformed < 5 || s.Counters.TooLarge != 2 || s.Counters.Unexpected < 2 {
		t.Fatalf("counters = %+v; want >=5 malformed, 2 too large, >=2 unexpected", s.Counters)
	}
}

func TestWorkerProtocolErrorsGetDisconnect(t *testing.T) {
	b, ep := testbroker.Start(t)
	w := plainWorker(t, ep, "svc")
	waitWorkers(t, b, 1)
	w.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte("svc")})
	if m := w.expect("DISCONNECT after a second READY"); m.Command != mdp.Disconnect {
		t.Fatalf("got %v; want DISCONNECT", m.Command)
	}
	waitWorkers(t, b, 0)

	mmi := dial(t, ep)
	mmi.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte("mmi.service")})
	if m := mmi.expect("DISCONNECT for READY on mmi.*"); m.Command != mdp.Disconnect {
		t.Fatalf("got %v; want DISCONNECT", m.Command)
	}

	leaving := plainWorker(t, ep, "svc")
	waitWorkers(t, b, 1)
	leaving.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Disconnect})
	waitWorkers(t, b, 0)
}

func TestBrokerSendsHeartbeats(t *testing.T) {
	b, ep := testbroker.Start(t)
	w := plainWorker(t, ep, "svc")
	waitWorkers(t, b, 1)
	beats := 0
	deadline := time.Now().Add(5 * time.Second)
	for beats < 3 && time.Now().Before(deadline) {
		frames := w.recv(time.Until(deadline))
		if frames == nil {
			break
		}
		if m, err := mdp.Parse(frames); err == nil && m.Command == mdp.Heartbeat {
			beats++
			w.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Heartbeat})
		}
	}
	if beats < 3 {
		t.Fatalf("got %d heartbeats in 5s with a %v interval; want 3", beats, testbroker.HeartbeatInterval)
	}
	if n := len(stats(t, b).Workers); n != 1 {
		t.Fatalf("a worker that heartbeats was dropped: %d workers", n)
	}
}

func TestShutdownDrainsThenDisconnects(t *testing.T) {
	b, ep := testbroker.Start(t)
	w := plainWorker(t, ep, "svc")
	waitWorkers(t, b, 1)
	c := dial(t, ep)
	c.sendMsg(clientV1("svc", request("m", "inflight")...))
	req := w.expect("request")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- b.Shutdown(ctx)
	}()
	waitFor(t, "draining", func() bool {
		s, err := b.Stats(context.Background())
		return err == nil && s.Draining
	})
	c.sendMsg(clientV1("svc", request("m", "refused")...))
	if err := replyEnvelope(t, c.expect("refusal while draining")).Err(); !errors.Is(err, domo.ErrUnavailable) {
		t.Fatalf("error = %v; want unavailable", err)
	}
	w.sendMsg(reply(req, mdp.OKReply(mdp.AppendHeader(nil, mdp.HeaderID, "inflight"), []byte("done")).Append(nil)...))
	if got := replyEnvelope(t, c.expect("in-flight reply")); string(got.Payload) != "done" {
		t.Fatalf("payload = %q", got.Payload)
	}
	if m := w.expect("DISCONNECT at shutdown"); m.Command != mdp.Disconnect {
		t.Fatalf("got %v; want DISCONNECT", m.Command)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if _, err := b.Stats(context.Background()); !errors.Is(err, domo.ErrClosed) {
		t.Fatalf("Stats after shutdown = %v; want ErrClosed", err)
	}
}

func TestIPCEndpoint(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "broker.sock")
	b, _ := testbroker.Start(t, func(c *broker.Config) {
		c.Listen = []string{"tcp://127.0.0.1:*", "ipc://" + sock}
	})
	eps := b.Endpoints()
	if len(eps) != 2 || eps[1] != "ipc://"+sock {
		t.Fatalf("Endpoints = %q; want a tcp and the ipc endpoint", eps)
	}
	w := plainWorker(t, eps[0], "svc") // a worker on tcp, a client on ipc
	waitWorkers(t, b, 1)
	c := dial(t, eps[1])
	c.sendMsg(clientV1("svc", []byte("over ipc")))
	req := w.expect("request")
	w.sendMsg(reply(req, req.Body...))
	if m := c.expect("reply over ipc"); string(m.Body[0]) != "over ipc" {
		t.Fatalf("reply = %q", m.Body)
	}
}

// TestHeartbeatsLeaveInOneSweep: idle workers that registered at different
// times are sent their heartbeats together, once an interval.
func TestHeartbeatsLeaveInOneSweep(t *testing.T) {
	const ivl = 200 * time.Millisecond
	b, ep := testbroker.Start(t, func(c *broker.Config) { c.HeartbeatInterval = ivl })
	first := plainWorker(t, ep, "svc")
	waitWorkers(t, b, 1)
	time.Sleep(ivl / 2)
	second := plainWorker(t, ep, "svc")
	waitWorkers(t, b, 2)

	// Each goroutine owns its worker's socket and records when heartbeats come.
	beats := make([][]time.Time, 2)
	var wg sync.WaitGroup
	for i, w := range []*peer{first, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			until := time.Now().Add(10 * ivl)
			for time.Now().Before(until) {
				frames := w.recv(time.Until(until))
				if frames == nil {
					return
				}
				if m, err := mdp.Parse(frames); err == nil && m.Command == mdp.Heartbeat {
					beats[i] = append(beats[i], time.Now())
					w.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Heartbeat})
				}
			}
		}()
	}
	wg.Wait()
	for i, ts := range beats {
		// 10 intervals: about 10 heartbeats; the rule before sweeps (a beat
		// 3/4 of an interval after the last, checked each quarter) sent 13.
		if len(ts) < 7 || len(ts) > 11 {
			t.Errorf("worker %d: %d heartbeats in 10 intervals; want about 10", i, len(ts))
		}
		for j := 2; j < len(ts); j++ {
			if gap := ts[j].Sub(ts[j-1]); gap > 2*ivl {
				t.Errorf("worker %d: %v between heartbeats %d and %d; want about %v", i, gap, j-1, j, ivl)
			}
		}
	}
	// After the first sweep they both join, the second worker's heartbeats
	// come with the first's.
	near := func(ts []time.Time, x time.Time) bool {
		for _, y := range ts {
			if d := x.Sub(y).Abs(); d < ivl/4 {
				return true
			}
		}
		return false
	}
	apart := 0
	for j := 2; j < len(beats[1]); j++ {
		if !near(beats[0], beats[1][j]) {
			apart++
		}
	}
	if apart > 1 {
		t.Errorf("%d of the second worker's heartbeats came apart from the first's (%v and %v); want them in the same sweeps", apart, beats[0], beats[1])
	}
}

func TestBeatClock(t *testing.T) {
	origin := time.Unix(1000, 0)
	c := broker.NewBeatClockForTest(origin, 4*time.Second)
	at := func(d time.Duration) time.Time { return origin.Add(d) }
	for _, step := range []struct {
		now       time.Duration
		sweep     bool
		next      time.Duration
		nextSweep time.Duration
	}{
		{1010 * time.Millisecond, false, 2 * time.Second, 4 * time.Second},
		{2 * time.Second, false, 3 * time.Second, 4 * time.Second},
		{3500 * time.Millisecond, false, 4 * time.Second, 4 * time.Second},
		{4020 * time.Millisecond, true, 5 * time.Second, 8 * time.Second},
		{5 * time.Second, false, 6 * time.Second, 8 * time.Second},
		{9100 * time.Millisecond, true, 10 * time.Second, 12 * time.Second}, // ticks missed: one sweep
		{10 * time.Second, false, 11 * time.Second, 12 * time.Second},
	} {
		sweep, next, nextSweep := c.Advance(at(step.now))
		if sweep != step.sweep || !next.Equal(at(step.next)) || !nextSweep.Equal(at(step.nextSweep)) {
			t.Errorf("at %v: sweep %v, next tick %v, next sweep %v; want %v, %v, %v", step.now,
				sweep, next.Sub(origin), nextSweep.Sub(origin), step.sweep, step.next, step.nextSweep)
		}
	}
}
