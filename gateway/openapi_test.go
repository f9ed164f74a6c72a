package gateway_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/domo-framework/domo/examples/coffee"
	"github.com/domo-framework/domo/examples/tea"
	"github.com/domo-framework/domo/examples/water"
	"github.com/domo-framework/domo/gateway"
	"github.com/domo-framework/domo/mdp"
	"github.com/domo-framework/domo/worker"
)

func demo(service string, mk func(...worker.Option) *worker.Worker) workerFn {
	return func(ep string) (string, *worker.Worker) { return service, mk(workerOpts(ep)...) }
}

// loadOpenAPI fetches /openapi.json and validates it with kin-openapi.
func loadOpenAPI(t *testing.T, e *env) *openapi3.T {
	t.Helper()
	r := e.do("GET", "/openapi.json", nil)
	if r.status != 200 {
		t.Fatalf("GET /openapi.json = %d %s", r.status, r.body)
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatalf("loading the OpenAPI document: %v\n%s", err, r.body)
	}
	if !doc.IsOpenAPI31OrLater() || doc.OpenAPI != gateway.OpenAPIVersion {
		t.Errorf("openapi = %q; want %s", doc.OpenAPI, gateway.OpenAPIVersion)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document does not validate: %v\n%s", err, r.body)
	}
	return doc
}

// checkMethods checks that doc has a path for every method of c, with its
// request and reply schemas.
func checkMethods(t *testing.T, doc *openapi3.T, c mdp.ServiceContract) {
	t.Helper()
	if len(c.Methods) == 0 {
		t.Fatalf("demo service %s has no methods in its contract", c.Service)
	}
	for _, m := range c.Methods {
		path := "/v1/" + c.Service + "/" + m.Name
		item := doc.Paths.Find(path)
		if item == nil || item.Post == nil {
			t.Errorf("OpenAPI document lacks POST %s", path)
			continue
		}
		op := item.Post
		if op.OperationID != c.Service+"."+m.Name || (m.Doc != "" && op.Description != m.Doc && !strings.HasPrefix(op.Description, m.Doc)) {
			t.Errorf("POST %s: operationId %q, description %q; want %s.%s and %q", path, op.OperationID, op.Description, c.Service, m.Name, m.Doc)
		}
		if len(m.Request) > 0 {
			mt := op.RequestBody.Value.Content.Get("application/json")
			if mt == nil || mt.Schema == nil || mt.Schema.Value == nil || mt.Schema.Value.IsEmpty() {
				t.Errorf("POST %s: no request schema", path)
			}
		}
		if len(m.Reply) > 0 {
			ok := op.Responses.Status(200)
			if ok == nil || ok.Value.Content.Get("application/json") == nil || ok.Value.Content.Get("application/json").Schema.Value.IsEmpty() {
				t.Errorf("POST %s: no reply schema", path)
			}
		}
		for _, status := range []int{400, 404, 413, 503, 504} {
			if op.Responses.Status(status) == nil {
				t.Errorf("POST %s: no %d response", path, status)
			}
		}
	}
}

