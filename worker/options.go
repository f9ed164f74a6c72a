package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/domo-framework/domo/mdp"
)

// Defaults used when an option is not given (or given a value out of range).
const (
	defaultBroker       = "tcp://127.0.0.1:5555"
	defaultConcurrency  = 16
	defaultHeartbeat    = 2500 * time.Millisecond
	defaultLiveness     = 3
	defaultReconnectMin = 100 * time.Millisecond
	defaultReconnectMax = 5 * time.Second
)

// Option configures a Worker. Options are applied by New, in order.
type Option func(*options)

type options struct {
	endpoints    []string
	concurrency  int
	heartbeat    time.Duration
	liveness     int
	reconnectMin time.Duration
	reconnectMax time.Duration
	limits       mdp.Limits
	logger       *slog.Logger
	discovery    BrokerSource
	doc          string
	libzmq       bool // connect through libzmq instead of the native transport
}

func defaultOptions() options {
	return options{
		endpoints:    []string{defaultBroker},
		concurrency:  defaultConcurrency,
		heartbeat:    defaultHeartbeat,
		liveness:     defaultLiveness,
		reconnectMin: defaultReconnectMin,
		reconnectMax: defaultReconnectMax,
		limits:       mdp.DefaultLimits(),
	}
}

// WithBroker sets the broker endpoints to connect to (ZeroMQ endpoints such
// as "tcp://10.0.0.5:5555"). The default is "tcp://127.0.0.1:5555". The worker
// keeps one connection to each, with its full credit on each, and serves
// requests from all of them with one handler pool. An empty list keeps the
// default.
func WithBroker(endpoints ...string) Option {
	return func(o *options) {
		if len(endpoints) > 0 {
			o.endpoints = append([]string(nil), endpoints...)
		}
	}
}

// WithConcurrency sets how many requests the worker handles at once: the size
// of its handler pool and the credit it declares to the broker in READY. The
// default is 16; n < 1 keeps it.
func WithConcurrency(n int) Option {
	return func(o *options) {
		if n >= 1 {
			o.concurrency = n
		}
	}
}

// WithHeartbeat sets the heartbeat interval and the liveness: the worker sends
// a HEARTBEAT when it has sent nothing else for interval, and gives the broker
// up for lost after interval*liveness without hearing from it. The defaults
// are 2.5s and 3, as in MDP; values below 1 keep them.
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

// WithReconnect sets the backoff between attempts to reach a lost broker. The
// delay starts at min, doubles after each attempt that heard nothing from the
// broker, is capped at max, and is jittered (each wait is between half the
// delay and the delay). The defaults are 100ms and 5s.
func WithReconnect(min, max time.Duration) Option {
	return func(o *options) {
		if min > 0 {
			o.reconnectMin = min
		}
		if max > 0 {
			o.reconnectMax = max
		}
		if o.reconnectMax < o.reconnectMin {
			o.reconnectMax = o.reconnectMin
		}
	}
}

// WithLimits sets the limits applied to every message received from the
// broker (before it is parsed) and to every reply sent. The default is
// mdp.DefaultLimits().
func WithLimits(l mdp.Limits) Option {
	return func(o *options) { o.limits = l }
}

// BrokerSource tells a worker which brokers exist; discovery.Source is one.
// Watch blocks until ctx ends, calling fn with the full set of broker
// endpoints whenever it changes, from one goroutine at a time.
type BrokerSource interface {
	Watch(ctx context.Context, fn func(endpoints []string)) error
}

// WithDiscovery makes the worker serve every broker src reports, joining
// new ones as they appear and leaving those that go, in addition to the
// endpoints of WithBroker (which src's first report replaces).
func WithDiscovery(src BrokerSource) Option {
	return func(o *options) { o.discovery = src }
}

// WithNativeTransport chooses how the worker speaks ZMTP to its brokers:
// itself, on its connections' loops (true, the default), or through
// libzmq's DEALER and I/O thread (false). Brokers cannot tell the
// difference; the native transport costs less CPU and latency a request
// (docs/architecture.md, "Native transport") and handles tcp:// and
// ipc:// endpoints only.
func WithNativeTransport(native bool) Option {
	return func(o *options) { o.libzmq = !native }
}

// WithLogger sets the logger; the default is slog.Default(). Each record
// carries the service name.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}
