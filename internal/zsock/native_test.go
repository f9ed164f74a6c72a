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
				newPoller := NewPoller
				if blocking {
					newPoller = NewBlockingPoller
				}
				p := newPoller(r, waker.Socket()).Eager()
				defer p.Close()
				if p.direct != 0 { // a native socket and a Waker: waits in the socket's set
					done <- fmt.Errorf("direct = %d; want 0", p.direct)
					return
				}
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

// TestDirectPoller: a poller over one native socket and Wakers waits on the
// socket's own epoll set (initDirect). A DEALER whose ROUTER appears only
// later gets connected while its loop is parked (its reconnect timer, the
// connect and the handshake each wake the loop through Look), then
// answers the ROUTER's messages; the test fails by timing out if a wake-up
// is lost.
func TestDirectPoller(t *testing.T) {
	probe, err := NewNativeRouter(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := probe.Bind("tcp://127.0.0.1:*") // a free port, closed again below
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()

	d, err := NewNativeDealer(Options{Identity: "d", ReconnectIvl: 20 * time.Millisecond, ReconnectIvlMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Connect(ep); err != nil {
		t.Fatal(err)
	}
	waker, _ := NewWaker()
	p := NewPoller(d, waker.Socket()).Eager()
	defer p.Close()
	if p.direct != 0 {
		t.Fatalf("poller over a native dealer and a waker: direct = %d; want 0", p.direct)
	}
	const rounds = 500
	done := make(chan error, 1)
	go func() { // the dealer's loop: say hello until it can, then echo
		hello := false
		var msg [][]byte
		var err error
		for n := 0; n < rounds; {
			if _, err := p.Wait(5 * time.Second); err != nil {
				done <- err
				return
			}
			waker.Drain()
			for {
				msg, err = d.Recv(msg, false)
				if errors.Is(err, ErrAgain) {
					break
				}
				if err != nil {
					done <- err
					return
				}
				if err := d.Send(msg, false); err != nil {
					done <- err
					return
				}
				n++
			}
			if !hello {
				hello = d.Send([][]byte{[]byte("hello")}, false) == nil
			}
		}
		p.Wait(0) // writes the last answer
		done <- nil
	}()
	time.Sleep(100 * time.Millisecond) // the dealer fails to connect a few times
	r, err := NewNativeRouter(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Bind(ep); err != nil {
		t.Fatal(err)
	}
	rp := NewPoller(r).Eager()
	defer rp.Close()
	recv := func() [][]byte {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			if _, err := rp.Wait(time.Second); err != nil {
				t.Fatal(err)
			}
			m, err := r.Recv(nil, false)
			if err == nil {
				return m
			}
			if !errors.Is(err, ErrAgain) {
				t.Fatal(err)
			}
		}
		t.Fatal("router: nothing for 5 s")
		return nil
	}
	if m := recv(); string(m[1]) != "hello" {
		t.Fatalf("first message %q; want hello", m)
	}
	for i := range rounds {
		if i%50 == 0 {
			waker.Wake() // a wake-up among messages is harmless
		}
		if err := r.Send([][]byte{[]byte("d"), []byte(fmt.Sprint(i))}, false); err != nil {
			t.Fatal(err)
		}
		if m := recv(); string(m[1]) != fmt.Sprint(i) {
			t.Fatalf("answer %d: %q", i, m)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDirectBlockingPollerAgain: the broker makes a new poller when its
// peer links change; a blocking poller over a native socket and a Waker,
// closed, leaves the socket ready for the next one (its eventfd out of
// the socket's set), which a Wake still wakes.
func TestDirectBlockingPollerAgain(t *testing.T) {
	r, err := NewNativeRouter(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	waker, _ := NewWaker()
	for i := range 3 {
		p := NewBlockingPoller(r, waker.Socket()).Eager()
		if p.direct != 0 {
			t.Fatalf("poller %d: direct = %d; want 0", i, p.direct)
		}
		go func() {
			time.Sleep(10 * time.Millisecond)
			waker.Wake()
		}()
		for woken := false; !woken; {
			ready, err := p.Wait(5 * time.Second)
			if err != nil || !ready[0] && !ready[1] {
				t.Fatalf("poller %d: Wait = %v, %v; want the waker ready", i, ready, err)
			}
			if ready[0] { // a new poller looks at the router first
				if _, err := r.Recv(nil, false); !errors.Is(err, ErrAgain) {
					t.Fatalf("router: %v", err)
				}
			}
			woken = ready[1]
		}
		waker.Drain()
		p.Close()
	}
}
