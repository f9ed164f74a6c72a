package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/mdp"
)

// The dashboard's data: each function returns what one API endpoint
// answers (the Handle functions in api.go are thin HTTP wrappers), so a
// tool can use them without HTTP. All are safe from several goroutines and
// block on the broker and the journal.

// ErrJournalOff is returned by the request functions when Config.Journal is
// nil.
var ErrJournalOff = errors.New("dashboard: the journal is off")

// Counters are the broker's counters since it started.
type Counters struct {
	Requests       uint64 `json:"requests"`
	Replies        uint64 `json:"replies"`
	Errors         uint64 `json:"errors"`
	Overloaded     uint64 `json:"overloaded"`
	UnknownService uint64 `json:"unknown_service"`
	Expired        uint64 `json:"expired"`
	Retried        uint64 `json:"retried"`
	WorkerLost     uint64 `json:"worker_lost"`
	WorkersExpired uint64 `json:"workers_expired"`
	Malformed      uint64 `json:"malformed"`
	Offloaded      uint64 `json:"offloaded"`
	EventsDropped  uint64 `json:"events_dropped"`
}

func counters(c broker.Counters) Counters {
	return Counters{
		Requests: c.Requests, Replies: c.Replies, Errors: c.Errors, Overloaded: c.Overloaded,
		UnknownService: c.UnknownService, Expired: c.Expired, Retried: c.Retried, WorkerLost: c.WorkerLost,
		WorkersExpired: c.WorkersExpired, Malformed: c.Malformed, Offloaded: c.Offloaded, EventsDropped: c.EventsDropped,
	}
}

// WindowSummary is a journal Summary with its window and rates.
type WindowSummary struct {
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Total      int       `json:"total"`
	InProgress int       `json:"in_progress"`
	Received   int       `json:"received"`
	Processing int       `json:"processing"`
	Completed  int       `json:"completed"`
	Failed     int       `json:"failed"`
	Dropped    int       `json:"dropped"`
	Rate       float64   `json:"rate"`       // requests per second
	ErrorRate  float64   `json:"error_rate"` // (failed + dropped) / ended, 0..1
	P50        float64   `json:"p50_ms"`
	P90        float64   `json:"p90_ms"`
	P99        float64   `json:"p99_ms"`
	Max        float64   `json:"max_ms"`
}

