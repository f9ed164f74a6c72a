package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTinyCells builds the harness and runs one tiny cell per system (NATS
// only if nats-server is installed), then checks that every system answered
// without errors.
func TestTinyCells(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokers and servers; skipped with -short")
	}
	systems := []string{"domo", "mdp", "relay", "zmq"}
	if _, err := exec.LookPath("nats-server"); err == nil {
		systems = append(systems, "nats")
	} else if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		systems = append(systems, "nats")
	} else {
		t.Log("nats-server not installed: NATS left out")
	}
	bin := filepath.Join(t.TempDir(), "compare")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(t.TempDir(), "report.md")
	cmd := exec.Command(bin, "-rows", "pipelined/64/2", "-duration", "300ms", "-warmup", "100ms",
		"-rounds", "1", "-systems", strings.Join(systems, ","), "-out", out)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	report := string(b)
	for _, s := range systems {
		name := systemNames[s]
		found := false
		for line := range strings.SplitSeq(report, "\n") {
			f := strings.Split(line, "|")
			if len(f) < 13 || strings.TrimSpace(f[4]) != name {
				continue
			}
			found = true
			if rate := strings.TrimSpace(f[5]); rate == "0" {
				t.Errorf("%s: no requests: %s", name, line)
			}
			if errs := strings.TrimSpace(f[12]); errs != "0" {
				t.Errorf("%s: %s errors: %s", name, errs, line)
			}
		}
		if !found {
			t.Errorf("no row for %s in the report:\n%s", name, report)
		}
	}
}
