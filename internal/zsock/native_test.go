package zsock

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestNativeRouterInPoller: a native ROUTER and a libzmq DEALER answer
// each other many times over, each loop waiting in a Poller (parked and
// blocking): a send is written when its loop next waits, and a message
// coming wakes the router's loop.
func TestNativeRouterInPoller(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		t.Run(fmt.Sprintf("blocking=%v", blocking), func(t *testing.T) {
			r, err := NewNativeRouter(Options{SendHWM: 100})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := r.Apply(Options{}); err == nil {
				t.Error("Apply on a native router: no error")
			}
			ep, err := r.Bind("tcp://127.0.0.1:*")
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(Dealer)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.Apply(Options{Identity: "d"}); err != nil {
				t.Fatal(err)
			}
			if err := d.Connect(ep); err != nil {
				t.Fatal(err)
			}
			waker, _ := NewWaker()
			const rounds = 2000
			done := make(chan error, 1)
			go func() { // the router's loop: answer every message
				p := NewPoller(r, waker.Socket()).Eager()
				if blocking {
					p = NewBlockingPoller(r, waker.Socket()).Eager()
				}
				defer p.Close()
				var msg [][]byte
				for n := 0; n < rounds; {
					ready, err := p.Wait(5 * time.Second)
					if err != nil {
						done <- err
						return
					}
					if !ready[0] && !ready[1] {
						done <- fmt.Errorf("router loop: nothing for 5 s after %d messages", n)
						return
					}
					if ready[1] {
						waker.Drain()
					}
					for {
						msg, err = r.Recv(msg, false)
						if errors.Is(err, ErrAgain) {
							break
						}
						if err != nil {
							done <- err
							return
						}
						if err := r.Send(msg, false); err != nil {
							done <- err
							return
						}
						n++
					}
				}
				p.Wait(0) // writes the last answer
				done <- nil
			}()
			for i := range rounds {
				if err := d.Send([][]byte{[]byte(fmt.Sprint(i))}, true); err != nil {
					t.Fatal(err)
				}
				if i%100 == 0 {
					waker.Wake() // a wake-up among messages is harmless
				}
				m, err := d.Recv(nil, true)
				if err != nil || string(m[0]) != fmt.Sprint(i) {
					t.Fatalf("answer %d: %q, %v", i, m, err)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
