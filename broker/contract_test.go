package broker_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
)

// contractWorker registers a domo worker whose READY carries contract.
func contractWorker(t testing.TB, endpoint string, c mdp.ServiceContract) *peer {
	w := dial(t, endpoint)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	h := mdp.AppendHeader(nil, mdp.HeaderCredit, "2")
	h = mdp.AppendHeader(h, mdp.HeaderContract, js)
	w.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte(c.Service), Body: [][]byte{h}})
	return w
}

func teaContract(doc string) mdp.ServiceContract {
	return mdp.ServiceContract{Service: "tea", Methods: []mdp.MethodContract{
		{Name: "brew", Doc: doc, Request: json.RawMessage(`{"type":"object","properties":{"sugar":{"type":"integer"}}}`), Reply: json.RawMessage(`{"type":"object"}`)},
		{Name: "menu", Doc: "List the teas"},
	}}
}

// lockedBuffer collects log output from the broker's loop.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mmi sends a management query in a domo envelope and returns the reply.
func mmi(t *testing.T, c *peer, query, arg string) mdp.ReplyBody {
	t.Helper()
	body := (&mdp.RequestBody{Headers: mdp.AppendHeader(nil, mdp.HeaderID, "q"), Payload: []byte(arg)}).Append(nil)
	c.sendMsg(clientV1(query, body...))
	return replyEnvelope(t, c.expect(query+" "+arg))
}

func serviceNamed(t *testing.T, b *broker.Broker, name string) mdp.ServiceInfo {
	t.Helper()
	for _, s := range stats(t, b).Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %q in Stats", name)
	return mdp.ServiceInfo{}
}

