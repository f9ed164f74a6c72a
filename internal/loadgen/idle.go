package loadgen

// The idle-connection benchmark (`domo bench idle`): what a broker pays, in
// memory and CPU, for clients and workers that are connected but do nothing.
//
// Three kinds of process take part, so that each measurement is of one
// process alone:
//
//   - the broker, started by RunIdle from Config.BrokerCmd;
//   - holders, started from Config.HolderCmd, each running Hold: they open
//     their share of idle clients (each makes one call, so the broker has
//     seen it) and idle workers (registered and heartbeating, never called),
//     print a "ready" line, and stay until their stdin closes;
//   - the caller of RunIdle, which samples the broker's /proc entries before
//     and after the holders connect.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/mdp"
	"github.com/domo-framework/domo/worker"
)

// clockTicks is the unit of utime and stime in /proc/PID/stat (USER_HZ),
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// ProcSample is one reading of a process's /proc entries (Linux only).
type ProcSample struct {
	RSS     int64         // VmRSS, bytes
	RSSAnon int64         // RssAnon, bytes: heap and stacks, without mapped files
	HWM     int64         // VmHWM, bytes: peak RSS
	Threads int           // OS threads
	FDs     int           // open file descriptors
	CPU     time.Duration // utime + stime since the process started
	// ZMQCPU is the part of CPU used by libzmq's own threads (I/O and
	// reaper, named "ZMQbg/..."); the rest is Go's, including its cgo calls.
	ZMQCPU time.Duration
}

// ReadProc reads the /proc entries of process pid.
func ReadProc(pid int) (ProcSample, error) {
	var s ProcSample
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			s.RSS = n << 10 // kB
		case "RssAnon":
			s.RSSAnon = n << 10
		case "VmHWM":
			s.HWM = n << 10
		case "Threads":
			s.Threads = int(n)
		}
	}
	if _, s.CPU, err = readStat(dir + "/stat"); err != nil {
		return s, err
	}
	if tasks, err := os.ReadDir(dir + "/task"); err == nil {
		for _, t := range tasks {
			comm, cpu, err := readStat(dir + "/task/" + t.Name() + "/stat")
			if err == nil && strings.HasPrefix(comm, "ZMQbg/") {
				s.ZMQCPU += cpu
			}
		}
	}
	if fds, err := os.ReadDir(dir + "/fd"); err == nil {
		s.FDs = len(fds)
	}
	return s, nil
}

