package zsock

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/domo-framework/domo/internal/nbio"
	zmq "github.com/pebbe/zmq4"
)

// Poller waits until one of its sockets has a message, parking the calling
// goroutine in Go's network poller rather than blocking an OS thread in
// zmq_poll (NewBlockingPoller's block one in epoll_wait instead).
//
// Each libzmq socket exposes a file descriptor (ZMQ_FD) that becomes
// readable when the socket's state may have changed; ZMQ_EVENTS then says
// whether a message is waiting (an Eager poller leaves that to the
// receive), and reading it resets the descriptor. The
// poller puts those descriptors in an epoll set of its own and hands that
// set to the Go runtime as one pollable file: a goroutine waiting on it
// costs no thread, and a Waker wakes it with a goroutine hand-off (an
// expired read deadline) instead of a message through a socket pair. With
// a dozen socket loops in a process (a client, workers, a broker), this is
// the difference between OS thread switches and goroutine switches on every
// request.
//
// A native socket (NewNativeRouter, NewNativeDealer) has an epoll set of its
// own (its connections, listeners, timer). With other sockets it is nested
// in the poller's set. When it is the poller's only socket besides Wakers,
// the poller is direct: it waits on the socket's set itself and looks at it
// through the socket (Look, LookWait), one epoll_wait a turn instead of two;
// a direct blocking poller adds its eventfd to the socket's set (Watch).
//
// A Poller is owned by one goroutine, like its sockets.
type Poller struct {
	sockets  []*Socket
	ready    []bool
	signaled []bool   // ready in the last look at the epoll set (or, direct, the socket's Look)
	fds      []int32  // each socket's ZMQ_FD or nested set in the epoll set; -1 for a Waker's, and all -1 when direct
	eager    bool     // Eager: ready means "may be readable"
	epfd     int      // a blocking poller's epoll set, when not direct; -1 otherwise
	file     *os.File // the set the goroutine parks on (direct: a copy of the socket's; blocking: the park set), registered with Go's poller
	raw      syscall.RawConn
	events   [8]syscall.EpollEvent
	err      error // from construction, returned by Wait
	wakefd   int   // a blocking poller's eventfd, in the epoll set (direct: in the socket's), that interrupt writes to; -1 if not blocking
	parkfd   int   // a blocking poller's park set (file's descriptor); -1 if not blocking
	parks    int   // how many times a blocking poller parked (for tests)
	parkErr  error // lookBlocked's error

	// lookParked, lookBlocked and serveTurns as funcs, made once: a method
	// value made at each wait would be allocated at each wait.
	lookParkedFunc, lookBlockedFunc, serveTurnsFunc func(uintptr) bool
	direct                                          int // the one native socket a direct poller waits on (see init); -1 if not direct

	// parked: the loop may be parked on file, or about to be; a Waker
	// interrupts a parking poller only then (see interrupt).
	parked atomic.Bool

	// Serve's state, for serveTurns.
	turn     func(ready []bool) (time.Duration, bool)
	wakeAt   time.Time // when the last turn asked to run again; zero: never
	armed    time.Time // the file's read deadline; zero: none
	stopped  bool      // the last turn returned stop
	serveErr error
	begun    int // waits Serve began (for tests)
}

// NewPoller returns a poller over the given sockets, each watched for input.
// A Waker's Socket may be among them. Close releases it.
func NewPoller(sockets ...*Socket) *Poller {
	return newPoller(sockets, false)
}

// NewBlockingPoller returns a poller whose Wait blocks its OS thread in
// epoll_wait instead of parking the goroutine in Go's poller; a Waker
// wakes it through an eventfd in its epoll set.
//
// Parking costs more in the scheduler than the wait itself when the loop
// waits many times a second and little each time: the runtime's poller
// thread must notice the file, ready the goroutine and wake a thread to
// run it, while a thread blocked in epoll_wait just returns (figures in
// docs/benchmarks.md, "Low load"). It costs an OS thread for as long as
// the loop runs, and the thread keeps its P (Go's right to run code) while
// it waits, which starves other goroutines where they need every P: it
// suits the one busy loop of a process that has little else to run (the
// broker of domo broker), not one per client. A wait that finds nothing
// for blockFor (5 ms) parks the goroutine after all, so that a quiet
// process is idle to the runtime too.
func NewBlockingPoller(sockets ...*Socket) *Poller {
	return newPoller(sockets, true)
}

