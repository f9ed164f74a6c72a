package discovery

import (
	"errors"
	"fmt"
)

// The beacon wire format, version 1 (docs/discovery.md):
//
//	"DOMO" | version (1 byte, 1) | flags (1 byte) |
//	cluster len (1 byte) | cluster | broker id len (1 byte) | broker id |
//	endpoint len (1 byte) | endpoint
//
// Flag bit 0 means Leaving; the other bits are zero in version 1. Every
// field is printable ASCII without spaces (0x21 to 0x7E). Nothing follows
// the endpoint.
const (
	beaconMagic   = "DOMO"
	beaconVersion = 1
	flagLeaving   = 1 << 0
)

// Field limits of a beacon, in bytes. A beacon is never longer than
// MaxBeaconSize.
const (
	MaxClusterLen  = 64
	MaxBrokerIDLen = 128
	MaxEndpointLen = 255
	MaxBeaconSize  = 512
)

// Errors returned by Decode and Encode. Decode wraps them with detail;
// test with errors.Is.
var (
	ErrMalformed = errors.New("discovery: malformed beacon")
	ErrVersion   = errors.New("discovery: unsupported beacon version")
)

// Beacon is one broker's announcement: which cluster it belongs to, its
// identity and the endpoint workers and clients connect to. A Beacon is a
// plain value, safe to copy and share.
type Beacon struct {
	Cluster  string // clusters sharing a LAN ignore each other's beacons
	BrokerID string // stable for the life of the broker process
	Endpoint string // a ZeroMQ endpoint reachable from the listeners, e.g. tcp://10.0.0.5:5555
	Leaving  bool   // the broker is shutting down: forget it now
}

// Encode returns the beacon in the version 1 wire format. It fails with
// ErrMalformed if a field is empty, too long or not printable ASCII.
func (b Beacon) Encode() ([]byte, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	p := make([]byte, 0, len(beaconMagic)+2+3+len(b.Cluster)+len(b.BrokerID)+len(b.Endpoint))
	p = append(p, beaconMagic...)
	var flags byte
	if b.Leaving {
		flags |= flagLeaving
	}
	p = append(p, beaconVersion, flags)
	for _, f := range [...]string{b.Cluster, b.BrokerID, b.Endpoint} {
		p = append(p, byte(len(f)))
		p = append(p, f...)
	}
	return p, nil
}

// Decode parses a beacon received from the network. The input is
// untrusted: Decode never panics, and fails with an error wrapping
// ErrMalformed or ErrVersion for anything but a well-formed version 1
// beacon of at most MaxBeaconSize bytes.
func Decode(p []byte) (Beacon, error) {
	if len(p) > MaxBeaconSize {
		return Beacon{}, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(p), MaxBeaconSize)
	}
	if len(p) < len(beaconMagic)+2 || string(p[:len(beaconMagic)]) != beaconMagic {
		return Beacon{}, fmt.Errorf("%w: no DOMO magic", ErrMalformed)
	}
	p = p[len(beaconMagic):]
	if p[0] != beaconVersion {
		return Beacon{}, fmt.Errorf("%w: %d", ErrVersion, p[0])
	}
	flags := p[1]
	if flags&^flagLeaving != 0 {
		return Beacon{}, fmt.Errorf("%w: unknown flags %#x", ErrMalformed, flags)
	}
	p = p[2:]
	var fields [3]string
	for i := range fields {
		if len(p) < 1 || len(p) < 1+int(p[0]) {
			return Beacon{}, fmt.Errorf("%w: truncated", ErrMalformed)
		}
		n := int(p[0])
		fields[i] = string(p[1 : 1+n])
		p = p[1+n:]
	}
	if len(p) != 0 {
		return Beacon{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(p))
	}
	b := Beacon{Cluster: fields[0], BrokerID: fields[1], Endpoint: fields[2], Leaving: flags&flagLeaving != 0}
	if err := b.validate(); err != nil {
		return Beacon{}, err
	}
	return b, nil
}

func (b Beacon) validate() error {
	for _, f := range [...]struct {
		name, value string
		max         int
	}{
		{"cluster", b.Cluster, MaxClusterLen},
		{"broker id", b.BrokerID, MaxBrokerIDLen},
		{"endpoint", b.Endpoint, MaxEndpointLen},
	} {
		if err := checkField(f.value, f.max); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrMalformed, f.name, err)
		}
	}
	return nil
}

// checkField reports whether s is a valid beacon field: 1 to max bytes of
// printable ASCII without spaces.
func checkField(s string, max int) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > max {
		return fmt.Errorf("%d bytes, more than %d", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("byte %#x at %d is not printable ASCII", c, i)
		}
	}
	return nil
}
