package mdp

import "fmt"

// Message is one decoded MDP command.
//
// Which fields are set depends on the command:
//
//	client Request/Reply/Partial/Final   Service, Body
//	worker Ready                         Service, Body (domo extension frames, usually none)
//	worker Request/Reply/Partial/Final   Address, Body
//	worker Heartbeat/Disconnect          nothing
type Message struct {
	Role    Role
	Version Version
	Command Command
	Service []byte   // the service name
	Address []byte   // the client address (route) a worker request or reply carries
	Body    [][]byte // the opaque body
}

// Parse decodes an MDP command from frames as a DEALER receives them, or as a
// ROUTER receives them after the identity frame. MDP/0.1 commands start with
// an empty frame; MDP/0.2 commands do not. The Message aliases frames.
//
// Parse checks structure only; apply Limits.Check to the frames first.
func Parse(frames [][]byte) (Message, error) {
	var m Message
	if len(frames) == 0 {
		return m, fmt.Errorf("%w: no frames", ErrMalformed)
	}
	if len(frames[0]) == 0 { // MDP/0.1: empty delimiter, then the header
		frames = frames[1:]
		if len(frames) == 0 {
			return m, fmt.Errorf("%w: no protocol header after the empty frame", ErrMalformed)
		}
		m.Version = 1
		switch string(frames[0]) {
		case ClientV1:
			m.Role = Client
		case WorkerV1:
			m.Role = Worker
		default:
			return m, fmt.Errorf("%w %q", ErrProtocol, truncate(frames[0]))
		}
	} else {
		m.Version = 2
		switch string(frames[0]) {
		case ClientV2:
			m.Role = Client
		case WorkerV2:
			m.Role = Worker
		default:
			return m, fmt.Errorf("%w %q", ErrProtocol, truncate(frames[0]))
		}
	}
	frames = frames[1:]
	if m.Role == Client {
		return parseClient(m, frames)
	}
	return parseWorker(m, frames)
}

func parseClient(m Message, frames [][]byte) (Message, error) {
	if m.Version == 1 {
		// MDPC01 has no command frame: requests and replies share one shape.
		m.Command = Request
	} else {
		if len(frames) == 0 {
			return m, fmt.Errorf("%w: client message without a command", ErrMalformed)
		}
		cmd, err := command(clientV2Codes, frames[0])
		if err != nil {
			return m, err
		}
		m.Command = cmd
		frames = frames[1:]
	}
	if len(frames) == 0 {
		return m, fmt.Errorf("%w: client %s without a service name", ErrMalformed, m.Command)
	}
	m.Service = frames[0]
	m.Body = frames[1:]
	return m, nil
}

func parseWorker(m Message, frames [][]byte) (Message, error) {
	if len(frames) == 0 {
		return m, fmt.Errorf("%w: worker message without a command", ErrMalformed)
	}
	codes := workerV1Codes
	if m.Version == 2 {
		codes = workerV2Codes
	}
	cmd, err := command(codes, frames[0])
	if err != nil {
		return m, err
	}
	m.Command = cmd
	frames = frames[1:]
	switch cmd {
	case Ready:
		if len(frames) == 0 || len(frames[0]) == 0 {
			return m, fmt.Errorf("%w: READY without a service name", ErrMalformed)
		}
		m.Service = frames[0]
		m.Body = frames[1:]
	case Request, Reply, Partial, Final:
		if len(frames) < 2 {
			return m, fmt.Errorf("%w: %s needs an address and an empty frame", ErrMalformed, cmd)
		}
		if len(frames[1]) != 0 {
			return m, fmt.Errorf("%w: %s address not followed by an empty frame", ErrMalformed, cmd)
		}
		m.Address = frames[0]
		m.Body = frames[2:]
	case Heartbeat, Disconnect:
		if len(frames) != 0 {
			return m, fmt.Errorf("%w: %s has %d extra frames", ErrMalformed, cmd, len(frames))
		}
	}
	return m, nil
}

func command(codes *codeTable, f []byte) (Command, error) {
	if len(f) != 1 {
		return 0, fmt.Errorf("%w: command frame of %d bytes", ErrCommand, len(f))
	}
	if int(f[0]) >= len(codes.decode) || codes.decode[f[0]] == 0 {
		return 0, fmt.Errorf("%w 0x%02x", ErrCommand, f[0])
	}
	return codes.decode[f[0]], nil
}

// truncate keeps error messages about hostile input short.
func truncate(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

// Static frames, shared by every encoder. They are never written to.
var (
	empty       = []byte{}
	hdrClientV1 = []byte(ClientV1)
	hdrClientV2 = []byte(ClientV2)
	hdrWorkerV1 = []byte(WorkerV1)
	hdrWorkerV2 = []byte(WorkerV2)
	codeFrames  = [7][]byte{{0}, {1}, {2}, {3}, {4}, {5}, {6}}
)

// Append encodes m and appends its frames to dst, returning the extended
// slice. Body frames are appended by reference, not copied. It returns an
// error, and dst unchanged, for a command that does not exist in m's role
// and version.
func (m *Message) Append(dst [][]byte) ([][]byte, error) {
	out, err := m.appendFrames(dst)
	if err != nil {
		return dst, err // not a half-encoded message
	}
	return out, nil
}

func (m *Message) appendFrames(dst [][]byte) ([][]byte, error) {
	if m.Version == 1 {
		dst = append(dst, empty)
	} else if m.Version != 2 {
		return dst, fmt.Errorf("%w: version %d", ErrProtocol, m.Version)
	}
	switch m.Role {
	case Client:
		if m.Version == 1 {
			if m.Command != Request && m.Command != Reply {
				return dst, fmt.Errorf("%w: %s in MDPC01", ErrCommand, m.Command)
			}
			dst = append(dst, hdrClientV1)
		} else {
			code, ok := wireCode(clientV2Codes, m.Command)
			if !ok {
				return dst, fmt.Errorf("%w: %s in MDPC02", ErrCommand, m.Command)
			}
			dst = append(dst, hdrClientV2, code)
		}
		dst = append(dst, m.Service)
	case Worker:
		hdr, codes := hdrWorkerV1, workerV1Codes
		if m.Version == 2 {
			hdr, codes = hdrWorkerV2, workerV2Codes
		}
		code, ok := wireCode(codes, m.Command)
		if !ok {
			return dst, fmt.Errorf("%w: %s in MDPW0%d", ErrCommand, m.Command, m.Version)
		}
		dst = append(dst, hdr, code)
		switch m.Command {
		case Ready:
			dst = append(dst, m.Service)
		case Request, Reply, Partial, Final:
			dst = append(dst, m.Address, empty)
		case Heartbeat, Disconnect:
			return dst, nil
		}
	default:
		return dst, fmt.Errorf("%w: role %d", ErrProtocol, m.Role)
	}
	return append(dst, m.Body...), nil
}

// wireCode returns the one-byte command frame for cmd.
func wireCode(codes *codeTable, cmd Command) ([]byte, bool) {
	if int(cmd) >= len(codes.encode) || codes.encode[cmd] == 0 {
		return nil, false
	}
	return codeFrames[codes.encode[cmd]], true
}
