package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

type harness struct {
	k, concurrency   int
	duration, warmup time.Duration
	rounds           int
	quick            bool
	out              string
	domoBin, repo    string
	systems          string
	rows             string

	self     string // this binary, for the roles
	natsBin  string
	tmp      string
	mu       sync.Mutex
	running  map[*proc]bool
	canceled bool
}

// row is one line of the grid.
type row struct {
	Pipelined bool
	Size      int
	Clients   int
}

func (r row) inflight() int {
	if r.Pipelined {
		return 32
	}
	return 1
}

func (r row) String() string {
	mode := "sync"
	if r.Pipelined {
		mode = "pipelined"
	}
	return fmt.Sprintf("%s %s M=%d", mode, bodyName(r.Size), r.Clients)
}

func bodyName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// parseRows reads -rows: MODE/BYTES/CLIENTS,... e.g. sync/64/1,pipelined/4096/64.
func parseRows(spec string) ([]row, error) {
	var g []row
	for item := range strings.SplitSeq(spec, ",") {
		f := strings.Split(strings.TrimSpace(item), "/")
		if len(f) != 3 || (f[0] != "sync" && f[0] != "pipelined") {
			return nil, fmt.Errorf("-rows: %q is not MODE/BYTES/CLIENTS (MODE sync or pipelined)", item)
		}
		size, err1 := strconv.Atoi(f[1])
		m, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || size <= 0 || m <= 0 {
			return nil, fmt.Errorf("-rows: %q: bytes and clients must be positive numbers", item)
		}
		g = append(g, row{f[0] == "pipelined", size, m})
	}
	return g, nil
}

func (h *harness) grid() []row {
	if h.rows != "" {
		g, _ := parseRows(h.rows) // checked in run
		return g
	}
	if h.quick {
		return []row{{false, 64, 1}, {true, 64, 8}, {true, 4096, 64}}
	}
	var g []row
	for _, p := range []bool{false, true} {
		for _, size := range []int{64, 4096} {
			for _, m := range []int{1, 8, 64} {
				g = append(g, row{p, size, m})
			}
		}
	}
	return g
}

var systemNames = map[string]string{
	"domo":  "domo",
	"nats":  "NATS",
	"relay": "Go TCP relay",
	"zmq":   "libzmq echo",
	"mdp":   "plain MDP via domo",
}

func (h *harness) run() error {
	if h.quick {
		h.duration, h.rounds = time.Second, 1
	}
	systems := strings.Split(h.systems, ",")
	for _, s := range systems {
		if _, ok := systemNames[s]; !ok {
			return fmt.Errorf("unknown system %q (domo, nats, relay, zmq, mdp)", s)
		}
	}
	if h.rows != "" {
		if _, err := parseRows(h.rows); err != nil {
			return err
		}
	}
	var err error
	if h.self, err = os.Executable(); err != nil {
		return err
	}
	if h.tmp, err = os.MkdirTemp("", "domo-compare-"); err != nil {
		return err
	}
	defer os.RemoveAll(h.tmp)
	h.running = map[*proc]bool{}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { // on ^C, stop everything started, then leave
		<-ctx.Done()
		h.mu.Lock()
		h.canceled = true
		h.mu.Unlock()
		h.stopAll()
	}()
	defer h.stopAll()
	if slices.Contains(systems, "domo") || slices.Contains(systems, "mdp") {
		if err := h.buildDomo(); err != nil {
			return err
		}
	}
	if slices.Contains(systems, "nats") {
		if err := h.findNATS(); err != nil {
			return err
		}
	}

	grid := h.grid()
	results := map[string][]loadResult{} // row|system -> one per round
	start := time.Now()
	fmt.Fprintf(os.Stderr, "compare: %d rows x %d systems x %d rounds, %v + %v warm-up per cell\n",
		len(grid), len(systems), h.rounds, h.duration, h.warmup)
	for round := range h.rounds {
		for i, r := range grid {
			// Rotate the order so no system always runs first after a switch.
			order := slices.Clone(systems)
			shift := (round + i) % len(order)
			order = append(order[shift:], order[:shift]...)
			for _, s := range order {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				res, err := h.cell(s, r)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", s, r, err)
				}
				key := r.String() + "|" + s
				results[key] = append(results[key], res)
				fmt.Fprintf(os.Stderr, "round %d  %-26s %-13s %10.0f req/s  p50 %7.0fµs p99 %7.0fµs  errors %d\n",
					round+1, r, systemNames[s], res.rate(), res.P50, res.P99, res.Errors)
			}
		}
	}
	report := h.report(grid, systems, results, time.Since(start))
	fmt.Print(report)
	if h.out != "" {
		return os.WriteFile(h.out, []byte(report), 0o644)
	}
	return nil
}

