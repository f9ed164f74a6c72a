// Package journaltest is the conformance suite every journal.Store passes:
// journal/sqlite and journal/postgres run the same tests.
package journaltest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/internal/sqlstore"
)

// Open returns a new, empty store for one test; the suite closes it.
type Open func(t *testing.T) journal.Store

// Run runs the suite, each test against a store of its own.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, journal.Store)
	}{
		{"WriteGet", testWriteGet},
		{"Upsert", testUpsert},
		{"Duplicates", testDuplicates},
		{"OddText", testOddText},
		{"ListFilters", testListFilters},
		{"Paging", testPaging},
		{"Summary", testSummary},
		{"SummaryRollups", testSummaryRollups},
		{"TrimAge", testTrimAge},
		{"TrimMaxRows", testTrimMaxRows},
		{"Recorder", testRecorder},
		{"RecorderRetention", testRecorderRetention},
		{"Large", testLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close = %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rec returns a completed record received at base+i ms, with a total time
// of (i%100+1) ms.
func rec(run, seq int64, i int) journal.Record {
	recv := base.Add(time.Duration(i) * time.Millisecond)
	d := recv.Add(100 * time.Microsecond)
	return journal.Record{
		ID: journal.ID{Run: run, Seq: seq}, Broker: "b1", RequestID: fmt.Sprintf("req-%d", seq),
		Service: "tea", Method: "brew", Client: "00aa", Worker: "00bb",
		Status: journal.StatusCompleted, Attempts: 1, RequestBytes: 10, ReplyBytes: 20,
		Received: recv, Dispatched: d, LastDispatched: d,
		Ended: recv.Add(time.Duration(i%100+1) * time.Millisecond),
	}
}

func write(t *testing.T, s journal.Store, recs ...journal.Record) {
	t.Helper()
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatalf("Write(%d records) = %v", len(recs), err)
	}
}

func count(t *testing.T, s journal.Store) int {
	t.Helper()
	sum, err := s.Summary(context.Background(), journal.Window{})
	if err != nil {
		t.Fatalf("Summary = %v", err)
	}
	return sum.Total
}

func sameRecord(t *testing.T, got, want journal.Record) {
	t.Helper()
	eq := func(a, b time.Time) bool { return a.Equal(b) }
	if got.ID != want.ID || got.Broker != want.Broker || got.RequestID != want.RequestID ||
		got.Service != want.Service || got.Method != want.Method || got.Client != want.Client ||
		got.Worker != want.Worker || got.Status != want.Status || got.Code != want.Code ||
		got.Message != want.Message || got.Attempts != want.Attempts ||
		got.RequestBytes != want.RequestBytes || got.ReplyBytes != want.ReplyBytes ||
		!eq(got.Received, want.Received) || !eq(got.Dispatched, want.Dispatched) ||
		!eq(got.LastDispatched, want.LastDispatched) || !eq(got.Ended, want.Ended) ||
		string(got.RequestBody) != string(want.RequestBody) || string(got.ReplyBody) != string(want.ReplyBody) {
		t.Errorf("record = %+v\nwant %+v", got, want)
	}
}

func testWriteGet(t *testing.T, s journal.Store) {
	ctx := context.Background()
	a := rec(1, 1, 0)
	b := rec(1, 2, 1)
	b.Status, b.Code, b.Message, b.Attempts = journal.StatusFailed, "not_found", "no such pot", 2
	b.LastDispatched = b.Dispatched.Add(time.Millisecond)
	b.RequestBody, b.ReplyBody = []byte("in"), []byte{0, 1, 2}
	c := rec(2, 1, 2) // same seq, another run: another request
	c.Status, c.Ended = journal.StatusReceived, time.Time{}
	c.Dispatched, c.LastDispatched, c.Worker, c.Attempts = time.Time{}, time.Time{}, "", 0
	// Values that quoting could spoil: quotes, backslashes, commas, braces,
	// the word NULL, newlines, multibyte text, empty and binary bodies.
	d := rec(2, 2, 3)
	d.Status, d.Code, d.Message = journal.StatusFailed, "internal", `a "quoted", {braced} \back\slashed`+"\nline two"
	d.RequestID, d.Client, d.Worker = "NULL", `\x00`, "thé ☕"
	d.RequestBody, d.ReplyBody = []byte{}, []byte{0x00, 0xff, '"', '\\', ',', '{', '}', 0x0a}
	write(t, s, a, b, c, d)
	for _, want := range []journal.Record{a, b, c, d} {
		got, err := s.Get(ctx, want.ID)
		if err != nil {
			t.Fatalf("Get(%v) = %v", want.ID, err)
		}
		sameRecord(t, got, want)
	}
	if _, err := s.Get(ctx, journal.ID{Run: 9, Seq: 9}); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("Get(unknown) = %v; want ErrNotFound", err)
	}
	got, _ := s.Get(ctx, b.ID)
	if got.QueueWait() != 100*time.Microsecond || got.Total() != 2*time.Millisecond || got.Handling() != time.Millisecond-100*time.Microsecond+time.Millisecond-time.Millisecond {
		t.Logf("timings: queue %v handling %v total %v", got.QueueWait(), got.Handling(), got.Total())
	}
	if tl := got.Timeline(); len(tl) != 4 || tl[3].What != "failed" || tl[3].Detail != "not_found: no such pot" {
		t.Errorf("Timeline = %+v", tl)
	}
}