func newPoller(sockets []*Socket, blocking bool) *Poller {
	p := &Poller{sockets: sockets, ready: make([]bool, len(sockets)), signaled: make([]bool, len(sockets)),
		fds: make([]int32, len(sockets)), epfd: -1, wakefd: -1, parkfd: -1, direct: -1}
	for i := range p.fds {
		p.fds[i] = -1
	}
	p.lookParkedFunc, p.lookBlockedFunc, p.serveTurnsFunc = p.lookParked, p.lookBlocked, p.serveTurns
	p.err = p.init(blocking)
	return p
}

func (p *Poller) init(blocking bool) error {
	if i := directSocket(p.sockets); i >= 0 {
		if blocking {
			return p.initDirectBlocking(i)
		}
		return p.initDirect(i)
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("zsock: epoll_create: %w", err)
	}
	p.epfd = epfd
	for i, s := range p.sockets {
		if s.waker != nil {
			continue
		}
		var fd int
		if s.native != nil {
			fd = s.native.Fd() // its epoll set, nested in this one
		} else if fd, err = s.s.GetFd(); err != nil {
			return fmt.Errorf("zsock: ZMQ_FD: %w", err)
		}
		p.fds[i] = int32(fd)
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return fmt.Errorf("zsock: epoll_ctl: %w", err)
		}
	}
	if blocking {
		fd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if errno != 0 {
			return fmt.Errorf("zsock: eventfd: %w", errno)
		}
		p.wakefd = int(fd)
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wakefd, &ev); err != nil {
			return fmt.Errorf("zsock: epoll_ctl: %w", err)
		}
		return p.initParkSet()
	}
	p.epfd = -1
	return p.park(epfd) // the file owns epfd from here
}

// dupFd returns a copy of descriptor fd (close-on-exec).
func dupFd(fd int) (int, error) {
	dup, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return -1, fmt.Errorf("zsock: dup: %w", errno)
	}
	return int(dup), nil
}

// park hands epoll set fd to Go's poller as p's file (which closes it), and
// attaches p's Wakers.
func (p *Poller) park(fd int) error {
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("zsock: epoll nonblock: %w", err)
	}
	p.file = os.NewFile(uintptr(fd), "zsock-poller")
	var err error
	if p.raw, err = p.file.SyscallConn(); err != nil {
		return fmt.Errorf("zsock: poller: %w", err)
	}
	// An arbitrary past deadline must interrupt a wait, which only works on
	// a file the runtime polls.
	if err := p.file.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("zsock: poller is not pollable: %w", err)
	}
	p.attachWakers()
	return nil
}

// directSocket returns the index of the one native socket among sockets
// when all the others are Wakers (a client's or a worker's loop with one
// broker), else -1.
func directSocket(sockets []*Socket) int {
	i := -1
	for j, s := range sockets {
		switch {
		case s.waker != nil:
		case s.native != nil && i < 0:
			i = j
		default:
			return -1
		}
	}
	return i
}

// initDirect makes p wait on native socket i's own epoll set, handed to Go's
// poller (a duplicate of its descriptor, which p closes), rather than on a
// set of its own holding that set: before it parks, p has the socket look
// at its set (Look), which is the look Recv would make anyway. A turn then
// costs one epoll_wait instead of two, and a wake-up one instead of three.
func (p *Poller) initDirect(i int) error {
	fd, err := dupFd(p.sockets[i].native.Fd())
	if err != nil {
		return err
	}
	p.direct = i
	return p.park(fd)
}

// initDirectBlocking makes blocking poller p wait in native socket i's own
// epoll set (LookWait), with p's eventfd added to that set (Watch), rather
// than in a set of its own holding both: one epoll_wait a turn instead of
// two.
func (p *Poller) initDirectBlocking(i int) error {
	fd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return fmt.Errorf("zsock: eventfd: %w", errno)
	}
	p.wakefd = int(fd)
	if err := p.sockets[i].native.Watch(p.wakefd); err != nil {
		return fmt.Errorf("zsock: %w", err)
	}
	p.direct = i
	return p.initParkSet()
}

