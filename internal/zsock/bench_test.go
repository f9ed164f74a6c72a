package zsock

import (
	"testing"
	"time"
)

// BenchmarkEcho measures a raw DEALER -> ROUTER echo round trip through
// this package, the floor under every broker figure.
func BenchmarkEcho(b *testing.B) {
	router, _ := New(Router)
	defer router.Close()
	ep, err := router.Bind("tcp://127.0.0.1:*")
	if err != nil {
		b.Fatal(err)
	}
	dealer, _ := New(Dealer)
	defer dealer.Close()
	dealer.Connect(ep)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := NewPoller(router)
		var buf [][]byte
		for {
			select {
			case <-stop:
				return
			default:
			}
			r, _ := p.Wait(10 * time.Millisecond)
			if !r[0] {
				continue
			}
			for {
				var err error
				if buf, err = router.Recv(buf, false); err != nil {
					break
				}
				router.Send(buf, true)
			}
		}
	}()
	msg := [][]byte{make([]byte, 32)}
	b.ReportAllocs()
	b.ResetTimer()
	var buf [][]byte
	for range b.N {
		dealer.Send(msg, true)
		buf, _ = dealer.Recv(buf, true)
	}
	b.StopTimer()
	close(stop)
	<-done
}