// testDuplicates: a batch that holds a record twice (its end seen twice)
// writes it once, as its last copy says.
func testDuplicates(t *testing.T, s journal.Store) {
	first := rec(1, 1, 0)
	first.Status, first.Code = journal.StatusFailed, "internal"
	last := rec(1, 1, 0)
	write(t, s, first, rec(1, 2, 1), last)
	got, err := s.Get(context.Background(), last.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, got, last)
	if sum, err := s.Summary(context.Background(), journal.Window{}); err != nil || sum.Total != 2 || sum.Completed != 2 {
		t.Errorf("Summary = %+v, %v; want 2 completed", sum, err)
	}
}

// testOddText: names and messages come from callers, so they may hold any
// bytes at any length; a record with a NUL, bytes that are not UTF-8 or a
// name longer than an index entry may be is still written (PostgreSQL
// takes none of these), as given or mended, and the batch around it too.
func testOddText(t *testing.T, s journal.Store) {
	odd := rec(1, 1, 0)
	odd.Method, odd.RequestID = "br\x00ew", "id-\xff\xfe"
	odd.Status, odd.Code, odd.Message = journal.StatusFailed, "internal", "half a rune: \xc3"
	long := rec(1, 4, 3) // names far longer than an index entry may be, and not compressible
	long.Service, long.Method, long.RequestID = randomText(100_000, "sv"), randomText(50_000, "éè"), randomText(100_000, "ab")
	write(t, s, rec(1, 2, 1), odd, rec(1, 3, 2), long)
	ctx := context.Background()
	got, err := s.Get(ctx, odd.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ name, got, want string }{
		{"method", got.Method, odd.Method}, {"request id", got.RequestID, odd.RequestID}, {"message", got.Message, odd.Message},
	} {
		if f.got != f.want && (!utf8.ValidString(f.got) || strings.ContainsRune(f.got, 0) || f.got == "") {
			t.Errorf("%s = %q; want %q or it as valid UTF-8 without NUL", f.name, f.got, f.want)
		}
	}
	got, err = s.Get(ctx, long.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{got.Service, got.Method, got.RequestID} {
		if !utf8.ValidString(v) || len(v) == 0 || len(v) >= 100_000 {
			t.Errorf("a long name came back as %d bytes; want it cut, valid UTF-8", len(v))
		}
	}
	if !strings.HasPrefix(long.Method, strings.TrimSuffix(got.Method, "…")) {
		t.Errorf("long method came back as %.40q...; want a prefix of it", got.Method)
	}
	if sum, err := s.Summary(ctx, journal.Window{}); err != nil || sum.Total != 4 {
		t.Errorf("Summary = %+v, %v; want the 4 records", sum, err)
	}
}

// randomText returns n runes drawn from letters by a fixed pseudo-random
// sequence.
func randomText(n int, letters string) string {
	rs := []rune(letters)
	rng := rand.New(rand.NewPCG(uint64(n), uint64(len(rs))))
	var b strings.Builder
	for range n {
		b.WriteRune(rs[rng.IntN(len(rs))])
	}
	return b.String()
}

func testUpsert(t *testing.T, s journal.Store) {
	ctx := context.Background()
	r := rec(1, 1, 0)
	inProgress := r
	inProgress.Status, inProgress.Ended = journal.StatusProcessing, time.Time{}
	write(t, s, inProgress)
	page, err := s.List(ctx, journal.Filter{InProgress: true})
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("List(InProgress) = %d records, %v; want 1", len(page.Records), err)
	}
	write(t, s, r)
	page, _ = s.List(ctx, journal.Filter{InProgress: true})
	if len(page.Records) != 0 {
		t.Errorf("List(InProgress) after completion = %d records; want 0", len(page.Records))
	}
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, got, r)
	if n := count(t, s); n != 1 {
		t.Errorf("rows = %d; want 1", n)
	}
}

