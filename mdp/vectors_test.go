package mdp_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/mdp"
)

// The byte-level test vectors in testdata/protocol are generated from the
// tables below and the code (go test ./mdp/ -run Vectors -update), then
// checked against the code on every run. testdata/protocol/README.md
// describes their format for implementers in other languages.

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/protocol from the code")

const vectorDir = "../testdata/protocol"

// vectorFile is one JSON file: a group of vectors.
type vectorFile struct {
	Group       string   `json:"group"`
	Description string   `json:"description"`
	Vectors     []vector `json:"vectors"`
}

// vector is one test vector. Frames are hex strings, one per ZeroMQ message
// part. Exactly one of Error and the group's expected value is set.
type vector struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Kind        string       `json:"kind,omitempty"`   // envelope group: "request" or "reply"
	Limits      *vectorLimit `json:"limits,omitempty"` // limits group
	Frames      []string     `json:"frames"`
	Error       string       `json:"error,omitempty"` // the error class, if decoding fails

	Message *vectorMessage `json:"message,omitempty"` // mdp01, mdp02
	Request *vectorRequest `json:"request,omitempty"` // envelope
	Reply   *vectorReply   `json:"reply,omitempty"`   // envelope
	Headers *vectorHeaders `json:"headers,omitempty"` // headers
}

type vectorLimit struct {
	MaxFrames      int `json:"max_frames"`
	MaxFrameSize   int `json:"max_frame_size"`
	MaxMessageSize int `json:"max_message_size"`
}

type vectorMessage struct {
	Role    string   `json:"role"`
	Version int      `json:"version"`
	Command string   `json:"command"`
	Service *string  `json:"service,omitempty"`
	Address *string  `json:"address,omitempty"`
	Body    []string `json:"body"`
}

type vectorRequest struct {
	Method  string `json:"method"`
	Headers string `json:"headers"`
	Payload string `json:"payload"`
}

type vectorReply struct {
	Status    string      `json:"status"`
	Headers   string      `json:"headers"`
	Payload   string      `json:"payload"`
	DomoError *domo.Error `json:"domo_error,omitempty"` // the error a domo client sees, for a status other than ok
}

type vectorEntry struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type vectorHeaders struct {
	Entries    []vectorEntry `json:"entries"`
	DeadlineMS *int64        `json:"deadline_ms,omitempty"`
	Credit     *int64        `json:"credit,omitempty"`
}

// vectorInput is the part of a vector written by hand.
type vectorInput struct {
	name, desc string
	kind       string
	limits     *vectorLimit
	frames     [][]byte
}

type vectorGroup struct {
	file, desc string
	inputs     []vectorInput
}

func hx(b []byte) string { return hex.EncodeToString(b) }

func hxp(b []byte) *string {
	if b == nil {
		return nil
	}
	s := hx(b)
	return &s
}

// hdr builds a headers frame from name, value pairs.
func hdr(kv ...string) string {
	h := mdp.Headers{mdp.HeadersMagic}
	for i := 0; i < len(kv); i += 2 {
		h = mdp.AppendHeader(h, kv[i], kv[i+1])
	}
	return string(h)
}

