package zmtp

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"syscall"
	"testing"
)

// TestOutputBufferIsReused: a connection that sends a big message each
// turn (a worker's batch of replies), while the read path borrows and
// returns smaller spares, allocates no new output buffer once warm.
func TestOutputBufferIsReused(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	defer peer.Close()
	go io.Copy(io.Discard, peer) //nolint:errcheck // ends when the test closes the pair

	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(epfd)
	r := &engine{epfd: epfd, conns: map[int32]*conn{}, opts: Options{SendHWM: 1000}}
	c := &conn{fd: fds[0], state: stateOpen}
	defer syscall.Close(fds[0])
	if err := r.add(c.fd, syscall.EPOLLIN|syscall.EPOLLRDHUP); err != nil {
		t.Fatal(err)
	}
	r.conns[int32(c.fd)] = c

	batch := make([]byte, 130<<10)
	// Small buffers the read path lets go (a connection keeps at most
	// keepIn once drained), made beforehand: only the turn's own
	// allocations count.
	small := make([][]byte, 200)
	for i := range small {
		small[i] = make([]byte, 0, 5<<10)
	}
	turns := 0
	turn := func() {
		in := r.spare(6 << 10) // the read path, holding a message that came in pieces
		if err := r.enqueue(c, [][]byte{batch}); err != nil {
			t.Fatal(err)
		}
		r.Flush()
		for len(c.out) > c.head { // the peer reads; write the rest
			runtime.Gosched()
			r.flushConn(c)
		}
		if c.dead {
			t.Fatal("connection closed")
		}
		r.giveBack(in)
		r.giveBack(small[turns%len(small)])
		turns++
	}
	for range 10 {
		turn()
	}
	if n := testing.AllocsPerRun(100, turn); n > 0 {
		t.Errorf("%.2f allocations a turn once warm; want none", n)
	}
}

// TestOutputMovesWithPendingBytes: a message that does not fit while the
// peer is behind moves the unwritten output to a bigger buffer; the peer
// still gets every byte, in order.
func TestOutputMovesWithPendingBytes(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	peer := os.NewFile(uintptr(fds[1]), "peer")
	defer peer.Close()
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(epfd)
	r := &engine{epfd: epfd, conns: map[int32]*conn{}, opts: Options{SendHWM: 1 << 20}}
	c := &conn{fd: fds[0], state: stateOpen}
	if err := r.add(c.fd, syscall.EPOLLIN|syscall.EPOLLRDHUP); err != nil {
		t.Fatal(err)
	}
	r.conns[int32(c.fd)] = c

	var want []byte
	enqueue := func(i, size int) {
		body := bytes.Repeat([]byte{byte(i)}, size)
		if err := r.enqueue(c, [][]byte{body}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		want = AppendFrame(want, body, false, false)
	}
	// Four messages queued (under flushAt, which writes at once), then a
	// short write, by hand, past the first message but under half the
	// output (which would move the rest to the front).
	for i := range 4 {
		enqueue(i, 15<<10)
	}
	n, err := syscall.Write(c.fd, c.out[:20<<10])
	if err != nil || n != 20<<10 {
		t.Fatalf("write = %d, %v", n, err)
	}
	r.consumed(c, n)
	if c.head != n || c.ehead != 1 {
		t.Fatalf("head %d, ehead %d after a short write of %d; want %d, 1", c.head, c.ehead, n, n)
	}
	i := 4
	pending, size := len(c.out)-c.head, cap(c.out)
	queued := c.queued()
	enqueue(i, size) // cannot fit beside what is pending
	if cap(c.out) <= size {
		t.Fatalf("output buffer of %d bytes not replaced for a message of %d", cap(c.out), size)
	}
	if got, want := len(c.out)-c.head, pending+9+size; got != want {
		t.Fatalf("%d bytes pending after the move; want %d", got, want)
	}
	if c.queued() != queued+1 {
		t.Fatalf("queued() = %d; want %d", c.queued(), queued+1)
	}
	// Writing the rest of the second message, by hand again, leaves one
	// message fewer queued: the ends moved with the bytes.
	rest := len(AppendFrame(AppendFrame(nil, make([]byte, 15<<10), false, false), make([]byte, 15<<10), false, false)) - n
	if m, err := syscall.Write(c.fd, c.out[c.head:c.head+rest]); err != nil || m != rest {
		t.Fatalf("write = %d, %v", m, err)
	}
	r.consumed(c, rest)
	if c.queued() != queued {
		t.Fatalf("queued() = %d after the second message was written; want %d", c.queued(), queued)
	}

	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(want))))
		got <- b
	}()
	for len(c.out) > c.head && !c.dead {
		r.flushConn(c)
		runtime.Gosched()
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the peer got %d bytes differing from the %d sent", len(b), len(want))
	}
	if c.queued() != 0 {
		t.Errorf("queued() = %d once all is written; want 0", c.queued())
	}
}

