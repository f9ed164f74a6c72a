package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/domo-framework/domo/journal"
)

// Sample is one live measurement of the broker, taken every
// Config.Interval while the dashboard runs.
type Sample struct {
	Time     time.Time `json:"time"`
	Up       bool      `json:"up"`
	Services int       `json:"services"`
	Workers  int       `json:"workers"`
	Ready    int       `json:"ready"`
	Capacity int       `json:"capacity"`
	InFlight int       `json:"in_flight"`
	Queued   int       `json:"queued"`
	// Rate and ErrorRate are per second since the previous sample, from the
	// broker's counters: requests received, and requests refused or lost
	// by the broker (overloaded, unknown service, expired, worker lost).
	Rate      float64 `json:"rate"`
	ErrorRate float64 `json:"error_rate"`
	counters  Counters
}

// Tick is what the event stream sends every Config.Interval (SSE event
// "tick"): the overview, the newest sample, and the id of the newest
// request in the journal, so that a page knows when to reload its list.
type Tick struct {
	Health Health `json:"health"`
	Sample Sample `json:"sample"`
	Latest string `json:"latest,omitempty"`
}

// start starts the sampler once.
func (d *Dashboard) start() {
	d.startOnce.Do(func() {
		if d.ctx.Err() != nil {
			return
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.sample(d.ctx)
		}()
	})
}

// sample measures the broker every Interval, keeps the history and sends
// ticks to the event streams, until ctx ends. A slow broker or journal
// delays the next tick (the ticker drops what it missed), never piles up.
func (d *Dashboard) sample(ctx context.Context) {
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	var prev *Sample
	for {
		h := d.Health(ctx)
		s := Sample{Time: h.Time, Up: h.Up, Services: h.Services, Workers: h.Workers, Ready: h.Ready,
			Capacity: h.Capacity, InFlight: h.InFlight, Queued: h.Queued, counters: h.Counters}
		if prev != nil && h.Up && prev.Up {
			if secs := s.Time.Sub(prev.Time).Seconds(); secs > 0 {
				s.Rate = float64(s.counters.Requests-prev.counters.Requests) / secs
				bad := func(c Counters) uint64 { return c.Overloaded + c.UnknownService + c.Expired + c.WorkerLost }
				s.ErrorRate = float64(bad(s.counters)-bad(prev.counters)) / secs
			}
		}
		prev = &s
		tick := Tick{Health: h, Sample: s}
		if d.cfg.Journal != nil {
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if p, err := d.cfg.Journal.List(lctx, journal.Filter{Limit: 1}); err == nil && len(p.Records) > 0 {
				tick.Latest = p.Records[0].ID.String()
			}
			cancel()
		}
		msg, err := json.Marshal(tick)
		if err == nil {
			d.publish(s, msg)
		}
		select {
		case <-ctx.Done():
			d.mu.Lock()
			for ch := range d.subs {
				close(ch)
				delete(d.subs, ch)
			}
			d.mu.Unlock()
			return
		case <-t.C:
		}
	}
}

// publish records s in the history and sends msg to every stream; a
// stream with no room misses it (the next one carries the same state).
func (d *Dashboard) publish(s Sample, msg []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.history) < d.cfg.History {
		d.history = append(d.history, s)
	} else {
		d.history[d.next] = s
		d.next = (d.next + 1) % d.cfg.History
	}
	d.last = msg
	for ch := range d.subs {
		select {
		case ch <- msg:
		default:
		}
	}
}

// Live returns the samples kept, oldest first.
func (d *Dashboard) Live() []Sample {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Sample, 0, len(d.history))
	out = append(out, d.history[d.next:]...)
	return append(out, d.history[:d.next]...)
}

func (d *Dashboard) subscribe() (chan []byte, []byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return nil, nil, false
	}
	ch := make(chan []byte, 4)
	d.subs[ch] = struct{}{}
	return ch, d.last, true
}

func (d *Dashboard) unsubscribe(ch chan []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.subs, ch)
}

// HandleEvents serves the live updates as server-sent events: a "tick"
// (JSON Tick) every Config.Interval, and a comment every 15 s so proxies
// keep the connection.
func (d *Dashboard) HandleEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	ch, last, ok := d.subscribe()
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "dashboard closed")
		return
	}
	defer d.unsubscribe(ch)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n\n")
	if last != nil {
		fmt.Fprintf(w, "event: tick\ndata: %s\n\n", last)
	}
	flusher.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case msg, ok := <-ch:
			if !ok {
				return
			}
			if _, err := fmt.Fprintf(w, "event: tick\ndata: %s\n\n", msg); err != nil {
				return
			}
			flusher.Flush()
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-r.Context().Done():
			return
		}
	}
}
