package broker

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
)

// maxCredit caps what one worker may claim, so a hostile READY cannot make
// the broker pour a whole queue into one connection.
const maxCredit = 4096

// handle processes one message from the router: [identity, frames...].
// Frames from the network are untrusted: anything wrong is counted, logged
// (rate-limited) and dropped, and the loop goes on. It returns how many MDP
// messages it took: a batch's count.
func (b *Broker) handle(frames [][]byte) int {
	if len(frames) < 2 {
		b.refuse(&b.counters.Malformed, "too few frames", nil, errors.New("message with no content"))
		return 1
	}
	identity := frames[0]
	if err := b.cfg.Limits.Check(frames); err != nil {
		b.refuseOversize(identity, frames[1:], err)
		return 1
	}
	if mdp.IsBatch(frames[1:]) {
		b.handleBatch(identity, frames[2:])
		return len(frames) - 2
	}
	b.handleOne(identity, frames)
	return 1
}

// handleBatch unpacks a batch and handles each of its messages as if it had
// come alone. Its frames are sub-slices of the batch's, which requests may
// keep.
func (b *Broker) handleBatch(identity []byte, packed [][]byte) {
	for _, p := range packed {
		sub, err := b.cfg.Limits.UnpackMessage(append(b.sub[:0], identity), p)
		b.sub = sub
		if err != nil {
			b.refuse(&b.counters.Malformed, "malformed batch", identity, err)
			if w := b.workers[string(identity)]; w != nil {
				b.deleteWorker(w, true)
			}
			return
		}
		b.counters.BatchedIn++
		b.inBatch = true
		b.handleOne(identity, sub)
		b.inBatch = false
		clear(b.sub) // drop references to the frames
	}
}

// handleOne processes one MDP message, frames[0] being the identity.
func (b *Broker) handleOne(identity []byte, frames [][]byte) {
	msg, err := mdp.Parse(frames[1:])
	if err != nil {
		b.refuse(&b.counters.Malformed, "malformed", identity, err)
		if w := b.workers[string(identity)]; w != nil {
			b.deleteWorker(w, true) // RFC 7: treat the peer as invalid
		}
		return
	}
	if msg.Role == mdp.Client {
		b.onClient(identity, &msg)
	} else {
		b.onWorker(identity, &msg)
	}
}

// refuseOversize answers a client's oversize request with too_large if it
// is readable enough to answer, and drops a worker that sent one.
func (b *Broker) refuseOversize(identity []byte, frames [][]byte, cause error) {
	b.refuse(&b.counters.TooLarge, "over limits", identity, cause)
	if w := b.workers[string(identity)]; w != nil {
		b.deleteWorker(w, true)
		return
	}
	msg, err := mdp.Parse(frames)
	if err != nil || msg.Role != mdp.Client {
		return
	}
	r := b.newRequest(identity, &msg, nil)
	b.replyError(r, domo.Errorf(domo.CodeTooLarge, "%v", cause))
}

