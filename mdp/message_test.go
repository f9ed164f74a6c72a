package mdp_test

import (
	"errors"
	"testing"

	"github.com/domo-framework/domo/mdp"
)

// route is an 8-byte request number as the broker puts it in the client
// address frame of a worker REQUEST.
const route = "\x00\x00\x00\x00\x00\x00\x00\x2a"

// parseTests covers every command of MDPC01, MDPW01, MDPC02 and MDPW02. Each
// valid message also encodes back to exactly its frames (see
// TestAppendRoundTrip).
var parseTests = []struct {
	name   string
	frames [][]byte
	want   mdp.Message
}{
	// MDP/0.1 client (RFC 7): empty frame, "MDPC01", service, body.
	{"MDPC01 request", fr("", mdp.ClientV1, "echo", "hello"),
		mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte("echo"), Body: fr("hello")}},
	{"MDPC01 request with empty body", fr("", mdp.ClientV1, "echo"),
		mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte("echo")}},
	{"MDPC01 request with many body frames", fr("", mdp.ClientV1, "echo", "a", "", "c"),
		mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte("echo"), Body: fr("a", "", "c")}},
	{"MDPC01 request to mmi.service", fr("", mdp.ClientV1, mdp.MMIService, "echo"),
		mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Request, Service: []byte(mdp.MMIService), Body: fr("echo")}},

	// MDP/0.1 worker (RFC 7): empty frame, "MDPW01", command byte, ...
	{"MDPW01 READY", fr("", mdp.WorkerV1, "\x01", "echo"),
		mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte("echo")}},
	{"MDPW01 READY with credit extension", fr("", mdp.WorkerV1, "\x01", "echo", "\xd1\x06credit\x00\x00\x00\x0216"),
		mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte("echo"), Body: fr("\xd1\x06credit\x00\x00\x00\x0216")}},
	{"MDPW01 REQUEST", fr("", mdp.WorkerV1, "\x02", route, "", "hello"),
		mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Request, Address: []byte(route), Body: fr("hello")}},
	{"MDPW01 REQUEST without body", fr("", mdp.WorkerV1, "\x02", route, ""),
		mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Request, Address: []byte(route)}},
	{"MDPW01 REQUEST with empty address", fr("", mdp.WorkerV1, "\x02", "", "", "x"),
		mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Request, Address: []byte{}, Body: fr("x")}},
	{"MDPW01 REPLY", fr("", mdp.WorkerV1, "\x03", route, "", "a", "b"),
		mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Reply, Address: []byte(route), Body: fr("a", "b")}},
	{"MDPW01 HEARTBEAT", fr("", mdp.WorkerV1, "\x04"),
		mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Heartbeat}},
	{"MDPW01 DISCONNECT", fr("", mdp.WorkerV1, "\x05"),
		mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Disconnect}},

	// MDP/0.2 client (RFC 18): no empty frame, "MDPC02", command byte, service, body.
	{"MDPC02 REQUEST", fr(mdp.ClientV2, "\x01", "echo", "hello"),
		mdp.Message{Role: mdp.Client, Version: 2, Command: mdp.Request, Service: []byte("echo"), Body: fr("hello")}},
	{"MDPC02 PARTIAL", fr(mdp.ClientV2, "\x02", "echo", "part"),
		mdp.Message{Role: mdp.Client, Version: 2, Command: mdp.Partial, Service: []byte("echo"), Body: fr("part")}},
	{"MDPC02 FINAL", fr(mdp.ClientV2, "\x03", "echo", "last"),
		mdp.Message{Role: mdp.Client, Version: 2, Command: mdp.Final, Service: []byte("echo"), Body: fr("last")}},
	{"MDPC02 REQUEST with empty service", fr(mdp.ClientV2, "\x01", ""),
		mdp.Message{Role: mdp.Client, Version: 2, Command: mdp.Request, Service: []byte{}}},

	// MDP/0.2 worker (RFC 18): no empty frame, "MDPW02", command byte, ...
	{"MDPW02 READY", fr(mdp.WorkerV2, "\x01", "echo"),
		mdp.Message{Role: mdp.Worker, Version: 2, Command: mdp.Ready, Service: []byte("echo")}},
	{"MDPW02 REQUEST", fr(mdp.WorkerV2, "\x02", route, "", "hello"),
		mdp.Message{Role: mdp.Worker, Version: 2, Command: mdp.Request, Address: []byte(route), Body: fr("hello")}},
	{"MDPW02 PARTIAL", fr(mdp.WorkerV2, "\x03", route, "", "part"),
		mdp.Message{Role: mdp.Worker, Version: 2, Command: mdp.Partial, Address: []byte(route), Body: fr("part")}},
	{"MDPW02 FINAL", fr(mdp.WorkerV2, "\x04", route, "", "last"),
		mdp.Message{Role: mdp.Worker, Version: 2, Command: mdp.Final, Address: []byte(route), Body: fr("last")}},
	{"MDPW02 HEARTBEAT", fr(mdp.WorkerV2, "\x05"),
		mdp.Message{Role: mdp.Worker, Version: 2, Command: mdp.Heartbeat}},
	{"MDPW02 DISCONNECT", fr(mdp.WorkerV2, "\x06"),
		mdp.Message{Role: mdp.Worker, Version: 2, Command: mdp.Disconnect}},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mdp.Parse(tt.frames)
			if err != nil {
				t.Fatalf("Parse(%q) error = %v; want %s", tt.frames, err, show(tt.want))
			}
			if !msgEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %s; want %s", tt.frames, show(got), show(tt.want))
			}
		})
	}
}

