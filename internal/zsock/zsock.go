// Package zsock is domo's one seam to ZeroMQ: every socket, poller and
// option the rest of the tree uses goes through it, so the binding
// (github.com/pebbe/zmq4 over libzmq) can be replaced in one place.
//
// A Socket is not safe for concurrent use. One goroutine owns each socket for
// its life; other goroutines hand it work through a Waker and a queue of
// their own. (libzmq allows a socket to move between threads across a full
// memory barrier, which is what a Go channel or mutex hand-over gives.)
package zsock

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/domo-framework/domo/internal/zmtp"
	zmq "github.com/pebbe/zmq4"
)

// Type is a ZeroMQ socket type.
type Type = zmq.Type

// The socket types domo uses.
const (
	Router = zmq.ROUTER
	Dealer = zmq.DEALER
	Pair   = zmq.PAIR
	Pub    = zmq.PUB
	Sub    = zmq.SUB
)

// Errors callers branch on.
var (
	// ErrAgain: a non-blocking call found nothing to receive, or no room to send.
	ErrAgain = errors.New("zsock: resource temporarily unavailable")
	// ErrUnroutable: a ROUTER send named a peer that is not connected.
	ErrUnroutable = errors.New("zsock: peer not connected")
	// ErrTooManyFrames: a received message had more frames than a socket
	// keeps; the frames returned are its first ones.
	ErrTooManyFrames = errors.New("zsock: too many frames")
)

// maxSocketsErr is why raising ZMQ_MAX_SOCKETS failed, if it did.
var maxSocketsErr error

// libzmq's default context refuses a socket beyond ZMQ_MAX_SOCKETS, 1023 by
// default; a process holding many clients (three sockets each) needs more.
// Every socket holds a file descriptor (its mailbox), so the limit follows
// RLIMIT_NOFILE (which Go raises to the hard limit at start), between
// libzmq's default and 65536. It must be set before the first socket.
func init() {
	n := 65536
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(n) {
		n = max(int(rl.Cur), 1023)
	}
	if err := zmq.SetMaxSockets(n); err != nil {
		maxSocketsErr = fmt.Errorf("set ZMQ_MAX_SOCKETS to %d: %w", n, err)
	}
}

// Socket is one ZeroMQ socket.
type Socket struct {
	s      *zmq.Socket
	fast   *fastPath // nil: frame by frame through pebbe
	waker  *Waker    // set on a Waker's pseudo-socket, which has no s
	native native    // set on a native ROUTER or DEALER, which has no s

	// settled: the last call left no message to read and no command
	// pending (a receive found none, or ZMQ_EVENTS said so), so only a
	// signal on ZMQ_FD can make the socket readable and a Poller need not
	// ask ZMQ_EVENTS, two system calls inside libzmq, until it sees one.
	// Any other call may consume libzmq's activation command and clears it.
	settled bool
}

// New creates a socket of type t on the process-wide ZeroMQ context, with
// linger 0 so that Close never blocks.
func New(t Type) (*Socket, error) {
	s, err := zmq.NewSocket(t)
	if err != nil {
		if maxSocketsErr != nil {
			return nil, fmt.Errorf("zsock: new socket: %w (and %w)", err, maxSocketsErr)
		}
		return nil, fmt.Errorf("zsock: new socket: %w", err)
	}
	if err := s.SetLinger(0); err != nil {
		s.Close()
		return nil, fmt.Errorf("zsock: set linger: %w", err)
	}
	return &Socket{s: s, fast: newFastPath(s, t)}, nil
}

// NewNativeRouter returns a ROUTER socket that speaks ZMTP 3 itself,
// without libzmq (package zmtp), for tcp:// and ipc:// endpoints; it takes
// its options here (Apply refuses them): MaxMessageSize bounds a frame,
// SendHWM the messages queued for a peer; it always acts as with
// RouterMandatory. Its sends are written when a Poller over it next waits
// (one write a peer for all the loop's turn sent it), so its owner must
// wait on it with a Poller, which a socket loop does anyway.
func NewNativeRouter(o Options) (*Socket, error) {
	r, err := zmtp.NewRouter(zmtp.Options{MaxFrameSize: o.MaxMessageSize, SendHWM: o.SendHWM})
	if err != nil {
		return nil, fmt.Errorf("zsock: %w", err)
	}
	return &Socket{native: r}, nil
}

