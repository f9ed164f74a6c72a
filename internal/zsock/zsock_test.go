package zsock

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestRouterDealerRoundTrip(t *testing.T) {
	router, err := New(Router)
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	if err := router.Apply(Options{RouterMandatory: true}); err != nil {
		t.Fatal(err)
	}
	ep, err := router.Bind("tcp://127.0.0.1:*")
	if err != nil {
		t.Fatal(err)
	}
	dealer, err := New(Dealer)
	if err != nil {
		t.Fatal(err)
	}
	defer dealer.Close()
	if err := dealer.Apply(Options{Identity: "d1"}); err != nil {
		t.Fatal(err)
	}
	if err := dealer.Connect(ep); err != nil {
		t.Fatal(err)
	}
	if err := dealer.Send([][]byte{{}, []byte("hello"), nil}, true); err != nil {
		t.Fatal(err)
	}
	got, err := router.Recv(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || string(got[0]) != "d1" || string(got[2]) != "hello" || len(got[3]) != 0 {
		t.Fatalf("Recv = %q; want [d1 '' hello '']", got)
	}
	if err := router.Send([][]byte{[]byte("nobody"), []byte("x")}, false); !errors.Is(err, ErrUnroutable) {
		t.Fatalf("Send to unknown peer = %v; want ErrUnroutable", err)
	}
	if _, err := dealer.Recv(nil, false); !errors.Is(err, ErrAgain) {
		t.Fatalf("Recv on empty socket = %v; want ErrAgain", err)
	}
}

func TestWakerCoalescesAndNeverLosesWork(t *testing.T) {
	for _, mode := range pollerModes {
		t.Run(mode.name, func(t *testing.T) { testWaker(t, mode.new) })
	}
}

func testWaker(t *testing.T, newPoller func(...*Socket) *Poller) {
	w, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var (
		mu    sync.Mutex
		queue int
	)
	const producers, each = 8, 500
	var wg sync.WaitGroup
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				mu.Lock()
				queue++
				mu.Unlock()
				w.Wake()
			}
		}()
	}
	p := newPoller(w.Socket())
	defer p.Close()
	seen := 0
	deadline := time.Now().Add(10 * time.Second)
	for seen < producers*each {
		if time.Now().After(deadline) {
			t.Fatalf("loop saw %d of %d items: a wake-up was lost", seen, producers*each)
		}
		ready, err := p.Wait(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !ready[0] {
			continue
		}
		w.Drain()
		mu.Lock()
		seen += queue
		queue = 0
		mu.Unlock()
	}
	wg.Wait()
}
