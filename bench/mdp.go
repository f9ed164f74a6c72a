package main

import (
	"fmt"
	"os"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Plain MDP/0.1 peers, as a third-party client or worker in any language
// would be: the "mdp" system drives them through the domo broker. A plain
// worker has credit 1 (one request at a time), which caps throughput as it
// caps the zguide C broker's.

const mdpService = "echo"

// serveMDPWorkers runs k plain MDP/0.1 echo workers, each on its own DEALER.
func serveMDPWorkers(ep string, k int) error {
	for range k {
		s, err := zmq.NewSocket(zmq.DEALER)
		if err != nil {
			return err
		}
		_ = s.SetLinger(0)
		_ = s.SetRcvtimeo(500 * time.Millisecond)
		if err := s.Connect(ep); err != nil {
			return err
		}
		if _, err := s.SendMessage("", "MDPW01", []byte{0x01}, mdpService); err != nil {
			return err
		}
		go mdpWorker(s)
	}
	time.Sleep(300 * time.Millisecond) // READY is in; requests sent before would wait anyway (RFC 7)
	fmt.Println("ready")
	untilSignal()
	os.Exit(0) // the workers block in libzmq; do not wait for them
	return nil
}

// mdpWorker answers each REQUEST ["", MDPW01, 0x02, address, "", body...]
// with REPLY ["", MDPW01, 0x03, address, "", body...] and heartbeats as
// RFC 7 asks (once an interval, 2.5 s, when it has sent nothing else).
func mdpWorker(s *zmq.Socket) {
	const interval = 2500 * time.Millisecond
	lastSend := time.Now()
	for {
		msg, err := s.RecvMessageBytes(0)
		if err == nil && len(msg) >= 5 && string(msg[1]) == "MDPW01" && len(msg[2]) == 1 {
			switch msg[2][0] {
			case 0x02: // REQUEST
				reply := append([][]byte{{}, []byte("MDPW01"), {0x03}, msg[3], {}}, msg[5:]...)
				parts := make([]any, len(reply))
				for i, p := range reply {
					parts[i] = p
				}
				if _, err := s.SendMessage(parts...); err == nil {
					lastSend = time.Now()
				}
			case 0x05: // DISCONNECT
				return
			}
		}
		if time.Since(lastSend) >= interval {
			if _, err := s.SendMessage("", "MDPW01", []byte{0x04}); err == nil {
				lastSend = time.Now()
			}
		}
	}
}