func windowSummary(from, to time.Time, s journal.Summary) WindowSummary {
	w := WindowSummary{
		From: from, To: to, Total: s.Total, InProgress: s.Received + s.Processing,
		Received: s.Received, Processing: s.Processing, Completed: s.Completed, Failed: s.Failed, Dropped: s.Dropped,
		P50: ms(s.P50), P90: ms(s.P90), P99: ms(s.P99), Max: ms(s.Max),
	}
	if secs := to.Sub(from).Seconds(); secs > 0 {
		w.Rate = float64(s.Total) / secs
	}
	if ended := s.Completed + s.Failed + s.Dropped; ended > 0 {
		w.ErrorRate = float64(s.Failed+s.Dropped) / float64(ended)
	}
	return w
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Health is the overview: the broker, its peers, totals over its services
// and workers, and (with a journal) the last minute's requests.
type Health struct {
	Title     string            `json:"title"`
	Time      time.Time         `json:"time"`
	Up        bool              `json:"up"`
	Error     string            `json:"error,omitempty"`
	Started   time.Time         `json:"started"`
	Uptime    float64           `json:"uptime_s"`
	Endpoints []string          `json:"endpoints"`
	Draining  bool              `json:"draining"`
	Brokers   int               `json:"brokers"` // this one and its live peers
	Peers     []broker.PeerInfo `json:"peers"`
	Services  int               `json:"services"`
	Workers   int               `json:"workers"`
	Ready     int               `json:"ready"`
	Capacity  int               `json:"capacity"`
	InFlight  int               `json:"in_flight"`
	Queued    int               `json:"queued"`
	Counters  Counters          `json:"counters"`
	Journal   bool              `json:"journal"`
	// LastMinute summarizes the journal's requests of the last 60 s.
	LastMinute *WindowSummary `json:"last_minute,omitempty"`
	// ServiceList is each service's live numbers (no contracts).
	ServiceList []mdp.ServiceInfo `json:"service_list"`
}

// Health returns the overview. A broker that does not answer is reported
// (Up false, Error set), not returned as an error.
func (d *Dashboard) Health(ctx context.Context) Health {
	h := Health{Title: d.cfg.Title, Time: time.Now(), Journal: d.cfg.Journal != nil,
		Peers: []broker.PeerInfo{}, Endpoints: []string{}, ServiceList: []mdp.ServiceInfo{}}
	st, err := d.stats(ctx)
	if err != nil {
		h.Error = err.Error()
	} else {
		d.fillHealth(&h, st)
	}
	if d.cfg.Journal != nil {
		to := h.Time.Truncate(time.Second)
		from := to.Add(-time.Minute)
		if s, err := d.summary(ctx, journal.Window{From: from, To: to}, time.Second); err == nil {
			h.LastMinute = &s
		} else if h.Error == "" {
			h.Error = err.Error()
		}
	}
	return h
}

func (d *Dashboard) fillHealth(h *Health, st broker.Stats) {
	h.Up = true
	h.Started = st.Started
	h.Uptime = time.Since(st.Started).Seconds()
	if st.Endpoints != nil {
		h.Endpoints = st.Endpoints
	}
	h.Draining = st.Draining
	h.Brokers = 1
	if st.Peers != nil {
		h.Peers = st.Peers
	}
	for _, p := range st.Peers {
		if p.Alive {
			h.Brokers++
		}
	}
	h.Services = len(st.Services)
	h.Workers = len(st.Workers)
	for _, s := range st.Services {
		h.Ready += s.Ready
		h.Capacity += s.Capacity
		h.Queued += s.Queued
	}
	h.InFlight = st.InFlight
	h.Counters = counters(st.Counters)
	if st.Services != nil {
		h.ServiceList = slices.Clone(st.Services)
		slices.SortFunc(h.ServiceList, func(a, b mdp.ServiceInfo) int { return strings.Compare(a.Name, b.Name) })
	}
}

func (d *Dashboard) stats(ctx context.Context) (broker.Stats, error) {
	if d.cfg.Broker == nil {
		return broker.Stats{}, errors.New("dashboard: no broker configured")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := d.cfg.Broker.Stats(ctx)
	if err != nil {
		return st, &brokerError{err}
	}
	return st, nil
}

// brokerError is a broker that did not answer (503).
type brokerError struct{ err error }

func (e *brokerError) Error() string { return "broker: " + e.err.Error() }
func (e *brokerError) Unwrap() error { return e.err }

// Service is one service: its live numbers, its workers, its methods (from
// its contract) and, with a journal, its last five minutes.
type Service struct {
	mdp.ServiceInfo
	Doc        string           `json:"doc,omitempty"`
	MethodList []Method         `json:"method_list"`
	WorkerList []mdp.WorkerInfo `json:"worker_list"`
	Recent     *WindowSummary   `json:"recent,omitempty"`
}

// Method is one method of a service's contract.
type Method struct {
	Name      string          `json:"name"`
	Doc       string          `json:"doc,omitempty"`
	Streaming bool            `json:"streaming,omitempty"`
	Request   json.RawMessage `json:"request,omitempty"`
	Reply     json.RawMessage `json:"reply,omitempty"`
	Recent    *WindowSummary  `json:"recent,omitempty"`
}

// Services returns every service the broker knows, by name.
func (d *Dashboard) Services(ctx context.Context) ([]Service, error) {
	st, err := d.stats(ctx)
	if err != nil {
		return nil, err
	}
	contracts := d.contracts(ctx)
	now := time.Now().Truncate(time.Second)
	out := make([]Service, 0, len(st.Services))
	for _, si := range st.Services {
		s := Service{ServiceInfo: si, MethodList: []Method{}, WorkerList: []mdp.WorkerInfo{}}
		for _, w := range st.Workers {
			if w.Service == si.Name {
				s.WorkerList = append(s.WorkerList, w)
			}
		}
		if c, ok := contracts[si.Name]; ok {
			s.Doc = c.Doc
			for _, m := range c.Methods {
				s.MethodList = append(s.MethodList, Method{Name: m.Name, Doc: m.Doc, Streaming: m.Streaming, Request: m.Request, Reply: m.Reply})
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Service) int { return strings.Compare(a.Name, b.Name) })
	if d.cfg.Journal != nil {
		// Each service's (and method's) last five minutes, a few at a time.
		from := now.Add(-5 * time.Minute)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for i := range out {
			s := &out[i]
			run := func(method string, dst **WindowSummary) {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				if sum, err := d.summary(ctx, journal.Window{From: from, To: now, Service: s.Name, Method: method}, 2*time.Second); err == nil {
					*dst = &sum
				}
			}
			wg.Add(1)
			go run("", &s.Recent)
			for j := range s.MethodList {
				wg.Add(1)
				go run(s.MethodList[j].Name, &s.MethodList[j].Recent)
			}
		}
		wg.Wait()
	}
	return out, nil
}

// contracts returns the services' contracts by name, cached; none when
// Config.Contracts is nil or fails.
func (d *Dashboard) contracts(ctx context.Context) map[string]mdp.ServiceContract {
	if d.cfg.Contracts == nil {
		return nil
	}
	v, err := d.cache.do("contracts", d.cfg.ContractsTTL, func() (any, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		list, err := d.cfg.Contracts(ctx)
		if err != nil {
			return nil, err
		}
		m := make(map[string]mdp.ServiceContract, len(list))
		for _, c := range list {
			m[c.Service] = c
		}
		return m, nil
	})
	if err != nil {
		d.log.Debug("dashboard: contracts", "err", err)
		return nil
	}
	return v.(map[string]mdp.ServiceContract)
}

// Request is one journal record, for the list and the detail page.
type Request struct {
	ID             string     `json:"id"`
	Broker         string     `json:"broker,omitempty"`
	RequestID      string     `json:"request_id"`
	Service        string     `json:"service"`
	Method         string     `json:"method"`
	Client         string     `json:"client"`
	Worker         string     `json:"worker"`
	Status         string     `json:"status"`
	Code           string     `json:"code,omitempty"`
	Message        string     `json:"message,omitempty"`
	Attempts       int        `json:"attempts"`
	RequestBytes   int        `json:"request_bytes"`
	ReplyBytes     int        `json:"reply_bytes"`
	Received       time.Time  `json:"received"`
	Dispatched     *time.Time `json:"dispatched,omitempty"`
	LastDispatched *time.Time `json:"last_dispatched,omitempty"`
	Ended          *time.Time `json:"ended,omitempty"`
	QueueMS        float64    `json:"queue_ms"`
	HandlingMS     float64    `json:"handling_ms"`
	TotalMS        float64    `json:"total_ms"`
}

// RequestDetail is one request with its timeline and, if the journal kept
// them, its bodies.
type RequestDetail struct {
	Request
	Timeline    []Step `json:"timeline"`
	RequestBody *Body  `json:"request_body,omitempty"`
	ReplyBody   *Body  `json:"reply_body,omitempty"`
}

// Step is one entry of a request's timeline; At is its offset from receipt.
type Step struct {
	Time   time.Time `json:"time"`
	At     float64   `json:"at_ms"`
	What   string    `json:"what"`
	Worker string    `json:"worker,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// Body is a kept body: Text when it is UTF-8, else Base64.
type Body struct {
	Text   string `json:"text,omitempty"`
	Base64 []byte `json:"base64,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toRequest(r *journal.Record) Request {
	return Request{
		ID: r.ID.String(), Broker: r.Broker, RequestID: r.RequestID, Service: r.Service, Method: r.Method,
		Client: r.Client, Worker: r.Worker, Status: r.Status.String(), Code: r.Code, Message: r.Message,
		Attempts: r.Attempts, RequestBytes: r.RequestBytes, ReplyBytes: r.ReplyBytes,
		Received: r.Received, Dispatched: optTime(r.Dispatched), LastDispatched: optTime(r.LastDispatched), Ended: optTime(r.Ended),
		QueueMS: ms(r.QueueWait()), HandlingMS: ms(r.Handling()), TotalMS: ms(r.Total()),
	}
}

func body(b []byte) *Body {
	if b == nil {
		return nil
	}
	if utf8.Valid(b) {
		return &Body{Text: string(b)}
	}
	return &Body{Base64: b}
}

// RequestPage is one page of requests, newest first.
type RequestPage struct {
	Requests []Request `json:"requests"`
	// Next is the cursor of the following (older) page; empty at the end.
	Next string `json:"next,omitempty"`
}

// Query selects requests: a journal.Filter, and Search, which matches a
// request id (the caller's) or a journal id ("run-seq").
type Query struct {
	journal.Filter
	Search string
}

// Requests returns one page of the requests q selects, by keyset: never
// more than the page from the store.
func (d *Dashboard) Requests(ctx context.Context, q Query) (RequestPage, error) {
	if d.cfg.Journal == nil {
		return RequestPage{}, ErrJournalOff
	}
	f := q.Filter
	search := strings.TrimSpace(q.Search)
	if search != "" {
		f.RequestID = search
	}
	page, err := d.cfg.Journal.List(ctx, f)
	if err != nil {
		return RequestPage{}, err
	}
	if search != "" && len(page.Records) == 0 && f.After == "" {
		if id, err := journal.ParseID(search); err == nil {
			if r, err := d.cfg.Journal.Get(ctx, id); err == nil {
				page.Records = []journal.Record{r}
			}
		}
	}
	out := RequestPage{Requests: make([]Request, len(page.Records)), Next: page.Next}
	for i := range page.Records {
		out.Requests[i] = toRequest(&page.Records[i])
	}
	return out, nil
}

// Request returns one request by its journal id; journal.ErrNotFound if
// the journal has no such request.
func (d *Dashboard) Request(ctx context.Context, id journal.ID) (RequestDetail, error) {
	if d.cfg.Journal == nil {
		return RequestDetail{}, ErrJournalOff
	}
	r, err := d.cfg.Journal.Get(ctx, id)
	if err != nil {
		return RequestDetail{}, err
	}
	det := RequestDetail{Request: toRequest(&r), RequestBody: body(r.RequestBody), ReplyBody: body(r.ReplyBody)}
	for _, s := range r.Timeline() {
		det.Timeline = append(det.Timeline, Step{Time: s.Time, At: ms(s.Time.Sub(r.Received)), What: s.What, Worker: s.Worker, Detail: s.Detail})
	}
	return det, nil
}

// Summary summarizes the journal's requests received in w.
func (d *Dashboard) Summary(ctx context.Context, w journal.Window) (WindowSummary, error) {
	if d.cfg.Journal == nil {
		return WindowSummary{}, ErrJournalOff
	}
	return d.summary(ctx, w, time.Second)
}

// settle is how long after a window ends its records may still change (the
// requests in it end): a window older than that is cached for long.
const settle = 2 * time.Minute

// summary is Summary, cached: for ttl while the window is recent, for ten
// minutes once it has settled. Many open pages cost one query.
func (d *Dashboard) summary(ctx context.Context, w journal.Window, ttl time.Duration) (WindowSummary, error) {
	if time.Since(w.To) > settle {
		ttl = 10 * time.Minute
	}
	key := fmt.Sprintf("sum|%d|%d|%s|%s", w.From.UnixMicro(), w.To.UnixMicro(), w.Service, w.Method)
	v, err := d.cache.do(key, ttl, func() (any, error) {
		s, err := d.cfg.Journal.Summary(ctx, w)
		if err != nil {
			return nil, err
		}
		return windowSummary(w.From, w.To, s), nil
	})
	if err != nil {
		return WindowSummary{}, err
	}
	return v.(WindowSummary), nil
}

// Series is a run of equal windows ending now: requests, errors and
// latency over time.
type Series struct {
	Step   float64         `json:"step_s"`
	Points []WindowSummary `json:"points"`
}

// SeriesQuery selects a Series: Range back from now in Buckets windows
// (each a whole number of seconds, aligned to the clock), optionally one
// service and method.
type SeriesQuery struct {
	Range   time.Duration
	Buckets int
	Service string
	Method  string
}

// Series returns the journal's summaries over q's windows, oldest first.
// Settled windows are cached, so a page polling it queries only the newest.
func (d *Dashboard) Series(ctx context.Context, q SeriesQuery) (Series, error) {
	if d.cfg.Journal == nil {
		return Series{}, ErrJournalOff
	}
	if q.Range <= 0 {
		q.Range = 15 * time.Minute
	}
	if q.Buckets <= 0 {
		q.Buckets = 60
	}
	q.Buckets = min(q.Buckets, 240)
	step := max(time.Second, (q.Range / time.Duration(q.Buckets)).Truncate(time.Second))
	end := time.Now().Truncate(step).Add(step)
	start := end.Add(-step * time.Duration(q.Buckets))
	s := Series{Step: step.Seconds(), Points: make([]WindowSummary, q.Buckets)}
	errs := make([]error, q.Buckets)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range q.Buckets {
		from := start.Add(step * time.Duration(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s.Points[i], errs[i] = d.summary(ctx, journal.Window{From: from, To: from.Add(step), Service: q.Service, Method: q.Method}, time.Second)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Series{}, err
	}
	// The newest window is still open: its rate is over the part elapsed.
	last := &s.Points[len(s.Points)-1]
	if el := time.Since(last.From).Seconds(); el > 0 && el < step.Seconds() {
		last.Rate = float64(last.Total) / max(el, 1)
	}
	return s, nil
}
