package contract_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/contract"
)

type inner struct {
	Name string `json:"name" jsonschema:"required"`
}

type brew struct {
	Kind   string   `json:"kind,omitempty" jsonschema:"enum=assam,enum=green" jsonschema_description:"The tea, assam if empty"`
	Sugar  int      `json:"sugar" jsonschema:"required,minimum=0,maximum=5"`
	Extras []inner  `json:"extras,omitempty"`
	Tags   []string `json:"tags"`
	Pot    *inner   `json:"pot"`
}

func TestValidate(t *testing.T) {
	v, err := contract.Compile(contract.For[brew]())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		payload string
		field   string // "-" for valid
	}{
		{`{"sugar":1}`, "-"},
		{`{"sugar":1,"kind":"green","tags":null,"pot":null}`, "-"},
		{`{"sugar":9}`, "/sugar"},
		{`{"sugar":-1}`, "/sugar"},
		{`{"sugar":"one"}`, "/sugar"},
		{`{"kind":"green"}`, "/sugar"},
		{`{"sugar":null}`, "/sugar"},
		{`{}`, "/sugar"},
		{``, "/sugar"},
		{`null`, "/sugar"},
		{`{"sugar":1,"kind":"oolong"}`, "/kind"},
		{`{"sugar":1,"suger":1}`, "/suger"},
		{`{"sugar":1,"extras":[{"name":"x"},{}]}`, "/extras/1/name"},
		{`{"sugar":1,"pot":{"name":3}}`, "/pot/name"},
		{`[1]`, ""},
		{`{"sugar":`, ""},
	} {
		err := v.Validate([]byte(tc.payload))
		if tc.field == "-" {
			if err != nil {
				t.Errorf("Validate(%q) = %v; want nil", tc.payload, err)
			}
			continue
		}
		if !errors.Is(err, domo.ErrInvalid) {
			t.Errorf("Validate(%q) = %v; want an invalid error", tc.payload, err)
			continue
		}
		var d contract.Details
		if err := json.Unmarshal(domo.AsError(err).Details, &d); err != nil {
			t.Errorf("Validate(%q): details: %v", tc.payload, err)
			continue
		}
		if d.Field != tc.field || d.Reason == "" {
			t.Errorf("Validate(%q) details = %+v; want field %q and a reason", tc.payload, d, tc.field)
		}
	}
}

func TestReflect(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(contract.For[brew](), &s); err != nil {
		t.Fatal(err)
	}
	if s["type"] != "object" {
		t.Errorf("schema type = %v; want object", s["type"])
	}
	if req, _ := json.Marshal(s["required"]); string(req) != `["sugar"]` {
		t.Errorf("required = %s; want [\"sugar\"]", req)
	}
	kind := s["properties"].(map[string]any)["kind"].(map[string]any)
	if kind["description"] != "The tea, assam if empty" {
		t.Errorf("kind description = %v", kind["description"])
	}
	for name, schema := range map[string]json.RawMessage{
		"any":             contract.For[any](),
		"json.RawMessage": contract.For[json.RawMessage](),
	} {
		if schema != nil {
			t.Errorf("For[%s]() = %s; want nil", name, schema)
		}
	}
	for name, schema := range map[string]json.RawMessage{"int": contract.For[int](), "[]string": contract.For[[]string]()} {
		v, err := contract.Compile(schema)
		if err != nil {
			t.Fatalf("Compile(For[%s]()): %v", name, err)
		}
		if err := v.Validate(nil); err != nil {
			t.Errorf("For[%s]: Validate(empty) = %v; want nil (the zero value)", name, err)
		}
		if err := v.Validate([]byte(`{"a":1}`)); err == nil {
			t.Errorf("For[%s]: Validate(an object) = nil; want an error", name)
		}
	}
}

func TestCompileBad(t *testing.T) {
	for _, s := range []string{`{`, `{"type":"nosuch"}`} {
		if _, err := contract.Compile(json.RawMessage(s)); err == nil {
			t.Errorf("Compile(%q) = nil error; want one", s)
		}
	}
}
