package zmtp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// harness runs a Router's loop in a goroutine of its own, as its owner
// would: wait on Fd, Recv everything, hand each message to onMsg, Flush.
// Work for the loop (do) runs on it between turns.
type harness struct {
	t     *testing.T
	r     *Router
	ep    string
	work  chan func()
	done  chan struct{}
	onMsg func(r *Router, m [][]byte, err error)
}

func newHarness(t *testing.T, opts Options, endpoint string, onMsg func(r *Router, m [][]byte, err error)) *harness {
	t.Helper()
	r, err := NewRouter(opts)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := r.Bind(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, r: r, ep: ep, work: make(chan func()), done: make(chan struct{}), onMsg: onMsg}
	go h.run()
	t.Cleanup(func() {
		close(h.work)
		<-h.done
	})
	return h
}

func (h *harness) run() {
	defer close(h.done)
	defer h.r.Close()
	serve(h.r, h.work, func(m [][]byte, err error) {
		if h.onMsg != nil {
			h.onMsg(h.r, m, err)
		}
	})
}

// serve runs the loop of s as its owner would (wait on Fd, Recv until
// ErrAgain, Flush), handing each message to onMsg and running work between
// turns, until work is closed.
func serve(s interface {
	Fd() int
	Recv([][]byte) ([][]byte, error)
	Flush()
}, work <-chan func(), onMsg func(m [][]byte, err error)) {
	var events [4]syscall.EpollEvent
	var msg [][]byte
	for {
		select {
		case fn, ok := <-work:
			if !ok {
				return
			}
			fn()
		default:
		}
		for {
			var err error
			msg, err = s.Recv(msg)
			if errors.Is(err, ErrAgain) {
				break
			}
			onMsg(msg, err)
		}
		s.Flush()
		_, _ = syscall.EpollWait(s.Fd(), events[:], 2)
	}
}

// do runs fn on the loop and waits for it.
func (h *harness) do(fn func(r *Router)) {
	ran := make(chan struct{})
	h.work <- func() { fn(h.r); close(ran) }
	<-ran
}

// echo sends every message back to its sender.
func echo(r *Router, m [][]byte, err error) {
	if err == nil {
		_ = r.Send(m)
	}
}

func newPeer(t *testing.T, typ zmq.Type, endpoint string, setup func(s *zmq.Socket)) *zmq.Socket {
	t.Helper()
	s, err := zmq.NewSocket(typ)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLinger(0)
	s.SetRcvtimeo(5 * time.Second)
	s.SetSndtimeo(5 * time.Second)
	if setup != nil {
		setup(s)
	}
	if err := s.Connect(endpoint); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func recvFrames(t *testing.T, s *zmq.Socket) []string {
	t.Helper()
	m, err := s.RecvMessage(0)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return m
}

func TestEchoWithLibzmqDealer(t *testing.T) {
	var got [][]byte
	seen := make(chan struct{}, 1)
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", func(r *Router, m [][]byte, err error) {
		if err != nil {
			t.Errorf("recv: %v", err)
		}
		got = m
		seen <- struct{}{}
		_ = r.Send(m)
	})
	d := newPeer(t, zmq.DEALER, h.ep, func(s *zmq.Socket) { s.SetIdentity("dealer-1") })
	if _, err := d.SendMessage("MDPC01", "", "hello"); err != nil {
		t.Fatal(err)
	}
	<-seen
	want := []string{"dealer-1", "MDPC01", "", "hello"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("router got %q, want %q", got, want)
	}
	if m := recvFrames(t, d); strings.Join(m, "|") != "MDPC01||hello" {
		t.Errorf("dealer got %q", m)
	}
}