// readStat returns the command name and utime+stime of a /proc stat file.
func readStat(path string) (string, time.Duration, error) {
	stat, err := os.ReadFile(path)
	if err != nil {
		return "", 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15, the 12th and 13th after it.
	i, j := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if i < 0 || j < i {
		return "", 0, fmt.Errorf("loadgen: %s: no command name", path)
	}
	f := strings.Fields(string(stat[j+1:]))
	if len(f) < 13 {
		return "", 0, fmt.Errorf("loadgen: %s: %d fields", path, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return "", 0, fmt.Errorf("loadgen: %s: %w", path, err)
	}
	return string(stat[i+1 : j]), time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// IdleSample is a process's state at the end of a quiet window, and the CPU
// it used during the window.
type IdleSample struct {
	ProcSample
	Window  time.Duration
	CPUUsed time.Duration // CPU time used in the window
	ZMQUsed time.Duration // the part of CPUUsed used by libzmq's threads
}

// CPUPercent is the CPU used in the window as a percentage of one core.
func (s IdleSample) CPUPercent() float64 { return s.percent(s.CPUUsed) }

// ZMQPercent is the part of CPUPercent used by libzmq's threads.
func (s IdleSample) ZMQPercent() float64 { return s.percent(s.ZMQUsed) }

func (s IdleSample) percent(d time.Duration) float64 {
	if s.Window <= 0 {
		return 0
	}
	return 100 * d.Seconds() / s.Window.Seconds()
}

// SampleIdle reads process pid's /proc entries at the start and the end of
// window and returns the second reading with the CPU used between them.
func SampleIdle(ctx context.Context, pid int, window time.Duration) (IdleSample, error) {
	first, err := ReadProc(pid)
	if err != nil {
		return IdleSample{}, err
	}
	t0 := time.Now()
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return IdleSample{}, ctx.Err()
	}
	last, err := ReadProc(pid)
	if err != nil {
		return IdleSample{}, err
	}
	return IdleSample{ProcSample: last, Window: time.Since(t0), CPUUsed: last.CPU - first.CPU, ZMQUsed: last.ZMQCPU - first.ZMQCPU}, nil
}

// HoldConfig says what one holder process opens.
type HoldConfig struct {
	Broker  string // broker endpoint
	Clients int    // idle clients: each makes one mmi.service call, then waits
	Workers int    // idle workers of Service: registered, never called
	Service string // the idle workers' service; "idle" if empty
	// Heartbeat is the workers' heartbeat interval (liveness 3); the
	// worker's default, 2.5 s, if 0.
	Heartbeat time.Duration
	// ClientHeartbeat is the idle clients' probe interval (client.WithHeartbeat,
	// liveness 3); the client's default, 1 s, if 0. Every idle client probes
	// the broker with an mmi.service request once an interval.
	ClientHeartbeat time.Duration
	Timeout         time.Duration
	Logger          *slog.Logger // for the workers; nil discards
}

// Idle is a set of open idle clients and workers.
type Idle struct {
	clients []*client.Client
	workers []*worker.Worker
	wg      sync.WaitGroup
}

// Clients is how many idle clients are open (each made its call).
func (h *Idle) Clients() int { return len(h.clients) }

// Workers is how many idle workers are running.
func (h *Idle) Workers() int { return len(h.workers) }

// Close closes the clients and stops the workers.
func (h *Idle) Close() {
	for _, w := range h.workers {
		w.Close()
	}
	h.wg.Wait()
	for _, c := range h.clients {
		c.Close()
	}
}

// OpenIdle opens cfg.Clients clients, each of which makes one mmi.service
// call and then does nothing, and starts cfg.Workers workers of cfg.Service
// that register with the broker, heartbeat and are never called. It returns
// once every client's call has been answered; the workers' READY may still be
// on its way. On error, what was opened is closed.
func OpenIdle(ctx context.Context, cfg HoldConfig) (*Idle, error) {
	if cfg.Service == "" {
		cfg.Service = "idle"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &Idle{}
	// Workers first: the clients' calls then take the time their READYs
	// need to arrive.
	for range cfg.Workers {
		w := worker.New(cfg.Service, worker.WithBroker(cfg.Broker), worker.WithConcurrency(1), worker.WithLogger(cfg.Logger),
			worker.WithHeartbeat(cfg.Heartbeat, 3))
		w.HandleFunc("echo", func(_ context.Context, r *worker.Request) ([]byte, error) { return r.Payload, nil })
		h.workers = append(h.workers, w)
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			w.Run(context.Background())
		}()
	}
	for range cfg.Clients {
		opts := []client.Option{client.WithBroker(cfg.Broker), client.WithTimeout(cfg.Timeout), client.WithLogger(cfg.Logger)}
		if cfg.ClientHeartbeat > 0 {
			opts = append(opts, client.WithHeartbeat(cfg.ClientHeartbeat, 3))
		}
		c, err := client.New(opts...)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("loadgen: idle client %d: %w", len(h.clients)+1, err)
		}
		h.clients = append(h.clients, c)
	}
	// The calls run in parallel, a bounded number at a time.
	sem := make(chan struct{}, 64)
	errs := make([]error, len(h.clients))
	var wg sync.WaitGroup
	for i, c := range h.clients {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, errs[i] = c.Invoke(ctx, mdp.MMIService, []byte(cfg.Service))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		h.Close()
		return nil, fmt.Errorf("loadgen: idle clients' calls: %w", err)
	}
	return h, nil
}

// Hold is a holder process's body: it opens cfg's idle clients and workers,
// writes "ready CLIENTS WORKERS\n" to out, and keeps them open until in
// reaches EOF (the parent closed the pipe or died) or ctx ends.
func Hold(ctx context.Context, cfg HoldConfig, in io.Reader, out io.Writer) error {
	h, err := OpenIdle(ctx, cfg)
	if err != nil {
		return err
	}
	defer h.Close()
	if _, err := fmt.Fprintf(out, "ready %d %d\n", h.Clients(), h.Workers()); err != nil {
		return err
	}
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, in)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}

