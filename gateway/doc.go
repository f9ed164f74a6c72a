// Package gateway serves the domo services over HTTP/JSON. A Gateway is an
// http.Handler in front of one or more brokers:
//
//	cfg := gateway.DefaultConfig()
//	cfg.Brokers = []string{"tcp://127.0.0.1:5555"}
//	cfg.Auth.HS256Secret = secret
//	cfg.Auth.Audience = "domo"
//	cfg.Auth.Rules = map[string]gateway.Rule{"tea.brew": {Roles: []string{"barista"}}}
//	g, err := gateway.New(cfg)
//	if err != nil {
//		return err
//	}
//	defer g.Close()
//	http.ListenAndServe("127.0.0.1:8080", g)
//
// POST /v1/{service}/{method} with a JSON body calls the method and answers
// its JSON reply (200, or 204 when it is empty). A failure is answered with
// a JSON body {"error": {"code", "message", "details"}, "request_id"} and the
// status the one table in errors.go gives its domo code: invalid 400,
// unauthenticated 401, forbidden 403, unknown_service and unknown_method
// 404, too_large 413, internal 500, unavailable 502, overloaded 503 (with
// Retry-After), deadline_exceeded 504.
//
// The call's deadline comes from the X-Request-Timeout header or
// Config.DefaultTimeout. The request id (X-Request-Id, the caller's or a
// new one) is echoed and sent to the worker in the "request-id" header.
// Bodies over Config.MaxBody are refused (413), bodies that are not JSON
// too (400), and, when the service publishes a contract (MMI mmi.docs), so
// are bodies that do not match the method's request schema (400).
//
// With a key source configured (an HS256 secret, RSA or ECDSA public keys,
// or a JWKS URL refreshed in the background), callers send a bearer JWT:
// its signature, exp, nbf, iss and aud are checked, the rules of
// AuthConfig.Rules applied, and its claims (the JSON as signed) sent to the
// worker in the "caller" header (mdp.HeaderCaller), so a handler knows its
// caller. Anonymous calls pass only where AuthConfig says so.
//
// GET /v1/services lists the services; GET /openapi.json is an OpenAPI 3.1
// document built from the contracts, live; GET /docs renders it with a
// page embedded in the binary (no external assets).
package gateway
