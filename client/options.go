package client

import (
	"context"
	"log/slog"
	"time"

	"github.com/domo-framework/domo/mdp"
)

// DefaultBroker is the endpoint a Client connects to unless WithBroker says
// otherwise.
const DefaultBroker = "tcp://127.0.0.1:5555"

// DefaultTimeout bounds a call whose context has no deadline, unless
// WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

// Heartbeat defaults: a broker connection silent for DefaultHeartbeat is
// probed, and one silent for DefaultLiveness intervals is dead.
const (
	DefaultHeartbeat = time.Second
	DefaultLiveness  = 3
)

const (
	sendQueueSize = 1024 // requests encoded and waiting for the loop
	streamBuffer  = 256  // partial replies a Stream holds before its reader falls behind
)

// Option configures a Client. Options are applied by New, in order.
type Option func(*options)

type options struct {
	endpoints []string
	explicit  bool // endpoints came from WithBroker
	timeout   time.Duration
	heartbeat time.Duration
	liveness  int
	discovery BrokerSource
	limits    mdp.Limits
	logger    *slog.Logger
	libzmq    bool // connect through libzmq instead of the native transport
}

func defaultOptions() options {
	return options{
		endpoints: []string{DefaultBroker},
		timeout:   DefaultTimeout,
		heartbeat: DefaultHeartbeat,
		liveness:  DefaultLiveness,
		limits:    mdp.DefaultLimits(),
		logger:    slog.Default(),
	}
}

// WithBroker sets the broker endpoints ("tcp://host:port"); DefaultBroker
// unless set. The client keeps one connection to each and spreads calls over
// those that are alive (see WithHeartbeat), failing over when one dies.
// Duplicates are ignored; with no endpoints the option does nothing.
func WithBroker(endpoints ...string) Option {
	return func(o *options) {
		if len(endpoints) > 0 {
			o.endpoints = dedupe(endpoints)
			o.explicit = true
		}
	}
}

// WithHeartbeat sets how the client watches each broker. While the client
// has calls in flight, a connection that has received nothing for interval
// is probed with an MMI mmi.service request (which any RFC 8 broker
// answers), and a broker silent for liveness intervals while the client
// waits for it is dead: it gets no more calls, and its calls in flight fail
// with domo.ErrUnavailable or, if made with Retry, are sent again to another
// broker. An idle client probes every 60 intervals and leaves the rest to
// ZMTP heartbeats every 30 intervals (at least 1 s), answered by the
// broker's transport without involving its routing. The defaults are
// DefaultHeartbeat and DefaultLiveness; values below 1 keep them.
func WithHeartbeat(interval time.Duration, liveness int) Option {
	return func(o *options) {
		if interval > 0 {
			o.heartbeat = interval
		}
		if liveness >= 1 {
			o.liveness = liveness
		}
	}
}

// BrokerSource tells a client which brokers exist; discovery.Source is one.
// Watch must block until ctx ends, calling fn with the full set of broker
// endpoints whenever it changes, from one goroutine at a time; it returns
// when ctx ends.
type BrokerSource interface {
	Watch(ctx context.Context, fn func(endpoints []string)) error
}

// WithDiscovery makes the client use the brokers src reports: New runs
// src.Watch in a goroutine of its own that calls SetBrokers with each
// report, and Close stops it. The first report replaces the endpoints of
// WithBroker; without WithBroker the client starts with no broker, and
// calls wait (within their deadlines) for the first report. If Watch fails
// it is logged and run again after a second.
func WithDiscovery(src BrokerSource) Option {
	return func(o *options) { o.discovery = src }
}

// WithTimeout sets how long a call may take when its context has no
// deadline (DefaultTimeout unless set). The deadline travels to the broker
// and the worker, which drop the request once it has passed. A
// non-positive d is ignored.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithLimits sets the protocol limits (mdp.DefaultLimits unless set). A
// request outside them fails with domo.ErrTooLarge before it is sent; a
// message from the broker outside them is dropped and counted as malformed.
func WithLimits(l mdp.Limits) Option {
	return func(o *options) { o.limits = l }
}

// WithNativeTransport chooses how the client speaks ZMTP to its brokers:
// itself, on its own socket loop (true, the default), or through libzmq's
// DEALER and I/O thread (false). Brokers cannot tell the difference; the
// native transport costs less CPU and latency a call (docs/architecture.md,
// "Native transport") and handles tcp:// and ipc:// endpoints only.
func WithNativeTransport(native bool) Option {
	return func(o *options) { o.libzmq = !native }
}

// WithLogger sets the logger (slog.Default unless set). The client logs
// dropped messages at debug level and socket failures at warn level.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// CallOption configures one Invoke or Stream call.
type CallOption func(*callOptions)

type callOptions struct {
	retry   bool
	headers []header
}

type header struct{ name, value string }

// Retry allows the request to be delivered more than once: the broker may
// deliver it again, to another worker, if the worker handling it is lost,
// and the client sends it again, to another broker (or the same one), if
// its broker dies or answers domo.ErrUnavailable. Every attempt carries the
// same request id and an "attempt" header (2, 3, ...), so a worker can tell
// a repeat; the caller gets exactly one answer, the first to arrive. The
// client retries with backoff while the call's deadline allows. Use it only
// for idempotent methods. Streams are not sent again by the client.
func Retry() CallOption {
	return func(o *callOptions) { o.retry = true }
}

// Header adds a request header. Names are 1 to 255 bytes; the protocol's
// own headers (id, deadline, retry) are set by the client and come first,
// so a header of the same name does not override them.
func Header(name, value string) CallOption {
	return func(o *callOptions) { o.headers = append(o.headers, header{name, value}) }
}