func TestGeneratedRoutingIDs(t *testing.T) {
	ids := make(chan string, 2)
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", func(r *Router, m [][]byte, err error) {
		ids <- string(m[0])
		_ = r.Send(m)
	})
	a := newPeer(t, zmq.DEALER, h.ep, nil)
	b := newPeer(t, zmq.DEALER, h.ep, nil)
	a.SendMessage("a")
	b.SendMessage("b")
	x, y := <-ids, <-ids
	for _, id := range []string{x, y} {
		if len(id) != 5 || id[0] != 0 {
			t.Errorf("generated id %x: want 5 bytes starting with a zero byte, as libzmq's", id)
		}
	}
	if x == y {
		t.Errorf("two peers got the same id %x", x)
	}
	if m := recvFrames(t, a); m[0] != "a" {
		t.Errorf("a got %q", m)
	}
	if m := recvFrames(t, b); m[0] != "b" {
		t.Errorf("b got %q", m)
	}
}

func TestREQPeer(t *testing.T) {
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", func(r *Router, m [][]byte, err error) {
		// A REQ peer's request is [id, "", body]; the reply keeps the delimiter.
		_ = r.Send([][]byte{m[0], nil, append([]byte("re: "), m[2]...)})
	})
	q := newPeer(t, zmq.REQ, h.ep, nil)
	for i := range 3 {
		if _, err := q.Send(fmt.Sprint("ping ", i), 0); err != nil {
			t.Fatal(err)
		}
		got, err := q.Recv(0)
		if err != nil || got != fmt.Sprint("re: ping ", i) {
			t.Fatalf("REQ got %q, %v", got, err)
		}
	}
}

