package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	zmq "github.com/pebbe/zmq4"

	"github.com/domo-framework/domo/client"
)

// loadConfig is one cell's load, run in its own process (-role load).
type loadConfig struct {
	System    string // domo, nats, relay, zmq
	Addr      string // where the clients connect
	Clients   int
	InFlight  int
	Size      int
	Warmup    time.Duration
	Duration  time.Duration
	BrokerPID int // 0: no broker process to read
}

// loadResult is what the load process prints, as JSON, for the harness.
type loadResult struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	FirstErr  string  `json:"first_err,omitempty"`
	Seconds   float64 `json:"seconds"`
	P50       float64 `json:"p50_us"`
	P99       float64 `json:"p99_us"`
	P999      float64 `json:"p999_us"`
	BrokerCPU float64 `json:"broker_cpu_s"` // over the measured window
	BrokerHWM int64   `json:"broker_hwm_kib"`
}

func (r loadResult) rate() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Seconds
}

// window is the measured interval: requests that start and end inside it count.
type window struct{ start, end time.Time }

func (w window) in(t0, t1 time.Time) bool { return !t0.Before(w.start) && !t1.After(w.end) }

// tally gathers latencies and errors from many goroutines.
type tally struct {
	mu       sync.Mutex
	lats     []time.Duration
	errors   int64
	firstErr error
}

func (t *tally) add(lats []time.Duration, errs int64, first error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lats = append(t.lats, lats...)
	t.errors += errs
	if t.firstErr == nil {
		t.firstErr = first
	}
}

func runLoad(cfg loadConfig) (loadResult, error) {
	payload := make([]byte, cfg.Size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	var (
		run func(w window, t *tally) error
		err error
	)
	switch cfg.System {
	case "domo":
		run, err = domoLoad(cfg, payload)
	case "nats":
		run, err = natsLoad(cfg, payload)
	case "relay":
		run, err = relayLoad(cfg, payload)
	case "zmq":
		run, err = zmqLoad(cfg, payload)
	case "mdp":
		run, err = mdpLoad(cfg, payload)
	default:
		err = fmt.Errorf("unknown system %q", cfg.System)
	}
	if err != nil {
		return loadResult{}, err
	}
	now := time.Now()
	w := window{start: now.Add(cfg.Warmup), end: now.Add(cfg.Warmup + cfg.Duration)}
	var res loadResult
	var cpu0, cpu1 float64
	var cpuErr error
	done := make(chan struct{})
	if cfg.BrokerPID > 0 {
		go func() {
			defer close(done)
			time.Sleep(time.Until(w.start))
			cpu0, cpuErr = cpuSeconds(cfg.BrokerPID)
			time.Sleep(time.Until(w.end))
			if cpuErr == nil {
				cpu1, cpuErr = cpuSeconds(cfg.BrokerPID)
			}
		}()
	} else {
		close(done)
	}
	var t tally
	if err := run(w, &t); err != nil {
		return res, err
	}
	<-done
	if cpuErr != nil {
		return res, cpuErr
	}
	if cfg.BrokerPID > 0 {
		res.BrokerCPU = cpu1 - cpu0
		if res.BrokerHWM, err = peakRSSKiB(cfg.BrokerPID); err != nil {
			return res, err
		}
	}
	slices.Sort(t.lats)
	res.Requests = int64(len(t.lats))
	res.Errors = t.errors
	if t.firstErr != nil {
		res.FirstErr = t.firstErr.Error()
	}
	res.Seconds = cfg.Duration.Seconds()
	us := func(q float64) float64 {
		if len(t.lats) == 0 {
			return 0
		}
		return float64(t.lats[min(int(q*float64(len(t.lats))), len(t.lats)-1)]) / 1e3
	}
	res.P50, res.P99, res.P999 = us(0.50), us(0.99), us(0.999)
	return res, nil
}

// blocking runs InFlight goroutines per client, each calling call in a loop
// until the window ends: how SDK users pipeline with a blocking call.
func blocking(cfg loadConfig, call func(ci int) error) func(w window, t *tally) error {
	return func(w window, t *tally) error {
		var wg sync.WaitGroup
		for ci := range cfg.Clients {
			for range cfg.InFlight {
				wg.Add(1)
				go func() {
					defer wg.Done()
					lats := make([]time.Duration, 0, 1<<14)
					var errs int64
					var first error
					for {
						t0 := time.Now()
						if !t0.Before(w.end) {
							break
						}
						err := call(ci)
						t1 := time.Now()
						if !w.in(t0, t1) {
							continue
						}
						if err != nil {
							errs++
							if first == nil {
								first = err
							}
							continue
						}
						lats = append(lats, t1.Sub(t0))
					}
					t.add(lats, errs, first)
				}()
			}
		}
		wg.Wait()
		return nil
	}
}

func domoLoad(cfg loadConfig, payload []byte) (func(window, *tally) error, error) {
	cs := make([]*client.Client, cfg.Clients)
	for i := range cs {
		c, err := client.New(client.WithBroker(cfg.Addr), client.WithTimeout(5*time.Second))
		if err != nil {
			return nil, err
		}
		cs[i] = c
		if _, err := c.Invoke(context.Background(), domoMethod, payload); err != nil {
			return nil, fmt.Errorf("domo warm-up call: %w", err)
		}
	}
	run := blocking(cfg, func(ci int) error {
		_, err := cs[ci].Invoke(context.Background(), domoMethod, payload)
		return err
	})
	return func(w window, t *tally) error {
		defer func() {
			for _, c := range cs {
				c.Close()
			}
		}()
		return run(w, t)
	}, nil
}

func natsLoad(cfg loadConfig, payload []byte) (func(window, *tally) error, error) {
	cs := make([]*nats.Conn, cfg.Clients)
	for i := range cs {
		nc, err := nats.Connect(cfg.Addr, nats.MaxReconnects(0))
		if err != nil {
			return nil, err
		}
		cs[i] = nc
		if _, err := nc.Request(natsSubject, payload, 5*time.Second); err != nil {
			return nil, fmt.Errorf("nats warm-up request: %w", err)
		}
	}
	run := blocking(cfg, func(ci int) error {
		_, err := cs[ci].Request(natsSubject, payload, 5*time.Second)
		return err
	})
	return func(w window, t *tally) error {
		defer func() {
			for _, nc := range cs {
				nc.Close()
			}
		}()
		return run(w, t)
	}, nil
}

// windowed runs one goroutine per client that keeps InFlight requests
// outstanding on one connection, matching replies to slots by tag: the floors
// have no SDK, so this is the least a client can do.
func windowed(cfg loadConfig, one func(ci int, w window, t *tally) error) func(window, *tally) error {
	return func(w window, t *tally) error {
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for ci := range cfg.Clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := one(ci, w, t); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}()
		}
		wg.Wait()
		if err, ok := firstErr.Load().(error); ok {
			return err
		}
		return nil
	}
}

