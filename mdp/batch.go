package mdp

import (
	"encoding/binary"
	"fmt"
)

// BatchHeader is the first frame of a batch: one ZeroMQ message that
// carries several MDP messages between domo peers that agreed to batch
// (docs/protocol.md, section 7.4). Every other frame of a batch is one MDP
// message packed by AppendPacked.
const BatchHeader = "DOMOB1"

// HeaderBatch is the READY extension header by which a domo worker says it
// takes batches ("1"). A broker sends batches only to such workers, and a
// worker sends batches only to a broker that has sent it one. Clients learn
// it through MMIBatch; a broker answers in batches only requests that came
// in one.
const HeaderBatch = "batch"

// MMIBatch is the name a domo client asks mmi.service about to learn
// whether a broker takes batches: a domo broker answers "200", any other
// broker "404" (no such service) or "501" (no MMI).
const MMIBatch = "mmi.batch"

// IsBatch reports whether frames (without a routing identity) are a batch.
func IsBatch(frames [][]byte) bool {
	return len(frames) > 0 && string(frames[0]) == BatchHeader
}

// AppendPacked appends frames packed into one frame to dst: each frame as
// its length (unsigned varint, as encoding/binary writes it) followed by its
// bytes.
func AppendPacked(dst []byte, frames [][]byte) []byte {
	for _, f := range frames {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// PackedSize is the length of frames packed by AppendPacked.
func PackedSize(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += uvarintLen(uint64(len(f))) + len(f)
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// Unpack appends the frames packed in p to dst and returns it. The frames
// are sub-slices of p, not copies. A packed frame that is truncated, has a
// malformed length, holds no frame or more than maxFrames (if positive)
// is malformed.
func Unpack(dst [][]byte, p []byte, maxFrames int) ([][]byte, error) {
	n := 0
	for len(p) > 0 {
		size, k := binary.Uvarint(p)
		if k <= 0 {
			return dst, fmt.Errorf("%w: packed frame %d: bad length", ErrMalformed, n)
		}
		p = p[k:]
		if size > uint64(len(p)) {
			return dst, fmt.Errorf("%w: packed frame %d: %d bytes, %d left", ErrMalformed, n, size, len(p))
		}
		if maxFrames > 0 && n == maxFrames {
			return dst, fmt.Errorf("%w: more than %d packed frames", ErrTooManyFrames, maxFrames)
		}
		dst = append(dst, p[:size:size])
		p = p[size:]
		n++
	}
	if n == 0 {
		return dst, fmt.Errorf("%w: empty packed message", ErrMalformed)
	}
	return dst, nil
}

// The bounds of one batch a domo sender builds: far below the default
// limits of any receiver (64 frames, 4 MiB), so that a batch is not refused
// where its messages alone would not be.
const (
	BatchMaxMessages = 32
	BatchMaxBytes    = 256 << 10
)

var batchHeader = []byte(BatchHeader) // read only

// A Batch gathers messages to send as one batch. The zero value is empty
// and ready to use; a Batch is reused after Take.
type Batch struct {
	first [][]byte // the first message, sent alone if no other comes; packed when a second does
	n     int      // messages held
	buf   []byte   // the messages, packed (from the second on)
	ends  []int    // where each packed message ends in buf
	out   [][]byte
}

// Len is the number of messages in b.
func (b *Batch) Len() int { return b.n }

// Add adds the message frames to b. It adds nothing and reports false when
// b holds a message already and this one would take it past
// BatchMaxMessages or BatchMaxBytes: Take, then Add again. The first
// message is kept by reference (its frames must not change until Take), so
// that a lone message costs no copy; later ones are copied.
func (b *Batch) Add(frames [][]byte) bool {
	if b.n == 0 {
		b.first = append(b.first[:0], frames...)
		b.n = 1
		return true
	}
	size := PackedSize(frames)
	packed := len(b.buf)
	if len(b.ends) == 0 {
		packed = PackedSize(b.first)
	}
	if b.n == BatchMaxMessages || packed+size > BatchMaxBytes {
		return false
	}
	if len(b.ends) == 0 {
		b.buf = AppendPacked(b.buf, b.first)
		b.ends = append(b.ends, len(b.buf))
	}
	b.buf = AppendPacked(b.buf, frames)
	b.ends = append(b.ends, len(b.buf))
	b.n++
	return true
}

// Take empties b and returns what to send: the message alone if b held one,
// else the batch, [BatchHeader, packed message, ...]. The frames stay valid
// until the next Add.
func (b *Batch) Take() [][]byte {
	defer func() { b.n, b.buf, b.ends = 0, b.buf[:0], b.ends[:0] }()
	switch b.n {
	case 0:
		return nil
	case 1:
		b.out = append(b.out[:0], b.first...)
		clear(b.first)
		return b.out
	}
	clear(b.first)
	b.out = append(b.out[:0], batchHeader)
	start := 0
	for _, end := range b.ends {
		b.out = append(b.out, b.buf[start:end:end])
		start = end
	}
	return b.out
}

// UnpackMessage unpacks one packed message of a batch, appending its frames
// to dst, and checks it: it must not be a batch itself, and it must be
// within l, counting the frames dst held before (a routing identity).
func (l Limits) UnpackMessage(dst [][]byte, p []byte) ([][]byte, error) {
	n := len(dst)
	maxFrames := 0
	if l.MaxFrames > 0 {
		maxFrames = max(l.MaxFrames-n, 0)
		if maxFrames == 0 {
			return dst, fmt.Errorf("%w: no room for a message in %d frames", ErrTooManyFrames, l.MaxFrames)
		}
	}
	dst, err := Unpack(dst, p, maxFrames)
	if err != nil {
		return dst, err
	}
	if IsBatch(dst[n:]) {
		return dst, fmt.Errorf("%w: a batch inside a batch", ErrMalformed)
	}
	return dst, l.Check(dst)
}
