package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/gateway"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
	"github.com/domo-framework/domo/worker"
)

// env is a broker, workers and a gateway behind a real HTTP server, all on
// 127.0.0.1.
type env struct {
	t        *testing.T
	endpoint string
	gw       *gateway.Gateway
	srv      *httptest.Server
	release  chan struct{} // closed to let "busy.hold" return
}

// start runs a broker (changed by bcfg), the workers made by mk, and a
// gateway (changed by gcfg), and waits until every worker's service is
// ready.
func start(t *testing.T, bcfg func(*broker.Config), gcfg func(*gateway.Config), mk ...workerFn) *env {
	t.Helper()
	var configure []func(*broker.Config)
	if bcfg != nil {
		configure = append(configure, bcfg)
	}
	_, ep := testbroker.Start(t, configure...)
	e := &env{t: t, endpoint: ep, release: make(chan struct{})}
	var services []string
	for _, f := range mk {
		name, w := f(ep)
		services = append(services, name)
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.Run(context.Background())
		}()
		t.Cleanup(func() {
			w.Close()
			<-done
		})
	}
	waitReady(t, ep, services...)

	cfg := gateway.DefaultConfig()
	cfg.Brokers = []string{ep}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if gcfg != nil {
		gcfg(&cfg)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	e.gw = g
	e.srv = httptest.NewServer(g)
	t.Cleanup(func() {
		e.srv.Close()
		g.Close()
	})
	return e
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// workerFn makes a worker for the broker at ep, and names its service.
type workerFn func(ep string) (string, *worker.Worker)

// workerOpts are the options of every test worker.
func workerOpts(ep string, extra ...worker.Option) []worker.Option {
	return append([]worker.Option{
		worker.WithBroker(ep),
		worker.WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness),
	}, extra...)
}

// waitReady waits until each service has a ready worker.
func waitReady(t *testing.T, ep string, services ...string) {
	t.Helper()
	if len(services) == 0 {
		return
	}
	c, err := client.New(client.WithBroker(ep))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		infos, err := c.Services(ctx)
		cancel()
		ready := map[string]bool{}
		for _, in := range infos {
			if in.Ready > 0 {
				ready[in.Name] = true
			}
		}
		all := err == nil
		for _, s := range services {
			all = all && ready[s]
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("services %v not ready: %v %v", services, infos, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// labWorker serves "lab": methods that echo, report their headers, are
// slow, or fail in each way the gateway maps.
func labWorker(ep string) (string, *worker.Worker) {
	w := worker.New("lab", workerOpts(ep, worker.WithConcurrency(16))...)
	w.HandleFunc("echo", func(_ context.Context, r *worker.Request) ([]byte, error) { return r.Payload, nil })
	w.HandleFunc("whoami", func(_ context.Context, r *worker.Request) ([]byte, error) {
		out := map[string]json.RawMessage{}
		if v, ok := r.Headers.Get(mdp.HeaderCaller); ok {
			out["caller"] = json.RawMessage(v)
		}
		if v, ok := r.Headers.Get(gateway.WorkerHeaderRequestID); ok {
			out["request_id"], _ = json.Marshal(string(v))
		}
		if v, ok := r.Headers.Get(mdp.HeaderTraceparent); ok {
			out["traceparent"], _ = json.Marshal(string(v))
		}
		return json.Marshal(out)
	})
	w.HandleFunc("slow", func(ctx context.Context, r *worker.Request) ([]byte, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
			return []byte(`"late"`), nil
		}
	})
	w.HandleFunc("empty", func(context.Context, *worker.Request) ([]byte, error) { return nil, nil })
	w.HandleFunc("fail", func(context.Context, *worker.Request) ([]byte, error) { return nil, errors.New("the kettle broke") })
	w.HandleFunc("gone", func(context.Context, *worker.Request) ([]byte, error) {
		return nil, domo.Errorf(domo.CodeUnavailable, "the backend went away")
	})
	w.HandleFunc("refuse", func(context.Context, *worker.Request) ([]byte, error) {
		return nil, domo.Errorf(domo.CodeInvalid, "cups must be at least 1")
	})
	return "lab", w
}

// response is one HTTP exchange's result.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errorCode() string {
	var b struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &b)
	return b.Error.Code
}

// do sends method url body with the headers given as name, value pairs.
func (e *env) do(method, path string, body []byte, headers ...string) response {
	e.t.Helper()
	return doURL(e.t, method, e.srv.URL+path, body, headers...)
}

func doURL(t *testing.T, method, url string, body []byte, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// domoError makes a *domo.Error from a code name, for the example.
func newDomoError(code string) error { return &domo.Error{Code: domo.Code(code)} }
