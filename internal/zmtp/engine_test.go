package zmtp

import (
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
