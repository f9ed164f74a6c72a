package journal

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Status is where a request is in its life.
type Status uint8

// The statuses of a request. Received and Processing are "in progress".
const (
	StatusReceived   Status = iota + 1 // queued at the broker, not yet given to a worker
	StatusProcessing                   // given to a worker (or a peer broker)
	StatusCompleted                    // answered with a success
	StatusFailed                       // answered with an error
	StatusDropped                      // dropped unanswered (its deadline passed in a queue)
)

var statusNames = [...]string{"", "received", "processing", "completed", "failed", "dropped"}

func (s Status) String() string {
	if int(s) < len(statusNames) && s != 0 {
		return statusNames[s]
	}
	return "unknown"
}

// Done reports whether s is final.
func (s Status) Done() bool { return s >= StatusCompleted }

// ParseStatus parses a status name; "in-progress" (or "in_progress") is not a
// status: use Filter.InProgress.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if i > 0 && n == s {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("journal: unknown status %q", s)
}

// ID identifies one request in a journal. Run is chosen at random by each
// Recorder when it starts (so many brokers, and restarts of one, never
// collide in a shared store); Seq is the broker's number for the request.
type ID struct {
	Run int64
	Seq int64
}

// String formats id as "run-seq" (both decimal); ParseID reverses it.
func (id ID) String() string {
	return strconv.FormatInt(id.Run, 10) + "-" + strconv.FormatInt(id.Seq, 10)
}

// ParseID parses the form ID.String returns.
func ParseID(s string) (ID, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return ID{}, fmt.Errorf("journal: bad id %q", s)
	}
	run, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return ID{}, fmt.Errorf("journal: bad id %q", s)
	}
	return ID{run, seq}, nil
}

// Record is one request's life: one row in a store, rewritten as the
// request moves on. Times are zero when the step has not happened.
type Record struct {
	ID        ID
	Broker    string // the broker that handled it (Recorder's Config.Broker)
	RequestID string // the domo request id; empty for a plain MDP request
	Service   string
	Method    string
	Client    string // the client's routing id, hex
	Worker    string // the last worker (or peer broker) it was given to
	Status    Status
	Code      string // Failed, Dropped: the error code
	Message   string // Failed: the error message
	Attempts  int    // how many times it was dispatched

	RequestBytes int
	ReplyBytes   int

	Received       time.Time
	Dispatched     time.Time // first dispatch
	LastDispatched time.Time // last dispatch (== Dispatched unless it was moved)
	Ended          time.Time // completed, failed or dropped

	// RequestBody and ReplyBody are stored only when the Recorder is told
	// to (Config.MaxBody), capped, and never for sensitive methods.
	RequestBody []byte
	ReplyBody   []byte
}

// QueueWait is the time from receipt to first dispatch (or to the end, if it
// was never dispatched; or 0 while still queued).
func (r *Record) QueueWait() time.Duration {
	switch {
	case !r.Dispatched.IsZero():
		return r.Dispatched.Sub(r.Received)
	case !r.Ended.IsZero():
		return r.Ended.Sub(r.Received)
	}
	return 0
}

// Handling is the time from the last dispatch to the end (0 if either has
// not happened).
func (r *Record) Handling() time.Duration {
	if r.LastDispatched.IsZero() || r.Ended.IsZero() {
		return 0
	}
	return r.Ended.Sub(r.LastDispatched)
}

// Total is the time from receipt to the end (0 while in progress).
func (r *Record) Total() time.Duration {
	if r.Ended.IsZero() {
		return 0
	}
	return r.Ended.Sub(r.Received)
}

// Step is one entry of a request's timeline.
type Step struct {
	Time   time.Time
	What   string // "received", "dispatched", "redispatched", "completed", "failed", "dropped"
	Worker string
	Detail string // error code and message for failed and dropped
}

// Timeline returns the request's steps in order, for display.
func (r *Record) Timeline() []Step {
	steps := []Step{{Time: r.Received, What: "received"}}
	if !r.Dispatched.IsZero() {
		w := r.Worker
		if r.Attempts > 1 {
			w = ""
		}
		steps = append(steps, Step{Time: r.Dispatched, What: "dispatched", Worker: w})
		if r.Attempts > 1 {
			steps = append(steps, Step{Time: r.LastDispatched, What: "redispatched",
				Worker: r.Worker, Detail: fmt.Sprintf("attempt %d", r.Attempts)})
		}
	}
	if r.Status.Done() {
		s := Step{Time: r.Ended, What: r.Status.String()}
		if r.Status != StatusDropped {
			s.Worker = r.Worker
		}
		if r.Code != "" {
			s.Detail = r.Code
			if r.Message != "" {
				s.Detail += ": " + r.Message
			}
		}
		steps = append(steps, s)
	}
	return steps
}

