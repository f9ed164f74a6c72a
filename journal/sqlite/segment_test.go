package sqlite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/internal/sqlstore"
)

// normRecord returns r with its times in UTC, so that reflect.DeepEqual
// compares instants (a decoded time is in Local) and still tells a nil body
// from an empty one.
func normRecord(r journal.Record) journal.Record {
	for _, t := range []*time.Time{&r.Received, &r.Dispatched, &r.LastDispatched, &r.Ended} {
		*t = t.UTC()
	}
	return r
}

// sameRecords reports, as an error, the first difference between got and
// want.
func sameRecords(got, want []journal.Record) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d records; want %d", len(got), len(want))
	}
	for i := range got {
		if g, w := normRecord(got[i]), normRecord(want[i]); !reflect.DeepEqual(g, w) {
			return fmt.Errorf("record %d:\n got %#v\nwant %#v", i, g, w)
		}
	}
	return nil
}

func ptrs(recs []journal.Record) []*journal.Record {
	out := make([]*journal.Record, len(recs))
	for i := range recs {
		out[i] = &recs[i]
	}
	return out
}

// segmentSample is a segment's worth of records that between them take
// every branch of the encoding: zero times, times before the epoch and
// before receipt, nil and empty bodies, negative seqs in no order, names
// repeated within a record, across records and never, every status.
func segmentSample(run int64) []journal.Record {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123_456_000, time.UTC)
	long := bytes.Repeat([]byte("0123456789"), 30) // a length of two varint bytes
	return []journal.Record{
		{ID: journal.ID{Run: run, Seq: 0}}, // all zero: no times, no bodies, empty names
		{
			ID: journal.ID{Run: run, Seq: 7}, Broker: "b1", RequestID: "3fa9c2d1-1", Service: "tea", Method: "brew",
			Client: "00aa", Worker: "00bb", Status: journal.StatusCompleted, Attempts: 1, RequestBytes: 10, ReplyBytes: 20,
			Received: t0, Dispatched: t0.Add(100 * time.Microsecond), LastDispatched: t0.Add(100 * time.Microsecond),
			Ended: t0.Add(3 * time.Millisecond), RequestBody: []byte("ping"), ReplyBody: long,
		},
		{
			ID: journal.ID{Run: run, Seq: -5}, Broker: "b1", RequestID: "", Service: "tea", Method: "tea",
			Client: "tea", Worker: "", Status: journal.StatusFailed, Code: "E_TIMEOUT", Message: "too slow, ünïcödé",
			Attempts: 3, RequestBytes: 1 << 40, Received: t0.Add(-time.Hour),
			// Dispatched before receipt: a negative offset.
			Dispatched: t0.Add(-2 * time.Hour), LastDispatched: t0.Add(-time.Hour + time.Second), Ended: t0.Add(time.Minute),
			RequestBody: []byte{}, ReplyBody: nil,
		},
		{
			ID: journal.ID{Run: run, Seq: math.MinInt64}, Broker: "b2", RequestID: "x", Service: "coffee", Method: "pour",
			Status: journal.StatusDropped, Code: "E_EXPIRED", Received: time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC),
			Ended: time.Date(1969, 7, 20, 20, 17, 41, 0, time.UTC), ReplyBody: []byte{},
		},
		{ID: journal.ID{Run: run, Seq: math.MaxInt64}, Service: "coffee", Method: "brew", Status: journal.StatusReceived, Received: t0},
		{ID: journal.ID{Run: run, Seq: 8}, Service: "coffee", Method: "brew", Status: journal.StatusProcessing,
			Received: t0, Dispatched: t0, LastDispatched: t0, Attempts: -1},
		{ID: journal.ID{Run: run, Seq: 9}, Service: "\x1e\x1f", Method: "\x00\xff", Status: journal.Status(255),
			Received: t0.Add(time.Microsecond), Ended: t0.Add(2 * time.Microsecond)},
	}
}

