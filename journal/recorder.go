package journal

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/domo-framework/domo/broker"
)

// Config tunes a Recorder. The zero value is usable: DefaultConfig's values
// replace zero fields.
type Config struct {
	// Broker names the broker in every record (its --id), so a journal
	// shared by many brokers tells them apart.
	Broker string

	// BatchSize is how many records the Recorder gathers before it hands
	// them to the store in one transaction (default 1,000). When the store
	// is busy the batch keeps growing, up to MaxPending.
	BatchSize int
	// FlushInterval bounds how long a record waits before it is written
	// (default 100 ms): how stale the journal's view of in-progress
	// requests may be.
	FlushInterval time.Duration
	// MaxPending bounds the records waiting for the store (default
	// 100,000). When it is reached, events are dropped and counted in
	// Stats.Dropped: the broker never waits on the journal.
	MaxPending int

	// Retention deletes records received longer ago than this; 0 keeps
	// them.
	Retention time.Duration
	// MaxRows keeps at most this many records (the newest); 0 means no
	// limit.
	MaxRows int
	// TrimInterval is how often retention runs (default 1 minute).
	TrimInterval time.Duration

	// MaxBody is the most bytes of a body the journal keeps; 0 (the
	// default) keeps no bodies at all.
	MaxBody int
	// Sensitive reports methods whose bodies are never kept, whatever
	// MaxBody says. nil means none.
	Sensitive func(service, method string) bool

	// Logger receives write errors; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults: batches of 1,000 records or 100 ms,
// 100,000 records pending at most, retention every minute, no bodies.
func DefaultConfig() Config {
	return Config{
		BatchSize:     1000,
		FlushInterval: 100 * time.Millisecond,
		MaxPending:    100_000,
		TrimInterval:  time.Minute,
	}
}

// Body returns what the journal keeps of a request's or reply's body: nil
// when bodies are off or the method is sensitive, else at most MaxBody
// bytes (a copy). It is safe from several goroutines.
func (c Config) Body(service, method string, body []byte) []byte {
	if c.MaxBody <= 0 || body == nil || (c.Sensitive != nil && c.Sensitive(service, method)) {
		return nil
	}
	if len(body) > c.MaxBody {
		body = body[:c.MaxBody]
	}
	return slices.Clone(body)
}

// liveTTL is how long the Recorder remembers a request whose end it has not
// seen (its final event may have been dropped by the broker).
const liveTTL = time.Hour

// Stats counts what a Recorder did.
type Stats struct {
	Events      uint64 // events read from the broker
	Dropped     uint64 // events not recorded because the store could not keep up
	Written     uint64 // record writes that reached the store (a request may be written more than once)
	Batches     uint64 // transactions
	WriteErrors uint64 // failed transactions
	Lost        uint64 // record writes lost in failed transactions
	Trimmed     uint64 // records deleted by retention
	TrimErrors  uint64
	Pending     int // records waiting for the store now: gathered, or in a write not yet done
	Live        int // requests received and not yet ended
}

// A Recorder reads a broker's events, folds them by request into Records,
// and writes them to a Store in batches. One Recorder serves one broker.
type Recorder struct {
	store Store
	cfg   Config
	log   *slog.Logger
	run   int64

	// Owned by the reader goroutine (Run). A request's record is folded in
	// place in batch, the records changed since the last hand-off in the
	// order they first changed (about seq order, what stores like); the
	// batch itself is handed to the writer, so a record is neither
	// allocated nor copied on its own.
	// A live request (received, not yet ended) is in exactly one of
	// inBatch and held.
	batch   []Record
	inBatch map[int64]int32  // live requests whose record is in batch, at this index
	held    map[int64]Record // live requests whose record is not (handed off in progress, or the batch was full)

	work    chan writeJob // reader -> writer; unbuffered: a send succeeds only when the writer is idle
	flushes chan chan struct{}

	events, dropped, written, batches, writeErrs, lost, trimmed, trimErrs atomic.Uint64
	pending, writing, liveN                                               atomic.Int64
	running                                                               atomic.Bool
}

type writeJob struct {
	recs []Record
	done chan struct{} // closed when written (Flush), may be nil
}

// NewRecorder returns a Recorder writing to store. It does not start it:
// call Run.
func NewRecorder(store Store, cfg Config) *Recorder {
	d := DefaultConfig()
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = d.BatchSize
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = d.FlushInterval
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = d.MaxPending
	}
	if cfg.MaxPending < cfg.BatchSize {
		cfg.MaxPending = cfg.BatchSize
	}
	if cfg.TrimInterval <= 0 {
		cfg.TrimInterval = d.TrimInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Recorder{
		store:   store,
		cfg:     cfg,
		log:     log,
		run:     int64(binary.BigEndian.Uint64(b[:]) >> 1), // positive
		inBatch: make(map[int64]int32),
		held:    make(map[int64]Record),
		batch:   make([]Record, 0, batchCap(cfg)),
		work:    make(chan writeJob),
		flushes: make(chan chan struct{}),
	}
}

// RunID is the Run of the IDs of every record this Recorder writes.
func (r *Recorder) RunID() int64 { return r.run }

// Run reads events until ctx ends or events is closed, then writes what
// it holds (for up to 10 s) and returns. It blocks; call it once. The
// channel is the one given to broker.Config.Events; give it a generous
// buffer (10,000 or more, and at least busyPause's worth of events) so
// that bursts wait there, not in the broker's drop counter.
func (r *Recorder) Run(ctx context.Context, events <-chan broker.Event) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("journal: Recorder.Run called twice")
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.write(ctx)
	}()
	defer wg.Wait()
	defer close(r.work)

	tick := time.NewTicker(r.cfg.FlushInterval)
	defer tick.Stop()
	lastSweep := time.Now()
	// While events keep coming, Run does not wait on the channel: it
	// pauses busyPause between looks and folds what gathered meanwhile. A
	// receiver waiting on the channel is woken by the broker's loop for
	// every burst (a futex call and a thread switch, each 10-20 µs on a
	// VM), which cost the broker more than the events' own work; one timer
	// a pause costs less. An idle Recorder waits on the channel again.
	pause := time.NewTimer(busyPause)
	pause.Stop()
	defer pause.Stop()
	busy, pausing := false, false
	for {
		in, paused := events, (<-chan time.Time)(nil)
		if busy {
			in, paused = nil, pause.C
			if !pausing { // not again after a tick or a flush: the pause would never end
				pause.Reset(busyPause)
				pausing = true
			}
		}
		select {
		case e, ok := <-in:
			if ok {
				r.fold(e)
				_, ok = r.drain(events)
			}
			if !ok {
				r.handOff(nil, true)
				return nil
			}
			busy = true
		case <-paused:
			pausing = false
			n, ok := r.drain(events)
			if !ok {
				r.handOff(nil, true)
				return nil
			}
			busy = n > 0
		case <-tick.C:
			if len(r.batch) > 0 {
				r.handOff(nil, false)
			}
			if time.Since(lastSweep) > time.Minute {
				r.sweep()
				lastSweep = time.Now()
			}
		case done := <-r.flushes:
			// Everything sent before Flush was called is in the channel.
			for n := len(events); n > 0; n-- {
				e, ok := <-events
				if !ok {
					break
				}
				r.fold(e)
			}
			r.handOff(done, true)
		case <-ctx.Done():
			r.drain(events)
			r.handOff(nil, true)
			return nil
		}
	}
}