func (h *harness) buildDomo() error {
	if h.domoBin != "" {
		return nil
	}
	h.domoBin = filepath.Join(h.tmp, "domo")
	fmt.Fprintf(os.Stderr, "compare: go build -o %s ./cmd/domo (in %s)\n", h.domoBin, h.repo)
	cmd := exec.Command("go", "build", "-o", h.domoBin, "./cmd/domo")
	cmd.Dir = h.repo
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// findNATS finds Debian's nats-server, installing it with apt if missing.
func (h *harness) findNATS() error {
	look := func() bool {
		if p, err := exec.LookPath("nats-server"); err == nil {
			h.natsBin = p
			return true
		}
		for _, p := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server"} {
			if _, err := os.Stat(p); err == nil {
				h.natsBin = p
				return true
			}
		}
		return false
	}
	if look() {
		return nil
	}
	fmt.Fprintln(os.Stderr, "compare: nats-server not found; installing Debian's package")
	sudo := []string{}
	if os.Geteuid() != 0 {
		sudo = []string{"sudo"}
	}
	for _, args := range [][]string{
		{"apt-get", "update"},
		{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "nats-server"},
	} {
		args = append(slices.Clone(sudo), args...)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
		}
	}
	if !look() {
		return fmt.Errorf("nats-server still not found after apt-get install")
	}
	return nil
}

func (h *harness) start(name string, args ...string) (*proc, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.canceled {
		return nil, fmt.Errorf("canceled")
	}
	p, err := startProc(name, args...)
	if err != nil {
		return nil, err
	}
	h.running[p] = true
	return p, nil
}

func (h *harness) stop(p *proc) {
	p.stop(3 * time.Second)
	h.mu.Lock()
	delete(h.running, p)
	h.mu.Unlock()
}