func TestSegmentRoundTrip(t *testing.T) {
	const run = -42
	want := segmentSample(run)
	for n := range len(want) + 1 { // every prefix, the empty segment too
		recs := want[:n]
		enc := encodeSegment(nil, ptrs(recs))
		got, err := decodeSegment(run, enc, nil)
		if err != nil {
			t.Fatalf("%d records: decode = %v", n, err)
		}
		if err := sameRecords(got, recs); err != nil {
			t.Fatalf("%d records: %v", n, err)
		}
		if err := sameTallies(enc, recs); err != nil {
			t.Fatalf("%d records: %v", n, err)
		}
		keys, err := segmentKeys(enc)
		if err != nil {
			t.Fatalf("%d records: segmentKeys = %v", n, err)
		}
		if len(keys) != len(recs) {
			t.Fatalf("%d records: %d keys", n, len(keys))
		}
		for i, k := range keys {
			if k != (segKey{recs[i].ID.Seq, sqlstore.Micros(recs[i].Received)}) {
				t.Errorf("%d records: key %d = %+v; want seq %d, received %d", n, i, k, recs[i].ID.Seq, sqlstore.Micros(recs[i].Received))
			}
		}
		// Appending to a buffer encodes the same bytes after it.
		prefixed := encodeSegment([]byte("abc"), ptrs(recs))
		if !bytes.Equal(prefixed[3:], enc) {
			t.Errorf("%d records: encodeSegment(dst) differs from encodeSegment(nil)", n)
		}
	}

	enc := encodeSegment(nil, ptrs(want))
	t.Run("keep", func(t *testing.T) {
		var asked []segKey
		got, err := decodeSegment(run, enc, func(k segKey) bool {
			asked = append(asked, k)
			return k.seq%2 == 0
		})
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := segmentKeys(enc)
		if !slices.Equal(asked, keys) {
			t.Errorf("keep asked %v; want every key in order %v", asked, keys)
		}
		wantKept := slices.DeleteFunc(slices.Clone(want), func(r journal.Record) bool { return r.ID.Seq%2 != 0 })
		if err := sameRecords(got, wantKept); err != nil {
			t.Error(err)
		}
		if got, err := decodeSegment(run, enc, func(segKey) bool { return false }); err != nil || len(got) != 0 {
			t.Errorf("keep nothing = %d records, %v", len(got), err)
		}
	})
	t.Run("owned", func(t *testing.T) {
		// Decoded bodies are copies: the scanned blob is reused.
		data := slices.Clone(enc)
		got, _ := decodeSegment(run, data, nil)
		clear(data)
		if err := sameRecords(got, want); err != nil {
			t.Errorf("after the encoding was overwritten: %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for cut := range len(enc) {
			if _, err := decodeSegment(run, enc[:cut], nil); !errors.Is(err, errCorrupt) {
				t.Fatalf("decode of the first %d of %d bytes = %v; want errCorrupt", cut, len(enc), err)
			}
		}
	})
	t.Run("names", func(t *testing.T) {
		names := segmentNames(ptrs(want))
		for _, r := range want {
			if !strings.Contains(names, namePattern(r.Service, "")) || !strings.Contains(names, namePattern(r.Service, r.Method)) {
				t.Errorf("names %q lack %q/%q", names, r.Service, r.Method)
			}
		}
		if strings.Contains(names, namePattern("tea", "pour")) || strings.Contains(names, namePattern("te", "")) {
			t.Errorf("names %q match a pair they do not hold", names)
		}
	})
}

// TestSegmentCorrupt: bad encodings are errCorrupt, never a panic, and a
// count the bytes cannot hold allocates nothing for it.
func TestSegmentCorrupt(t *testing.T) {
	good := encodeSegment(nil, ptrs(segmentSample(1)[:2]))
	// A record without bodies: its encoding ends with the reply body's 0.
	bare := encodeSegment(nil, ptrs(segmentSample(1)[:1]))
	huge := binary.AppendUvarint([]byte{segmentVersion}, 1<<62)
	cases := map[string][]byte{
		"nil":             nil,
		"empty":           {},
		"version 0":       {0, 0},
		"version 2":       append([]byte{2}, good[1:]...),
		"huge count":      huge,
		"count > bytes":   binary.AppendUvarint([]byte{segmentVersion}, 100),
		"bad varint":      append([]byte{segmentVersion}, bytes.Repeat([]byte{0xff}, 11)...),
		"no bodies":       {segmentVersion, 1, 2, 2},
		"dictionary ref":  {segmentVersion, 1, 2, 2, 5},
		"body past end":   append(slices.Clone(bare[:len(bare)-1]), 0x7f),
		"text past end":   {segmentVersion, 1, 2, 2, 0, 100, 'a'},
		"huge text":       append([]byte{segmentVersion, 1, 2, 2, 0}, binary.AppendUvarint(nil, math.MaxUint64)...),
		"huge body":       append(slices.Clone(bare[:len(bare)-1]), binary.AppendUvarint(nil, math.MaxUint64)...),
		"keys then trash": {segmentVersion, 3, 2, 2, 2, 2, 2, 2, 0x80},
	}
	for name, data := range cases {
		if _, err := decodeSegment(1, data, nil); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: decodeSegment = %v; want errCorrupt", name, err)
		}
		// Keeping nothing reads no body: only a bad header or bad keys
		// are found then.
		if recs, err := decodeSegment(1, data, func(segKey) bool { return false }); len(recs) != 0 || err != nil && !errors.Is(err, errCorrupt) {
			t.Errorf("%s: decodeSegment(keep nothing) = %d records, %v; want none, and errCorrupt or nil", name, len(recs), err)
		}
	}
	for _, name := range []string{"nil", "empty", "version 0", "version 2", "huge count", "count > bytes", "bad varint"} {
		if _, err := segmentKeys(cases[name]); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: segmentKeys = %v; want errCorrupt", name, err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		segmentKeys(huge)
		decodeSegment(1, huge, nil)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("decoding a header that claims 2^62 records allocated %d bytes", n)
	}
}

