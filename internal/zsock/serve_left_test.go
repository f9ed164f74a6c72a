package zsock

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domo-framework/domo/internal/zmtp"
)

// TestServePeerCloseBehindData: the peer (a ROUTER written by hand)
// sends its greeting, READY and one message, then its FIN, all before the
// served dealer's next look. The look's read takes the data and leaves the
// EOF, which keeps the connection ready in the level-triggered set but is
// no new readiness for Go's poller: the loop must look again (Pending)
// before it parks, or it never sees the close and never reconnects.
func TestServePeerCloseBehindData(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	conns := make(chan net.Conn, 16)
	waker, _ := NewWaker()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			if accepted.Add(1) > 1 {
				waker.Wake() // the reconnect: the test is done
				continue
			}
			go func() {
				var buf [512]byte
				_, _ = c.Read(buf[:]) // the dealer's greeting (its READY may follow)
				var out []byte
				out = zmtp.AppendGreeting(out)
				out = zmtp.AppendReady(out, zmtp.Property{Name: "Socket-Type", Value: []byte("ROUTER")})
				out = zmtp.AppendFrame(out, []byte("hello"), false, false)
				_, _ = c.Write(out)
				_ = c.(*net.TCPConn).CloseWrite() // FIN right behind the message
			}()
		}
	}()
	defer func() {
		ln.Close()
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	}()

	d := connectedDealer(t, "tcp://"+ln.Addr().String())
	p := NewPoller(d, waker.Socket()).Eager()
	defer p.Close()
	var giveUp atomic.Bool
	got := 0
	done := make(chan error, 1)
	go func() {
		done <- p.Serve(func(ready []bool) (time.Duration, bool) {
			waker.Drain()
			if giveUp.Load() || accepted.Load() > 1 {
				return 0, true
			}
			if ready[0] {
				got += recvAll(t, d)
			}
			// A slow turn: what the peer sends, and its FIN, arrive
			// before the next look.
			time.Sleep(50 * time.Millisecond)
			return -1, false
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		giveUp.Store(true)
		waker.Wake()
		<-done
		t.Fatalf("received %d message(s), but the dealer never saw the peer's close (no reconnect in 3 s, ReconnectIvl 10 ms): the EOF left in the set after the look was never looked at", got)
	}
}

// TestServeAcceptBacklog: more than 64 connections (what one accept call
// takes) wait on a served router's listener at its look. The listener
// stays ready in the level-triggered set, no new readiness for Go's
// poller: the loop must look again (Pending) before it parks, or the
// connections past the 64th (idle clients: nothing else happens in the
// set) are never accepted.
func TestServeAcceptBacklog(t *testing.T) {
	r, ep := boundRouter(t)
	waker, _ := NewWaker()
	p := NewPoller(r, waker.Socket()).Eager()
	defer p.Close()
	var giveUp atomic.Bool
	first := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		turns := 0
		done <- p.Serve(func(ready []bool) (time.Duration, bool) {
			waker.Drain()
			if giveUp.Load() {
				return 0, true
			}
			if turns++; turns == 1 {
				close(first)
				time.Sleep(200 * time.Millisecond) // the clients connect meanwhile
			}
			for {
				if _, err := r.Recv(nil, false); err != nil {
					break
				}
			}
			return -1, false
		})
	}()
	<-first
	const clients = 80
	addr := ep[len("tcp://"):]
	cs := make([]net.Conn, 0, clients)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	greeted := 0
	deadline := time.Now().Add(2 * time.Second)
	for _, c := range cs {
		_ = c.SetReadDeadline(deadline)
		var b [1]byte
		if n, _ := c.Read(b[:]); n == 1 {
			greeted++
		}
	}
	giveUp.Store(true)
	waker.Wake()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if greeted != clients {
		t.Fatalf("%d of %d clients got the router's greeting in 2 s: the connections one accept call left on the listener were never accepted", greeted, clients)
	}
}
