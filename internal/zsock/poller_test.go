package zsock

import (
	"errors"
	"testing"
	"time"
)

// drain receives from s until ErrAgain and returns how many messages came.
func drain(t *testing.T, s *Socket) int {
	t.Helper()
	n := 0
	for {
		_, err := s.Recv(nil, false)
		if errors.Is(err, ErrAgain) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
}

// TestEagerPoller: an eager poller reports a socket that may be readable
// (one just sent on) without asking ZMQ_EVENTS; once a receive has found it
// empty it is settled and reported only when a message comes.
func TestEagerPoller(t *testing.T) {
	a, b := pair(t)
	p := NewPoller(a).Eager()
	defer p.Close()
	if err := a.Send([][]byte{[]byte("ping")}, true); err != nil {
		t.Fatal(err)
	}
	ready, err := p.Wait(0)
	if err != nil || !ready[0] {
		t.Fatalf("eager Wait after a send = %v, %v; want ready (it may be readable)", ready, err)
	}
	if n := drain(t, a); n != 0 {
		t.Fatalf("drained %d messages; want none", n)
	}
	if ready, err := p.Wait(50 * time.Millisecond); err != nil || ready[0] {
		t.Fatalf("Wait on a settled, empty socket = %v, %v; want not ready", ready, err)
	}
	if _, err := b.Recv(nil, true); err != nil { // the ping
		t.Fatal(err)
	}
	if err := b.Send([][]byte{[]byte("pong")}, true); err != nil {
		t.Fatal(err)
	}
	if ready, err := p.Wait(5 * time.Second); err != nil || !ready[0] {
		t.Fatalf("Wait with a message coming = %v, %v; want ready", ready, err)
	}
	if n := drain(t, a); n != 1 {
		t.Fatalf("drained %d messages; want the pong", n)
	}
	// A poller that is not eager answers only what ZMQ_EVENTS says.
	exact := NewPoller(a)
	defer exact.Close()
	if err := a.Send([][]byte{[]byte("ping")}, true); err != nil {
		t.Fatal(err)
	}
	if ready, err := exact.Wait(0); err != nil || ready[0] {
		t.Fatalf("exact Wait after a send = %v, %v; want not ready", ready, err)
	}
}

// TestEagerPingPongLosesNoWakeUp: two loops that wait eagerly, drain and
// answer, many times over; a wake-up lost to a send that swallowed libzmq's
// activation would stall one side until the deadline.
func TestEagerPingPongLosesNoWakeUp(t *testing.T) {
	for _, mode := range pollerModes {
		t.Run(mode.name, func(t *testing.T) { testPingPong(t, mode.new) })
	}
}

// pollerModes are the two ways a Poller waits.
var pollerModes = []struct {
	name string
	new  func(...*Socket) *Poller
}{{"parked", NewPoller}, {"blocking", NewBlockingPoller}}

func testPingPong(t *testing.T, newPoller func(...*Socket) *Poller) {
	a, b := pair(t)
	const rounds = 2000
	done := make(chan error, 1)
	go func() {
		p := newPoller(b).Eager()
		defer p.Close()
		for got := 0; got < rounds; {
			ready, err := p.Wait(5 * time.Second)
			if err != nil || !ready[0] {
				done <- errors.New("echo side: no message within 5s")
				return
			}
			for {
				m, err := b.Recv(nil, false)
				if errors.Is(err, ErrAgain) {
					break
				}
				if err == nil {
					err = b.Send(m, true)
				}
				if err != nil {
					done <- err
					return
				}
				got++
			}
		}
		done <- nil
	}()
	p := newPoller(a).Eager()
	defer p.Close()
	for sent := 0; sent < rounds; sent++ {
		if err := a.Send([][]byte{[]byte("x")}, true); err != nil {
			t.Fatal(err)
		}
		for {
			ready, err := p.Wait(5 * time.Second)
			if err != nil || !ready[0] {
				t.Fatalf("round %d: no answer within 5s", sent)
			}
			if drain(t, a) > 0 {
				break
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestBlockingPoller: a blocking poller times out, reports a message that
// comes while it waits, and is woken by its Waker from another goroutine.
func TestBlockingPoller(t *testing.T) {
	a, b := pair(t)
	w, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	p := NewBlockingPoller(a, w.Socket()).Eager()
	defer p.Close()
	drain(t, a) // settle a
	start := time.Now()
	if ready, err := p.Wait(30 * time.Millisecond); err != nil || ready[0] || ready[1] {
		t.Fatalf("Wait on nothing = %v, %v; want a timeout", ready, err)
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Fatalf("Wait(30ms) returned after %v", waited)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.Wake()
	}()
	if ready, err := p.Wait(5 * time.Second); err != nil || !ready[1] {
		t.Fatalf("Wait with a Wake coming = %v, %v; want the waker ready", ready, err)
	}
	w.Drain()
	go func() {
		time.Sleep(20 * time.Millisecond)
		b.Send([][]byte{[]byte("hello")}, true)
	}()
	for {
		ready, err := p.Wait(5 * time.Second)
		if err != nil || (!ready[0] && !ready[1]) {
			t.Fatalf("Wait with a message coming = %v, %v", ready, err)
		}
		if ready[1] {
			w.Drain() // the first Wake's eventfd count, already seen through the flag
		}
		if ready[0] && drain(t, a) == 1 {
			break
		}
	}
}
