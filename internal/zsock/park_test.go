package zsock

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/domo-framework/domo/internal/nbio"
)

// Tests of a blocking poller's park (see Poller.block): wake-ups, deadlines
// and signals around the moment it moves from its raw epoll_wait to Go's
// poller, the park set's arming, pollers rebuilt over one socket, and the
// kernel behaviour the design relies on. Lateness is only checked coarsely
// (a loaded machine delays any wake-up); early returns and lost wake-ups
// are the failures.

// parkSetup builds the sockets of a blocking poller: direct (a native
// router and a Waker) or nested (a native router, a libzmq router, so a
// ZMQ_FD in the poller's set, and a Waker), with one libzmq dealer (which
// sends on libzmq's I/O thread) connected to each router.
type parkSetup struct {
	sockets []*Socket
	routers []*Socket
	dealers []*Socket
	waker   *Waker
	wi      int
}

func newParkSetup(t *testing.T, nested bool) *parkSetup {
	t.Helper()
	r, ep := boundRouter(t)
	s := &parkSetup{routers: []*Socket{r}}
	eps := []string{ep}
	if nested {
		z, err := New(Router)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { z.Close() })
		zep, err := z.Bind("tcp://127.0.0.1:*")
		if err != nil {
			t.Fatal(err)
		}
		s.routers = append(s.routers, z)
		eps = append(eps, zep)
	}
	for i, ep := range eps {
		d, err := NewDealer(Options{Identity: fmt.Sprintf("d%d", i)}, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Connect(ep); err != nil {
			t.Fatal(err)
		}
		s.dealers = append(s.dealers, d)
	}
	s.waker, _ = NewWaker()
	s.sockets = append(append([]*Socket(nil), s.routers...), s.waker.Socket())
	s.wi = len(s.sockets) - 1
	// Connect: each dealer's first message reaches its router, through a
	// parking poller (the native router accepts and handshakes only when
	// its owner waits on it).
	tmp := NewPoller(s.routers...).Eager()
	defer tmp.Close()
	for i, d := range s.dealers {
		sent, got := false, false
		for start := time.Now(); !got; {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("dealer %d: not connected within 5 s", i)
			}
			if !sent {
				sent = d.Send([][]byte{[]byte("hello")}, false) == nil
			}
			ready, err := tmp.Wait(time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			bodies, err := s.drain(ready)
			if err != nil {
				t.Fatal(err)
			}
			got = len(bodies) > 0
		}
	}
	return s
}

// send sends body through dealer i once it is connected (Immediate).
func (s *parkSetup) send(i int, body string) error {
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(time.Millisecond) {
		if err := s.dealers[i].Send([][]byte{[]byte(body)}, false); !errors.Is(err, ErrAgain) {
			return err
		}
	}
	return errors.New("dealer not connected within 5 s")
}

// drain reads every router until ErrAgain and returns the bodies read.
func (s *parkSetup) drain(ready []bool) ([]string, error) {
	var got []string
	for i, r := range s.routers {
		if !ready[i] {
			continue
		}
		for {
			msg, err := r.Recv(nil, false)
			if errors.Is(err, ErrAgain) {
				break
			}
			if err != nil {
				return got, err
			}
			got = append(got, string(msg[len(msg)-1]))
		}
	}
	return got, nil
}

// lockedPoller locks the test's goroutine to its thread, as the broker's
// loop is, until the test ends, and returns a blocking poller over s's
// sockets with the routers read once (settled); it is closed when the test
// ends.
func (s *parkSetup) lockedPoller(t *testing.T) *Poller {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	p := NewBlockingPoller(s.sockets...).Eager()
	t.Cleanup(func() { p.Close() })
	ready, err := p.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.drain(ready); err != nil {
		t.Fatal(err)
	}
	return p
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	return len(ents)
}

