package zmtp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/domo-framework/domo/internal/nbio"
)

// DealerOptions tune a Dealer. Zero fields take libzmq's defaults.
type DealerOptions struct {
	Options
	// Identity is the routing id the peer ROUTER knows this dealer by;
	// empty lets the router make one up.
	Identity string
	// ReconnectIvl is the wait before a new connection after one failed or
	// closed (default 100 ms); it doubles each time up to ReconnectIvlMax
	// if that is larger.
	ReconnectIvl, ReconnectIvlMax time.Duration
	// HeartbeatIvl, if positive, sends a ZMTP PING that often; a connection
	// that then hears nothing for HeartbeatTimeout (default HeartbeatIvl)
	// is closed and made again.
	HeartbeatIvl, HeartbeatTimeout time.Duration
}

// Dealer is a ZMTP 3 DEALER socket with one connection, to the endpoint
// it connects to, made again whenever it breaks. It behaves as libzmq's
// DEALER with ZMQ_IMMEDIATE: Send fails with ErrAgain unless the
// connection is up (its handshake done), and what was queued on a
// connection that broke is lost with it.
//
// Like a Router, it is owned by one goroutine and never blocks; its epoll
// set (Fd) also holds the connection being made and a timer for
// reconnects and heartbeats. Recv (or Look, LookWait) is what moves all of
// it on (connects, handshakes, heartbeats, reconnects), so the owner must
// call one of them whenever Fd is readable, as a socket loop that drains
// does anyway.
type Dealer struct {
	engine
	dopts     DealerOptions
	addr      syscall.Sockaddr
	named     string // a tcp:// endpoint given by host name, resolved again at each reconnect
	lookingUp bool   // a lookup of named is running
	lookup    struct {
		sync.Mutex
		done bool
		addr syscall.Sockaddr // nil if it failed
	}
	c          *conn // the connection, nil while there is none
	connecting int   // a connect in progress, -1 if none
	timer      int   // a timerfd
	retryIvl   time.Duration
	retryAt    time.Time // when to connect again; zero if not waiting to
	awaiting   bool      // a PING went and nothing was heard since
	pingAt     time.Time // when the first such PING went
	nextPing   time.Time
}

// NewDealer returns a Dealer connected to nothing yet.
func NewDealer(opts DealerOptions) (*Dealer, error) {
	if opts.ReconnectIvl <= 0 {
		opts.ReconnectIvl = 100 * time.Millisecond
	}
	if opts.HeartbeatTimeout <= 0 {
		opts.HeartbeatTimeout = opts.HeartbeatIvl
	}
	d := &Dealer{dopts: opts, connecting: -1, timer: -1, retryIvl: opts.ReconnectIvl}
	var err error
	if d.engine, err = newEngine(opts.Options, d, false); err != nil {
		return nil, err
	}
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, 1 /* CLOCK_MONOTONIC */, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		d.closeAll()
		return nil, fmt.Errorf("zmtp: timerfd: %w", errno)
	}
	d.timer = int(fd)
	if err := d.add(d.timer, syscall.EPOLLIN); err != nil {
		syscall.Close(d.timer)
		d.closeAll()
		return nil, err
	}
	return d, nil
}

// Connect connects to endpoint ("tcp://host:port" or "ipc:///path") in the
// background, and again whenever the connection breaks. A host name is
// resolved here, and again in the background while the dealer reconnects
// (as libzmq does, so a peer that comes back at a new address is found; a
// lookup that fails keeps the last address). A Dealer connects to one
// endpoint.
func (d *Dealer) Connect(endpoint string) error {
	if d.addr != nil {
		return errors.New("zmtp: a Dealer connects to one endpoint")
	}
	switch {
	case strings.HasPrefix(endpoint, "tcp://"):
		ap, err := ParseTCP(endpoint)
		if err != nil {
			return err
		}
		if ap.Port() == 0 || ap.Addr().IsUnspecified() {
			return fmt.Errorf("zmtp: connect %s: want a host and a port", endpoint)
		}
		d.addr = sockaddr(ap)
		if host, _, _ := net.SplitHostPort(strings.TrimPrefix(endpoint, "tcp://")); host != "" {
			if _, err := netip.ParseAddr(host); err != nil {
				d.named = endpoint
			}
		}
	case strings.HasPrefix(endpoint, "ipc://"):
		d.addr = &syscall.SockaddrUnix{Name: strings.TrimPrefix(endpoint, "ipc://")}
	default:
		return fmt.Errorf("zmtp: connect %s: only tcp:// and ipc:// endpoints", endpoint)
	}
	d.dial()
	return nil
}