func (h *harness) stopAll() {
	h.mu.Lock()
	ps := make([]*proc, 0, len(h.running))
	for p := range h.running {
		ps = append(ps, p)
	}
	h.mu.Unlock()
	for _, p := range ps {
		h.stop(p)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitPort(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %v: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cell starts system s fresh, drives row r through it from a load process,
// and stops everything it started.
func (h *harness) cell(s string, r row) (loadResult, error) {
	var started []*proc
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			h.stop(started[i])
		}
	}()
	launch := func(name string, args ...string) (*proc, error) {
		p, err := h.start(name, args...)
		if err == nil {
			started = append(started, p)
		}
		return p, err
	}
	self := func(role string, args ...string) (*proc, error) {
		return launch(h.self, append([]string{"-role", role, "-k", strconv.Itoa(h.k)}, args...)...)
	}
	var addr string
	brokerPID := 0
	switch s {
	case "domo", "mdp":
		port, err := freePort()
		if err != nil {
			return loadResult{}, err
		}
		addr = fmt.Sprintf("tcp://127.0.0.1:%d", port)
		b, err := launch(h.domoBin, "broker", "--listen", addr, "--log-level", "warn")
		if err != nil {
			return loadResult{}, err
		}
		brokerPID = b.pid()
		if err := waitPort(fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second); err != nil {
			return loadResult{}, err
		}
		role := "domo-server"
		if s == "mdp" {
			role = "mdp-workers"
		}
		w, err := self(role, "-addr", addr, "-concurrency", strconv.Itoa(h.concurrency))
		if err != nil {
			return loadResult{}, err
		}
		if _, err := w.waitLine("ready", 30*time.Second); err != nil {
			return loadResult{}, err
		}
	case "nats":
		port, err := freePort()
		if err != nil {
			return loadResult{}, err
		}
		b, err := launch(h.natsBin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-l", filepath.Join(h.tmp, "nats.log"))
		if err != nil {
			return loadResult{}, err
		}
		brokerPID = b.pid()
		if err := waitPort(fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second); err != nil {
			return loadResult{}, err
		}
		addr = fmt.Sprintf("nats://127.0.0.1:%d", port)
		w, err := self("nats-server", "-addr", addr)
		if err != nil {
			return loadResult{}, err
		}
		if _, err := w.waitLine("ready", 30*time.Second); err != nil {
			return loadResult{}, err
		}
	case "relay":
		b, err := self("relay")
		if err != nil {
			return loadResult{}, err
		}
		brokerPID = b.pid()
		l, err := b.waitLine("listen ", 10*time.Second)
		if err != nil {
			return loadResult{}, err
		}
		f := strings.Fields(l)
		addr = f[1]
		w, err := self("tcp-echo", "-addr", f[2])
		if err != nil {
			return loadResult{}, err
		}
		if _, err := w.waitLine("ready", 10*time.Second); err != nil {
			return loadResult{}, err
		}
		if _, err := b.waitLine("ready", 10*time.Second); err != nil {
			return loadResult{}, err
		}
	case "zmq":
		w, err := self("zmq-echo")
		if err != nil {
			return loadResult{}, err
		}
		l, err := w.waitLine("ready ", 10*time.Second)
		if err != nil {
			return loadResult{}, err
		}
		addr = strings.Fields(l)[1]
	}
	ld, err := self("load", "-system", s, "-addr", addr,
		"-clients", strconv.Itoa(r.Clients), "-inflight", strconv.Itoa(r.inflight()), "-size", strconv.Itoa(r.Size),
		"-warmup", h.warmup.String(), "-duration", h.duration.String(), "-broker-pid", strconv.Itoa(brokerPID))
	if err != nil {
		return loadResult{}, err
	}
	line, err := ld.waitLine("{", h.warmup+h.duration+60*time.Second)
	if err != nil {
		return loadResult{}, err
	}
	var res loadResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return res, fmt.Errorf("load result %q: %w", line, err)
	}
	return res, nil
}

// median returns, field by field, the median over rounds (the mean of the
// middle two for an even count).
func median(rs []loadResult) loadResult {
	f := func(get func(loadResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		slices.Sort(v)
		n := len(v)
		if n == 0 {
			return 0
		}
		if n%2 == 1 {
			return v[n/2]
		}
		return (v[n/2-1] + v[n/2]) / 2
	}
	var m loadResult
	m.Seconds = 1
	m.Requests = int64(f(loadResult.rate))
	m.P50 = f(func(r loadResult) float64 { return r.P50 })
	m.P99 = f(func(r loadResult) float64 { return r.P99 })
	m.P999 = f(func(r loadResult) float64 { return r.P999 })
	m.BrokerCPU = f(func(r loadResult) float64 { return r.BrokerCPU / r.Seconds })
	m.BrokerHWM = int64(f(func(r loadResult) float64 { return float64(r.BrokerHWM) }))
	for _, r := range rs {
		m.Errors += r.Errors
	}
	return m
}

func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtLat(us float64) string {
	switch {
	case us >= 10000:
		return fmt.Sprintf("%.0f ms", us/1000)
	case us >= 1000:
		return fmt.Sprintf("%.1f ms", us/1000)
	}
	return fmt.Sprintf("%.0f µs", us)
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func (h *harness) report(grid []row, systems []string, results map[string][]loadResult, took time.Duration) string {
	var b strings.Builder
	med := func(r row, s string) (loadResult, bool) {
		rs, ok := results[r.String()+"|"+s]
		if !ok {
			return loadResult{}, false
		}
		return median(rs), true
	}
	fmt.Fprintf(&b, "Run %s, %s. Command: `%s`\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), took.Round(time.Second), h.command())
	fmt.Fprintf(&b, "Machine: %s\n\n", machine())
	fmt.Fprintf(&b, "K=%d echo workers/responders, %v measured per cell after %v warm-up, median of %d round(s); sync = 1 request in flight per client, pipelined = 32.\n\n",
		h.k, h.duration, h.warmup, h.rounds)
	// The summary: requests/s and the ratios.
	b.WriteString("| mode | body | M |")
	for _, s := range systems {
		fmt.Fprintf(&b, " %s req/s |", systemNames[s])
	}
	// The ratios are domo's, or plain MDP's through the domo broker when
	// domo itself did not run.
	subject, label := "domo", "domo"
	if !slices.Contains(systems, "domo") && slices.Contains(systems, "mdp") {
		subject, label = "mdp", "MDP"
	}
	fmt.Fprintf(&b, " %[1]s/NATS | %[1]s/relay | %[1]s/zmq |\n|---|---|---|", label)
	for range systems {
		b.WriteString("---:|")
	}
	b.WriteString("---:|---:|---:|\n")
	for _, r := range grid {
		mode := "sync"
		if r.Pipelined {
			mode = "pipelined"
		}
		fmt.Fprintf(&b, "| %s | %s | %d |", mode, bodyName(r.Size), r.Clients)
		rate := map[string]float64{}
		for _, s := range systems {
			m, _ := med(r, s)
			rate[s] = m.rate()
			fmt.Fprintf(&b, " %s |", fmtRate(rate[s]))
		}
		fmt.Fprintf(&b, " %s | %s | %s |\n", ratio(rate[subject], rate["nats"]), ratio(rate[subject], rate["relay"]), ratio(rate[subject], rate["zmq"]))
	}
	// The details.
	b.WriteString("\nPer system: latency percentiles; the broker process's CPU (seconds of CPU per second of load, and per request) and peak RSS (VmHWM). The libzmq echo has no broker.\n\n")
	b.WriteString("| mode | body | M | system | req/s | p50 | p99 | p99.9 | broker CPU s/s | broker CPU µs/req | broker peak RSS | errors |\n")
	b.WriteString("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range grid {
		mode := "sync"
		if r.Pipelined {
			mode = "pipelined"
		}
		for _, s := range systems {
			m, ok := med(r, s)
			if !ok {
				continue
			}
			cpu, per, rss := "–", "–", "–"
			if s != "zmq" {
				cpu = fmt.Sprintf("%.2f", m.BrokerCPU)
				if m.rate() > 0 {
					per = fmt.Sprintf("%.1f", m.BrokerCPU/m.rate()*1e6)
				}
				rss = fmt.Sprintf("%.0f MiB", float64(m.BrokerHWM)/1024)
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n",
				mode, bodyName(r.Size), r.Clients, systemNames[s], fmtRate(m.rate()),
				fmtLat(m.P50), fmtLat(m.P99), fmtLat(m.P999), cpu, per, rss, m.Errors)
		}
	}
	return b.String()
}

func (h *harness) command() string {
	args := []string{"make compare"}
	var extra []string
	if h.quick {
		extra = append(extra, "-quick")
	}
	if !h.quick && h.duration != 3*time.Second {
		extra = append(extra, "-duration "+h.duration.String())
	}
	if !h.quick && h.rounds != 2 {
		extra = append(extra, fmt.Sprintf("-rounds %d", h.rounds))
	}
	if h.k != 2 {
		extra = append(extra, fmt.Sprintf("-k %d", h.k))
	}
	if h.rows != "" {
		extra = append(extra, "-rows "+h.rows)
	}
	if h.systems != "domo,nats,relay,zmq" {
		extra = append(extra, "-systems "+h.systems)
	}
	if len(extra) > 0 {
		args = append(args, "COMPARE_FLAGS='"+strings.Join(extra, " ")+"'")
	}
	return strings.Join(args, " ")
}

func machine() string {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				mem = fmt.Sprintf("%.0f GiB", kb/(1<<20))
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	maj, mnr, pat := zmq.Version()
	natsV := "?"
	if out, err := exec.Command("nats-server", "--version").Output(); err == nil {
		natsV = strings.TrimSpace(string(out))
	} else if out, err := exec.Command("/usr/sbin/nats-server", "--version").Output(); err == nil {
		natsV = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%d CPUs (%s), %s RAM, Linux %s, %s, libzmq %d.%d.%d, %s; load average at the end %s",
		runtime.NumCPU(), cpu, mem, kernel, runtime.Version(), maj, mnr, pat, natsV, load)
}
