package broker

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

// Contracts: a domo worker describes its service in READY (the
// mdp.HeaderContract header). The broker keeps, per service, the contracts
// its connected workers sent, counted by digest, and serves the latest over
// mmi.docs. Workers of one service that sent different contracts disagree:
// the broker logs it once and reports the count in mmi.services.

// serviceDocs holds the contracts of one service.
type serviceDocs struct {
	latest   string                     // digest of the contract mmi.docs serves
	byDigest map[string]*storedContract // the latest, and those of connected workers
	warned   bool                       // the disagreement has been logged
}

type storedContract struct {
	contract mdp.ServiceContract
	workers  int // connected workers that sent it
}

// live returns how many different contracts the service's connected workers
// sent.
func (d *serviceDocs) live() int {
	n := 0
	for _, s := range d.byDigest {
		if s.workers > 0 {
			n++
		}
	}
	return n
}

// addContract records the contract w sent in its READY headers h, if any.
// A contract that does not parse, or names another service, is ignored
// with a warning: the worker still serves.
func (b *Broker) addContract(w *worker, h mdp.Headers) {
	raw, ok := h.Get(mdp.HeaderContract)
	if !ok {
		return
	}
	c, err := mdp.ParseContract(raw)
	if err == nil && c.Service != w.service.name {
		err = domo.Errorf(domo.CodeInvalid, "contract of service %q sent by a worker of %q", c.Service, w.service.name)
	}
	if err != nil {
		if b.badLog.allow(time.Now()) {
			b.log.Warn("broker: contract ignored", "worker", w.name, "service", w.service.name, "err", err)
		}
		return
	}
	c.Digest = c.ComputeDigest() // the broker's own, whatever the worker's JSON looked like
	svc := w.service
	if svc.docs == nil {
		svc.docs = &serviceDocs{byDigest: map[string]*storedContract{}}
	}
	d := svc.docs
	s := d.byDigest[c.Digest]
	if s == nil {
		s = &storedContract{contract: c}
		d.byDigest[c.Digest] = s
	}
	s.workers++
	w.digest = c.Digest
	if old := d.byDigest[d.latest]; old != nil && d.latest != c.Digest && old.workers == 0 {
		delete(d.byDigest, d.latest)
	}
	d.latest = c.Digest
	if d.live() > 1 && !d.warned {
		d.warned = true
		b.log.Warn("workers disagree about their service's contract", "service", svc.name,
			"contracts", d.live(), "latest", c.Digest, "differ", d.differences())
	}
}

// dropContract forgets the contract of w, which is leaving. The latest
// contract stays while no worker has sent another, so that a service's docs
// outlive a restart of its workers.
func (b *Broker) dropContract(w *worker) {
	d := w.service.docs
	if d == nil || w.digest == "" {
		return
	}
	s := d.byDigest[w.digest]
	if s == nil {
		return
	}
	s.workers--
	if s.workers > 0 {
		return
	}
	if w.digest != d.latest {
		delete(d.byDigest, w.digest)
	} else if best := d.mostServed(); best != "" {
		// The latest has no worker left but another contract has: serve that.
		delete(d.byDigest, d.latest)
		d.latest = best
	}
	if d.live() <= 1 {
		d.warned = false
	}
}

// mostServed returns the digest with the most connected workers (the
// smallest digest among equals), or "" if none has any.
func (d *serviceDocs) mostServed() string {
	best, n := "", 0
	for digest, s := range d.byDigest {
		if s.workers > n || (s.workers == n && n > 0 && digest < best) {
			best, n = digest, s.workers
		}
	}
	return best
}

// differences names the methods on which the live contracts differ: missing
// from some, or described differently.
func (d *serviceDocs) differences() []string {
	seen := map[string][]*mdp.MethodContract{}
	live := 0
	for _, s := range d.byDigest {
		if s.workers == 0 {
			continue
		}
		live++
		for i := range s.contract.Methods {
			m := &s.contract.Methods[i]
			seen[m.Name] = append(seen[m.Name], m)
		}
	}
	var out []string
	for name, ms := range seen {
		if len(ms) != live || slices.ContainsFunc(ms[1:], func(m *mdp.MethodContract) bool { return !sameMethod(m, ms[0]) }) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func sameMethod(a, b *mdp.MethodContract) bool {
	return a.Doc == b.Doc && a.Streaming == b.Streaming && sameJSON(a.Request, b.Request) && sameJSON(a.Reply, b.Reply)
}

func sameJSON(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// contractOf returns the contract mmi.docs serves for svc: the latest one
// its workers sent, or one with no methods if none did.
func contractOf(svc *service) mdp.ServiceContract {
	if svc.docs != nil {
		if s := svc.docs.byDigest[svc.docs.latest]; s != nil {
			return s.contract
		}
	}
	return mdp.ServiceContract{Service: svc.name, Methods: []mdp.MethodContract{}}
}

// docs answers mmi.docs: the contract of the service named by arg, or,
// for an empty arg, those of every service, sorted by name.
func (b *Broker) docs(arg []byte) ([]byte, *domo.Error) {
	if len(arg) > 0 {
		svc := b.services[string(arg)]
		if svc == nil || !svc.known {
			return nil, domo.Errorf(domo.CodeUnknownService, "no worker offers service %q", arg)
		}
		out, _ := json.Marshal(contractOf(svc)) // schemas were checked as JSON by ParseContract
		return out, nil
	}
	all := make([]mdp.ServiceContract, 0, len(b.services))
	for _, svc := range b.services {
		if svc.known {
			all = append(all, contractOf(svc))
		}
	}
	slices.SortFunc(all, func(a, b mdp.ServiceContract) int { return strings.Compare(a.Service, b.Service) })
	out, _ := json.Marshal(all)
	return out, nil
}

// describe adds the contract fields of svc to info.
func describe(svc *service, info *mdp.ServiceInfo) {
	if svc.docs == nil {
		return
	}
	if s := svc.docs.byDigest[svc.docs.latest]; s != nil {
		info.Methods = len(s.contract.Methods)
		info.Digest = svc.docs.latest
	}
	info.Contracts = svc.docs.live()
}

// sensitive reports whether the contract of svc marks method sensitive.
func sensitive(svc *service, method string) bool {
	if svc == nil || svc.docs == nil {
		return false
	}
	s := svc.docs.byDigest[svc.docs.latest]
	if s == nil {
		return false
	}
	for _, m := range s.contract.Methods {
		if m.Name == method {
			return m.Sensitive
		}
	}
	return false
}
