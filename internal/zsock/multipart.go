package zsock

/*
#cgo pkg-config: libzmq
#include <zmq.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

// domo_recv receives one whole multipart message in one call from Go.
// Frames are kept in msgs (at most max; further frames are received and
// discarded, counted in *dropped) and their sizes written to sizes. If the
// kept frames fit in buf (cap bytes) they are copied there and closed
// (*copied = 1); otherwise they stay in msgs for domo_copy. *total is their
// size in bytes. It returns the number of frames kept, or -1 with errno set
// when no message was received.
static int domo_recv(void *s, zmq_msg_t *msgs, int max, size_t *sizes, int flags,
                     char *buf, size_t cap, size_t *total, int *dropped, int *copied) {
	int n = 0, more = 1;
	*total = 0; *dropped = 0; *copied = 0;
	while (more) {
		zmq_msg_t scratch;
		zmq_msg_t *m = n < max ? &msgs[n] : &scratch;
		zmq_msg_init(m);
		int rc;
		do {
			rc = zmq_msg_recv(m, s, n == 0 ? flags : 0);
		} while (rc < 0 && errno == EINTR); // Go's preemption signals interrupt calls
		if (rc < 0) {
			int e = errno;
			zmq_msg_close(m);
			for (int i = 0; i < n && i < max; i++) zmq_msg_close(&msgs[i]);
			errno = e;
			return -1;
		}
		more = zmq_msg_more(m);
		if (n < max) {
			sizes[n] = zmq_msg_size(m);
			*total += sizes[n];
			n++;
		} else {
			zmq_msg_close(m);
			(*dropped)++;
		}
	}
	if (*total <= cap) {
		size_t off = 0;
		for (int i = 0; i < n; i++) {
			if (sizes[i] > 0) memcpy(buf + off, zmq_msg_data(&msgs[i]), sizes[i]);
			off += sizes[i];
			zmq_msg_close(&msgs[i]);
		}
		*copied = 1;
	}
	return n;
}

// domo_copy copies n frames kept by domo_recv into buf and closes them.
static void domo_copy(zmq_msg_t *msgs, int n, char *buf) {
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		size_t size = zmq_msg_size(&msgs[i]);
		if (size > 0) memcpy(buf + off, zmq_msg_data(&msgs[i]), size);
		off += size;
		zmq_msg_close(&msgs[i]);
	}
}

// domo_send sends n frames, laid end to end in buf with the given sizes, as
// one multipart message. It returns 0, or -1 with errno set.
static int domo_send(void *s, char *buf, size_t *sizes, int n, int flags) {
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		int fl = flags | (i < n - 1 ? ZMQ_SNDMORE : 0);
		int rc;
		do {
			rc = zmq_send(s, buf + off, sizes[i], fl);
		} while (rc < 0 && errno == EINTR);
		if (rc < 0) return -1;
		off += sizes[i];
	}
	return 0;
}

static int domo_socket_type(void *s) {
	int type = -1;
	size_t len = sizeof type;
	if (zmq_getsockopt(s, ZMQ_TYPE, &type, &len) != 0) return -1;
	return type;
}
*/
import "C"

import (
	"fmt"
	"syscall"
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// maxParts is the most frames one message may have; the rest of a longer
// message is discarded and the receive fails with ErrTooManyFrames.
const maxParts = 256

// recvScratch is the per-socket buffer a message is first copied into.
const recvScratch = 64 << 10

// fastPath moves a whole multipart message across the cgo boundary in one
// call each way. pebbe/zmq4 makes four or five cgo calls per frame on
// receive (init, recv, copy, close, RCVMORE) and one per frame on send;
// a broker routes ~32 frames per request, so the calls dominated its
// profile. The libzmq socket pointer is read from pebbe's Socket, whose
// first field it is; newFastPath checks it by asking libzmq for the socket
// type and leaves the fast path off if the answer is wrong.
type fastPath struct {
	sock      unsafe.Pointer
	msgs      *C.zmq_msg_t // C memory: maxParts messages
	sizes     [maxParts]C.size_t
	scratch   []byte
	sendBuf   []byte
	sendSizes []C.size_t
}

func newFastPath(s *zmq.Socket, t Type) *fastPath {
	raw := *(*unsafe.Pointer)(unsafe.Pointer(s))
	if raw == nil || C.domo_socket_type(raw) != C.int(t) {
		return nil
	}
	var msg C.zmq_msg_t
	return &fastPath{
		sock:    raw,
		msgs:    (*C.zmq_msg_t)(C.calloc(maxParts, C.size_t(unsafe.Sizeof(msg)))),
		scratch: make([]byte, recvScratch),
	}
}

func (f *fastPath) free() {
	C.free(unsafe.Pointer(f.msgs))
	f.msgs = nil
}

func (f *fastPath) recv(dst [][]byte, wait bool) ([][]byte, error) {
	flags := C.int(C.ZMQ_DONTWAIT)
	if wait {
		flags = 0
	}
	var total C.size_t
	var dropped, copied C.int
	n, err := C.domo_recv(f.sock, f.msgs, maxParts, &f.sizes[0], flags,
		(*C.char)(unsafe.Pointer(&f.scratch[0])), C.size_t(len(f.scratch)), &total, &dropped, &copied)
	if n < 0 {
		return dst, mapErr(zmq.Errno(err.(syscall.Errno)))
	}
	// One allocation holds the whole message; frames are its sub-slices.
	buf := make([]byte, int(total))
	if copied != 0 {
		copy(buf, f.scratch[:total])
	} else {
		C.domo_copy(f.msgs, n, (*C.char)(unsafe.Pointer(unsafe.SliceData(buf))))
	}
	off := 0
	for i := range int(n) {
		size := int(f.sizes[i])
		dst = append(dst, buf[off:off+size:off+size])
		off += size
	}
	if dropped > 0 {
		return dst, fmt.Errorf("%w: %d frames beyond %d", ErrTooManyFrames, int(dropped), maxParts)
	}
	return dst, nil
}

// sendBufKeep is the largest send buffer kept between sends.
const sendBufKeep = 1 << 20

func (f *fastPath) send(frames [][]byte, wait bool) error {
	flags := C.int(C.ZMQ_DONTWAIT)
	if wait {
		flags = 0
	}
	if cap(f.sendBuf) > sendBufKeep {
		f.sendBuf = nil
	}
	f.sendBuf = f.sendBuf[:0]
	f.sendSizes = f.sendSizes[:0]
	for _, fr := range frames {
		f.sendBuf = append(f.sendBuf, fr...)
		f.sendSizes = append(f.sendSizes, C.size_t(len(fr)))
	}
	if len(f.sendBuf) == 0 {
		f.sendBuf = append(f.sendBuf, 0) // a valid pointer for empty frames
		f.sendBuf = f.sendBuf[:0]
	}
	rc, err := C.domo_send(f.sock, (*C.char)(unsafe.Pointer(unsafe.SliceData(f.sendBuf))),
		&f.sendSizes[0], C.int(len(frames)), flags)
	if rc < 0 {
		return mapErr(zmq.Errno(err.(syscall.Errno)))
	}
	return nil
}