// NewNativeDealer returns a DEALER socket that speaks ZMTP itself (see
// NewNativeRouter) and connects to one tcp:// or ipc:// endpoint. It takes
// Identity, the reconnect intervals, the heartbeats, MaxMessageSize and
// SendHWM here, and always acts as with Immediate: a send while the
// connection is not up fails with ErrAgain.
func NewNativeDealer(o Options) (*Socket, error) {
	d, err := zmtp.NewDealer(zmtp.DealerOptions{
		Options:          zmtp.Options{MaxFrameSize: o.MaxMessageSize, SendHWM: o.SendHWM},
		Identity:         o.Identity,
		ReconnectIvl:     o.ReconnectIvl,
		ReconnectIvlMax:  o.ReconnectIvlMax,
		HeartbeatIvl:     o.HeartbeatIvl,
		HeartbeatTimeout: o.HeartbeatTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("zsock: %w", err)
	}
	return &Socket{native: d}, nil
}

// NewDealer returns a DEALER with options o: a native one
// (NewNativeDealer) if native, else libzmq's. Both act as with Immediate.
func NewDealer(o Options, native bool) (*Socket, error) {
	if native {
		return NewNativeDealer(o)
	}
	s, err := New(Dealer)
	if err != nil {
		return nil, err
	}
	o.Immediate = true
	if err := s.Apply(o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// native is what zsock needs of a zmtp.Router or zmtp.Dealer.
type native interface {
	Fd() int
	Look() bool
	Pending() bool
	LookWait(timeout time.Duration) (others, watched bool, err error)
	Watch(fd int) error
	Unwatch(fd int)
	Recv(dst [][]byte) ([][]byte, error)
	Send(frames [][]byte) error
	Flush()
	Close() error
}

// Options are the socket options domo sets. Zero fields keep libzmq's default.
type Options struct {
	Identity        string        // routing id of a DEALER as its ROUTER peer sees it
	SendHWM         int           // messages queued per peer before sends fail or block
	RecvHWM         int           // messages queued per peer before receiving stops
	MaxMessageSize  int64         // a peer sending a bigger frame is disconnected by libzmq
	RouterMandatory bool          // a ROUTER send to an unknown peer fails instead of vanishing
	ReconnectIvl    time.Duration // first reconnect delay
	ReconnectIvlMax time.Duration // reconnect backoff ceiling
	Immediate       bool          // queue only on completed connections
	// ZMTP heartbeats (PING/PONG, answered by the peer's libzmq without
	// waking its application): a connection silent for HeartbeatTimeout
	// after a PING is closed (and reconnected). Zero leaves them off.
	HeartbeatIvl     time.Duration
	HeartbeatTimeout time.Duration
}

// Apply sets the options on s.
func (s *Socket) Apply(o Options) error {
	if s.native != nil {
		return errors.New("zsock: a native socket takes its options when it is made (NewNativeRouter, NewNativeDealer)")
	}
	s.settled = false
	var errs []error
	set := func(name string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if o.Identity != "" {
		set("identity", s.s.SetIdentity(o.Identity))
	}
	if o.SendHWM > 0 {
		set("sndhwm", s.s.SetSndhwm(o.SendHWM))
	}
	if o.RecvHWM > 0 {
		set("rcvhwm", s.s.SetRcvhwm(o.RecvHWM))
	}
	if o.MaxMessageSize > 0 {
		set("maxmsgsize", s.s.SetMaxmsgsize(o.MaxMessageSize))
	}
	if o.RouterMandatory {
		set("router_mandatory", s.s.SetRouterMandatory(1))
	}
	if o.ReconnectIvl > 0 {
		set("reconnect_ivl", s.s.SetReconnectIvl(o.ReconnectIvl))
	}
	if o.ReconnectIvlMax > 0 {
		set("reconnect_ivl_max", s.s.SetReconnectIvlMax(o.ReconnectIvlMax))
	}
	if o.Immediate {
		set("immediate", s.s.SetImmediate(true))
	}
	if o.HeartbeatIvl > 0 {
		set("heartbeat_ivl", s.s.SetHeartbeatIvl(o.HeartbeatIvl))
	}
	if o.HeartbeatTimeout > 0 {
		set("heartbeat_timeout", s.s.SetHeartbeatTimeout(o.HeartbeatTimeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("zsock: options: %w", errors.Join(errs...))
	}
	return nil
}

// Bind binds s to endpoint and returns the endpoint actually bound, which
// differs from the argument for a wildcard port ("tcp://127.0.0.1:*").
func (s *Socket) Bind(endpoint string) (string, error) {
	s.settled = false
	if r, ok := s.native.(*zmtp.Router); ok {
		return r.Bind(endpoint)
	} else if s.native != nil {
		return "", errors.New("zsock: a native dealer only connects")
	}
	if err := s.s.Bind(endpoint); err != nil {
		return "", fmt.Errorf("zsock: bind %s: %w", endpoint, err)
	}
	bound, err := s.s.GetLastEndpoint()
	if err != nil {
		return endpoint, nil
	}
	return bound, nil
}

// Connect connects s to endpoint. libzmq connects in the background and
// reconnects by itself; an error here means the endpoint is malformed.
func (s *Socket) Connect(endpoint string) error {
	if d, ok := s.native.(*zmtp.Dealer); ok {
		if err := d.Connect(endpoint); err != nil {
			return fmt.Errorf("zsock: %w", err)
		}
		return nil
	} else if s.native != nil {
		return errors.New("zsock: a native router only binds")
	}
	s.settled = false
	if err := s.s.Connect(endpoint); err != nil {
		return fmt.Errorf("zsock: connect %s: %w", endpoint, err)
	}
	return nil
}

// Disconnect undoes Connect.
func (s *Socket) Disconnect(endpoint string) error {
	if s.native != nil {
		return errors.New("zsock: a native socket does not disconnect; close it")
	}
	s.settled = false
	if err := s.s.Disconnect(endpoint); err != nil {
		return fmt.Errorf("zsock: disconnect %s: %w", endpoint, err)
	}
	return nil
}

// SetLinger sets how long Close waits to deliver queued messages.
// A native router has linger 0: Close drops what it has not written.
func (s *Socket) SetLinger(d time.Duration) error {
	if s.native != nil {
		return nil
	}
	return s.s.SetLinger(d)
}

// Close closes the socket. Messages still queued are kept for the linger
// period (0 unless SetLinger changed it), without blocking the caller.
func (s *Socket) Close() error {
	if s.native != nil {
		return s.native.Close()
	}
	err := s.s.Close()
	if s.fast != nil {
		s.fast.free()
		s.fast = nil
	}
	return err
}

// Send sends frames as one multipart message. With wait false it fails with
// ErrAgain instead of blocking when the peer's queue is full.
func (s *Socket) Send(frames [][]byte, wait bool) error {
	if len(frames) == 0 {
		return errors.New("zsock: send of an empty message")
	}
	if s.native != nil {
		// It never waits (wait is ignored), and a send leaves what it can
		// read as it was.
		return mapNative(s.native.Send(frames))
	}
	s.settled = false
	if s.fast != nil {
		if len(frames) > maxParts {
			return fmt.Errorf("%w: sending %d, limit %d", ErrTooManyFrames, len(frames), maxParts)
		}
		return s.fast.send(frames, wait)
	}
	var flags zmq.Flag
	if !wait {
		flags = zmq.DONTWAIT
	}
	last := len(frames) - 1
	for i, f := range frames {
		fl := flags
		if i < last {
			fl |= zmq.SNDMORE
		}
		if _, err := s.s.SendBytes(f, fl); err != nil {
			if i > 0 {
				// libzmq delivers multipart messages atomically; a failure
				// after the first part only happens on a closing socket.
				return fmt.Errorf("zsock: send frame %d: %w", i, mapErr(err))
			}
			return mapErr(err)
		}
	}
	return nil
}

// Recv receives one multipart message, appending its frames to dst[:0].
// With wait false it returns ErrAgain when no message is waiting.
func (s *Socket) Recv(dst [][]byte, wait bool) ([][]byte, error) {
	dst, err := s.recv(dst, wait)
	s.settled = err == ErrAgain
	return dst, err
}

func (s *Socket) recv(dst [][]byte, wait bool) ([][]byte, error) {
	if s.native != nil {
		if wait {
			return dst[:0], errors.New("zsock: a native socket never waits in Recv; poll it")
		}
		dst, err := s.native.Recv(dst)
		return dst, mapNative(err)
	}
	if s.fast != nil {
		return s.fast.recv(dst[:0], wait)
	}
	var flags zmq.Flag
	if !wait {
		flags = zmq.DONTWAIT
	}
	dst = dst[:0]
	for {
		f, err := s.s.RecvBytes(flags)
		if err != nil {
			if len(dst) > 0 {
				return dst, fmt.Errorf("zsock: recv frame %d: %w", len(dst), mapErr(err))
			}
			return dst, mapErr(err)
		}
		dst = append(dst, f)
		more, err := s.s.GetRcvmore()
		if err != nil {
			return dst, fmt.Errorf("zsock: rcvmore: %w", err)
		}
		if !more {
			return dst, nil
		}
		flags = 0 // the rest of a multipart message is already here
	}
}

func mapNative(err error) error {
	switch err {
	case zmtp.ErrAgain:
		return ErrAgain
	case zmtp.ErrUnroutable:
		return ErrUnroutable
	case zmtp.ErrTooManyFrames:
		return ErrTooManyFrames
	}
	return err
}

func mapErr(err error) error {
	switch zmq.AsErrno(err) {
	case zmq.Errno(syscall.EAGAIN):
		return ErrAgain
	case zmq.Errno(syscall.EHOSTUNREACH):
		return ErrUnroutable
	}
	return err
}