func (b *Broker) onClient(identity []byte, msg *mdp.Message) {
	if msg.Command != mdp.Request {
		b.refuse(&b.counters.Unexpected, "client sent "+msg.Command.String(), identity, errors.New("clients may only send REQUEST"))
		return
	}
	if mdp.IsMMI(msg.Service) {
		b.onMMI(identity, msg)
		return
	}
	b.counters.Requests++
	svc := b.services[string(msg.Service)]
	r := b.newRequest(identity, msg, svc)
	r.fromPeer = isPeer(identity)
	b.emit(Received, r, func(e *Event) {
		e.Bytes = bodySize(r.body)
		if r.envelope { // validated in newRequest: [method, headers, payload]
			h := mdp.Headers(r.body[1])
			tp, _ := h.Get(mdp.HeaderTraceparent)
			ts, _ := h.Get(mdp.HeaderTracestate)
			e.Traceparent, e.Tracestate = string(tp), string(ts)
			b.copyBody(e, r, r.body[2])
		}
	})
	now := r.received
	switch {
	case b.draining:
		b.replyError(r, domo.Errorf(domo.CodeUnavailable, "broker is shutting down"))
		return
	case r.expired(now):
		b.drop(r)
		return
	}
	if svc == nil || !svc.known {
		offered := !r.fromPeer && b.peerKnows(msg.Service)
		if r.envelope && !offered && now.Sub(b.started) > b.cfg.StartupGrace {
			b.counters.UnknownService++
			b.replyError(r, domo.Errorf(domo.CodeUnknownService, "no worker offers service %q", msg.Service))
			return
		}
		if svc == nil && len(b.services) >= b.cfg.MaxServices {
			b.counters.Overloaded++
			b.replyError(r, domo.Errorf(domo.CodeOverloaded, "the broker keeps %d services, none for %q: not queuing for another", b.cfg.MaxServices, msg.Service))
			return
		}
		svc = b.serviceNamed(string(msg.Service)) // wait for a worker, as RFC 7 asks
		r.service = svc
	}
	if svc.queue.len() >= b.cfg.QueueLimit {
		b.counters.Overloaded++
		b.replyError(r, domo.Errorf(domo.CodeOverloaded, "queue of service %q is full (%d requests)", svc.name, b.cfg.QueueLimit))
		return
	}
	svc.queue.pushBack(r)
	b.dispatch(svc)
	if !r.fromPeer {
		b.offloadWaiting(svc)
	}
}

// drop forgets r unanswered: its deadline passed before it could be
// delivered, so its caller has given up.
func (b *Broker) drop(r *request) {
	b.counters.Expired++
	b.emit(Dropped, r, func(e *Event) { e.Code = domo.CodeDeadlineExceeded })
}

// serviceNamed returns the entry of service name, creating it if need be.
func (b *Broker) serviceNamed(name string) *service {
	svc := b.services[name]
	if svc == nil {
		svc = newService(name)
		b.services[name] = svc
	}
	return svc
}

// newRequest records a client request. The body's frames are kept as
// received; the slice holding them is copied, since the receive buffer is
// reused.
func (b *Broker) newRequest(identity []byte, msg *mdp.Message, svc *service) *request {
	r := &request{
		client:   string(identity),
		version:  msg.Version,
		service:  svc,
		received: time.Now(),
		batched:  b.inBatch,
	}
	r.body = append(r.bodyRoom[:0], msg.Body...)
	if env, err := mdp.ParseRequest(msg.Body); err == nil {
		r.envelope = true
		r.method = env.Method
		r.id, _ = env.Headers.Get(mdp.HeaderID)
		r.deadline, _ = env.Headers.Deadline()
		retry, _ := env.Headers.Get(mdp.HeaderRetry)
		r.retry = string(retry) == "1"
	}
	if svc == nil {
		r.service = newService(string(msg.Service)) // for replies only
	}
	return r
}

// dispatch hands queued requests of svc to its ready workers, least
// recently used first, while both last.
func (b *Broker) dispatch(svc *service) {
	now := time.Time{}
	for svc.queue.len() > 0 && svc.ready.head != nil {
		r := svc.queue.popFront()
		if now.IsZero() {
			now = time.Now()
		}
		if r.expired(now) {
			b.drop(r)
			continue
		}
		w := svc.ready.head
		svc.ready.remove(w)
		b.seq++
		r.seq, r.route, r.worker = b.seq, binary.BigEndian.AppendUint64(r.routeRoom[:0], b.seq), w
		b.inFlight[r.seq] = r
		w.inFlight++
		b.sendRequest(w, r)
		b.emit(Dispatched, r, func(e *Event) { e.Worker = w.name })
		if w.inFlight < w.credit {
			svc.ready.pushBack(w) // to the back: round-robin over free credit
		}
	}
}

// sendRequest sends r to w, at once, or for a worker that takes batches at
// the end of this turn of the loop (flushBatches), with the other requests
// dispatched to it meanwhile.
func (b *Broker) sendRequest(w *worker, r *request) {
	if w.batch {
		if len(w.pending) == 0 {
			b.batching = append(b.batching, w)
		}
		w.pending = append(w.pending, r)
		return
	}
	m := b.requestMessage(w, r)
	b.sendTo(w.identity, &m)
	w.lastSent = time.Now()
}

