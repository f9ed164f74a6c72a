package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// Peering: a broker offloads requests it cannot serve soon to a peer broker
// that has ready capacity for the service. The link is plain MDP: the broker
// is a client of its peer, over a DEALER whose routing identity starts with
// peerPrefix, so the peer knows the requests came from a broker and never
// forwards them again (the hop limit is one). Capacity travels over the same
// link: every heartbeat interval the broker asks its peer mmi.services.
//
// Only requests in a domo envelope are offloaded: their request id is how
// the peer's reply finds its way back. Plain MDP requests wait for a local
// worker.

// peerPrefix starts the routing identity of a broker's link to a peer.
var peerPrefix = []byte("domo-peer:")

// probeID is the request id of capacity probes.
const probeID = "domo-peer-probe"

// peer is the link to one peer broker. The loop owns it.
type peer struct {
	endpoint  string
	sock      *zsock.Socket
	services  map[string]mdp.ServiceInfo // as last reported
	free      map[string]int             // estimated free capacity per service
	forwarded map[string]*request        // by request id
	lastHeard time.Time
	alive     bool
	buf       [][]byte
}

// PeerInfo describes a peer link in Stats.
type PeerInfo struct {
	Endpoint  string   `json:"endpoint"`
	Alive     bool     `json:"alive"`
	Services  []string `json:"services"` // with ready capacity at the last probe
	Forwarded int      `json:"forwarded"`
}

func (b *Broker) newPeer(endpoint string) (*peer, error) {
	s, err := zsock.NewDealer(zsock.Options{
		Identity:  string(peerPrefix) + b.cfg.ID + ":" + strconv.FormatInt(time.Now().UnixNano(), 36),
		Immediate: true, // a send to a peer that is down fails instead of queueing
		SendHWM:   b.cfg.SendHWM,
		RecvHWM:   b.cfg.RecvHWM,
	}, b.cfg.NativeTransport)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(endpoint); err != nil {
		s.Close()
		return nil, err
	}
	return &peer{
		endpoint:  endpoint,
		sock:      s,
		services:  map[string]mdp.ServiceInfo{},
		free:      map[string]int{},
		forwarded: map[string]*request{},
		lastHeard: time.Now(),
	}, nil
}

// setPeers connects to new peer endpoints and drops the links to the ones
// no longer listed. It runs on the loop.
func (b *Broker) setPeers(endpoints []string) {
	keep := map[string]bool{}
	for _, ep := range endpoints {
		if !slices.Contains(b.endpoints, ep) && !b.selfEndpoints[ep] {
			keep[ep] = true
		}
	}
	for _, p := range b.peers {
		if !keep[p.endpoint] {
			b.dropPeer(p, "no longer a peer")
		}
		delete(keep, p.endpoint)
	}
	for ep := range keep {
		p, err := b.newPeer(ep)
		if err != nil {
			b.log.Error("broker: peer", "endpoint", ep, "err", err)
			continue
		}
		b.peers = append(b.peers, p)
		b.log.Info("broker: peering", "peer", ep)
	}
	b.pollerStale = true
}

// dropPeer closes a link; its forwarded requests are retried here or failed.
func (b *Broker) dropPeer(p *peer, why string) {
	b.log.Info("broker: peer link closed", "peer", p.endpoint, "why", why, "forwarded", len(p.forwarded))
	b.failForwarded(p)
	p.sock.Close()
	b.peers = slices.DeleteFunc(b.peers, func(q *peer) bool { return q == p })
	b.pollerStale = true
}

// failForwarded requeues (where the caller allowed a retry) or fails the
// requests in flight at a peer that is gone.
func (b *Broker) failForwarded(p *peer) {
	now := time.Now()
	who := "peer broker " + p.endpoint
	for id, r := range p.forwarded {
		delete(p.forwarded, id)
		r.peer = nil
		if svc := b.lost(r, now, who); svc != nil {
			b.dispatch(svc)
		}
	}
}

// offload sends queued requests of svc to peers with free capacity for it,
// while the queue is at least threshold long. Requests from peers, and
// plain MDP requests, are never offloaded.
func (b *Broker) offload(svc *service, threshold int) {
	if len(b.peers) == 0 {
		return
	}
	for svc.queue.len() > threshold {
		p := b.peerFor(svc.name)
		if p == nil {
			return
		}
		r := b.takeOffloadable(svc)
		if r == nil {
			return
		}
		if !b.forward(p, r) {
			svc.queue.pushFront(r)
			return
		}
	}
}

// peerFor picks the live peer with the most free capacity for service.
func (b *Broker) peerFor(service string) *peer {
	var best *peer
	for _, p := range b.peers {
		if p.alive && p.free[service] > 0 && (best == nil || p.free[service] > best.free[service]) {
			best = p
		}
	}
	return best
}

// takeOffloadable removes and returns the oldest queued request of svc that
// may go to a peer.
func (b *Broker) takeOffloadable(svc *service) *request {
	var found *request
	svc.queue.filter(func(r *request) bool {
		if found == nil && r.envelope && !r.fromPeer && len(r.id) > 0 {
			found = r
			return false
		}
		return true
	})
	return found
}

// forward sends r to p; false if the link cannot take it now.
func (b *Broker) forward(p *peer, r *request) bool {
	key := string(r.id)
	if _, dup := p.forwarded[key]; dup {
		return false
	}
	m := mdp.Message{Role: mdp.Client, Version: r.version, Command: mdp.Request, Service: r.service.nameBytes, Body: r.body}
	frames, err := m.Append(b.out[:0])
	b.out = frames
	if err != nil {
		return false
	}
	err = p.sock.Send(frames, false)
	clear(b.out)
	if err != nil {
		return false
	}
	p.forwarded[key] = r
	p.free[r.service.name]--
	r.peer = p
	b.counters.Offloaded++
	b.emit(Dispatched, r, func(e *Event) { e.Worker = p.endpoint })
	return true
}