// TestParkStress: a blocking poller's loop (on a locked thread, as
// the broker's) waits untimed or with random short timeouts while a driver,
// after random pauses of 0-12 ms (so that the loop is sometimes in its raw
// epoll_wait, sometimes parked, sometimes between the two), either Wakes
// it or sends it a message through a libzmq dealer; meanwhile its thread
// gets SIGURG at random (EINTR in the raw epoll_wait, as Go's preemption
// does). Each event must be seen within 1 s: a lost wake-up leaves an
// untimed Wait parked for good (the driver then unsticks it and the test
// fails). Timed Waits that return with nothing must not return before
// their timeout, nor much after.
func TestParkStress(t *testing.T) {
	for _, nested := range []bool{false, true} {
		for _, timed := range []bool{false, true} {
			t.Run(fmt.Sprintf("nested=%v/timed=%v", nested, timed), func(t *testing.T) {
				s := newParkSetup(t, nested)
				type ack struct {
					kind string // "wake" or a message body
				}
				acks := make(chan ack, 64)
				var stop atomic.Bool
				var tid atomic.Int32
				loopErr := make(chan error, 1)
				var parks, waits, early, late int
				var worstLate time.Duration
				go func() {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					tid.Store(int32(syscall.Gettid()))
					p := NewBlockingPoller(s.sockets...).Eager()
					defer p.Close()
					if (p.direct >= 0) == nested {
						loopErr <- fmt.Errorf("direct = %d with nested = %v", p.direct, nested)
						return
					}
					rnd := rand.New(rand.NewSource(2))
					for !stop.Load() {
						timeout := time.Duration(-1)
						if timed {
							timeout = time.Duration(rnd.Intn(16000)) * time.Microsecond
						}
						start := time.Now()
						ready, err := p.Wait(timeout)
						el := time.Since(start)
						waits++
						if err != nil {
							loopErr <- err
							return
						}
						any := false
						for _, r := range ready {
							any = any || r
						}
						if !any {
							if timeout < 0 {
								loopErr <- errors.New("untimed Wait returned nothing ready")
								return
							}
							if el < timeout {
								early++
							}
							if d := el - timeout; d > 50*time.Millisecond {
								late++
								worstLate = max(worstLate, d)
							}
						}
						if ready[s.wi] {
							s.waker.Drain()
							acks <- ack{"wake"}
						}
						got, err := s.drain(ready)
						if err != nil {
							loopErr <- err
							return
						}
						for _, g := range got {
							acks <- ack{g}
						}
					}
					parks = p.parks
					loopErr <- nil
				}()
				for tid.Load() == 0 {
					time.Sleep(time.Millisecond)
				}
				// SIGURG at random, as the runtime's preemption sends it.
				sigStop := make(chan struct{})
				sigDone := make(chan struct{})
				go func() {
					defer close(sigDone)
					rnd := rand.New(rand.NewSource(3))
					for {
						select {
						case <-sigStop:
							return
						case <-time.After(time.Duration(rnd.Intn(8000)) * time.Microsecond):
						}
						_ = syscall.Tgkill(os.Getpid(), int(tid.Load()), syscall.SIGURG)
					}
				}()
				defer func() { close(sigStop); <-sigDone }()

				rnd := rand.New(rand.NewSource(1))
				const rounds = 100
				lost := 0
				var worst time.Duration
				for i := range rounds {
					time.Sleep(time.Duration(rnd.Intn(12000)) * time.Microsecond)
					want := "wake"
					sent := time.Now()
					if rnd.Intn(2) == 0 {
						s.waker.Wake()
					} else {
						want = fmt.Sprint("m", i)
						if err := s.dealers[rnd.Intn(len(s.dealers))].Send([][]byte{[]byte(want)}, false); err != nil {
							t.Fatal(err)
						}
					}
					select {
					case a := <-acks:
						if a.kind != want {
							t.Fatalf("round %d: saw %q; want %q", i, a.kind, want)
						}
						worst = max(worst, time.Since(sent))
					case err := <-loopErr:
						t.Fatalf("round %d: loop: %v", i, err)
					case <-time.After(time.Second):
						lost++
						t.Errorf("round %d: %s not seen within 1 s (lost wake-up)", i, want)
						// Unstick the loop with the other kind of event.
						if want == "wake" {
							s.dealers[0].Send([][]byte{[]byte("unstick")}, false)
						} else {
							s.waker.Wake()
						}
						for n := 0; n < 2; n++ {
							select {
							case <-acks:
							case <-time.After(2 * time.Second):
								t.Fatal("loop stuck for good")
							}
						}
					}
				}
				stop.Store(true)
				s.waker.Wake()
				for {
					select {
					case <-acks:
						continue
					case err := <-loopErr:
						if err != nil {
							t.Fatal(err)
						}
					case <-time.After(5 * time.Second):
						t.Fatal("loop did not stop")
					}
					break
				}
				t.Logf("waits %d, parks %d, worst latency %v, timed waits returned early %d, late by >50ms %d (worst %v)", waits, parks, worst, early, late, worstLate)
				if parks == 0 {
					t.Error("the poller never parked: the test proves little")
				}
				if early > 0 {
					t.Errorf("%d timed Waits returned nothing before their timeout", early)
				}
				if late > 2 {
					t.Errorf("%d timed Waits returned nothing more than 50 ms after their timeout (worst %v)", late, worstLate)
				}
			})
		}
	}
}

