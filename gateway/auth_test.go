package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/domo-framework/domo/gateway"
)

var secret = []byte("a-test-secret-of-at-least-32-bytes!")

const (
	issuer   = "https://issuer.test"
	audience = "domo-gateway"
)

// claims returns valid claims for sub, changed by the given functions.
func claims(sub string, change ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": sub, "iss": issuer, "aud": audience, "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()}
	for _, f := range change {
		f(c)
	}
	return c
}

func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func authRules() map[string]gateway.Rule {
	return map[string]gateway.Rule{
		"lab.echo":   {Roles: []string{"barista", "admin"}},
		"lab.refuse": {Claims: map[string]string{"tier": "gold"}},
		"lab.empty":  {Anonymous: true},
	}
}

// TestAuthHS256 covers the token checks and the rules with an HMAC secret.
func TestAuthHS256(t *testing.T) {
	e := start(t, nil, func(c *gateway.Config) {
		c.Auth.HS256Secret = secret
		c.Auth.Issuer, c.Auth.Audience = issuer, audience
		c.Auth.Leeway = time.Second
		c.Auth.Rules = authRules()
	}, labWorker)
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, secret, "", c) }
	good := hs(claims("alice", func(c jwt.MapClaims) { c["roles"] = []string{"barista"}; c["tier"] = "gold" }))
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims("mallory")).SignedString(jwt.UnsafeAllowNoneSignatureType)

	tests := []struct {
		name    string
		path    string
		headers []string
		status  int
		msg     string
	}{
		{"valid", "/v1/lab/whoami", bearer(good), 200, ""},
		{"missing", "/v1/lab/whoami", nil, 401, "needs a bearer token"},
		{"not bearer", "/v1/lab/whoami", []string{"Authorization", "Basic YWxpY2U6cHc="}, 401, "not a bearer token"},
		{"garbage", "/v1/lab/whoami", bearer("not.a.token"), 401, "malformed"},
		{"expired", "/v1/lab/whoami", bearer(hs(claims("alice", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))), 401, "expired"},
		{"no exp", "/v1/lab/whoami", bearer(hs(claims("alice", func(c jwt.MapClaims) { delete(c, "exp") }))), 401, "exp"},
		{"nbf in the future", "/v1/lab/whoami", bearer(hs(claims("alice", func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }))), 401, "not valid yet"},
		{"forged", "/v1/lab/whoami", bearer(sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), "", claims("alice"))), 401, "signature"},
		{"tampered", "/v1/lab/whoami", bearer(tamper(good)), 401, "signature"},
		{"alg none", "/v1/lab/whoami", bearer(noneTok), 401, "token"},
		{"wrong audience", "/v1/lab/whoami", bearer(hs(claims("alice", func(c jwt.MapClaims) { c["aud"] = "someone-else" }))), 401, "audience"},
		{"wrong issuer", "/v1/lab/whoami", bearer(hs(claims("alice", func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }))), 401, "issuer"},
		{"role present", "/v1/lab/echo", bearer(good), 200, ""},
		{"role as a string", "/v1/lab/echo", bearer(hs(claims("bob", func(c jwt.MapClaims) { c["roles"] = "reader admin" }))), 200, ""},
		{"role missing", "/v1/lab/echo", bearer(hs(claims("carol", func(c jwt.MapClaims) { c["roles"] = []string{"reader"} }))), 403, "needs one of the roles"},
		{"claim rule met", "/v1/lab/refuse", bearer(good), 400, "cups"}, // the handler's own 400: the gateway let it through
		{"claim rule unmet", "/v1/lab/refuse", bearer(hs(claims("dave", func(c jwt.MapClaims) { c["tier"] = "silver" }))), 403, "tier=gold"},
		{"anonymous method", "/v1/lab/empty", nil, 204, ""},
		{"anonymous method, bad token", "/v1/lab/empty", bearer("x.y.z"), 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", tt.path, []byte(`{}`), tt.headers...)
			if r.status != tt.status || !strings.Contains(string(r.body), tt.msg) {
				t.Fatalf("POST %s = %d %s; want %d mentioning %q", tt.path, r.status, r.body, tt.status, tt.msg)
			}
			if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	// The verified claims reach the worker in the caller header.
	r := e.do("POST", "/v1/lab/whoami", []byte(`{}`), bearer(good)...)
	var got struct {
		Caller map[string]any `json:"caller"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || got.Caller["sub"] != "alice" || got.Caller["tier"] != "gold" || got.Caller["aud"] != audience {
		t.Errorf("worker saw caller %s; want alice's claims", r.body)
	}
	// Docs stay public unless ProtectDocs.
	if r := e.do("GET", "/openapi.json", nil); r.status != 200 {
		t.Errorf("GET /openapi.json without a token = %d; want 200", r.status)
	}
}

// tamper changes a token's claims without re-signing it.
func tamper(tok string) string {
	p := strings.Split(tok, ".")
	p[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","roles":["admin"],"iss":"` + issuer + `","aud":"` + audience + `","exp":9999999999}`))
	return strings.Join(p, ".")
}