// busyPause is how long Run lets events gather between looks while they
// keep coming: a bound on how stale the journal's view is (besides
// FlushInterval), and what the channel's buffer must hold (at 200,000
// events a second, 1,000).
const busyPause = 5 * time.Millisecond

// drain folds every event queued in events, handing the batch off (if the
// writer is idle) when it is full, and returns how many it folded; open
// is false if events is closed.
func (r *Recorder) drain(events <-chan broker.Event) (n int, open bool) {
	full := func() bool { return len(r.batch) >= r.cfg.BatchSize }
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return n, false
			}
			r.fold(e)
			if n++; n%foldBurst == 0 && full() {
				r.handOff(nil, false)
			}
		default:
			if full() {
				r.handOff(nil, false)
			}
			return n, true
		}
	}
}

// foldBurst is how many queued events drain folds between looks at the
// batch's size.
const foldBurst = 256

// batchCap is the capacity a new batch gets: what it reaches before Run
// hands it off while the writer keeps up, so it is not reallocated (and
// its records copied) on the way.
func batchCap(cfg Config) int { return cfg.BatchSize + foldBurst + 1 }

// fold applies one event to its request's record.
func (r *Recorder) fold(e broker.Event) {
	r.events.Add(1)
	seq := int64(e.Seq)
	ended := e.Kind == broker.Completed || e.Kind == broker.Failed || e.Kind == broker.Dropped
	if idx, ok := r.inBatch[seq]; ok {
		r.apply(&r.batch[idx], e)
		if ended {
			delete(r.inBatch, seq)
		}
	} else {
		rec, ok := r.held[seq]
		if !ok {
			rec = r.newRecord(seq, e)
		}
		if len(r.batch) >= r.cfg.MaxPending {
			r.dropped.Add(1) // the batch is full: kept aside, or never written if it ends now
			r.apply(&rec, e)
			if ended {
				delete(r.held, seq)
			} else {
				r.held[seq] = rec
			}
		} else {
			delete(r.held, seq)
			r.batch = append(r.batch, rec)
			r.apply(&r.batch[len(r.batch)-1], e)
			if !ended {
				r.inBatch[seq] = int32(len(r.batch) - 1)
			}
		}
	}
	r.liveN.Store(int64(len(r.inBatch) + len(r.held)))
	r.pending.Store(int64(len(r.batch)))
}

