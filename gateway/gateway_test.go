package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/gateway"
	"github.com/domo-framework/domo/mdp"
	"github.com/domo-framework/domo/worker"
)

// TestStatuses covers every row of the error table over real HTTP, except
// 503 (TestOverloaded) and the auth rows (auth_test.go).
func TestStatuses(t *testing.T) {
	e := start(t, nil, nil, labWorker)
	tests := []struct {
		name, path string
		body       string
		headers    []string
		status     int
		code       string
		reply      string
	}{
		{"ok", "/v1/lab/echo", `{"n":1}`, nil, 200, "", `{"n":1}`},
		{"empty reply", "/v1/lab/empty", `{}`, nil, 204, "", ""},
		{"no body", "/v1/lab/echo", "", nil, 204, "", ""},
		{"handler says invalid", "/v1/lab/refuse", `{}`, nil, 400, "invalid", ""},
		{"bad JSON", "/v1/lab/echo", `{"n":`, nil, 400, "invalid", ""},
		{"bad timeout header", "/v1/lab/echo", `{}`, []string{gateway.HeaderTimeout, "soon"}, 400, "invalid", ""},
		{"unknown service", "/v1/nosuch/brew", `{}`, nil, 404, "unknown_service", ""},
		{"unknown method", "/v1/lab/nosuch", `{}`, nil, 404, "unknown_method", ""},
		{"mmi refused", "/v1/mmi/workers", `{}`, nil, 404, "unknown_service", ""},
		{"bad path", "/v1/lab", `{}`, nil, 404, "unknown_method", ""},
		{"not JSON content", "/v1/lab/echo", `{}`, []string{"Content-Type", "text/plain"}, 415, "invalid", ""},
		{"handler failed", "/v1/lab/fail", `{}`, nil, 500, "internal", ""},
		{"worker unavailable", "/v1/lab/gone", `{}`, nil, 502, "unavailable", ""},
		{"deadline from header", "/v1/lab/slow", `{}`, []string{gateway.HeaderTimeout, "150ms"}, 504, "deadline_exceeded", ""},
		{"deadline in ms", "/v1/lab/slow", `{}`, []string{gateway.HeaderTimeout, "150"}, 504, "deadline_exceeded", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			start := time.Now()
			r := e.do("POST", tt.path, body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("POST %s %s = %d %s; want %d", tt.path, tt.body, r.status, r.body, tt.status)
			}
			if tt.code != "" {
				if got := r.errorCode(); got != tt.code {
					t.Errorf("POST %s: error code %q (%s); want %q", tt.path, got, r.body, tt.code)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("POST %s: error Content-Type %q", tt.path, ct)
				}
			}
			if tt.reply != "" && string(r.body) != tt.reply {
				t.Errorf("POST %s = %s; want %s", tt.path, r.body, tt.reply)
			}
			if tt.status == 504 && time.Since(start) > time.Second {
				t.Errorf("POST %s took %v with a 150ms deadline", tt.path, time.Since(start))
			}
		})
	}
	t.Run("GET on a method", func(t *testing.T) {
		r := e.do("GET", "/v1/lab/echo", nil)
		if r.status != 405 || r.header.Get("Allow") != "POST" || r.errorCode() != "invalid" {
			t.Errorf("GET /v1/lab/echo = %d %s (Allow %q); want 405 invalid, Allow POST", r.status, r.body, r.header.Get("Allow"))
		}
	})
}