// FuzzSegment reads its input two ways. As an encoding: decodeSegment and
// segmentKeys must not panic, must fail with errCorrupt, and must allocate
// in proportion to the input (a key takes two bytes or more, a record
// seventeen). As a recipe for records (fuzzRecords): encoding them and
// decoding the result must give them back, and every proper prefix of the
// encoding must be refused.
func FuzzSegment(f *testing.F) {
	sample := segmentSample(3)
	for n := range len(sample) + 1 {
		f.Add(encodeSegment(nil, ptrs(sample[:n])))
	}
	f.Add([]byte{segmentVersion, 200, 1, 2, 3})
	f.Add(bytes.Repeat([]byte{0x81}, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		const run = 5
		keys, kerr := segmentKeys(data)
		recs, derr := decodeSegment(run, data, nil)
		for _, err := range []error{kerr, derr} {
			if err != nil && !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v; want errCorrupt", err)
			}
		}
		if len(keys) > len(data)/2 || len(recs) > len(data)/17 {
			t.Fatalf("%d bytes gave %d keys, %d records", len(data), len(keys), len(recs))
		}
		if derr == nil {
			if kerr != nil || len(keys) != len(recs) {
				t.Fatalf("decode: %d records; segmentKeys: %d keys, %v", len(recs), len(keys), kerr)
			}
			for i, r := range recs {
				if r.ID != (journal.ID{Run: run, Seq: keys[i].seq}) || sqlstore.Micros(r.Received) != keys[i].receivedUs {
					t.Fatalf("record %d: %v received %d; key %+v", i, r.ID, sqlstore.Micros(r.Received), keys[i])
				}
			}
			if err := sameTallies(data, recs); err != nil {
				t.Fatal(err)
			}
		} else if err := tallySegment(data, func(tally) {}); err != nil && !errors.Is(err, errCorrupt) {
			t.Fatalf("tallySegment: %v; want errCorrupt", err)
			// What decodes, encoded again, decodes the same.
			again, err := decodeSegment(run, encodeSegment(nil, ptrs(recs)), nil)
			if err != nil {
				t.Fatalf("re-encoded: %v", err)
			}
			if err := sameRecords(again, recs); err != nil {
				t.Fatalf("re-encoded: %v", err)
			}
		}

		want := fuzzRecords(run, data)
		enc := encodeSegment(nil, ptrs(want))
		got, err := decodeSegment(run, enc, nil)
		if err != nil {
			t.Fatalf("decode of an encoding: %v", err)
		}
		if err := sameRecords(got, want); err != nil {
			t.Fatal(err)
		}
		keys, err = segmentKeys(enc)
		if err != nil || len(keys) != len(want) {
			t.Fatalf("segmentKeys: %d keys, %v; want %d", len(keys), err, len(want))
		}
		for i, k := range keys {
			if k.seq != want[i].ID.Seq || k.receivedUs != sqlstore.Micros(want[i].Received) {
				t.Fatalf("key %d = %+v; want record %v received %d", i, k, want[i].ID, sqlstore.Micros(want[i].Received))
			}
		}
		odd := func(k segKey) bool { return k.seq&1 == 1 }
		kept, err := decodeSegment(run, enc, odd)
		if err != nil {
			t.Fatal(err)
		}
		wantKept := slices.DeleteFunc(slices.Clone(want), func(r journal.Record) bool { return r.ID.Seq&1 == 0 })
		if err := sameRecords(kept, wantKept); err != nil {
			t.Fatalf("keep odd seqs: %v", err)
		}
		if _, err := decodeSegment(run, enc[:len(enc)-1], nil); !errors.Is(err, errCorrupt) {
			t.Fatalf("decode without the last byte = %v; want errCorrupt", err)
		}
	})
}

// fuzzSource hands out a fuzz input's bytes as field values, zeros once
// they run out.
type fuzzSource struct{ b []byte }

func (s *fuzzSource) byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *fuzzSource) int64() int64 {
	var v [8]byte
	n := copy(v[:], s.b)
	s.b = s.b[n:]
	return int64(binary.LittleEndian.Uint64(v[:]))
}

// text is one of a few names (so that names repeat within and across
// records) or a fresh string of arbitrary bytes.
func (s *fuzzSource) text() string {
	pool := [...]string{"", "tea", "brew", "b1", "E_TIMEOUT"}
	c := s.byte()
	if int(c) < 2*len(pool) {
		return pool[c%byte(len(pool))]
	}
	n := min(int(c)%32, len(s.b))
	v := string(s.b[:n])
	s.b = s.b[n:]
	return v
}

