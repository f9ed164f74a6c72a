package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	zmq "github.com/pebbe/zmq4"

	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/worker"
)

// The server roles run in their own processes, started by the harness with
// -role. Each prints "ready" on stdout once it serves, then runs until SIGINT.

const (
	domoService = "bench"
	domoMethod  = "bench.echo"
	natsSubject = "bench.echo"
	natsQueue   = "echo"
)

func untilSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
}

// serveDomo runs k echo workers (the worker SDK) in this process and says
// ready once the broker lists all k.
func serveDomo(ep string, k, concurrency int) error {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range k {
		w := worker.New(domoService, worker.WithBroker(ep), worker.WithConcurrency(concurrency))
		w.HandleFunc("echo", func(_ context.Context, r *worker.Request) ([]byte, error) { return r.Payload, nil })
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()
	c, err := client.New(client.WithBroker(ep), client.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ss, err := c.Services(ctx)
		n := 0
		for _, s := range ss {
			if s.Name == domoService {
				n = s.Workers
			}
		}
		if err == nil && n >= k {
			break
		}
		if time.Now().After(deadline) {
			c.Close()
			return fmt.Errorf("domo: %d of %d workers listed after 20s (last error %v)", n, k, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Close()
	fmt.Println("ready")
	untilSignal()
	return nil
}

// serveNATS runs k responders, each on its own connection, in one queue group.
func serveNATS(url string, k int) error {
	conns := make([]*nats.Conn, 0, k)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for range k {
		nc, err := nats.Connect(url, nats.MaxReconnects(0))
		if err != nil {
			return err
		}
		conns = append(conns, nc)
		sub, err := nc.QueueSubscribe(natsSubject, natsQueue, func(m *nats.Msg) { _ = m.Respond(m.Data) })
		if err != nil {
			return err
		}
		_ = sub.SetPendingLimits(-1, -1)
		if err := nc.Flush(); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	untilSignal()
	return nil
}

// The TCP floor's frames: a 4-byte big-endian length of what follows, an
// 8-byte tag, then the body. The relay rewrites the tag's top 16 bits to the
// client's index and restores them on the way back.

func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(h[:]))
	if n < 8 || n > 16<<20 {
		return nil, fmt.Errorf("bad frame length %d", n)
	}
	if cap(buf) < 4+n {
		buf = make([]byte, 4+n)
	}
	buf = buf[:4+n]
	copy(buf, h[:])
	_, err := io.ReadFull(r, buf[4:])
	return buf, err
}

// outConn is a connection with a writer goroutine that flushes when its queue
// runs dry, so writes batch under load.
type outConn struct {
	c  net.Conn
	ch chan []byte
}

func newOutConn(c net.Conn) *outConn {
	o := &outConn{c: c, ch: make(chan []byte, 4096)}
	go func() {
		w := bufio.NewWriterSize(c, 64<<10)
		for f := range o.ch {
			if _, err := w.Write(f); err != nil {
				break
			}
			if len(o.ch) == 0 {
				if err := w.Flush(); err != nil {
					break
				}
			}
		}
		c.Close()
		for range o.ch {
		}
	}()
	return o
}

// serveRelay is the TCP floor's broker: clients on one port, k echo servers on
// another; requests go round-robin to the echo servers, replies back by tag.
func serveRelay(k int) error {
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	wl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listen %s %s\n", cl.Addr(), wl.Addr())
	var (
		mu      sync.Mutex
		clients []*outConn
		workers []*outConn
		next    atomic.Uint64
	)
	for range k {
		c, err := wl.Accept()
		if err != nil {
			return err
		}
		o := newOutConn(c)
		workers = append(workers, o)
		go func() { // replies: back to the client the tag names
			r := bufio.NewReaderSize(c, 64<<10)
			for {
				f, err := readFrame(r, nil)
				if err != nil {
					return
				}
				tag := binary.BigEndian.Uint64(f[4:12])
				idx := int(tag >> 48)
				binary.BigEndian.PutUint64(f[4:12], tag&(1<<48-1))
				mu.Lock()
				dst := clients[idx]
				mu.Unlock()
				dst.ch <- f
			}
		}()
	}
	fmt.Println("ready")
	go func() {
		for {
			c, err := cl.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			idx := uint64(len(clients))
			clients = append(clients, newOutConn(c))
			mu.Unlock()
			go func() { // requests: round-robin to the echo servers
				r := bufio.NewReaderSize(c, 64<<10)
				for {
					f, err := readFrame(r, nil)
					if err != nil {
						return
					}
					tag := binary.BigEndian.Uint64(f[4:12])
					binary.BigEndian.PutUint64(f[4:12], idx<<48|tag&(1<<48-1))
					workers[next.Add(1)%uint64(len(workers))].ch <- f
				}
			}()
		}
	}()
	untilSignal()
	return nil
}

// serveTCPEcho connects k echo connections to the relay's worker port.
func serveTCPEcho(addr string, k int) error {
	for range k {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			r := bufio.NewReaderSize(c, 64<<10)
			w := bufio.NewWriterSize(c, 64<<10)
			var buf []byte
			for {
				f, err := readFrame(r, buf)
				if err != nil {
					return
				}
				buf = f
				if _, err := w.Write(f); err != nil {
					return
				}
				if r.Buffered() == 0 {
					if err := w.Flush(); err != nil {
						return
					}
				}
			}
		}()
	}
	fmt.Println("ready")
	untilSignal()
	return nil
}

// serveZMQEcho is the raw libzmq floor: one ROUTER socket that sends every
// message back to its sender, no broker between.
func serveZMQEcho() error {
	s, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetLinger(0)
	_ = s.SetRcvhwm(100000)
	_ = s.SetSndhwm(100000)
	if err := s.Bind("tcp://127.0.0.1:*"); err != nil {
		return err
	}
	ep, err := s.GetLastEndpoint()
	if err != nil {
		return err
	}
	go func() {
		for {
			msg, err := s.RecvMessageBytes(0)
			if err != nil {
				if zmq.AsErrno(err) == zmq.ETERM {
					return
				}
				continue
			}
			_, _ = s.SendMessage(msg)
		}
	}()
	fmt.Printf("ready %s\n", ep)
	untilSignal()
	os.Exit(0) // the echo goroutine blocks in libzmq; do not wait for it
	return nil
}
