package zsock

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// pair returns a connected DEALER pair over inproc.
func pair(t testing.TB) (*Socket, *Socket) {
	t.Helper()
	a, err := New(Dealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ep, err := a.Bind(fmt.Sprintf("inproc://multipart-%s", t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Dealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Connect(ep); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestFastPathIsOn(t *testing.T) {
	s, err := New(Router)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.fast == nil {
		t.Fatal("the one-call multipart path is off: pebbe/zmq4's Socket layout changed?")
	}
}

func TestMultipartRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("x"), recvScratch+100) // past the scratch buffer
	tests := []struct {
		name   string
		frames [][]byte
	}{
		{"one frame", [][]byte{[]byte("hello")}},
		{"empty frames", [][]byte{{}, []byte("MDPC01"), {}, {}}},
		{"bigger than scratch", [][]byte{[]byte("head"), big, []byte("tail")}},
		{"many frames", make([][]byte, maxParts)},
	}
	a, b := pair(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := b.Send(tt.frames, true); err != nil {
				t.Fatal(err)
			}
			got, err := a.Recv(nil, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.frames) {
				t.Fatalf("Recv got %d frames; want %d", len(got), len(tt.frames))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.frames[i]) {
					t.Fatalf("frame %d = %.20q; want %.20q", i, got[i], tt.frames[i])
				}
			}
		})
	}
}

func TestTooManyFrames(t *testing.T) {
	a, b := pair(t)
	if err := b.Send(make([][]byte, maxParts+1), true); !errors.Is(err, ErrTooManyFrames) {
		t.Fatalf("Send of %d frames = %v; want ErrTooManyFrames", maxParts+1, err)
	}
	// A peer that is not us may send more; the extra frames are dropped.
	b.fast.free()
	b.fast = nil // frame by frame, without our limit
	if err := b.Send(make([][]byte, maxParts+5), true); err != nil {
		t.Fatal(err)
	}
	got, err := a.Recv(nil, true)
	if !errors.Is(err, ErrTooManyFrames) || len(got) != maxParts {
		t.Fatalf("Recv of %d frames = %d frames, %v; want %d and ErrTooManyFrames", maxParts+5, len(got), err, maxParts)
	}
	// The socket goes on working.
	if err := b.Send([][]byte{[]byte("next")}, true); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Recv(nil, true); err != nil || string(got[0]) != "next" {
		t.Fatalf("Recv after the long message = %q, %v", got, err)
	}
}

// BenchmarkRecvSend compares a 9-frame message (a worker REQUEST) moved
// through one cgo call each way with pebbe/zmq4's call per frame.
func BenchmarkRecvSend(b *testing.B) {
	msg := [][]byte{{}, []byte("MDPW01"), {2}, []byte("12345678"), {}, []byte("brew"), make([]byte, 40), make([]byte, 64)}
	for _, fast := range []bool{true, false} {
		name := "pebbe_per_frame"
		if fast {
			name = "one_call"
		}
		b.Run(name, func(b *testing.B) {
			x, y := pair(b)
			if !fast {
				x.fast.free()
				y.fast.free()
				x.fast, y.fast = nil, nil
			}
			var buf [][]byte
			b.ReportAllocs()
			for range b.N {
				if err := y.Send(msg, true); err != nil {
					b.Fatal(err)
				}
				var err error
				if buf, err = x.Recv(buf, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