func (s *fuzzSource) body() []byte {
	switch c := s.byte(); c % 4 {
	case 0:
		return nil
	case 1:
		return []byte{}
	default:
		n := min(int(c), len(s.b))
		v := slices.Clone(s.b[:n])
		s.b = s.b[n:]
		return v
	}
}

// maxFuzzUs bounds the fuzzed times (about ±2,280 years from the epoch):
// an offset from receipt is then far from the int64 overflow the encoding
// does not guard against.
const maxFuzzUs = 1 << 56

// time is zero or an instant to the microsecond, as the journal stores
// them. Not the epoch itself: a receipt at the epoch reads back as the zero
// time, as it does from the row table.
func (s *fuzzSource) time() time.Time {
	if s.byte()%5 == 0 {
		return time.Time{}
	}
	us := s.int64() % maxFuzzUs
	if us == 0 {
		us = 1
	}
	return time.UnixMicro(us)
}

// fuzzRecords builds up to 31 records of run from data, every field from
// its bytes.
func fuzzRecords(run int64, data []byte) []journal.Record {
	s := fuzzSource{b: data}
	n := int(s.byte() % 32)
	seen := make(map[int64]bool)
	var recs []journal.Record
	for range n {
		var r journal.Record
		r.ID = journal.ID{Run: run, Seq: s.int64()}
		if seen[r.ID.Seq] { // a segment holds an id once
			continue
		}
		seen[r.ID.Seq] = true
		r.Broker, r.RequestID, r.Service, r.Method = s.text(), s.text(), s.text(), s.text()
		r.Client, r.Worker, r.Code, r.Message = s.text(), s.text(), s.text(), s.text()
		r.Status = journal.Status(s.byte())
		r.Attempts, r.RequestBytes, r.ReplyBytes = int(s.int64()), int(s.int64()), int(s.int64())
		r.Received, r.Dispatched, r.LastDispatched, r.Ended = s.time(), s.time(), s.time(), s.time()
		r.RequestBody, r.ReplyBody = s.body(), s.body()
		recs = append(recs, r)
	}
	return recs
}

// TestBloom: every id added is found, and ids never added are found (false
// positives) about 1 % of the time, under 3 % for any of the shapes of
// request id the journal sees and any filter size. The client's ids (a
// random prefix and a counter in base 36) are the commonest.
func TestBloom(t *testing.T) {
	if bloomHas(nil, "a") || bloomHas([]byte{}, "") {
		t.Error("an empty filter holds an id")
	}
	shapes := map[string]func(i int) string{
		"random hex": func(i int) string {
			r := rand.New(rand.NewPCG(uint64(i), 0))
			return fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
		},
		"client":   func(i int) string { return "3fa9c2d1-" + strconv.FormatUint(uint64(i), 36) },
		"numbered": func(i int) string { return fmt.Sprintf("req-%d", i) },
	}
	for name, id := range shapes {
		for _, n := range []int{1, 5, 50, 500, 4096} {
			// A long-lived client's counter is large: start the ids there.
			for _, start := range []int{0, 1 << 20} {
				f := newBloom(n)
				for i := range n {
					bloomAdd(f, id(start+i))
				}
				for i := range n {
					if s := id(start + i); !bloomHas(f, s) {
						t.Fatalf("%s, %d ids: %q added, not found", name, n, s)
					}
				}
				const tries = 10_000
				fp := 0
				for i := range tries {
					if bloomHas(f, id(start+n+i)) {
						fp++
					}
				}
				if rate := float64(fp) / tries; rate > 0.03 {
					t.Errorf("%s ids from %d, %d in the filter: %.1f %% false positives; want under 3 %%", name, start, n, 100*rate)
				}
			}
		}
	}
}

// sameTallies reports whether tallySegment gives of data what Summary
// needs of recs, in order.
func sameTallies(data []byte, recs []journal.Record) error {
	var got []tally
	if err := tallySegment(data, func(t tally) { got = append(got, t) }); err != nil {
		return fmt.Errorf("tallySegment: %w", err)
	}
	if len(got) != len(recs) {
		return fmt.Errorf("tallySegment: %d tallies; want %d", len(got), len(recs))
	}
	for i := range recs {
		r := &recs[i]
		var total int64
		if !r.Ended.IsZero() {
			total = r.Ended.UnixMicro() - sqlstore.Micros(r.Received)
		}
		want := tally{sqlstore.Micros(r.Received), r.Service, r.Method, r.Status, total}
		if got[i] != want {
			return fmt.Errorf("tally %d = %+v; want %+v", i, got[i], want)
		}
	}
	return nil
}
