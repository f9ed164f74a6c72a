package zmtp

import (
	"errors"
	"fmt"
	"math"
	"syscall"
	"time"

	"github.com/domo-framework/domo/internal/nbio"
)

// Errors the callers of Router and Dealer branch on.
var (
	// ErrAgain: Recv found no message, or Send found the peer's queue full
	// (or, for a Dealer, no connection up).
	ErrAgain = errors.New("zmtp: resource temporarily unavailable")
	// ErrUnroutable: Send named a peer that is not connected.
	ErrUnroutable = errors.New("zmtp: peer not connected")
	// ErrTooManyFrames: a received message had more than MaxFrames frames;
	// the frames returned are its first ones.
	ErrTooManyFrames = errors.New("zmtp: too many frames")
)

// engine is what a Router and a Dealer share: an epoll set of non-blocking
// connections, read into one buffer and parsed into messages on the
// owner's goroutine, and output gathered per connection and written once
// a turn (Flush).
type engine struct {
	opts     Options
	h        hooks
	epfd     int
	conns    map[int32]*conn
	rbuf     []byte
	events   [64]syscall.EpollEvent
	dirty    []*conn  // connections with output to write at Flush
	spares   [][]byte // output buffers no connection holds
	small    [][]byte // the smallest of them (minOut bytes or less), a stack
	frames   []Frame  // scratch: the frames of the message being parsed
	cmds     [][]byte // scratch: commands among them
	queue    []received
	qhead    int
	sizes    []int // the frame sizes of queued messages, in order
	shaking  int   // connections not yet open
	looks    int   // looks at the epoll set since the last Flush
	lookFull bool  // the last look filled events
	// left: the last look left a descriptor ready that no new event will
	// announce (a read that filled its buffer, a close behind the data
	// read, connections past what one accept takes).
	left bool
	// nextSweep is when Flush next looks for handshakes overdue.
	nextSweep time.Time
	shut      bool
	// withID: messages received start with the peer's routing id (a Router).
	withID bool
	// watched is a descriptor of the owner's in the epoll set (Watch), -1
	// if none; watchedReady says it was reported ready since LookWait.
	watched      int32
	watchedReady bool
}

// hooks are where a Router and a Dealer differ.
type hooks interface {
	// event handles a ready descriptor that is not a connection.
	event(ev syscall.EpollEvent)
	// opened admits a peer whose READY says m, or refuses it.
	opened(c *conn, m Metadata) error
	// gone forgets a connection that closed.
	gone(c *conn)
}

func newEngine(opts Options, h hooks, withID bool) (engine, error) {
	if opts.SendHWM <= 0 {
		opts.SendHWM = 1000
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 30 * time.Second
	}
	if opts.MaxFrameSize <= 0 {
		opts.MaxFrameSize = DefaultMaxFrameSize
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return engine{}, fmt.Errorf("zmtp: epoll_create: %w", err)
	}
	return engine{opts: opts, h: h, withID: withID, epfd: epfd, conns: make(map[int32]*conn), rbuf: make([]byte, readSize), watched: -1}, nil
}

// open starts a connection on fd, which the engine now owns, and sends
// this side's greeting and READY.
func (r *engine) open(fd int, props ...Property) (*conn, error) {
	// Like libzmq: small messages go out at once. It fails on ipc.
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if err := r.add(fd, syscall.EPOLLIN|syscall.EPOLLRDHUP); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	c := &conn{fd: fd, born: time.Now()}
	r.conns[int32(fd)] = c
	r.shaking++
	// NULL has nothing to wait for: the READY goes with the greeting.
	r.makeRoom(c, GreetingSize+256)
	c.out = AppendGreeting(c.out)
	c.out = AppendReady(c.out, props...)
	r.markDirty(c)
	r.flushConn(c)
	return c, nil
}

// enqueue queues frames as one message for c.
func (r *engine) enqueue(c *conn, frames [][]byte) error {
	if (c.queued() >= r.opts.SendHWM || len(c.out)-c.head >= flushAt) && !c.pollOut {
		r.flushConn(c) // much queued this turn: write it now, not at Flush
		if c.dead {
			return ErrUnroutable
		}
	}
	if c.queued() >= r.opts.SendHWM {
		return ErrAgain
	}
	r.makeRoom(c, messageSize(frames))
	last := len(frames) - 1
	for i, f := range frames {
		c.out = AppendFrame(c.out, f, i < last, false)
	}
	c.ends = append(c.ends, len(c.out))
	r.markDirty(c)
	return nil
}

