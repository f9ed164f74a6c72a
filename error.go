package domo

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Code classifies an error. Codes travel on the wire as short lower-case
// ASCII words, so every implementation of the protocol shares them.
type Code string

// The error codes of the domo protocol. docs/protocol.md lists them with
// their meaning; the gateway maps each to one HTTP status.
const (
	CodeInvalid          Code = "invalid"           // the request is malformed or fails its contract
	CodeUnauthenticated  Code = "unauthenticated"   // no valid credentials
	CodeForbidden        Code = "forbidden"         // credentials valid, access denied
	CodeUnknownService   Code = "unknown_service"   // no worker has ever offered the service
	CodeUnknownMethod    Code = "unknown_method"    // the service has no such method
	CodeOverloaded       Code = "overloaded"        // a queue is full; retry later
	CodeDeadlineExceeded Code = "deadline_exceeded" // the caller's deadline passed
	CodeUnavailable      Code = "unavailable"       // the worker or broker went away mid-request
	CodeTooLarge         Code = "too_large"         // the message exceeds a protocol limit
	CodeCanceled         Code = "canceled"          // the caller gave up
	CodeInternal         Code = "internal"          // the handler failed
)

// Error is the one error type that crosses the wire. Handlers return it to
// give callers a code to branch on; clients receive it for every failure the
// broker or a worker reports.
type Error struct {
	Code    Code            `json:"code"`
	Message string          `json:"message"`
	Details json.RawMessage `json:"details,omitempty"`
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns "domo: CODE: MESSAGE".
func (e *Error) Error() string {
	if e.Message == "" {
		return "domo: " + string(e.Code)
	}
	return "domo: " + string(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, domo.ErrOverloaded) holds for any overloaded error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for the states callers branch on. Compare with errors.Is; it
// matches by code, whatever the message.
var (
	ErrInvalid          = &Error{Code: CodeInvalid, Message: "invalid request"}
	ErrUnauthenticated  = &Error{Code: CodeUnauthenticated, Message: "unauthenticated"}
	ErrForbidden        = &Error{Code: CodeForbidden, Message: "forbidden"}
	ErrUnknownService   = &Error{Code: CodeUnknownService, Message: "unknown service"}
	ErrUnknownMethod    = &Error{Code: CodeUnknownMethod, Message: "unknown method"}
	ErrOverloaded       = &Error{Code: CodeOverloaded, Message: "overloaded"}
	ErrDeadlineExceeded = &Error{Code: CodeDeadlineExceeded, Message: "deadline exceeded"}
	ErrUnavailable      = &Error{Code: CodeUnavailable, Message: "unavailable"}
	ErrTooLarge         = &Error{Code: CodeTooLarge, Message: "message too large"}
	ErrCanceled         = &Error{Code: CodeCanceled, Message: "canceled"}
	ErrInternal         = &Error{Code: CodeInternal, Message: "internal error"}
)

// ErrClosed is returned by operations on a closed client, worker or broker.
var ErrClosed = errors.New("domo: closed")

// AsError returns err as an *Error: itself if it is one (or wraps one), an
// internal error carrying its text otherwise. It returns nil for nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}