// initParkSet gives blocking poller p the set its goroutine parks on when
// the loop is quiet (see block): a set of its own, registered with Go's
// poller, holding the set p's thread waits on, disarmed (no EPOLLIN; the
// kernel keeps EPOLLERR|EPOLLHUP, which an epoll set never reports) but
// while p parks. It is made while the set waited on holds few descriptors:
// adding one epoll set to another costs a walk of everything in it. (While
// nested there, each descriptor added to the set waited on costs the
// kernel a check of the paths it joins: a little more for each connection
// accepted.)
func (p *Poller) initParkSet() error {
	q, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("zsock: epoll_create: %w", err)
	}
	ev := syscall.EpollEvent{Fd: int32(p.waitSet())}
	if err := syscall.EpollCtl(q, syscall.EPOLL_CTL_ADD, p.waitSet(), &ev); err != nil {
		syscall.Close(q)
		return fmt.Errorf("zsock: epoll_ctl: %w", err)
	}
	p.parkfd = q
	return p.park(q)
}

// attachWakers comes last in init: Wake may use p from then on.
func (p *Poller) attachWakers() {
	for _, s := range p.sockets {
		if s.waker != nil {
			s.waker.attach(p)
		}
	}
}

// Eager makes p report a socket ready when it may be readable (a call may
// have changed it, or its ZMQ_FD fired) without asking ZMQ_EVENTS, which
// costs two system calls inside libzmq each time. The caller must then
// receive from every ready socket without waiting until ErrAgain: that
// receive finds out at the cost ZMQ_EVENTS would have had, and settles the
// socket. The loops of the broker, the client and the worker drain their
// sockets so; a caller that receives one message per Wait must not use it.
// It returns p.
func (p *Poller) Eager() *Poller {
	p.eager = true
	return p
}

// Close releases the poller. Its sockets stay open. Closing a nil Poller
// does nothing.
func (p *Poller) Close() error {
	if p == nil {
		return nil
	}
	for _, s := range p.sockets {
		if s.waker != nil {
			s.waker.detach(p)
		}
	}
	if p.wakefd >= 0 {
		if p.direct >= 0 { // in the socket's set: out before its number is free again
			p.sockets[p.direct].native.Unwatch(p.wakefd)
		}
		syscall.Close(p.wakefd)
		p.wakefd = -1
	}
	var err error
	if p.file != nil {
		err = p.file.Close()
	}
	if p.epfd >= 0 {
		err = errors.Join(err, syscall.Close(p.epfd))
	}
	p.file, p.epfd = nil, -1
	return err
}

// interrupt makes a current or the next wait look at its sockets again.
// A parking poller needs it only while parked (or about to park): a loop
// that runs looks at its Wakers before it parks (Wait, serveTurns), so a
// Wake then costs its caller nothing more than the flag.
func (p *Poller) interrupt() {
	if p.wakefd >= 0 {
		one := [8]byte{1} // an eventfd adds the 8-byte count written: any count but 0 wakes it
		_, _ = syscall.Write(p.wakefd, one[:])
		return
	}
	if p.file != nil && p.parked.Load() {
		_ = p.file.SetReadDeadline(pastDeadline)
	}
}

var pastDeadline = time.Unix(1, 0)

// check fills p.ready and reports whether any socket is ready. It asks
// ZMQ_EVENTS only of sockets that are not settled or were signaled.
func (p *Poller) check() (bool, error) {
	any := false
	for i, s := range p.sockets {
		switch {
		case s.waker != nil:
			p.ready[i] = s.waker.pending.Load()
		case s.settled && !p.signaled[i]:
			p.ready[i] = false
		case p.eager, s.native != nil:
			p.ready[i] = true
		default:
			ev, err := s.s.GetEvents() // also resets the socket's ZMQ_FD
			if err != nil {
				return false, fmt.Errorf("zsock: ZMQ_EVENTS: %w", mapErr(err))
			}
			p.ready[i] = ev&zmq.POLLIN != 0
			s.settled = !p.ready[i]
		}
		any = any || p.ready[i]
	}
	clear(p.signaled)
	return any, nil
}

// signal marks the sockets whose ZMQ_FD the epoll set reported readable.
func (p *Poller) signal(events []syscall.EpollEvent) {
	for _, ev := range events {
		for i, fd := range p.fds {
			if fd == ev.Fd {
				p.signaled[i] = true
			}
		}
	}
}