// IdleConfig describes one idle benchmark run.
type IdleConfig struct {
	Clients    int    // idle clients in all
	Workers    int    // idle workers in all
	PerProcess int    // clients plus workers per holder process; 2000 if 0
	Service    string // the idle workers' service; "idle" if empty
	Port       int    // broker port on 127.0.0.1; a free one if 0

	Settle  time.Duration // quiet time before each measurement; 2 s if 0
	Window  time.Duration // each CPU measurement's length; 10 s if 0
	Timeout time.Duration // bound on starting the broker and the holders; 2 min if 0

	// BrokerCmd returns the command that runs a broker bound to listen
	// ("tcp://127.0.0.1:PORT"); HolderCmd the one that runs Hold against
	// broker with the given share. RunIdle sets their stdin and stdout; a
	// holder must print Hold's ready line on stdout.
	BrokerCmd func(listen string) *exec.Cmd
	HolderCmd func(broker string, clients, workers int) *exec.Cmd

	Log io.Writer // progress lines; nil discards
}

// IdleResult is what an idle run measured.
type IdleResult struct {
	Endpoint  string
	BrokerPID int
	Holders   int // holder processes

	Before IdleSample // the broker with no connections
	After  IdleSample // the broker with the idle clients and workers

	Clients        int           // clients whose call the broker answered
	Workers        int           // workers the holders started
	BrokerWorkers  int           // workers the broker lists (mmi.workers)
	ServiceWorkers int           // workers of the idle service (mmi.services)
	ConnectTime    time.Duration // from starting the holders to all of them ready

	Holder ProcSample // the holder processes' sum (CPU: theirs during the After window)
}

// PerConn is the broker's RSS growth per idle connection, in bytes.
func (r IdleResult) PerConn() float64 {
	n := r.Clients + r.Workers
	if n == 0 {
		return 0
	}
	return float64(r.After.RSS-r.Before.RSS) / float64(n)
}

func (r IdleResult) String() string {
	var b strings.Builder
	mb := func(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }
	fmt.Fprintf(&b, "broker pid %d on %s; %d idle clients, %d idle workers in %d holder processes, connected in %v\n",
		r.BrokerPID, r.Endpoint, r.Clients, r.Workers, r.Holders, r.ConnectTime.Round(time.Millisecond))
	fmt.Fprintf(&b, "broker reports %d workers (mmi.workers), %d of service workers (mmi.services)\n", r.BrokerWorkers, r.ServiceWorkers)
	fmt.Fprintf(&b, "%-8s %10s %10s %10s %8s %6s %10s %10s\n", "broker", "VmRSS", "RssAnon", "VmHWM", "threads", "fds", "idle CPU", "(libzmq)")
	for _, x := range []struct {
		name string
		s    IdleSample
	}{{"before", r.Before}, {"after", r.After}} {
		fmt.Fprintf(&b, "%-8s %10s %10s %10s %8d %6d %9.2f%% %9.2f%%\n", x.name, mb(x.s.RSS), mb(x.s.RSSAnon), mb(x.s.HWM),
			x.s.Threads, x.s.FDs, x.s.CPUPercent(), x.s.ZMQPercent())
	}
	fmt.Fprintf(&b, "delta: VmRSS %+.1f MB (%.1f KB per connection), idle CPU %+.2f%% of one core over %v\n",
		float64(r.After.RSS-r.Before.RSS)/(1<<20), r.PerConn()/1024, r.After.CPUPercent()-r.Before.CPUPercent(),
		r.After.Window.Round(100*time.Millisecond))
	if r.Holders > 0 {
		fmt.Fprintf(&b, "holders (sum): VmRSS %s, %d threads, %d fds, CPU %.2f%% of one core during the window",
			mb(r.Holder.RSS), r.Holder.Threads, r.Holder.FDs, 100*r.Holder.CPU.Seconds()/r.After.Window.Seconds())
	}
	return b.String()
}

