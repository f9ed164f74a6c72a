package journaltest

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/domo-framework/domo/journal"
)

// BenchRecords returns n finished records as the Recorder writes them under
// `domo bench` (8 clients, 2 workers, service "water", method "echo"), with
// new ids from seq on.
func BenchRecords(run, seq int64, n int, t0 time.Time) []journal.Record {
	recs := make([]journal.Record, n)
	for i := range recs {
		s := seq + int64(i)
		recv := t0.Add(time.Duration(s) * 50 * time.Microsecond)
		disp := recv.Add(time.Duration(20+s%50) * time.Microsecond)
		recs[i] = journal.Record{
			ID:     journal.ID{Run: run, Seq: s},
			Broker: "bench",
			// What the client SDK sends: the client's 8 random hex digits,
			// "-", its call counter in base 36.
			RequestID:      fmt.Sprintf("%08x-%s", uint32(s%8+1)*0x9e3779b1, strconv.FormatInt(s/8+1, 36)),
			Service:        "water",
			Method:         "echo",
			Client:         fmt.Sprintf("00%08x", uint32(s%8+1)*0x1234567),
			Worker:         fmt.Sprintf("00%08x", uint32(s%2+1)*0x7654321),
			Status:         journal.StatusCompleted,
			Attempts:       1,
			RequestBytes:   64,
			ReplyBytes:     64,
			Received:       recv,
			Dispatched:     disp,
			LastDispatched: disp,
			Ended:          disp.Add(time.Duration(200+s%1000) * time.Microsecond),
		}
	}
	return recs
}

// BenchmarkWrite writes batches of 1,000 finished records to s, each new, as
// Store.Write does for the Recorder under load: ns/op is per batch, ns/row
// and cpu-ns/row (this process's CPU time, less sensitive than wall time
// to other work on the machine; a database server's is not in it) per
// record.
func BenchmarkWrite(b *testing.B, s journal.Store) {
	ctx := context.Background()
	const batch = 1000
	recs := BenchRecords(time.Now().UnixNano(), 0, b.N*batch, time.Now())
	b.ReportAllocs()
	cpu0 := CPUTime()
	b.ResetTimer()
	for i := range b.N {
		// A deadline, as the Recorder gives each write.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.Write(wctx, recs[i*batch:(i+1)*batch])
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	rows := float64(b.N * batch)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
	b.ReportMetric(float64(CPUTime()-cpu0)/rows, "cpu-ns/row")
}

// CPUTime is the process's user and system CPU time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
