package broker

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/domo-framework/domo/mdp"
)

// Config configures a Broker. Start from DefaultConfig.
type Config struct {
	// Listen lists the endpoints to bind, e.g. "tcp://127.0.0.1:5555" or
	// "ipc:///run/domo.sock". A wildcard port ("tcp://127.0.0.1:*") binds a
	// free one; Endpoints reports what was bound.
	Listen []string

	// HeartbeatInterval is how often the broker sends HEARTBEAT to a worker it
	// has sent nothing else; a worker silent for HeartbeatInterval times
	// HeartbeatLiveness is dropped. MDP's defaults are 2.5 s and 3.
	HeartbeatInterval time.Duration
	HeartbeatLiveness int

	// MaxServices bounds the services the broker keeps (0: 10,000).
	// A plain MDP client's request for a service no worker offers waits
	// in a queue of its own, as RFC 7 asks, so without a bound a client
	// naming new services could grow the broker without end; past it,
	// such requests are answered overloaded. Services workers offer are
	// always taken.
	MaxServices int

	// QueueLimit bounds each service's queue of requests waiting for a
	// worker. A request beyond it is answered "overloaded" at once.
	QueueLimit int

	// RequestTTL is how long a request without a deadline may wait in a
	// queue. RFC 7 asks brokers to expire such requests.
	RequestTTL time.Duration

	// StartupGrace is how long after start a request for a service no worker
	// has offered is queued rather than refused: workers need a moment to
	// reconnect to a restarted broker.
	StartupGrace time.Duration

	// ID names the broker to its peers; empty means a random one.
	ID string

	// Peers lists the endpoints of peer brokers to offload to. A request a
	// broker cannot serve soon (no local worker has free credit, or its queue
	// is OffloadQueue long) goes to a peer that reported ready capacity for
	// its service. The broker's own endpoints are ignored, so every broker of
	// a cluster may be given the same list.
	Peers []string

	// OffloadQueue is the queue length at which requests go to peers even
	// while local workers have credit; 0 offloads only what no local worker
	// can take now.
	OffloadQueue int

	// DedicatedThread makes the routing loop block an OS thread in
	// epoll_wait instead of parking its goroutine in Go's poller. A
	// request then costs the broker less CPU and time, most at low load
	// (docs/benchmarks.md, "Low load"). But the waiting
	// thread keeps one of the process's Ps until the runtime takes it
	// back, which costs throughput when other goroutines of the process
	// need every P: a broker sharing its process with its own clients and
	// workers lost a quarter of its throughput. Set it where the broker
	// has its process to itself (domo broker does).
	DedicatedThread bool

	// NativeTransport makes the broker speak ZMTP itself on its endpoints
	// and on its links to peer brokers (package zmtp) instead of through
	// libzmq: a message then crosses no thread between the network and the
	// routing loop, which reads and writes the connections itself
	// (docs/architecture.md, "Native transport"). Peers see no difference:
	// it is the same protocol. Only tcp:// and ipc:// endpoints, NULL
	// security.
	NativeTransport bool

	// Events, if set, receives a record of each step of each request
	// (received, dispatched, completed, failed, dropped) for a journal,
	// metrics or tracing. The broker never waits on it: when it is full,
	// events are dropped and counted. Give it a generous buffer.
	Events chan<- Event

	// OnEvent, if set, is called with each event on the broker's loop, as
	// Events would receive it. It spares a reader its goroutine, and the
	// loop the wake-up of that goroutine every turn, which with
	// one-request-at-a-time peers (plain MDP workers) cost more than the
	// events' work; eventbus.Bus.Publish is such a function. It must be
	// quick and must not wait on anything slow: it runs between messages.
	// (Publish's metrics may wait for a /metrics scrape in progress when
	// an event makes a new series.) It reports whether it may have woken
	// another goroutine (sent on a channel): with DedicatedThread, the
	// loop then lets it run before it blocks.
	OnEvent func(Event) bool

	// EventBodies, if positive, copies up to that many bytes of each
	// request's and reply's payload into its events (for a journal that
	// keeps bodies). Methods whose contract marks them sensitive never
	// have their bodies copied. 0 copies none.
	EventBodies int

	// Limits bound every message the broker accepts.
	Limits mdp.Limits

	// SendHWM and RecvHWM are the ZeroMQ high-water marks per peer.
	SendHWM, RecvHWM int

	// Logger receives the broker's logs; nil means slog.Default().
	Logger *slog.Logger
}

// defaultMaxServices is Config.MaxServices when it is 0.
const defaultMaxServices = 10000

// DefaultConfig returns the configuration of a broker on
// tcp://127.0.0.1:5555 with MDP's heartbeat defaults.
func DefaultConfig() Config {
	return Config{
		Listen:            []string{"tcp://127.0.0.1:5555"},
		HeartbeatInterval: 2500 * time.Millisecond,
		HeartbeatLiveness: 3,
		QueueLimit:        10000,
		MaxServices:       defaultMaxServices,
		RequestTTL:        60 * time.Second,
		StartupGrace:      7500 * time.Millisecond,
		Limits:            mdp.DefaultLimits(),
		SendHWM:           100000,
		RecvHWM:           100000,
		NativeTransport:   true,
	}
}

func (c *Config) validate() error {
	switch {
	case len(c.Listen) == 0:
		return fmt.Errorf("broker: config: no endpoint to listen on")
	case c.HeartbeatInterval <= 0:
		return fmt.Errorf("broker: config: heartbeat interval %v must be positive", c.HeartbeatInterval)
	case c.HeartbeatLiveness <= 0:
		return fmt.Errorf("broker: config: heartbeat liveness %d must be positive", c.HeartbeatLiveness)
	case c.QueueLimit <= 0:
		return fmt.Errorf("broker: config: queue limit %d must be positive", c.QueueLimit)
	case c.MaxServices < 0:
		return fmt.Errorf("broker: config: max services %d must not be negative", c.MaxServices)
	}
	if c.RequestTTL <= 0 {
		c.RequestTTL = 60 * time.Second
	}
	if c.MaxServices == 0 {
		c.MaxServices = defaultMaxServices
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ID == "" {
		var id [6]byte
		rand.Read(id[:])
		c.ID = hex.EncodeToString(id[:])
	}
	return nil
}
