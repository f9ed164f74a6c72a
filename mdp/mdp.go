package mdp

import (
	"errors"
	"fmt"
)

// The protocol headers: the first frame of every MDP command after the
// (MDP/0.1 only) empty delimiter.
const (
	ClientV1 = "MDPC01" // MDP/0.1 client
	WorkerV1 = "MDPW01" // MDP/0.1 worker
	ClientV2 = "MDPC02" // MDP/0.2 client
	WorkerV2 = "MDPW02" // MDP/0.2 worker
)

// Role says which side of the broker a message belongs to.
type Role uint8

// The two sub-protocols of MDP.
const (
	Client Role = iota + 1
	Worker
)

func (r Role) String() string {
	switch r {
	case Client:
		return "client"
	case Worker:
		return "worker"
	}
	return fmt.Sprintf("Role(%d)", r)
}

// Version is the MDP version of a message: 1 for MDP/0.1, 2 for MDP/0.2.
type Version uint8

// Command is an MDP command, numbered independently of the wire so that the
// same value names the same command in both protocol versions.
type Command uint8

// The MDP commands. Reply exists only in MDP/0.1; Partial and Final only in
// MDP/0.2. A client request in MDP/0.1 has no command frame; it decodes as
// Request.
const (
	Ready Command = iota + 1
	Request
	Reply
	Partial
	Final
	Heartbeat
	Disconnect
)

var commandNames = [...]string{"", "READY", "REQUEST", "REPLY", "PARTIAL", "FINAL", "HEARTBEAT", "DISCONNECT"}

func (c Command) String() string {
	if int(c) < len(commandNames) && c != 0 {
		return commandNames[c]
	}
	return fmt.Sprintf("Command(%d)", c)
}

// codeTable maps wire command bytes to Commands and back for one protocol
// header. Index 0 of each array means "none".
type codeTable struct {
	decode [8]Command // wire byte -> command
	encode [8]byte    // command -> wire byte
}

func newCodeTable(cmds ...Command) *codeTable {
	t := new(codeTable)
	for i, c := range cmds {
		t.decode[i+1] = c
		t.encode[c] = byte(i + 1)
	}
	return t
}

// The command numbering of each protocol header (RFC 7 and RFC 18).
var (
	workerV1Codes = newCodeTable(Ready, Request, Reply, Heartbeat, Disconnect)
	workerV2Codes = newCodeTable(Ready, Request, Partial, Final, Heartbeat, Disconnect)
	clientV2Codes = newCodeTable(Request, Partial, Final)
)

// Errors returned by Parse and Limits.Check. Each is wrapped with detail;
// compare with errors.Is.
var (
	ErrMalformed     = errors.New("mdp: malformed message")
	ErrProtocol      = errors.New("mdp: unknown protocol header")
	ErrCommand       = errors.New("mdp: unknown command")
	ErrTooManyFrames = errors.New("mdp: too many frames")
	ErrFrameTooLarge = errors.New("mdp: frame too large")
	ErrTooLarge      = errors.New("mdp: message too large")
)
