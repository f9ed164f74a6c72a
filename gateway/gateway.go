package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/mdp"
)

// HTTP headers the gateway reads or writes.
const (
	// HeaderRequestID carries the request id: the caller's, if it sent a
	// usable one, else one the gateway makes. It is echoed in the response
	// and sent to the worker in the "request-id" header.
	HeaderRequestID = "X-Request-Id"
	// HeaderTimeout is the caller's deadline for the call, as a Go
	// duration ("250ms", "3s") or a number of milliseconds.
	HeaderTimeout = "X-Request-Timeout"
)

// WorkerHeaderRequestID is the domo request header that carries the HTTP
// request id to the worker.
const WorkerHeaderRequestID = "request-id"

// Gateway is an http.Handler that serves the brokers' services over
// HTTP/JSON:
//
//	POST /v1/{service}/{method}   call a method; the body is its JSON request
//	GET  /v1/services             the services, their workers and methods
//	GET  /openapi.json            an OpenAPI 3.1 document built from the contracts
//	GET  /docs                    a page that renders it
//
// Its methods are safe for concurrent use.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	client    *client.Client
	ownClient bool
	auth      *authenticator
	docs      *contracts

	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	openapiMu  sync.Mutex
	openapiKey string
	openapiDoc []byte
}

// New returns a Gateway for cfg: it connects a client to cfg.Brokers (or
// uses cfg.Client), fetches the JWKS and the contracts once (waiting a
// little for each), and starts the goroutines that refresh them. Close
// releases it.
func New(cfg Config) (*Gateway, error) {
	cfg.fill()
	g := &Gateway{cfg: cfg, log: cfg.Logger, client: cfg.Client}
	auth, err := newAuthenticator(cfg.Auth)
	if err != nil {
		return nil, err
	}
	g.auth = auth
	if g.client == nil {
		if len(cfg.Brokers) == 0 {
			return nil, fmt.Errorf("gateway: config: no broker")
		}
		c, err := client.New(client.WithBroker(cfg.Brokers...), client.WithTimeout(cfg.MaxTimeout), client.WithLogger(cfg.Logger))
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		g.client, g.ownClient = c, true
	}
	fetch := cfg.Contracts
	if fetch == nil {
		fetch = mmiDocs(g.client)
	}
	g.docs = newContracts(fetch, g.log)

	ctx, stop := context.WithCancel(context.Background())
	g.stop = stop
	if cfg.Auth.JWKSURL != "" {
		auth.jwks = newJWKS(cfg.Auth.JWKSURL, cfg.Auth.JWKSMinRefresh, g.log)
		auth.jwks.refresh(ctx)
		g.goRun(func() { auth.jwks.run(ctx, cfg.Auth.JWKSRefresh) })
	}
	g.docs.refreshIfOlder(ctx, 0)
	g.goRun(func() { g.docs.run(ctx, cfg.ContractsRefresh) })
	return g, nil
}

func (g *Gateway) goRun(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
}

// Close stops the background refreshes and closes the gateway's own
// client; calls in flight fail. It is idempotent. Stop the http.Server
// serving the gateway first to let requests finish.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.stop()
		g.wg.Wait()
		if g.ownClient {
			g.client.Close()
		}
	})
	return nil
}

// ServeHTTP serves one request. It blocks until the reply is written.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := requestID(r)
	w.Header().Set(HeaderRequestID, rid)
	if g.cors(w, r) {
		return
	}
	if err := g.route(w, r, rid); err != nil {
		status := g.writeError(w, rid, err)
		g.log.Debug("gateway: request failed", "method", r.Method, "path", r.URL.Path, "status", status, "request_id", rid, "err", err)
	}
}

func (g *Gateway) route(w http.ResponseWriter, r *http.Request, rid string) error {
	p := r.URL.Path
	switch {
	case p == "/v1/services":
		return g.serveServices(w, r)
	case strings.HasPrefix(p, "/v1/"):
		return g.serveCall(w, r, rid, strings.TrimPrefix(p, "/v1/"))
	case p == "/openapi.json":
		return g.serveOpenAPI(w, r)
	case p == "/docs" || p == "/docs/":
		return servePage(w, r)
	case p == "/":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return notAllowed(w, "GET, HEAD")
		}
		http.Redirect(w, r, "/docs", http.StatusFound)
		return nil
	}
	return httpError(http.StatusNotFound, domo.CodeUnknownService, "no route %s", p)
}

func notAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return httpError(http.StatusMethodNotAllowed, domo.CodeInvalid, "method not allowed; use %s", allow)
}