// proc is a child process of RunIdle.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string   // stdout lines (holders)
	done  chan struct{} // closed when Wait has returned
	err   error         // Wait's result, set before done closes
}

// start starts cmd with a stdin pipe (closed to stop a holder) and, when
// lines is wanted, its stdout read line by line.
func start(name string, cmd *exec.Cmd, lines bool) (*proc, error) {
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	var stdout io.ReadCloser
	if lines {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
		p.lines = make(chan string, 16)
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: start %s: %w", name, err)
	}
	var reading sync.WaitGroup
	if lines {
		reading.Add(1)
		go func() {
			defer reading.Done()
			defer close(p.lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				p.lines <- sc.Text()
			}
		}()
	}
	go func() {
		reading.Wait() // Wait closes stdout: read it to the end first
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop asks the process to stop (a holder: stdin closed; then, or at once
// for the broker, SIGINT), and kills it if it has not exited within grace.
func (p *proc) stop(grace time.Duration) {
	p.stdin.Close()
	if p.lines != nil {
		select {
		case <-p.done:
			return
		case <-time.After(grace / 2):
		}
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return
	case <-time.After(grace / 2):
	}
	p.cmd.Process.Kill()
	<-p.done
}

// exited returns an error describing the process's exit if it has exited,
// nil while it runs.
func (p *proc) exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return fmt.Errorf("loadgen: %s exited", p.name)
		}
		return fmt.Errorf("loadgen: %s: %w", p.name, p.err)
	default:
		return nil
	}
}

