package mdp_test

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/domo-framework/domo/mdp"
)

// fr builds a message from frames given as strings. An empty string is an
// empty (not nil) frame, as a socket delivers it.
func fr(parts ...string) [][]byte {
	frames := make([][]byte, len(parts))
	for i, p := range parts {
		frames[i] = []byte(p)
	}
	return frames
}

// framesEqual compares messages frame by frame; nil and empty are equal.
func framesEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// msgEqual compares decoded messages field by field; nil and empty are equal.
func msgEqual(a, b mdp.Message) bool {
	return a.Role == b.Role && a.Version == b.Version && a.Command == b.Command &&
		bytes.Equal(a.Service, b.Service) && bytes.Equal(a.Address, b.Address) &&
		framesEqual(a.Body, b.Body)
}

// show prints a message readably in failure messages.
func show(m mdp.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{%s v%d %s", m.Role, m.Version, m.Command)
	if m.Service != nil {
		fmt.Fprintf(&b, " service=%q", m.Service)
	}
	if m.Address != nil {
		fmt.Fprintf(&b, " address=%q", m.Address)
	}
	if len(m.Body) > 0 {
		fmt.Fprintf(&b, " body=%q", m.Body)
	}
	return b.String() + "}"
}
