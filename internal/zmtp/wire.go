// Package zmtp speaks ZMTP 3 (ZeroMQ RFC 23 and 37), the wire protocol
// of ZeroMQ over TCP and IPC, without libzmq: the greeting, the NULL
// security handshake, frames and the PING/PONG commands. Its Router is a
// ROUTER socket that a libzmq DEALER, REQ or ROUTER peer (any language)
// connects to unchanged, driven from the one goroutine that owns it on
// non-blocking file descriptors and an epoll set of its own: a message
// crosses no thread on its way in or out (see docs/architecture.md,
// "Native transport").
//
// This file is the codec: pure functions over byte slices, fuzzed.
package zmtp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// GreetingSize is the length of a ZMTP 3 greeting.
const GreetingSize = 64

// Frame flags (RFC 23, "Framing").
const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
	flagsKnown  = flagMore | flagLong | flagCommand
)

// Protocol errors a peer causes; each closes its connection.
var (
	ErrNotZMTP3     = errors.New("zmtp: peer does not speak ZMTP 3")
	ErrMechanism    = errors.New("zmtp: peer wants a security mechanism other than NULL")
	ErrFrameFlags   = errors.New("zmtp: frame with reserved flag bits set")
	ErrFrameTooBig  = errors.New("zmtp: frame larger than the socket's limit")
	ErrCommand      = errors.New("zmtp: malformed command")
	ErrSocketType   = errors.New("zmtp: peer's socket type cannot talk to this socket")
	ErrNotReady     = errors.New("zmtp: peer sent data before its READY command")
	ErrPeerError    = errors.New("zmtp: peer sent ERROR")
	ErrDuplicateID  = errors.New("zmtp: peer's identity is already connected")
	ErrHandshakeIvl = errors.New("zmtp: handshake not done in time")
)

// AppendGreeting appends this side's greeting: ZMTP 3.1, NULL mechanism,
// as-server 0 (NULL has no server role). The signature's padding is what
// libzmq sends, which an old ZMTP 1.0 peer reads as an empty identity.
func AppendGreeting(b []byte) []byte {
	var g [GreetingSize]byte
	g[0] = 0xFF
	g[8] = 0x01
	g[9] = 0x7F
	g[10], g[11] = 3, 1
	copy(g[12:32], "NULL")
	return append(b, g[:]...)
}

// CheckGreeting checks a peer's greeting: ZMTP 3.0 or later, NULL.
func CheckGreeting(g []byte) error {
	if len(g) < GreetingSize {
		return fmt.Errorf("%w: greeting of %d bytes", ErrNotZMTP3, len(g))
	}
	if err := CheckSignature(g); err != nil {
		return err
	}
	mech := g[12:32]
	if string(trimZeros(mech)) != "NULL" {
		return fmt.Errorf("%w: %q", ErrMechanism, trimZeros(mech))
	}
	return nil
}