// TestParseAliases checks that Parse does not copy: the decoded slices are
// the frames' own memory.
func TestParseAliases(t *testing.T) {
	frames := fr(mdp.WorkerV2, "\x02", route, "", "hello")
	m, err := mdp.Parse(frames)
	if err != nil {
		t.Fatal(err)
	}
	if &m.Address[0] != &frames[2][0] || &m.Body[0][0] != &frames[4][0] {
		t.Errorf("Parse(%q) copied its frames; want aliases", frames)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		frames [][]byte
		want   error
	}{
		{"no frames", nil, mdp.ErrMalformed},
		{"only the empty frame", fr(""), mdp.ErrMalformed},
		{"unknown header", fr("HTTP/1.1", "\x01"), mdp.ErrProtocol},
		{"unknown header after empty frame", fr("", "MDPX01", "\x01"), mdp.ErrProtocol},
		{"header in lower case", fr("", "mdpc01", "echo"), mdp.ErrProtocol},
		{"MDP/0.1 header without empty frame", fr(mdp.ClientV1, "echo", "x"), mdp.ErrProtocol},
		{"MDP/0.1 worker header without empty frame", fr(mdp.WorkerV1, "\x01", "echo"), mdp.ErrProtocol},
		{"MDP/0.2 header after empty frame", fr("", mdp.ClientV2, "\x01", "echo"), mdp.ErrProtocol},
		{"MDP/0.2 worker header after empty frame", fr("", mdp.WorkerV2, "\x05"), mdp.ErrProtocol},
		{"two empty frames", fr("", "", mdp.ClientV1, "echo"), mdp.ErrProtocol},

		{"MDPC01 without service", fr("", mdp.ClientV1), mdp.ErrMalformed},
		{"MDPC02 without command", fr(mdp.ClientV2), mdp.ErrMalformed},
		{"MDPC02 without service", fr(mdp.ClientV2, "\x01"), mdp.ErrMalformed},
		{"MDPC02 command 0x00", fr(mdp.ClientV2, "\x00", "echo"), mdp.ErrCommand},
		{"MDPC02 command 0x04", fr(mdp.ClientV2, "\x04", "echo"), mdp.ErrCommand},
		{"MDPC02 command 0xff", fr(mdp.ClientV2, "\xff", "echo"), mdp.ErrCommand},
		{"MDPC02 empty command frame", fr(mdp.ClientV2, "", "echo"), mdp.ErrCommand},
		{"MDPC02 multi-byte command frame", fr(mdp.ClientV2, "\x01\x01", "echo"), mdp.ErrCommand},

		{"MDPW01 without command", fr("", mdp.WorkerV1), mdp.ErrMalformed},
		{"MDPW01 command 0x00", fr("", mdp.WorkerV1, "\x00"), mdp.ErrCommand},
		{"MDPW01 command 0x06", fr("", mdp.WorkerV1, "\x06"), mdp.ErrCommand},
		{"MDPW01 command 0x08", fr("", mdp.WorkerV1, "\x08"), mdp.ErrCommand},
		{"MDPW01 command as ASCII digit", fr("", mdp.WorkerV1, "1", "echo"), mdp.ErrCommand},
		{"MDPW01 multi-byte command frame", fr("", mdp.WorkerV1, "\x01\x00", "echo"), mdp.ErrCommand},
		{"MDPW01 empty command frame", fr("", mdp.WorkerV1, "", "echo"), mdp.ErrCommand},
		{"MDPW01 READY without service", fr("", mdp.WorkerV1, "\x01"), mdp.ErrMalformed},
		{"MDPW01 READY with empty service", fr("", mdp.WorkerV1, "\x01", ""), mdp.ErrMalformed},
		{"MDPW01 REQUEST without address", fr("", mdp.WorkerV1, "\x02"), mdp.ErrMalformed},
		{"MDPW01 REQUEST without empty delimiter", fr("", mdp.WorkerV1, "\x02", route), mdp.ErrMalformed},
		{"MDPW01 REQUEST with non-empty delimiter", fr("", mdp.WorkerV1, "\x02", route, "hello"), mdp.ErrMalformed},
		{"MDPW01 REPLY without empty delimiter", fr("", mdp.WorkerV1, "\x03", route, "x", "y"), mdp.ErrMalformed},
		{"MDPW01 HEARTBEAT with extra frame", fr("", mdp.WorkerV1, "\x04", ""), mdp.ErrMalformed},
		{"MDPW01 DISCONNECT with extra frame", fr("", mdp.WorkerV1, "\x05", "bye"), mdp.ErrMalformed},

		{"MDPW02 without command", fr(mdp.WorkerV2), mdp.ErrMalformed},
		{"MDPW02 command 0x07", fr(mdp.WorkerV2, "\x07"), mdp.ErrCommand},
		{"MDPW02 multi-byte command frame", fr(mdp.WorkerV2, "\x05\x05"), mdp.ErrCommand},
		{"MDPW02 READY without service", fr(mdp.WorkerV2, "\x01"), mdp.ErrMalformed},
		{"MDPW02 REQUEST without empty delimiter", fr(mdp.WorkerV2, "\x02", route), mdp.ErrMalformed},
		{"MDPW02 PARTIAL without address", fr(mdp.WorkerV2, "\x03"), mdp.ErrMalformed},
		{"MDPW02 FINAL with non-empty delimiter", fr(mdp.WorkerV2, "\x04", route, "x"), mdp.ErrMalformed},
		{"MDPW02 HEARTBEAT with extra frames", fr(mdp.WorkerV2, "\x05", "a", "b"), mdp.ErrMalformed},
		{"MDPW02 DISCONNECT with extra frame", fr(mdp.WorkerV2, "\x06", ""), mdp.ErrMalformed},
	}
	classes := []error{mdp.ErrMalformed, mdp.ErrProtocol, mdp.ErrCommand}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mdp.Parse(tt.frames)
			if err == nil {
				t.Fatalf("Parse(%q) = %s; want error %v", tt.frames, show(got), tt.want)
			}
			for _, c := range classes {
				if is := errors.Is(err, c); is != (c == tt.want) {
					t.Errorf("Parse(%q) error = %v; errors.Is(err, %v) = %t, want %t", tt.frames, err, c, is, !is)
				}
			}
		})
	}
}

