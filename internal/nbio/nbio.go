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
	return Wait(epfd, events, 0)
}

// MaxRawWait is the longest wait, in milliseconds, that Wait makes as a raw
// system call.
const MaxRawWait = 5

// Wait returns the events ready in the epoll set epfd, waiting up to ms
// milliseconds (forever if negative) for one. A wait of up to MaxRawWait is
// a raw system call: the thread keeps its P (Go's right to run code)
// meanwhile, which only a dedicated thread should do, and no longer than
// the runtime would leave it be (sysmon takes back a P after 10 ms in a
// system call, and preempts a goroutine after 10 ms running). A signal (the
// runtime's preemption among them) ends the wait early with EINTR. A longer
// wait tells the scheduler, as syscall.EpollWait does.
func Wait(epfd int, events []syscall.EpollEvent, ms int) (int, syscall.Errno) {
	if ms < 0 || ms > MaxRawWait {
		n, err := syscall.EpollWait(epfd, events, ms)
		if err != nil {
			return 0, err.(syscall.Errno)
		}
		return n, 0
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(ms), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// Modify sets the events epoll set epfd watches fd for (EPOLL_CTL_MOD).
func Modify(epfd, fd int, events uint32) syscall.Errno {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
	_, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), syscall.EPOLL_CTL_MOD, uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	return errno
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