// requestMessage is the REQUEST carrying r to w, in the version section 7.3
// of docs/protocol.md picks.
func (b *Broker) requestMessage(w *worker, r *request) mdp.Message {
	version := mdp.Version(1)
	if w.version == 2 || (w.domo && r.version == 2) {
		version = 2
	}
	return mdp.Message{Role: mdp.Worker, Version: version, Command: mdp.Request, Address: r.route, Body: r.body}
}

// flushBatches sends the requests held for batch workers and the replies
// held for batch clients: alone when there is one, else packed in batches.
func (b *Broker) flushBatches() {
	for _, w := range b.batching {
		if b.workers[w.identity] != w || len(w.pending) == 0 {
			continue // deleted meanwhile: its requests went back to the queue or failed
		}
		for _, r := range w.pending {
			m := b.requestMessage(w, r)
			frames, err := m.Append(b.scratch[:0])
			b.scratch = frames
			if err != nil {
				b.log.Error("broker: encode", "err", err, "command", m.Command)
				continue
			}
			if !b.batch.Add(frames) {
				b.sendBatch(w.identity, &b.batch)
				b.batch.Add(frames)
			}
		}
		b.sendBatch(w.identity, &b.batch)
		clear(b.scratch)
		clear(w.pending)
		w.pending = w.pending[:0]
		w.lastSent = time.Now()
	}
	clear(b.batching)
	b.batching = b.batching[:0]
	for _, cb := range b.clientOrder {
		b.sendBatch(cb.client, &cb.batch)
		delete(b.clientBatches, cb.client)
		if len(b.freeBatches) < maxFreeBatches {
			b.freeBatches = append(b.freeBatches, cb)
		}
	}
	clear(b.clientOrder)
	b.clientOrder = b.clientOrder[:0]
}

// sendBatch sends what bt holds to the peer with routing identity, if
// anything: one message alone, or a batch.
func (b *Broker) sendBatch(identity string, bt *mdp.Batch) {
	n := bt.Len()
	if n == 0 {
		return
	}
	if n > 1 {
		b.counters.BatchesOut++
		b.counters.BatchedOut += uint64(n)
	}
	b.out = append(append(b.out[:0], []byte(identity)), bt.Take()...)
	b.sendFrames(identity, b.out)
}

func (b *Broker) onWorker(identity []byte, msg *mdp.Message) {
	w := b.workers[string(identity)]
	if msg.Command == mdp.Ready {
		b.onReady(identity, w, msg)
		return
	}
	if w == nil {
		if msg.Command != mdp.Disconnect {
			// RFC 7: a valid but unexpected command gets DISCONNECT.
			b.counters.Unexpected++
			b.sendDisconnect(string(identity), msg.Version)
		}
		return
	}
	w.expiry = time.Now().Add(b.expiryAfter())
	switch msg.Command {
	case mdp.Heartbeat:
	case mdp.Disconnect:
		b.log.Info("worker disconnected", "worker", w.name, "service", w.service.name)
		b.deleteWorker(w, false)
	case mdp.Reply, mdp.Final, mdp.Partial:
		b.onWorkerReply(w, msg)
	default: // REQUEST from a worker
		b.refuse(&b.counters.Unexpected, "worker sent "+msg.Command.String(), identity, errors.New("unexpected command"))
		b.deleteWorker(w, true)
	}
}

func (b *Broker) expiryAfter() time.Duration {
	return b.cfg.HeartbeatInterval * time.Duration(b.cfg.HeartbeatLiveness)
}