func relayLoad(cfg loadConfig, payload []byte) (func(window, *tally) error, error) {
	conns := make([]net.Conn, cfg.Clients)
	for i := range conns {
		c, err := net.Dial("tcp", cfg.Addr)
		if err != nil {
			return nil, err
		}
		conns[i] = c
	}
	return windowed(cfg, func(ci int, w window, t *tally) error {
		c := conns[ci]
		defer c.Close()
		r := bufio.NewReaderSize(c, 64<<10)
		wr := bufio.NewWriterSize(c, 64<<10)
		frame := make([]byte, 12+len(payload))
		binary.BigEndian.PutUint32(frame, uint32(8+len(payload)))
		copy(frame[12:], payload)
		sl := newSlots(cfg.InFlight, w, func(slot int) error {
			binary.BigEndian.PutUint64(frame[4:12], uint64(slot))
			_, err := wr.Write(frame)
			return err
		})
		if err := sl.start(); err != nil {
			return err
		}
		if err := wr.Flush(); err != nil {
			return err
		}
		_ = c.SetReadDeadline(w.end.Add(time.Second))
		var buf []byte
		for sl.outstanding > 0 {
			f, err := readFrame(r, buf)
			if err != nil {
				t.add(sl.lats, 1, err)
				return nil
			}
			buf = f
			if err := sl.reply(int(binary.BigEndian.Uint64(f[4:12]))); err != nil {
				return fmt.Errorf("relay: %w", err)
			}
			if r.Buffered() == 0 {
				if err := wr.Flush(); err != nil {
					return err
				}
			}
		}
		t.add(sl.lats, 0, nil)
		return nil
	}), nil
}