// Filter selects records for Store.List. Zero fields select everything.
type Filter struct {
	Service    string
	Method     string // the method name within Service
	RequestID  string
	Status     Status // one status; 0 for any
	InProgress bool   // received or processing (overrides Status)
	From, To   time.Time
	// Limit bounds the page (default 50, at most 1000).
	Limit int
	// After is the cursor a previous Page returned in Next: the page then
	// continues after it (older records). Keyset pagination: stable and
	// cheap however deep.
	After string
}

// Page is one page of records, newest first.
type Page struct {
	Records []Record
	Next    string // cursor for Filter.After; empty when there are no more
}

// Window selects records for Store.Summary by receipt time [From, To), and
// optionally by service and method.
type Window struct {
	From, To time.Time
	Service  string
	Method   string
}

// Summary counts a window's requests by status and gives the latency
// percentiles (total time) of those that ended with an answer.
//
// The SQL stores keep per-minute rollups (counts and a histogram of total
// times in fixed log-spaced buckets, each about 1.45 times the last, from
// 50 µs to 60 s), and answer a window holding at least one whole minute
// from them: the counts and Max stay exact, but P50, P90 and P99 are then
// estimated within one bucket of the exact value. Shorter windows are
// exact.
type Summary struct {
	Total      int
	Received   int
	Processing int
	Completed  int
	Failed     int
	Dropped    int
	P50        time.Duration
	P90        time.Duration
	P99        time.Duration
	Max        time.Duration
}

// Store is where records live. Implementations (journal/sqlite,
// journal/postgres) are safe for use from several goroutines; Write is
// called from one goroutine at a time.
type Store interface {
	// Write inserts or replaces records (by ID) in one transaction; of
	// records sharing an ID, the last wins. Text a store cannot keep (not
	// UTF-8, a NUL, longer than its bound) is mended, never a reason to
	// fail the batch. It blocks.
	Write(ctx context.Context, recs []Record) error
	// Trim deletes records received before olderThan (if not zero) and then
	// the oldest records beyond maxRows (if > 0). It returns how many it
	// deleted. It blocks.
	Trim(ctx context.Context, olderThan time.Time, maxRows int) (int, error)
	// List returns records matching f, newest first.
	List(ctx context.Context, f Filter) (Page, error)
	// Get returns one record, or ErrNotFound.
	Get(ctx context.Context, id ID) (Record, error)
	// Summary counts and measures the records received in a window. A
	// record's latency counts once it is final (completed, failed or
	// dropped) and from the first Write that makes it so: writing it again
	// does not count it twice, and a later change of a final record's
	// status or times is not reflected in windows of a minute or more.
	Summary(ctx context.Context, w Window) (Summary, error)
	// Close releases the store. It is idempotent.
	Close() error
}

// ErrNotFound is returned by Store.Get for an unknown id.
var ErrNotFound = errors.New("journal: record not found")

// Cursor encodes a keyset position (received time, id) for Page.Next.
func Cursor(received time.Time, id ID) string {
	return strconv.FormatInt(received.UnixMicro(), 10) + "." + id.String()
}

// ParseCursor decodes what Cursor encodes.
func ParseCursor(s string) (receivedMicros int64, id ID, err error) {
	a, b, ok := strings.Cut(s, ".")
	if !ok {
		return 0, ID{}, fmt.Errorf("journal: bad cursor %q", s)
	}
	receivedMicros, err = strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, ID{}, fmt.Errorf("journal: bad cursor %q", s)
	}
	id, err = ParseID(b)
	if err != nil {
		return 0, ID{}, fmt.Errorf("journal: bad cursor %q", s)
	}
	return receivedMicros, id, nil
}

// PageLimit returns f.Limit bounded to [1, 1000], 50 by default.
func (f Filter) PageLimit() int {
	switch {
	case f.Limit <= 0:
		return 50
	case f.Limit > 1000:
		return 1000
	}
	return f.Limit
}
