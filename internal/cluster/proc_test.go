package cluster

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a child process: a domo broker, a worker role of the test binary,
// or either inside a network namespace. Its output lines (standard output
// and standard error together) are kept for waitLine and for the log of a
// failed test. It is killed when the test ends.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd

	mu      sync.Mutex
	lines   []string
	next    int           // first line waitLine has not consumed
	changed chan struct{} // closed and replaced when lines grows or the process ends
	readers sync.WaitGroup
	done    chan struct{} // closed when the process has ended
}

// startProc starts cmd in a process group of its own, killed with the test
// binary (Pdeathsig) and, at the latest, when the test ends. A stopped
// process (SIGSTOP) is killed too: SIGKILL needs no SIGCONT.
func startProc(t testing.TB, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: cmd, changed: make(chan struct{}), done: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.readers.Add(2)
	go p.read(stdout)
	go p.read(stderr)
	go func() {
		p.readers.Wait() // Wait closes the pipes: read them to the end first
		_ = cmd.Wait()
		p.mu.Lock()
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		out := p.output()
		if strings.Contains(out, "DATA RACE") {
			t.Errorf("%s: the race detector reported a race:\n%s", name, out)
		} else if t.Failed() {
			t.Logf("%s output:\n%s", name, out)
		}
	})
	return p
}

func (p *proc) read(r io.Reader) {
	defer p.readers.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

// waitLine waits up to timeout for an output line containing want, after
// the last line an earlier waitLine returned, and returns it. It fails the
// test if the process ends or the time is up first.
func (p *proc) waitLine(timeout time.Duration, want string) string {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for ; p.next < len(p.lines); p.next++ {
			if line := p.lines[p.next]; strings.Contains(line, want) {
				p.next++
				p.mu.Unlock()
				return line
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-p.done:
			p.t.Fatalf("%s ended before printing %q", p.name, want)
		default:
		}
		select {
		case <-changed:
		case <-deadline.C:
			p.t.Fatalf("%s printed no %q within %v", p.name, want, timeout)
		}
	}
}

// linesWith returns every output line so far that starts with prefix.
func (p *proc) linesWith(prefix string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// signal sends sig to the process (not its group: a namespace's ip netns
// exec becomes the process itself).
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// kill sends SIGKILL to the process group, as a crash would, and waits for
// the process to be gone. It may be called more than once.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s survived SIGKILL for 10s", p.name)
	}
}

func (p *proc) String() string { return fmt.Sprintf("%s (pid %d)", p.name, p.cmd.Process.Pid) }
