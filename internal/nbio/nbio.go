// Package nbio makes the system calls of domo's socket loops that cannot
// block (a look at an epoll set with timeout 0, a read or write of a
// non-blocking descriptor) as raw system calls: one that cannot block needs
// none of the scheduler's bookkeeping around it, and that bookkeeping
// (entersyscall, as syscall.EpollWait and syscall.Read do) woke the
// runtime's sysmon thread on every call of an otherwise idle process.
package nbio

import (
	"syscall"
	"unsafe"
)

// Poll returns the events ready in the epoll set epfd, without waiting.
func Poll(epfd int, events []syscall.EpollEvent) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// Read reads from the non-blocking descriptor fd into b.
func Read(fd int, b []byte) (int, syscall.Errno) { return rw(syscall.SYS_READ, fd, b) }

// Write writes b to the non-blocking descriptor fd.
func Write(fd int, b []byte) (int, syscall.Errno) { return rw(syscall.SYS_WRITE, fd, b) }

func rw(trap uintptr, fd int, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), errno
}