// Wait blocks for up to timeout (forever if negative) until a socket is
// readable, and returns, per socket in the order given to NewPoller, whether
// it is. The slice is reused by the next call. The calling goroutine is
// parked, not its thread, unless p is a blocking poller.
func (p *Poller) Wait(timeout time.Duration) ([]bool, error) {
	if p.err != nil {
		return nil, p.err
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for _, s := range p.sockets {
		if s.native != nil {
			s.native.Flush() // what the loop's turn sent
		}
	}
	for {
		if any, err := p.check(); any || err != nil {
			return p.ready, err
		}
		if timeout >= 0 && !time.Now().Before(deadline) {
			return p.ready, nil
		}
		if p.wakefd >= 0 {
			if err := p.block(deadline, timeout >= 0); err != nil {
				return nil, err
			}
			continue
		}
		// Arm the deadline, then say the loop parks, before the last look
		// at the Wakers: a Wake after that look sets a past deadline that
		// this one cannot overwrite (the Waker's flag and parked are both
		// sequentially consistent: either the Wake sees parked, or the
		// look sees the Wake).
		if err := p.file.SetReadDeadline(deadline); err != nil {
			return nil, fmt.Errorf("zsock: poller deadline: %w", err)
		}
		p.parked.Store(true)
		if p.wakerPending() {
			p.parked.Store(false)
			continue
		}
		err := p.raw.Read(p.lookParkedFunc)
		p.parked.Store(false)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("zsock: poll: %w", err)
		}
	}
}

// Serve runs turn, the loop's work, until it returns stop: at once, then
// each time a socket may be readable or a Waker woke p, and when the
// timeout the last turn returned (forever if negative) has passed. turn
// gets the readiness Wait would have returned, and may find nothing ready
// (a timeout, a wake-up for nothing). An error is the wait's; turn is not
// called again.
//
// A direct parking poller (a client's or worker's loop with one broker)
// runs the turns from inside its wait on the socket's set (the callback of
// the file's RawConn.Read), which is what makes Serve cheaper than Wait in
// a loop: Wait must look at the set before each park, since beginning a
// wait on the file forgets a readiness Go's poller saw before, while a turn
// run inside the wait parks again without that look (anything that
// arrived during the turn is still a readiness of this wait; what the
// last look left, the socket's Pending, is looked at first). A turn that
// sent a request and parks for its reply saves one epoll_wait, and a Wake
// while the loop runs saves its caller and the loop a deadline change
// each. turn must not close p (Close waits for the wait to end): it
// returns stop, and its caller rebuilds the poller once Serve returned.
// Other pollers wait with Wait between turns.
func (p *Poller) Serve(turn func(ready []bool) (timeout time.Duration, stop bool)) error {
	if p.err != nil {
		return p.err
	}
	if p.direct < 0 || p.wakefd >= 0 {
		timeout := time.Duration(0)
		for {
			ready, err := p.Wait(timeout)
			if err != nil {
				return err
			}
			var stop bool
			if timeout, stop = turn(ready); stop {
				return nil
			}
		}
	}
	p.turn, p.stopped, p.serveErr, p.wakeAt = turn, false, nil, time.Time{}
	defer func() { p.turn = nil }()
	for {
		// A wait begins with a look and a turn (RawConn.Read calls back at
		// once): at first, and after a wait ended on its deadline (the
		// turn's timeout, or a Wake's past deadline). A deadline passed
		// already would end it before that (Read fails at once), so it
		// begins with none, and the turn arms the next.
		p.sockets[p.direct].native.Flush()
		p.armed = p.wakeAt
		if !p.armed.After(time.Now()) {
			p.armed = time.Time{}
		}
		if err := p.file.SetReadDeadline(p.armed); err != nil {
			return fmt.Errorf("zsock: poller deadline: %w", err)
		}
		p.begun++
		err := p.raw.Read(p.serveTurnsFunc)
		p.parked.Store(false)
		switch {
		case p.serveErr != nil:
			return p.serveErr
		case p.stopped:
			return nil
		case err != nil && !errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("zsock: poll: %w", err)
		}
	}
}