func (b *Broker) onReady(identity []byte, w *worker, msg *mdp.Message) {
	if w != nil || mdp.IsMMI(msg.Service) {
		// A second READY, or a worker claiming a broker-internal name.
		b.refuse(&b.counters.Unexpected, "unexpected READY", identity, errors.New("READY for "+string(msg.Service)))
		if w != nil {
			b.deleteWorker(w, true)
		} else {
			b.sendDisconnect(string(identity), msg.Version)
		}
		return
	}
	name := string(msg.Service)
	svc := b.serviceNamed(name)
	w = &worker{
		identity: string(identity),
		name:     hex.EncodeToString(identity),
		service:  svc,
		version:  msg.Version,
		credit:   1,
		expiry:   time.Now().Add(b.expiryAfter()),
		lastSent: time.Now(),
	}
	if len(msg.Body) > 0 {
		h := mdp.Headers(msg.Body[0])
		if h.Validate() == nil && len(h) > 0 {
			w.domo = true
			if c, ok := h.Int(mdp.HeaderCredit); ok && c > 0 {
				w.credit = int(min(c, maxCredit))
			}
			if v, ok := h.Get(mdp.HeaderBatch); ok && string(v) == "1" {
				w.batch = true
			}
			b.addContract(w, h)
		}
	}
	b.workers[w.identity] = w
	svc.known = true
	svc.workers++
	svc.ready.pushBack(w)
	b.log.Debug("worker ready", "worker", w.name, "service", name, "credit", w.credit, "domo", w.domo)
	b.dispatch(svc)
}

func (b *Broker) onWorkerReply(w *worker, msg *mdp.Message) {
	seq, ok := seqOf(msg.Address)
	r := b.inFlight[seq]
	if !ok || r == nil || r.worker != w {
		// Late (the request was already failed over) or forged.
		b.counters.LateReplies++
		return
	}
	if msg.Command == mdp.Partial {
		b.relayPartial(r, msg.Body)
		return
	}
	delete(b.inFlight, seq)
	b.deliver(r, w.name, msg.Body)
	w.inFlight--
	if w.inFlight < w.credit {
		w.service.ready.pushBack(w)
	}
	b.dispatch(w.service)
}

// deleteWorker forgets w. Its requests in flight go back to the front of
// the queue where the caller allowed a retry, and fail with "unavailable"
// otherwise.
func (b *Broker) deleteWorker(w *worker, notify bool) {
	if notify {
		b.sendWorkerCommand(w, mdp.Disconnect)
	}
	svc := w.service
	svc.ready.remove(w)
	delete(b.workers, w.identity)
	svc.workers--
	b.dropContract(w)
	clear(w.pending) // in flight: lost below
	w.pending = w.pending[:0]
	if w.inFlight == 0 {
		return
	}
	now := time.Now()
	who := fmt.Sprintf("worker of service %q", svc.name)
	for seq, r := range b.inFlight {
		if r.worker != w {
			continue
		}
		delete(b.inFlight, seq)
		r.worker = nil
		b.lost(r, now, who)
	}
	b.dispatch(svc)
}

// lost deals with a request that its worker or peer broker (who) took away
// with it: dropped if its deadline has passed, back at the front of its
// queue where the caller allowed a retry, failed "unavailable" otherwise.
// It returns the service whose queue took the request back, or nil.
func (b *Broker) lost(r *request, now time.Time, who string) *service {
	switch {
	case r.expired(now):
		b.drop(r)
	case r.retry && !b.draining:
		b.counters.Retried++
		// The service's entry may have been dropped while the request was
		// away (no local worker, empty queue): look it up again.
		r.service = b.serviceNamed(r.service.name)
		r.service.queue.pushFront(r)
		return r.service
	default:
		b.counters.WorkerLost++
		b.replyError(r, domo.Errorf(domo.CodeUnavailable, "%s was lost while handling the request", who))
	}
	return nil
}

// replyError answers r with a domo error envelope carrying its request id.
func (b *Broker) replyError(r *request, e *domo.Error) {
	b.counters.Errors++
	b.emit(Failed, r, func(ev *Event) { ev.Code, ev.Message = e.Code, e.Message })
	var h mdp.Headers
	if r.id != nil {
		h = mdp.AppendHeader(h, mdp.HeaderID, r.id)
	}
	reply := mdp.ErrorReply(h, e)
	b.sendClient(r, finalCommand(r), reply.Append(nil))
}

