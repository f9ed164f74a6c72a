package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/domo-framework/domo/journal"
)

// The JSON API: thin wrappers over the data functions in data.go. Errors
// are answered as {"error": "..."} with a status; a journal that is off as
// 503 with {"error": ..., "journal": false}.

func writeJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": msg})
}

// fail answers err with the status it calls for.
func (d *Dashboard) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrJournalOff):
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": err.Error(), "journal": false})
	case errors.Is(err, journal.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.As(err, new(*brokerError)):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.As(err, new(*badRequest)):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		d.log.Warn("dashboard: api", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// HandleHealth answers GET api/health with Health.
func (d *Dashboard) HandleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, d.Health(r.Context()))
}

// HandleServices answers GET api/services with Services.
func (d *Dashboard) HandleServices(w http.ResponseWriter, r *http.Request) {
	s, err := d.Services(r.Context())
	if err != nil {
		d.fail(w, err)
		return
	}
	writeJSON(w, s)
}

// HandleRequests answers GET api/requests with a RequestPage. Parameters:
// service, method, status (received, processing, completed, failed,
// dropped, or in_progress), q (a request id or journal id), since (a
// duration back from now, e.g. 15m) or from and to (RFC 3339 or Unix
// milliseconds), limit (1-200, default 50), after (the previous page's
// next).
func (d *Dashboard) HandleRequests(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		d.fail(w, err)
		return
	}
	p, err := d.Requests(r.Context(), q)
	if err != nil {
		d.fail(w, err)
		return
	}
	writeJSON(w, p)
}

// HandleRequest answers GET api/requests/{id} (a journal id, "run-seq")
// with RequestDetail.
func (d *Dashboard) HandleRequest(w http.ResponseWriter, r *http.Request) {
	id, err := journal.ParseID(r.PathValue("id"))
	if err != nil {
		d.fail(w, badf("%v", err))
		return
	}
	det, err := d.Request(r.Context(), id)
	if err != nil {
		d.fail(w, err)
		return
	}
	writeJSON(w, det)
}

// HandleSummary answers GET api/summary with a WindowSummary of the
// requests received in a window: since (default 15m) or from and to;
// service and method narrow it.
func (d *Dashboard) HandleSummary(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	from, to, err := parseRange(v, 15*time.Minute)
	if err != nil {
		d.fail(w, err)
		return
	}
	s, err := d.Summary(r.Context(), journal.Window{From: from, To: to, Service: v.Get("service"), Method: v.Get("method")})
	if err != nil {
		d.fail(w, err)
		return
	}
	writeJSON(w, s)
}

// HandleSeries answers GET api/series with a Series: range (default 15m,
// at most 7 days) in buckets (default 60, at most 240); service and method
// narrow it.
func (d *Dashboard) HandleSeries(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := SeriesQuery{Range: 15 * time.Minute, Buckets: 60, Service: v.Get("service"), Method: v.Get("method")}
	if s := v.Get("range"); s != "" {
		d, err := journal.ParseRetention(s)
		if err != nil || d <= 0 || d > 7*24*time.Hour {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad range %q", s))
			return
		}
		q.Range = d
	}
	if s := v.Get("buckets"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 240 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad buckets %q", s))
			return
		}
		q.Buckets = n
	}
	s, err := d.Series(r.Context(), q)
	if err != nil {
		d.fail(w, err)
		return
	}
	writeJSON(w, s)
}

// HandleLive answers GET api/live with the live samples kept (Live).
func (d *Dashboard) HandleLive(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, d.Live())
}

func parseQuery(v url.Values) (Query, error) {
	q := Query{Search: v.Get("q")}
	q.Service = v.Get("service")
	q.Method = v.Get("method")
	switch s := v.Get("status"); s {
	case "", "all":
	case "in_progress", "in-progress":
		q.InProgress = true
	default:
		st, err := journal.ParseStatus(s)
		if err != nil {
			return q, badf("bad status %q", s)
		}
		q.Status = st
	}
	if v.Get("since") != "" || v.Get("from") != "" || v.Get("to") != "" {
		from, to, err := parseRange(v, 0)
		if err != nil {
			return q, err
		}
		q.From, q.To = from, to
	}
	q.Limit = 50
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			return q, badf("bad limit %q (1 to 200)", s)
		}
		q.Limit = n
	}
	if s := v.Get("after"); s != "" {
		if _, _, err := journal.ParseCursor(s); err != nil {
			return q, badf("%v", err)
		}
		q.After = s
	}
	return q, nil
}

// parseRange reads since (a duration back from now, or def if nothing is
// given) or from and to.
func parseRange(v url.Values, def time.Duration) (from, to time.Time, err error) {
	if s := v.Get("since"); s != "" {
		d, err := journal.ParseRetention(s)
		if err != nil || d <= 0 {
			return from, to, badf("bad since %q", s)
		}
		to = time.Now()
		return to.Add(-d), to, nil
	}
	if from, err = parseTime(v.Get("from")); err != nil {
		return from, to, err
	}
	if to, err = parseTime(v.Get("to")); err != nil {
		return from, to, err
	}
	if from.IsZero() && to.IsZero() && def > 0 {
		to = time.Now()
		from = to.Add(-def)
	}
	return from, to, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(n), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04", strings.TrimSpace(s), time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, badf("bad time %q (RFC 3339 or Unix milliseconds)", s)
}
