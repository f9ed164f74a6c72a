package client

import (
	"context"
	"errors"

	"github.com/domo-framework/domo"
)

// waitError is a wait that ended on a context: it matches both the domo
// sentinel and the context package's error, so callers may test either.
type waitError struct {
	code *domo.Error
	ctx  error
}

func (e *waitError) Error() string   { return e.code.Error() }
func (e *waitError) Unwrap() []error { return []error{e.code, e.ctx} }

var (
	errDeadline = &waitError{domo.ErrDeadlineExceeded, context.DeadlineExceeded}
	errCanceled = &waitError{domo.ErrCanceled, context.Canceled}
)

// ctxErr maps a context's error to the matching waitError.
func ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errDeadline
	}
	return errCanceled
}
