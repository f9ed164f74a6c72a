package mdp_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo/mdp"
)

func TestAppendHeader(t *testing.T) {
	var h mdp.Headers
	h = mdp.AppendHeader(h, mdp.HeaderID, "r1")
	h = mdp.AppendHeader(h, mdp.HeaderContentType, []byte("text/plain"))
	h = mdp.AppendHeader(h, "x", "")
	want := "\xd1" +
		"\x02id\x00\x00\x00\x02r1" +
		"\x0ccontent-type\x00\x00\x00\x0atext/plain" +
		"\x01x\x00\x00\x00\x00"
	if string(h) != want {
		t.Fatalf("AppendHeader(...) = %q; want %q", h, want)
	}

	// An empty but non-nil buffer also starts a new frame.
	buf := make(mdp.Headers, 0, 64)
	if got := mdp.AppendHeader(buf, "a", "b"); string(got) != "\xd1\x01a\x00\x00\x00\x01b" {
		t.Errorf("AppendHeader(empty, a, b) = %q; want %q", got, "\xd1\x01a\x00\x00\x00\x01b")
	}

	// The longest name.
	name := strings.Repeat("n", 255)
	got := mdp.AppendHeader(nil, name, "v")
	if len(got) != 1+1+255+4+1 || got[1] != 255 {
		t.Errorf("AppendHeader(nil, 255-byte name, v) = %q; want a 262-byte frame", got)
	}
	if v, ok := got.Get(name); !ok || string(v) != "v" {
		t.Errorf("Get(255-byte name) = %q, %t; want \"v\", true", v, ok)
	}

	// A long value gets a multi-byte length.
	long := strings.Repeat("v", 70000)
	got = mdp.AppendHeader(nil, "big", long)
	if !bytes.Equal(got[5:9], []byte{0x00, 0x01, 0x11, 0x70}) {
		t.Errorf("AppendHeader(nil, big, 70000 bytes) length = % x; want 00 01 11 70", got[5:9])
	}
}

func TestAppendHeaderPanics(t *testing.T) {
	for _, name := range []string{"", strings.Repeat("n", 256)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendHeader(nil, %d-byte name, v) did not panic", len(name))
				}
			}()
			mdp.AppendHeader(nil, name, "v")
		}()
	}
}

func TestAppendDeadline(t *testing.T) {
	d := time.UnixMilli(1700000000123)
	h := mdp.AppendDeadline(nil, d)
	want := "\xd1\x08deadline\x00\x00\x00\x0d1700000000123"
	if string(h) != want {
		t.Fatalf("AppendDeadline(nil, %v) = %q; want %q", d, h, want)
	}
	got, ok := h.Deadline()
	if !ok || !got.Equal(d) {
		t.Errorf("Deadline() = %v, %t; want %v, true", got, ok, d)
	}
	// Sub-millisecond precision is rounded up: no peer may see the request
	// expire before its caller does.
	for _, extra := range []time.Duration{time.Microsecond, 999 * time.Microsecond} {
		h = mdp.AppendDeadline(nil, d.Add(extra))
		if got, want := must(h.Deadline()), d.Add(time.Millisecond); !got.Equal(want) {
			t.Errorf("Deadline() of %v + %v = %v; want %v", d, extra, got, want)
		}
	}
}

func must(t time.Time, ok bool) time.Time {
	if !ok {
		panic("no deadline")
	}
	return t
}

