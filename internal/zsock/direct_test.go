package zsock

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/domo-framework/domo/internal/nbio"
)

// TestDirectStaleWatchedFd: after a direct blocking poller is closed,
// the router still takes the closed eventfd's number for its watched
// descriptor. The next descriptor the process opens with that number (here
// a connection the router accepts) has its events swallowed by handle as
// "the watched descriptor": the connection is never read, and, the set
// being level-triggered, every look finds it ready again (a busy loop).
// In the broker: peers gone (direct blocking poller), peers back (nested
// poller), a client connects.
func TestDirectStaleWatchedFd(t *testing.T) {
	r, ep := boundRouter(t)
	d, err := NewNativeDealer(Options{Identity: "d", ReconnectIvl: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Connect(ep); err != nil {
		t.Fatal(err)
	}
	pd := NewPoller(d).Eager()
	defer pd.Close()
	pr := NewPoller(r).Eager() // made before p1: p1's Watch would fail otherwise
	defer pr.Close()

	waker, _ := NewWaker()
	p1 := NewBlockingPoller(r, waker.Socket()).Eager()
	if _, err := p1.Wait(0); err != nil {
		t.Fatal(err)
	}
	stale := p1.wakefd
	p1.Close() // the router still "watches" this number

	sent, got := false, false
	var msg [][]byte
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && !got; {
		if _, err := pd.Wait(5 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := d.Recv(msg, false); err != nil {
				break
			}
		}
		if !sent {
			sent = d.Send([][]byte{[]byte("hello")}, false) == nil
		}
		if _, err := pr.Wait(5 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.Recv(msg, false)
			if err != nil {
				break
			}
			if len(m) == 2 && string(m[1]) == "hello" {
				got = true
			}
		}
	}
	link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", stale))
	if got {
		return
	}
	if !strings.HasPrefix(link, "socket:") {
		t.Skipf("fd %d (the closed eventfd's) was not reused by the accepted connection (%q); cannot show the aliasing", stale, link)
	}
	t.Fatalf("router never received the dealer's hello (dealer connected and sent: %v): the accepted connection got fd %d (%s), the number of the closed poller's eventfd, which the router still treats as its watched descriptor", sent, stale, link)
}

// TestDirectLookWaitError: a direct blocking poller whose socket was
// closed returns epoll_wait's error from Wait, as the nested poller did,
// rather than taking it for "nothing ready" and spinning until its
// deadline (forever without one).
func TestDirectLookWaitError(t *testing.T) {
	r, err := NewNativeRouter(Options{})
	if err != nil {
		t.Fatal(err)
	}
	waker, _ := NewWaker()
	p := NewBlockingPoller(r, waker.Socket()).Eager()
	defer p.Close()
	if _, err := p.Wait(0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Recv(nil, false); !errors.Is(err, ErrAgain) { // settled: Wait must look
		t.Fatal(err)
	}
	r.Close()
	if _, err := p.Wait(300 * time.Millisecond); err == nil {
		t.Errorf("Wait on a blocking poller over a closed router = nil error")
	}
}

// TestDirectStress: a native ROUTER echoing and a native DEALER
// pipelining messages of mixed sizes (up to 256 KiB: reads that fill the
// 64 KiB buffer, partial writes and EPOLLOUT), the dealer heartbeating
// every 2 ms (its timerfd and PING/PONG among the traffic), and both
// loops woken at random by their Wakers: each loop waits with a direct
// poller (parked, or the router's blocking) and fails if it waits 5 s for
// nothing, which a lost wake-up would make it do.
func TestDirectStress(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		t.Run(fmt.Sprintf("blocking=%v", blocking), func(t *testing.T) {
			r, ep := boundRouter(t)
			d, err := NewNativeDealer(Options{Identity: "d", HeartbeatIvl: 2 * time.Millisecond, HeartbeatTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.Connect(ep); err != nil {
				t.Fatal(err)
			}
			rw, _ := NewWaker()
			dw, _ := NewWaker()
			stop := make(chan struct{})
			rexit := make(chan struct{})
			defer func() { // the router's loop ends before r closes
				close(stop)
				rw.Wake()
				<-rexit
			}()
			go func() { // random wake-ups
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if i%3 == 0 {
						rw.Wake()
					} else {
						dw.Wake()
					}
					time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
				}
			}()
			const rounds = 1000
			rdone := make(chan error, 1)
			go func() { // the router: echo everything
				defer close(rexit)
				var p *Poller
				if blocking {
					p = NewBlockingPoller(r, rw.Socket()).Eager()
				} else {
					p = NewPoller(r, rw.Socket()).Eager()
				}
				defer p.Close()
				if p.direct != 0 {
					rdone <- fmt.Errorf("router poller not direct")
					return
				}
				var msg [][]byte
				for {
					select {
					case <-stop:
						rdone <- nil
						return
					default:
					}
					ready, err := p.Wait(5 * time.Second)
					if err != nil {
						rdone <- err
						return
					}
					if !ready[0] && !ready[1] {
						rdone <- errors.New("router loop: nothing for 5 s")
						return
					}
					if ready[1] {
						rw.Drain()
					}
					for {
						msg, err = r.Recv(msg, false)
						if errors.Is(err, ErrAgain) {
							break
						}
						if err != nil {
							rdone <- err
							return
						}
						for r.Send(msg, false) != nil {
							p.Wait(time.Millisecond) // flush: the dealer's queue is full
						}
					}
				}
			}()
			size := func(i int) int {
				switch i % 10 {
				case 0:
					return 256 << 10
				case 1, 2:
					return 100 << 10
				default:
					return 1 + i%300
				}
			}
			p := NewPoller(d, dw.Socket()).Eager()
			defer p.Close()
			sent, recvd := 0, 0
			var msg [][]byte
			for recvd < rounds {
				ready, err := p.Wait(5 * time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if !ready[0] && !ready[1] {
					select {
					case err := <-rdone:
						t.Fatalf("router: %v", err)
					default:
					}
					t.Fatalf("dealer loop: nothing for 5 s, sent %d, received %d", sent, recvd)
				}
				if ready[1] {
					dw.Drain()
				}
				for {
					msg, err = d.Recv(msg, false)
					if errors.Is(err, ErrAgain) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if len(msg) != 1 || len(msg[0]) != size(recvd) {
						t.Fatalf("answer %d: %d frames, %d bytes; want %d", recvd, len(msg), len(msg[0]), size(recvd))
					}
					recvd++
				}
				for sent < rounds && sent-recvd < 50 {
					if d.Send([][]byte{make([]byte, size(sent))}, false) != nil {
						break
					}
					sent++
				}
			}
			select {
			case err := <-rdone:
				t.Fatalf("router: %v", err)
			default:
			}
		})
	}
}

// TestBlockingPollerParks: a blocking poller whose loop is quiet for longer
// than blockFor parks its goroutine on its park set, armed for that wait
// only; a message, a Wake and the deadline each end the parked wait, and
// the park set is disarmed again afterwards (else every message would also
// wake the runtime's poller thread), both direct (a native router and a
// Waker) and nested (two native routers and a Waker).
func TestBlockingPollerParks(t *testing.T) {
	for _, nested := range []bool{false, true} {
		t.Run(fmt.Sprintf("nested=%v", nested), func(t *testing.T) {
			r, ep := boundRouter(t)
			sockets := []*Socket{r}
			if nested {
				r2, err := NewNativeRouter(Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer r2.Close()
				sockets = append(sockets, r2)
			}
			waker, _ := NewWaker()
			sockets = append(sockets, waker.Socket())
			wi := len(sockets) - 1
			p := NewBlockingPoller(sockets...).Eager()
			defer p.Close()
			if (p.direct >= 0) == nested {
				t.Fatalf("direct = %d with nested = %v", p.direct, nested)
			}
			d, err := NewDealer(Options{Identity: "d"}, false) // libzmq's: it sends by itself
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.Connect(ep); err != nil {
				t.Fatal(err)
			}
			send := func(body string) error { // once connected (Immediate)
				for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(time.Millisecond) {
					if err := d.Send([][]byte{[]byte(body)}, false); !errors.Is(err, ErrAgain) {
						return err
					}
				}
				return errors.New("dealer not connected within 5 s")
			}
			wait := func(timeout time.Duration) []bool {
				t.Helper()
				ready, err := p.Wait(timeout)
				if err != nil {
					t.Fatal(err)
				}
				return ready
			}
			settle := func() { // read the routers until nothing is left (Eager)
				t.Helper()
				for _, s := range sockets[:wi] {
					for {
						if _, err := s.Recv(nil, false); errors.Is(err, ErrAgain) {
							break
						} else if err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			later := func(f func()) chan struct{} {
				done := make(chan struct{})
				go func() {
					defer close(done)
					time.Sleep(10 * blockFor)
					f()
				}()
				return done
			}

			// A message while parked.
			var sendErr error
			sent := later(func() { sendErr = send("hello") })
			got := false
			for start := time.Now(); !got && time.Since(start) < 5*time.Second; {
				if wait(5 * time.Second)[0] {
					msg, err := r.Recv(nil, false)
					got = err == nil && string(msg[len(msg)-1]) == "hello"
					settle()
				}
			}
			<-sent
			if !got || sendErr != nil {
				t.Fatalf("no message within 5 s (send: %v)", sendErr)
			}
			parks := p.parks
			if parks == 0 {
				t.Fatal("the poller never parked")
			}

			// A Wake while parked.
			woke := later(waker.Wake)
			for start := time.Now(); !wait(5 * time.Second)[wi]; {
				if time.Since(start) > 5*time.Second {
					t.Fatal("no wake within 5 s")
				}
				settle()
			}
			<-woke
			waker.Drain()
			if p.parks == parks {
				t.Fatal("the poller did not park before the Wake")
			}

			// The deadline while parked.
			parks = p.parks
			start := time.Now()
			for time.Since(start) < 20*blockFor {
				wait(20*blockFor - time.Since(start))
				settle()
			}
			if p.parks == parks {
				t.Fatal("the poller did not park before its deadline")
			}

			// Disarmed: a message waiting in the set the thread waits on
			// leaves the park set, which Go's poller watches, quiet.
			if err := send("again"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(4 * blockFor)
			var events [4]syscall.EpollEvent
			if n, errno := nbio.Poll(p.parkfd, events[:]); n != 0 || errno != 0 {
				t.Fatalf("park set between waits: %d events (%v); want none", n, errno)
			}
			if n, _ := nbio.Poll(p.waitSet(), events[:]); n == 0 {
				t.Fatal("the set waited on has nothing ready: the test proves nothing")
			}
		})
	}
}

// boundRouter returns a native router bound to a free port on 127.0.0.1,
// and its endpoint; it is closed when the test ends.
func boundRouter(t *testing.T) (*Socket, string) {
	t.Helper()
	r, err := NewNativeRouter(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ep, err := r.Bind("tcp://127.0.0.1:*")
	if err != nil {
		t.Fatal(err)
	}
	return r, ep
}

// TestWaitAllocatesNothing: a wait that parks allocates nothing (its look
// at the set, handed to Go's poller, is made once), parked or blocking.
func TestWaitAllocatesNothing(t *testing.T) {
	r, _ := boundRouter(t)
	waker, _ := NewWaker()
	for _, p := range []*Poller{NewPoller(r, waker.Socket()), NewBlockingPoller(r, waker.Socket())} {
		if _, err := p.Wait(0); err != nil { // the router's first look
			t.Fatal(err)
		}
		r.Recv(nil, false) // settles it
		wait := 2 * time.Millisecond
		if p.wakefd >= 0 {
			wait = blockFor + time.Millisecond // past the thread's wait, into the park
		}
		if n := testing.AllocsPerRun(10, func() {
			if _, err := p.Wait(wait); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("blocking %v: %v allocations a Wait; want 0", p.wakefd >= 0, n)
		}
		p.Close()
	}
}
