package broker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
)

// peered starts broker B, then broker A peering with it.
func peered(t *testing.T, configureA ...func(*broker.Config)) (a, b *broker.Broker, epA, epB string) {
	t.Helper()
	b, epB = testbroker.Start(t)
	a, epA = testbroker.Start(t, append([]func(*broker.Config){func(c *broker.Config) { c.Peers = []string{epB} }}, configureA...)...)
	return a, b, epA, epB
}

// waitPeerOffers waits until a has heard from its peer that it offers service.
func waitPeerOffers(t *testing.T, a *broker.Broker, service string) {
	t.Helper()
	waitFor(t, "the peer to report "+service, func() bool {
		for _, p := range stats(t, a).Peers {
			for _, s := range p.Services {
				if p.Alive && s == service {
					return true
				}
			}
		}
		return false
	})
}

func TestOffloadToPeerWithTheOnlyWorker(t *testing.T) {
	a, b, epA, epB := peered(t)
	w := domoWorker(t, epB, "tea", "4")
	waitWorkers(t, b, 1)
	waitPeerOffers(t, a, "tea")

	c := dial(t, epA) // the client knows only A
	c.sendMsg(clientV1("tea", request("brew", "via-a")...))
	req := w.expect("request offloaded from A through B")
	env, err := mdp.ParseRequest(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	w.sendMsg(reply(req, mdp.OKReply(env.Headers, []byte("a cup")).Append(nil)...))
	rep := replyEnvelope(t, c.expect("reply through A"))
	if string(rep.Payload) != "a cup" {
		t.Fatalf("payload = %q; want a cup", rep.Payload)
	}
	if s := stats(t, a); s.Counters.Offloaded != 1 || s.Counters.Replies != 1 {
		t.Fatalf("A counters = %+v; want 1 offloaded and 1 reply", s.Counters)
	}

	// B never forwards a peer's request again: with B's worker gone, a
	// request from A waits at B (and the caller's deadline decides), it is
	// not sent back to A.
	if s := stats(t, b); s.Counters.Offloaded != 0 {
		t.Fatalf("B offloaded %d requests; want 0", s.Counters.Offloaded)
	}
}

func TestOffloadOnlyWithoutLocalCapacity(t *testing.T) {
	a, b, epA, epB := peered(t)
	local := domoWorker(t, epA, "tea", "1")
	remote := domoWorker(t, epB, "tea", "1")
	waitWorkers(t, a, 1)
	waitWorkers(t, b, 1)
	waitPeerOffers(t, a, "tea")
	c := dial(t, epA)
	c.sendMsg(clientV1("tea", request("brew", "first")...))
	local.expect("first request, served locally")
	c.sendMsg(clientV1("tea", request("brew", "second")...))
	remote.expect("second request, offloaded: the local worker is busy")
	if s := stats(t, a); s.Counters.Offloaded != 1 {
		t.Fatalf("Offloaded = %d; want 1", s.Counters.Offloaded)
	}
}

func TestLostPeerFailsOrRetriesForwarded(t *testing.T) {
	a, b, epA, epB := peered(t)
	w := domoWorker(t, epB, "tea", "4")
	waitWorkers(t, b, 1)
	waitPeerOffers(t, a, "tea")
	c := dial(t, epA)
	c.sendMsg(clientV1("tea", request("brew", "once")...))
	c.sendMsg(clientV1("tea", request("brew", "again", withRetry)...))
	w.expect("first")
	w.expect("second")
	b.Close() // the peer dies with both requests

	rep := replyEnvelope(t, c.expect("error for the forwarded request without retry"))
	if err := rep.Err(); !errors.Is(err, domo.ErrUnavailable) {
		t.Fatalf("error = %v; want unavailable", err)
	}
	if id, _ := rep.Headers.Get(mdp.HeaderID); string(id) != "once" {
		t.Fatalf("id = %q; want once", id)
	}
	// The retried one waits at A for a worker; one arrives.
	survivor := domoWorker(t, epA, "tea", "1")
	req := survivor.expect("retried request at A")
	env, _ := mdp.ParseRequest(req.Body)
	if id, _ := env.Headers.Get(mdp.HeaderID); string(id) != "again" {
		t.Fatalf("retried id = %q; want again", id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := a.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Counters.Retried != 1 || s.Counters.WorkerLost != 1 {
		t.Fatalf("A counters = %+v; want 1 retried, 1 lost", s.Counters)
	}
}

func TestBrokerNeverPeersWithItself(t *testing.T) {
	// A broker is given itself as a peer under another name, as a shared
	// peer list or its own multicast beacon would give it.
	a, ep := testbroker.Start(t)
	self := strings.Replace(ep, "127.0.0.1", "localhost", 1)
	a.SetPeers([]string{self})
	waitFor(t, "the self-peering to be noticed and dropped", func() bool {
		return len(stats(t, a).Peers) == 0
	})
	a.SetPeers([]string{self}) // and it is never taken up again
	time.Sleep(3 * testbroker.HeartbeatInterval)
	if peers := stats(t, a).Peers; len(peers) != 0 {
		t.Fatalf("peers = %+v; want none", peers)
	}
}