func TestContracts(t *testing.T) {
	var logs lockedBuffer
	b, ep := testbroker.Start(t, func(c *broker.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	want := teaContract("Brew a cup")
	digest := want.ComputeDigest()
	contractWorker(t, ep, want)
	contractWorker(t, ep, want)
	plainWorker(t, ep, "water")
	waitWorkers(t, b, 3)

	if s := serviceNamed(t, b, "tea"); s.Methods != 2 || s.Contracts != 1 || s.Digest != digest {
		t.Errorf("tea in Stats = %+v; want 2 methods, 1 contract, digest %s", s, digest)
	}
	if s := serviceNamed(t, b, "water"); s.Methods != 0 || s.Contracts != 0 || s.Digest != "" {
		t.Errorf("water in Stats = %+v; want no contract", s)
	}

	c := dial(t, ep)
	rep := mmi(t, c, mdp.MMIDocs, "tea")
	if !rep.OK() {
		t.Fatalf("mmi.docs tea = %s %s; want ok", rep.Status, rep.Payload)
	}
	got, err := mdp.ParseContract(rep.Payload)
	if err != nil || got.Digest != digest || len(got.Methods) != 2 || got.Methods[0].Doc != "Brew a cup" || string(got.Methods[0].Request) != string(want.Methods[0].Request) {
		t.Errorf("mmi.docs tea = %s (%v); want the contract sent, digest %s", rep.Payload, err, digest)
	}

	rep = mmi(t, c, mdp.MMIDocs, "")
	var all []mdp.ServiceContract
	if err := json.Unmarshal(rep.Payload, &all); err != nil || len(all) != 2 || all[0].Service != "tea" || all[1].Service != "water" || len(all[1].Methods) != 0 {
		t.Errorf("mmi.docs (all) = %s (%v); want tea's contract and water's empty one", rep.Payload, err)
	}
	if !strings.Contains(string(rep.Payload), `"service":"water","methods":[]`) {
		t.Errorf("mmi.docs (all) = %s; want water with an empty methods array", rep.Payload)
	}

	rep = mmi(t, c, mdp.MMIDocs, "nosuch")
	if err := rep.Err(); !errors.Is(err, domo.ErrUnknownService) {
		t.Errorf("mmi.docs nosuch = %v; want unknown_service", err)
	}
	c.sendMsg(clientV1(mdp.MMIDocs, []byte("nosuch")))
	if m := c.expect("plain mmi.docs nosuch"); string(m.Body[0]) != mdp.MMINotFound {
		t.Errorf("plain mmi.docs nosuch = %q; want 404", m.Body)
	}
	c.sendMsg(clientV1(mdp.MMIDocs, []byte("tea")))
	if m := c.expect("plain mmi.docs tea"); !bytes.Contains(m.Body[0], []byte(digest)) {
		t.Errorf("plain mmi.docs tea = %q; want the contract", m.Body)
	}

	// A worker with another contract: the service disagrees, once logged.
	other := teaContract("Brew a mug")
	odd := contractWorker(t, ep, other)
	contractWorker(t, ep, other)
	waitWorkers(t, b, 5)
	if s := serviceNamed(t, b, "tea"); s.Contracts != 2 || s.Digest != other.ComputeDigest() {
		t.Errorf("tea after a different contract = %+v; want 2 contracts, the latest served", s)
	}
	waitFor(t, "the disagreement logged", func() bool { return strings.Contains(logs.String(), "workers disagree") })
	if n := strings.Count(logs.String(), "workers disagree"); n != 1 {
		t.Errorf("disagreement logged %d times; want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "differ=[brew]") {
		t.Errorf("disagreement log does not name the method brew:\n%s", logs.String())
	}
	var digests []string
	for _, w := range stats(t, b).Workers {
		digests = append(digests, w.Digest)
	}
	if strings.Count(strings.Join(digests, " "), digest) != 2 {
		t.Errorf("workers' digests = %v; want %s twice", digests, digest)
	}

	// The odd workers leave: agreement again, and the docs fall back.
	odd.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Disconnect})
	waitWorkers(t, b, 4)
	if s := serviceNamed(t, b, "tea"); s.Contracts != 2 {
		t.Errorf("tea with one odd worker left = %+v; want 2 contracts", s)
	}
}

func TestContractFallsBackWhenLatestWorkersLeave(t *testing.T) {
	b, ep := testbroker.Start(t)
	first := teaContract("Brew a cup")
	contractWorker(t, ep, first)
	waitWorkers(t, b, 1)
	second := contractWorker(t, ep, teaContract("Brew a mug"))
	waitWorkers(t, b, 2)
	second.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Disconnect})
	waitWorkers(t, b, 1)
	if s := serviceNamed(t, b, "tea"); s.Contracts != 1 || s.Digest != first.ComputeDigest() {
		t.Errorf("tea after the newer worker left = %+v; want the first contract again", s)
	}
}

func TestContractIgnoredWhenBad(t *testing.T) {
	b, ep := testbroker.Start(t)
	contractWorker(t, ep, mdp.ServiceContract{Service: "coffee", Methods: []mdp.MethodContract{{Name: "order"}}}) // READY for coffee, contract names coffee: fine
	w := dial(t, ep)
	h := mdp.AppendHeader(nil, mdp.HeaderCredit, "1")
	h = mdp.AppendHeader(h, mdp.HeaderContract, `{"service":"coffee","methods":[{"name":"spoof"}]}`)
	w.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte("tea"), Body: [][]byte{h}})
	w2 := dial(t, ep)
	h = mdp.AppendHeader(nil, mdp.HeaderCredit, "1")
	h = mdp.AppendHeader(h, mdp.HeaderContract, `{"service":`)
	w2.sendMsg(mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte("tea"), Body: [][]byte{h}})
	waitWorkers(t, b, 3)
	if s := serviceNamed(t, b, "tea"); s.Workers != 2 || s.Methods != 0 || s.Contracts != 0 {
		t.Errorf("tea = %+v; want 2 workers serving, no contract", s)
	}
	if s := serviceNamed(t, b, "coffee"); s.Methods != 1 {
		t.Errorf("coffee = %+v; want its one method, not tea's spoof", s)
	}
}
