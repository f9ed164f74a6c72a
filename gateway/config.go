package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/mdp"
)

// Config configures a Gateway. Start from DefaultConfig; the zero value of
// each field not set there means "off" or "none".
type Config struct {
	// Brokers lists the broker endpoints the gateway calls through
	// ("tcp://127.0.0.1:5555"). The gateway keeps one client connection to
	// each and fails over between them.
	Brokers []string

	// Client, if set, is used instead of a client dialed to Brokers. The
	// gateway does not close it.
	Client *client.Client

	// DefaultTimeout bounds a request whose caller sent no timeout header
	// (HeaderTimeout); MaxTimeout caps the one a caller asks for.
	DefaultTimeout time.Duration
	MaxTimeout     time.Duration

	// MaxBody is the largest request body accepted, in bytes; a larger one is
	// answered 413.
	MaxBody int64

	// RetryAfter is the value of the Retry-After header sent with 503
	// (overloaded); rounded up to whole seconds.
	RetryAfter time.Duration

	// ContractsRefresh is how often the gateway asks the brokers for the
	// service contracts (MMI mmi.docs) it validates requests against and
	// builds its OpenAPI document from.
	ContractsRefresh time.Duration

	// Contracts, if set, replaces the mmi.docs query: it returns the
	// contracts of every service. Use it to describe services whose workers
	// send none. It must be safe for concurrent use.
	Contracts func(ctx context.Context) ([]mdp.ServiceContract, error)

	// Title names the API in the OpenAPI document.
	Title string

	CORS CORSConfig
	Auth AuthConfig

	// Logger receives the gateway's logs; nil means slog.Default().
	Logger *slog.Logger
}

// CORSConfig configures cross-origin access. With no AllowedOrigins the
// gateway sends no CORS headers, and browsers keep other origins out.
type CORSConfig struct {
	// AllowedOrigins lists the origins ("https://app.example.com") allowed
	// to call; "*" allows any.
	AllowedOrigins []string
	// AllowedHeaders lists the request headers a browser may send; empty
	// means DefaultCORSHeaders.
	AllowedHeaders []string
	// AllowCredentials lets browsers send cookies and HTTP authentication.
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight answer.
	MaxAge time.Duration
}

// DefaultCORSHeaders are the request headers a browser may send when
// CORSConfig.AllowedHeaders is empty.
var DefaultCORSHeaders = []string{"Authorization", "Content-Type", HeaderRequestID, HeaderTimeout, "Traceparent", "Tracestate"}

// AuthConfig configures JWT authentication. With no key source (no
// HS256Secret, PublicKeys or JWKSURL) authentication is off and every
// caller is anonymous.
type AuthConfig struct {
	// HS256Secret verifies HMAC-signed tokens (HS256, HS384, HS512).
	HS256Secret []byte
	// PublicKeys are PEM-encoded RSA or ECDSA public keys (PKIX "PUBLIC
	// KEY", PKCS#1 "RSA PUBLIC KEY", or a "CERTIFICATE") verifying RS256,
	// RS384, RS512, PS256 and ES256, ES384, ES512 tokens.
	PublicKeys []string
	// JWKSURL is fetched at start and every JWKSRefresh after; a token whose
	// key id ("kid") is not in the set makes the gateway fetch it again, at
	// most once every JWKSMinRefresh.
	JWKSURL        string
	JWKSRefresh    time.Duration
	JWKSMinRefresh time.Duration

	// Issuer and Audience, when set, must match the token's "iss" and one of
	// its "aud". "exp" is required; "exp" and "nbf" are checked with Leeway.
	Issuer   string
	Audience string
	Leeway   time.Duration

	// Anonymous lets requests without a token through (a token that is
	// present must still be valid). Rules may allow anonymous callers for
	// one service or method instead.
	Anonymous bool

	// ProtectDocs requires a valid token for GET /v1/services and
	// /openapi.json too.
	ProtectDocs bool

	// RolesClaim names the claim that lists the caller's roles: an array of
	// strings, or one string of space-separated roles. "roles" if empty.
	RolesClaim string

	// Rules says who may call: the key is "service" or "service.method"
	// (the more specific wins). A method without a rule is open to any
	// authenticated caller (or anyone, with Anonymous).
	Rules map[string]Rule
}

// Rule restricts who may call a service or method.
type Rule struct {
	// Roles: the caller needs at least one of them (see RolesClaim).
	Roles []string `json:"roles,omitempty"`
	// Claims: each named claim must equal the value, or, for an array
	// claim, contain it.
	Claims map[string]string `json:"claims,omitempty"`
	// Anonymous lets callers without a token call (Roles and Claims then
	// apply only to callers with one).
	Anonymous bool `json:"anonymous,omitempty"`
}

// DefaultConfig returns a gateway configuration for a broker on
// client.DefaultBroker: 10 s default timeout, 60 s at most, 1 MiB bodies,
// contracts refreshed every 30 s, no CORS, no authentication.
func DefaultConfig() Config {
	return Config{
		Brokers:          []string{client.DefaultBroker},
		DefaultTimeout:   10 * time.Second,
		MaxTimeout:       60 * time.Second,
		MaxBody:          1 << 20,
		RetryAfter:       time.Second,
		ContractsRefresh: 30 * time.Second,
		Title:            "domo",
		CORS:             CORSConfig{MaxAge: 10 * time.Minute},
		Auth: AuthConfig{
			JWKSRefresh:    5 * time.Minute,
			JWKSMinRefresh: 10 * time.Second,
			Leeway:         30 * time.Second,
			RolesClaim:     "roles",
		},
	}
}

// fill replaces zero values that have no meaning of their own by defaults.
func (c *Config) fill() {
	d := DefaultConfig()
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = d.DefaultTimeout
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = d.MaxTimeout
	}
	if c.MaxTimeout < c.DefaultTimeout {
		c.MaxTimeout = c.DefaultTimeout
	}
	if c.MaxBody <= 0 {
		c.MaxBody = d.MaxBody
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = d.RetryAfter
	}
	if c.ContractsRefresh <= 0 {
		c.ContractsRefresh = d.ContractsRefresh
	}
	if c.Title == "" {
		c.Title = d.Title
	}
	if len(c.CORS.AllowedHeaders) == 0 {
		c.CORS.AllowedHeaders = DefaultCORSHeaders
	}
	if c.Auth.JWKSRefresh <= 0 {
		c.Auth.JWKSRefresh = d.Auth.JWKSRefresh
	}
	if c.Auth.JWKSMinRefresh <= 0 {
		c.Auth.JWKSMinRefresh = d.Auth.JWKSMinRefresh
	}
	if c.Auth.RolesClaim == "" {
		c.Auth.RolesClaim = d.Auth.RolesClaim
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
