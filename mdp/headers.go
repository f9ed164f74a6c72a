package mdp

import (
	"encoding/binary"
	"fmt"
	"iter"
	"strconv"
	"time"
)

// HeadersMagic is the first byte of an encoded headers frame: 0xD0 for domo,
// plus the envelope version (1). It lets a peer tell a domo envelope from an
// arbitrary MDP body.
const HeadersMagic = 0xD1

// Header names defined by the protocol. Applications may add their own;
// names are 1 to 255 bytes.
const (
	HeaderID          = "id"           // request id, echoed in every reply
	HeaderDeadline    = "deadline"     // absolute deadline, Unix milliseconds, decimal ASCII
	HeaderTraceparent = "traceparent"  // W3C trace context
	HeaderTracestate  = "tracestate"   // W3C trace context
	HeaderContentType = "content-type" // media type of the payload; application/json if absent
	HeaderCaller      = "caller"       // verified caller identity (JSON claims)
	HeaderRetry       = "retry"        // "1": the caller allows the request to be delivered again
	HeaderAttempt     = "attempt"      // delivery attempt, "1" for the first
	HeaderCredit      = "credit"       // READY extension: requests the worker takes at once
)

// Headers is one encoded headers frame: HeadersMagic, then entries of
//
//	name length (1 byte, 1-255) | name | value length (4 bytes, big-endian) | value
//
// the same layout as ZMTP 3 metadata. The zero value (nil) is a valid empty
// header set for reading; Append starts a new frame when given one.
type Headers []byte

// AppendHeader appends one entry to h, starting a new frame if h is empty,
// and returns the extended frame. It panics if name is empty or longer than
// 255 bytes: names are constants chosen by the program, not input.
func AppendHeader[V string | []byte](h Headers, name string, value V) Headers {
	if len(name) == 0 || len(name) > 255 {
		panic("mdp: header name must be 1 to 255 bytes")
	}
	if len(h) == 0 {
		h = append(h, HeadersMagic)
	}
	h = append(h, byte(len(name)))
	h = append(h, name...)
	h = binary.BigEndian.AppendUint32(h, uint32(len(value)))
	return append(h, value...)
}

// AppendDeadline appends the deadline header for t (Unix milliseconds).
// The time is rounded up to the next millisecond, so that no peer ever
// treats a request as expired before its caller does.
func AppendDeadline(h Headers, t time.Time) Headers {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	var buf [20]byte
	return AppendHeader(h, HeaderDeadline, strconv.AppendInt(buf[:0], ms, 10))
}

// Validate reports whether h is a well-formed headers frame. An empty frame
// is valid and holds no entries.
func (h Headers) Validate() error {
	if len(h) == 0 {
		return nil
	}
	if h[0] != HeadersMagic {
		return fmt.Errorf("%w: headers frame starts with 0x%02x, want 0x%02x", ErrMalformed, h[0], HeadersMagic)
	}
	for i := 1; i < len(h); {
		n := int(h[i])
		i++
		if n == 0 {
			return fmt.Errorf("%w: empty header name at offset %d", ErrMalformed, i-1)
		}
		if i+n+4 > len(h) {
			return fmt.Errorf("%w: header entry at offset %d runs past the frame", ErrMalformed, i-1)
		}
		i += n
		v := binary.BigEndian.Uint32(h[i:])
		i += 4
		if uint64(v) > uint64(len(h)-i) {
			return fmt.Errorf("%w: header value at offset %d runs past the frame", ErrMalformed, i-4)
		}
		i += int(v)
	}
	return nil
}

// All iterates over the entries of a valid frame, in order. It stops at the
// first malformed entry; call Validate first to tell that from the end.
func (h Headers) All() iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		if len(h) == 0 || h[0] != HeadersMagic {
			return
		}
		for i := 1; i < len(h); {
			n := int(h[i])
			i++
			if n == 0 || i+n+4 > len(h) {
				return
			}
			name := h[i : i+n]
			i += n
			v := binary.BigEndian.Uint32(h[i:])
			i += 4
			if uint64(v) > uint64(len(h)-i) {
				return
			}
			if !yield(string(name), h[i:i+int(v)]) {
				return
			}
			i += int(v)
		}
	}
}

// Get returns the value of the first entry called name, without allocating.
func (h Headers) Get(name string) ([]byte, bool) {
	if len(h) == 0 || h[0] != HeadersMagic {
		return nil, false
	}
	for i := 1; i < len(h); {
		n := int(h[i])
		i++
		if n == 0 || i+n+4 > len(h) {
			return nil, false
		}
		match := string(h[i:i+n]) == name
		i += n
		v := binary.BigEndian.Uint32(h[i:])
		i += 4
		if uint64(v) > uint64(len(h)-i) {
			return nil, false
		}
		if match {
			return h[i : i+int(v) : i+int(v)], true
		}
		i += int(v)
	}
	return nil, false
}

// Deadline returns the deadline header as a time, and false if there is none
// or it is not a decimal number of milliseconds.
func (h Headers) Deadline() (time.Time, bool) {
	v, ok := h.Get(HeaderDeadline)
	if !ok {
		return time.Time{}, false
	}
	ms, ok := parseDecimal(v)
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// Int returns a header holding a non-negative decimal number, and false if it
// is absent or not such a number.
func (h Headers) Int(name string) (int64, bool) {
	v, ok := h.Get(name)
	if !ok {
		return 0, false
	}
	return parseDecimal(v)
}

// parseDecimal parses a non-negative decimal ASCII number without allocating.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