// deliver sends the final reply a worker or peer (named by) gave for r to
// its client.
func (b *Broker) deliver(r *request, by string, body [][]byte) {
	b.counters.Replies++
	b.emitReply(r, by, body)
	b.sendClient(r, finalCommand(r), body)
}

// relayPartial passes a partial reply on to r's client if it speaks MDP/0.2;
// an MDP/0.1 client cannot receive one, and gets the final reply only.
func (b *Broker) relayPartial(r *request, body [][]byte) {
	if r.version == 2 {
		b.sendClient(r, mdp.Partial, body)
	}
}

// finalCommand is the command that ends a reply in the client's version:
// REPLY in MDP/0.1, FINAL in MDP/0.2.
func finalCommand(r *request) mdp.Command {
	if r.version == 2 {
		return mdp.Final
	}
	return mdp.Reply
}

// sendClient sends r's client a reply (or partial) now, or, if the client
// sent r in a batch, with the other replies for it at the end of this turn
// of the loop.
func (b *Broker) sendClient(r *request, cmd mdp.Command, body [][]byte) {
	m := mdp.Message{Role: mdp.Client, Version: r.version, Command: cmd, Service: r.service.nameBytes, Body: body}
	if !r.batched {
		b.sendTo(r.client, &m)
		return
	}
	frames, err := m.Append(b.scratch[:0])
	b.scratch = frames
	defer clear(b.scratch)
	if err != nil {
		b.log.Error("broker: encode", "err", err, "command", m.Command)
		return
	}
	cb := b.clientBatches[r.client]
	if cb == nil {
		cb = b.newClientBatch(r.client)
	}
	if !cb.batch.Add(frames) {
		b.sendBatch(cb.client, &cb.batch)
		cb.batch.Add(frames)
	}
}

// maxFreeBatches bounds the client batches kept for reuse: each keeps its
// buffer, up to mdp.BatchMaxBytes.
const maxFreeBatches = 64

// clientBatch gathers the replies for one client during a turn of the loop.
type clientBatch struct {
	client string
	batch  mdp.Batch
}

func (b *Broker) newClientBatch(client string) *clientBatch {
	var cb *clientBatch
	if n := len(b.freeBatches); n > 0 {
		cb, b.freeBatches = b.freeBatches[n-1], b.freeBatches[:n-1]
	} else {
		cb = &clientBatch{}
	}
	cb.client = client
	if b.clientBatches == nil {
		b.clientBatches = make(map[string]*clientBatch)
	}
	b.clientBatches[client] = cb
	b.clientOrder = append(b.clientOrder, cb)
	return cb
}

func (b *Broker) sendWorkerCommand(w *worker, cmd mdp.Command) {
	m := mdp.Message{Role: mdp.Worker, Version: w.version, Command: cmd}
	b.sendTo(w.identity, &m)
	w.lastSent = time.Now()
}

func (b *Broker) sendDisconnect(identity string, v mdp.Version) {
	m := mdp.Message{Role: mdp.Worker, Version: v, Command: mdp.Disconnect}
	b.sendTo(identity, &m)
}

// sendTo sends m to the peer identity without blocking. A peer that is gone
// or not reading is counted, not waited for.
func (b *Broker) sendTo(identity string, m *mdp.Message) {
	out, err := m.Append(append(b.out[:0], []byte(identity)))
	b.out = out
	if err != nil {
		b.log.Error("broker: encode", "err", err, "command", m.Command)
		return
	}
	b.sendFrames(identity, out)
}

// sendFrames sends [identity, frames...] without blocking.
func (b *Broker) sendFrames(identity string, out [][]byte) {
	if err := b.router.Send(out, false); err != nil {
		switch {
		case errors.Is(err, zsock.ErrUnroutable):
			b.counters.Unroutable++
		case errors.Is(err, zsock.ErrAgain):
			b.counters.SendDropped++
		default:
			b.log.Warn("broker: send failed", "peer", hexID(identity), "err", err)
		}
	}
	clear(b.out) // drop references to bodies
}