// TestParkSignalParks: a signal (SIGURG, Go's preemption) that
// interrupts the thread's raw epoll_wait 1 ms into it must not cut the
// 5 ms raw wait short: a Wake 3 ms into the Wait should end the raw wait,
// without the goroutine parking (which costs the runtime's poller a
// wake-up and, on a locked thread, two thread hand-offs). block once took
// the EINTR (look returns nothing, no error) for "nothing for blockFor"
// and parked at once.
func TestParkSignalParks(t *testing.T) {
	for _, nested := range []bool{false, true} {
		t.Run(fmt.Sprintf("nested=%v", nested), func(t *testing.T) {
			s := newParkSetup(t, nested)
			p := s.lockedPoller(t)
			tid := syscall.Gettid()
			trial := func(signal bool) (valid, parked bool) {
				parks := p.parks
				start := time.Now()
				var woke time.Duration
				done := make(chan struct{})
				go func() {
					defer close(done)
					time.Sleep(time.Millisecond)
					if signal {
						_ = syscall.Tgkill(os.Getpid(), tid, syscall.SIGURG)
					}
					time.Sleep(2 * time.Millisecond)
					woke = time.Since(start)
					s.waker.Wake()
				}()
				ready, err := p.Wait(time.Second)
				if err != nil {
					t.Fatal(err)
				}
				<-done
				if !ready[s.wi] {
					t.Fatalf("Wait returned %v; want the waker", ready)
				}
				s.waker.Drain()
				// Valid if the Wake came well within the raw wait.
				return woke < blockFor-time.Millisecond, p.parks != parks
			}
			var ctlValid, ctlParked, sigValid, sigParked int
			for range 15 {
				if v, pk := trial(false); v {
					ctlValid++
					if pk {
						ctlParked++
					}
				}
				if v, pk := trial(true); v {
					sigValid++
					if pk {
						sigParked++
					}
				}
			}
			t.Logf("without a signal: %d/%d valid trials parked; with a signal 1 ms in: %d/%d", ctlParked, ctlValid, sigParked, sigValid)
			if sigValid < 5 || ctlValid < 5 {
				t.Skip("too few trials where the Wake came within the raw wait (machine too busy)")
			}
			if sigParked*2 > sigValid && ctlParked*4 < ctlValid {
				t.Errorf("a signal during the raw epoll_wait makes the poller park at once: %d of %d Waits woken 3 ms in parked (without a signal: %d of %d)", sigParked, sigValid, ctlParked, ctlValid)
			}
		})
	}
}