// closeAll closes every connection, after writing what the peers have
// room for.
func (r *engine) closeAll() error {
	if r.shut {
		return nil
	}
	r.shut = true
	for _, c := range r.dirty {
		if !c.dead {
			r.flushConn(c)
		}
	}
	for _, c := range r.conns {
		syscall.Close(c.fd)
		c.dead = true // a later Send or Flush must not touch the descriptor
	}
	clear(r.conns)
	clear(r.dirty)
	r.dirty = r.dirty[:0]
	return syscall.Close(r.epfd)
}

// DefaultMaxFrameSize bounds frames and messages when Options does not:
// libzmq's default is no bound, but a peer's frame header alone must not
// decide how much memory the process sets aside.
const DefaultMaxFrameSize = 256 << 20

// maxWireFrames is the most frames a message may have on the wire; a
// peer sending more is disconnected. (Recv keeps MaxFrames of them.)
const maxWireFrames = 4 * MaxFrames

// MaxFrames is the most frames of one message Recv returns (a Router's
// routing id included), as libzmq through domo's zsock does.
const MaxFrames = 256

// Options tune a Router or a Dealer. Zero fields take the defaults.
type Options struct {
	// MaxFrameSize: a peer sending a bigger frame, or a message bigger in
	// all, is disconnected; default DefaultMaxFrameSize.
	MaxFrameSize int64
	// SendHWM is the most messages queued for a peer that is not reading
	// before Send refuses more (ErrAgain); default 1000, libzmq's.
	SendHWM int
	// HandshakeTimeout closes a connection that has not finished its
	// greeting and READY in time; default 30 s, libzmq's.
	HandshakeTimeout time.Duration
}

// readSize is the engine's read buffer: one read takes up to this much
// from one connection.
const readSize = 64 << 10

// flushAt is how much output Send lets a connection gather before it
// writes without waiting for Flush.
const flushAt = 64 << 10

// keepIn is the largest input buffer a connection keeps once drained; its
// output buffer goes back to the router's spares (at most maxSpares, each
// at most maxSpare bytes; and at most maxSmall of minOut bytes or less, in
// a stack of their own), so an idle connection holds none.
const (
	keepIn    = 4 << 10
	maxSpares = 16
	maxSpare  = 1 << 20
	maxSmall  = 1024
)

type received struct {
	buf     []byte
	first   int // its first frame's size in Router.sizes
	nframes int
	tooMany bool
}

type connState uint8

const (
	stateGreeting connState = iota
	stateReady
	stateOpen
)

// queued is how many messages c has not written yet.
func (c *conn) queued() int { return len(c.ends) - c.ehead }

type conn struct {
	fd      int
	state   connState
	id      string
	partial []byte // input not yet parsed: an incomplete frame or message
	need    int    // bytes partial must hold before parsing can go on
	out     []byte // output; out[head:] is not written yet
	head    int
	ends    []int // where each queued message ends in out; ends[ehead:] are not written yet
	ehead   int
	dirty   bool
	pollOut bool // EPOLLOUT is in the connection's events
	born    time.Time
	dead    bool
	heard   bool // read something since a Dealer last sent PING
}

// Fd is the epoll set: readable when Recv (or Look, LookWait) has
// something to do, or the watched descriptor (Watch) is readable.
func (r *engine) Fd() int { return r.epfd }

func (r *engine) add(fd int, events uint32) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
	if err := syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("zmtp: epoll_ctl: %w", err)
	}
	return nil
}

// Recv returns the next message (a Router's starts with the peer's routing
// id), appending its frames to dst[:0]; they share one buffer the caller
// owns. It returns ErrAgain when no message is waiting.
func (r *engine) Recv(dst [][]byte) ([][]byte, error) {
	dst = dst[:0]
	for r.qhead == len(r.queue) {
		// One look at the epoll set a turn (between Flushes) sees every
		// descriptor ready at that moment, unless the look came back full:
		// what became ready since makes Fd readable again (level-triggered),
		// so the owner's next wait returns at once, and a second look here,
		// a system call, would mostly find nothing.
		if r.looks >= 8 || (r.looks > 0 && !r.lookFull) {
			return dst, ErrAgain
		}
		if n, _ := r.look(0); n == 0 {
			return dst, ErrAgain
		}
	}
	m := &r.queue[r.qhead]
	r.qhead++
	off := 0
	for _, size := range r.sizes[m.first : m.first+m.nframes] {
		dst = append(dst, m.buf[off:off+size:off+size])
		off += size
	}
	tooMany := m.tooMany
	*m = received{}
	if tooMany {
		return dst, ErrTooManyFrames
	}
	return dst, nil
}