// TestOpenAPIDemo: the document built from the contracts the demo workers
// send (through the broker's mmi.docs) validates and lists every method with
// its schemas; a service that joins later appears in it.
func TestOpenAPIDemo(t *testing.T) {
	e := start(t, nil, nil, demo(tea.Service, tea.New), demo(coffee.Service, coffee.New))
	doc := loadOpenAPI(t, e)
	checkMethods(t, doc, tea.New().Contract())
	checkMethods(t, doc, coffee.New().Contract())
	if doc.Paths.Find("/v1/services") == nil {
		t.Error("OpenAPI document lacks GET /v1/services")
	}

	// The schemas are the contracts': a good brew request passes, a bad one fails.
	brew := doc.Paths.Find("/v1/tea/brew").Post.RequestBody.Value.Content.Get("application/json").Schema.Value
	if err := brew.VisitJSON(map[string]any{"kind": "green", "sugar": 1.0}, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("tea.brew schema refuses a good request: %v", err)
	}
	if err := brew.VisitJSON(map[string]any{"kind": "oolong"}, openapi3.EnableJSONSchema2020()); err == nil {
		t.Error("tea.brew schema accepts kind oolong")
	}

	// Live: water joins, and the very next document has it, however
	// recently the gateway fetched the contracts (the broker's digests
	// tell it they are stale).
	w := water.New(workerOpts(e.endpoint)...)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(context.Background()) }()
	t.Cleanup(func() { w.Close(); <-done })
	waitReady(t, e.endpoint, water.Service)
	checkMethods(t, loadOpenAPI(t, e), water.New().Contract())

	// And the gateway validates against those schemas before calling.
	if r := e.do("POST", "/v1/tea/brew", []byte(`{"kind":"oolong"}`)); r.status != 400 || r.errorCode() != "invalid" {
		t.Errorf("POST /v1/tea/brew oolong = %d %s; want 400 invalid", r.status, r.body)
	}
	if r := e.do("POST", "/v1/tea/brew", []byte(`{"kind":"green","sugar":2}`)); r.status != 200 || !strings.Contains(string(r.body), "green") {
		t.Errorf("POST /v1/tea/brew green = %d %s; want 200", r.status, r.body)
	}
}

// TestOpenAPIDefs: schemas with $defs and $refs (as other generators write
// them) are hoisted to components and still resolve; auth adds the bearer
// scheme, and methods open to anonymous callers say so.
func TestOpenAPIDefs(t *testing.T) {
	order := json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"https://example.com/order","$ref":"#/$defs/Order",
		"$defs":{"Order":{"type":"object","properties":{"item":{"$ref":"#/$defs/Item"},"items":{"type":"array","items":{"$ref":"#/$defs/Item"}}}},
		"Item":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}}`)
	other := json.RawMessage(`{"$ref":"#/$defs/Item","$defs":{"Item":{"type":"integer"}}}`)
	contracts := []mdp.ServiceContract{
		{Service: "shop", Doc: "A shop", Methods: []mdp.MethodContract{
			{Name: "order", Doc: "Place an order.\nMore words.", Request: order, Reply: order},
			{Name: "count", Request: other, Reply: json.RawMessage(`{"type":"integer"}`)},
			{Name: "raw"},
		}},
	}
	e := start(t, nil, func(c *gateway.Config) {
		c.Contracts = func(context.Context) ([]mdp.ServiceContract, error) { return contracts, nil }
		c.Auth.HS256Secret = []byte("s3cret-s3cret-s3cret-s3cret-s3cret")
		c.Auth.Rules = map[string]gateway.Rule{"shop.count": {Anonymous: true}}
	})
	doc := loadOpenAPI(t, e)
	checkMethods(t, doc, contracts[0])
	op := doc.Paths.Find("/v1/shop/order").Post
	if op.Summary != "Place an order." {
		t.Errorf("summary %q; want the doc's first line", op.Summary)
	}
	sch := op.RequestBody.Value.Content.Get("application/json").Schema
	if sch.Ref != "#/components/schemas/shop.Order" {
		t.Errorf("order request $ref %q; want #/components/schemas/shop.Order", sch.Ref)
	}
	item := sch.Value.Properties["item"]
	if item == nil || item.Ref != "#/components/schemas/shop.Item" || item.Value == nil || len(item.Value.Required) != 1 {
		t.Errorf("order.item = %+v; want the resolved shop.Item", item)
	}
	// count's Item clashes with order's: it gets a name of its own.
	if ref := doc.Paths.Find("/v1/shop/count").Post.RequestBody.Value.Content.Get("application/json").Schema.Ref; ref != "#/components/schemas/shop.count.Item" {
		t.Errorf("count request $ref %q; want #/components/schemas/shop.count.Item", ref)
	}
	if doc.Components.SecuritySchemes["bearer"] == nil || len(doc.Security) != 1 {
		t.Error("no bearer security scheme with auth on")
	}
	if sec := doc.Paths.Find("/v1/shop/count").Post.Security; sec == nil || len(*sec) != 2 {
		t.Errorf("shop.count (anonymous allowed) security = %v; want bearer or none", sec)
	}
}
