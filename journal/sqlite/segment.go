package sqlite

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/journal/internal/sqlstore"
)

// A segment is the final records of one run written in one batch, kept as
// one row: a compact encoding of the records, and beside it what lets a
// query skip the segment unread (its receipt and seq ranges, counts by
// status, its service and method names, a Bloom filter of its request
// ids). A journal row with its four indexes cost 4-5 µs of CPU to write;
// a record in a segment costs a fraction of that (docs/architecture.md,
// "The embedded journal's layout").
//
// The encoding, version 1: a version byte, the record count n (uvarint),
// then n keys (seq and receipt time in µs, each a zigzag varint delta from
// the key before), then n bodies. A body's names (broker, service, method,
// client, worker, code, message) are dictionary-coded: uvarint 0 and the
// text (uvarint length, bytes) the first time, k+1 for the k-th text of the
// segment after that; the request id is text; then status (a byte),
// attempts, request and reply bytes (uvarints); dispatched, last
// dispatched and ended as zigzag µs from receipt plus one (0: never); the
// request and reply bodies as uvarint length plus one (0: none) and
// bytes.
const segmentVersion = 1

// segKey is what a segment says of a record before its body is read.
type segKey struct {
	seq, receivedUs int64
}

// encodeSegment appends the encoding of recs to dst.
func encodeSegment(dst []byte, recs []*journal.Record) []byte {
	dst = append(dst, segmentVersion)
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	var prev segKey
	for _, r := range recs {
		k := segKey{r.ID.Seq, sqlstore.Micros(r.Received)}
		dst = binary.AppendVarint(dst, k.seq-prev.seq)
		dst = binary.AppendVarint(dst, k.receivedUs-prev.receivedUs)
		prev = k
	}
	dict := make(map[string]uint64)
	name := func(s string) {
		if k, ok := dict[s]; ok {
			dst = binary.AppendUvarint(dst, k)
			return
		}
		dict[s] = uint64(len(dict) + 1)
		dst = append(dst, 0)
		dst = appendText(dst, s)
	}
	for _, r := range recs {
		for _, s := range [...]string{r.Broker, r.Service, r.Method, r.Client, r.Worker, r.Code, r.Message} {
			name(s)
		}
		dst = appendText(dst, r.RequestID)
		dst = append(dst, byte(r.Status))
		dst = binary.AppendUvarint(dst, uint64(r.Attempts))
		dst = binary.AppendUvarint(dst, uint64(r.RequestBytes))
		dst = binary.AppendUvarint(dst, uint64(r.ReplyBytes))
		recv := sqlstore.Micros(r.Received)
		for _, t := range [...]time.Time{r.Dispatched, r.LastDispatched, r.Ended} {
			var v uint64
			if !t.IsZero() {
				v = zigzag(t.UnixMicro()-recv) + 1
			}
			dst = binary.AppendUvarint(dst, v)
		}
		dst = appendBody(dst, r.RequestBody)
		dst = appendBody(dst, r.ReplyBody)
	}
	return dst
}

func appendText(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBody(dst []byte, b []byte) []byte {
	if b == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b))+1)
	return append(dst, b...)
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

var errCorrupt = errors.New("journal/sqlite: corrupt segment")

// segReader reads an encoding from its start.
type segReader struct {
	b   []byte
	err error
}

func (d *segReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *segReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *segReader) bytes(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *segReader) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *segReader) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

// readKeys reads the version, count and keys of an encoding; d is left at
// the first body.
func (d *segReader) readKeys() []segKey {
	if d.byte() != segmentVersion {
		d.fail()
		return nil
	}
	n := d.uvarint()
	if n > uint64(len(d.b))/2 { // every key takes at least two bytes
		d.fail()
		return nil
	}
	keys := make([]segKey, n)
	var prev segKey
	for i := range keys {
		prev.seq += d.varint()
		prev.receivedUs += d.varint()
		keys[i] = prev
	}
	if d.err != nil {
		return nil
	}
	return keys
}

// segmentKeys returns the keys of an encoding, in record order.
func segmentKeys(data []byte) ([]segKey, error) {
	d := segReader{b: data}
	keys := d.readKeys()
	return keys, d.err
}

// rawBody is a record's body as encoded: names decoded (from the
// segment's dictionary), times still offsets (0: never), the request id
// and bodies still the encoding's bytes.
type rawBody struct {
	names                        [7]string // broker, service, method, client, worker, code, message
	requestID                    []byte
	status                       journal.Status
	attempts, reqBytes, repBytes uint64
	times                        [3]uint64 // dispatched, last dispatched, ended
	reqBody, repBody             []byte
}

// readBody reads the next body into b; dict is the segment's dictionary so
// far.
func (d *segReader) readBody(dict *[]string, b *rawBody) {
	for i := range b.names {
		k := d.uvarint()
		switch {
		case k == 0:
			s := string(d.bytes(d.uvarint()))
			*dict = append(*dict, s)
			b.names[i] = s
		case k > uint64(len(*dict)):
			d.fail()
			return
		default:
			b.names[i] = (*dict)[k-1]
		}
	}
	b.requestID = d.bytes(d.uvarint())
	b.status = journal.Status(d.byte())
	b.attempts, b.reqBytes, b.repBytes = d.uvarint(), d.uvarint(), d.uvarint()
	for i := range b.times {
		b.times[i] = d.uvarint()
	}
	b.reqBody, b.repBody = d.body(), d.body()
}

// at returns the time of an encoded offset from receipt (zero for 0).
func at(receivedUs int64, v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(receivedUs + unzigzag(v-1))
}

