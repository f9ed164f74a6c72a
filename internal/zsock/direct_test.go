package zsock

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
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
	r, err := NewNativeRouter(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ep, err := r.Bind("tcp://127.0.0.1:*")
	if err != nil {
		t.Fatal(err)
	}
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
			r, err := NewNativeRouter(Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ep, err := r.Bind("tcp://127.0.0.1:*")
			if err != nil {
				t.Fatal(err)
			}
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