func ids(p journal.Page) []int64 {
	var out []int64
	for _, r := range p.Records {
		out = append(out, r.ID.Seq)
	}
	return out
}

func testListFilters(t *testing.T, s journal.Store) {
	ctx := context.Background()
	var recs []journal.Record
	for i := 1; i <= 12; i++ {
		r := rec(1, int64(i), i)
		switch i % 4 {
		case 1:
			r.Service, r.Method = "coffee", "pour"
		case 2:
			r.Method = "steep"
		case 3:
			r.Status, r.Code = journal.StatusFailed, "internal"
		case 0:
			r.Status, r.Ended = journal.StatusProcessing, time.Time{}
		}
		recs = append(recs, r)
	}
	recs[0].Status, recs[0].Ended = journal.StatusReceived, time.Time{}
	recs[4].Status, recs[4].Code = journal.StatusDropped, "deadline_exceeded"
	recs[5].RequestID = "shared"
	recs[6].RequestID = "shared"
	write(t, s, recs...)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Millisecond) }
	cases := []struct {
		f    journal.Filter
		want []int64
	}{
		{journal.Filter{}, []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{journal.Filter{Service: "coffee"}, []int64{9, 5, 1}},
		{journal.Filter{Service: "tea", Method: "steep"}, []int64{10, 6, 2}},
		{journal.Filter{Status: journal.StatusFailed}, []int64{11, 7, 3}},
		{journal.Filter{Status: journal.StatusDropped}, []int64{5}},
		{journal.Filter{Status: journal.StatusCompleted}, []int64{10, 9, 6, 2}},
		{journal.Filter{InProgress: true}, []int64{12, 8, 4, 1}},
		{journal.Filter{RequestID: "shared"}, []int64{7, 6}},
		{journal.Filter{From: at(3), To: at(6)}, []int64{5, 4, 3}},
		{journal.Filter{Service: "tea", From: at(7), Status: journal.StatusFailed}, []int64{11, 7}},
		{journal.Filter{Limit: 3}, []int64{12, 11, 10}},
		// A service of two methods (brew, steep) alone: read method by method, merged.
		{journal.Filter{Service: "tea"}, []int64{12, 11, 10, 8, 7, 6, 4, 3, 2}},
		{journal.Filter{Service: "tea", Status: journal.StatusCompleted}, []int64{10, 6, 2}},
		{journal.Filter{Service: "tea", To: at(8)}, []int64{7, 6, 4, 3, 2}},
		{journal.Filter{Service: "nosuch"}, nil},
	}
	for _, c := range cases {
		page, err := s.List(ctx, c.f)
		if err != nil {
			t.Fatalf("List(%+v) = %v", c.f, err)
		}
		if got := ids(page); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("List(%+v) = %v; want %v", c.f, got, c.want)
		}
	}
	if _, err := s.List(ctx, journal.Filter{After: "junk"}); err == nil {
		t.Errorf("List(After: junk) = nil error")
	}
	// Paging through a service of two methods, 4 at a time.
	var got []int64
	f := journal.Filter{Service: "tea", Limit: 4}
	for pages := 0; pages < 10; pages++ {
		page, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(page)...)
		if page.Next == "" {
			break
		}
		f.After = page.Next
	}
	if want := []int64{12, 11, 10, 8, 7, 6, 4, 3, 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("paging service tea = %v; want %v", got, want)
	}
}