// serveCall handles POST /v1/{service}/{method}.
func (g *Gateway) serveCall(w http.ResponseWriter, r *http.Request, rid, rest string) error {
	service, method, ok := strings.Cut(rest, "/")
	if !ok || !validName(service) || !validName(method) || strings.Contains(method, "/") {
		return httpError(http.StatusNotFound, domo.CodeUnknownMethod, "no method at %s; use /v1/SERVICE/METHOD", r.URL.Path)
	}
	if service == "mmi" || strings.HasPrefix(service, mdp.MMIPrefix) {
		return domo.Errorf(domo.CodeUnknownService, "service %q is not reachable through the gateway", service)
	}
	if r.Method != http.MethodPost {
		return notAllowed(w, "POST")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return httpError(http.StatusUnsupportedMediaType, domo.CodeInvalid, "Content-Type %q is not JSON", ct)
	}
	ctx := r.Context()
	c, err := g.auth.authenticate(ctx, r)
	if err != nil {
		return err
	}
	if err := g.auth.authorize(c, service, method); err != nil {
		return err
	}
	timeout, err := g.timeout(r)
	if err != nil {
		return err
	}
	body, err := g.readBody(w, r)
	if err != nil {
		return err
	}

	_, md := g.docs.lookup(service, method)
	if md == nil {
		// The contracts may be stale: a worker of the service, or with
		// the method, may just have come.
		g.docs.refreshIfOlder(ctx, time.Second)
		var sd *serviceDoc
		if sd, md = g.docs.lookup(service, method); sd != nil && md == nil {
			return domo.Errorf(domo.CodeUnknownMethod, "service %q has no method %q", service, method)
		}
	}
	if len(body) > 0 {
		if err := md.validate(body); err != nil {
			return &domo.Error{Code: domo.CodeInvalid, Message: fmt.Sprintf("request does not match the schema of %s.%s", service, method), Details: schemaDetails(err)}
		}
	}

	opts := make([]client.CallOption, 0, 4)
	opts = append(opts, client.Header(WorkerHeaderRequestID, rid))
	if c != nil {
		opts = append(opts, client.Header(mdp.HeaderCaller, string(c.raw)))
	}
	if tp := r.Header.Get("Traceparent"); tp != "" && len(tp) < 256 {
		opts = append(opts, client.Header(mdp.HeaderTraceparent, tp))
		if ts := r.Header.Get("Tracestate"); ts != "" && len(ts) < 1024 {
			opts = append(opts, client.Header(mdp.HeaderTracestate, ts))
		}
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reply, err := g.client.Invoke(cctx, service+"."+method, body, opts...)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if len(reply) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	h.Set("Content-Length", strconv.Itoa(len(reply)))
	w.WriteHeader(http.StatusOK)
	w.Write(reply)
	return nil
}

// readBody reads at most MaxBody bytes of JSON.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > g.cfg.MaxBody {
		return nil, domo.Errorf(domo.CodeTooLarge, "request body of %d bytes exceeds the limit of %d", r.ContentLength, g.cfg.MaxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, domo.Errorf(domo.CodeTooLarge, "request body exceeds the limit of %d bytes", g.cfg.MaxBody)
		}
		return nil, domo.Errorf(domo.CodeInvalid, "reading the request body: %v", err)
	}
	if len(body) > 0 && !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return nil, domo.Errorf(domo.CodeInvalid, "request body is not valid JSON: %v", err)
	}
	return body, nil
}

// timeout returns the call's time limit: HeaderTimeout's, capped at
// MaxTimeout, or DefaultTimeout.
func (g *Gateway) timeout(r *http.Request) (time.Duration, error) {
	v := r.Header.Get(HeaderTimeout)
	if v == "" {
		return g.cfg.DefaultTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		ms, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return 0, domo.Errorf(domo.CodeInvalid, "%s %q is neither a duration (\"250ms\") nor milliseconds", HeaderTimeout, v)
		}
		if ms > uint64(g.cfg.MaxTimeout/time.Millisecond) {
			return g.cfg.MaxTimeout, nil
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if d <= 0 {
		return 0, domo.Errorf(domo.CodeInvalid, "%s %q must be positive", HeaderTimeout, v)
	}
	return min(d, g.cfg.MaxTimeout), nil
}

// serveServices handles GET /v1/services: mmi.services, with each
// service's doc and methods from its contract.
func (g *Gateway) serveServices(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return notAllowed(w, "GET, HEAD")
	}
	if err := g.docsAccess(r); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.DefaultTimeout)
	defer cancel()
	infos, err := g.client.Services(ctx)
	if err != nil {
		return err
	}
	if g.stale(infos) {
		g.docs.refreshUnlessSince(ctx, time.Now())
	}
	type method struct {
		Name      string `json:"name"`
		Doc       string `json:"doc,omitempty"`
		Path      string `json:"path"`
		Streaming bool   `json:"streaming,omitempty"`
	}
	type service struct {
		mdp.ServiceInfo
		Doc     string   `json:"doc,omitempty"`
		Methods []method `json:"methods"`
	}
	out := make([]service, 0, len(infos))
	for _, in := range infos {
		s := service{ServiceInfo: in, Methods: []method{}}
		if sd, _ := g.docs.lookup(in.Name, ""); sd != nil {
			s.Doc = sd.contract.Doc
			for _, m := range sd.contract.Methods {
				s.Methods = append(s.Methods, method{Name: m.Name, Doc: m.Doc, Path: "/v1/" + in.Name + "/" + m.Name, Streaming: m.Streaming})
			}
		}
		out = append(out, s)
	}
	return writeJSON(w, out)
}