// TestOverloaded fills a service's queue (QueueLimit 1, one worker taking
// one request at a time) and expects 503 with Retry-After.
func TestOverloaded(t *testing.T) {
	hold := make(chan struct{})
	busy := func(ep string) (string, *worker.Worker) {
		w := worker.New("busy", workerOpts(ep, worker.WithConcurrency(1))...)
		w.HandleFunc("hold", func(ctx context.Context, _ *worker.Request) ([]byte, error) {
			select {
			case <-hold:
			case <-ctx.Done():
			}
			return []byte(`"done"`), nil
		})
		return "busy", w
	}
	e := start(t, func(c *broker.Config) { c.QueueLimit = 1 }, func(c *gateway.Config) { c.RetryAfter = 2 * time.Second }, busy)

	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for range 2 { // one in the worker, one in the queue
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- e.do("POST", "/v1/busy/hold", []byte(`{}`), gateway.HeaderTimeout, "10s").status
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var infos []mdp.ServiceInfo
		r := e.do("GET", "/v1/services", nil)
		json.Unmarshal(r.body, &infos)
		if len(infos) == 1 && infos[0].InFlight == 1 && infos[0].Queued == 1 {
			break
		}
		if time.Now().After(deadline) {
			close(hold)
			t.Fatalf("queue never filled: %s", r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := e.do("POST", "/v1/busy/hold", []byte(`{}`))
	close(hold)
	wg.Wait()
	if r.status != 503 || r.errorCode() != "overloaded" {
		t.Fatalf("third POST = %d %s; want 503 overloaded", r.status, r.body)
	}
	if got := r.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q; want \"2\"", got)
	}
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Errorf("held POST = %d; want 200", s)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	e := start(t, nil, func(c *gateway.Config) { c.MaxBody = 1024 }, labWorker)
	big := []byte(`{"s":"` + strings.Repeat("x", 2000) + `"}`)
	r := e.do("POST", "/v1/lab/echo", big)
	if r.status != 413 || r.errorCode() != "too_large" {
		t.Errorf("POST of %d bytes = %d %s; want 413 too_large", len(big), r.status, r.body)
	}
	// Without Content-Length (chunked), the limit still holds.
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/lab/echo", struct{ *bytes.Reader }{bytes.NewReader(big)})
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked POST of %d bytes = %d; want 413", len(big), resp.StatusCode)
	}
	ok := []byte(`{"s":"` + strings.Repeat("x", 900) + `"}`)
	if r := e.do("POST", "/v1/lab/echo", ok); r.status != 200 || !bytes.Equal(r.body, ok) {
		t.Errorf("POST of %d bytes = %d; want 200 and the echo", len(ok), r.status)
	}
}

func TestRequestID(t *testing.T) {
	e := start(t, nil, nil, labWorker)
	r := e.do("POST", "/v1/lab/whoami", []byte(`{}`), gateway.HeaderRequestID, "req-42", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if r.status != 200 || r.header.Get(gateway.HeaderRequestID) != "req-42" {
		t.Fatalf("POST with X-Request-Id req-42 = %d %s, echoed %q", r.status, r.body, r.header.Get(gateway.HeaderRequestID))
	}
	var got struct {
		RequestID   string `json:"request_id"`
		Traceparent string `json:"traceparent"`
	}
	json.Unmarshal(r.body, &got)
	if got.RequestID != "req-42" || !strings.HasPrefix(got.Traceparent, "00-0af7") {
		t.Errorf("worker saw request id %q, traceparent %q; want req-42 and the caller's", got.RequestID, got.Traceparent)
	}
	// None sent, or an unusable one: the gateway makes one, also on errors.
	for _, sent := range []string{"", "has space", strings.Repeat("x", 200)} {
		r := e.do("POST", "/v1/nosuch/x", []byte(`{}`), gateway.HeaderRequestID, sent)
		id := r.header.Get(gateway.HeaderRequestID)
		var b struct {
			RequestID string `json:"request_id"`
		}
		json.Unmarshal(r.body, &b)
		if len(id) != 32 || id == sent || b.RequestID != id {
			t.Errorf("X-Request-Id %q: got %q, body's %q; want a new 32-hex id in both", sent, id, b.RequestID)
		}
	}
}

func TestCORS(t *testing.T) {
	e := start(t, nil, func(c *gateway.Config) {
		c.CORS.AllowedOrigins = []string{"https://app.example"}
	}, labWorker)
	pre := func(origin string) response {
		return e.do("OPTIONS", "/v1/lab/echo", nil, "Origin", origin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	}
	r := pre("https://app.example")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		r.header.Get("Access-Control-Max-Age") != "600" {
		t.Errorf("preflight from an allowed origin = %d %v", r.status, r.header)
	}
	if r := pre("https://evil.example"); r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin = %d, Allow-Origin %q; want none", r.status, r.header.Get("Access-Control-Allow-Origin"))
	}
	r = e.do("POST", "/v1/lab/echo", []byte(`{}`), "Origin", "https://app.example")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(r.header.Get("Access-Control-Expose-Headers"), gateway.HeaderRequestID) {
		t.Errorf("POST from an allowed origin = %d %v", r.status, r.header)
	}

	star := start(t, nil, func(c *gateway.Config) { c.CORS.AllowedOrigins = []string{"*"} }, labWorker)
	if r := star.do("POST", "/v1/lab/echo", []byte(`{}`), "Origin", "https://x.example"); r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("with origins *: Allow-Origin %q; want *", r.header.Get("Access-Control-Allow-Origin"))
	}
}

