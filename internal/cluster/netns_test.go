package cluster

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo/internal/netnstest"
)

// TestDiscoveryAcrossNamespaces: three "hosts" (network namespaces made by
// netnstest, joined by a private bridge): a domo broker announcing itself
// by multicast on host 0's eth0, a worker on host 1 and a client on host 2
// that know nothing but "multicast:eth0". The worker finds the broker by
// its beacons, and so does the client, whose call crosses the bridge.
// Beacons go only to the namespaces' own interfaces: the machine's network
// is not touched. Skipped where namespaces cannot be made (no root or no
// ip command), with the reason.
func TestDiscoveryAcrossNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("network namespaces: skipped in -short mode")
	}
	n := netnstest.New(t, 3)
	h0, h1, h2 := n.Hosts[0], n.Hosts[1], n.Hosts[2]
	ep := "tcp://" + h0.IP + ":5555"

	broker := startProc(t, "broker@"+h0.Name, h0.Command(context.Background(), domoBin, "broker",
		"--listen", ep, "--id", "ns0",
		"--heartbeat", hb.String(), "--liveness", "3", "--startup-grace", "2s", "--drain", "0s",
		"--announce", "--announce-interface", h0.Iface, "--announce-interval", "200ms"))
	broker.waitLine(20*time.Second, "broker started")

	env := append(os.Environ(), roleEnv+"=worker")
	wcmd := h1.Command(context.Background(), os.Args[0], "-name", "wns", "-discover", "multicast:"+h1.Iface, "-heartbeat", hb.String())
	wcmd.Env = env
	w := startProc(t, "worker@"+h1.Name, wcmd)
	w.waitLine(20*time.Second, "worker started")

	ccmd := h2.Command(context.Background(), os.Args[0], "-discover", "multicast:"+h2.Iface, "-payload", "across")
	ccmd.Env = append(os.Environ(), roleEnv+"=client")
	start := time.Now()
	c := startProc(t, "client@"+h2.Name, ccmd)
	line := c.waitLine(30*time.Second, "reply ")
	if line != "reply wns across" {
		t.Fatalf("client in %s: %q; want %q", h2.Name, line, "reply wns across")
	}
	brokers := c.waitLine(5*time.Second, "broker ")
	if !strings.Contains(brokers, ep) {
		t.Errorf("client in %s used %q; want the broker at %s, found by its beacons", h2.Name, brokers, ep)
	}
	t.Logf("client on %s (%s) found the broker at %s by multicast and was answered by the worker on %s (%s) in %v",
		h2.Name, h2.IP, ep, h1.Name, h1.IP, time.Since(start).Round(time.Millisecond))
	if execs := w.linesWith("exec "); len(execs) != 1 {
		t.Errorf("worker ran %d requests; want 1: %q", len(execs), execs)
	}
}
