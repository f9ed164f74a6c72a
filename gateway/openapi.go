package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/domo-framework/domo/mdp"
)

// OpenAPIVersion is the version of the OpenAPI documents the gateway
// serves; their schemas are JSON Schema draft 2020-12, as in contracts.
const OpenAPIVersion = "3.1.0"

type obj = map[string]any

// openapiBuilder collects the component schemas of one document.
type openapiBuilder struct {
	schemas obj
}

// buildOpenAPI builds the document for the contracts in list, plus a
// generic path for each service in bare (services without a contract).
func (g *Gateway) buildOpenAPI(list []mdp.ServiceContract, bare []string) obj {
	b := &openapiBuilder{schemas: obj{
		"Error": obj{
			"type":     "object",
			"required": []string{"error"},
			"properties": obj{
				"error": obj{
					"type":     "object",
					"required": []string{"code", "message"},
					"properties": obj{
						"code":    obj{"type": "string", "description": "domo error code: invalid, unauthenticated, forbidden, unknown_service, unknown_method, overloaded, deadline_exceeded, unavailable, too_large, canceled, internal"},
						"message": obj{"type": "string"},
						"details": obj{"description": "code-specific details"},
					},
				},
				"request_id": obj{"type": "string"},
			},
		},
	}}
	auth := g.auth.enabled()
	paths := obj{}
	var tags []any
	for _, sc := range list {
		tag := obj{"name": sc.Service}
		if sc.Doc != "" {
			tag["description"] = sc.Doc
		}
		tags = append(tags, tag)
		for _, m := range sc.Methods {
			op := b.operation(sc.Service, m.Name, m.Doc, auth)
			if m.Streaming {
				op["description"] = strings.TrimSpace(m.Doc + "\n\nThe method streams partial replies; over HTTP the gateway returns the final one.")
			}
			req := obj{}
			if len(m.Request) > 0 {
				req = b.embed(sc.Service, m.Name, m.Request)
			}
			rep := obj{}
			if len(m.Reply) > 0 {
				rep = b.embed(sc.Service, m.Name, m.Reply)
			}
			op["requestBody"] = obj{"content": obj{"application/json": obj{"schema": req}}}
			op["responses"].(obj)["200"] = obj{
				"description": "the reply",
				"headers":     obj{HeaderRequestID: obj{"$ref": "#/components/headers/RequestID"}},
				"content":     obj{"application/json": obj{"schema": rep}},
			}
			if auth && g.anonymousAllowed(sc.Service, m.Name) {
				op["security"] = []any{obj{"bearer": []string{}}, obj{}}
			}
			paths["/v1/"+sc.Service+"/"+m.Name] = obj{"post": op}
		}
	}
	for _, svc := range bare {
		op := b.operation(svc, "{method}", "", auth)
		op["description"] = "Service " + svc + " publishes no contract: any method, any JSON."
		op["parameters"] = append(op["parameters"].([]any), obj{"name": "method", "in": "path", "required": true, "schema": obj{"type": "string"}})
		op["requestBody"] = obj{"content": obj{"application/json": obj{"schema": obj{}}}}
		op["responses"].(obj)["200"] = obj{"description": "the reply", "content": obj{"application/json": obj{"schema": obj{}}}}
		paths["/v1/"+svc+"/{method}"] = obj{"post": op}
		tags = append(tags, obj{"name": svc})
	}
	paths["/v1/services"] = obj{"get": obj{
		"operationId": "services",
		"summary":     "List the services, their workers and methods",
		"tags":        []string{"gateway"},
		"security":    g.docsSecurity(),
		"responses": obj{
			"200": obj{"description": "the services", "content": obj{"application/json": obj{"schema": obj{
				"type": "array",
				"items": obj{
					"type":     "object",
					"required": []string{"name", "methods"},
					"properties": obj{
						"name":      obj{"type": "string"},
						"doc":       obj{"type": "string"},
						"workers":   obj{"type": "integer"},
						"ready":     obj{"type": "integer"},
						"capacity":  obj{"type": "integer"},
						"in_flight": obj{"type": "integer"},
						"queued":    obj{"type": "integer"},
						"methods": obj{"type": "array", "items": obj{
							"type":       "object",
							"properties": obj{"name": obj{"type": "string"}, "doc": obj{"type": "string"}, "path": obj{"type": "string"}, "streaming": obj{"type": "boolean"}},
						}},
					},
				},
			}}}},
			"default": obj{"$ref": "#/components/responses/Error"},
		},
	}}
	tags = append(tags, obj{"name": "gateway", "description": "the gateway itself"})

	components := obj{
		"schemas": b.schemas,
		"headers": obj{
			"RequestID":  obj{"description": "the request id: the caller's, or one the gateway made", "schema": obj{"type": "string"}},
			"RetryAfter": obj{"description": "seconds to wait before trying again", "schema": obj{"type": "integer"}},
		},
		"parameters": obj{
			"RequestID": obj{"name": HeaderRequestID, "in": "header", "description": "a request id to carry through (1-128 printable ASCII); made up if absent", "schema": obj{"type": "string", "maxLength": 128}},
			"Timeout":   obj{"name": HeaderTimeout, "in": "header", "description": "the call's deadline: a duration (\"250ms\", \"2s\") or milliseconds; default " + g.cfg.DefaultTimeout.String() + ", at most " + g.cfg.MaxTimeout.String(), "schema": obj{"type": "string"}},
		},
		"responses": errorResponses(auth),
	}
	doc := obj{
		"openapi":           OpenAPIVersion,
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"info": obj{
			"title":       g.cfg.Title,
			"version":     "1",
			"description": "HTTP/JSON gateway to the domo services: POST /v1/{service}/{method} with the method's JSON request.",
		},
		"paths":      paths,
		"tags":       tags,
		"components": components,
	}
	if auth {
		components["securitySchemes"] = obj{"bearer": obj{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
		doc["security"] = []any{obj{"bearer": []string{}}}
	}
	return doc
}

// errorStatuses lists the error responses of every method, by status.
var errorStatuses = []struct {
	status int
	name   string
	auth   bool
}{
	{http.StatusBadRequest, "Invalid", false},
	{http.StatusUnauthorized, "Unauthenticated", true},
	{http.StatusForbidden, "Forbidden", true},
	{http.StatusNotFound, "NotFound", false},
	{http.StatusRequestEntityTooLarge, "TooLarge", false},
	{http.StatusServiceUnavailable, "Overloaded", false},
	{http.StatusGatewayTimeout, "DeadlineExceeded", false},
}

func errorResponses(auth bool) obj {
	body := obj{"application/json": obj{"schema": obj{"$ref": "#/components/schemas/Error"}}}
	out := obj{"Error": obj{"description": "an error (internal 500, unavailable 502, and the others)", "content": body}}
	for _, e := range errorStatuses {
		if e.auth && !auth {
			continue
		}
		r := obj{"description": http.StatusText(e.status), "content": body}
		if e.status == http.StatusServiceUnavailable {
			r["headers"] = obj{"Retry-After": obj{"$ref": "#/components/headers/RetryAfter"}}
		}
		out[e.name] = r
	}
	return out
}

// operation returns a POST operation with its parameters and error
// responses; the caller adds the request body and the 200 response.
func (b *openapiBuilder) operation(service, method, doc string, auth bool) obj {
	responses := obj{"default": obj{"$ref": "#/components/responses/Error"}}
	for _, e := range errorStatuses {
		if e.auth && !auth {
			continue
		}
		responses[strconv.Itoa(e.status)] = obj{"$ref": "#/components/responses/" + e.name}
	}
	op := obj{
		"operationId": service + "." + method,
		"tags":        []string{service},
		"parameters":  []any{obj{"$ref": "#/components/parameters/RequestID"}, obj{"$ref": "#/components/parameters/Timeout"}},
		"responses":   responses,
	}
	if doc != "" {
		summary, _, _ := strings.Cut(doc, "\n")
		op["summary"] = summary
		op["description"] = doc
	}
	return op
}

// anonymousAllowed reports whether a caller without a token may call.
func (g *Gateway) anonymousAllowed(service, method string) bool {
	return g.auth.authorize(nil, service, method) == nil
}

func (g *Gateway) docsSecurity() []any {
	if g.cfg.Auth.ProtectDocs && g.auth.enabled() {
		return []any{obj{"bearer": []string{}}}
	}
	return []any{obj{}}
}

// embed prepares one of a method's JSON Schemas for the document: its
// $defs (or definitions) move to components/schemas under names prefixed
// with the service (or, when they clash, the method), its $refs follow them,
// and $schema and $id go (the document's dialect applies). A schema that
// does not parse becomes the empty schema.
func (b *openapiBuilder) embed(service, method string, raw json.RawMessage) obj {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return obj{}
	}
	m, ok := v.(map[string]any)
	if !ok {
		if v == false {
			return obj{"not": obj{}}
		}
		return obj{}
	}
	delete(m, "$schema")
	delete(m, "$id")
	type def struct {
		key, name string
		schema    any
	}
	var defs []def
	for _, key := range []string{"$defs", "definitions"} {
		d, _ := m[key].(map[string]any)
		delete(m, key)
		for name, s := range d {
			defs = append(defs, def{key, name, s})
		}
	}
	if len(defs) == 0 {
		return m
	}
	for _, prefix := range []string{service, service + "." + method} {
		rename := make(map[string]string, len(defs))
		for _, d := range defs {
			rename["#/"+d.key+"/"+d.name] = "#/components/schemas/" + componentName(prefix+"."+d.name)
		}
		clash := false
		out := make(map[string]any, len(defs))
		for _, d := range defs {
			s := rewriteRefs(deepCopy(d.schema), rename)
			if sm, ok := s.(map[string]any); ok {
				delete(sm, "$schema")
				delete(sm, "$id")
			}
			name := componentName(prefix + "." + d.name)
			if old, ok := b.schemas[name]; ok && !sameJSON(old, s) {
				clash = true
				break
			}
			out[name] = s
		}
		if clash && prefix == service {
			continue
		}
		for k, s := range out {
			b.schemas[k] = s
		}
		return rewriteRefs(m, rename).(map[string]any)
	}
	return m // not reached
}

// rewriteRefs rewrites the $ref values of a schema that point into the
// renamed definitions.
func rewriteRefs(v any, rename map[string]string) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if ref, ok := e.(string); ok && k == "$ref" {
				for from, to := range rename {
					if ref == from || strings.HasPrefix(ref, from+"/") {
						v[k] = to + ref[len(from):]
						break
					}
				}
				continue
			}
			v[k] = rewriteRefs(e, rename)
		}
	case []any:
		for i, e := range v {
			v[i] = rewriteRefs(e, rename)
		}
	}
	return v
}

func deepCopy(v any) any {
	b, _ := json.Marshal(v)
	var out any
	json.Unmarshal(b, &out)
	return out
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// componentName makes a valid component key (^[a-zA-Z0-9.\-_]+$).
func componentName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