func sockaddr(ap netip.AddrPort) syscall.Sockaddr {
	if ap.Addr().Is4() {
		return &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// Connected reports whether the connection is up, its handshake done.
func (d *Dealer) Connected() bool { return d.c != nil && d.c.state == stateOpen && !d.c.dead }

// dial starts a connection; a failure schedules the next.
func (d *Dealer) dial() {
	if !d.retryAt.IsZero() && d.named != "" {
		d.lookUp()
	}
	d.retryAt = time.Time{}
	family := syscall.AF_UNIX
	switch d.addr.(type) {
	case *syscall.SockaddrInet4:
		family = syscall.AF_INET
	case *syscall.SockaddrInet6:
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		d.retryLater()
		return
	}
	if err := syscall.Connect(fd, d.addr); err != nil && err != syscall.EINPROGRESS {
		syscall.Close(fd)
		d.retryLater()
		return
	}
	if err := d.add(fd, syscall.EPOLLOUT); err != nil {
		syscall.Close(fd)
		d.retryLater()
		return
	}
	d.connecting = fd
}

// lookUp takes the address a finished lookup of the endpoint's host name
// found, and starts the next lookup. Lookups run on a goroutine of their
// own, so that a slow name server never holds up the owner's loop; a
// connect meanwhile uses the last address found.
func (d *Dealer) lookUp() {
	d.lookup.Lock()
	done, addr := d.lookup.done, d.lookup.addr
	d.lookup.done = false
	d.lookup.Unlock()
	if done {
		d.lookingUp = false
		if addr != nil {
			d.addr = addr
		}
	}
	if d.lookingUp {
		return
	}
	d.lookingUp = true
	go func(endpoint string) {
		var addr syscall.Sockaddr
		if ap, err := ParseTCP(endpoint); err == nil {
			addr = sockaddr(ap)
		}
		d.lookup.Lock()
		d.lookup.done, d.lookup.addr = true, addr
		d.lookup.Unlock()
	}(d.named)
}

// connected finishes a connect in progress.
func (d *Dealer) connected() {
	fd := d.connecting
	d.connecting = -1
	_ = syscall.EpollCtl(d.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	if soErr, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR); err != nil || soErr != 0 {
		syscall.Close(fd)
		d.retryLater()
		return
	}
	props := []Property{{"Socket-Type", []byte("DEALER")}}
	if d.dopts.Identity != "" {
		props = append(props, Property{"Identity", []byte(d.dopts.Identity)})
	}
	c, err := d.open(fd, props...)
	if err != nil || c.dead { // dead: the greeting's write found it broken
		d.retryLater()
		return
	}
	d.c = c
}

// retryLater schedules the next connect, backing off.
func (d *Dealer) retryLater() {
	if d.shut {
		return
	}
	d.retryAt = time.Now().Add(d.retryIvl)
	if d.dopts.ReconnectIvlMax > d.retryIvl {
		d.retryIvl = min(2*d.retryIvl, d.dopts.ReconnectIvlMax)
	}
	d.arm()
}

// arm sets the timer to the next reconnect or heartbeat.
func (d *Dealer) arm() {
	next := d.retryAt
	sooner := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if d.c != nil && !d.nextPing.IsZero() {
		sooner(d.nextPing)
		if d.awaiting {
			sooner(d.pingAt.Add(d.dopts.HeartbeatTimeout))
		}
	}
	if next.IsZero() {
		return
	}
	wait := max(time.Until(next), time.Millisecond)
	// struct itimerspec: interval (zero: once), then value.
	spec := [4]int64{0, 0, int64(wait / time.Second), int64(wait % time.Second)}
	_, _, _ = syscall.RawSyscall6(syscall.SYS_TIMERFD_SETTIME, uintptr(d.timer), 0, uintptr(unsafe.Pointer(&spec[0])), 0, 0, 0)
}

// event handles the connect in progress and the timer.
func (d *Dealer) event(ev syscall.EpollEvent) {
	switch int(ev.Fd) {
	case d.connecting:
		d.connected()
	case d.timer:
		var n [8]byte
		_, _ = nbio.Read(d.timer, n[:])
		d.tick(time.Now())
	}
}

// tick reconnects or heartbeats when it is time to.
func (d *Dealer) tick(now time.Time) {
	if !d.retryAt.IsZero() && !now.Before(d.retryAt) {
		d.dial()
	}
	if c := d.c; d.Connected() && d.dopts.HeartbeatIvl > 0 {
		if c.heard {
			d.awaiting = false
		}
		if d.awaiting && now.Sub(d.pingAt) >= d.dopts.HeartbeatTimeout {
			d.closeConn(c) // silent since a PING: make the connection again
		} else if !now.Before(d.nextPing) {
			d.makeRoom(c, 32)
			c.out = AppendCommand(c.out, cmdPing, []byte{0, 0}) // TTL 0: the peer keeps its own
			d.markDirty(c)
			c.heard = false
			if !d.awaiting {
				d.awaiting, d.pingAt = true, now
			}
			d.nextPing = now.Add(d.dopts.HeartbeatIvl)
		}
	}
	d.arm()
}

// opened admits ROUTER and DEALER peers.
func (d *Dealer) opened(c *conn, m Metadata) error {
	if err := checkPeerType(m, "ROUTER", "DEALER"); err != nil {
		return err
	}
	d.retryIvl = d.dopts.ReconnectIvl
	d.awaiting = false
	if d.dopts.HeartbeatIvl > 0 {
		d.nextPing = time.Now().Add(d.dopts.HeartbeatIvl)
		d.arm()
	}
	return nil
}

// gone: the connection broke; make another.
func (d *Dealer) gone(c *conn) {
	if c == d.c {
		d.c, d.nextPing, d.awaiting = nil, time.Time{}, false
		d.retryLater()
	}
}

// Send queues frames as one message; Flush writes it. It fails with
// ErrAgain while the connection is not up or has SendHWM messages
// unwritten.
func (d *Dealer) Send(frames [][]byte) error {
	if len(frames) == 0 {
		return errors.New("zmtp: send of an empty message")
	}
	if !d.Connected() {
		return ErrAgain
	}
	if err := d.enqueue(d.c, frames); err != nil {
		if errors.Is(err, ErrUnroutable) {
			return ErrAgain // it broke while writing
		}
		return err
	}
	return nil
}

// Close closes the connection (after writing what the peer has room
// for), a connect in progress and the timer.
func (d *Dealer) Close() error {
	if d.shut {
		return nil
	}
	if d.connecting >= 0 {
		syscall.Close(d.connecting)
		d.connecting = -1
	}
	d.c = nil
	syscall.Close(d.timer)
	d.timer = -1
	return d.closeAll()
}