// Look handles what the epoll set reports ready now, as Recv does when
// its queue runs out, and reports whether anything was (a message may be
// waiting, or the owner's next Flush has something to write). It counts as
// the turn's look for Recv. A poller that waits on Fd calls it instead of
// looking at Fd itself: one system call where there were two, and an
// empty answer means the set's ready list was empty (or the set is
// closed), so Fd becomes readable (a new edge for Go's poller) when
// anything arrives.
func (r *engine) Look() bool {
	if r.qhead < len(r.queue) {
		return true
	}
	n, _ := r.look(0)
	return n > 0
}

// Pending reports whether the epoll set may hold something ready that the
// last look left: messages not received, descriptors past a full look, a
// connection with more than its read took or a close behind it, or
// connections past what one accept takes. Fd does not become readable
// again for those (a level-triggered set puts back what it reported, but
// tells no one waiting on the set itself): a waiter on Fd that parks
// without a look must look first when Pending says so.
func (r *engine) Pending() bool {
	return r.qhead < len(r.queue) || r.lookFull || r.left
}

// Watch adds fd, a descriptor of the owner's, to the epoll set (for
// input): LookWait reports it ready. A blocking poller watches its eventfd
// so, and waits on this set alone. One descriptor at most, until Unwatch.
func (r *engine) Watch(fd int) error {
	if r.watched >= 0 {
		return errors.New("zmtp: a descriptor is watched already")
	}
	if err := r.add(fd, syscall.EPOLLIN); err != nil {
		return err
	}
	r.watched = int32(fd)
	return nil
}

// Unwatch takes fd, if it is the watched descriptor, out of the epoll set
// (before its owner closes it: its number may be reused).
func (r *engine) Unwatch(fd int) {
	if r.watched < 0 || int(r.watched) != fd {
		return
	}
	_ = syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	r.watched, r.watchedReady = -1, false
}

// LookWait is Look, but waits up to timeout (forever if negative; ms
// granularity, rounded up) for something to be ready. It reports whether
// anything but the watched descriptor was (or a message waits), and
// whether the watched descriptor was; an error is epoll_wait's (the socket
// is closed), never EINTR.
func (r *engine) LookWait(timeout time.Duration) (others, watched bool, err error) {
	if r.qhead < len(r.queue) {
		return true, false, nil
	}
	ms := -1
	if timeout >= 0 {
		ms = int(min((timeout+time.Millisecond-1)/time.Millisecond, math.MaxInt32))
	}
	n, err := r.look(ms)
	if err != nil {
		return false, false, err
	}
	others = n > 1 || (n == 1 && !r.watchedReady)
	return others, r.watchedReady, nil
}

// look is the turn's next look at the epoll set, its queue empty: it waits
// up to ms milliseconds (-1: until something is ready; see nbio.Wait for
// which waits keep the thread's P), handles what is ready, and returns how many
// descriptors were. An error is epoll_wait's, never EINTR (nothing ready).
func (r *engine) look(ms int) (int, error) {
	r.queue, r.qhead, r.sizes = r.queue[:0], 0, r.sizes[:0]
	n, errno := nbio.Wait(r.epfd, r.events[:], ms)
	if errno != 0 && errno != syscall.EINTR {
		return 0, fmt.Errorf("zmtp: epoll_wait: %w", errno)
	}
	r.looks++
	r.lookFull = n == len(r.events)
	r.left = false
	r.watchedReady = false
	r.handle(r.events[:n])
	return n, nil
}

// handle handles ready descriptors, as the epoll set reported them.
func (r *engine) handle(events []syscall.EpollEvent) {
	for _, ev := range events {
		if ev.Fd == r.watched && r.watched >= 0 {
			r.watchedReady = true
			continue
		}
		c, ok := r.conns[ev.Fd]
		if !ok {
			r.h.event(ev)
			continue
		}
		if ev.Events&syscall.EPOLLOUT != 0 {
			r.flushConn(c)
		}
		if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR|syscall.EPOLLRDHUP) != 0 && !c.dead {
			r.read(c)
			if ev.Events&(syscall.EPOLLHUP|syscall.EPOLLERR|syscall.EPOLLRDHUP) != 0 && !c.dead {
				r.left = true // the close is behind the data read: the next read finds it
			}
		}
	}
}