// TestParkSignalDeadline: signals every ~0.5 ms into a timed Wait
// (EINTR in each raw epoll_wait) neither end it early nor make it late.
func TestParkSignalDeadline(t *testing.T) {
	for _, nested := range []bool{false, true} {
		t.Run(fmt.Sprintf("nested=%v", nested), func(t *testing.T) {
			s := newParkSetup(t, nested)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tid := syscall.Gettid()
			p := NewBlockingPoller(s.sockets...).Eager()
			defer p.Close()
			ready, err := p.Wait(0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.drain(ready); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					case <-time.After(500 * time.Microsecond):
					}
					_ = syscall.Tgkill(os.Getpid(), tid, syscall.SIGURG)
				}
			}()
			defer func() { close(stop); <-done }()
			for _, timeout := range []time.Duration{time.Millisecond, 3 * time.Millisecond, blockFor, 7 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond} {
				start := time.Now()
				ready, err := p.Wait(timeout)
				el := time.Since(start)
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range ready {
					if r {
						t.Fatalf("Wait(%v): socket %d ready; nothing was sent", timeout, i)
					}
				}
				if el < timeout {
					t.Errorf("Wait(%v) returned after %v: early", timeout, el)
				}
				if el > timeout+100*time.Millisecond {
					t.Errorf("Wait(%v) returned after %v: late", timeout, el)
				}
			}
		})
	}
}

// TestParkDisarmed: however a parked wait ends (its deadline, a Wake,
// a message, or a deadline already past when the park starts), the park
// set is disarmed afterwards: with the set the thread waits on readable,
// the park set reports nothing.
func TestParkDisarmed(t *testing.T) {
	for _, nested := range []bool{false, true} {
		t.Run(fmt.Sprintf("nested=%v", nested), func(t *testing.T) {
			s := newParkSetup(t, nested)
			p := NewBlockingPoller(s.sockets...).Eager()
			defer p.Close()
			wait := func(timeout time.Duration) []bool {
				t.Helper()
				ready, err := p.Wait(timeout)
				if err != nil {
					t.Fatal(err)
				}
				if ready[s.wi] {
					s.waker.Drain()
				}
				if _, err := s.drain(ready); err != nil {
					t.Fatal(err)
				}
				return ready
			}
			wait(0)
			checkDisarmed := func(how string) {
				t.Helper()
				s.waker.Wake() // makes the set waited on readable (eventfd)
				var events [4]syscall.EpollEvent
				if n, _ := nbio.Poll(p.waitSet(), events[:]); n == 0 {
					t.Fatalf("%s: the set waited on has nothing ready: the check proves nothing", how)
				}
				if n, errno := nbio.Poll(p.parkfd, events[:]); n != 0 || errno != 0 {
					t.Errorf("%s: park set armed after the wait: %d events (%v)", how, n, errno)
				}
				wait(time.Second) // takes the Wake
			}
			later := func(d time.Duration, f func()) chan struct{} {
				done := make(chan struct{})
				go func() { defer close(done); time.Sleep(d); f() }()
				return done
			}

			parks := p.parks
			wait(3 * blockFor) // ends by its deadline, parked
			if p.parks == parks {
				t.Fatal("did not park")
			}
			checkDisarmed("deadline")

			parks = p.parks
			done := later(3*blockFor, s.waker.Wake)
			for !wait(time.Second)[s.wi] {
			}
			<-done
			if p.parks == parks {
				t.Fatal("did not park before the Wake")
			}
			checkDisarmed("wake")

			parks = p.parks
			done = later(3*blockFor, func() { s.send(len(s.dealers)-1, "x") })
			for {
				ready := wait(time.Second)
				if ready[len(s.routers)-1] {
					break
				}
			}
			<-done
			if p.parks == parks {
				t.Fatal("did not park before the message")
			}
			checkDisarmed("message")
		})
	}
}