func TestHeadersGet(t *testing.T) {
	h := mdp.AppendHeader(nil, mdp.HeaderID, "r1")
	h = mdp.AppendHeader(h, "empty", "")
	h = mdp.AppendHeader(h, mdp.HeaderID, "second")
	h = mdp.AppendHeader(h, "i", "short name")
	tests := []struct {
		h      mdp.Headers
		name   string
		want   string
		wantOK bool
	}{
		{h, mdp.HeaderID, "r1", true}, // the first of two
		{h, "empty", "", true},
		{h, "i", "short name", true},
		{h, "missing", "", false},
		{h, "ID", "", false}, // names are case-sensitive
		{h, "", "", false},
		{nil, mdp.HeaderID, "", false},
		{mdp.Headers{mdp.HeadersMagic}, mdp.HeaderID, "", false},
		{mdp.Headers("\xd0\x02id\x00\x00\x00\x02r1"), mdp.HeaderID, "", false},              // wrong magic
		{mdp.Headers("\xd1\x02id\x00\x00\x00\x09r1"), mdp.HeaderID, "", false},              // value runs past the end
		{mdp.Headers("\xd1\x02id\x00\x00"), mdp.HeaderID, "", false},                        // length cut short
		{mdp.Headers("\xd1\x00\x02id\x00\x00\x00\x02r1"), mdp.HeaderID, "", false},          // empty name
		{mdp.Headers("\xd1\x02id\x00\x00\x00\x02r1\x05x"), mdp.HeaderID, "r1", true},        // garbage after a match
		{mdp.Headers("\xd1\x01a\x00\x00\x00\x01b\x05x"), mdp.HeaderID, "", false},           // garbage before the end
		{mdp.Headers("\xd1\x01a\xff\xff\xff\xff\x02id"), mdp.HeaderID, "", false},           // huge length
		{mdp.Headers("\xd1\x02id\x00\x00\x00\x00"), mdp.HeaderID, "", true},                 // empty value at the end
		{mdp.Headers("\xd1\x02ix\x00\x00\x00\x00\x02id\x00\x00\x00\x01z"), "id", "z", true}, // same length, other name
	}
	for _, tt := range tests {
		v, ok := tt.h.Get(tt.name)
		if string(v) != tt.want || ok != tt.wantOK {
			t.Errorf("Headers(%q).Get(%q) = %q, %t; want %q, %t", tt.h, tt.name, v, ok, tt.want, tt.wantOK)
		}
	}
}

// TestHeadersGetCapacity checks that appending to a returned value cannot
// overwrite the entries after it.
func TestHeadersGetCapacity(t *testing.T) {
	h := mdp.AppendHeader(nil, "a", "1")
	h = mdp.AppendHeader(h, "b", "2")
	before := string(h)
	v, _ := h.Get("a")
	_ = append(v, 'X')
	if string(h) != before {
		t.Errorf("append to Get(a) changed the frame to %q; want %q", h, before)
	}
}

func TestHeadersAll(t *testing.T) {
	h := mdp.AppendHeader(nil, "a", "1")
	h = mdp.AppendHeader(h, "b", "")
	h = mdp.AppendHeader(h, "a", "3")
	type kv struct{ k, v string }
	collect := func(h mdp.Headers, limit int) []kv {
		var out []kv
		for k, v := range h.All() {
			if len(out) == limit {
				break
			}
			out = append(out, kv{k, string(v)})
		}
		return out
	}
	tests := []struct {
		h     mdp.Headers
		limit int
		want  []kv
	}{
		{h, -1, []kv{{"a", "1"}, {"b", ""}, {"a", "3"}}},
		{h, 1, []kv{{"a", "1"}}}, // stops when the loop breaks
		{nil, -1, nil},
		{mdp.Headers{mdp.HeadersMagic}, -1, nil},
		{mdp.Headers("\x00\x01a\x00\x00\x00\x00"), -1, nil}, // no magic
		{append(h[:len(h):len(h)], 0x01, 'c'), -1, []kv{{"a", "1"}, {"b", ""}, {"a", "3"}}}, // truncated entry at the end
		{mdp.Headers("\xd1\x01a\x00\x00\x00\x05ab"), -1, nil},                               // value runs past the end
		{mdp.Headers("\xd1\x01a\x00\x00\x00\x00\x00"), -1, []kv{{"a", ""}}},                 // empty name after one entry
	}
	for _, tt := range tests {
		got := collect(tt.h, tt.limit)
		if len(got) != len(tt.want) {
			t.Errorf("Headers(%q).All() = %v; want %v", tt.h, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("Headers(%q).All() = %v; want %v", tt.h, got, tt.want)
				break
			}
		}
	}
}