// TestSmallSpares: the small output buffers a turn gives back (one per
// connection written to, many for a broker with many busy clients) serve
// the next turn's needs without an allocation, and at most maxSmall are
// kept.
func TestSmallSpares(t *testing.T) {
	var r engine
	bufs := make([][]byte, 100)
	for i := range bufs {
		bufs[i] = make([]byte, 0, minOut)
	}
	if n := testing.AllocsPerRun(10, func() {
		for _, b := range bufs {
			r.giveBack(b)
		}
		for i := range bufs {
			bufs[i] = r.spare(100)
		}
	}); n != 0 {
		t.Errorf("%v allocations to take back 100 small buffers given back; want 0", n)
	}
	for range maxSmall + 10 {
		r.giveBack(make([]byte, 0, minOut))
	}
	if len(r.small) != maxSmall || len(r.spares) != 0 {
		t.Errorf("%d small spares and %d others kept; want %d and 0", len(r.small), len(r.spares), maxSmall)
	}
	if b := r.spare(minOut + 1); cap(b) < minOut+1 {
		t.Errorf("spare(%d) took a buffer of %d", minOut+1, cap(b))
	}
}

// TestSpares: a need takes the smallest spare that will do, and a full
// pool keeps a bigger buffer in place of its smallest.
func TestSpares(t *testing.T) {
	var r engine
	r.giveBack(make([]byte, 0, 64<<10))
	r.giveBack(make([]byte, 0, 8<<10))
	if b := r.spare(4 << 10); cap(b) != 8<<10 {
		t.Errorf("spare(4 KiB) took a buffer of %d; want the 8 KiB one", cap(b))
	}
	if b := r.spare(16 << 10); cap(b) != 64<<10 {
		t.Errorf("spare(16 KiB) took a buffer of %d; want the 64 KiB one", cap(b))
	}
	if b := r.spare(1 << 10); cap(b) != 1<<10 || len(r.spares) != 0 {
		t.Errorf("spare with none left: cap %d, %d spares; want a new 1 KiB buffer", cap(b), len(r.spares))
	}

	for i := range maxSpares {
		r.giveBack(make([]byte, 0, (i+1)<<10))
	}
	r.giveBack(make([]byte, 0, 512<<10)) // full: replaces the 1 KiB one
	r.giveBack(make([]byte, 0, 512))     // full, and smaller than all: dropped
	r.giveBack(make([]byte, 0, maxSpare+1))
	smallest, biggest := maxSpare, 0
	for _, b := range r.spares {
		smallest, biggest = min(smallest, cap(b)), max(biggest, cap(b))
	}
	if len(r.spares) != maxSpares || smallest != 2<<10 || biggest != 512<<10 {
		t.Errorf("%d spares from %d to %d bytes; want %d, from 2 KiB to 512 KiB", len(r.spares), smallest, biggest, maxSpares)
	}
}
