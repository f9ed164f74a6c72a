package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/gateway"
)

// gatewayFlags binds the gateway's configuration (all but the brokers and
// the listen address) to flags; finish completes cfg from the flags that
// name files, once they are parsed.
type gatewayFlags struct {
	secretFile string
	keyFiles   []string
	rules      []string
}

func (gf *gatewayFlags) bind(cmd *cobra.Command, cfg *gateway.Config) {
	f := cmd.Flags()
	f.DurationVar(&cfg.DefaultTimeout, "http-timeout", cfg.DefaultTimeout, "HTTP calls: deadline when the caller sends no "+gateway.HeaderTimeout)
	f.DurationVar(&cfg.MaxTimeout, "http-max-timeout", cfg.MaxTimeout, "HTTP calls: longest deadline a caller may ask for")
	f.Int64Var(&cfg.MaxBody, "max-body", cfg.MaxBody, "HTTP calls: largest request body, bytes")
	f.StringSliceVar(&cfg.CORS.AllowedOrigins, "cors-origin", nil, "origins allowed to call from a browser (repeatable; * for any)")
	f.StringVar(&gf.secretFile, "jwt-secret-file", "", "file holding the HS256 secret (or set DOMO_JWT_SECRET)")
	f.StringSliceVar(&gf.keyFiles, "jwt-public-key", nil, "PEM file of an RSA or ECDSA public key verifying RS256/ES256 tokens (repeatable)")
	f.StringVar(&cfg.Auth.JWKSURL, "jwks-url", "", "URL of a JSON Web Key Set, refreshed in the background")
	f.DurationVar(&cfg.Auth.JWKSRefresh, "jwks-refresh", cfg.Auth.JWKSRefresh, "how often the JWKS is fetched again")
	f.StringVar(&cfg.Auth.Issuer, "jwt-issuer", "", "required token issuer (iss)")
	f.StringVar(&cfg.Auth.Audience, "jwt-audience", "", "required token audience (aud)")
	f.StringVar(&cfg.Auth.RolesClaim, "jwt-roles-claim", cfg.Auth.RolesClaim, "claim that lists the caller's roles")
	f.BoolVar(&cfg.Auth.Anonymous, "anonymous", false, "with JWT on, let callers without a token call methods whose rules ask for no role or claim")
	f.BoolVar(&cfg.Auth.ProtectDocs, "protect-docs", false, "with JWT on, require a token for /v1/services and /openapi.json too")
	f.StringArrayVar(&gf.rules, "rule", nil, "who may call: SERVICE[.METHOD]=ITEM,... with items role:NAME (any one of them), claim:NAME=VALUE, anonymous (repeatable)")
}

// finish reads the secret and key files and parses the rules into cfg.
func (gf *gatewayFlags) finish(cfg *gateway.Config) error {
	if gf.secretFile != "" {
		b, err := os.ReadFile(gf.secretFile)
		if err != nil {
			return fmt.Errorf("--jwt-secret-file: %w", err)
		}
		cfg.Auth.HS256Secret = []byte(strings.TrimRight(string(b), "\r\n"))
	} else if s := os.Getenv("DOMO_JWT_SECRET"); s != "" {
		cfg.Auth.HS256Secret = []byte(s)
	}
	for _, path := range gf.keyFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--jwt-public-key: %w", err)
		}
		cfg.Auth.PublicKeys = append(cfg.Auth.PublicKeys, string(b))
	}
	rules, err := parseRules(gf.rules)
	if err != nil {
		return err
	}
	cfg.Auth.Rules = rules
	return nil
}

// parseRules parses --rule values: SERVICE[.METHOD]=ITEM,ITEM...
func parseRules(specs []string) (map[string]gateway.Rule, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	rules := make(map[string]gateway.Rule, len(specs))
	for _, spec := range specs {
		key, items, ok := strings.Cut(spec, "=")
		if !ok || key == "" || items == "" {
			return nil, fmt.Errorf("--rule %q: want SERVICE[.METHOD]=ITEM,... (role:NAME, claim:NAME=VALUE, anonymous)", spec)
		}
		r := rules[key]
		for _, it := range strings.Split(items, ",") {
			it = strings.TrimSpace(it)
			switch {
			case it == "anonymous":
				r.Anonymous = true
			case strings.HasPrefix(it, "role:") && len(it) > len("role:"):
				r.Roles = append(r.Roles, strings.TrimPrefix(it, "role:"))
			case strings.HasPrefix(it, "claim:"):
				name, value, ok := strings.Cut(strings.TrimPrefix(it, "claim:"), "=")
				if !ok || name == "" {
					return nil, fmt.Errorf("--rule %q: item %q: want claim:NAME=VALUE", spec, it)
				}
				if r.Claims == nil {
					r.Claims = map[string]string{}
				}
				r.Claims[name] = value
			default:
				return nil, fmt.Errorf("--rule %q: unknown item %q (want role:NAME, claim:NAME=VALUE or anonymous)", spec, it)
			}
		}
		rules[key] = r
	}
	return rules, nil
}

func newGatewayCmd() *cobra.Command {
	cfg := gateway.DefaultConfig()
	var (
		gf     gatewayFlags
		listen string
		drain  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Serve the services over HTTP/JSON (POST /v1/SERVICE/METHOD, /openapi.json, /docs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := gf.finish(&cfg); err != nil {
				return err
			}
			cfg.Brokers = splitBrokers(cfg.Brokers)
			return serveGateway(cmd.Context(), cfg, listen, drain)
		},
	}
	cmd.Flags().StringSliceVar(&cfg.Brokers, "broker", []string{defaultBroker()}, "broker endpoints (repeatable or comma-separated; DOMO_BROKER sets the default)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "HTTP address to listen on (HOST:PORT; port 0 picks a free one)")
	cmd.Flags().DurationVar(&drain, "drain", 10*time.Second, "on SIGINT/SIGTERM, how long to let HTTP requests in flight finish")
	gf.bind(cmd, &cfg)
	return cmd
}

func splitBrokers(in []string) []string {
	var out []string
	for _, s := range in {
		for _, ep := range strings.Split(s, ",") {
			if ep = strings.TrimSpace(ep); ep != "" {
				out = append(out, ep)
			}
		}
	}
	return out
}

// serveGateway runs a gateway for cfg on addr until ctx ends, then stops
// accepting, lets requests in flight finish within drain, and closes it.
func serveGateway(ctx context.Context, cfg gateway.Config, addr string, drain time.Duration) error {
	cfg.Logger = slog.Default()
	g, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	defer g.Close()
	slog.Info("gateway", "brokers", cfg.Brokers)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	return serveHTTP(ctx, ln, g, drain)
}

// serveHTTP serves h on ln until ctx ends, then stops accepting and lets
// requests in flight finish within drain.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, drain time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	slog.Info("http listening", "addr", "http://"+ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		slog.Warn("http: drain cut short", "err", err)
		srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// localEndpoint turns an endpoint the broker bound ("tcp://0.0.0.0:5555",
// "tcp://*:5555") into one a client in the same process can connect to.
func localEndpoint(ep string) string {
	for _, wild := range []string{"tcp://*:", "tcp://0.0.0.0:", "tcp://[::]:"} {
		if strings.HasPrefix(ep, wild) {
			return "tcp://127.0.0.1:" + strings.TrimPrefix(ep, wild)
		}
	}
	return ep
}