// TestParkRebuild: the broker makes a new blocking poller each time
// its peers change (direct with no peers, nested with some). Many pollers
// made, parked, woken and closed over the same sockets, alternating direct
// and nested in the mixed case, leave no descriptor behind, and each one
// still wakes on a Wake and on a message while parked; a poller whose
// construction fails (a second direct blocking poller while one watches
// the socket) leaks nothing either and leaves the first one working.
func TestParkRebuild(t *testing.T) {
	for _, mixed := range []bool{false, true} {
		t.Run(fmt.Sprintf("mixed=%v", mixed), func(t *testing.T) {
			s := newParkSetup(t, mixed)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			direct := []*Socket{s.routers[0], s.waker.Socket()}
			unparked := 0 // pollers woken before they parked (a busy machine)
			one := func(i int, p *Poller, socks []*Socket) {
				t.Helper()
				wi := len(socks) - 1
				wait := func(timeout time.Duration) []bool {
					t.Helper()
					ready, err := p.Wait(timeout)
					if err != nil {
						t.Fatalf("poller %d: %v", i, err)
					}
					if ready[wi] {
						s.waker.Drain()
					}
					if _, err := s.drain(append(ready[:wi:wi], false, false)); err != nil {
						t.Fatal(err)
					}
					return ready
				}
				wait(0)
				parks := p.parks
				var woke, got bool
				target := i % wi
				done := make(chan struct{})
				go func() {
					defer close(done)
					time.Sleep(4 * blockFor)
					if i%2 == 0 {
						s.waker.Wake()
					} else {
						s.dealers[target].Send([][]byte{[]byte("m")}, false)
					}
				}()
				for start := time.Now(); !woke && !got; {
					if time.Since(start) > 2*time.Second {
						t.Fatalf("poller %d: nothing within 2 s", i)
					}
					ready := wait(2 * time.Second)
					woke = ready[wi]
					got = ready[target]
				}
				<-done
				if p.parks == parks {
					unparked++
				}
			}
			// The first poller makes the descriptors made once (libzmq's).
			p := NewBlockingPoller(s.sockets...).Eager()
			one(0, p, s.sockets)
			p.Close()
			before := openFds(t)
			for i := 1; i <= 60; i++ {
				socks := direct
				if mixed && i%2 == 0 {
					socks = s.sockets
				}
				p := NewBlockingPoller(socks...).Eager()
				if p.err != nil {
					t.Fatal(p.err)
				}
				if (p.direct >= 0) != (len(socks) == 2) {
					t.Fatalf("poller %d over %d sockets: direct = %d", i, len(socks), p.direct)
				}
				one(i, p, socks)
				if len(socks) == 2 {
					// A second one over the same socket fails (Watch); its
					// Close must free what it made and not touch the first.
					q := NewBlockingPoller(socks...).Eager()
					if q.err == nil {
						t.Fatal("second direct blocking poller over one socket: no error")
					}
					q.Close()
					one(i+1, p, socks)
				}
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if after := openFds(t); after != before {
				t.Errorf("open descriptors: %d before 60 pollers, %d after", before, after)
			}
			if unparked > 30 {
				t.Errorf("%d of the waits were over before their poller parked: the test proves little", unparked)
			}
		})
	}
}

// TestParkSteadyLoad: under a steady load (a libzmq dealer in
// ping-pong with the loop, so that no raw wait comes near blockFor), a
// blocking poller should never park: parking is for a quiet loop. The
// loop's goroutine, never descheduled (its waits are raw system calls),
// counts as running for as long as the load lasts, so sysmon preempts it
// every 10-20 ms with SIGURG; the signal interrupts the raw epoll_wait
// (EINTR), which block once took for "nothing for blockFor", and parked.
func TestParkSteadyLoad(t *testing.T) {
	for _, nested := range []bool{false, true} {
		t.Run(fmt.Sprintf("nested=%v", nested), func(t *testing.T) {
			s := newParkSetup(t, nested)
			p := s.lockedPoller(t)
			var stop atomic.Bool
			done := make(chan error, 1)
			go func() { // ping-pong: the next message as soon as the answer is in
				d := s.dealers[0]
				for !stop.Load() {
					if err := d.Send([][]byte{[]byte("m")}, true); err != nil {
						done <- err
						return
					}
					if _, err := d.Recv(nil, true); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			parks0 := p.parks
			var n, gaps int
			last := time.Now()
			var msg [][]byte
			for start := time.Now(); time.Since(start) < time.Second; {
				ready, err := p.Wait(time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if !ready[0] {
					continue
				}
				for {
					var err error
					if msg, err = s.routers[0].Recv(msg, false); errors.Is(err, ErrAgain) {
						break
					} else if err != nil {
						t.Fatal(err)
					}
					if err := s.routers[0].Send(msg, false); err != nil {
						t.Fatal(err)
					}
					now := time.Now()
					if now.Sub(last) >= blockFor-500*time.Microsecond {
						gaps++ // a quiet spell long enough to park in
					}
					last = now
					n++
				}
			}
			parks := p.parks - parks0
			stop.Store(true)
			p.Wait(10 * time.Millisecond) // the last answer
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			t.Logf("%d round trips, %d gaps of ~blockFor or more, %d parks", n, gaps, parks)
			if n < 200 {
				t.Skipf("only %d round trips in 1 s: machine too busy", n)
			}
			if parks > gaps+3 {
				t.Errorf("the poller parked %d times in 1 s of ping-pong (%d round trips, %d quiet spells of blockFor): a signal interrupting its raw wait makes it park", parks, n, gaps)
			}
		})
	}
}

// TestParkKernelStaleLink pins the kernel behaviour the park relies
// on: arming the park set (EPOLL_CTL_MOD) while the set waited on is ready
// does NOT notify an epoll set watching the park set (as Go's poller does,
// edge-triggered) when the park set still holds a ready-list entry for it
// from an earlier armed period that nobody consumed (ep_modify only wakes
// the watchers if the item is not already linked). Only the look that
// lookBlocked makes after the arm (inside RawConn.Read, after its reset)
// catches what arrived before the arm: it is load-bearing.
func TestParkKernelStaleLink(t *testing.T) {
	mk := func() int {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(fd) })
		return fd
	}
	efd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	defer syscall.Close(int(efd))
	w, q, r := mk(), mk(), mk() // the set waited on, the park set, "Go's poller"
	add := func(set, fd int, events uint32) {
		ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
		if err := syscall.EpollCtl(set, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			t.Fatal(err)
		}
	}
	add(w, int(efd), syscall.EPOLLIN)
	add(q, w, 0)
	add(r, q, syscall.EPOLLIN|syscall.EPOLLOUT|syscall.EPOLLRDHUP|1<<31) // EPOLLET
	var ev [4]syscall.EpollEvent
	poll := func(set int) int { n, _ := nbio.Poll(set, ev[:]); return n }
	one := [8]byte{1}
	var buf [8]byte

	// An armed period: a Wake, seen by "Go's poller".
	nbio.Modify(q, w, syscall.EPOLLIN)
	syscall.Write(int(efd), one[:])
	if poll(r) != 1 {
		t.Fatal("armed: the watcher of the park set saw nothing")
	}
	nbio.Modify(q, w, 0) // disarm; q keeps w on its ready list
	syscall.Read(int(efd), buf[:])
	// Between parks: a Wake while the thread is busy, then the arm.
	syscall.Write(int(efd), one[:])
	if poll(r) != 0 {
		t.Fatal("disarmed: the watcher of the park set was woken")
	}
	nbio.Modify(q, w, syscall.EPOLLIN)
	nq, nr := poll(q), poll(r)
	t.Logf("after the arm with the waited-on set ready: park set reports %d, its watcher %d", nq, nr)
	if nq != 1 {
		t.Fatal("the armed park set does not report the ready set")
	}
	if nr != 0 {
		t.Log("this kernel notifies on the arm: the look after the arm is not load-bearing here")
	}
}

// TestParkWaitAfterClose: Wait on a closed blocking poller (its
// sockets settled, so that it must look) fails at once rather than
// blocking, panicking, or arming a park set that is closed.
func TestParkWaitAfterClose(t *testing.T) {
	for _, nested := range []bool{false, true} {
		t.Run(fmt.Sprintf("nested=%v", nested), func(t *testing.T) {
			s := newParkSetup(t, nested)
			p := NewBlockingPoller(s.sockets...).Eager()
			ready, err := p.Wait(0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.drain(ready); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = p.Wait(time.Second)
			if err == nil {
				t.Error("Wait on a closed blocking poller: no error")
			}
			if el := time.Since(start); el > 100*time.Millisecond {
				t.Errorf("Wait on a closed blocking poller took %v", el)
			}
			t.Logf("Wait after Close: %v", err)
		})
	}
}