// read reads what c has and parses it.
func (r *engine) read(c *conn) {
	buf := r.rbuf
	own := len(c.partial) > 0 && c.need > len(r.rbuf)/2
	if own {
		// A big message on its way: read into c's own buffer, grown to hold it.
		// Grown as the bytes arrive (at most doubling), not to what the
		// frame header claims: a peer must send what it announces.
		if want := min(c.need, 2*len(c.partial)+readSize) + readSize/4; cap(c.partial) < want {
			grown := append(r.spare(want), c.partial...)
			r.giveBack(c.partial)
			c.partial = grown
		}
		buf = c.partial[:cap(c.partial)]
	} else if len(c.partial) > 0 {
		copy(buf, c.partial)
	}
	have := len(c.partial)
	n, errno := nbio.Read(c.fd, buf[have:])
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
		return
	case errno != 0 || n == 0:
		r.closeConn(c) // the peer closed, or the connection broke
		return
	}
	c.heard = true
	if have+n == len(buf) {
		r.left = true
	}
	data := buf[:have+n]
	used, err := r.parse(c, data)
	if err != nil {
		r.closeConn(c)
		return
	}
	rest := data[used:]
	switch {
	case len(rest) == 0:
		if cap(c.partial) > keepIn {
			r.giveBack(c.partial)
			c.partial = nil
		}
		c.partial, c.need = c.partial[:0], 0
	case own:
		c.partial = buf[:copy(buf, rest)]
	default:
		c.partial = append(c.partial[:0], rest...)
	}
}

// parse parses data for c and returns how many bytes it used; the rest is
// an incomplete frame or message, of which c.need says how much is needed.
func (r *engine) parse(c *conn, data []byte) (int, error) {
	used := 0
	for used < len(data) {
		switch c.state {
		case stateGreeting:
			g := data[used:]
			if err := CheckSignature(g); err != nil {
				return 0, err
			}
			if len(g) < GreetingSize {
				c.need = GreetingSize
				return used, nil
			}
			if err := CheckGreeting(g); err != nil {
				return 0, err
			}
			used += GreetingSize
			c.state = stateReady
		case stateReady:
			f, n, need, err := ParseFrame(data[used:], 1<<16)
			if err != nil {
				return 0, err
			}
			if n == 0 {
				c.need = need
				return used, nil
			}
			if err := r.ready(c, f); err != nil {
				return 0, err
			}
			used += n
		default:
			n, need, err := r.parseMessage(c, data[used:])
			if err != nil {
				return 0, err
			}
			if n == 0 {
				c.need = need
				return used, nil
			}
			used += n
		}
	}
	c.need = 0
	return used, nil
}

// ready handles c's first command, which must be READY.
func (r *engine) ready(c *conn, f Frame) error {
	if !f.Command {
		return ErrNotReady
	}
	name, data, err := ParseCommand(f.Body)
	if err != nil {
		return err
	}
	if name == cmdError {
		return ErrPeerError
	}
	if name != cmdReady {
		return fmt.Errorf("%w: %q before READY", ErrNotReady, name)
	}
	m, err := ParseMetadata(data)
	if err != nil {
		return err
	}
	if err := r.h.opened(c, m); err != nil {
		return err
	}
	c.state = stateOpen
	r.shaking--
	return nil
}