func errorClass(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{
		{mdp.ErrMalformed, "malformed"}, {mdp.ErrProtocol, "protocol"}, {mdp.ErrCommand, "command"},
		{mdp.ErrTooManyFrames, "too_many_frames"}, {mdp.ErrFrameTooLarge, "frame_too_large"}, {mdp.ErrTooLarge, "too_large"},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "unknown: " + err.Error()
}

// decodeVector computes a vector's expected value from its input, with the
// code under test.
func decodeVector(group string, in vectorInput) vector {
	v := vector{Name: in.name, Description: in.desc, Kind: in.kind, Limits: in.limits, Frames: []string{}}
	for _, f := range in.frames {
		v.Frames = append(v.Frames, hx(f))
	}
	switch group {
	case "mdp01", "mdp02":
		m, err := mdp.Parse(in.frames)
		if err != nil {
			v.Error = errorClass(err)
			break
		}
		vm := &vectorMessage{Role: m.Role.String(), Version: int(m.Version), Command: m.Command.String(),
			Service: hxp(m.Service), Address: hxp(m.Address), Body: []string{}}
		for _, b := range m.Body {
			vm.Body = append(vm.Body, hx(b))
		}
		v.Message = vm
	case "envelope":
		if in.kind == "request" {
			r, err := mdp.ParseRequest(in.frames)
			if err != nil {
				v.Error = errorClass(err)
				break
			}
			v.Request = &vectorRequest{Method: hx(r.Method), Headers: hx(r.Headers), Payload: hx(r.Payload)}
		} else {
			r, err := mdp.ParseReply(in.frames)
			if err != nil {
				v.Error = errorClass(err)
				break
			}
			v.Reply = &vectorReply{Status: hx(r.Status), Headers: hx(r.Headers), Payload: hx(r.Payload), DomoError: r.Err()}
		}
	case "headers":
		h := mdp.Headers(in.frames[0])
		if err := h.Validate(); err != nil {
			v.Error = errorClass(err)
			break
		}
		vh := &vectorHeaders{Entries: []vectorEntry{}}
		for name, value := range h.All() {
			vh.Entries = append(vh.Entries, vectorEntry{hx([]byte(name)), hx(value)})
		}
		if d, ok := h.Deadline(); ok {
			ms := d.UnixMilli()
			vh.DeadlineMS = &ms
		}
		if c, ok := h.Int(mdp.HeaderCredit); ok {
			vh.Credit = &c
		}
		v.Headers = vh
	case "limits":
		l := mdp.Limits{MaxFrames: in.limits.MaxFrames, MaxFrameSize: in.limits.MaxFrameSize, MaxMessageSize: in.limits.MaxMessageSize}
		if err := l.Check(in.frames); err != nil {
			v.Error = errorClass(err)
		}
	}
	return v
}

// fileFor renders one group as the bytes of its JSON file.
func fileFor(g vectorGroup) []byte {
	group := strings.TrimSuffix(g.file, ".json")
	f := vectorFile{Group: group, Description: g.desc}
	for _, in := range g.inputs {
		f.Vectors = append(f.Vectors, decodeVector(group, in))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// TestVectorsGolden checks that the files in testdata/protocol are what the
// tables and the code produce; -update rewrites them.
func TestVectorsGolden(t *testing.T) {
	for _, g := range vectorGroups() {
		t.Run(g.file, func(t *testing.T) {
			path := filepath.Join(vectorDir, g.file)
			want := fileFor(g)
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./mdp/ -run Vectors -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from what the code produces; run go test ./mdp/ -run Vectors -update and review the diff", path)
			}
		})
	}
}

// TestVectors reads every vector file as an implementation in another
// language would, and checks each vector against the code: decoding gives
// the recorded value or error class, and every valid value encodes back to
// exactly the recorded frames.
func TestVectors(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no vector files in %s: %v", vectorDir, err)
	}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var f vectorFile
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, v := range f.Vectors {
			t.Run(f.Group+"/"+v.Name, func(t *testing.T) {
				var frames [][]byte
				for _, s := range v.Frames {
					b, err := hex.DecodeString(s)
					if err != nil {
						t.Fatalf("frame %q: %v", s, err)
					}
					frames = append(frames, b)
				}
				got := decodeVector(f.Group, vectorInput{name: v.Name, desc: v.Description, kind: v.Kind, limits: v.Limits, frames: frames})
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(v)
				if !bytes.Equal(gj, wj) {
					t.Fatalf("decoding %q gives\n%s\nwant\n%s", frames, gj, wj)
				}
				if v.Error == "" {
					checkReencode(t, f.Group, v, frames)
				}
			})
		}
	}
}

