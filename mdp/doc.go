// Package mdp encodes and decodes the domo wire protocol: the Majordomo
// Protocol (ZeroMQ RFC 7, MDP/0.1, and RFC 18, MDP/0.2), the Majordomo
// Management Interface (RFC 8), and the domo envelope that rides inside an
// MDP body. docs/protocol.md specifies all of it.
//
// The package has no sockets and no goroutines: it turns frames ([][]byte,
// one slice per ZeroMQ message part) into typed values and back. Decoding
// does not copy: a decoded Message's slices alias the frames it came from.
// Everything in it is safe for concurrent use.
//
//	frames, _ := sock.Recv()               // [identity, ...] on a ROUTER
//	msg, err := mdp.Parse(frames[1:])
//	if err != nil { /* count it, drop it */ }
//	switch msg.Command {
//	case mdp.Request: ...
//	}
package mdp
