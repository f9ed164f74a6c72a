package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/mdp"
)

var (
	pyWorker = filepath.Join("testdata", "mdp_worker.py")
	pyClient = filepath.Join("testdata", "mdp_client.py")
)

// pythonBroker starts a broker whose heartbeat matches the Python workers'.
func pythonBroker(t *testing.T) (*broker.Broker, string) {
	return testbroker.Start(t, func(c *broker.Config) { c.HeartbeatInterval = 250 * time.Millisecond })
}

func waitService(t *testing.T, b *broker.Broker, name string, workers int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s, err := b.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range s.Services {
			if svc.Name == name && svc.Workers == workers {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("service %s never had %d workers", name, workers)
}

func newClient(t *testing.T, endpoint string) *client.Client {
	t.Helper()
	c, err := client.New(client.WithBroker(endpoint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPythonClientAndWorkerThroughBroker(t *testing.T) {
	requirePython(t)
	b, ep := pythonBroker(t)
	w := start(t, nil, python, pyWorker, "--broker", ep, "--service", "echo", "--heartbeat-ms", "250")
	w.expectLine("ready")
	waitService(t, b, "echo", 1)

	out, code := run(t, python, pyClient, "--broker", ep, "--service", "echo", "--count", "3", "hello", "wörld", "")
	if code != 0 {
		t.Fatalf("mdp_client.py exit %d; want 0", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("mdp_client.py printed %d replies; want 3:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var frames []string
		if err := json.Unmarshal([]byte(l), &frames); err != nil {
			t.Fatalf("reply %q: %v", l, err)
		}
		if fmt.Sprintf("%q", frames) != `["hello" "wörld" ""]` {
			t.Fatalf("reply = %q; want the request echoed", frames)
		}
	}

	for _, tt := range []struct{ service, want string }{{"echo", "200"}, {"nosuch", "404"}} {
		out, code := run(t, python, pyClient, "--broker", ep, "--service", tt.service, "--mmi")
		if code != 0 || strings.TrimSpace(out) != tt.want {
			t.Errorf("mmi.service %s = %q (exit %d); want %s", tt.service, out, code, tt.want)
		}
	}
}

func TestGoClientCallsPythonWorker(t *testing.T) {
	requirePython(t)
	b, ep := pythonBroker(t)
	w := start(t, nil, python, pyWorker, "--broker", ep, "--service", "shout", "--mode", "upper", "--heartbeat-ms", "250")
	w.expectLine("ready")
	waitService(t, b, "shout", 1)

	c := newClient(t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 5 {
		reply, err := c.Raw(ctx, "shout", []byte("tea"), []byte(fmt.Sprint("cup ", i)))
		if err != nil {
			t.Fatalf("Raw: %v", err)
		}
		if got, want := fmt.Sprintf("%q", reply), fmt.Sprintf("%q", []string{"TEA", fmt.Sprint("CUP ", i)}); got != want {
			t.Fatalf("Raw reply = %s; want %s", got, want)
		}
	}
	services, err := c.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(services) != 1 || services[0].Name != "shout" || services[0].Capacity != 1 {
		t.Fatalf("Services = %+v; want shout with credit 1 (a plain worker)", services)
	}
}

func TestPythonClientCallsGoWorker(t *testing.T) {
	requirePython(t)
	b, ep := testbroker.Start(t) // heartbeats as the Go worker process's; the Python client has none
	startWorker(t, ep, "gosvc", 0)
	waitService(t, b, "gosvc", 1)
	out, code := run(t, python, pyClient, "--broker", ep, "--service", "gosvc", "one", "two", "three")
	if code != 0 {
		t.Fatalf("mdp_client.py exit %d", code)
	}
	if got := strings.TrimSpace(out); got != `["three", "two", "one"]` {
		t.Fatalf("reply = %s; want the frames reversed by the Go worker's raw handler", got)
	}
}

func TestWorkerKilledMidRequest(t *testing.T) {
	b, ep := testbroker.Start(t)
	first := startWorker(t, ep, "slow", time.Hour)
	waitService(t, b, "slow", 1)
	c := newClient(t, ep)

	// Without retry: the caller gets "unavailable" soon after the kill,
	// well before its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctx, "slow.slow", nil)
		errc <- err
	}()
	first.expectLine("got ")
	killed := time.Now()
	first.kill()
	select {
	case err := <-errc:
		if !errors.Is(err, domo.ErrUnavailable) {
			t.Fatalf("call to a killed worker = %v; want unavailable", err)
		}
		t.Logf("caller told %v after the kill", time.Since(killed).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("caller still waiting 5s after its worker was killed")
	}
	waitService(t, b, "slow", 0)

	// With retry: the request moves to another worker and completes.
	second := startWorker(t, ep, "slow", time.Hour)
	waitService(t, b, "slow", 1)
	type answer struct {
		reply []byte
		err   error
	}
	answers := make(chan answer, 1)
	go func() {
		reply, err := c.Invoke(ctx, "slow.slow", nil, client.Retry())
		answers <- answer{reply, err}
	}()
	second.expectLine("got ")
	third := startWorker(t, ep, "slow", 0)
	waitService(t, b, "slow", 2)
	second.kill()
	select {
	case a := <-answers:
		if a.err != nil {
			t.Fatalf("retried call = %v; want the answer of the surviving worker", a.err)
		}
		if want := fmt.Sprint(third.cmd.Process.Pid); string(a.reply) != want {
			t.Fatalf("answer from pid %s; want the survivor %s", a.reply, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("retried call still waiting 5s after the kill")
	}
	s, _ := b.Stats(context.Background())
	if s.Counters.WorkerLost != 1 || s.Counters.Retried != 1 {
		t.Fatalf("counters = %+v; want 1 lost, 1 retried", s.Counters)
	}
}

func TestOversizeRequestGetsClearError(t *testing.T) {
	b, ep := testbroker.Start(t, func(c *broker.Config) {
		c.Limits = mdp.Limits{MaxFrames: 16, MaxFrameSize: 1 << 10, MaxMessageSize: 1 << 10}
	})
	startWorker(t, ep, "svc", 0)
	waitService(t, b, "svc", 1)
	c := newClient(t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Invoke(ctx, "svc.pid", make([]byte, 1500))
	if !errors.Is(err, domo.ErrTooLarge) {
		t.Fatalf("oversize call = %v; want too_large", err)
	}
	if _, err := c.Invoke(ctx, "svc.pid", []byte("small")); err != nil {
		t.Fatalf("a normal call after the oversize one = %v", err)
	}
}