// TestAuthAnonymous: Anonymous lets token-less callers through, except
// where a rule asks for roles; a bad token is still refused.
func TestAuthAnonymous(t *testing.T) {
	e := start(t, nil, func(c *gateway.Config) {
		c.Auth.HS256Secret = secret
		c.Auth.Anonymous = true
		c.Auth.ProtectDocs = true
		c.Auth.Rules = authRules()
	}, labWorker)
	r := e.do("POST", "/v1/lab/whoami", []byte(`{}`))
	if r.status != 200 || strings.Contains(string(r.body), "caller") {
		t.Errorf("anonymous whoami = %d %s; want 200 with no caller", r.status, r.body)
	}
	if r := e.do("POST", "/v1/lab/echo", []byte(`{}`)); r.status != 401 {
		t.Errorf("anonymous call of a method with a role rule = %d; want 401", r.status)
	}
	if r := e.do("POST", "/v1/lab/whoami", []byte(`{}`), bearer("bad")...); r.status != 401 {
		t.Errorf("bad token with Anonymous = %d; want 401", r.status)
	}
	if r := e.do("GET", "/openapi.json", nil); r.status != 401 {
		t.Errorf("GET /openapi.json without a token, ProtectDocs = %d; want 401", r.status)
	}
	tok := sign(t, jwt.SigningMethodHS256, secret, "", claims("alice"))
	if r := e.do("GET", "/v1/services", nil, bearer(tok)...); r.status != 200 {
		t.Errorf("GET /v1/services with a token, ProtectDocs = %d; want 200", r.status)
	}
}

// TestAuthPublicKeys: RS256 and ES256 tokens against PEM keys; a token
// signed by another key, or HMAC-signed with the public key as secret (the
// algorithm confusion attack), is refused.
func TestAuthPublicKeys(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaPEM := pemOf(t, &rk.PublicKey)
	e := start(t, nil, func(c *gateway.Config) {
		c.Auth.PublicKeys = []string{rsaPEM, pemOf(t, &ek.PublicKey)}
		c.Auth.Audience = audience
	}, labWorker)
	for _, tt := range []struct {
		name   string
		tok    string
		status int
	}{
		{"RS256", sign(t, jwt.SigningMethodRS256, rk, "", claims("alice")), 200},
		{"ES256", sign(t, jwt.SigningMethodES256, ek, "", claims("alice")), 200},
		{"RS256 by another key", sign(t, jwt.SigningMethodRS256, other, "", claims("alice")), 401},
		{"HS256 with the public key as secret", sign(t, jwt.SigningMethodHS256, []byte(rsaPEM), "", claims("alice")), 401},
		{"RS256 wrong audience", sign(t, jwt.SigningMethodRS256, rk, "", claims("alice", func(c jwt.MapClaims) { c["aud"] = []string{"x", "y"} })), 401},
	} {
		if r := e.do("POST", "/v1/lab/whoami", []byte(`{}`), bearer(tt.tok)...); r.status != tt.status {
			t.Errorf("%s: %d %s; want %d", tt.name, r.status, r.body, tt.status)
		}
	}
}

func pemOf(t *testing.T, pub any) string {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: b}))
}

// jwksServer serves a key set that the test can replace.
type jwksServer struct {
	mu      sync.Mutex
	set     []byte
	fetches atomic.Int64
	*httptest.Server
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.set)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve makes the set hold exactly these keys, by key id.
func (s *jwksServer) serve(t *testing.T, keys map[string]any) {
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	b64 := func(i *big.Int, size int) string {
		b := i.Bytes()
		if size > len(b) {
			b = append(make([]byte, size-len(b)), b...)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for kid, k := range keys {
		switch k := k.(type) {
		case *ecdsa.PublicKey:
			set.Keys = append(set.Keys, map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256", "x": b64(k.X, 32), "y": b64(k.Y, 32)})
		case *rsa.PublicKey:
			set.Keys = append(set.Keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(k.N, 0), "e": b64(big.NewInt(int64(k.E)), 0)})
		default:
			t.Fatalf("key type %T", k)
		}
	}
	b, _ := json.Marshal(set)
	s.mu.Lock()
	s.set = b
	s.mu.Unlock()
}

// TestAuthJWKS: keys come from a JWKS URL; when the issuer rotates its
// keys, a token with the new key id is accepted at once (the unknown kid
// makes the gateway fetch the set) and the old key stops working at the next
// background refresh.
func TestAuthJWKS(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	js := newJWKSServer(t)
	js.serve(t, map[string]any{"k1": &k1.PublicKey})
	e := start(t, nil, func(c *gateway.Config) {
		c.Auth.JWKSURL = js.URL
		c.Auth.JWKSRefresh = 300 * time.Millisecond
		c.Auth.JWKSMinRefresh = 50 * time.Millisecond
		c.Auth.Issuer, c.Auth.Audience = issuer, audience
	}, labWorker)
	call := func(tok string) response { return e.do("POST", "/v1/lab/whoami", []byte(`{}`), bearer(tok)...) }

	old := sign(t, jwt.SigningMethodES256, k1, "k1", claims("alice"))
	if r := call(old); r.status != 200 {
		t.Fatalf("token signed with k1 = %d %s; want 200", r.status, r.body)
	}
	if r := call(sign(t, jwt.SigningMethodES256, k1, "nope", claims("alice"))); r.status != 401 {
		t.Errorf("token naming an unknown kid = %d; want 401", r.status)
	}

	js.serve(t, map[string]any{"k2": &k2.PublicKey}) // rotate
	time.Sleep(60 * time.Millisecond)                // past JWKSMinRefresh
	fresh := sign(t, jwt.SigningMethodRS256, k2, "k2", claims("bob"))
	if r := call(fresh); r.status != 200 {
		t.Fatalf("token signed with the new key k2 = %d %s; want 200", r.status, r.body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := call(old)
		if r.status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token signed with the retired key k1 still = %d", r.status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The background refresh keeps fetching; unknown kids do not hammer it.
	before := js.fetches.Load()
	for range 20 {
		call(sign(t, jwt.SigningMethodES256, k1, "nope", claims("alice")))
	}
	if n := js.fetches.Load() - before; n > 5 {
		t.Errorf("20 tokens with an unknown kid made %d fetches; want them rate-limited", n)
	}
}
