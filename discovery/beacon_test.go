package discovery

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestBeaconRoundTrip(t *testing.T) {
	for _, b := range []Beacon{
		{Cluster: "domo", BrokerID: "b1", Endpoint: "tcp://10.0.0.5:5555"},
		{Cluster: "prod-eu", BrokerID: "host-1234-abcd", Endpoint: "tcp://[fe80::1]:5555", Leaving: true},
		{Cluster: strings.Repeat("c", MaxClusterLen), BrokerID: strings.Repeat("b", MaxBrokerIDLen), Endpoint: strings.Repeat("e", MaxEndpointLen)},
	} {
		p, err := b.Encode()
		if err != nil {
			t.Fatalf("%+v.Encode() = %v", b, err)
		}
		if len(p) > MaxBeaconSize {
			t.Errorf("%+v.Encode() is %d bytes; want at most %d", b, len(p), MaxBeaconSize)
		}
		got, err := Decode(p)
		if err != nil || got != b {
			t.Errorf("Decode(Encode(%+v)) = %+v, %v", b, got, err)
		}
	}
}

func TestBeaconWire(t *testing.T) {
	b := Beacon{Cluster: "c", BrokerID: "id", Endpoint: "tcp://h:1"}
	want := []byte("DOMO\x01\x00\x01c\x02id\x09tcp://h:1")
	got, err := b.Encode()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Encode() = %q, %v; want %q", got, err, want)
	}
	b.Leaving = true
	got, _ = b.Encode()
	if got[5] != 1 {
		t.Errorf("Leaving: flags %#x; want 0x01", got[5])
	}
}

func TestBeaconEncodeErrors(t *testing.T) {
	ok := Beacon{Cluster: "c", BrokerID: "id", Endpoint: "tcp://h:1"}
	for name, change := range map[string]func(*Beacon){
		"empty cluster":  func(b *Beacon) { b.Cluster = "" },
		"empty id":       func(b *Beacon) { b.BrokerID = "" },
		"empty endpoint": func(b *Beacon) { b.Endpoint = "" },
		"long cluster":   func(b *Beacon) { b.Cluster = strings.Repeat("c", MaxClusterLen+1) },
		"long id":        func(b *Beacon) { b.BrokerID = strings.Repeat("b", MaxBrokerIDLen+1) },
		"long endpoint":  func(b *Beacon) { b.Endpoint = strings.Repeat("e", MaxEndpointLen+1) },
		"space":          func(b *Beacon) { b.BrokerID = "a b" },
		"control":        func(b *Beacon) { b.Endpoint = "tcp://h:1\n" },
		"non-ASCII":      func(b *Beacon) { b.Cluster = "café" },
	} {
		b := ok
		change(&b)
		if p, err := b.Encode(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Encode(%+v) = %q, %v; want ErrMalformed", name, b, p, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good := "DOMO\x01\x00\x01c\x02id\x09tcp://h:1"
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", ErrMalformed},
		{"DOMO", ErrMalformed},
		{"DOMO\x01", ErrMalformed},
		{"domo\x01\x00\x01c\x02id\x09tcp://h:1", ErrMalformed},
		{"DOMO\x02\x00\x01c\x02id\x09tcp://h:1", ErrVersion},
		{"DOMO\x00\x00\x01c\x02id\x09tcp://h:1", ErrVersion},
		{"DOMO\x01\x02\x01c\x02id\x09tcp://h:1", ErrMalformed}, // unknown flag
		{good[:len(good)-1], ErrMalformed},                     // truncated endpoint
		{"DOMO\x01\x00\x01c\x02id", ErrMalformed},              // no endpoint
		{"DOMO\x01\x00\xffc", ErrMalformed},                    // length past the end
		{good + "x", ErrMalformed},                             // trailing byte
		{"DOMO\x01\x00\x00\x02id\x09tcp://h:1", ErrMalformed},  // empty cluster
		{"DOMO\x01\x00\x01c\x02i \x09tcp://h:1", ErrMalformed}, // space
		{good + strings.Repeat("x", MaxBeaconSize), ErrMalformed},
	} {
		if b, err := Decode([]byte(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("Decode(%q) = %+v, %v; want %v", tc.in, b, err, tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, b := range []Beacon{
		{Cluster: "domo", BrokerID: "b1", Endpoint: "tcp://10.0.0.5:5555"},
		{Cluster: "prod", BrokerID: "host-1-2", Endpoint: "tcp://[::1]:5555", Leaving: true},
	} {
		p, _ := b.Encode()
		f.Add(p)
	}
	f.Add([]byte("DOMO\x01\x00\xff"))
	f.Add([]byte("DOMO\x02\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := Decode(p)
		if err != nil {
			return
		}
		q, err := b.Encode()
		if err != nil {
			t.Fatalf("Decode(%q) = %+v, which does not encode: %v", p, b, err)
		}
		if !bytes.Equal(p, q) {
			t.Fatalf("Encode(Decode(%q)) = %q", p, q)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	p, _ := Beacon{Cluster: "domo", BrokerID: "b1", Endpoint: "tcp://10.0.0.5:5555"}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(p); err != nil {
			b.Fatal(err)
		}
	}
}
