package client_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/internal/testbroker"
	"github.com/domo-framework/domo/worker"
)

// Every mix of transports (native ZMTP or libzmq) for the broker, the
// worker and the client carries calls, large payloads included: the two
// speak the same protocol, and the libzmq path stays one option away.
func TestTransportMix(t *testing.T) {
	for _, mix := range []struct{ broker, worker, client bool }{
		{false, false, false}, {true, false, false}, {false, true, true},
		{true, true, false}, {true, false, true}, {false, true, false},
	} {
		t.Run(fmt.Sprintf("native broker=%v worker=%v client=%v", mix.broker, mix.worker, mix.client), func(t *testing.T) {
			b, ep := testbroker.Start(t, func(c *broker.Config) { c.NativeTransport = mix.broker })
			w := worker.New("echo", worker.WithBroker(ep), worker.WithNativeTransport(mix.worker),
				worker.WithHeartbeat(testbroker.HeartbeatInterval, testbroker.HeartbeatLiveness))
			w.HandleFunc("echo", func(_ context.Context, r *worker.Request) ([]byte, error) { return r.Payload, nil })
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); w.Run(context.Background()) }()
			defer func() { w.Close(); wg.Wait() }()
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				if st, err := b.Stats(context.Background()); err == nil && len(st.Workers) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the worker never registered")
				}
			}
			c, err := client.New(client.WithBroker(ep), client.WithNativeTransport(mix.client), client.WithTimeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			for _, size := range []int{0, 64, 300, 70 << 10, 1 << 20} {
				in := bytes.Repeat([]byte{'x'}, size)
				out, err := c.Invoke(ctx, "echo.echo", in)
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("%d bytes: got %d bytes, %v", size, len(out), err)
				}
			}
		})
	}
}