// serveTurns is Serve's callback for a direct parking poller's file,
// called when its wait begins and each time Go's poller finds the file
// readable: it looks at the socket's set, and runs turns until none is
// due, then reports false (park again) or true (Serve ends).
func (p *Poller) serveTurns(uintptr) bool {
	p.parked.Store(false)
	native := p.sockets[p.direct].native
	look := true
	for {
		if look {
			p.lookDirect()
		}
		_, _ = p.check() // a native socket's and a Waker's readiness cannot fail
		timeout, stop := p.turn(p.ready)
		if stop {
			p.stopped = true
			return true
		}
		native.Flush()
		if timeout == 0 {
			look = true
			continue
		}
		p.wakeAt = time.Time{}
		if timeout > 0 {
			now := time.Now()
			p.wakeAt = now.Add(timeout)
			// Moved earlier only (or when it passed): a deadline that comes
			// too early ends the wait, and Serve begins the next with this
			// turn's wakeAt. A turn's timeout is mostly later than the
			// last one's, by about the time between them.
			if p.armed.IsZero() || p.wakeAt.Before(p.armed) || !now.Before(p.armed) {
				if err := p.file.SetReadDeadline(p.wakeAt); err != nil {
					p.serveErr = fmt.Errorf("zsock: poller deadline: %w", err)
					return true
				}
				p.armed = p.wakeAt
			}
		}
		// What the last look left ready (a connection with more than a
		// read took) makes no new readiness: look before parking.
		if native.Pending() && p.lookDirect() {
			look = false
			continue
		}
		p.parked.Store(true) // before the look at the Wakers: see Wait
		if !p.wakerPending() {
			return false
		}
		// A Waker is pending: turn again. What arrived since the look
		// makes the file readable for the next park, so that turn need not
		// look, but the one after does: a loop woken at every turn would
		// otherwise never read its socket.
		p.parked.Store(false)
		look = !look
	}
}

// blockFor is how long a blocking poller's thread waits in epoll_wait
// before it parks the goroutine in Go's poller instead (nbio.MaxRawWait:
// the wait is a raw system call). A loop that waits that long is not busy:
// parked, it leaves the runtime with every P idle, so sysmon sleeps rather
// than waking every 20 µs..10 ms to take back the P of a thread blocked in
// a system call, which was a third of an idle broker's CPU.
const blockFor = nbio.MaxRawWait * time.Millisecond

// lookParked is a parking poller's look at its file, fd, before it parks
// and each time Go's poller finds the file readable: it reports whether a
// socket is ready.
func (p *Poller) lookParked(fd uintptr) bool {
	if p.direct >= 0 {
		// An empty look leaves the socket's set with nothing ready:
		// anything that arrives after it makes the set readable.
		return p.lookDirect()
	}
	n, errno := nbio.Poll(int(fd), p.events[:])
	if n > 0 {
		p.signal(p.events[:n])
	}
	return n > 0 || (errno != 0 && errno != syscall.EINTR)
}

// lookDirect is a direct parking poller's look at its socket's set, which
// marks the socket signaled if anything was ready.
func (p *Poller) lookDirect() bool {
	if p.sockets[p.direct].native.Look() {
		p.signaled[p.direct] = true
		return true
	}
	return false
}

// lookBlocked is a blocking poller's look at the set its thread waits on
// while its goroutine is parked on the park set (see block); an error is
// kept in p.parkErr.
func (p *Poller) lookBlocked(uintptr) bool {
	// An empty look leaves the set with nothing ready: anything that
	// arrives after it (the eventfd of a Wake among them) makes the
	// set readable. The first look, after the arm, is not redundant with
	// block's last: arming a park set whose ready list still holds the
	// set from an earlier park tells Go's poller nothing, so what arrived
	// since that last look is seen here or not at all.
	got, err := p.look(0)
	p.parkErr = err
	return got || err != nil
}

