package mdp_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/domo-framework/domo/mdp"
)

func TestPackRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 300) // a two-byte length
	for _, frames := range [][][]byte{
		fr(""),
		fr("", "MDPW01", "\x02", "route678", "", "tea.brew", "\xd1", "{}"),
		{[]byte("MDPW02"), {0x04}, big, {}, big},
	} {
		p := mdp.AppendPacked([]byte("prefix"), frames)
		if !bytes.HasPrefix(p, []byte("prefix")) {
			t.Fatalf("AppendPacked dropped dst")
		}
		p = p[len("prefix"):]
		if len(p) != mdp.PackedSize(frames) {
			t.Errorf("PackedSize = %d, packed %d bytes", mdp.PackedSize(frames), len(p))
		}
		got, err := mdp.Unpack(nil, p, 0)
		if err != nil {
			t.Fatalf("Unpack(%q) = %v", p, err)
		}
		if !slices.EqualFunc(got, frames, bytes.Equal) {
			t.Errorf("Unpack(AppendPacked(%q)) = %q", frames, got)
		}
	}
}

func TestUnpackInvalid(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    []byte
		max  int
		want error
	}{
		{"empty", nil, 0, mdp.ErrMalformed},
		{"truncated frame", []byte{5, 'a', 'b'}, 0, mdp.ErrMalformed},
		{"truncated length", []byte{0x80}, 0, mdp.ErrMalformed},
		{"length overflows", append(bytes.Repeat([]byte{0xff}, 10), 1), 0, mdp.ErrMalformed},
		{"over max frames", []byte{0, 0, 0}, 2, mdp.ErrTooManyFrames},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := mdp.Unpack(nil, tt.p, tt.max); !errors.Is(err, tt.want) {
				t.Errorf("Unpack(%x) error = %v, want %v", tt.p, err, tt.want)
			}
		})
	}
	if got, err := mdp.Unpack(nil, []byte{0, 0}, 2); err != nil || len(got) != 2 {
		t.Errorf("Unpack of two empty frames, max 2 = %q, %v", got, err)
	}
}

func TestIsBatch(t *testing.T) {
	if !mdp.IsBatch(fr(mdp.BatchHeader, "x")) {
		t.Errorf("IsBatch(batch) = false")
	}
	for _, f := range [][][]byte{nil, fr(""), fr("", mdp.WorkerV1), fr("DOMOB2")} {
		if mdp.IsBatch(f) {
			t.Errorf("IsBatch(%q) = true", f)
		}
	}
}

// FuzzUnpack checks that Unpack never panics, that what it accepts packs
// back to frames it unpacks identically, and that it copies nothing.
func FuzzUnpack(f *testing.F) {
	f.Add(mdp.AppendPacked(nil, fr("", "MDPW01", "\x03", "route678", "", "ok", "\xd1", "{}")))
	f.Add([]byte{0x80, 0x80, 0x80})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		got, err := mdp.Unpack(nil, p, 64)
		if err != nil {
			if !errors.Is(err, mdp.ErrMalformed) && !errors.Is(err, mdp.ErrTooManyFrames) {
				t.Fatalf("Unpack(%x) error = %v", p, err)
			}
			return
		}
		if len(got) == 0 || len(got) > 64 {
			t.Fatalf("Unpack(%x) = %d frames", p, len(got))
		}
		again, err := mdp.Unpack(nil, mdp.AppendPacked(nil, got), 64)
		if err != nil || !slices.EqualFunc(again, got, bytes.Equal) {
			t.Fatalf("repacked %q unpacks as %q, %v", got, again, err)
		}
	})
}

func BenchmarkPack(b *testing.B) {
	frames := fr("", "MDPW01", "\x02", "route678", "", "water.echo", "\xd1\x02id\x00\x00\x00\x08abcdefgh", string(make([]byte, 64)))
	buf := make([]byte, 0, 4096)
	dst := make([][]byte, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		buf = mdp.AppendPacked(buf[:0], frames)
		var err error
		if dst, err = mdp.Unpack(dst[:0], buf, 64); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBatchExample is the example of docs/protocol.md, section 7.4.2.
func TestBatchExample(t *testing.T) {
	var b mdp.Batch
	for _, route := range []byte{7, 8} {
		m := mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Request,
			Address: []byte{0, 0, 0, 0, 0, 0, 0, route}, Body: fr("hi")}
		frames, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		b.Add(frames)
	}
	got := b.Take()
	want := []string{
		"444f4d4f4231",
		"0006" + "4d4450573031" + "0102" + "08" + "0000000000000007" + "00" + "02" + "6869",
		"0006" + "4d4450573031" + "0102" + "08" + "0000000000000008" + "00" + "02" + "6869",
	}
	if len(got) != len(want) {
		t.Fatalf("batch has %d frames; want %d", len(got), len(want))
	}
	for i := range want {
		if h := fmt.Sprintf("%x", got[i]); h != want[i] {
			t.Errorf("frame %d = %s; want %s", i, h, want[i])
		}
	}
	if b.Len() != 0 {
		t.Errorf("Len after Take = %d", b.Len())
	}
	// A lone message leaves as itself.
	one := fr("", "MDPW01", "\x04")
	b.Add(one)
	if got := b.Take(); !slices.EqualFunc(got, one, bytes.Equal) {
		t.Errorf("Take of one message = %q; want it as it was", got)
	}
}

// TestBatchBounds: a Batch refuses a message that would take it past its
// bounds, and never refuses the first.
func TestBatchBounds(t *testing.T) {
	var b mdp.Batch
	small := fr("", "MDPW01", "\x04")
	for i := range mdp.BatchMaxMessages {
		if !b.Add(small) {
			t.Fatalf("Add %d refused", i)
		}
	}
	if b.Add(small) {
		t.Fatalf("Add past BatchMaxMessages accepted")
	}
	b.Take()
	huge := [][]byte{make([]byte, mdp.BatchMaxBytes+1)}
	if !b.Add(huge) {
		t.Fatalf("a first message over BatchMaxBytes was refused")
	}
	if b.Add(small) {
		t.Fatalf("Add past BatchMaxBytes accepted")
	}
}

func TestUnpackMessage(t *testing.T) {
	l := mdp.Limits{MaxFrames: 4, MaxFrameSize: 10, MaxMessageSize: 20}
	id := []byte("peer")
	ok := mdp.AppendPacked(nil, fr("", "MDPW01", "\x04"))
	got, err := l.UnpackMessage([][]byte{id}, ok)
	if err != nil || len(got) != 4 || string(got[0]) != "peer" {
		t.Fatalf("UnpackMessage(identity, heartbeat) = %q, %v", got, err)
	}
	for _, tt := range []struct {
		name string
		dst  [][]byte
		p    []byte
		want error
	}{
		{"nested batch", nil, mdp.AppendPacked(nil, fr(mdp.BatchHeader, "x")), mdp.ErrMalformed},
		{"frames with the identity over the limit", [][]byte{id}, mdp.AppendPacked(nil, fr("", "MDPW01", "\x02", "r")), mdp.ErrTooManyFrames},
		{"frame over the limit", nil, mdp.AppendPacked(nil, fr("", "MDPW01-too-long")), mdp.ErrFrameTooLarge},
		{"truncated", nil, []byte{9, 'x'}, mdp.ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.UnpackMessage(tt.dst, tt.p); !errors.Is(err, tt.want) {
				t.Errorf("UnpackMessage = %v; want %v", err, tt.want)
			}
		})
	}
}
