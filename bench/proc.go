package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux this runs on).
const clockTicks = 100

// cpuSeconds returns a process's user+system CPU time from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat of %d: no ')'", pid)
	}
	// After ") " come fields 3 (state) onwards; utime and stime are 14 and 15.
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat of %d: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat of %d: utime %q stime %q", pid, f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// peakRSSKiB returns VmHWM, a process's peak resident set, from /proc/PID/status.
func peakRSSKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("status of %d: no VmHWM", pid)
}

// proc is a process the harness started. Every proc is stopped by stop or,
// should the harness die, by SIGKILL (Pdeathsig).
type proc struct {
	name  string
	cmd   *exec.Cmd
	lines chan string // stdout, line by line, when captured
	done  chan struct{}
	err   error
	once  sync.Once
}

// startProc starts name with args. Its stderr goes to the harness's stderr,
// prefixed; its stdout is delivered on p.lines.
func startProc(name string, args ...string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{name: shortName(name, args), cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody listens any more: drop
			}
		}
		close(p.lines)
	}()
	go func() {
		defer wg.Done()
		prefix(os.Stderr, stderr, p.name)
	}()
	go func() {
		wg.Wait()
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func shortName(name string, args []string) string {
	n := name[strings.LastIndexByte(name, '/')+1:]
	for i, a := range args {
		if a == "-role" && i+1 < len(args) {
			return n + " " + args[i+1]
		}
	}
	return n
}

func prefix(w io.Writer, r io.Reader, name string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fmt.Fprintf(w, "  [%s] %s\n", name, sc.Text())
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// waitLine waits for a stdout line starting with want and returns it.
func (p *proc) waitLine(want string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				return "", fmt.Errorf("%s exited before saying %q: %v", p.name, want, p.err)
			}
			if strings.HasPrefix(l, want) {
				return l, nil
			}
		case <-t.C:
			return "", fmt.Errorf("%s did not say %q within %v", p.name, want, timeout)
		}
	}
}

// stop asks the process to end (SIGINT), then kills it after grace, and waits.
func (p *proc) stop(grace time.Duration) {
	p.once.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}
