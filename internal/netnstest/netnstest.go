// Package netnstest runs parts of a test in Linux network namespaces joined
// by a private bridge, so that multicast, several "hosts" and real network
// addresses can be tested on one machine without a packet leaving it.
//
// Each Host is a namespace with its own loopback and one interface, eth0,
// on the subnet 10.213.0.0/24; the bridge joining them lives in a namespace
// of its own. Nothing is created in, or changed in, the machine's own
// network namespace. Everything is deleted when the test ends, failed or
// not; namespaces left by a test binary that was killed are deleted by the
// next New.
//
// Code runs in a host as a helper process: the test binary itself,
// re-executed with `ip netns exec` and an environment variable naming a
// role. The test package routes such runs from its TestMain:
//
//	func TestMain(m *testing.M) {
//		netnstest.Main(m, map[string]netnstest.Role{
//			"listen": func(ctx context.Context, args []string) error { ... },
//		})
//	}
//
//	func TestAcross(t *testing.T) {
//		n := netnstest.New(t, 2) // skips if namespaces cannot be made
//		p := n.Hosts[1].Start(t, "listen", "arg")
//		line, err := p.WaitLine(5*time.Second, func(l string) bool { return strings.HasPrefix(l, "ready") })
//	}
//
// New needs Linux, the ip command (Debian's iproute2) and CAP_NET_ADMIN
// (root); without them it skips the test with the reason.
package netnstest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// roleEnv names the environment variable that tells a re-executed test
// binary which role to play.
const roleEnv = "DOMO_NETNSTEST_ROLE"

// namePrefix starts the name of every namespace this package makes; the
// creating process's id follows, so stale ones can be recognised.
const namePrefix = "domont"

// Subnet is the private subnet of every Net; Host i has the address
// 10.213.0.(i+2). Nets are isolated from each other, so they share it.
const Subnet = "10.213.0.0/24"

// Role is code a helper process runs in a host. It gets the arguments given
// to Start, and a context cancelled when the process receives SIGTERM or
// SIGINT. Its error (other than the context's) makes the process exit 1.
type Role func(ctx context.Context, args []string) error

// Main runs a helper process's role if this process is one, and exits;
// otherwise it runs the tests with m.Run and exits with its code. Call it
// from TestMain. It does not return.
func Main(m *testing.M, roles map[string]Role) {
	name, ok := os.LookupEnv(roleEnv)
	if !ok {
		os.Exit(m.Run())
	}
	role, ok := roles[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "netnstest: no role %q\n", name)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := role(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "netnstest: role %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Net is a set of hosts (network namespaces) joined by a bridge.
type Net struct {
	Hosts  []*Host
	bridge string
}

// Host is one network namespace of a Net.
type Host struct {
	Name  string // the namespace's name, for ip netns exec
	Iface string // its interface on the bridge: "eth0"
	IP    string // its address on that interface, e.g. 10.213.0.2
}

var seq atomic.Int64

// New makes n hosts joined by a bridge and deletes them when the test ends.
// It skips the test, saying why, where namespaces cannot be made. It is
// safe from several goroutines (parallel tests get separate Nets). It
// blocks while the ip commands run.
func New(t testing.TB, n int) *Net {
	t.Helper()
	if n < 1 || n > 200 {
		t.Fatalf("netnstest.New: %d hosts; want 1 to 200", n)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netnstest: skipped: the ip command is missing (apt-get install iproute2)")
	}
	sweep()
	prefix := fmt.Sprintf("%s%d-%d-", namePrefix, os.Getpid(), seq.Add(1))
	net := &Net{bridge: prefix + "br"}
	if out, err := ipCmd("netns", "add", net.bridge); err != nil {
		t.Skipf("netnstest: skipped: cannot create a network namespace (needs Linux, root or CAP_NET_ADMIN): %v: %s", err, out)
	}
	// Registered before anything else is made, so a failure below still
	// deletes what exists. Deleting a namespace deletes its interfaces,
	// and each veth pair goes with either end.
	t.Cleanup(func() {
		for _, h := range net.Hosts {
			if out, err := ipCmd("netns", "del", h.Name); err != nil {
				t.Errorf("netnstest: delete namespace %s: %v: %s", h.Name, err, out)
			}
		}
		if out, err := ipCmd("netns", "del", net.bridge); err != nil {
			t.Errorf("netnstest: delete namespace %s: %v: %s", net.bridge, err, out)
		}
	})
	must := func(args ...string) {
		t.Helper()
		if out, err := ipCmd(args...); err != nil {
			t.Fatalf("netnstest: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// Snooping off: the bridge floods multicast to every port, as a plain
	// switch does, with no IGMP querier needed.
	must("-n", net.bridge, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	must("-n", net.bridge, "link", "set", "br0", "up")
	for i := 0; i < n; i++ {
		h := &Host{Name: fmt.Sprintf("%sh%d", prefix, i), Iface: "eth0", IP: fmt.Sprintf("10.213.0.%d", i+2)}
		if out, err := ipCmd("netns", "add", h.Name); err != nil {
			t.Fatalf("netnstest: ip netns add %s: %v: %s", h.Name, err, out)
		}
		net.Hosts = append(net.Hosts, h)
		port := fmt.Sprintf("v%d", i)
		// Both ends are created inside namespaces (ip -n), never in the
		// machine's own.
		must("-n", net.bridge, "link", "add", port, "type", "veth", "peer", "name", h.Iface, "netns", h.Name)
		must("-n", net.bridge, "link", "set", port, "master", "br0", "up")
		must("-n", h.Name, "link", "set", "lo", "up")
		must("-n", h.Name, "addr", "add", h.IP+"/24", "dev", h.Iface)
		must("-n", h.Name, "link", "set", h.Iface, "multicast", "on", "up")
	}
	return net
}

// ipCmd runs the ip command and returns its combined output.
func ipCmd(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "ip", args...).CombinedOutput()
}

// sweep deletes the namespaces of test processes that no longer run (a
// test binary killed before its cleanup).
func sweep() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, namePrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_, _ = ipCmd("netns", "del", name)
		}
	}
}

// Command returns a command that runs name with args in the host's
// namespace. It does not start it.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// Start runs the test binary in the host as a helper process playing role
// (see Main) with args. The process is stopped (SIGTERM, then SIGKILL after
// two seconds) when the test ends, and its output logged if the test
// failed. It does not block.
func (h *Host) Start(t testing.TB, role string, args ...string) *Process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	p := &Process{name: h.Name + "/" + role, changed: make(chan struct{}), done: make(chan struct{})}
	p.cmd = h.Command(context.Background(), exe, args...)
	p.cmd.Env = append(os.Environ(), roleEnv+"="+role)
	// Its own process group, so a stop reaches anything it starts; killed
	// if this process dies first.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("netnstest: start %s: %v", p.name, err)
	}
	go p.read(stdout)
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("netnstest: %s output:\n%s", p.name, p.Output())
		}
	})
	return p
}

