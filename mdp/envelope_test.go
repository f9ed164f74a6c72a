package mdp_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

// hdrID is the headers frame {id: r1}.
const hdrID = "\xd1\x02id\x00\x00\x00\x02r1"

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		body [][]byte
		want mdp.RequestBody
	}{
		{"method, id and payload", fr("tea.brew", hdrID, `{"cups":2}`),
			mdp.RequestBody{Method: []byte("tea.brew"), Headers: mdp.Headers(hdrID), Payload: []byte(`{"cups":2}`)}},
		{"magic-only headers", fr("tea.brew", "\xd1", ""),
			mdp.RequestBody{Method: []byte("tea.brew"), Headers: mdp.Headers("\xd1"), Payload: []byte{}}},
		{"empty method", fr("", "\xd1", "x"),
			mdp.RequestBody{Method: []byte{}, Headers: mdp.Headers("\xd1"), Payload: []byte("x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mdp.ParseRequest(tt.body)
			if err != nil || string(got.Method) != string(tt.want.Method) ||
				string(got.Headers) != string(tt.want.Headers) || string(got.Payload) != string(tt.want.Payload) {
				t.Fatalf("ParseRequest(%q) = %q, %v; want %q", tt.body, got, err, tt.want)
			}
			if back := got.Append(nil); !framesEqual(back, tt.body) {
				t.Errorf("Append of ParseRequest(%q) = %q; want the same frames", tt.body, back)
			}
			if !mdp.IsEnvelope(tt.body) {
				t.Errorf("IsEnvelope(%q) = false; want true", tt.body)
			}
		})
	}
}

// notEnvelopes are MDP bodies that are not domo envelopes.
var notEnvelopes = []struct {
	name string
	body [][]byte
}{
	{"no frames", nil},
	{"one frame", fr("hello")},
	{"two frames", fr("tea.brew", hdrID)},
	{"four frames", fr("tea.brew", hdrID, "x", "y")},
	{"empty headers frame", fr("tea.brew", "", "x")},
	{"headers without magic", fr("tea.brew", "\x02id\x00\x00\x00\x02r1", "x")},
	{"plain three-frame body", fr("a", "b", "c")},
	{"truncated headers", fr("tea.brew", "\xd1\x02id\x00\x00\x00\x05r1", "x")},
	{"headers with empty name", fr("tea.brew", "\xd1\x00", "x")},
}

func TestParseRequestErrors(t *testing.T) {
	for _, tt := range notEnvelopes {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mdp.ParseRequest(tt.body)
			if !errors.Is(err, mdp.ErrMalformed) {
				t.Errorf("ParseRequest(%q) = %q, %v; want ErrMalformed", tt.body, got, err)
			}
			if mdp.IsEnvelope(tt.body) {
				t.Errorf("IsEnvelope(%q) = true; want false", tt.body)
			}
		})
	}
}

func TestParseReply(t *testing.T) {
	body := fr("ok", hdrID, `{"tea":"green"}`)
	got, err := mdp.ParseReply(body)
	if err != nil || string(got.Status) != "ok" || string(got.Headers) != hdrID || string(got.Payload) != `{"tea":"green"}` {
		t.Fatalf("ParseReply(%q) = %q, %v; want ok reply", body, got, err)
	}
	if !got.OK() || got.Err() != nil {
		t.Errorf("ParseReply(%q): OK() = %t, Err() = %v; want true, nil", body, got.OK(), got.Err())
	}
	if back := got.Append(nil); !framesEqual(back, body) {
		t.Errorf("Append of ParseReply(%q) = %q; want the same frames", body, back)
	}

	errs := append(notEnvelopes, struct {
		name string
		body [][]byte
	}{"empty status", fr("", hdrID, "x")})
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mdp.ParseReply(tt.body)
			if !errors.Is(err, mdp.ErrMalformed) {
				t.Errorf("ParseReply(%q) = %q, %v; want ErrMalformed", tt.body, got, err)
			}
		})
	}
}

func TestOKReply(t *testing.T) {
	r := mdp.OKReply(mdp.Headers(hdrID), []byte("{}"))
	want := fr("ok", hdrID, "{}")
	if got := r.Append(nil); !framesEqual(got, want) {
		t.Errorf("OKReply(...).Append(nil) = %q; want %q", got, want)
	}
	if mdp.StatusOK != "ok" {
		t.Errorf("StatusOK = %q; want \"ok\"", mdp.StatusOK)
	}
}

