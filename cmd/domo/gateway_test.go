package main

import (
	"bytes"
	"context"
	"github.com/domo-framework/domo/internal/zsock"
	"github.com/domo-framework/domo/mdp"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/domo-framework/domo/journal"
)

var gatewayListening = regexp.MustCompile(`"msg":"http listening","addr":"(http://[^"]+)"`)

// post sends a JSON body to url with the given header pairs and returns the
// status and body.
func post(t *testing.T, url, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{Timeout: runTimeout}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBrokerHTTP: domo broker --http serves the gateway and /metrics
// in-process, and --journal records the requests in SQLite.
func TestBrokerHTTP(t *testing.T) {
	t.Parallel()
	journalPath := filepath.Join(t.TempDir(), "journal.db")
	p, ep := startBroker(t, "--http", "127.0.0.1:0", "--journal", "sqlite:"+journalPath)
	base := p.waitFor(gatewayListening)[1]
	startServe(t, ep, "tea")

	if code, body := post(t, base+"/v1/tea/brew", `{"kind":"green","sugar":1}`); code != 200 || !strings.Contains(body, "a cup of green") {
		t.Errorf("POST /v1/tea/brew = %d %s; want 200 and a cup", code, body)
	}
	if code, body := post(t, base+"/v1/tea/brew", `{"kind":`); code != 400 || !strings.Contains(body, `"invalid"`) {
		t.Errorf("POST /v1/tea/brew bad JSON = %d %s; want 400 invalid", code, body)
	}
	if code, _ := post(t, base+"/v1/nosuch/x", `{}`); code != 404 {
		t.Errorf("POST /v1/nosuch/x = %d; want 404", code)
	}
	resp, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(doc, []byte(`"/v1/tea/brew"`)) {
		t.Errorf("GET /openapi.json = %d, lacking /v1/tea/brew:\n%s", resp.StatusCode, doc)
	}
	// Metrics are fed by the broker's events, which arrive asynchronously.
	want := `domo_requests_total{method="brew",service="tea",status="ok"} 1`
	var metrics []byte
	for deadline := time.Now().Add(runTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(metrics, []byte(want)) {
			break
		}
	}
	if !bytes.Contains(metrics, []byte(want)) || !bytes.Contains(metrics, []byte(`domo_broker_workers{service="tea"} 1`)) ||
		!bytes.Contains(metrics, []byte("domo_journal_dropped_total 0")) {
		t.Errorf("GET /metrics lacks %s, the tea worker or the journal's drops:\n%s", want, metrics)
	}
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("domo broker --http: exit %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
	}
	store, err := journal.Open("sqlite:" + journalPath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	page, err := store.List(context.Background(), journal.Filter{Service: "tea", Method: "brew"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 || page.Records[0].Status != journal.StatusCompleted {
		t.Errorf("journal has %+v; want the one completed tea.brew", page.Records)
	}
}

// TestGatewayCommand: domo gateway alone, with an HS256 secret from a file
// and a role rule.
func TestGatewayCommand(t *testing.T) {
	t.Parallel()
	_, ep := startBroker(t)
	startServe(t, ep, "tea")
	secret := []byte("an-e2e-secret-of-32-bytes-or-more")
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, "gateway", "--log-format", "json", "--broker", ep, "--listen", "127.0.0.1:0",
		"--jwt-secret-file", path, "--jwt-audience", "domo", "--rule", "tea.brew=role:barista", "--rule", "tea.menu=anonymous")
	base := p.waitFor(gatewayListening)[1]
	token := func(roles ...string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "alice", "aud": "domo", "roles": roles, "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s
	}
	for _, tt := range []struct {
		name, path string
		auth       string
		status     int
	}{
		{"no token", "/v1/tea/brew", "", 401},
		{"no role", "/v1/tea/brew", token("reader"), 403},
		{"role", "/v1/tea/brew", token("barista"), 200},
		{"anonymous method", "/v1/tea/menu", "", 200},
	} {
		var h []string
		if tt.auth != "" {
			h = []string{"Authorization", tt.auth}
		}
		if code, body := post(t, base+tt.path, `{}`, h...); code != tt.status {
			t.Errorf("%s: POST %s = %d %s; want %d", tt.name, tt.path, code, body, tt.status)
		}
	}
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("domo gateway: exit %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
	}
}

func TestParseRules(t *testing.T) {
	got, err := parseRules([]string{"tea.brew=role:barista,role:admin,claim:tier=gold", "tea=anonymous"})
	if err != nil {
		t.Fatal(err)
	}
	if r := got["tea.brew"]; len(r.Roles) != 2 || r.Claims["tier"] != "gold" || r.Anonymous || !got["tea"].Anonymous {
		t.Errorf("parseRules = %+v", got)
	}
	for _, bad := range []string{"tea", "tea=", "tea=role:", "tea=claim:x", "tea=admin"} {
		if _, err := parseRules([]string{bad}); err == nil {
			t.Errorf("parseRules(%q) = nil error; want one", bad)
		}
	}
}

// TestBrokerSurvivesNamesNotUTF8: a plain MDP client may ask for a service
// whose name is not UTF-8; when its request expires unanswered, the
// request metrics get that name as a label. That panicked in the
// Prometheus client and took the broker down; the name is mended instead.
func TestBrokerSurvivesNamesNotUTF8(t *testing.T) {
	t.Parallel()
	p, ep := startBroker(t, "--http", "127.0.0.1:0", "--request-ttl", "200ms")
	base := p.waitFor(gatewayListening)[1]
	s, err := zsock.New(zsock.Dealer)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Connect(ep); err != nil {
		t.Fatal(err)
	}
	if err := s.Send([][]byte{nil, []byte(mdp.ClientV1), []byte("\xff\xfe"), []byte("hello")}, true); err != nil {
		t.Fatal(err)
	}
	want := "domo_requests_total{method=\"_mdp\",service=\"\uFFFD\",status=\"dropped\"} 1"
	var metrics []byte
	for deadline := time.Now().Add(runTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatalf("GET /metrics: %v (the broker died?) stderr:\n%s", err, p.stderr.String())
		}
		metrics, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(metrics, []byte(want)) {
			break
		}
	}
	if !bytes.Contains(metrics, []byte(want)) {
		t.Fatalf("GET /metrics lacks %s:\n%s", want, metrics)
	}
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("domo broker: exit %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
	}
}