// block waits until a socket is ready or a Waker wakes p, or until deadline
// (if timed): blockFor in epoll_wait (direct: in the socket's set, through
// LookWait), then parked in Go's poller.
func (p *Poller) block(deadline time.Time, timed bool) error {
	if p.wakerPending() {
		return nil
	}
	// Raw waits until blockFor has passed with nothing: a signal (Go's
	// preemption, every 10 ms of a loop that never parks) ends one early
	// with nothing, which is not a quiet loop.
	start := time.Now()
	for now := start; now.Sub(start) < blockFor; now = time.Now() {
		if timed && !now.Before(deadline) {
			return nil
		}
		wait := blockFor - now.Sub(start)
		if timed {
			wait = min(wait, deadline.Sub(now))
		}
		if got, err := p.look(wait); got || err != nil {
			return err
		}
	}
	if timed && !time.Now().Before(deadline) {
		return nil
	}
	// Parked, on the park set, armed for this wait only: armed for good, it
	// would wake the runtime's poller thread each time the set became ready
	// while this thread waited on it itself.
	if errno := nbio.Modify(p.parkfd, p.waitSet(), syscall.EPOLLIN); errno != 0 {
		return fmt.Errorf("zsock: arm: %w", errno)
	}
	defer nbio.Modify(p.parkfd, p.waitSet(), 0)
	p.parks++
	if err := p.file.SetReadDeadline(deadline); err != nil { // the zero time if untimed: none
		return fmt.Errorf("zsock: poller deadline: %w", err)
	}
	p.parkErr = nil
	err := p.raw.Read(p.lookBlockedFunc)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("zsock: poll: %w", err)
	}
	return p.parkErr
}

// waitSet is the epoll set a blocking poller's thread waits on.
func (p *Poller) waitSet() int {
	if p.direct >= 0 {
		return p.sockets[p.direct].native.Fd()
	}
	return p.epfd
}

// look is a blocking poller's look at the set it waits on, waiting up to
// wait: it marks the sockets signaled, resets the eventfd if it fired, and
// reports whether anything was ready.
func (p *Poller) look(wait time.Duration) (bool, error) {
	ms := int((wait + time.Millisecond - 1) / time.Millisecond)
	if p.direct >= 0 {
		others, woke, err := p.sockets[p.direct].native.LookWait(wait)
		if err != nil {
			return false, fmt.Errorf("zsock: poll: %w", err)
		}
		if woke {
			p.resetWake()
		}
		if others {
			p.signaled[p.direct] = true
		}
		return others || woke, nil
	}
	n, errno := nbio.Wait(p.epfd, p.events[:], ms)
	if errno != 0 && errno != syscall.EINTR {
		return false, fmt.Errorf("zsock: poll: %w", errno)
	}
	for _, ev := range p.events[:n] {
		if int(ev.Fd) == p.wakefd {
			p.resetWake()
		}
	}
	p.signal(p.events[:n])
	return n > 0, nil
}

// resetWake reads the eventfd's count, so that it is not readable until the
// next Wake; the Waker's flag says what happened.
func (p *Poller) resetWake() {
	var count [8]byte
	_, _ = nbio.Read(p.wakefd, count[:])
}

func (p *Poller) wakerPending() bool {
	for _, s := range p.sockets {
		if s.waker != nil && s.waker.pending.Load() {
			return true
		}
	}
	return false
}

// Waker wakes the goroutine that owns a socket loop from any other
// goroutine. Wake is coalesced: however many goroutines call it, the loop
// sees one readiness per drain.
//
// The loop polls Socket() with its other sockets and calls Drain when it is
// ready, before it looks at its queue of work: work queued after Drain
// wakes it again.
type Waker struct {
	pending atomic.Bool
	sock    Socket
	mu      sync.Mutex // guards pollers
	pollers []*Poller
}

// NewWaker returns a Waker. It never fails; the error is kept for callers
// written when it could.
func NewWaker() (*Waker, error) {
	w := &Waker{}
	w.sock.waker = w
	return w, nil
}

// Wake signals the loop. It never blocks and is safe for concurrent use.
func (w *Waker) Wake() {
	if !w.pending.CompareAndSwap(false, true) {
		return
	}
	w.mu.Lock()
	for _, p := range w.pollers {
		p.interrupt()
	}
	w.mu.Unlock()
}

// Socket returns the pseudo-socket the loop polls with its sockets. It is
// only good for NewPoller.
func (w *Waker) Socket() *Socket { return &w.sock }

// Drain clears the signal. Only the loop calls it, before it reads its
// queue: a Wake that raced with it either saw the flag still set (and
// queued its work before this call) or sets it again.
func (w *Waker) Drain() { w.pending.Store(false) }

// Close does nothing; a Waker holds no resources. It exists for symmetry.
func (w *Waker) Close() {}

func (w *Waker) attach(p *Poller) {
	w.mu.Lock()
	w.pollers = append(w.pollers, p)
	w.mu.Unlock()
}

func (w *Waker) detach(p *Poller) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, q := range w.pollers {
		if q == p {
			w.pollers = append(w.pollers[:i], w.pollers[i+1:]...)
			return
		}
	}
}
