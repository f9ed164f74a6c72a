package zsock

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkEcho measures a DEALER -> ROUTER echo round trip over TCP
// loopback through this package, the floor under every broker figure:
// with libzmq's sockets, and with the native ones (package zmtp). Each side
// runs a socket loop as the broker and the SDKs do (Poller, drain, send),
// and 1 or 32 messages are in flight, of 32 bytes or of 128 KiB (what a
// batch of 32 replies of 4 KiB is).
func BenchmarkEcho(b *testing.B) {
	for _, native := range []bool{false, true} {
		for _, size := range []int{32, 128 << 10} {
			for _, inFlight := range []int{1, 32} {
				name := "libzmq"
				if native {
					name = "native"
				}
				b.Run(fmt.Sprintf("%s/%dB/inflight=%d", name, size, inFlight), func(b *testing.B) {
					benchEcho(b, native, size, inFlight)
				})
			}
		}
	}
}

func benchEcho(b *testing.B, native bool, size, inFlight int) {
	var router *Socket
	var err error
	if native {
		router, err = NewNativeRouter(Options{})
	} else {
		router, err = New(Router)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer router.Close()
	ep, err := router.Bind("tcp://127.0.0.1:*")
	if err != nil {
		b.Fatal(err)
	}
	dealer, err := NewDealer(Options{}, native)
	if err != nil {
		b.Fatal(err)
	}
	defer dealer.Close()
	if err := dealer.Connect(ep); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the router's loop: echo everything
		defer close(done)
		p := NewPoller(router).Eager()
		defer p.Close()
		var buf [][]byte
		for {
			select {
			case <-stop:
				return
			default:
			}
			if r, _ := p.Wait(10 * time.Millisecond); !r[0] {
				continue
			}
			for {
				var err error
				if buf, err = router.Recv(buf, false); err != nil {
					break
				}
				router.Send(buf, false)
			}
		}
	}()
	p := NewPoller(dealer).Eager()
	defer p.Close()
	msg := [][]byte{make([]byte, size)}
	var buf [][]byte
	for dealer.Send(msg, false) != nil { // until connected: a loop drains what it polls
		p.Wait(time.Millisecond)
		buf, _ = dealer.Recv(buf, false)
	}
	sent, got := 1, 0
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for got < b.N {
		for sent < b.N && sent-got < inFlight && dealer.Send(msg, false) == nil {
			sent++
		}
		p.Wait(time.Second)
		for {
			if buf, err = dealer.Recv(buf, false); err != nil {
				break
			}
			got++
		}
	}
	b.StopTimer()
	close(stop)
	<-done
}
