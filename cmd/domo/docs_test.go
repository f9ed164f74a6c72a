package main

// Golden tests of `domo docs` and `domo services` output: end to end against
// the example services (built binary, real broker and workers), and in
// process for what the examples do not show (disagreeing workers, nested
// and recursive schemas). go test -update rewrites the files.

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domo-framework/domo/contract"
	"github.com/domo-framework/domo/mdp"
)

func TestDocsGolden(t *testing.T) {
	t.Parallel()
	_, ep := startBroker(t, "--heartbeat", "1s")
	startServeHB(t, ep, "1s", "water", "tea", "coffee")

	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"docs_tea.golden", []string{"docs", "tea"}},
		{"docs_tea_json.golden", []string{"docs", "tea", "--json"}},
		{"docs_all.golden", []string{"docs"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			r := run(t, append(tc.args, "--broker", ep)...)
			if r.code != 0 {
				t.Fatalf("domo %s: exit %d; stderr:\n%s", strings.Join(tc.args, " "), r.code, r.stderr)
			}
			golden(t, filepath.Join("testdata", tc.golden), r.stdout)
		})
	}

	t.Run("unknown service", func(t *testing.T) {
		r := run(t, "docs", "--broker", ep, "nosuch")
		if r.code == 0 {
			t.Errorf("domo docs nosuch: exit 0; want non-zero")
		}
		oneLine(t, "stderr", r.stderr, "unknown_service", "nosuch")
	})

	t.Run("validation", func(t *testing.T) {
		r := run(t, "call", "--broker", ep, "tea.brew", `{"sugar":9}`)
		if r.code == 0 {
			t.Errorf("domo call tea.brew sugar 9: exit 0; want non-zero")
		}
		oneLine(t, "stderr", r.stderr, "invalid", "/sugar")
	})
}

type address struct {
	Street string `json:"street" jsonschema:"required"`
	Tags   map[string]int
}

type node struct {
	Name     string  `json:"name"`
	Children []*node `json:"children,omitempty" jsonschema:"description=Nodes under this one"`
}

type order struct {
	ID      string    `json:"id" jsonschema:"required,pattern=^[a-z]+$,minLength=2" jsonschema_description:"Order id"`
	Ship    address   `json:"ship"`
	Extra   []address `json:"extra,omitempty"`
	Tree    node      `json:"tree"`
	Sizes   []int     `json:"sizes" jsonschema:"minItems=1"`
	Express bool      `json:"express,omitempty" jsonschema:"default=false"`
}

func TestPrintGolden(t *testing.T) {
	services := []mdp.ServiceInfo{
		{Name: "coffee", Workers: 1, Ready: 1, Capacity: 16, Methods: 1, Contracts: 1, Digest: "sha256:aa"},
		{Name: "legacy", Workers: 2, Ready: 2, Capacity: 2},
		{Name: "tea", Workers: 3, Ready: 1, Capacity: 48, InFlight: 20, Queued: 4, Methods: 3, Contracts: 2, Digest: "sha256:bb"},
	}
	var buf bytes.Buffer
	if err := printServices(&buf, services); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "services_disagree.golden"), buf.String())

	sc := mdp.ServiceContract{Service: "shop", Doc: "A shop", Methods: []mdp.MethodContract{
		{Name: "order", Doc: "Place an order.", Request: contract.For[order](), Reply: contract.For[[]node]()},
		{Name: "ping", Reply: json.RawMessage(`{"type":["string","null"],"const":"pong"}`)},
	}}
	sc.Digest = sc.ComputeDigest()
	buf.Reset()
	if err := printContract(&buf, sc); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("\n")
	if err := printContract(&buf, mdp.ServiceContract{Service: "legacy", Methods: []mdp.MethodContract{}}); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "docs_nested.golden"), buf.String())
}