// newRecord starts the record of request seq from its first event.
func (r *Recorder) newRecord(seq int64, e broker.Event) Record {
	rec := Record{
		ID:        ID{r.run, seq},
		Broker:    r.cfg.Broker,
		RequestID: e.RequestID,
		Service:   e.Service,
		Method:    e.Method,
		Client:    e.Client,
		Status:    StatusReceived,
		Received:  e.Received,
	}
	if rec.Received.IsZero() {
		rec.Received = e.Time
	}
	return rec
}

// apply folds event e into rec.
func (r *Recorder) apply(rec *Record, e broker.Event) {
	switch e.Kind {
	case broker.Received:
		rec.RequestBytes = e.Bytes
		if !e.Sensitive {
			rec.RequestBody = r.cfg.Body(e.Service, e.Method, e.Body)
		}
	case broker.Dispatched:
		rec.Attempts++
		if rec.Dispatched.IsZero() {
			rec.Dispatched = e.Time
		}
		rec.LastDispatched = e.Time
		rec.Worker = e.Worker
		rec.Status = StatusProcessing
	case broker.Completed, broker.Failed, broker.Dropped:
		rec.Status = StatusCompleted
		if e.Kind == broker.Failed {
			rec.Status = StatusFailed
		} else if e.Kind == broker.Dropped {
			rec.Status = StatusDropped
		}
		rec.Ended = e.Time
		if e.Worker != "" {
			rec.Worker = e.Worker
		}
		rec.Code, rec.Message = string(e.Code), e.Message
		if e.Kind != broker.Dropped {
			rec.ReplyBytes = e.Bytes
			if !e.Sensitive {
				rec.ReplyBody = r.cfg.Body(e.Service, e.Method, e.Body)
			}
		}
	}
}

