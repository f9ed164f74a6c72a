package zsock

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoRouter runs a native ROUTER on loopback that sends every message
// back, until the test ends; it returns the endpoint.
func echoRouter(t *testing.T) string {
	t.Helper()
	r, ep := boundRouter(t)
	p := NewPoller(r).Eager()
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		var msg [][]byte
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := p.Wait(20 * time.Millisecond); err != nil {
				t.Error(err)
				return
			}
			for {
				m, err := r.Recv(msg[:0], false)
				if err != nil {
					break
				}
				if err := r.Send(m, false); err != nil {
					t.Error(err)
					return
				}
				msg = m
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped; p.Close() })
	return ep
}

// connectedDealer returns a native DEALER connected to ep, closed when the
// test ends.
func connectedDealer(t *testing.T, ep string) *Socket {
	t.Helper()
	d, err := NewNativeDealer(Options{ReconnectIvl: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Connect(ep); err != nil {
		t.Fatal(err)
	}
	return d
}

// recvAll receives every message d has now and returns how many.
func recvAll(t *testing.T, d *Socket) int {
	n := 0
	for {
		_, err := d.Recv(nil, false)
		if errors.Is(err, ErrAgain) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
}

// TestServeRoundTrips: a loop served by a direct poller sends a message,
// parks for its echo, and sends the next one from the turn that received
// it, 2,000 times, from inside one wait: the wait on the socket's set is
// begun once (its begin costs a look that a park after a turn does not),
// not once a round trip as with Wait in a loop. A Wake while the loop runs
// (every other turn) takes one more turn, not a new wait.
func TestServeRoundTrips(t *testing.T) {
	d := connectedDealer(t, echoRouter(t))
	waker, _ := NewWaker()
	p := NewPoller(d, waker.Socket()).Eager()
	defer p.Close()
	if p.direct < 0 {
		t.Fatal("poller is not direct")
	}
	const trips = 2000
	sent, got := 0, 0
	err := p.Serve(func(ready []bool) (time.Duration, bool) {
		waker.Drain()
		if ready[0] {
			got += recvAll(t, d)
		}
		if got == trips {
			return 0, true
		}
		if sent == got {
			err := d.Send([][]byte{[]byte(fmt.Sprint(sent))}, false)
			if errors.Is(err, ErrAgain) { // not connected yet
				return time.Millisecond, false
			}
			if err != nil {
				t.Fatal(err)
			}
			if sent++; sent%2 == 0 {
				waker.Wake() // while the loop runs: its flag alone, no past deadline to end the wait
			}
		}
		return 5 * time.Second, false // a lost readiness shows as a 5 s pause per trip
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.begun > 3 {
		t.Errorf("the wait began %d times for %d round trips; want once (or a few, for deadlines)", p.begun, trips)
	}
}

// TestServeWokenEveryTurn: a loop whose Waker is pending at the end of
// every turn (callers that never pause) still reads its socket: a turn
// for a Wake skips the look only once in a row.
func TestServeWokenEveryTurn(t *testing.T) {
	d := connectedDealer(t, echoRouter(t))
	waker, _ := NewWaker()
	p := NewPoller(d, waker.Socket()).Eager()
	defer p.Close()
	const echoes = 100
	sent, got := 0, 0
	var giveUp atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- p.Serve(func(ready []bool) (time.Duration, bool) {
			waker.Drain()
			if ready[0] {
				got += recvAll(t, d)
			}
			if got == echoes || giveUp.Load() {
				return 0, true
			}
			for ; sent < echoes; sent++ {
				if err := d.Send([][]byte{[]byte("x")}, false); err != nil {
					break // not connected yet: the next turn tries again
				}
			}
			waker.Wake()
			return 5 * time.Second, false
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		giveUp.Store(true)
		<-done
		t.Fatalf("%d of %d echoes read in 5 s: turns for Wakes never looked at the socket", got, echoes)
	}
}

// TestServeWakes: callers on other goroutines queue work and Wake the
// loop, at random against the socket's traffic, while the loop runs and
// while it is parked: none waits for its work to be taken (a lost wake-up
// would leave it until the 10 s timeout the turn asks for).
func TestServeWakes(t *testing.T) {
	d := connectedDealer(t, echoRouter(t))
	waker, _ := NewWaker()
	p := NewPoller(d, waker.Socket()).Eager()
	defer p.Close()

	const callers, each = 8, 300
	var queued atomic.Int64
	var mu sync.Mutex
	took := int64(0)
	done := make(chan error, 1)
	go func() {
		inFlight := 0
		done <- p.Serve(func(ready []bool) (time.Duration, bool) {
			if ready[0] {
				inFlight -= recvAll(t, d)
			}
			waker.Drain()
			n := queued.Swap(0)
			for range n % 3 { // some work goes through the socket
				if d.Send([][]byte{[]byte("x")}, false) == nil {
					inFlight++
				}
			}
			mu.Lock()
			took += n
			stop := took == callers*each && inFlight == 0
			mu.Unlock()
			return 10 * time.Second, stop
		})
	}()
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				queued.Add(1)
				waker.Wake()
				if rand.IntN(4) == 0 {
					time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) // let the loop park
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(8 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the loop took %d of %d pieces of work: a Wake was lost", took, callers*each)
	}
}

// TestServeDeadlines: turns that ask to run again after a timeout get
// their turn with nothing ready; a timeout later than the armed deadline
// (which stays: it ends the wait early, and the next begins with the later
// one) or one that passed while the turn ran (the next wait must not fail
// at its begin, which would spin without a turn), with Wakes meanwhile.
func TestServeDeadlines(t *testing.T) {
	d := connectedDealer(t, echoRouter(t))
	waker, _ := NewWaker()
	p := NewPoller(d, waker.Socket()).Eager()
	defer p.Close()

	stop := make(chan struct{})
	defer close(stop)
	go func() { // wakes while parked end the wait on a past deadline
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
				waker.Wake()
			}
		}
	}()
	timeouts := []time.Duration{time.Millisecond, 5 * time.Millisecond, 2 * time.Millisecond, 20 * time.Millisecond}
	turns := 0
	start := time.Now()
	err := p.Serve(func(ready []bool) (time.Duration, bool) {
		waker.Drain()
		turns++
		if turns%7 == 0 {
			time.Sleep(2 * time.Millisecond) // past the deadline this turn asks for
		}
		return timeouts[turns%len(timeouts)], time.Since(start) > 300*time.Millisecond
	})
	if err != nil {
		t.Fatal(err)
	}
	if turns < 20 {
		t.Errorf("%d turns in 300 ms of 1-20 ms timeouts and 3 ms wakes", turns)
	}
	if p.begun > turns+1 {
		t.Errorf("the wait began %d times for %d turns: it began and ended without a turn", p.begun, turns)
	}
}

// TestServeStopAndAgain: a turn that returns stop ends Serve; Serve runs
// again on the same poller (the client stops to rebuild its poller, and
// an error ends it); a nested poller (two sockets) serves through Wait.
func TestServeStopAndAgain(t *testing.T) {
	ep := echoRouter(t)
	waker, _ := NewWaker()
	for _, socks := range [][]*Socket{{connectedDealer(t, ep)}, {connectedDealer(t, ep), connectedDealer(t, ep)}} {
		p := NewPoller(append(socks, waker.Socket())...).Eager()
		for round := range 3 {
			want, sent, got := 50, 0, 0
			err := p.Serve(func(ready []bool) (time.Duration, bool) {
				for i, s := range socks {
					if ready[i] {
						got += recvAll(t, s)
					}
				}
				for ; sent < want; sent++ {
					err := socks[sent%len(socks)].Send([][]byte{[]byte("x")}, false)
					if errors.Is(err, ErrAgain) { // not connected yet
						return time.Millisecond, false
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				return time.Second, got == want
			})
			if err != nil || got != want {
				t.Fatalf("%d sockets, round %d: Serve = %v with %d of %d echoes", len(socks), round, err, got, want)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.Serve(func([]bool) (time.Duration, bool) { return 0, true }); err == nil && p.direct >= 0 {
			t.Errorf("Serve on a closed direct poller = nil error")
		}
	}
}

// TestServeBurst: a burst larger than one read (64 KiB) and than one look
// (64 descriptors' events: here one connection, many reads) arrives
// after one request; the served loop receives all of it, though nothing
// more arrives: what its look left in the socket's set makes no new
// readiness for Go's poller, so it must look before parking.
func TestServeBurst(t *testing.T) {
	r, ep := boundRouter(t)
	d := connectedDealer(t, ep)
	waker, _ := NewWaker()
	p := NewPoller(d, waker.Socket()).Eager()
	defer p.Close()

	const count, size = 64, 16 << 10 // 1 MiB
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { // the router answers one request with the burst, and writes it out
		defer close(stopped)
		pr := NewPoller(r).Eager()
		defer pr.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := pr.Wait(20 * time.Millisecond); err != nil {
				t.Error(err)
				return
			}
			m, err := r.Recv(nil, false)
			if err != nil {
				continue
			}
			for i := range count {
				frame := make([]byte, size)
				frame[0] = byte(i)
				if err := r.Send([][]byte{m[0], frame}, false); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-stopped }()
	done := make(chan error, 1)
	got := 0
	var giveUp atomic.Bool
	go func() {
		asked := false
		done <- p.Serve(func(ready []bool) (time.Duration, bool) {
			if giveUp.Load() {
				return 0, true
			}
			if ready[0] {
				got += recvAll(t, d)
			}
			if !asked {
				err := d.Send([][]byte{[]byte("burst, please")}, false)
				if errors.Is(err, ErrAgain) {
					return time.Millisecond, false
				}
				asked = err == nil
			}
			return 30 * time.Second, got == count
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		giveUp.Store(true)
		waker.Wake()
		<-done
		t.Fatalf("received %d of %d messages: the loop parked on what it had not read", got, count)
	}
}
