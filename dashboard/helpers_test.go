package dashboard_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/sqlite"
	"github.com/domo-framework/domo/mdp"
)

// openStore opens a journal in a SQLite file in the test's temporary
// directory, closed when the test ends.
func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fakeBroker answers Stats with a fixed snapshot.
type fakeBroker struct {
	stats broker.Stats
	err   error
}

func (f *fakeBroker) Stats(context.Context) (broker.Stats, error) { return f.stats, f.err }

func fakeStats() broker.Stats {
	return broker.Stats{
		Started:   time.Now().Add(-time.Hour),
		Endpoints: []string{"tcp://127.0.0.1:5555"},
		Services: []mdp.ServiceInfo{
			{Name: "water", Workers: 2, Ready: 2, Capacity: 32, InFlight: 3, Queued: 0, Methods: 3},
			{Name: "tea", Workers: 1, Ready: 1, Capacity: 16, InFlight: 1, Queued: 2, Methods: 3},
		},
		Workers: []mdp.WorkerInfo{
			{ID: "00aa", Service: "water", Protocol: "MDPW01+domo", Credit: 14, InFlight: 2},
			{ID: "00bb", Service: "water", Protocol: "MDPW01+domo", Credit: 15, InFlight: 1},
			{ID: "00cc", Service: "tea", Protocol: "MDPW01", Credit: 15, InFlight: 1},
		},
		InFlight: 4,
		Peers:    []broker.PeerInfo{{Endpoint: "tcp://10.0.0.2:5555", Alive: true, Services: []string{"water"}}},
		Counters: broker.Counters{Requests: 1000, Replies: 990},
	}
}

// synthetic returns n records received over span ending at end, at even
// intervals, spread over a few methods, about 3% failed and a few
// dropped; latencies vary by method. Run is the ID's Run.
func synthetic(n int, end time.Time, span time.Duration, run int64, seed uint64) []journal.Record {
	type m struct {
		service, method string
		mean            time.Duration
		fail            float64
		code, msg       string
	}
	methods := []m{
		{"tea", "brew", 2 * time.Millisecond, 0.01, "invalid", `kind "oolong" is not on the menu`},
		{"tea", "menu", 500 * time.Microsecond, 0, "", ""},
		{"water", "pour", time.Millisecond, 0.005, "invalid", "ml must be 1 to 1000, not 0"},
		{"water", "boil", 1500 * time.Microsecond, 0.12, "invalid", "water boils at 100 degrees, not 120"},
		{"coffee", "order", 20 * time.Millisecond, 0.02, "deadline_exceeded", "gave up on a large coffee: context deadline exceeded"},
	}
	r := rand.New(rand.NewPCG(seed, 7))
	recs := make([]journal.Record, n)
	start := end.Add(-span)
	for i := range recs {
		mm := methods[r.IntN(len(methods))]
		recv := start.Add(time.Duration(float64(span) * float64(i) / float64(n)))
		// A slow wave over the span, so that the charts have a shape.
		wave := 1 + 0.6*float64((i*7/n)%3)
		queue := time.Duration(r.ExpFloat64() * float64(80*time.Microsecond) * wave)
		handle := time.Duration(r.ExpFloat64() * float64(mm.mean) * wave)
		rec := journal.Record{
			ID: journal.ID{Run: run, Seq: int64(i + 1)}, Broker: "b1",
			RequestID: fmt.Sprintf("%08x-%d", uint32(seed), i+1),
			Service:   mm.service, Method: mm.method, Client: "c0ffee", Worker: fmt.Sprintf("w%02d", r.IntN(4)),
			Status: journal.StatusCompleted, Attempts: 1, RequestBytes: 20 + r.IntN(40), ReplyBytes: 30 + r.IntN(60),
			Received: recv, Dispatched: recv.Add(queue), LastDispatched: recv.Add(queue), Ended: recv.Add(queue + handle),
		}
		switch x := r.Float64(); {
		case x < mm.fail:
			rec.Status, rec.Code, rec.Message = journal.StatusFailed, mm.code, mm.msg
		case x > 0.998:
			rec.Status, rec.Code, rec.Message = journal.StatusDropped, "deadline_exceeded", "deadline passed in the queue"
			rec.Dispatched, rec.LastDispatched, rec.Attempts, rec.Worker, rec.ReplyBytes = time.Time{}, time.Time{}, 0, "", 0
		}
		recs[i] = rec
	}
	return recs
}

// writeAll writes recs in batches.
func writeAll(t testing.TB, s journal.Store, recs []journal.Record, batch int) {
	t.Helper()
	for len(recs) > 0 {
		n := min(batch, len(recs))
		if err := s.Write(context.Background(), recs[:n]); err != nil {
			t.Fatal(err)
		}
		recs = recs[n:]
	}
}