func TestErrorReply(t *testing.T) {
	tests := []struct {
		name    string
		headers mdp.Headers
		err     *domo.Error
		want    [][]byte
	}{
		{"with headers", mdp.Headers(hdrID), domo.Errorf(domo.CodeOverloaded, "queue of %q is full", "tea"),
			fr("overloaded", hdrID, `{"code":"overloaded","message":"queue of \"tea\" is full"}`)},
		{"without headers", nil, &domo.Error{Code: domo.CodeUnknownService, Message: "no such service"},
			fr("unknown_service", "\xd1", `{"code":"unknown_service","message":"no such service"}`)},
		{"with details", nil, &domo.Error{Code: domo.CodeInvalid, Message: "bad", Details: json.RawMessage(`{"field":"cups"}`)},
			fr("invalid", "\xd1", `{"code":"invalid","message":"bad","details":{"field":"cups"}}`)},
		{"details not JSON are dropped", nil, &domo.Error{Code: domo.CodeInternal, Message: "boom", Details: json.RawMessage(`{oops`)},
			fr("internal", "\xd1", `{"code":"internal","message":"boom"}`)},
		{"empty message", nil, &domo.Error{Code: domo.CodeCanceled},
			fr("canceled", "\xd1", `{"code":"canceled","message":""}`)},
		{"no code is internal", nil, &domo.Error{Message: "oops"},
			fr("internal", "\xd1", `{"code":"internal","message":"oops"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mdp.ErrorReply(tt.headers, tt.err)
			got := r.Append(nil)
			if !framesEqual(got, tt.want) {
				t.Fatalf("ErrorReply(%q, %v) = %q; want %q", tt.headers, tt.err, got, tt.want)
			}
			if !mdp.IsEnvelope(got) {
				t.Errorf("IsEnvelope(ErrorReply(...)) = false; want true")
			}
		})
	}
}

// TestReplyErr checks the mapping of a reply to *domo.Error, including what
// errors.Is sees against the domo sentinels.
func TestReplyErr(t *testing.T) {
	tests := []struct {
		name     string
		status   string
		payload  string
		want     domo.Error
		sentinel *domo.Error
	}{
		{"JSON error", "overloaded", `{"code":"overloaded","message":"queue full"}`,
			domo.Error{Code: domo.CodeOverloaded, Message: "queue full"}, domo.ErrOverloaded},
		{"JSON error with details", "invalid", `{"code":"invalid","message":"bad","details":{"field":"cups"}}`,
			domo.Error{Code: domo.CodeInvalid, Message: "bad", Details: json.RawMessage(`{"field":"cups"}`)}, domo.ErrInvalid},
		{"status wins over payload code", "unavailable", `{"code":"internal","message":"worker lost"}`,
			domo.Error{Code: domo.CodeUnavailable, Message: "worker lost"}, domo.ErrUnavailable},
		{"payload not JSON", "internal", `segfault`,
			domo.Error{Code: domo.CodeInternal, Message: "segfault"}, domo.ErrInternal},
		{"JSON without code", "forbidden", `{"message":"no"}`,
			domo.Error{Code: domo.CodeForbidden, Message: `{"message":"no"}`}, domo.ErrForbidden},
		{"empty payload", "deadline_exceeded", ``,
			domo.Error{Code: domo.CodeDeadlineExceeded}, domo.ErrDeadlineExceeded},
		{"unknown code", "teapot", `{"code":"teapot","message":"short and stout"}`,
			domo.Error{Code: "teapot", Message: "short and stout"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fr(tt.status, "\xd1", tt.payload)
			r, err := mdp.ParseReply(body)
			if err != nil {
				t.Fatalf("ParseReply(%q) error = %v", body, err)
			}
			if r.OK() {
				t.Errorf("ParseReply(%q).OK() = true; want false", body)
			}
			e := r.Err()
			if e == nil || e.Code != tt.want.Code || e.Message != tt.want.Message || string(e.Details) != string(tt.want.Details) {
				t.Fatalf("ParseReply(%q).Err() = %#v; want %#v", body, e, tt.want)
			}
			wrapped := fmt.Errorf("call tea.brew: %w", e)
			if tt.sentinel != nil && !errors.Is(wrapped, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false; want true", wrapped, tt.sentinel)
			}
			for _, other := range []*domo.Error{domo.ErrOverloaded, domo.ErrInternal, domo.ErrUnknownService} {
				if other != tt.sentinel && errors.Is(wrapped, other) {
					t.Errorf("errors.Is(%v, %v) = true; want false", wrapped, other)
				}
			}
		})
	}
}

// TestErrorReplyRoundTrip sends every error code of the protocol through
// ErrorReply, the wire and ParseReply.
func TestErrorReplyRoundTrip(t *testing.T) {
	sentinels := []*domo.Error{
		domo.ErrInvalid, domo.ErrUnauthenticated, domo.ErrForbidden, domo.ErrUnknownService,
		domo.ErrUnknownMethod, domo.ErrOverloaded, domo.ErrDeadlineExceeded, domo.ErrUnavailable,
		domo.ErrTooLarge, domo.ErrCanceled, domo.ErrInternal,
	}
	for _, s := range sentinels {
		sent := domo.Errorf(s.Code, "while brewing")
		body := mdp.ErrorReply(mdp.Headers(hdrID), sent)
		frames := body.Append(nil)
		r, err := mdp.ParseReply(frames)
		if err != nil {
			t.Fatalf("ParseReply(%q) error = %v", frames, err)
		}
		got := r.Err()
		if got == nil || got.Code != s.Code || got.Message != "while brewing" || !errors.Is(got, s) {
			t.Errorf("ParseReply(%q).Err() = %v; want code %s matching %v", frames, got, s.Code, s)
		}
		if id, _ := r.Headers.Get(mdp.HeaderID); string(id) != "r1" {
			t.Errorf("ParseReply(%q) id = %q; want r1", frames, id)
		}
	}
}