// CheckSignature checks the first 11 bytes of a greeting (signature and
// major version), so that a peer of another protocol is refused before
// its whole greeting arrives (which may be never).
func CheckSignature(g []byte) error {
	if len(g) > 0 && g[0] != 0xFF {
		return fmt.Errorf("%w: ZMTP 1.0 signature", ErrNotZMTP3)
	}
	if len(g) > 9 && g[9]&0x01 == 0 {
		return fmt.Errorf("%w: ZMTP 1.0 signature", ErrNotZMTP3)
	}
	if len(g) > 10 && g[10] < 3 {
		return fmt.Errorf("%w: version %d", ErrNotZMTP3, g[10])
	}
	return nil
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// Frame is one parsed frame; Body aliases the buffer it was parsed from.
type Frame struct {
	More    bool
	Command bool
	Body    []byte
}

// ParseFrame parses the frame at the start of b. It returns the frame and
// its length on the wire, or n == 0 and need > 0 (the bytes the whole frame
// takes, as far as b tells) if b holds only part of it. Frames bigger than
// max (if max > 0) are an error, found from the header alone.
func ParseFrame(b []byte, max int64) (f Frame, n int, need int, err error) {
	if len(b) < 2 {
		return Frame{}, 0, 2, nil
	}
	flags := b[0]
	if flags&^flagsKnown != 0 {
		return Frame{}, 0, 0, fmt.Errorf("%w: 0x%02x", ErrFrameFlags, flags)
	}
	var size uint64
	head := 2
	if flags&flagLong != 0 {
		head = 9
		if len(b) < head {
			return Frame{}, 0, head, nil
		}
		size = binary.BigEndian.Uint64(b[1:9])
	} else {
		size = uint64(b[1])
	}
	if (max > 0 && size > uint64(max)) || size > 1<<62 {
		return Frame{}, 0, 0, fmt.Errorf("%w: %d bytes", ErrFrameTooBig, size)
	}
	total := uint64(head) + size
	if uint64(len(b)) < total {
		return Frame{}, 0, int(total), nil
	}
	return Frame{More: flags&flagMore != 0, Command: flags&flagCommand != 0, Body: b[head:total:total]}, int(total), 0, nil
}

// AppendFrame appends a frame holding body.
func AppendFrame(b []byte, body []byte, more, command bool) []byte {
	var flags byte
	if more {
		flags |= flagMore
	}
	if command {
		flags |= flagCommand
	}
	if len(body) > 255 {
		b = append(b, flags|flagLong)
		b = binary.BigEndian.AppendUint64(b, uint64(len(body)))
	} else {
		b = append(b, flags, byte(len(body)))
	}
	return append(b, body...)
}

// Command names this package reads or writes.
const (
	cmdReady = "READY"
	cmdError = "ERROR"
	cmdPing  = "PING"
	cmdPong  = "PONG"
)

// ParseCommand splits a command frame's body into its name and data.
func ParseCommand(body []byte) (name string, data []byte, err error) {
	if len(body) < 1 || int(body[0]) > len(body)-1 {
		return "", nil, fmt.Errorf("%w: name overruns the frame", ErrCommand)
	}
	n := int(body[0])
	return string(body[1 : 1+n]), body[1+n:], nil
}

// AppendCommand appends a command frame: its name, then data.
func AppendCommand(b []byte, name string, data ...[]byte) []byte {
	size := 1 + len(name)
	for _, d := range data {
		size += len(d)
	}
	if size > 255 {
		b = append(b, flagCommand|flagLong)
		b = binary.BigEndian.AppendUint64(b, uint64(size))
	} else {
		b = append(b, flagCommand, byte(size))
	}
	b = append(b, byte(len(name)))
	b = append(b, name...)
	for _, d := range data {
		b = append(b, d...)
	}
	return b
}

// Metadata is a READY command's properties, in order.
type Metadata []Property

// Property is one name-value pair of a READY command.
type Property struct {
	Name  string
	Value []byte
}

// Get returns the value of the property named name (names are
// case-insensitive), and whether there is one.
func (m Metadata) Get(name string) ([]byte, bool) {
	for _, p := range m {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return nil, false
}

// ParseMetadata parses a READY command's data. Values alias data.
func ParseMetadata(data []byte) (Metadata, error) {
	var m Metadata
	for len(data) > 0 {
		n := int(data[0])
		if n == 0 || len(data) < 1+n+4 {
			return nil, fmt.Errorf("%w: property overruns the command", ErrCommand)
		}
		name := string(data[1 : 1+n])
		data = data[1+n:]
		size := binary.BigEndian.Uint32(data)
		data = data[4:]
		if uint64(size) > uint64(len(data)) {
			return nil, fmt.Errorf("%w: value of %q overruns the command", ErrCommand, name)
		}
		m = append(m, Property{Name: name, Value: data[:size:size]})
		data = data[size:]
	}
	return m, nil
}

// AppendReady appends a READY command with the given properties.
func AppendReady(b []byte, props ...Property) []byte {
	var data []byte
	for _, p := range props {
		data = append(data, byte(len(p.Name)))
		data = append(data, p.Name...)
		data = binary.BigEndian.AppendUint32(data, uint32(len(p.Value)))
		data = append(data, p.Value...)
	}
	return AppendCommand(b, cmdReady, data)
}

// checkPeerType checks a READY's Socket-Type against the types a socket
// talks to (RFC 28 and 37).
func checkPeerType(m Metadata, allowed ...string) error {
	t, ok := m.Get("Socket-Type")
	if !ok {
		return fmt.Errorf("%w: no Socket-Type", ErrSocketType)
	}
	for _, p := range allowed {
		if string(t) == p {
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrSocketType, t)
}
