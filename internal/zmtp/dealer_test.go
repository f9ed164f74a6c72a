package zmtp

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// dealerLoop runs a Dealer's loop as its owner would and hands each
// message to got; do runs work on it.
type dealerLoop struct {
	d    *Dealer
	work chan func()
	done chan struct{}
	got  chan []string
}

func runDealer(t *testing.T, opts DealerOptions, endpoint string) *dealerLoop {
	t.Helper()
	d, err := NewDealer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Connect(endpoint); err != nil {
		t.Fatal(err)
	}
	l := &dealerLoop{d: d, work: make(chan func()), done: make(chan struct{}), got: make(chan []string, 100)}
	go func() {
		defer close(l.done)
		defer d.Close()
		serve(d, l.work, func(msg [][]byte, err error) {
			if err != nil {
				return
			}
			var m []string
			for _, f := range msg {
				m = append(m, string(f))
			}
			l.got <- m
		})
	}()
	t.Cleanup(func() { close(l.work); <-l.done })
	return l
}

func (l *dealerLoop) do(fn func(d *Dealer)) {
	ran := make(chan struct{})
	l.work <- func() { fn(l.d); close(ran) }
	<-ran
}

// send sends once the connection is up, failing the test after 5 s.
func (l *dealerLoop) send(t *testing.T, frames ...string) {
	t.Helper()
	var fs [][]byte
	for _, f := range frames {
		fs = append(fs, []byte(f))
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var err error
		l.do(func(d *Dealer) { err = d.Send(fs) })
		if err == nil {
			return
		}
		if !errors.Is(err, ErrAgain) || time.Now().After(deadline) {
			t.Fatalf("send: %v", err)
		}
	}
}

func (l *dealerLoop) recv(t *testing.T) []string {
	t.Helper()
	select {
	case m := <-l.got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("dealer received nothing in 5 s")
		return nil
	}
}

func TestDealerWithLibzmqRouter(t *testing.T) {
	r, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetLinger(0)
	r.SetRcvtimeo(5 * time.Second)
	if err := r.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	ep, _ := r.GetLastEndpoint()
	l := runDealer(t, DealerOptions{Identity: "native-dealer"}, ep)
	var early error
	l.do(func(d *Dealer) { early = d.Send([][]byte{[]byte("x")}) })
	if !errors.Is(early, ErrAgain) && early != nil {
		t.Errorf("send before connecting: %v, want ErrAgain or (if already up) nil", early)
	}
	l.send(t, "MDPW01", "\x01", "tea")
	m, err := r.RecvMessage(0)
	if err != nil {
		t.Fatal(err)
	}
	if early == nil {
		m2, _ := r.RecvMessage(0)
		m = m2
	}
	if strings.Join(m, "|") != "native-dealer|MDPW01|\x01|tea" {
		t.Fatalf("router got %q", m)
	}
	big := strings.Repeat("z", 300000)
	if _, err := r.SendMessage("native-dealer", "reply", big); err != nil {
		t.Fatal(err)
	}
	if got := l.recv(t); len(got) != 2 || got[0] != "reply" || got[1] != big {
		t.Fatalf("dealer got %d frames", len(got))
	}
}

// The dealer connects again when its router goes away and comes back on
// the same endpoint, and again until one is there.
func TestDealerReconnects(t *testing.T) {
	r, err := NewRouter(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := r.Bind("tcp://127.0.0.1:*")
	if err != nil {
		t.Fatal(err)
	}
	echo := func(r *Router, stop chan func()) chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			serve(r, stop, func(m [][]byte, err error) { _ = r.Send(m) })
		}()
		return done
	}
	stop := make(chan func())
	done := echo(r, stop)
	// By host name, which the dealer resolves again before each reconnect.
	named := strings.Replace(ep, "127.0.0.1", "localhost", 1)
	l := runDealer(t, DealerOptions{ReconnectIvl: 20 * time.Millisecond, ReconnectIvlMax: 80 * time.Millisecond}, named)
	l.do(func(d *Dealer) {
		if d.named != named {
			t.Errorf("dealer does not take %s for a name to resolve again", named)
		}
	})
	l.send(t, "one")
	if m := l.recv(t); m[0] != "one" {
		t.Fatalf("got %q", m)
	}
	close(stop)
	<-done
	r.Close()
	time.Sleep(300 * time.Millisecond) // a few failed connects, backing off
	var up bool
	l.do(func(d *Dealer) { up = d.Connected() })
	if up {
		t.Fatal("dealer says connected with no router")
	}
	r2, err := NewRouter(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Bind(ep); err != nil {
		t.Fatal(err)
	}
	stop2 := make(chan func())
	done2 := echo(r2, stop2)
	defer func() { close(stop2); <-done2; r2.Close() }()
	l.send(t, "two")
	if m := l.recv(t); m[0] != "two" {
		t.Fatalf("got %q", m)
	}
}

// A router that completes the handshake and then never answers PING is
// taken for dead: the dealer closes the connection and makes another.
func TestDealerHeartbeatTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write(AppendReady(AppendGreeting(nil), Property{"Socket-Type", []byte("ROUTER")}))
			accepted <- c // and never read or write again
		}
	}()
	runDealer(t, DealerOptions{HeartbeatIvl: 30 * time.Millisecond, HeartbeatTimeout: 60 * time.Millisecond, ReconnectIvl: 10 * time.Millisecond}, "tcp://"+ln.Addr().String())
	for i := range 2 {
		select {
		case c := <-accepted:
			defer c.Close()
		case <-time.After(5 * time.Second):
			t.Fatalf("connection %d never came: the silent router was not dropped", i+1)
		}
	}
}

// With a router that answers PING (a native one), the connection lasts.
func TestDealerHeartbeatAnswered(t *testing.T) {
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", echo)
	l := runDealer(t, DealerOptions{HeartbeatIvl: 20 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond}, h.ep)
	l.send(t, "a")
	l.recv(t)
	time.Sleep(800 * time.Millisecond) // 40 heartbeats, over two timeouts
	l.send(t, "b")
	l.recv(t)
	h.do(func(r *Router) {
		if len(r.conns) != 1 {
			t.Errorf("%d connections: the dealer reconnected although its PINGs were answered", len(r.conns))
		}
	})
}

func TestDealerEndpoints(t *testing.T) {
	d, err := NewDealer(DealerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, ep := range []string{"inproc://x", "tcp://*:5555", "tcp://127.0.0.1:*", "tcp://127.0.0.1"} {
		if err := d.Connect(ep); err == nil {
			t.Errorf("%s: connected", ep)
		}
	}
	if err := d.Connect(fmt.Sprintf("ipc://%s/x.sock", t.TempDir())); err != nil {
		t.Error(err)
	}
	if err := d.Connect("tcp://127.0.0.1:1"); err == nil {
		t.Error("a second endpoint was taken")
	}
}

// After Close, Send and Flush touch no descriptor (their numbers may
// already belong to someone else).
func TestSendAfterClose(t *testing.T) {
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", echo)
	d, err := NewDealer(DealerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Connect(h.ep); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !d.Connected(); {
		var events [4]syscall.EpollEvent
		syscall.EpollWait(d.Fd(), events[:], 10)
		d.Recv(nil)
		d.Flush()
		if time.Now().After(deadline) {
			t.Fatal("never connected")
		}
	}
	if err := d.Send([][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := d.Send([][]byte{[]byte("y")}); !errors.Is(err, ErrAgain) {
		t.Errorf("Send after Close: %v, want ErrAgain", err)
	}
	d.Flush()
	if d.Connected() {
		t.Error("connected after Close")
	}
}
