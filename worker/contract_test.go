package worker

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/contract"
	"github.com/domo-framework/domo/mdp"
)

type brewIn struct {
	Kind  string `json:"kind,omitempty" jsonschema:"enum=assam,enum=green" jsonschema_description:"The tea, assam if empty"`
	Sugar int    `json:"sugar" jsonschema:"required,minimum=0,maximum=5,description=Spoons"`
}

type cup struct {
	Note string `json:"note"`
}

func brewCup(_ context.Context, in brewIn) (cup, error) {
	return cup{Note: in.Kind + " with " + strconv.Itoa(in.Sugar)}, nil
}

func TestContractInReady(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b, WithConcurrency(3), WithDoc("Tea, brewed"))
	w.Handle("brew", Typed(brewCup), Doc("Brew a cup"))
	w.HandleFunc("steep", echo, Doc("Steep a pot"), Streaming())
	w.HandleFunc("raw", echo)
	errc := run(t, w, context.Background())
	t.Cleanup(func() { w.Close(); <-errc })
	_, m, _ := b.expect(mdp.Ready)
	if len(m.Body) != 1 {
		t.Fatalf("READY body = %q; want one headers frame", m.Body)
	}
	h := mdp.Headers(m.Body[0])
	if c, ok := h.Int(mdp.HeaderCredit); !ok || c != 3 {
		t.Errorf("READY credit = %d, %v; want 3", c, ok)
	}
	raw, ok := h.Get(mdp.HeaderContract)
	if !ok {
		t.Fatalf("READY headers %q have no %q", h, mdp.HeaderContract)
	}
	c, err := mdp.ParseContract(raw)
	if err != nil {
		t.Fatalf("ParseContract(READY's contract) = %v", err)
	}
	if c.Service != "tea" || c.Doc != "Tea, brewed" || len(c.Methods) != 3 {
		t.Fatalf("contract = %+v; want service tea, its doc, 3 methods", c)
	}
	if c.Digest == "" || c.Digest != c.ComputeDigest() {
		t.Errorf("contract digest = %q; want %q", c.Digest, c.ComputeDigest())
	}
	if got := w.Contract(); got.Digest != c.Digest {
		t.Errorf("Contract().Digest = %q; READY's is %q", got.Digest, c.Digest)
	}
	byName := map[string]mdp.MethodContract{}
	for _, m := range c.Methods {
		byName[m.Name] = m
	}
	if names := []string{c.Methods[0].Name, c.Methods[1].Name, c.Methods[2].Name}; names[0] != "brew" || names[1] != "raw" || names[2] != "steep" {
		t.Errorf("methods %v; want sorted brew, raw, steep", names)
	}
	brew := byName["brew"]
	if brew.Doc != "Brew a cup" || brew.Request == nil || brew.Reply == nil || brew.Streaming {
		t.Errorf("brew = %+v; want its doc and both schemas", brew)
	}
	var schema struct {
		Type       string                     `json:"type"`
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(brew.Request, &schema); err != nil || schema.Type != "object" || len(schema.Required) != 1 || schema.Required[0] != "sugar" || len(schema.Properties) != 2 {
		t.Errorf("brew request schema = %s (%v); want an object with kind and sugar, sugar required", brew.Request, err)
	}
	if s := byName["steep"]; s.Doc != "Steep a pot" || !s.Streaming || s.Request != nil || s.Reply != nil {
		t.Errorf("steep = %+v; want a doc, streaming, no schemas", s)
	}
	if r := byName["raw"]; r.Doc != "" || r.Request != nil {
		t.Errorf("raw = %+v; want nothing but its name", r)
	}
}

func TestContractTooLarge(t *testing.T) {
	b := newFakeBroker(t)
	limits := mdp.DefaultLimits()
	limits.MaxFrameSize = 300
	w := newWorker(b, WithLimits(limits))
	w.Handle("brew", Typed(brewCup), Doc("Brew a cup"))
	errc := run(t, w, context.Background())
	t.Cleanup(func() { w.Close(); <-errc })
	_, m, _ := b.expect(mdp.Ready)
	if _, ok := mdp.Headers(m.Body[0]).Get(mdp.HeaderContract); ok {
		t.Errorf("READY over the limits carries a contract")
	}
}

func TestValidation(t *testing.T) {
	b := newFakeBroker(t)
	w := newWorker(b)
	var runs atomic.Int32
	w.Handle("brew", Typed(func(ctx context.Context, in brewIn) (cup, error) {
		runs.Add(1)
		return brewCup(ctx, in)
	}))
	id := start(t, b, w)
	for i, tc := range []struct {
		payload string
		field   string // "" for a valid request
	}{
		{`{"sugar":9}`, "/sugar"},
		{`{"kind":"green"}`, "/sugar"},
		{``, "/sugar"},
		{`{"sugar":1,"kind":"oolong"}`, "/kind"},
		{`{"sugar":1,"suger":2}`, "/suger"},
		{`{"sugar":2,"kind":"green"}`, ""},
	} {
		addr := "v" + strconv.Itoa(i)
		b.call(id, addr, "brew", addr, tc.payload)
		r := b.expectReply(mdp.Reply, addr)
		if tc.field == "" {
			if !r.OK() || string(r.Payload) != `{"note":"green with 2"}` {
				t.Errorf("brew(%s) = %s %s; want ok", tc.payload, r.Status, r.Payload)
			}
			continue
		}
		var e domo.Error
		if err := json.Unmarshal(r.Payload, &e); err != nil || e.Code != domo.CodeInvalid {
			t.Errorf("brew(%s) = %s %s; want an invalid error", tc.payload, r.Status, r.Payload)
			continue
		}
		var d contract.Details
		if err := json.Unmarshal(e.Details, &d); err != nil || d.Field != tc.field {
			t.Errorf("brew(%s) error details = %s; want field %q", tc.payload, e.Details, tc.field)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("handler ran %d times; want once, for the valid request only", n)
	}
}