// serveOpenAPI handles GET /openapi.json.
func (g *Gateway) serveOpenAPI(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return notAllowed(w, "GET, HEAD")
	}
	if err := g.docsAccess(r); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), contractsTimeout)
	defer cancel()
	// The brokers' services say which contracts (digests) they hold: fetch
	// the contracts again if ours differ. Services without a contract get
	// a generic path.
	infos, err := g.client.Services(ctx)
	if err == nil && g.stale(infos) {
		// A fetch that began after this answer came sees what it saw.
		g.docs.refreshUnlessSince(ctx, time.Now())
	} else if err != nil {
		g.docs.refreshIfOlder(ctx, time.Second)
	}
	list, gen := g.docs.snapshot()
	var bare []string
	for _, in := range infos {
		if sd, _ := g.docs.lookup(in.Name, ""); sd == nil {
			bare = append(bare, in.Name)
		}
	}
	key := strconv.FormatUint(gen, 10) + "|" + strings.Join(bare, ",")
	g.openapiMu.Lock()
	if key != g.openapiKey || g.openapiDoc == nil {
		doc, err := json.MarshalIndent(g.buildOpenAPI(list, bare), "", "  ")
		if err != nil {
			g.openapiMu.Unlock()
			return err
		}
		g.openapiKey, g.openapiDoc = key, append(doc, '\n')
	}
	doc := g.openapiDoc
	g.openapiMu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(doc)
	return nil
}

// stale reports whether the brokers list a service whose contract digest
// differs from the one held.
func (g *Gateway) stale(infos []mdp.ServiceInfo) bool {
	for _, in := range infos {
		sd, _ := g.docs.lookup(in.Name, "")
		switch {
		case sd == nil && (in.Digest != "" || in.Methods > 0):
			return true
		case sd != nil && in.Digest != "" && sd.contract.Digest != in.Digest:
			return true
		}
	}
	return false
}

// docsAccess applies AuthConfig.ProtectDocs.
func (g *Gateway) docsAccess(r *http.Request) error {
	if !g.cfg.Auth.ProtectDocs || !g.auth.enabled() {
		return nil
	}
	c, err := g.auth.authenticate(r.Context(), r)
	if err != nil {
		return err
	}
	if c == nil {
		return domo.Errorf(domo.CodeUnauthenticated, "the documentation needs a bearer token")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
	return nil
}

// cors applies the CORS configuration; it reports whether it answered the
// request (a preflight).
func (g *Gateway) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if origin == "" || len(g.cfg.CORS.AllowedOrigins) == 0 {
		if preflight {
			w.WriteHeader(http.StatusNoContent)
		}
		return preflight
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	allowed, anyOrigin := false, false
	for _, o := range g.cfg.CORS.AllowedOrigins {
		if o == "*" {
			allowed, anyOrigin = true, true
		} else if strings.EqualFold(o, origin) {
			allowed = true
		}
	}
	if allowed {
		if anyOrigin && !g.cfg.CORS.AllowCredentials {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if g.cfg.CORS.AllowCredentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
	}
	if !preflight {
		if allowed {
			h.Set("Access-Control-Expose-Headers", HeaderRequestID+", Retry-After, WWW-Authenticate")
		}
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
	if allowed {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", strings.Join(g.cfg.CORS.AllowedHeaders, ", "))
		if g.cfg.CORS.MaxAge > 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(int(g.cfg.CORS.MaxAge/time.Second)))
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

// requestID returns the caller's X-Request-Id if it is 1 to 128 printable
// ASCII characters, else a new random one.
func requestID(r *http.Request) string {
	if v := r.Header.Get(HeaderRequestID); v != "" && len(v) <= 128 && printable(v) {
		return v
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validName reports whether s may name a service or method: 1 to 255
// printable ASCII characters.
func validName(s string) bool { return s != "" && len(s) <= 255 && printable(s) }

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// schemaDetails renders a schema validation error as the error's details.
func schemaDetails(err error) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"schema": err.Error()})
	return b
}