// TestContractValidation: with a contract (here from Config.Contracts),
// bodies that miss the request schema are refused before any worker sees
// them, and methods the contract does not list are 404.
func TestContractValidation(t *testing.T) {
	contracts := []mdp.ServiceContract{{
		Service: "lab",
		Methods: []mdp.MethodContract{
			{Name: "echo", Request: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer","minimum":1}},"required":["n"],"additionalProperties":false}`)},
			{Name: "whoami"},
		},
	}}
	e := start(t, nil, func(c *gateway.Config) {
		c.Contracts = func(context.Context) ([]mdp.ServiceContract, error) { return contracts, nil }
	}, labWorker)
	for _, tt := range []struct {
		path, body string
		status     int
		code       string
	}{
		{"/v1/lab/echo", `{"n":3}`, 200, ""},
		{"/v1/lab/echo", `{"n":0}`, 400, "invalid"},
		{"/v1/lab/echo", `{"m":1}`, 400, "invalid"},
		{"/v1/lab/echo", `[1]`, 400, "invalid"},
		{"/v1/lab/whoami", `{"anything":true}`, 200, ""},
		{"/v1/lab/fail", `{}`, 404, "unknown_method"}, // served, but not in the contract
	} {
		r := e.do("POST", tt.path, []byte(tt.body))
		if r.status != tt.status || r.errorCode() != tt.code {
			t.Errorf("POST %s %s = %d %s; want %d %s", tt.path, tt.body, r.status, r.body, tt.status, tt.code)
		}
	}
}

func TestServices(t *testing.T) {
	e := start(t, nil, nil, labWorker)
	r := e.do("GET", "/v1/services", nil)
	var got []struct {
		Name    string `json:"name"`
		Workers int    `json:"workers"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 {
		t.Fatalf("GET /v1/services = %d %s (%v)", r.status, r.body, err)
	}
	if len(got) != 1 || got[0].Name != "lab" || got[0].Workers != 1 {
		t.Errorf("GET /v1/services = %s; want lab with one worker", r.body)
	}
	if r := e.do("POST", "/v1/services", []byte(`{}`)); r.status != 405 {
		t.Errorf("POST /v1/services = %d; want 405", r.status)
	}
}

func TestDocsPage(t *testing.T) {
	e := start(t, nil, nil)
	r := e.do("GET", "/docs", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs = %d %s", r.status, r.header.Get("Content-Type"))
	}
	page := string(r.body)
	for _, want := range []string{"openapi.json", "<script>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Nothing loaded from elsewhere: no external URL in a src or href.
	for _, bad := range []string{"src=\"http", "href=\"http", "//cdn", "unpkg", "jsdelivr"} {
		if strings.Contains(page, bad) {
			t.Errorf("page refers to an external resource (%q)", bad)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'sha256-") {
		t.Errorf("CSP = %q", csp)
	}
	if r := e.do("GET", "/", nil); r.status != 200 || !bytes.Equal(r.body, []byte(page)) {
		t.Errorf("GET / did not lead to the page: %d", r.status)
	}
	if r := e.do("GET", "/nowhere", nil); r.status != 404 {
		t.Errorf("GET /nowhere = %d; want 404", r.status)
	}
}

func ExampleStatusOf() {
	for _, code := range []string{"invalid", "unauthenticated", "forbidden", "unknown_service", "unknown_method", "too_large", "internal", "unavailable", "overloaded", "deadline_exceeded"} {
		fmt.Println(code, gateway.StatusOf(newDomoError(code)))
	}
	// Output:
	// invalid 400
	// unauthenticated 401
	// forbidden 403
	// unknown_service 404
	// unknown_method 404
	// too_large 413
	// internal 500
	// unavailable 502
	// overloaded 503
	// deadline_exceeded 504
}
