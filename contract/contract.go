// Package contract generates the JSON Schemas of a method's request and
// reply from Go types, and checks request payloads against them.
//
// The worker SDK uses it for methods registered with worker.Typed, and the
// HTTP gateway uses it to check HTTP callers' requests before they travel,
// so both refuse a bad request with the same error:
//
//	schema := contract.For[BrewRequest]()
//	v, err := contract.Compile(schema)
//	...
//	if err := v.Validate(payload); err != nil {
//		return err // a *domo.Error, code invalid, Details {"field": "/sugar", ...}
//	}
//
// Schemas are JSON Schema draft 2020-12, reflected by
// github.com/invopop/jsonschema from the type's fields and their `json` and
// `jsonschema` struct tags:
//
//	type BrewRequest struct {
//		Kind  string `json:"kind" jsonschema:"enum=assam,enum=green,example=green" jsonschema_description:"The tea, assam if empty"`
//		Sugar int    `json:"sugar" jsonschema:"required,minimum=0,maximum=5,description=Spoons of sugar"`
//	}
//
// A field is required only when its tag says "required". A struct accepts
// no properties but its fields (additionalProperties false), so a misspelt
// field is refused by name. A type whose JSON form is its own (it
// implements json.Unmarshaler) should describe it with a JSONSchema method
// (see invopop/jsonschema); at the top level such a type, json.RawMessage
// and interfaces get no schema and are not checked.
package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	invopop "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/domo-framework/domo"
)

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	timeType        = reflect.TypeFor[time.Time]()
	rawType         = reflect.TypeFor[json.RawMessage]()
	schemaerType    = reflect.TypeFor[interface{ JSONSchema() *invopop.Schema }]()
)

// For returns the JSON Schema of T, or nil if T has none (see Reflect).
func For[T any]() json.RawMessage { return Reflect(reflect.TypeFor[T]()) }

// Reflect returns the JSON Schema of values of type t, as JSON, or nil when
// t's JSON form cannot be told from its Go type: an interface,
// json.RawMessage, or a type with its own UnmarshalJSON and no JSONSchema
// method. It is safe for concurrent use.
func Reflect(t reflect.Type) json.RawMessage {
	if t == nil || t.Kind() == reflect.Interface || t == rawType {
		return nil
	}
	custom := t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)
	if custom && t != timeType && !t.Implements(schemaerType) && !reflect.PointerTo(t).Implements(schemaerType) {
		return nil
	}
	r := &invopop.Reflector{
		ExpandedStruct:             true, // the type itself inline; nested named types under $defs
		Anonymous:                  true, // no $id derived from the Go package path
		RequiredFromJSONSchemaTags: true, // required only when the tag says so
	}
	s := r.ReflectFromType(t)
	b, err := json.Marshal(s)
	if err != nil {
		return nil
	}
	return b
}

// Validator checks request payloads against one JSON Schema. It is safe
// for concurrent use.
type Validator struct {
	schema *jsonschema.Schema
	object bool // the schema's type is "object": an empty payload is checked as {}
}

var compiled atomic.Uint64 // names each compiled schema uniquely

// Compile compiles schema (JSON Schema draft 2020-12 unless it says
// otherwise in $schema) for Validate. It does not fetch remote references.
func Compile(schema json.RawMessage) (*Validator, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("contract: schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	url := fmt.Sprintf("domo:///schema/%d.json", compiled.Add(1))
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("contract: compile schema: %w", err)
	}
	v := &Validator{schema: sch}
	if m, ok := doc.(map[string]any); ok {
		v.object = m["type"] == "object"
	}
	return v, nil
}

var printer = message.NewPrinter(language.English)

// Validate checks payload, a JSON document, against the schema. It returns
// nil if it conforms, and otherwise a *domo.Error with code
// domo.CodeInvalid whose Details are a JSON object
//
//	{"field": "/sugar", "reason": "maximum: got 9, want 5"}
//
// naming the first offending value by its JSON Pointer (RFC 6901; "" is the
// whole payload; for a missing or unexpected property, the property). A
// null member of an object counts as absent, as it does for Go's decoder.
// An empty payload is checked as {} when the schema is an object's, and
// passes otherwise (a Typed handler decodes it as the zero value).
func (v *Validator) Validate(payload []byte) error {
	var inst any
	if len(bytes.TrimSpace(payload)) == 0 {
		if !v.object {
			return nil
		}
		inst = map[string]any{}
	} else {
		var err error
		inst, err = jsonschema.UnmarshalJSON(bytes.NewReader(payload))
		if err != nil {
			return invalid("", "not valid JSON: "+trimPrefix(err.Error()))
		}
		if inst == nil { // null: the zero value, as for an empty payload
			if !v.object {
				return nil
			}
			inst = map[string]any{}
		}
		inst = dropNulls(inst)
	}
	err := v.schema.Validate(inst)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return invalid("", err.Error())
	}
	leaf := verr
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	loc := leaf.InstanceLocation
	switch k := leaf.ErrorKind.(type) {
	case *kind.Required:
		loc = append(loc[:len(loc):len(loc)], k.Missing[0])
	case *kind.AdditionalProperties:
		loc = append(loc[:len(loc):len(loc)], k.Properties[0])
	}
	return invalid(pointer(loc), leaf.ErrorKind.LocalizedString(printer))
}

// Details are the details of the error Validate returns.
type Details struct {
	Field  string `json:"field"`  // JSON Pointer of the offending value
	Reason string `json:"reason"` // what is wrong with it
}

func invalid(field, reason string) error {
	d, _ := json.Marshal(Details{Field: field, Reason: reason})
	where := "request"
	if field != "" {
		where = "request field " + field
	}
	return &domo.Error{Code: domo.CodeInvalid, Message: where + ": " + reason, Details: d}
}

func trimPrefix(s string) string {
	_, after, ok := strings.Cut(s, "jsonschema: ")
	if ok {
		return after
	}
	return s
}

// pointer encodes a location as a JSON Pointer.
func pointer(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(tok))
	}
	return b.String()
}

// dropNulls removes null members from objects, recursively.
func dropNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
				continue
			}
			x[k] = dropNulls(e)
		}
	case []any:
		for i, e := range x {
			x[i] = dropNulls(e)
		}
	}
	return v
}