// parseMessage parses one message, or one command, at the start of data.
// It returns the bytes used, or 0 and the bytes needed if data holds only
// part of it.
func (r *engine) parseMessage(c *conn, data []byte) (int, int, error) {
	r.frames, r.cmds = r.frames[:0], r.cmds[:0]
	at, total := 0, len(c.id)
	for {
		f, n, need, err := ParseFrame(data[at:], r.opts.MaxFrameSize)
		if err != nil {
			return 0, 0, err
		}
		if n == 0 {
			return 0, at + need, nil
		}
		at += n
		if f.Command {
			if len(r.frames) == 0 {
				return at, 0, r.command(c, f.Body)
			}
			// libzmq sends a PING or PONG when its timer says, even between
			// the frames of a message; it is handled once the message is
			// whole (this scan is repeated while it is not).
			r.cmds = append(r.cmds, f.Body)
			continue
		}
		r.frames = append(r.frames, f)
		if len(r.frames) > maxWireFrames {
			return 0, 0, fmt.Errorf("%w: more than %d frames in a message", ErrFrameTooBig, maxWireFrames)
		}
		if r.opts.MaxFrameSize > 0 && int64(at) > r.opts.MaxFrameSize {
			// A message of many frames each within the limit is bound by
			// it too, or a peer could hold the loop re-scanning them.
			return 0, 0, fmt.Errorf("%w: message over %d bytes", ErrFrameTooBig, r.opts.MaxFrameSize)
		}
		if !f.More {
			break
		}
	}
	for _, cmd := range r.cmds {
		if err := r.command(c, cmd); err != nil {
			return 0, 0, err
		}
	}
	ids := 0
	if r.withID {
		ids = 1
	}
	kept := r.frames[:min(len(r.frames), MaxFrames-ids)]
	for _, f := range kept {
		total += len(f.Body)
	}
	buf := make([]byte, total)
	off := copy(buf, c.id)
	first := len(r.sizes)
	if r.withID {
		r.sizes = append(r.sizes, len(c.id))
	}
	for _, f := range kept {
		off += copy(buf[off:], f.Body)
		r.sizes = append(r.sizes, len(f.Body))
	}
	r.queue = append(r.queue, received{buf: buf, first: first, nframes: ids + len(kept), tooMany: len(kept) < len(r.frames)})
	return at, 0, nil
}

// command handles a command on an open connection.
func (r *engine) command(c *conn, body []byte) error {
	name, data, err := ParseCommand(body)
	if err != nil {
		return err
	}
	switch name {
	case cmdPing:
		if len(data) < 2 {
			return fmt.Errorf("%w: short PING", ErrCommand)
		}
		ctx := data[2:]
		if len(ctx) > 16 {
			ctx = ctx[:16]
		}
		if c.pollOut {
			break // the peer is not reading: one PONG would do, none is lost
		}
		r.makeRoom(c, 32)
		c.out = AppendCommand(c.out, cmdPong, ctx)
		r.markDirty(c)
	case cmdError:
		return ErrPeerError
	}
	return nil // PONG, and commands a ROUTER has no use for
}

// spare returns an empty buffer of at least n bytes' capacity: a spare
// if one is big enough, else a new one. Big messages (a batch of requests
// is up to 32 bodies) would otherwise cost an allocation, its zeroing and,
// in time, the runtime's returning it to the kernel, each.
//
// It takes the smallest spare that will do, so that a small need does not
// take the buffer a big one will want.
func (r *engine) spare(n int) []byte {
	if k := len(r.small); k > 0 && n <= cap(r.small[k-1]) {
		b := r.small[k-1]
		r.small[k-1] = nil
		r.small = r.small[:k-1]
		return b[:0]
	}
	best := -1
	for i, b := range r.spares {
		if cap(b) >= n && (best < 0 || cap(b) < cap(r.spares[best])) {
			best = i
		}
	}
	if best < 0 {
		return make([]byte, 0, n)
	}
	b := r.spares[best]
	last := len(r.spares) - 1
	r.spares[best], r.spares[last] = r.spares[last], nil
	r.spares = r.spares[:last]
	return b[:0]
}

// giveBack keeps b as a spare if it is worth keeping: while there is room,
// or in place of a smaller spare. The smallest (a connection's first
// output buffer, minOut) have a stack of their own, with room for the many
// a turn of a broker with many busy clients gives back and takes again: in
// the pool of 16 most were dropped and made again at the next turn.
func (r *engine) giveBack(b []byte) {
	if cap(b) == 0 || cap(b) > maxSpare {
		return
	}
	if cap(b) <= minOut {
		if len(r.small) < maxSmall {
			r.small = append(r.small, b[:0])
		}
		return
	}
	if len(r.spares) < maxSpares {
		r.spares = append(r.spares, b[:0])
		return
	}
	small := 0
	for i, s := range r.spares {
		if cap(s) < cap(r.spares[small]) {
			small = i
		}
	}
	if cap(r.spares[small]) < cap(b) {
		r.spares[small] = b[:0]
	}
}

