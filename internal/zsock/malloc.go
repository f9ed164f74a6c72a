package zsock

/*
#include <malloc.h>

// domo_tune_malloc keeps the C heap from shrinking and growing by the page
// under traffic. libzmq allocates the body of every message over 33 bytes
// with malloc in one thread and frees it in another; with glibc's dynamic
// thresholds a flow of 4 KiB messages made the broker return the top of
// its heap to the kernel and fault it back in continually (sysmalloc,
// madvise and page faults were a fifth of its CPU). Memory freed is now
// kept up to 64 MiB, and the heap grows 16 MiB at a time (pages the
// kernel only backs once touched). Returns 1 where mallopt has the knobs.
static int domo_tune_malloc(void) {
#if defined(M_TRIM_THRESHOLD) && defined(M_TOP_PAD)
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_TOP_PAD, 16 << 20);
	return 1;
#else
	return 0;
#endif
}
*/
import "C"

func init() {
	C.domo_tune_malloc()
}