// checkReencode encodes a valid vector's decoded value and compares it with
// the vector's frames.
func checkReencode(t *testing.T, group string, v vector, frames [][]byte) {
	t.Helper()
	var got [][]byte
	switch group {
	case "mdp01", "mdp02":
		m, _ := mdp.Parse(frames)
		var err error
		if got, err = m.Append(nil); err != nil {
			t.Fatalf("%s.Append(nil) error = %v", show(m), err)
		}
	case "envelope":
		if v.Kind == "request" {
			r, _ := mdp.ParseRequest(frames)
			got = r.Append(nil)
		} else {
			r, _ := mdp.ParseReply(frames)
			got = r.Append(nil)
			if e := r.Err(); e != nil {
				// An error reply made by ErrorReply decodes to the same error.
				er := mdp.ErrorReply(r.Headers, e)
				again, err := mdp.ParseReply(er.Append(nil))
				if err != nil || again.Err().Code != e.Code {
					t.Errorf("ErrorReply(%v) decodes to %v, %v; want code %s", e, again.Err(), err, e.Code)
				}
			}
		}
	case "headers":
		var h mdp.Headers
		for _, e := range v.Headers.Entries {
			name, _ := hex.DecodeString(e.Name)
			value, _ := hex.DecodeString(e.Value)
			h = mdp.AppendHeader(h, string(name), value)
		}
		if len(v.Headers.Entries) == 0 {
			return // an empty frame and a magic-only frame both hold no entries
		}
		got = [][]byte{h}
	default:
		return
	}
	if !framesEqual(got, frames) {
		t.Errorf("encoding the decoded value gives %q; want %q", got, frames)
	}
}

// Frames the vectors share.
const (
	vRoute    = "\x00\x00\x00\x00\x00\x00\x00\x2a" // request number 42
	vDeadline = "1767225600000"                    // 2026-01-01T00:00:00Z
	vTrace    = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
)

var (
	vReqHeaders   = hdr(mdp.HeaderID, "r1", mdp.HeaderDeadline, vDeadline)
	vReplyHeaders = hdr(mdp.HeaderID, "r1")
	vCredit       = hdr(mdp.HeaderCredit, "16")
)