func TestHeadersValidate(t *testing.T) {
	valid := mdp.AppendHeader(mdp.AppendHeader(nil, "id", "r1"), "deadline", "1")
	tests := []struct {
		name string
		h    mdp.Headers
		ok   bool
	}{
		{"nil", nil, true},
		{"empty", mdp.Headers{}, true},
		{"magic only", mdp.Headers{mdp.HeadersMagic}, true},
		{"two entries", valid, true},
		{"empty value", mdp.Headers("\xd1\x01a\x00\x00\x00\x00"), true},
		{"binary value", mdp.Headers("\xd1\x01a\x00\x00\x00\x02\x00\xff"), true},
		{"wrong magic", mdp.Headers("\xd0\x01a\x00\x00\x00\x00"), false},
		{"magic of a JSON body", mdp.Headers(`{"a":1}`), false},
		{"zero name length", mdp.Headers("\xd1\x00"), false},
		{"name length only", mdp.Headers("\xd1\x05"), false},
		{"name cut short", mdp.Headers("\xd1\x05ab"), false},
		{"value length missing", mdp.Headers("\xd1\x01a"), false},
		{"value length cut short", mdp.Headers("\xd1\x01a\x00\x00\x00"), false},
		{"value cut short", mdp.Headers("\xd1\x01a\x00\x00\x00\x03xy"), false},
		{"value length 2^32-1", mdp.Headers("\xd1\x01a\xff\xff\xff\xffxy"), false},
		{"value too long by one", mdp.Headers("\xd1\x01a\x00\x00\x00\x02x"), false},
		{"trailing byte", append(valid[:len(valid):len(valid)], 0x00), false},
		{"trailing entry cut short", append(valid[:len(valid):len(valid)], 0x02, 'i'), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.Validate()
			if tt.ok && err != nil {
				t.Errorf("Headers(%q).Validate() = %v; want nil", tt.h, err)
			}
			if !tt.ok && !errors.Is(err, mdp.ErrMalformed) {
				t.Errorf("Headers(%q).Validate() = %v; want ErrMalformed", tt.h, err)
			}
		})
	}
}

func TestHeadersDeadline(t *testing.T) {
	tests := []struct {
		value  string
		want   int64 // Unix ms
		wantOK bool
	}{
		{"1700000000123", 1700000000123, true},
		{"0", 0, true},
		{"000001", 1, true},
		{"999999999999999999", 999999999999999999, true}, // 18 digits, the most accepted
		{"1000000000000000000", 0, false},                // 19 digits
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"１", 0, false}, // a full-width digit
	}
	for _, tt := range tests {
		h := mdp.AppendHeader(nil, mdp.HeaderDeadline, tt.value)
		got, ok := h.Deadline()
		if ok != tt.wantOK || (ok && got.UnixMilli() != tt.want) {
			t.Errorf("Deadline() of %q = %v, %t; want %d, %t", tt.value, got.UnixMilli(), ok, tt.want, tt.wantOK)
		}
		if !ok && !got.IsZero() {
			t.Errorf("Deadline() of %q = %v, false; want the zero time", tt.value, got)
		}
	}
	if got, ok := mdp.Headers(nil).Deadline(); ok || !got.IsZero() {
		t.Errorf("Headers(nil).Deadline() = %v, %t; want zero, false", got, ok)
	}
}

func TestHeadersInt(t *testing.T) {
	h := mdp.AppendHeader(nil, mdp.HeaderCredit, "16")
	h = mdp.AppendHeader(h, mdp.HeaderAttempt, "1")
	h = mdp.AppendHeader(h, mdp.HeaderRetry, "yes")
	h = mdp.AppendHeader(h, "neg", "-3")
	h = mdp.AppendHeader(h, "empty", "")
	tests := []struct {
		name   string
		want   int64
		wantOK bool
	}{
		{mdp.HeaderCredit, 16, true},
		{mdp.HeaderAttempt, 1, true},
		{mdp.HeaderRetry, 0, false},
		{"neg", 0, false},
		{"empty", 0, false},
		{"missing", 0, false},
	}
	for _, tt := range tests {
		got, ok := h.Int(tt.name)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Int(%q) = %d, %t; want %d, %t", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestHeaderNames pins the wire names of the defined headers.
func TestHeaderNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{mdp.HeaderID, "id"},
		{mdp.HeaderDeadline, "deadline"},
		{mdp.HeaderTraceparent, "traceparent"},
		{mdp.HeaderTracestate, "tracestate"},
		{mdp.HeaderContentType, "content-type"},
		{mdp.HeaderCaller, "caller"},
		{mdp.HeaderRetry, "retry"},
		{mdp.HeaderAttempt, "attempt"},
		{mdp.HeaderCredit, "credit"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("header name %q; want %q", tt.got, tt.want)
		}
	}
	if mdp.HeadersMagic != 0xD1 {
		t.Errorf("HeadersMagic = 0x%02x; want 0xd1", mdp.HeadersMagic)
	}
}