// decodeSegment decodes the records of run in data, in record order. keep,
// if not nil, is asked first with each key, once, in order: the records it
// refuses are read past, not built, and those after the last it keeps are
// not read at all.
func decodeSegment(run int64, data []byte, keep func(segKey) bool) ([]journal.Record, error) {
	d := segReader{b: data}
	keys := d.readKeys()
	var dict []string
	// With keep, the bodies after the last record kept are not read.
	kept := make([]bool, len(keys))
	last := -1
	for i, k := range keys {
		if kept[i] = keep == nil || keep(k); kept[i] {
			last = i
		}
	}
	var out []journal.Record
	var b rawBody
	for i, k := range keys[:last+1] {
		d.readBody(&dict, &b)
		if d.err != nil {
			return nil, d.err
		}
		if !kept[i] {
			continue
		}
		r := journal.Record{
			ID:     journal.ID{Run: run, Seq: k.seq},
			Broker: b.names[0], RequestID: string(b.requestID), Service: b.names[1], Method: b.names[2],
			Client: b.names[3], Worker: b.names[4], Status: b.status, Code: b.names[5], Message: b.names[6],
			Attempts: int(b.attempts), RequestBytes: int(b.reqBytes), ReplyBytes: int(b.repBytes),
			Dispatched: at(k.receivedUs, b.times[0]), LastDispatched: at(k.receivedUs, b.times[1]),
			Ended:       at(k.receivedUs, b.times[2]),
			RequestBody: slices.Clone(b.reqBody), ReplyBody: slices.Clone(b.repBody),
		}
		if k.receivedUs != 0 {
			r.Received = time.UnixMicro(k.receivedUs)
		}
		if b.reqBody != nil && r.RequestBody == nil {
			r.RequestBody = []byte{}
		}
		if b.repBody != nil && r.ReplyBody == nil {
			r.ReplyBody = []byte{}
		}
		out = append(out, r)
	}
	return out, d.err
}

// A tally is what Summary needs of a record.
type tally struct {
	receivedUs      int64
	service, method string
	status          journal.Status
	totalUs         int64 // 0 while in progress
}

// tallySegment calls fn with the tally of every record in data, in record
// order, without building records: names come from the segment's
// dictionary (fn may keep them), request ids and bodies are not copied.
func tallySegment(data []byte, fn func(tally)) error {
	d := segReader{b: data}
	keys := d.readKeys()
	var dict []string
	var b rawBody
	for _, k := range keys {
		d.readBody(&dict, &b)
		if d.err != nil {
			return d.err
		}
		t := tally{receivedUs: k.receivedUs, service: b.names[1], method: b.names[2], status: b.status}
		if v := b.times[2]; v != 0 {
			t.totalUs = unzigzag(v - 1)
		}
		fn(t)
	}
	return d.err
}

// body reads a body: nil for none, a (possibly empty) slice of d's bytes
// otherwise.
func (d *segReader) body() []byte {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	b := d.bytes(n - 1)
	if b == nil && d.err == nil {
		b = []byte{}
	}
	return b
}

// Names: a segment's distinct service and method pairs, each written as
// nameSep service nameMid method nameSep, so that a query finds a service
// (nameSep service nameMid) or a method of it (the whole pair) with one
// instr(). Names may hold these bytes too: a match is then only a
// candidate, as every match is (records are filtered once decoded).
const (
	nameSep = "\x1e"
	nameMid = "\x1f"
)

func segmentNames(recs []*journal.Record) string {
	seen := make(map[[2]string]bool)
	var b strings.Builder
	b.WriteString(nameSep)
	var last [2]string
	for i, r := range recs {
		k := [2]string{r.Service, r.Method}
		if i > 0 && k == last || seen[k] { // most records repeat the one before
			continue
		}
		seen[k], last = true, k
		b.WriteString(r.Service + nameMid + r.Method + nameSep)
	}
	return b.String()
}

// namePattern is what a segment's names hold if it may have records of
// service (and method, if given).
func namePattern(service, method string) string {
	if method == "" {
		return nameSep + service + nameMid
	}
	return nameSep + service + nameMid + method + nameSep
}

// A bloom filter of a segment's request ids: bloomBits bits an id, bloomK
// probes, about 1 % false positives. Hashes are FNV-1a (stable across
// processes and versions: the filter is stored).
const (
	bloomBits = 10
	bloomK    = 7
)

func newBloom(n int) []byte { return make([]byte, max(8, (n*bloomBits+7)/8)) }

func bloomProbes(id string) (h1, h2 uint32) {
	h := fnv.New64a()
	h.Write([]byte(id))
	// FNV-1a alone spreads ids that differ in their last bytes (a
	// client's counter) poorly over the low bits: MurmurHash3's
	// finalizer mixes every bit into every other.
	v := h.Sum64()
	v ^= v >> 33
	v *= 0xff51afd7ed558ccd
	v ^= v >> 33
	v *= 0xc4ceb9fe1a85ec53
	v ^= v >> 33
	return uint32(v), uint32(v>>32) | 1
}

func bloomAdd(f []byte, id string) {
	h1, h2 := bloomProbes(id)
	m := uint32(len(f) * 8)
	for i := range uint32(bloomK) {
		bit := (h1 + i*h2) % m
		f[bit/8] |= 1 << (bit % 8)
	}
}

// bloomHas reports whether id may be in f (and surely is not, if false).
// An empty filter (no ids were added) holds nothing.
func bloomHas(f []byte, id string) bool {
	if len(f) == 0 {
		return false
	}
	h1, h2 := bloomProbes(id)
	m := uint32(len(f) * 8)
	for i := range uint32(bloomK) {
		bit := (h1 + i*h2) % m
		if f[bit/8]&(1<<(bit%8)) == 0 {
			return false
		}
	}
	return true
}