// handOff gives the batch to the writer: at once if it is idle, else (wait
// false) not at all, so the batch keeps growing; with wait it blocks until
// the writer takes it.
func (r *Recorder) handOff(done chan struct{}, wait bool) {
	if len(r.batch) == 0 && done == nil {
		return
	}
	job := writeJob{recs: r.batch, done: done}
	if wait {
		// Reset before the send: the writer may finish and close done
		// before this goroutine runs again, and whoever waits on done
		// must then see nothing pending.
		r.resetBatch()
		r.work <- job
		return
	}
	select {
	case r.work <- job:
		// The writer only reads the records: the live ones can still be
		// copied out.
		r.resetBatch()
	default:
	}
}

// resetBatch starts a new batch after a hand-off, keeping the records of
// requests still live in held; the writer counts the handed-off records
// as pending until they are written.
func (r *Recorder) resetBatch() {
	for seq, idx := range r.inBatch {
		r.held[seq] = r.batch[idx]
	}
	clear(r.inBatch)
	r.batch = make([]Record, 0, batchCap(r.cfg))
	r.pending.Store(0)
}

// sweep forgets requests whose end never came.
func (r *Recorder) sweep() {
	cut := time.Now().Add(-liveTTL)
	for seq, rec := range r.held {
		if rec.Received.Before(cut) {
			delete(r.held, seq)
		}
	}
	r.liveN.Store(int64(len(r.inBatch) + len(r.held)))
}

// write is the writer goroutine: it writes batches and applies retention.
func (r *Recorder) write(ctx context.Context) {
	var trim <-chan time.Time
	if r.cfg.Retention > 0 || r.cfg.MaxRows > 0 {
		t := time.NewTicker(r.cfg.TrimInterval)
		defer t.Stop()
		trim = t.C
	}
	// Writes outlive ctx by a little, so that Run's final batch lands.
	wctx := context.WithoutCancel(ctx)
	for {
		select {
		case job, ok := <-r.work:
			if !ok {
				return
			}
			if len(job.recs) > 0 {
				r.writing.Store(int64(len(job.recs)))
				c, cancel := context.WithTimeout(wctx, 10*time.Second)
				err := r.store.Write(c, job.recs)
				cancel()
				r.batches.Add(1)
				if err != nil {
					n := r.writeErrs.Add(1)
					r.lost.Add(uint64(len(job.recs)))
					if n == 1 || n%100 == 0 {
						r.log.Warn("journal: write failed; records lost", "records", len(job.recs), "failures", n, "err", err)
					}
				} else {
					r.written.Add(uint64(len(job.recs)))
				}
				r.writing.Store(0)
			}
			if job.done != nil {
				close(job.done)
			}
		case <-trim:
			if ctx.Err() == nil {
				r.Trim(ctx)
			}
		}
	}
}

// Trim applies retention now. Run calls it every TrimInterval; it is
// exported for tests and tools. It blocks; it is safe from several
// goroutines (the store serializes).
func (r *Recorder) Trim(ctx context.Context) {
	var before time.Time
	if r.cfg.Retention > 0 {
		before = time.Now().Add(-r.cfg.Retention)
	}
	n, err := r.store.Trim(ctx, before, r.cfg.MaxRows)
	r.trimmed.Add(uint64(n))
	if err != nil {
		r.trimErrs.Add(1)
		r.log.Warn("journal: retention failed", "err", err)
	}
}

// Flush waits until every event read so far is written (or failed). It
// blocks while the store is slow; it is safe from several goroutines.
func (r *Recorder) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case r.flushes <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the Recorder's counters. It is safe from several goroutines.
func (r *Recorder) Stats() Stats {
	return Stats{
		Events:      r.events.Load(),
		Dropped:     r.dropped.Load(),
		Written:     r.written.Load(),
		Batches:     r.batches.Load(),
		WriteErrors: r.writeErrs.Load(),
		Lost:        r.lost.Load(),
		Trimmed:     r.trimmed.Load(),
		TrimErrors:  r.trimErrs.Load(),
		Pending:     int(r.pending.Load() + r.writing.Load()),
		Live:        int(r.liveN.Load()),
	}
}