// TestParseErrorTruncatesHeader checks that an error about a hostile header
// does not echo all of it.
func TestParseErrorTruncatesHeader(t *testing.T) {
	long := string(make([]byte, 1<<16))
	_, err := mdp.Parse(fr("x"+long, "\x01"))
	if !errors.Is(err, mdp.ErrProtocol) {
		t.Fatalf("Parse(long header) error = %v; want ErrProtocol", err)
	}
	if n := len(err.Error()); n > 200 {
		t.Errorf("Parse(long header) error has %d bytes; want at most 200", n)
	}
}

// TestAppendRoundTrip checks that every valid message encodes back to its
// exact frames, and that those parse to the same value.
func TestAppendRoundTrip(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.want.Append(nil)
			if err != nil {
				t.Fatalf("%s.Append(nil) error = %v; want %q", show(tt.want), err, tt.frames)
			}
			if !framesEqual(got, tt.frames) {
				t.Fatalf("%s.Append(nil) = %q; want %q", show(tt.want), got, tt.frames)
			}
			back, err := mdp.Parse(got)
			if err != nil || !msgEqual(back, tt.want) {
				t.Errorf("Parse(%q) = %s, %v; want %s", got, show(back), err, show(tt.want))
			}
		})
	}
}

// TestAppendMDPC01Reply checks the one encoding that does not round-trip by
// command: an MDP/0.1 reply to a client has the shape of a request.
func TestAppendMDPC01Reply(t *testing.T) {
	m := mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Reply, Service: []byte("echo"), Body: fr("hi")}
	got, err := m.Append(nil)
	want := fr("", mdp.ClientV1, "echo", "hi")
	if err != nil || !framesEqual(got, want) {
		t.Fatalf("%s.Append(nil) = %q, %v; want %q", show(m), got, err, want)
	}
	back, err := mdp.Parse(got)
	if err != nil || back.Command != mdp.Request {
		t.Errorf("Parse(%q) = %s, %v; want command REQUEST", got, show(back), err)
	}
}

