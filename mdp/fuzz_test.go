package mdp_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/domo-framework/domo/mdp"
)

// A fuzz input is split into frames by a length prefix: each frame is a
// uvarint length and that many bytes. A bad or overlong length makes the
// rest of the input one last frame, so every input is some message.

func splitFrames(data []byte) [][]byte {
	frames := [][]byte{}
	for len(data) > 0 {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			return append(frames, data)
		}
		data = data[k:]
		frames = append(frames, data[:n:n])
		data = data[n:]
	}
	return frames
}

func TestSplitFrames(t *testing.T) {
	for _, frames := range [][][]byte{{}, fr(""), fr("", "MDPC01", "echo", ""), {make([]byte, 300)}} {
		if got := splitFrames(mdp.AppendPacked(nil, frames)); !framesEqual(got, frames) {
			t.Errorf("splitFrames(AppendPacked(%q)) = %q", frames, got)
		}
	}
}

// seedVectors adds the frames of every test vector of the given groups.
func seedVectors(f *testing.F, groups ...string) {
	for _, g := range vectorGroups() {
		for _, name := range groups {
			if g.file == name+".json" {
				for _, in := range g.inputs {
					f.Add(mdp.AppendPacked(nil, in.frames))
				}
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	seedVectors(f, "mdp01", "mdp02", "limits")
	for _, tt := range parseTests {
		f.Add(mdp.AppendPacked(nil, tt.frames))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := splitFrames(data)
		_ = mdp.DefaultLimits().Check(frames)
		m, err := mdp.Parse(frames)
		if err != nil {
			if !errors.Is(err, mdp.ErrMalformed) && !errors.Is(err, mdp.ErrProtocol) && !errors.Is(err, mdp.ErrCommand) {
				t.Fatalf("Parse(%q) error = %v; want ErrMalformed, ErrProtocol or ErrCommand", frames, err)
			}
			return
		}
		out, err := m.Append(nil)
		if err != nil {
			t.Fatalf("Parse(%q) = %s, which Append refuses: %v", frames, show(m), err)
		}
		if !framesEqual(out, frames) {
			t.Fatalf("Parse(%q) = %s, which encodes as %q", frames, show(m), out)
		}
		back, err := mdp.Parse(out)
		if err != nil || !msgEqual(back, m) {
			t.Fatalf("Parse(%q) = %s, %v; want %s", out, show(back), err, show(m))
		}
		if r, err := mdp.ParseRequest(m.Body); err == nil {
			if out := r.Append(nil); !framesEqual(out, m.Body) {
				t.Fatalf("ParseRequest(%q) re-encodes as %q", m.Body, out)
			}
		}
	})
}

func FuzzHeaders(f *testing.F) {
	for _, g := range vectorGroups() {
		if g.file == "headers.json" {
			for _, in := range g.inputs {
				f.Add(in.frames[0])
			}
		}
	}
	f.Add([]byte(vReqHeaders))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := mdp.Headers(data)
		verr := h.Validate()
		if verr != nil && !errors.Is(verr, mdp.ErrMalformed) {
			t.Fatalf("Headers(%q).Validate() = %v; want ErrMalformed", h, verr)
		}
		type entry struct {
			name  string
			value []byte
		}
		var entries []entry
		size := 0
		for name, value := range h.All() {
			entries = append(entries, entry{name, value})
			size += 1 + len(name) + 4 + len(value)
		}
		// Get finds the first entry of each name that All yields.
		seen := map[string]bool{}
		for _, e := range entries {
			if seen[e.name] {
				continue
			}
			seen[e.name] = true
			if v, ok := h.Get(e.name); !ok || !bytes.Equal(v, e.value) {
				t.Fatalf("Headers(%q).Get(%q) = %q, %t; want %q, true", h, e.name, v, ok, e.value)
			}
		}
		d, dok := h.Deadline()
		if _, ok := h.Int(mdp.HeaderDeadline); ok != dok {
			t.Fatalf("Headers(%q): Deadline() ok = %t but Int(deadline) ok = %t", h, dok, ok)
		}
		if dok {
			if got, ok := mdp.AppendDeadline(nil, d).Deadline(); !ok || !got.Equal(d) {
				t.Fatalf("AppendDeadline(%v).Deadline() = %v, %t", d, got, ok)
			}
		}

		// Re-encoding what All yields gives a valid frame with the same
		// entries; for a valid frame with entries, the same bytes.
		var re mdp.Headers
		for _, e := range entries {
			re = mdp.AppendHeader(re, e.name, e.value)
		}
		if err := re.Validate(); err != nil {
			t.Fatalf("re-encoded %q: Validate() = %v", re, err)
		}
		if verr == nil && len(entries) > 0 {
			if !bytes.Equal(re, h) {
				t.Fatalf("Headers(%q) re-encodes as %q", h, re)
			}
		}
		if verr == nil && len(h) > 0 && size != len(h)-1 {
			t.Fatalf("Headers(%q): valid, but All covers %d of %d bytes", h, size, len(h)-1)
		}
	})
}