// probePeers asks every peer for its services; it runs every heartbeat
// interval. A peer that has not answered for liveness intervals is dead
// until it answers again.
func (b *Broker) probePeers(now time.Time) {
	expiry := b.expiryAfter()
	for _, p := range b.peers {
		if p.alive && now.Sub(p.lastHeard) > expiry {
			p.alive = false
			b.log.Warn("broker: peer silent", "peer", p.endpoint, "silence", now.Sub(p.lastHeard).Round(time.Millisecond))
			b.failForwarded(p)
		}
		h := mdp.AppendHeader(nil, mdp.HeaderID, probeID)
		// The payload names the endpoint probed, so that a broker that finds
		// itself at the other end can tell which of its peers is itself.
		body := mdp.RequestBody{Method: nil, Headers: h, Payload: []byte(p.endpoint)}.Append(nil)
		m := mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte(mdp.MMIServices), Body: body}
		frames, _ := m.Append(nil)
		_ = p.sock.Send(frames, false) // a peer that is down misses a probe
	}
}

// drainPeer handles what a peer sent: probe answers and forwarded replies.
func (b *Broker) drainPeer(p *peer) {
	for range 4096 {
		var err error
		p.buf, err = p.sock.Recv(p.buf, false)
		if err != nil {
			if !errors.Is(err, zsock.ErrAgain) {
				b.log.Warn("broker: peer receive", "peer", p.endpoint, "err", err)
			}
			return
		}
		b.onPeerMessage(p, p.buf)
	}
}

func (b *Broker) onPeerMessage(p *peer, frames [][]byte) {
	msg, err := mdp.Parse(frames)
	if err != nil || msg.Role != mdp.Client {
		b.refuse(&b.counters.Malformed, "from peer", []byte(p.endpoint), fmt.Errorf("not a client reply: %v", err))
		return
	}
	p.lastHeard = time.Now()
	if !p.alive {
		p.alive = true
		b.log.Info("broker: peer alive", "peer", p.endpoint)
	}
	rep, err := mdp.ParseReply(msg.Body)
	if err != nil {
		b.refuse(&b.counters.Malformed, "from peer", []byte(p.endpoint), err)
		return
	}
	id, _ := rep.Headers.Get(mdp.HeaderID)
	if string(id) == probeID {
		var services []mdp.ServiceInfo
		if rep.OK() && json.Unmarshal(rep.Payload, &services) == nil {
			clear(p.services)
			clear(p.free)
			for _, s := range services {
				p.services[s.Name] = s
				p.free[s.Name] = max(0, s.Capacity-s.InFlight-s.Queued)
			}
		}
		// Capacity may have appeared: offload what waits.
		for _, svc := range b.services {
			b.offloadWaiting(svc)
		}
		return
	}
	r := p.forwarded[string(id)]
	if r == nil {
		b.counters.LateReplies++
		return
	}
	if msg.Command == mdp.Partial {
		b.relayPartial(r, msg.Body)
		return
	}
	delete(p.forwarded, string(id))
	r.peer = nil
	b.deliver(r, p.endpoint, msg.Body)
}

// offloadWaiting offloads svc's queue beyond the configured threshold, or
// all of it when the service has no local capacity at all.
func (b *Broker) offloadWaiting(svc *service) {
	threshold := b.cfg.OffloadQueue
	if svc.workers == 0 || threshold <= 0 {
		threshold = 0
	}
	if svc.ready.head != nil && b.cfg.OffloadQueue <= 0 {
		return // local workers have free credit: dispatch will serve the queue
	}
	b.offload(svc, threshold)
}

// peerKnows reports whether a live peer offers service.
func (b *Broker) peerKnows(service []byte) bool {
	for _, p := range b.peers {
		if s, ok := p.services[string(service)]; ok && p.alive && s.Workers > 0 {
			return true
		}
	}
	return false
}

func isPeer(identity []byte) bool { return bytes.HasPrefix(identity, peerPrefix) }

// noticeSelf handles a capacity probe that came from this very broker: one
// of its peer endpoints (a wildcard listen address, its own multicast
// beacon) is itself. The link is dropped and the endpoint never peered
// with again.
func (b *Broker) noticeSelf(identity, probed []byte) bool {
	if !bytes.HasPrefix(identity, []byte(string(peerPrefix)+b.cfg.ID+":")) {
		return false
	}
	ep := string(probed)
	if b.selfEndpoints == nil {
		b.selfEndpoints = map[string]bool{}
	}
	b.selfEndpoints[ep] = true
	for _, p := range b.peers {
		if p.endpoint == ep {
			b.log.Info("broker: a peer endpoint is this broker itself; not peering with it", "endpoint", ep)
			b.dropPeer(p, "it is this broker")
			break
		}
	}
	return true
}

func (b *Broker) peerInfo() []PeerInfo {
	out := make([]PeerInfo, 0, len(b.peers))
	for _, p := range b.peers {
		info := PeerInfo{Endpoint: p.endpoint, Alive: p.alive, Forwarded: len(p.forwarded), Services: []string{}}
		for name, free := range p.free {
			if free > 0 {
				info.Services = append(info.Services, name)
			}
		}
		slices.Sort(info.Services)
		out = append(out, info)
	}
	return out
}
