package domo_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/domo-framework/domo"
)

func TestErrorIsMatchesByCode(t *testing.T) {
	err := fmt.Errorf("call tea.brew: %w", domo.Errorf(domo.CodeOverloaded, "queue of %q is full", "tea"))
	if !errors.Is(err, domo.ErrOverloaded) {
		t.Fatalf("errors.Is(%v, ErrOverloaded) = false; want true", err)
	}
	if errors.Is(err, domo.ErrUnknownService) {
		t.Fatalf("errors.Is(%v, ErrUnknownService) = true; want false", err)
	}
	if got, want := err.Error(), `call tea.brew: domo: overloaded: queue of "tea" is full`; got != want {
		t.Fatalf("Error() = %q; want %q", got, want)
	}
}

func TestAsError(t *testing.T) {
	tests := []struct {
		in   error
		want domo.Code
	}{
		{domo.ErrTooLarge, domo.CodeTooLarge},
		{fmt.Errorf("wrapped: %w", domo.ErrForbidden), domo.CodeForbidden},
		{errors.New("disk on fire"), domo.CodeInternal},
	}
	for _, tt := range tests {
		if got := domo.AsError(tt.in); got.Code != tt.want {
			t.Errorf("AsError(%v).Code = %q; want %q", tt.in, got.Code, tt.want)
		}
	}
	if domo.AsError(nil) != nil {
		t.Errorf("AsError(nil) != nil")
	}
}