// makeRoom makes c's output buffer able to take n more bytes without
// growing: what is written already goes, and a buffer too small is
// replaced by a spare, or a new one of twice the size, and given back.
// Left to append, a buffer that fills each turn (a worker's batches of
// replies) grew by a fresh allocation every few sends, and the runtime
// spent a tenth of the process's CPU handing the garbage back to the
// kernel.
func (r *engine) makeRoom(c *conn, n int) {
	pending := len(c.out) - c.head
	if cap(c.out)-len(c.out) >= n {
		return
	}
	if c.head > 0 && cap(c.out)-pending >= n && pending <= cap(c.out)/2 {
		r.compact(c)
		return
	}
	grown := append(r.spare(max(pending+n, 2*cap(c.out), minOut)), c.out[c.head:]...)
	r.giveBack(c.out)
	c.out = grown
	c.rebase()
}

// minOut is the smallest output buffer a connection is given: a few small
// messages. Not more: a broker's heartbeat sweep gives a buffer to each of
// thousands of idle connections at once.
const minOut = 512

// messageSize is how many bytes frames take on the wire.
func messageSize(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += 9 + len(f) // a long frame's header is 9 bytes, a short one's 2
	}
	return n
}

func (r *engine) markDirty(c *conn) {
	if !c.dirty {
		c.dirty = true
		r.dirty = append(r.dirty, c)
	}
}

// Flush writes what Send queued, one write a connection; what a peer has
// no room for is written when the epoll set says it has. It also closes
// connections whose handshake is overdue, and starts a new turn for Recv.
func (r *engine) Flush() {
	r.looks = 0 // a new turn
	for i, c := range r.dirty {
		c.dirty = false
		if !c.dead {
			r.flushConn(c)
		}
		r.dirty[i] = nil
	}
	r.dirty = r.dirty[:0]
	if r.shaking > 0 {
		r.sweepHandshakes()
	}
}

func (r *engine) flushConn(c *conn) {
	if len(c.out) > c.head {
		n, errno := nbio.Write(c.fd, c.out[c.head:])
		switch {
		case errno == syscall.EAGAIN || errno == syscall.EINTR:
			n = 0
		case errno != 0:
			r.closeConn(c)
			return
		}
		r.consumed(c, n)
	}
	want := len(c.out) > c.head
	if want != c.pollOut {
		events := uint32(syscall.EPOLLIN | syscall.EPOLLRDHUP)
		if want {
			events |= syscall.EPOLLOUT
		}
		ev := syscall.EpollEvent{Events: events, Fd: int32(c.fd)}
		if err := syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
			r.closeConn(c)
			return
		}
		c.pollOut = want
	}
}

// consumed marks n more bytes of c's output written. The rest moves to
// the front of the buffer only once it is less than half of it, so a peer
// taking a little at a time costs no copy of everything behind each write.
func (r *engine) consumed(c *conn, n int) {
	c.head += n
	for c.ehead < len(c.ends) && c.ends[c.ehead] <= c.head {
		c.ehead++
	}
	switch {
	case c.head == len(c.out):
		r.giveBack(c.out)
		c.out, c.head, c.ends, c.ehead = nil, 0, c.ends[:0], 0
	case c.head > len(c.out)/2:
		r.compact(c)
	}
}

// compact moves c's unwritten output to the front of its buffer.
func (r *engine) compact(c *conn) {
	c.out = c.out[:copy(c.out, c.out[c.head:])]
	c.rebase()
}

// rebase accounts for c's unwritten output having moved to the front of
// c.out: the ends of messages written go, the others move back by head.
func (c *conn) rebase() {
	c.ends = c.ends[:copy(c.ends, c.ends[c.ehead:])]
	for i := range c.ends {
		c.ends[i] -= c.head
	}
	c.head, c.ehead = 0, 0
}

func (r *engine) sweepHandshakes() {
	now := time.Now()
	if now.Before(r.nextSweep) {
		return
	}
	r.nextSweep = now.Add(time.Second)
	for _, c := range r.conns {
		if c.state != stateOpen && now.Sub(c.born) > r.opts.HandshakeTimeout {
			r.closeConn(c)
		}
	}
}

func (r *engine) closeConn(c *conn) {
	if c.dead {
		return
	}
	c.dead = true
	_ = syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	syscall.Close(c.fd)
	delete(r.conns, int32(c.fd))
	if c.state != stateOpen {
		r.shaking--
	}
	r.h.gone(c)
	c.out, c.partial, c.ends, c.head, c.ehead = nil, nil, nil, 0, 0
}