func vectorGroups() []vectorGroup {
	in := func(name, desc string, frames ...string) vectorInput {
		return vectorInput{name: name, desc: desc, frames: fr(frames...)}
	}
	req := func(name, desc string, frames ...string) vectorInput {
		return vectorInput{name: name, desc: desc, kind: "request", frames: fr(frames...)}
	}
	rep := func(name, desc string, frames ...string) vectorInput {
		return vectorInput{name: name, desc: desc, kind: "reply", frames: fr(frames...)}
	}
	one := func(name, desc string, frame string) vectorInput {
		return vectorInput{name: name, desc: desc, frames: fr(frame)}
	}
	small := &vectorLimit{MaxFrames: 3, MaxFrameSize: 4, MaxMessageSize: 6}
	lim := func(name, desc string, frames ...string) vectorInput {
		return vectorInput{name: name, desc: desc, limits: small, frames: fr(frames...)}
	}
	errorReply := func(code domo.Code, msg string) vectorInput {
		e := mdp.ErrorReply(mdp.Headers(vReplyHeaders), &domo.Error{Code: code, Message: msg})
		return vectorInput{name: "reply-error-" + strings.ReplaceAll(string(code), "_", "-"),
			desc: "Error reply with code " + string(code) + ", as the broker or a worker sends it.", kind: "reply", frames: e.Append(nil)}
	}

	mdp01 := []vectorInput{
		in("client-request", `MDPC01 request for service "echo" with a one-frame body "hello".`,
			"", mdp.ClientV1, "echo", "hello"),
		in("client-request-no-body", `MDPC01 request with no body frames.`,
			"", mdp.ClientV1, "echo"),
		in("client-request-multi-frame-body", `MDPC01 request whose body has three frames, the second empty. Body frames are opaque.`,
			"", mdp.ClientV1, "echo", "a", "", "c"),
		in("client-request-envelope", `MDPC01 request to service "tea" whose body is a domo request envelope: method "tea.brew", headers {id: r1, deadline: 1767225600000}, JSON payload.`,
			"", mdp.ClientV1, "tea", "tea.brew", vReqHeaders, `{"cups":2}`),
		in("client-reply", `MDPC01 reply from the broker to a client. On the wire it has the same shape as a request (RFC 7); the direction tells them apart, so a direction-agnostic decoder reports REQUEST.`,
			"", mdp.ClientV1, "echo", "hello"),
		in("client-mmi-service", `MDPC01 request to mmi.service asking whether service "echo" has workers (RFC 8).`,
			"", mdp.ClientV1, mdp.MMIService, "echo"),
		in("client-mmi-service-reply", `MDPC01 reply to mmi.service: "200", the service has workers.`,
			"", mdp.ClientV1, mdp.MMIService, mdp.MMIFound),
		in("worker-ready", `MDPW01 READY for service "echo" (plain RFC 7 worker, credit 1).`,
			"", mdp.WorkerV1, "\x01", "echo"),
		in("worker-ready-credit", `MDPW01 READY with the domo extension frame: a headers frame {credit: 16}.`,
			"", mdp.WorkerV1, "\x01", "tea", vCredit),
		in("worker-request", `MDPW01 REQUEST from the broker: route frame (8-byte request number 42), empty frame, body "hello".`,
			"", mdp.WorkerV1, "\x02", vRoute, "", "hello"),
		in("worker-request-envelope", `MDPW01 REQUEST carrying a domo request envelope.`,
			"", mdp.WorkerV1, "\x02", vRoute, "", "tea.brew", vReqHeaders, `{"cups":2}`),
		in("worker-reply", `MDPW01 REPLY: the worker echoes the route frame, then an empty frame, then the body.`,
			"", mdp.WorkerV1, "\x03", vRoute, "", "hello"),
		in("worker-reply-envelope", `MDPW01 REPLY carrying a domo reply envelope with status ok.`,
			"", mdp.WorkerV1, "\x03", vRoute, "", "ok", vReplyHeaders, `{"tea":"green"}`),
		in("worker-heartbeat", `MDPW01 HEARTBEAT (either direction).`,
			"", mdp.WorkerV1, "\x04"),
		in("worker-disconnect", `MDPW01 DISCONNECT (either direction).`,
			"", mdp.WorkerV1, "\x05"),

		in("error-no-frames", `A message with no frames.`),
		in("error-empty-frame-only", `An empty frame and nothing after it.`, ""),
		in("error-unknown-header", `An unknown protocol header after the empty frame.`, "", "MDPX01", "echo"),
		in("error-header-lower-case", `Protocol headers are case-sensitive.`, "", "mdpc01", "echo"),
		in("error-v1-without-empty-frame", `MDPC01 without the leading empty frame (MDP/0.1 requires it).`, mdp.ClientV1, "echo", "hello"),
		in("error-v2-header-after-empty-frame", `MDPW02 after an empty frame (MDP/0.2 has none).`, "", mdp.WorkerV2, "\x05"),
		in("error-client-without-service", `MDPC01 with no service frame.`, "", mdp.ClientV1),
		in("error-worker-without-command", `MDPW01 with no command frame.`, "", mdp.WorkerV1),
		in("error-command-0x00", `Command byte 0x00 is not defined.`, "", mdp.WorkerV1, "\x00"),
		in("error-command-0x06", `Command byte 0x06 is not defined in MDPW01 (it is DISCONNECT in MDPW02).`, "", mdp.WorkerV1, "\x06"),
		in("error-command-ascii", `The command is a byte value, not an ASCII digit.`, "", mdp.WorkerV1, "1", "echo"),
		in("error-command-two-bytes", `A command frame of two bytes.`, "", mdp.WorkerV1, "\x01\x00", "echo"),
		in("error-command-empty", `An empty command frame.`, "", mdp.WorkerV1, "", "echo"),
		in("error-ready-without-service", `READY with no service frame.`, "", mdp.WorkerV1, "\x01"),
		in("error-ready-empty-service", `READY with an empty service name.`, "", mdp.WorkerV1, "\x01", ""),
		in("error-request-without-address", `REQUEST with no route frame.`, "", mdp.WorkerV1, "\x02"),
		in("error-request-without-delimiter", `REQUEST with a route frame but no empty frame after it.`, "", mdp.WorkerV1, "\x02", vRoute),
		in("error-reply-non-empty-delimiter", `REPLY whose route frame is followed by a non-empty frame.`, "", mdp.WorkerV1, "\x03", vRoute, "hello"),
		in("error-heartbeat-extra-frame", `HEARTBEAT followed by a frame.`, "", mdp.WorkerV1, "\x04", ""),
		in("error-disconnect-extra-frame", `DISCONNECT followed by a frame.`, "", mdp.WorkerV1, "\x05", "bye"),
	}

	mdp02 := []vectorInput{
		in("client-request", `MDPC02 REQUEST for service "echo", body "hello". No empty frame.`,
			mdp.ClientV2, "\x01", "echo", "hello"),
		in("client-request-envelope", `MDPC02 REQUEST whose body is a domo request envelope.`,
			mdp.ClientV2, "\x01", "tea", "tea.brew", vReqHeaders, `{"cups":2}`),
		in("client-partial", `MDPC02 PARTIAL from the broker: one part of a streamed reply.`,
			mdp.ClientV2, "\x02", "echo", "part 1"),
		in("client-final", `MDPC02 FINAL from the broker: the last part of a reply, which ends the request.`,
			mdp.ClientV2, "\x03", "echo", "done"),
		in("client-final-envelope", `MDPC02 FINAL carrying a domo reply envelope with status ok.`,
			mdp.ClientV2, "\x03", "tea", "ok", vReplyHeaders, `{"tea":"green"}`),
		in("client-mmi-services", `MDPC02 REQUEST to domo's mmi.services with a domo envelope body; the broker answers with a domo envelope.`,
			mdp.ClientV2, "\x01", mdp.MMIServices, mdp.MMIServices, vReplyHeaders, ""),
		in("worker-ready", `MDPW02 READY for service "echo".`,
			mdp.WorkerV2, "\x01", "echo"),
		in("worker-ready-credit", `MDPW02 READY with the domo extension frame {credit: 16}.`,
			mdp.WorkerV2, "\x01", "tea", vCredit),
		in("worker-request", `MDPW02 REQUEST: route frame (request number 42), empty frame, body.`,
			mdp.WorkerV2, "\x02", vRoute, "", "hello"),
		in("worker-request-envelope", `MDPW02 REQUEST carrying a domo request envelope.`,
			mdp.WorkerV2, "\x02", vRoute, "", "tea.brew", vReqHeaders, `{"cups":2}`),
		in("worker-partial", `MDPW02 PARTIAL: one part of a streamed reply.`,
			mdp.WorkerV2, "\x03", vRoute, "", "part 1"),
		in("worker-partial-envelope", `MDPW02 PARTIAL carrying a domo reply envelope.`,
			mdp.WorkerV2, "\x03", vRoute, "", "ok", vReplyHeaders, `{"n":1}`),
		in("worker-final", `MDPW02 FINAL: the last part, which ends the request.`,
			mdp.WorkerV2, "\x04", vRoute, "", "done"),
		in("worker-final-no-body", `MDPW02 FINAL with no body frames.`,
			mdp.WorkerV2, "\x04", vRoute, ""),
		in("worker-heartbeat", `MDPW02 HEARTBEAT (either direction).`,
			mdp.WorkerV2, "\x05"),
		in("worker-disconnect", `MDPW02 DISCONNECT (either direction).`,
			mdp.WorkerV2, "\x06"),

		in("error-unknown-header", `An unknown protocol header.`, "HTTP/1.1", "\x01"),
		in("error-v1-worker-without-empty-frame", `MDPW01 as the first frame (MDP/0.1 needs the empty frame first).`, mdp.WorkerV1, "\x01", "echo"),
		in("error-client-without-command", `MDPC02 with no command frame.`, mdp.ClientV2),
		in("error-client-without-service", `MDPC02 REQUEST with no service frame.`, mdp.ClientV2, "\x01"),
		in("error-client-command-0x04", `Command byte 0x04 is not defined for MDPC02.`, mdp.ClientV2, "\x04", "echo"),
		in("error-client-command-empty", `An empty command frame.`, mdp.ClientV2, "", "echo"),
		in("error-worker-command-0x07", `Command byte 0x07 is not defined for MDPW02.`, mdp.WorkerV2, "\x07"),
		in("error-worker-command-two-bytes", `A two-byte command frame.`, mdp.WorkerV2, "\x05\x05"),
		in("error-ready-without-service", `READY with no service frame.`, mdp.WorkerV2, "\x01"),
		in("error-partial-without-address", `PARTIAL with no route frame.`, mdp.WorkerV2, "\x03"),
		in("error-partial-without-delimiter", `PARTIAL with a route frame but no empty frame.`, mdp.WorkerV2, "\x03", vRoute),
		in("error-final-non-empty-delimiter", `FINAL whose route frame is followed by a non-empty frame.`, mdp.WorkerV2, "\x04", vRoute, "x"),
		in("error-heartbeat-extra-frames", `HEARTBEAT followed by two frames.`, mdp.WorkerV2, "\x05", "a", "b"),
		in("error-disconnect-extra-frame", `DISCONNECT followed by an empty frame.`, mdp.WorkerV2, "\x06", ""),
	}

	envelope := []vectorInput{
		req("request", `Request envelope: method "tea.brew", headers {id: r1, deadline: 1767225600000}, JSON payload.`,
			"tea.brew", vReqHeaders, `{"cups":2}`),
		req("request-minimal", `Request envelope with a magic-only headers frame (no headers) and an empty payload.`,
			"tea.ping", "\xd1", ""),
		req("request-all-headers", `Request envelope carrying every defined header.`,
			"tea.brew", hdr(mdp.HeaderID, "r7", mdp.HeaderDeadline, vDeadline, mdp.HeaderTraceparent, vTrace,
				mdp.HeaderTracestate, "congo=t61rcWkgMzE", mdp.HeaderContentType, "application/json",
				mdp.HeaderCaller, `{"sub":"alice"}`, mdp.HeaderRetry, "1", mdp.HeaderAttempt, "2"), `{}`),
		req("request-binary-payload", `The payload is opaque bytes; content-type says what they are.`,
			"img.resize", hdr(mdp.HeaderContentType, "application/octet-stream"), "\x89PNG\r\n\x1a\n\x00"),
		rep("reply-ok", `Successful reply: status "ok", the request id echoed, JSON payload.`,
			"ok", vReplyHeaders, `{"tea":"green"}`),
		rep("reply-ok-empty", `Successful reply with no headers and an empty payload.`,
			"ok", "\xd1", ""),
		errorReply(domo.CodeInvalid, "cups must be positive"),
		errorReply(domo.CodeUnauthenticated, "no token"),
		errorReply(domo.CodeForbidden, "not your teapot"),
		errorReply(domo.CodeUnknownService, `no worker has offered "tea"`),
		errorReply(domo.CodeUnknownMethod, `tea has no method "tea.fly"`),
		errorReply(domo.CodeOverloaded, `queue of "tea" is full`),
		errorReply(domo.CodeDeadlineExceeded, "deadline passed"),
		errorReply(domo.CodeUnavailable, "worker lost"),
		errorReply(domo.CodeTooLarge, "message exceeds 4194304 bytes"),
		errorReply(domo.CodeCanceled, "caller gave up"),
		errorReply(domo.CodeInternal, "handler failed"),
		rep("reply-error-details", `Error reply whose JSON carries details, which are any JSON value.`,
			"invalid", vReplyHeaders, `{"code":"invalid","message":"bad request","details":{"field":"cups","min":1}}`),
		rep("reply-error-not-json", `Error reply whose payload is not a JSON error object: the status is the code and the payload the message.`,
			"internal", "\xd1", "segfault"),
		rep("reply-error-status-wins", `The status frame is the code even when the JSON says otherwise.`,
			"unavailable", "\xd1", `{"code":"internal","message":"worker lost"}`),
		rep("reply-error-unknown-code", `A code this implementation does not know is still an error with that code.`,
			"teapot", "\xd1", `{"code":"teapot","message":"short and stout"}`),

		req("error-two-frames", `Two frames are not an envelope.`, "tea.brew", vReqHeaders),
		req("error-four-frames", `Four frames are not an envelope.`, "tea.brew", vReqHeaders, "{}", "extra"),
		req("error-plain-body", `A plain three-frame MDP body whose second frame does not start with 0xD1.`, "a", "b", "c"),
		req("error-empty-headers-frame", `An empty second frame: an envelope's headers frame starts with 0xD1.`, "tea.brew", "", "{}"),
		req("error-truncated-headers", `A headers frame whose value runs past its end.`, "tea.brew", "\xd1\x02id\x00\x00\x00\x05r1", "{}"),
		rep("error-empty-status", `A reply envelope with an empty status frame.`, "", vReplyHeaders, "{}"),
	}

	headers := []vectorInput{
		one("empty-frame", `An empty frame is a valid headers frame with no entries (outside an envelope).`, ""),
		one("magic-only", `The magic byte alone: no entries.`, "\xd1"),
		one("id", `One entry: id = "r1". 0xD1, name length 2, "id", value length 00000002, "r1".`, hdr(mdp.HeaderID, "r1")),
		one("id-and-deadline", `id and deadline (Unix milliseconds, decimal ASCII).`, vReqHeaders),
		one("credit", `The READY extension: credit = 16.`, vCredit),
		one("all-defined", `Every header name the protocol defines.`,
			hdr(mdp.HeaderID, "r7", mdp.HeaderDeadline, vDeadline, mdp.HeaderTraceparent, vTrace,
				mdp.HeaderTracestate, "congo=t61rcWkgMzE", mdp.HeaderContentType, "application/json",
				mdp.HeaderCaller, `{"sub":"alice"}`, mdp.HeaderRetry, "1", mdp.HeaderAttempt, "1", mdp.HeaderCredit, "4")),
		one("duplicate-names", `Names may repeat; a lookup returns the first.`, hdr(mdp.HeaderID, "first", mdp.HeaderID, "second")),
		one("empty-value", `A value may be empty.`, hdr("x-flag", "")),
		one("binary-value", `Values are bytes, not text.`, hdr("x-bin", "\x00\xff\xd1")),
		one("application-header", `Applications may define their own names.`, hdr("x-tenant", "acme")),
		one("long-name", `A 255-byte name, the longest allowed.`, hdr(strings.Repeat("n", 255), "v")),
		one("long-value", `A 300-byte value: length 0000012c.`, hdr("x-long", strings.Repeat("v", 300))),
		one("deadline-not-decimal", `A deadline that is not decimal ASCII digits is no deadline; the frame is still valid.`, hdr(mdp.HeaderDeadline, "-5")),
		one("deadline-too-long", `A deadline of more than 18 digits is no deadline.`, hdr(mdp.HeaderDeadline, "1000000000000000000")),

		one("error-wrong-magic", `The first byte is not 0xD1.`, "\xd0\x02id\x00\x00\x00\x02r1"),
		one("error-json", `A JSON object is not a headers frame.`, `{"id":"r1"}`),
		one("error-zero-name-length", `A name length of 0.`, "\xd1\x00\x00\x00\x00\x00"),
		one("error-name-cut-short", `The name runs past the end of the frame.`, "\xd1\x05ab"),
		one("error-value-length-cut-short", `Fewer than 4 bytes of value length.`, "\xd1\x01a\x00\x00\x00"),
		one("error-value-cut-short", `The value runs past the end of the frame.`, "\xd1\x01a\x00\x00\x00\x03xy"),
		one("error-huge-value-length", `A value length of 2^32-1.`, "\xd1\x01a\xff\xff\xff\xffxy"),
		one("error-trailing-byte", `A byte after the last entry.`, hdr(mdp.HeaderID, "r1")+"\x00"),
	}

	limits := []vectorInput{
		lim("within", `2 frames, none over 4 bytes, 6 bytes in all: accepted.`, "aa", "bbbb"),
		lim("at-every-limit", `3 frames, the largest 4 bytes, 6 bytes in all: limits are inclusive.`, "aa", "bbbb", ""),
		lim("too-many-frames", `4 frames when 3 are allowed.`, "", "", "", ""),
		lim("frame-too-large", `A 5-byte frame when 4 are allowed.`, "aaaaa"),
		lim("message-too-large", `7 bytes in all when 6 are allowed.`, "aaa", "bbbb"),
		lim("frames-checked-first", `Too many frames and a frame too large: the frame count is checked first.`, "aaaaa", "", "", ""),
	}

	return []vectorGroup{
		{"mdp01.json", "MDP/0.1 (ZeroMQ RFC 7): MDPC01 and MDPW01 messages as a DEALER receives them, or as a ROUTER receives them after the identity frame. Every MDP/0.1 message starts with an empty frame.", mdp01},
		{"mdp02.json", "MDP/0.2 (ZeroMQ RFC 18): MDPC02 and MDPW02 messages as a DEALER receives them, or as a ROUTER receives them after the identity frame. MDP/0.2 messages have no empty frame before the protocol header.", mdp02},
		{"envelope.json", "The domo envelope: the MDP body frames of a request [method, headers, payload] (kind request) or a reply [status, headers, payload] (kind reply).", envelope},
		{"headers.json", "The domo headers frame: 0xD1, then entries of name length (1 byte, 1-255), name, value length (4 bytes, big-endian), value. Each vector has one frame.", headers},
		{"limits.json", "Message limits, shown with small limits (3 frames, 4 bytes a frame, 6 bytes a message); the defaults are 64 frames, 4 MiB a frame, 4 MiB a message. Frames are counted as received, the ROUTER's identity frame included.", limits},
	}
}