// Process is a helper process started by Host.Start.
type Process struct {
	name    string
	cmd     *exec.Cmd
	stderr  syncBuffer
	mu      sync.Mutex
	lines   []string      // stdout lines so far
	next    int           // first line WaitLine has not consumed
	changed chan struct{} // closed and replaced when lines grows or the process ends
	done    chan struct{} // closed when the process has ended
	err     error         // its exit status, once done
	stop    sync.Once
}

func (p *Process) read(stdout interface{ Read([]byte) (int, error) }) {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	p.err = err
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	close(p.done)
}

// WaitLine waits up to timeout for a line of the process's standard output
// for which match is true, looking only at lines after the last one an
// earlier WaitLine returned, and returns it. It fails if the process ends
// or the time is up first. It blocks; it is safe from several goroutines.
func (p *Process) WaitLine(timeout time.Duration, match func(line string) bool) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for ; p.next < len(p.lines); p.next++ {
			if line := p.lines[p.next]; match(line) {
				p.next++
				p.mu.Unlock()
				return line, nil
			}
		}
		changed := p.changed
		select {
		case <-p.done:
			p.mu.Unlock()
			return "", fmt.Errorf("netnstest: %s ended (%v) before the line expected", p.name, p.err)
		default:
		}
		p.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return "", fmt.Errorf("netnstest: %s: no line expected within %v", p.name, timeout)
		}
	}
}

// Output returns all the process has written so far, standard output then
// standard error. It is safe from several goroutines.
func (p *Process) Output() string {
	p.mu.Lock()
	out := strings.Join(p.lines, "\n")
	p.mu.Unlock()
	return out + "\n--- stderr:\n" + p.stderr.String()
}

// Kill ends the process at once with SIGKILL, as a crash would, and waits
// for it. It is idempotent and safe from several goroutines.
func (p *Process) Kill() {
	p.stop.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	})
	<-p.done
}

// Stop ends the process gracefully with SIGTERM, then SIGKILL if it has
// not exited after two seconds, and waits for it. It is idempotent and
// safe from several goroutines.
func (p *Process) Stop() {
	p.stop.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	<-p.done
}

// Done returns a channel closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns the process's exit status once it has ended (nil for exit
// status 0), and nil before. It is safe from several goroutines.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// syncBuffer is a bytes.Buffer safe from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
