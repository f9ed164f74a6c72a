package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/domo-framework/domo"
)

// statuses is the one table mapping domo error codes to HTTP statuses. A
// code not in it (from a newer peer) is a 500.
var statuses = map[domo.Code]int{
	domo.CodeInvalid:          http.StatusBadRequest,            // 400
	domo.CodeUnauthenticated:  http.StatusUnauthorized,          // 401
	domo.CodeForbidden:        http.StatusForbidden,             // 403
	domo.CodeUnknownService:   http.StatusNotFound,              // 404
	domo.CodeUnknownMethod:    http.StatusNotFound,              // 404
	domo.CodeTooLarge:         http.StatusRequestEntityTooLarge, // 413
	domo.CodeCanceled:         499,                              // the caller went away (nginx's "client closed request")
	domo.CodeInternal:         http.StatusInternalServerError,   // 500: the handler failed
	domo.CodeUnavailable:      http.StatusBadGateway,            // 502: the worker or broker went away
	domo.CodeOverloaded:       http.StatusServiceUnavailable,    // 503, with Retry-After
	domo.CodeDeadlineExceeded: http.StatusGatewayTimeout,        // 504
}

// StatusOf returns the HTTP status for err: the one its Error carries, or
// the table's for its domo code (500 for an error without one). It does not
// block and is safe for concurrent use.
func StatusOf(err error) int {
	var he *Error
	if errors.As(err, &he) && he.Status != 0 {
		return he.Status
	}
	if s, ok := statuses[domo.AsError(err).Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is an error a gateway handler returns: a domo error, with the HTTP
// status to send when the table's is not the right one (405, 415).
type Error struct {
	Status int
	Err    *domo.Error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// httpError returns an *Error with an explicit status.
func httpError(status int, code domo.Code, format string, args ...any) error {
	return &Error{Status: status, Err: domo.Errorf(code, format, args...)}
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error     *domo.Error `json:"error"`
	RequestID string      `json:"request_id,omitempty"`
}

// writeError sends err as a JSON error body with its status, and the
// headers the status calls for (Retry-After, WWW-Authenticate).
func (g *Gateway) writeError(w http.ResponseWriter, rid string, err error) int {
	status := StatusOf(err)
	de := domo.AsError(err)
	h := w.Header()
	switch status {
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(int((g.cfg.RetryAfter+999_999_999)/1_000_000_000)))
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="domo"`)
	}
	if status >= 500 && de.Code == domo.CodeInternal {
		g.log.Warn("gateway: request failed", "request_id", rid, "err", de.Message)
	}
	b, _ := json.Marshal(errorBody{Error: de, RequestID: rid})
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
	return status
}
