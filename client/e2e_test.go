package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/worker"
)

// End-to-end: the client against the real broker and the worker SDK.

type brewIn struct {
	Cups int `json:"cups"`
}
type brewOut struct {
	Pot int `json:"pot"`
}

func startTea(t *testing.T) string {
	t.Helper()
	_, ep := testbroker.Start(t)
	w := worker.New("tea", worker.WithBroker(ep))
	w.Handle("brew", worker.Typed(func(ctx context.Context, in brewIn) (brewOut, error) {
		if in.Cups < 1 {
			return brewOut{}, domo.Errorf(domo.CodeInvalid, "cups must be at least 1")
		}
		return brewOut{Pot: in.Cups}, nil
	}))
	w.HandleFunc("pour", func(ctx context.Context, req *worker.Request) ([]byte, error) {
		if req.Streaming() {
			for i := range 3 {
				if err := req.Send(fmt.Appendf(nil, "drop %d", i)); err != nil {
					return nil, err
				}
			}
		}
		return []byte("done"), nil
	})
	w.HandleRaw(func(ctx context.Context, body [][]byte) ([][]byte, error) {
		return append([][]byte{[]byte("raw")}, body...), nil
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.Run(context.Background()); err != nil {
			t.Errorf("worker Run: %v", err)
		}
	}()
	t.Cleanup(func() { w.Close(); wg.Wait() })
	return ep
}

func TestEndToEnd(t *testing.T) {
	ep := startTea(t)
	c, err := client.New(client.WithBroker(ep))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The worker may not have said READY yet.
	deadline := time.Now().Add(5 * time.Second)
	for {
		svcs, err := c.Services(ctx)
		if err != nil {
			t.Fatalf("Services: %v", err)
		}
		if len(svcs) == 1 && svcs[0].Name == "tea" && svcs[0].Workers == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Services = %+v; want tea with one worker", svcs)
		}
		time.Sleep(10 * time.Millisecond)
	}

	var out brewOut
	if err := c.Call(ctx, "tea.brew", brewIn{Cups: 3}, &out); err != nil || out.Pot != 3 {
		t.Errorf("Call(tea.brew) = %+v, %v; want pot 3", out, err)
	}
	if err := c.Call(ctx, "tea.brew", brewIn{}, &out); !errors.Is(err, domo.ErrInvalid) {
		t.Errorf("Call(tea.brew, 0 cups) = %v; want domo.ErrInvalid", err)
	}
	if err := c.Call(ctx, "tea.steep", nil, nil); !errors.Is(err, domo.ErrUnknownMethod) {
		t.Errorf("Call(tea.steep) = %v; want domo.ErrUnknownMethod", err)
	}
	if err := c.Call(ctx, "coffee.brew", nil, nil); !errors.Is(err, domo.ErrUnknownService) {
		t.Errorf("Call(coffee.brew) = %v; want domo.ErrUnknownService", err)
	}

	s, err := c.Stream(ctx, "tea.pour", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		p, err := s.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		got = append(got, string(p))
	}
	if want := "drop 0,drop 1,drop 2,done"; strings.Join(got, ",") != want {
		t.Errorf("stream = %q; want %s", got, want)
	}

	body, err := c.Raw(ctx, "tea", []byte("a"), []byte("b"))
	if err != nil || len(body) != 3 || string(body[0]) != "raw" || string(body[2]) != "b" {
		t.Errorf("Raw = %q, %v; want [raw a b]", body, err)
	}

	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out brewOut
			if err := c.Call(ctx, "tea.brew", brewIn{Cups: i + 1}, &out); err != nil || out.Pot != i+1 {
				t.Errorf("Call %d = %+v, %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	if st := c.Stats(); st.Late != 0 || st.Malformed != 0 || st.InFlight != 0 {
		t.Errorf("Stats = %+v; want no late, malformed or in-flight", st)
	}
}