func zmqLoad(cfg loadConfig, payload []byte) (func(window, *tally) error, error) {
	return dealerLoad(cfg, payload, nil)
}

// mdpLoad drives plain MDP/0.1 clients: a DEALER sending
// ["", MDPC01, service, body] and receiving the same shape back (MDP/0.1
// does not correlate replies; the echoed body carries the slot).
func mdpLoad(cfg loadConfig, payload []byte) (func(window, *tally) error, error) {
	return dealerLoad(cfg, payload, []any{"", "MDPC01", mdpService})
}

// dealerLoad drives M DEALER sockets with a window of in-flight messages
// each: one frame (a slot number and the payload), after the frames of
// prefix if any; a reply's last frame is the echoed one.
func dealerLoad(cfg loadConfig, payload []byte, prefix []any) (func(window, *tally) error, error) {
	socks := make([]*zmq.Socket, cfg.Clients)
	for i := range socks {
		s, err := zmq.NewSocket(zmq.DEALER)
		if err != nil {
			return nil, err
		}
		_ = s.SetLinger(0)
		_ = s.SetRcvtimeo(200 * time.Millisecond)
		if err := s.Connect(cfg.Addr); err != nil {
			return nil, err
		}
		socks[i] = s
	}
	return windowed(cfg, func(ci int, w window, t *tally) error {
		s := socks[ci]
		defer s.Close()
		msg := make([]byte, 8+len(payload))
		copy(msg[8:], payload)
		parts := append(append([]any(nil), prefix...), msg)
		sl := newSlots(cfg.InFlight, w, func(slot int) error {
			binary.BigEndian.PutUint64(msg, uint64(slot))
			var err error
			if prefix == nil {
				_, err = s.SendBytes(msg, 0)
			} else {
				_, err = s.SendMessage(parts...)
			}
			return err
		})
		if err := sl.start(); err != nil {
			return err
		}
		for sl.outstanding > 0 {
			var b []byte
			var err error
			if prefix == nil {
				b, err = s.RecvBytes(0)
			} else {
				var frames [][]byte
				if frames, err = s.RecvMessageBytes(0); err == nil {
					b = frames[len(frames)-1]
				}
			}
			if err != nil {
				if time.Now().After(w.end.Add(time.Second)) {
					t.add(sl.lats, int64(sl.outstanding), fmt.Errorf("zmq: %d replies missing", sl.outstanding))
					return nil
				}
				continue // receive timeout: try again
			}
			if len(b) < 8 {
				return fmt.Errorf("zmq: short reply")
			}
			if err := sl.reply(int(binary.BigEndian.Uint64(b))); err != nil {
				return fmt.Errorf("zmq: %w", err)
			}
		}
		t.add(sl.lats, 0, nil)
		return nil
	}), nil
}

// slots is one connection's window of requests in flight for the raw
// loads: each has a slot number its reply echoes.
type slots struct {
	sent        []time.Time // when each slot's request left
	lats        []time.Duration
	outstanding int
	w           window
	send        func(slot int) error
}

func newSlots(n int, w window, send func(slot int) error) *slots {
	return &slots{sent: make([]time.Time, n), lats: make([]time.Duration, 0, 1<<14), w: w, send: send}
}

// start sends a request on every slot.
func (s *slots) start() error {
	for slot := range s.sent {
		if err := s.sendOn(slot); err != nil {
			return err
		}
	}
	return nil
}

func (s *slots) sendOn(slot int) error {
	s.sent[slot] = time.Now()
	if err := s.send(slot); err != nil {
		return err
	}
	s.outstanding++
	return nil
}

// reply records the reply on slot (its latency, if inside the window) and
// sends the slot's next request while the window lasts.
func (s *slots) reply(slot int) error {
	if slot < 0 || slot >= len(s.sent) {
		return fmt.Errorf("reply for slot %d", slot)
	}
	t1 := time.Now()
	s.outstanding--
	if s.w.in(s.sent[slot], t1) {
		s.lats = append(s.lats, t1.Sub(s.sent[slot]))
	}
	if t1.Before(s.w.end) {
		return s.sendOn(slot)
	}
	return nil
}
