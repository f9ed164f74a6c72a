package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/domo-framework/domo"
)

// caller is the verified identity of a request: nil for an anonymous one.
type caller struct {
	claims jwt.MapClaims
	raw    []byte // the token's claims JSON, as signed
}

// authenticator verifies bearer tokens and applies the rules. It is safe
// for concurrent use.
type authenticator struct {
	cfg    AuthConfig
	secret []byte
	static []any // RSA and ECDSA public keys from PEM
	jwks   *jwks
	parser *jwt.Parser
}

// hmacMethods and keyMethods are the algorithms a token may use, by kind
// of key; "none" and anything else are refused.
var (
	hmacMethods = []string{"HS256", "HS384", "HS512"}
	rsaMethods  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecMethods   = []string{"ES256", "ES384", "ES512"}
)

func newAuthenticator(cfg AuthConfig) (*authenticator, error) {
	a := &authenticator{cfg: cfg, secret: cfg.HS256Secret}
	for i, p := range cfg.PublicKeys {
		k, err := parsePublicKey([]byte(p))
		if err != nil {
			return nil, fmt.Errorf("gateway: auth: public key %d: %w", i+1, err)
		}
		a.static = append(a.static, k)
	}
	if !a.enabled() {
		return a, nil
	}
	var methods []string
	if len(a.secret) > 0 {
		methods = append(methods, hmacMethods...)
	}
	if len(cfg.PublicKeys) > 0 || cfg.JWKSURL != "" {
		methods = append(methods, rsaMethods...)
		methods = append(methods, ecMethods...)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// enabled reports whether any key source is configured.
func (a *authenticator) enabled() bool {
	return len(a.cfg.HS256Secret) > 0 || len(a.cfg.PublicKeys) > 0 || a.cfg.JWKSURL != ""
}

// authenticate returns the caller of r: nil if it sent no token (or
// authentication is off), an unauthenticated error if its token is bad.
func (a *authenticator) authenticate(ctx context.Context, r *http.Request) (*caller, error) {
	if !a.enabled() {
		return nil, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, nil
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil, domo.Errorf(domo.CodeUnauthenticated, "Authorization is not a bearer token")
	}
	tok = strings.TrimSpace(tok)
	claims := jwt.MapClaims{}
	if _, err := a.parser.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) { return a.key(ctx, t) }); err != nil {
		return nil, domo.Errorf(domo.CodeUnauthenticated, "%s", tokenProblem(err))
	}
	parts := strings.Split(tok, ".")
	raw, err := a.parser.DecodeSegment(parts[1])
	if err != nil { // cannot happen: the parser decoded it
		return nil, domo.Errorf(domo.CodeUnauthenticated, "bad token")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, domo.Errorf(domo.CodeUnauthenticated, "token malformed")
	}
	return &caller{claims: claims, raw: buf.Bytes()}, nil
}

// tokenProblem says what is wrong with a token in a few words, without
// echoing the token.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token audience not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token issuer not accepted"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token lacks a required claim (exp)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "token signature invalid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token cannot be verified (unknown key or algorithm)"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token malformed"
	}
	return "token invalid"
}

// key finds the key that verifies t, by its algorithm and key id.
func (a *authenticator) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if slices.Contains(hmacMethods, alg) {
		if len(a.secret) == 0 {
			return nil, fmt.Errorf("no HMAC secret configured")
		}
		return a.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	var keys []any
	if a.jwks != nil {
		keys = a.jwks.lookup(ctx, kid)
	}
	if kid == "" || len(keys) == 0 {
		keys = append(keys, a.static...)
	}
	var set jwt.VerificationKeySet
	for _, k := range keys {
		switch k.(type) {
		case *rsa.PublicKey:
			if slices.Contains(rsaMethods, alg) {
				set.Keys = append(set.Keys, k)
			}
		case *ecdsa.PublicKey:
			if slices.Contains(ecMethods, alg) {
				set.Keys = append(set.Keys, k)
			}
		}
	}
	if len(set.Keys) == 0 {
		if kid != "" {
			return nil, fmt.Errorf("no %s key with id %q", alg, kid)
		}
		return nil, fmt.Errorf("no %s key", alg)
	}
	return set, nil
}

// authorize applies the rules to a call of service.method by c (nil:
// anonymous).
func (a *authenticator) authorize(c *caller, service, method string) error {
	rule, ruled := a.cfg.Rules[service+"."+method]
	if !ruled {
		rule, ruled = a.cfg.Rules[service]
	}
	if c == nil {
		switch {
		case !a.enabled(), ruled && rule.Anonymous:
			return nil
		case a.cfg.Anonymous && len(rule.Roles) == 0 && len(rule.Claims) == 0:
			return nil // allowed, and no rule asks for more than a token
		}
		return domo.Errorf(domo.CodeUnauthenticated, "%s.%s needs a bearer token", service, method)
	}
	if !ruled {
		return nil
	}
	if len(rule.Roles) > 0 {
		roles := a.roles(c.claims)
		if !slices.ContainsFunc(rule.Roles, func(r string) bool { return slices.Contains(roles, r) }) {
			return domo.Errorf(domo.CodeForbidden, "%s.%s needs one of the roles %s", service, method, strings.Join(rule.Roles, ", "))
		}
	}
	for name, want := range rule.Claims {
		if !claimHas(c.claims[name], want) {
			return domo.Errorf(domo.CodeForbidden, "%s.%s needs claim %s=%s", service, method, name, want)
		}
	}
	return nil
}

// roles returns the caller's roles from the RolesClaim.
func (a *authenticator) roles(claims jwt.MapClaims) []string {
	switch v := claims[a.cfg.RolesClaim].(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, r := range v {
			if s, ok := r.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// claimHas reports whether a claim's value equals want, or, for an array,
// contains it. Numbers and booleans compare by their JSON text.
func claimHas(v any, want string) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v == want
	case []any:
		return slices.ContainsFunc(v, func(e any) bool { return claimHas(e, want) })
	}
	b, _ := json.Marshal(v)
	return string(b) == want
}

// parsePublicKey decodes an RSA or ECDSA public key from PEM.
func parsePublicKey(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			k = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		return k, nil
	}
	return nil, fmt.Errorf("key of type %T is neither RSA nor ECDSA", k)
}