func TestLargeAndManyMessages(t *testing.T) {
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", echo)
	d := newPeer(t, zmq.DEALER, h.ep, nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	sizes := []int{0, 1, 255, 256, 4096, 65535, 65536, 200000, len(big)}
	for _, n := range sizes {
		if _, err := d.SendBytes([]byte("size"), zmq.SNDMORE); err != nil {
			t.Fatal(err)
		}
		if _, err := d.SendBytes(big[:n], 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range sizes {
		m, err := d.RecvMessageBytes(0)
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 2 || !bytes.Equal(m[1], big[:n]) {
			t.Fatalf("echo of %d bytes came back as %d frames, last %d bytes", n, len(m), len(m[len(m)-1]))
		}
	}
	// Pipelined: many messages in flight, in order. (One goroutine: a
	// libzmq socket must not be used by two at once.)
	const count, window = 20000, 500
	for i := range count + window {
		if i < count {
			if _, err := d.SendMessage(fmt.Sprint(i), "x"); err != nil {
				t.Fatal(err)
			}
		}
		if j := i - window; j >= 0 {
			if m := recvFrames(t, d); m[0] != fmt.Sprint(j) {
				t.Fatalf("message %d came back as %q", j, m[0])
			}
		}
	}
}

func TestIPC(t *testing.T) {
	ep := "ipc://" + filepath.Join(t.TempDir(), "router.sock")
	h := newHarness(t, Options{}, ep, echo)
	if h.ep != ep {
		t.Errorf("bound %s, want %s", h.ep, ep)
	}
	d := newPeer(t, zmq.DEALER, ep, nil)
	d.SendMessage("over", "ipc")
	if m := recvFrames(t, d); strings.Join(m, " ") != "over ipc" {
		t.Errorf("got %q", m)
	}
}

func TestUnroutable(t *testing.T) {
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", nil)
	h.do(func(r *Router) {
		if err := r.Send([][]byte{[]byte("nobody"), []byte("x")}); !errors.Is(err, ErrUnroutable) {
			t.Errorf("send to an unknown peer: %v, want ErrUnroutable", err)
		}
	})
}

// A peer that heartbeats (ZMTP PING) is answered, so libzmq keeps its
// connection: the router sees one connection, never a reconnect.
func TestPingIsAnswered(t *testing.T) {
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", echo)
	d := newPeer(t, zmq.DEALER, h.ep, func(s *zmq.Socket) {
		s.SetHeartbeatIvl(20 * time.Millisecond)
		s.SetHeartbeatTimeout(300 * time.Millisecond) // generous: a loaded machine is slow to answer
		s.SetIdentity("beating")
	})
	d.SendMessage("first")
	recvFrames(t, d)
	time.Sleep(800 * time.Millisecond) // 40 heartbeats, over two timeouts
	d.SendMessage("second")
	recvFrames(t, d)
	h.do(func(r *Router) {
		if len(r.conns) != 1 {
			t.Errorf("%d connections: the peer reconnected, so its PINGs went unanswered", len(r.conns))
		}
	})
}

func TestDuplicateIdentityIsRefused(t *testing.T) {
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", echo)
	a := newPeer(t, zmq.DEALER, h.ep, func(s *zmq.Socket) { s.SetIdentity("same") })
	a.SendMessage("a")
	recvFrames(t, a)
	b := newPeer(t, zmq.DEALER, h.ep, func(s *zmq.Socket) { s.SetIdentity("same"); s.SetRcvtimeo(300 * time.Millisecond) })
	b.SendMessage("b")
	if m, err := b.RecvMessage(0); err == nil {
		t.Errorf("second peer with the same identity got %q", m)
	}
	a.SendMessage("a again")
	if m := recvFrames(t, a); m[0] != "a again" {
		t.Errorf("first peer got %q", m)
	}
}

// rawConn dials the router over plain TCP.
func rawConn(t *testing.T, ep string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ep, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByRouter reads until the router closes c, and fails if it does not
// within a few seconds.
func closedByRouter(t *testing.T, c net.Conn, why string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			if errors.Is(err, syscall.ECONNRESET) || err.Error() == "EOF" || strings.Contains(err.Error(), "reset") {
				return
			}
			t.Fatalf("%s: connection not closed by the router: %v", why, err)
		}
	}
}

func handshake(t *testing.T, c net.Conn, identity string) {
	t.Helper()
	out := AppendGreeting(nil)
	props := []Property{{"Socket-Type", []byte("DEALER")}}
	if identity != "" {
		props = append(props, Property{"Identity", []byte(identity)})
	}
	out = AppendReady(out, props...)
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
}

func TestBadPeersAreClosed(t *testing.T) {
	h := newHarness(t, Options{MaxFrameSize: 1000, HandshakeTimeout: 300 * time.Millisecond}, "tcp://127.0.0.1:*", echo)
	greeting := func(edit func(g []byte)) []byte {
		g := AppendGreeting(nil)
		edit(g)
		return g
	}
	cases := []struct {
		name string
		send []byte
	}{
		{"HTTP instead of ZMTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"ZMTP 2.0", greeting(func(g []byte) { g[10] = 1 })},
		{"CURVE", greeting(func(g []byte) { copy(g[12:32], "CURVE\x00\x00") })},
		{"a message before READY", append(AppendGreeting(nil), AppendFrame(nil, []byte("data"), false, false)...)},
		{"PUB peer", AppendReady(AppendGreeting(nil), Property{"Socket-Type", []byte("PUB")})},
		{"no Socket-Type", AppendReady(AppendGreeting(nil))},
		{"READY with a property overrunning it", append(AppendGreeting(nil), AppendCommand(nil, "READY", []byte{11, 'S', 'o', 'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e', 0, 0, 1, 0})...)},
		{"reserved flag bits", append(AppendReady(AppendGreeting(nil), Property{"Socket-Type", []byte("DEALER")}), 0x80, 1, 'x')},
		{"frame over the limit", append(AppendReady(AppendGreeting(nil), Property{"Socket-Type", []byte("DEALER")}), 0x02, 0, 0, 0, 0, 0, 0, 0x10, 0)},
		{"a message of too many frames", manyFrames(maxWireFrames+1, 0)},
		{"a message over the limit in small frames", manyFrames(20, 100)},
		{"a frame of 2^61 bytes", append(AppendReady(AppendGreeting(nil), Property{"Socket-Type", []byte("DEALER")}), 0x02, 0x20, 0, 0, 0, 0, 0, 0, 0, 'x')},
		{"ERROR", AppendCommand(AppendReady(AppendGreeting(nil), Property{"Socket-Type", []byte("DEALER")}), "ERROR", []byte("\x03bye"))},
		{"silence after connecting", nil},
		{"half a greeting", AppendGreeting(nil)[:20]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rawConn(t, h.ep)
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			closedByRouter(t, c, tc.name)
		})
	}
	// With no limit set, the default one holds.
	unlimited := newHarness(t, Options{}, "tcp://127.0.0.1:*", echo)
	c := rawConn(t, unlimited.ep)
	c.Write(append(AppendReady(AppendGreeting(nil), Property{"Socket-Type", []byte("DEALER")}), 0x02, 0x20, 0, 0, 0, 0, 0, 0, 0, 'x'))
	closedByRouter(t, c, "a frame of 2^61 bytes, no limit set")
	// And the router still serves a good peer.
	d := newPeer(t, zmq.DEALER, h.ep, nil)
	d.SendMessage("still", "here")
	if m := recvFrames(t, d); strings.Join(m, " ") != "still here" {
		t.Errorf("got %q", m)
	}
	h.do(func(r *Router) {
		if r.shaking != 0 || len(r.conns) != 1 {
			t.Errorf("after the bad peers: %d connections, %d in handshake; want 1, 0", len(r.conns), r.shaking)
		}
	})
}

// manyFrames is a handshake and then n frames of size bytes, all with
// MORE set.
func manyFrames(n, size int) []byte {
	b := AppendReady(AppendGreeting(nil), Property{"Socket-Type", []byte("DEALER")})
	for range n {
		b = AppendFrame(b, make([]byte, size), true, false)
	}
	return b
}

// libzmq sends PING and PONG when its timer says, even between the frames
// of a message: the message arrives whole and the PING is answered.
func TestCommandInsideAMessage(t *testing.T) {
	got := make(chan [][]byte, 1)
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", func(r *Router, m [][]byte, err error) { got <- m })
	c := rawConn(t, h.ep)
	out := AppendReady(AppendGreeting(nil), Property{"Socket-Type", []byte("DEALER")}, Property{"Identity", []byte("p")})
	out = AppendFrame(out, []byte("first"), true, false)
	out = AppendCommand(out, "PING", []byte{0, 0}, []byte("ctx"))
	out = AppendFrame(out, []byte("last"), false, false)
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if fmt.Sprintf("%q", m) != `["p" "first" "last"]` {
			t.Errorf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	// The router's greeting, READY, then the PONG with the PING's context.
	want := AppendCommand(AppendReady(AppendGreeting(nil), Property{"Socket-Type", []byte("ROUTER")}), "PONG", []byte("ctx"))
	buf := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, want) {
		t.Fatalf("read %q, %v; want %q", buf, err, want)
	}
}

// A libzmq peer heartbeating often while it sends messages of several
// frames bigger than its output batch (8 KiB): its PINGs come between
// frames, and every message must still arrive on the one connection.
func TestLibzmqHeartbeatsAmongFrames(t *testing.T) {
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", echo)
	d := newPeer(t, zmq.DEALER, h.ep, func(s *zmq.Socket) {
		s.SetHeartbeatIvl(time.Millisecond)
		s.SetHeartbeatTimeout(time.Second)
	})
	part := strings.Repeat("p", 3000)
	const count, window = 2000, 100
	for i := range count + window {
		if i < count {
			if _, err := d.SendMessage(fmt.Sprint(i), part, part, part, part); err != nil {
				t.Fatal(err)
			}
		}
		if j := i - window; j >= 0 {
			if m := recvFrames(t, d); m[0] != fmt.Sprint(j) || len(m) != 5 {
				t.Fatalf("message %d came back as %d frames, first %q", j, len(m), m[0])
			}
		}
	}
	h.do(func(r *Router) {
		if len(r.conns) != 1 {
			t.Errorf("%d connections: the router dropped the heartbeating peer", len(r.conns))
		}
	})
}

// A peer that sends PINGs and never reads gets at most one PONG queued.
func TestPingFloodIsBounded(t *testing.T) {
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", nil)
	c := rawConn(t, h.ep)
	handshake(t, c, "flood")
	ping := AppendCommand(nil, "PING", []byte{0, 0}, bytes.Repeat([]byte("c"), 16))
	burst := bytes.Repeat(ping, 4096)
	for range 200 { // 21 MB of PINGs, far more PONG than the socket buffers hold
		if _, err := c.Write(burst); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	h.do(func(r *Router) {
		for _, cn := range r.conns {
			if len(cn.out) > 1<<20 {
				t.Errorf("%d bytes of PONG queued for a peer that does not read", len(cn.out))
			}
		}
	})
}

// A peer that stops reading gets SendHWM messages queued, then ErrAgain;
// nothing blocks, and when it reads again it gets them all.
func TestSendHWM(t *testing.T) {
	h := newHarness(t, Options{SendHWM: 8}, "tcp://127.0.0.1:*", nil)
	c := rawConn(t, h.ep)
	handshake(t, c, "slow")
	// Wait for the peer to be known.
	for deadline := time.Now().Add(5 * time.Second); ; {
		known := false
		h.do(func(r *Router) { _, known = r.byID["slow"] })
		if known {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("peer never finished its handshake")
		}
		time.Sleep(5 * time.Millisecond)
	}
	body := bytes.Repeat([]byte{'x'}, 256<<10)
	sent := 0
	for range 200 {
		var err error
		h.do(func(r *Router) {
			err = r.Send([][]byte{[]byte("slow"), body})
			r.Flush()
		})
		if errors.Is(err, ErrAgain) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sent++
	}
	if sent == 200 {
		t.Fatal("a peer that does not read took 200 messages of 256 KiB without ErrAgain")
	}
	// Read the greeting, READY and every message sent.
	want := GreetingSize + len(AppendReady(nil, Property{"Socket-Type", []byte("ROUTER")})) + sent*(9+len(body))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1<<20)
	got := 0
	for got < want {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read %d of %d bytes: %v", got, want, err)
		}
		got += n
	}
	t.Logf("%d messages of 256 KiB queued before ErrAgain", sent)
}

func TestParseTCP(t *testing.T) {
	for ep, want := range map[string]string{
		"tcp://127.0.0.1:5555": "127.0.0.1:5555",
		"tcp://*:5555":         "0.0.0.0:5555",
		"tcp://127.0.0.1:*":    "127.0.0.1:0",
		"tcp://[::1]:7":        "[::1]:7",
		"tcp://localhost:9":    "",
	} {
		got, err := ParseTCP(ep)
		if err != nil {
			t.Errorf("%s: %v", ep, err)
			continue
		}
		if want != "" && got.String() != want {
			t.Errorf("%s: %s, want %s", ep, got, want)
		}
	}
	for _, ep := range []string{"tcp://127.0.0.1", "tcp://127.0.0.1:99999", "tcp://no.such.host.invalid:1"} {
		if _, err := ParseTCP(ep); err == nil {
			t.Errorf("%s: no error", ep)
		}
	}
	r, err := NewRouter(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Bind("inproc://x"); err == nil {
		t.Error("inproc bound")
	}
}

// A big incoming message is read into a buffer of the connection's own,
// which goes back to the spares once the message is whole, for the next
// big message (of any connection) instead of a new allocation each.
func TestBigMessageBuffersAreReused(t *testing.T) {
	got := make(chan int, 10)
	h := newHarness(t, Options{}, "tcp://127.0.0.1:*", func(r *Router, m [][]byte, err error) { got <- len(m[1]) })
	d := newPeer(t, zmq.DEALER, h.ep, nil)
	body := bytes.Repeat([]byte("b"), 200<<10)
	for range 3 {
		if _, err := d.SendBytes(body, 0); err != nil {
			t.Fatal(err)
		}
		if n := <-got; n != len(body) {
			t.Fatalf("got %d bytes", n)
		}
	}
	h.do(func(r *Router) {
		big := 0
		for _, b := range r.spares {
			if cap(b) >= len(body) {
				big++
			}
		}
		if big == 0 {
			t.Errorf("no spare buffer of %d bytes after three such messages: each took a new one", len(body))
		}
	})
}