func testPaging(t *testing.T, s journal.Store) {
	ctx := context.Background()
	const n = 250
	var recs []journal.Record
	for i := 0; i < n; i++ {
		r := rec(int64(1+i%3), int64(i), i/2) // pairs share a receipt time: the id breaks ties
		recs = append(recs, r)
	}
	write(t, s, recs...)
	seen := map[journal.ID]bool{}
	var last journal.Record
	f := journal.Filter{Limit: 40}
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		page, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			if seen[r.ID] {
				t.Fatalf("record %v seen twice", r.ID)
			}
			if len(seen) > 0 && (r.Received.After(last.Received) ||
				r.Received.Equal(last.Received) && (r.ID.Run > last.ID.Run || r.ID.Run == last.ID.Run && r.ID.Seq > last.ID.Seq)) {
				t.Fatalf("record %v after %v: not newest first", r.ID, last.ID)
			}
			seen[r.ID], last = true, r
		}
		if pages == 1 {
			// Newer records arriving while someone pages do not shift the pages.
			write(t, s, rec(7, 1, n), rec(7, 2, n+1))
		}
		if page.Next == "" {
			break
		}
		f.After = page.Next
	}
	if len(seen) != n {
		t.Errorf("paged through %d records; want %d", len(seen), n)
	}
}