func FuzzEnvelope(f *testing.F) {
	seedVectors(f, "envelope")
	f.Fuzz(func(t *testing.T, data []byte) {
		body := splitFrames(data)
		req, rerr := mdp.ParseRequest(body)
		if mdp.IsEnvelope(body) != (rerr == nil) {
			t.Fatalf("IsEnvelope(%q) = %t but ParseRequest error = %v", body, !(rerr == nil), rerr)
		}
		if rerr != nil {
			if !errors.Is(rerr, mdp.ErrMalformed) {
				t.Fatalf("ParseRequest(%q) error = %v; want ErrMalformed", body, rerr)
			}
		} else {
			if out := req.Append(nil); !framesEqual(out, body) {
				t.Fatalf("ParseRequest(%q) re-encodes as %q", body, out)
			}
			if err := req.Headers.Validate(); err != nil {
				t.Fatalf("ParseRequest(%q) accepted headers that Validate refuses: %v", body, err)
			}
		}

		rep, err := mdp.ParseReply(body)
		if err != nil {
			if !errors.Is(err, mdp.ErrMalformed) {
				t.Fatalf("ParseReply(%q) error = %v; want ErrMalformed", body, err)
			}
			return
		}
		if rerr != nil {
			t.Fatalf("ParseReply(%q) succeeded but ParseRequest failed: %v", body, rerr)
		}
		if out := rep.Append(nil); !framesEqual(out, body) {
			t.Fatalf("ParseReply(%q) re-encodes as %q", body, out)
		}
		e := rep.Err()
		if rep.OK() != (e == nil) {
			t.Fatalf("ParseReply(%q): OK() = %t, Err() = %v", body, rep.OK(), e)
		}
		if e == nil {
			return
		}
		if string(e.Code) != string(rep.Status) {
			t.Fatalf("ParseReply(%q).Err().Code = %q; want the status", body, e.Code)
		}
		// The error survives ErrorReply and the wire.
		er := mdp.ErrorReply(rep.Headers, e)
		frames := er.Append(nil)
		again, err := mdp.ParseReply(frames)
		if err != nil {
			t.Fatalf("ParseReply(ErrorReply(%v)) error = %v", e, err)
		}
		e2 := again.Err()
		if e2 == nil || e2.Code != e.Code {
			t.Fatalf("ParseReply(%q).Err() = %v; want code %q", frames, e2, e.Code)
		}
		if utf8.ValidString(e.Message) && e2.Message != e.Message {
			t.Fatalf("ParseReply(%q).Err().Message = %q; want %q", frames, e2.Message, e.Message)
		}
		if !sameJSON(e.Details, e2.Details) {
			t.Fatalf("ParseReply(%q).Err().Details = %s; want %s", frames, e2.Details, e.Details)
		}
	})
}

// sameJSON reports whether a and b are the same JSON value, or both absent.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