// TestAppendExtends checks that Append appends after what dst holds, so a
// ROUTER's identity frame can go first.
func TestAppendExtends(t *testing.T) {
	m := mdp.Message{Role: mdp.Worker, Version: 2, Command: mdp.Heartbeat}
	dst := make([][]byte, 1, 8)
	dst[0] = []byte("identity")
	got, err := m.Append(dst)
	want := fr("identity", mdp.WorkerV2, "\x05")
	if err != nil || !framesEqual(got, want) {
		t.Fatalf("%s.Append([identity]) = %q, %v; want %q", show(m), got, err, want)
	}
}

func TestAppendErrors(t *testing.T) {
	tests := []struct {
		name string
		msg  mdp.Message
		want error
	}{
		{"zero message", mdp.Message{}, mdp.ErrProtocol},
		{"version 0", mdp.Message{Role: mdp.Client, Command: mdp.Request}, mdp.ErrProtocol},
		{"version 3", mdp.Message{Role: mdp.Client, Version: 3, Command: mdp.Request}, mdp.ErrProtocol},
		{"role 0 v1", mdp.Message{Version: 1, Command: mdp.Request}, mdp.ErrProtocol},
		{"role 3 v2", mdp.Message{Role: 3, Version: 2, Command: mdp.Request}, mdp.ErrProtocol},
		{"MDPC01 READY", mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Ready}, mdp.ErrCommand},
		{"MDPC01 PARTIAL", mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Partial}, mdp.ErrCommand},
		{"MDPC01 HEARTBEAT", mdp.Message{Role: mdp.Client, Version: 1, Command: mdp.Heartbeat}, mdp.ErrCommand},
		{"MDPC02 REPLY", mdp.Message{Role: mdp.Client, Version: 2, Command: mdp.Reply}, mdp.ErrCommand},
		{"MDPC02 READY", mdp.Message{Role: mdp.Client, Version: 2, Command: mdp.Ready}, mdp.ErrCommand},
		{"MDPC02 DISCONNECT", mdp.Message{Role: mdp.Client, Version: 2, Command: mdp.Disconnect}, mdp.ErrCommand},
		{"MDPW01 PARTIAL", mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Partial}, mdp.ErrCommand},
		{"MDPW01 FINAL", mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Final}, mdp.ErrCommand},
		{"MDPW02 REPLY", mdp.Message{Role: mdp.Worker, Version: 2, Command: mdp.Reply}, mdp.ErrCommand},
		{"worker command 0", mdp.Message{Role: mdp.Worker, Version: 2}, mdp.ErrCommand},
		{"worker command 200", mdp.Message{Role: mdp.Worker, Version: 1, Command: 200}, mdp.ErrCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := fr("identity")
			got, err := tt.msg.Append(dst)
			if !errors.Is(err, tt.want) {
				t.Fatalf("%s.Append error = %v; want %v", show(tt.msg), err, tt.want)
			}
			if !framesEqual(got, dst) {
				t.Errorf("%s.Append([identity]) = %q after error; want dst unchanged", show(tt.msg), got)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{mdp.Client.String(), "client"},
		{mdp.Worker.String(), "worker"},
		{mdp.Role(9).String(), "Role(9)"},
		{mdp.Ready.String(), "READY"},
		{mdp.Request.String(), "REQUEST"},
		{mdp.Reply.String(), "REPLY"},
		{mdp.Partial.String(), "PARTIAL"},
		{mdp.Final.String(), "FINAL"},
		{mdp.Heartbeat.String(), "HEARTBEAT"},
		{mdp.Disconnect.String(), "DISCONNECT"},
		{mdp.Command(0).String(), "Command(0)"},
		{mdp.Command(8).String(), "Command(8)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("String() = %q; want %q", tt.got, tt.want)
		}
	}
}
