package zmtp

import (
	"bytes"
	"fmt"
	"testing"
)

// feed parses data for a fresh connection in pieces of at most step bytes,
// as reads would deliver it, and returns the messages and whether the
// connection was refused.
func feed(data []byte, step int, dealer bool) ([]string, bool) {
	opts := Options{MaxFrameSize: 1 << 20, SendHWM: 1000}
	var r *engine
	if dealer {
		d := &Dealer{connecting: -1, timer: -1}
		d.engine = engine{opts: opts, h: d, conns: make(map[int32]*conn)}
		r = &d.engine
	} else {
		rt := &Router{byID: make(map[string]*conn)}
		rt.engine = engine{opts: opts, h: rt, withID: true, conns: make(map[int32]*conn)}
		r = &rt.engine
	}
	c := &conn{}
	r.shaking = 1
	var pending []byte
	var out []string
	for len(data) > 0 {
		n := min(step, len(data))
		pending = append(pending, data[:n]...)
		data = data[n:]
		used, perr := r.parse(c, pending)
		// Messages parsed before an error are delivered, as the router does.
		var dst [][]byte
		for r.qhead < len(r.queue) {
			var err error
			dst, err = r.Recv(dst)
			out = append(out, fmt.Sprintf("%q %v", dst, err))
		}
		r.queue, r.qhead, r.sizes = r.queue[:0], 0, r.sizes[:0]
		if perr != nil {
			return out, true
		}
		pending = append([]byte(nil), pending[used:]...)
	}
	return out, false
}

// FuzzParse feeds the router's and the dealer's parser a peer's bytes
// whole and in small pieces: it must not panic, and how the bytes arrive must not change what
// it makes of them.
func FuzzParse(f *testing.F) {
	hello := AppendReady(AppendGreeting(nil), Property{"Socket-Type", []byte("DEALER")}, Property{"Identity", []byte("me")})
	f.Add(hello)
	f.Add(AppendFrame(AppendFrame(bytes.Clone(hello), []byte("a"), true, false), bytes.Repeat([]byte("b"), 300), false, false))
	f.Add(AppendCommand(bytes.Clone(hello), "PING", []byte{0, 10}, []byte("ctx")))
	f.Add(AppendGreeting(nil)[:30])
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, dealer := range []bool{false, true} {
			whole, refusedWhole := feed(data, len(data)+1, dealer)
			pieces, refusedPieces := feed(data, 7, dealer)
			if refusedWhole != refusedPieces || fmt.Sprint(whole) != fmt.Sprint(pieces) {
				t.Fatalf("dealer %v: whole: %v %v; in pieces: %v %v", dealer, whole, refusedWhole, pieces, refusedPieces)
			}
		}
	})
}

// FuzzMetadata: ParseMetadata never panics, and what AppendReady writes
// parses back.
func FuzzMetadata(f *testing.F) {
	f.Add("Socket-Type", []byte("DEALER"), []byte{})
	f.Add("Identity", []byte{0, 1, 2}, []byte{5, 'x', 'y', 'z', 'w', 'v', 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, name string, value, junk []byte) {
		_, _ = ParseMetadata(junk)
		if name == "" || len(name) > 255 {
			return
		}
		cmd := AppendReady(nil, Property{name, value})
		fr, n, _, err := ParseFrame(cmd, 0)
		if err != nil || n != len(cmd) {
			t.Fatalf("frame: %v, %d of %d", err, n, len(cmd))
		}
		_, data, err := ParseCommand(fr.Body)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseMetadata(data)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := m.Get(name); !ok || !bytes.Equal(v, value) {
			t.Fatalf("got %q %v", v, ok)
		}
	})
}
