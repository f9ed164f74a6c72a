package broker

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

// onMMI answers a management query (RFC 8, plus domo's own). A request in a
// domo envelope gets its answer in one; a plain one gets plain frames.
func (b *Broker) onMMI(identity []byte, msg *mdp.Message) {
	r := b.newRequest(identity, msg, nil)
	var arg []byte
	if r.envelope {
		env, _ := mdp.ParseRequest(msg.Body)
		arg = env.Payload
	} else if len(msg.Body) > 0 {
		arg = msg.Body[0]
	}
	var answer []byte
	switch string(msg.Service) {
	case mdp.MMIService:
		answer = []byte(mdp.MMINotFound)
		if svc := b.services[string(arg)]; (svc != nil && svc.workers > 0) || string(arg) == mdp.MMIBatch {
			answer = []byte(mdp.MMIFound)
		}
	case mdp.MMIServices:
		if isPeer(identity) && b.noticeSelf(identity, arg) {
			return // our own probe: no answer, the link is gone
		}
		answer, _ = json.Marshal(b.serviceInfo())
	case mdp.MMIWorkers:
		answer, _ = json.Marshal(b.workerInfo())
	case mdp.MMIDocs:
		var err *domo.Error
		if answer, err = b.docs(arg); err != nil {
			if r.envelope {
				b.replyError(r, err)
				return
			}
			answer = []byte(mdp.MMINotFound)
		}
	default:
		if r.envelope {
			b.replyError(r, domo.Errorf(domo.CodeUnknownService, "no management query %q", msg.Service))
			return
		}
		answer = []byte(mdp.MMINotImplemented)
	}
	body := [][]byte{answer}
	if r.envelope {
		var h mdp.Headers
		if r.id != nil {
			h = mdp.AppendHeader(h, mdp.HeaderID, r.id)
		}
		reply := mdp.OKReply(h, answer)
		if len(reply.Headers) == 0 {
			reply.Headers = mdp.Headers{mdp.HeadersMagic}
		}
		body = reply.Append(nil)
	}
	b.sendClient(r, finalCommand(r), body)
}

func (b *Broker) serviceInfo() []mdp.ServiceInfo {
	out := make([]mdp.ServiceInfo, 0, len(b.services))
	for _, svc := range b.services {
		if !svc.known {
			continue
		}
		info := mdp.ServiceInfo{Name: svc.name, Workers: svc.workers, Ready: svc.ready.n, Queued: svc.queue.len()}
		describe(svc, &info)
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b mdp.ServiceInfo) int { return strings.Compare(a.Name, b.Name) })
	index := make(map[string]int, len(out))
	for i, s := range out {
		index[s.Name] = i
	}
	for _, w := range b.workers {
		if i, ok := index[w.service.name]; ok {
			out[i].Capacity += w.credit
			out[i].InFlight += w.inFlight
		}
	}
	return out
}

func (b *Broker) workerInfo() []mdp.WorkerInfo {
	out := make([]mdp.WorkerInfo, 0, len(b.workers))
	for _, w := range b.workers {
		proto := mdp.WorkerV1
		if w.version == 2 {
			proto = mdp.WorkerV2
		}
		if w.domo {
			proto += "+domo"
		}
		out = append(out, mdp.WorkerInfo{ID: w.name, Service: w.service.name, Protocol: proto, Credit: w.credit, InFlight: w.inFlight, Digest: w.digest})
	}
	slices.SortFunc(out, func(a, b mdp.WorkerInfo) int {
		return strings.Compare(a.Service+"/"+a.ID, b.Service+"/"+b.ID)
	})
	return out
}