// RunIdle starts a broker process, measures it idle, starts holder processes
// with cfg.Clients idle clients and cfg.Workers idle workers, checks that the
// broker has them, measures it again, and stops every process it started.
// It blocks for about twice cfg.Settle plus cfg.Window, plus the time to
// connect.
func RunIdle(ctx context.Context, cfg IdleConfig) (IdleResult, error) {
	var res IdleResult
	if cfg.Clients < 0 || cfg.Workers < 0 || cfg.BrokerCmd == nil || cfg.HolderCmd == nil {
		return res, errors.New("loadgen: idle: negative counts or missing commands")
	}
	if cfg.PerProcess <= 0 {
		cfg.PerProcess = 2000
	}
	if cfg.Service == "" {
		cfg.Service = "idle"
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Second
	}
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	logf := func(format string, args ...any) { fmt.Fprintf(logw, "idle: "+format+"\n", args...) }

	port := cfg.Port
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return res, err
		}
	}
	res.Endpoint = fmt.Sprintf("tcp://127.0.0.1:%d", port)
	b, err := start("broker", cfg.BrokerCmd(res.Endpoint), false)
	if err != nil {
		return res, err
	}
	defer b.stop(10 * time.Second)
	res.BrokerPID = b.cmd.Process.Pid
	logf("broker pid %d on %s", res.BrokerPID, res.Endpoint)

	// The broker is up when it answers a query; a client connecting before
	// the bind retries by itself.
	q, err := client.New(client.WithBroker(res.Endpoint), client.WithTimeout(cfg.Timeout))
	if err != nil {
		return res, err
	}
	query := func() ([]mdp.ServiceInfo, []mdp.WorkerInfo, error) {
		qctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		svcs, err := q.Services(qctx)
		if err != nil {
			return nil, nil, err
		}
		p, err := q.Invoke(qctx, mdp.MMIWorkers, nil)
		if err != nil {
			return nil, nil, err
		}
		var ws []mdp.WorkerInfo
		return svcs, ws, json.Unmarshal(p, &ws)
	}
	if _, _, err := query(); err != nil {
		q.Close()
		if e := b.exited(); e != nil {
			return res, e
		}
		return res, fmt.Errorf("loadgen: broker not answering: %w", err)
	}
	// The query client is closed before each measurement and reopened to
	// check the counts, so that it is not one of the connections measured.
	q.Close()

	if err := sleep(ctx, cfg.Settle); err != nil {
		return res, err
	}
	logf("measuring the broker idle for %v", cfg.Window)
	if res.Before, err = SampleIdle(ctx, res.BrokerPID, cfg.Window); err != nil {
		return res, err
	}

	// Holders: the connections split evenly over as many processes as
	// PerProcess requires.
	total := cfg.Clients + cfg.Workers
	n := (total + cfg.PerProcess - 1) / cfg.PerProcess
	var holders []*proc
	defer func() {
		var wg sync.WaitGroup
		for _, h := range holders {
			wg.Add(1)
			go func() { defer wg.Done(); h.stop(10 * time.Second) }()
		}
		wg.Wait()
	}()
	t0 := time.Now()
	for i := range n {
		c := share(cfg.Clients, n, i)
		w := share(cfg.Workers, n, i)
		h, err := start(fmt.Sprintf("holder %d", i+1), cfg.HolderCmd(res.Endpoint, c, w), true)
		if err != nil {
			return res, err
		}
		holders = append(holders, h)
	}
	res.Holders = len(holders)
	logf("%d holder processes opening %d clients and %d workers", n, cfg.Clients, cfg.Workers)
	deadline := time.After(cfg.Timeout)
	for _, h := range holders {
		var line string
		var ok bool
		select {
		case line, ok = <-h.lines:
		case <-deadline:
			return res, fmt.Errorf("loadgen: %s not ready within %v", h.name, cfg.Timeout)
		case <-ctx.Done():
			return res, ctx.Err()
		}
		if !ok {
			<-h.done
			return res, fmt.Errorf("loadgen: not ready: %w", h.exited())
		}
		var c, w int
		if _, err := fmt.Sscanf(line, "ready %d %d", &c, &w); err != nil {
			return res, fmt.Errorf("loadgen: %s said %q", h.name, line)
		}
		res.Clients += c
		res.Workers += w
	}
	res.ConnectTime = time.Since(t0)
	logf("all connected in %v", res.ConnectTime.Round(time.Millisecond))

	// The broker must list every worker: READYs may still be arriving.
	q, err = client.New(client.WithBroker(res.Endpoint), client.WithTimeout(cfg.Timeout))
	if err != nil {
		return res, err
	}
	for {
		svcs, ws, err := query()
		if err != nil {
			q.Close()
			return res, fmt.Errorf("loadgen: broker query: %w", err)
		}
		res.BrokerWorkers, res.ServiceWorkers = len(ws), 0
		for _, s := range svcs {
			if s.Name == cfg.Service {
				res.ServiceWorkers = s.Workers
			}
		}
		if res.BrokerWorkers >= res.Workers && res.ServiceWorkers >= res.Workers {
			break
		}
		select {
		case <-deadline:
			q.Close()
			return res, fmt.Errorf("loadgen: broker lists %d workers, %d of service %s; want %d",
				res.BrokerWorkers, res.ServiceWorkers, cfg.Service, res.Workers)
		case <-ctx.Done():
			q.Close()
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	q.Close()

	if err := sleep(ctx, cfg.Settle); err != nil {
		return res, err
	}
	logf("measuring the broker with %d clients and %d workers for %v", res.Clients, res.Workers, cfg.Window)
	hold0 := sumProcs(holders)
	if res.After, err = SampleIdle(ctx, res.BrokerPID, cfg.Window); err != nil {
		return res, err
	}
	res.Holder = sumProcs(holders)
	res.Holder.CPU -= hold0.CPU
	for _, h := range holders {
		if err := h.exited(); err != nil {
			return res, err // a holder died during the window: the counts are off
		}
	}
	if err := b.exited(); err != nil {
		return res, err
	}
	return res, nil
}

// sumProcs adds up the holders' /proc readings, skipping unreadable ones.
func sumProcs(ps []*proc) ProcSample {
	var sum ProcSample
	for _, p := range ps {
		s, err := ReadProc(p.cmd.Process.Pid)
		if err != nil {
			continue
		}
		sum.RSS += s.RSS
		sum.RSSAnon += s.RSSAnon
		sum.HWM += s.HWM
		sum.Threads += s.Threads
		sum.FDs += s.FDs
		sum.CPU += s.CPU
	}
	return sum
}

// share is part i of n of total, split as evenly as possible.
func share(total, n, i int) int {
	s := total / n
	if i < total%n {
		s++
	}
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("loadgen: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
