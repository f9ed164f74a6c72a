package mdp

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseContract(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"service":"tea","methods":[{"name":"brew","doc":"Brew a cup","request":{"type":"object"}}]}`, true},
		{`{"service":"tea","methods":[]}`, true},
		{`{"service":"","methods":[]}`, false},
		{`{"service":"tea","methods":[{"name":""}]}`, false},
		{`{"service":"tea","methods":[{"name":"a"},{"name":"a"}]}`, false},
		{`{"service":`, false},
		{`[]`, false},
	} {
		_, err := ParseContract([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("ParseContract(%q) = %v; want ok %v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseContract(%q) = %v; want ErrMalformed", tc.in, err)
		}
	}
}

func TestComputeDigest(t *testing.T) {
	a := ServiceContract{Service: "tea", Methods: []MethodContract{{Name: "brew", Request: json.RawMessage(`{"type": "object"}`)}}}
	b := a
	b.Methods = []MethodContract{{Name: "brew", Request: json.RawMessage("{\n  \"type\":\"object\"\n}")}}
	b.Digest = "sha256:whatever"
	da, db := a.ComputeDigest(), b.ComputeDigest()
	if !strings.HasPrefix(da, "sha256:") || len(da) != len("sha256:")+64 {
		t.Errorf("ComputeDigest() = %q; want sha256: and 64 hex digits", da)
	}
	if da != db {
		t.Errorf("digests differ by schema layout or the Digest field: %q, %q", da, db)
	}
	c := a
	c.Methods = []MethodContract{{Name: "brew", Doc: "Brew a cup", Request: a.Methods[0].Request}}
	if c.ComputeDigest() == da {
		t.Errorf("a changed doc left the digest %q unchanged", da)
	}
}