func testSummary(t *testing.T, s journal.Store) {
	ctx := context.Background()
	var recs []journal.Record
	for i := 0; i < 100; i++ {
		recs = append(recs, rec(1, int64(i), i)) // totals 1..100 ms
	}
	for i := 100; i < 110; i++ {
		r := rec(1, int64(i), i)
		r.Status, r.Ended = journal.StatusProcessing, time.Time{}
		recs = append(recs, r)
	}
	r := rec(1, 200, 200)
	r.Service, r.Status, r.Code = "coffee", journal.StatusDropped, "deadline_exceeded"
	recs = append(recs, r)
	recs[10].Status = journal.StatusFailed
	write(t, s, recs...)
	sum, err := s.Summary(ctx, journal.Window{})
	if err != nil {
		t.Fatal(err)
	}
	want := journal.Summary{Total: 111, Processing: 10, Completed: 99, Failed: 1, Dropped: 1,
		P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if sum != want {
		t.Errorf("Summary = %+v\nwant %+v", sum, want)
	}
	sum, err = s.Summary(ctx, journal.Window{Service: "tea", Method: "brew",
		From: base.Add(90 * time.Millisecond), To: base.Add(150 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	want = journal.Summary{Total: 20, Processing: 10, Completed: 10,
		P50: 95 * time.Millisecond, P90: 99 * time.Millisecond, P99: 100 * time.Millisecond, Max: 100 * time.Millisecond}
	if sum != want {
		t.Errorf("Summary(window) = %+v\nwant %+v", sum, want)
	}
	sum, err = s.Summary(ctx, journal.Window{Service: "nobody"})
	if err != nil || sum != (journal.Summary{}) {
		t.Errorf("Summary(empty) = %+v, %v", sum, err)
	}
}

// exactSummary computes what Summary must give for w over recs, exactly.
func exactSummary(recs []journal.Record, w journal.Window) journal.Summary {
	var sum journal.Summary
	var totals []time.Duration
	for _, r := range recs {
		if w.Service != "" && r.Service != w.Service || w.Method != "" && r.Method != w.Method ||
			!w.From.IsZero() && r.Received.Before(w.From) || !w.To.IsZero() && !r.Received.Before(w.To) {
			continue
		}
		sum.Total++
		switch r.Status {
		case journal.StatusReceived:
			sum.Received++
		case journal.StatusProcessing:
			sum.Processing++
		case journal.StatusCompleted:
			sum.Completed++
		case journal.StatusFailed:
			sum.Failed++
		case journal.StatusDropped:
			sum.Dropped++
		}
		if r.Status == journal.StatusCompleted || r.Status == journal.StatusFailed {
			totals = append(totals, r.Total().Truncate(time.Microsecond))
		}
	}
	if len(totals) == 0 {
		return sum
	}
	slices.Sort(totals)
	at := func(p float64) time.Duration { return totals[max(1, int(math.Ceil(p*float64(len(totals)))))-1] }
	sum.P50, sum.P90, sum.P99, sum.Max = at(0.5), at(0.9), at(0.99), totals[len(totals)-1]
	return sum
}

// sameSummary checks a summary answered from rollups: counts and Max
// exact, percentiles within one histogram bucket of the exact ones.
func sameSummary(t *testing.T, what string, got, want journal.Summary) {
	t.Helper()
	near := func(a, b time.Duration) bool {
		ka, kb := sqlstore.BucketOf(a.Microseconds()), sqlstore.BucketOf(b.Microseconds())
		return ka-kb <= 1 && kb-ka <= 1
	}
	counts := func(s journal.Summary) journal.Summary {
		s.P50, s.P90, s.P99 = 0, 0, 0
		return s
	}
	if counts(got) != counts(want) || !near(got.P50, want.P50) || !near(got.P90, want.P90) || !near(got.P99, want.P99) {
		t.Errorf("%s: Summary = %+v\nwant %+v (percentiles within one bucket)", what, got, want)
	}
}

// testSummaryRollups checks summaries of long windows, which come from the
// per-minute rollups, against the rows: each final record counted once
// however often it is written, and retention trimming the rollups too.
func testSummaryRollups(t *testing.T, s journal.Store) {
	ctx := context.Background()
	start := base.Add(17*time.Second + 300*time.Millisecond) // not on a minute
	const n = 6000                                           // one every 100 ms: 10 minutes
	var recs []journal.Record
	for i := range n {
		r := rec(1+int64(i%2), int64(i), 0)
		r.Received = start.Add(time.Duration(i) * 100 * time.Millisecond)
		r.Dispatched, r.LastDispatched = r.Received.Add(50*time.Microsecond), r.Received.Add(50*time.Microsecond)
		// Totals from 20 µs to about 20 s, spread over the buckets.
		r.Ended = r.Received.Add(time.Duration(20*math.Pow(1.0023, float64(i*7919%n))) * time.Microsecond)
		switch {
		case i%3 == 0:
			r.Service = "coffee"
		case i%5 == 0:
			r.Method = "steep"
		}
		switch {
		case i%11 == 0:
			r.Status, r.Code = journal.StatusFailed, "internal"
		case i%17 == 0:
			r.Status, r.Code = journal.StatusDropped, "deadline_exceeded"
		}
		recs = append(recs, r)
	}
	inProgress := func(r journal.Record, st journal.Status) journal.Record {
		r.Status, r.Ended, r.Code = st, time.Time{}, ""
		if st == journal.StatusReceived {
			r.Dispatched, r.LastDispatched = time.Time{}, time.Time{}
		}
		return r
	}
	// First every record in progress, in batches; then final, in other
	// batches, some twice; a few stay in progress.
	var first []journal.Record
	for i, r := range recs {
		first = append(first, inProgress(r, journal.Status(1+i%2)))
	}
	for b := 0; b < n; b += 700 {
		write(t, s, first[b:min(b+700, n)]...)
	}
	for i := range recs {
		if i%23 == 0 {
			recs[i] = first[i]
		}
	}
	for b := 0; b < n; b += 900 {
		write(t, s, recs[b:min(b+900, n)]...)
	}
	write(t, s, recs[1000:3000]...) // again: no double counting
	write(t, s, recs[2500:2600]...)

	end := start.Add(n * 100 * time.Millisecond)
	windows := []journal.Window{
		{},
		{From: start.Add(-time.Hour)},
		{From: start.Add(95 * time.Second), To: end.Add(-50 * time.Second)},
		{From: base.Add(2 * time.Minute), To: base.Add(6 * time.Minute)},     // whole minutes
		{From: base.Add(3 * time.Minute), To: base.Add(4 * time.Minute)},     // one minute: rollups alone
		{From: start.Add(10 * time.Second), To: start.Add(70 * time.Second)}, // no whole minute: rows
		{From: start.Add(time.Minute), To: start.Add(4 * time.Minute), Service: "tea"},
		{From: start, To: end, Service: "tea", Method: "steep"},
		{From: start, To: end, Service: "nobody"},
	}
	check := func(when string, recs []journal.Record) {
		t.Helper()
		for _, w := range windows {
			got, err := s.Summary(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			sameSummary(t, fmt.Sprintf("%s, window %v to %v %s.%s", when, w.From, w.To, w.Service, w.Method), got, exactSummary(recs, w))
		}
	}
	check("written", recs)

	// Retention by age, in the middle of a minute.
	cut := start.Add(150*time.Second + 50*time.Millisecond)
	if _, err := s.Trim(ctx, cut, 0); err != nil {
		t.Fatal(err)
	}
	recs = slices.DeleteFunc(recs, func(r journal.Record) bool { return r.Received.Before(cut) })
	check("trimmed by age", recs)

	// Retention by count.
	if _, err := s.Trim(ctx, time.Time{}, 3000); err != nil {
		t.Fatal(err)
	}
	recs = recs[len(recs)-3000:]
	check("trimmed by count", recs)
}

func testTrimAge(t *testing.T, s journal.Store) {
	ctx := context.Background()
	var recs []journal.Record
	for i := 0; i < 100; i++ {
		recs = append(recs, rec(1, int64(i), i*1000)) // one a second
	}
	write(t, s, recs...)
	n, err := s.Trim(ctx, base.Add(30*time.Second), 0)
	if err != nil || n != 30 {
		t.Fatalf("Trim(age) = %d, %v; want 30", n, err)
	}
	page, _ := s.List(ctx, journal.Filter{Limit: 1000})
	if len(page.Records) != 70 || page.Records[69].ID.Seq != 30 {
		t.Errorf("after Trim: %d records, oldest %v", len(page.Records), page.Records[len(page.Records)-1].ID)
	}
}

func testTrimMaxRows(t *testing.T, s journal.Store) {
	ctx := context.Background()
	var recs []journal.Record
	for i := 0; i < 12_000; i++ { // more than one delete chunk
		recs = append(recs, rec(1, int64(i), i))
	}
	write(t, s, recs...)
	n, err := s.Trim(ctx, time.Time{}, 1000)
	if err != nil || n != 11_000 {
		t.Fatalf("Trim(maxRows 1000) = %d, %v; want 11000", n, err)
	}
	if c := count(t, s); c != 1000 {
		t.Errorf("rows = %d; want 1000", c)
	}
	page, _ := s.List(ctx, journal.Filter{Limit: 1000})
	if got := page.Records[len(page.Records)-1].ID.Seq; got != 11_000 {
		t.Errorf("oldest kept = %d; want 11000", got)
	}
	if n, err := s.Trim(ctx, time.Time{}, 1000); n != 0 || err != nil {
		t.Errorf("Trim again = %d, %v; want 0", n, err)
	}
}

// events returns the events of one request: received, dispatched, then
// (unless end is 0) end.
func events(seq uint64, recv time.Time, end broker.EventKind) []broker.Event {
	e := broker.Event{Seq: seq, RequestID: "r" + strconv.FormatUint(seq, 10), Service: "tea", Method: "brew",
		Client: "00c1", Received: recv}
	r, d := e, e
	r.Kind, r.Time, r.Bytes = broker.Received, recv, 5
	d.Kind, d.Time, d.Worker = broker.Dispatched, recv.Add(time.Millisecond), "00w1"
	out := []broker.Event{r, d}
	if end != 0 {
		x := e
		x.Kind, x.Time, x.Worker, x.Bytes = end, recv.Add(3*time.Millisecond), "00w1", 7
		if end == broker.Failed {
			x.Code, x.Message = domo.CodeInternal, "boom"
		}
		out = append(out, x)
	}
	return out
}

func startRecorder(t *testing.T, s journal.Store, cfg journal.Config) (*journal.Recorder, chan broker.Event) {
	t.Helper()
	ch := make(chan broker.Event, 10_000)
	r := journal.NewRecorder(s, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, ch) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Recorder.Run = %v", err)
		}
	})
	return r, ch
}

func flush(t *testing.T, r *journal.Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("Flush = %v", err)
	}
}

func testRecorder(t *testing.T, s journal.Store) {
	ctx := context.Background()
	r, ch := startRecorder(t, s, journal.Config{Broker: "b1", BatchSize: 50, FlushInterval: 10 * time.Millisecond})
	now := time.Now().Round(time.Millisecond)
	for i := uint64(1); i <= 300; i++ {
		end := broker.Completed
		switch {
		case i%10 == 0:
			end = 0 // still in progress
		case i%10 == 3:
			end = broker.Failed
		}
		for _, e := range events(i, now.Add(time.Duration(i)*time.Microsecond), end) {
			ch <- e
		}
	}
	// One request dropped in its queue, never dispatched.
	ch <- broker.Event{Kind: broker.Received, Seq: 301, Service: "tea", Method: "brew", Time: now, Received: now}
	ch <- broker.Event{Kind: broker.Dropped, Seq: 301, Service: "tea", Method: "brew", Time: now.Add(time.Second), Received: now, Code: domo.CodeDeadlineExceeded}
	flush(t, r)
	sum, err := s.Summary(ctx, journal.Window{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total != 301 || sum.Processing != 30 || sum.Failed != 30 || sum.Completed != 240 || sum.Dropped != 1 || sum.P50 != 3*time.Millisecond {
		t.Errorf("Summary = %+v", sum)
	}
	got, err := s.Get(ctx, journal.ID{Run: r.RunID(), Seq: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != journal.StatusFailed || got.Code != string(domo.CodeInternal) || got.Message != "boom" ||
		got.QueueWait() != time.Millisecond || got.Handling() != 2*time.Millisecond || got.Total() != 3*time.Millisecond ||
		got.RequestBytes != 5 || got.ReplyBytes != 7 || got.Worker != "00w1" || got.Broker != "b1" || got.RequestID != "r3" {
		t.Errorf("record 3 = %+v", got)
	}
	dropped, _ := s.Get(ctx, journal.ID{Run: r.RunID(), Seq: 301})
	if dropped.Status != journal.StatusDropped || dropped.QueueWait() != time.Second || dropped.Attempts != 0 {
		t.Errorf("dropped record = %+v", dropped)
	}
	// The in-progress ones finish; their rows are updated, not duplicated.
	for i := uint64(10); i <= 300; i += 10 {
		ch <- events(i, now.Add(time.Duration(i)*time.Microsecond), broker.Completed)[2]
	}
	flush(t, r)
	sum, _ = s.Summary(ctx, journal.Window{})
	if sum.Total != 301 || sum.Processing != 0 || sum.Completed != 270 {
		t.Errorf("Summary after completion = %+v", sum)
	}
	st := r.Stats()
	if st.Events != 300*3-30+2+30 || st.Dropped != 0 || st.WriteErrors != 0 || st.Live != 0 || st.Pending != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

// testRecorderRetention fills the journal past its retention (by count and
// by age) and shows the Recorder trim it.
func testRecorderRetention(t *testing.T, s journal.Store) {
	ctx := context.Background()
	r, ch := startRecorder(t, s, journal.Config{Broker: "b1", BatchSize: 100, FlushInterval: 5 * time.Millisecond,
		Retention: time.Hour, MaxRows: 500, TrimInterval: 20 * time.Millisecond})
	old := time.Now().Add(-2 * time.Hour)
	for i := uint64(1); i <= 100; i++ {
		for _, e := range events(i, old.Add(time.Duration(i)*time.Millisecond), broker.Completed) {
			ch <- e
		}
	}
	now := time.Now()
	for i := uint64(101); i <= 1500; i++ {
		for _, e := range events(i, now.Add(time.Duration(i)*time.Microsecond), broker.Completed) {
			ch <- e
		}
	}
	flush(t, r)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := count(t, s)
		page, err := s.List(ctx, journal.Filter{To: now, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if n == 500 && len(page.Records) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %d rows (want 500), %d older than the retention (want 0)", n, len(page.Records))
		}
		time.Sleep(10 * time.Millisecond)
	}
	page, _ := s.List(ctx, journal.Filter{Limit: 1000})
	if oldest := page.Records[len(page.Records)-1].ID.Seq; oldest != 1001 {
		t.Errorf("oldest kept = %d; want 1001", oldest)
	}
	if st := r.Stats(); st.Trimmed < 1000 || st.TrimErrors != 0 { // a row may be trimmed, rewritten by a later batch, trimmed again
		t.Errorf("Stats = %+v; want 1000 or more trimmed", st)
	}
}

// testLarge writes DOMO_JOURNAL_ROWS records (skipped when unset) and
// times the dashboard's queries over them.
func testLarge(t *testing.T, s journal.Store) {
	n, _ := strconv.Atoi(os.Getenv("DOMO_JOURNAL_ROWS"))
	if n <= 0 {
		t.Skip("set DOMO_JOURNAL_ROWS (e.g. 1000000) to time queries over many rows")
	}
	ctx := context.Background()
	start := time.Now()
	services := []string{"tea", "coffee", "water", "juice"}
	methods := []string{"brew", "pour", "list"}
	batch := make([]journal.Record, 0, 5000)
	for i := 0; i < n; i++ {
		r := rec(1, int64(i), i)
		r.Service = services[i%len(services)]
		r.Method = methods[(i/len(services))%len(methods)]
		if i%1000 == 7 {
			r.Method = "audit" // a rare method: one request in 1,000, all of them coffee's
		}
		if i%97 == 0 {
			r.Status, r.Code = journal.StatusFailed, "internal"
		}
		batch = append(batch, r)
		if len(batch) == cap(batch) || i == n-1 {
			write(t, s, batch...)
			batch = batch[:0]
		}
	}
	t.Logf("wrote %d rows in %v (%.0f rows/s)", n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())
	timed := func(what string, fn func() error) {
		t.Helper()
		start := time.Now()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%-40s %v", what, time.Since(start).Round(10*time.Microsecond))
	}
	var page journal.Page
	timed("List first page (50)", func() (err error) { page, err = s.List(ctx, journal.Filter{}); return })
	timed("List next page", func() (err error) { _, err = s.List(ctx, journal.Filter{After: page.Next}); return })
	mid := base.Add(time.Duration(n/2) * time.Millisecond)
	timed("List page at the middle (To)", func() (err error) { _, err = s.List(ctx, journal.Filter{To: mid}); return })
	timed("List service=coffee", func() (err error) { _, err = s.List(ctx, journal.Filter{Service: "coffee"}); return })
	timed("List service=coffee method=pour", func() (err error) {
		_, err = s.List(ctx, journal.Filter{Service: "coffee", Method: "pour"})
		return
	})
	timed("List service=coffee method=audit (rare)", func() (err error) {
		_, err = s.List(ctx, journal.Filter{Service: "coffee", Method: "audit"})
		return
	})
	timed("Summary service=coffee method=pour", func() (err error) {
		_, err = s.Summary(ctx, journal.Window{Service: "coffee", Method: "pour"})
		return
	})
	timed("List status=failed", func() (err error) { _, err = s.List(ctx, journal.Filter{Status: journal.StatusFailed}); return })
	timed("List status=completed", func() (err error) { _, err = s.List(ctx, journal.Filter{Status: journal.StatusCompleted}); return })
	timed("List service=coffee status=failed", func() (err error) {
		_, err = s.List(ctx, journal.Filter{Service: "coffee", Status: journal.StatusFailed})
		return
	})
	timed("List in progress (none)", func() (err error) { _, err = s.List(ctx, journal.Filter{InProgress: true}); return })
	timed("List request id", func() (err error) { _, err = s.List(ctx, journal.Filter{RequestID: "req-4242"}); return })
	timed("Get", func() (err error) { _, err = s.Get(ctx, journal.ID{Run: 1, Seq: int64(n / 3)}); return })
	timed("Summary last minute", func() (err error) {
		_, err = s.Summary(ctx, journal.Window{From: base.Add(time.Duration(n)*time.Millisecond - time.Minute)})
		return
	})
	timed("Summary all rows", func() (err error) { _, err = s.Summary(ctx, journal.Window{}); return })
	// A journal at its cap, as retention finds it each interval: a few over.
	timed(fmt.Sprintf("Trim to %d rows (1,000 over)", n-1000), func() (err error) { _, err = s.Trim(ctx, time.Time{}, n-1000); return })
	timed(fmt.Sprintf("Trim to %d rows", n/2), func() (err error) { _, err = s.Trim(ctx, time.Time{}, n/2); return })
}
