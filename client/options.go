package client

import (
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

const (
	sendQueueSize = 1024 // requests encoded and waiting for the loop
	streamBuffer  = 256  // partial replies a Stream holds before its reader falls behind
)

// Option configures a Client. Options are applied by New, in order.
type Option func(*options)

type options struct {
	endpoints []string
	timeout   time.Duration
	limits    mdp.Limits
	logger    *slog.Logger
}

func defaultOptions() options {
	return options{
		endpoints: []string{DefaultBroker},
		timeout:   DefaultTimeout,
		limits:    mdp.DefaultLimits(),
		logger:    slog.Default(),
	}
}

// WithBroker sets the broker endpoints ("tcp://host:port"). The client
// currently talks to the first; the others are kept for failover. With no
// endpoints the option does nothing.
func WithBroker(endpoints ...string) Option {
	return func(o *options) {
		if len(endpoints) > 0 {
			o.endpoints = append([]string(nil), endpoints...)
		}
	}
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

// Retry allows the broker to deliver the request again, to another worker,
// if the worker handling it is lost. Use it only for idempotent methods.
func Retry() CallOption {
	return func(o *callOptions) { o.retry = true }
}

// Header adds a request header. Names are 1 to 255 bytes; the protocol's
// own headers (id, deadline, retry) are set by the client and come first,
// so a header of the same name does not override them.
func Header(name, value string) CallOption {
	return func(o *callOptions) { o.headers = append(o.headers, header{name, value}) }
}
