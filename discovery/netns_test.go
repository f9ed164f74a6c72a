package discovery

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo/internal/netnstest"
)

// TestMain routes the helper processes the namespace tests start (the test
// binary run again inside a namespace) to their roles.
func TestMain(m *testing.M) {
	netnstest.Main(m, map[string]netnstest.Role{
		"announce": roleAnnounce,
		"listen":   roleListen,
	})
}

// roleAnnounce runs Announce; args are flags: -iface, -group, -cluster,
// -id, -endpoint, -interval.
func roleAnnounce(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("announce", flag.ContinueOnError)
	var cfg AnnouncerConfig
	fs.StringVar(&cfg.Interface, "iface", "", "")
	fs.StringVar(&cfg.Group, "group", "", "")
	fs.StringVar(&cfg.Beacon.Cluster, "cluster", "", "")
	fs.StringVar(&cfg.Beacon.BrokerID, "id", "", "")
	fs.StringVar(&cfg.Beacon.Endpoint, "endpoint", "", "")
	fs.DurationVar(&cfg.Interval, "interval", 0, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.OnError = func(err error) { fmt.Println("error", err) }
	fmt.Println("announcing")
	return Announce(ctx, cfg)
}

// roleListen runs a Multicast source and prints "endpoints=A,B" for each
// set it reports; args are flags: -iface, -group, -cluster, -expiry.
func roleListen(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	var cfg ListenerConfig
	fs.StringVar(&cfg.Interface, "iface", "", "")
	fs.StringVar(&cfg.Group, "group", "", "")
	fs.StringVar(&cfg.Cluster, "cluster", "", "")
	fs.DurationVar(&cfg.Expiry, "expiry", 0, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	src := Multicast(cfg)
	fmt.Println("listening")
	err := src.Watch(ctx, func(eps []string) { fmt.Println("endpoints=" + strings.Join(eps, ",")) })
	fmt.Printf("stats %+v\n", src.Stats())
	return err
}

func endpointsLine(want ...string) func(string) bool {
	return func(l string) bool { return l == "endpoints="+strings.Join(want, ",") }
}

// TestAcrossNamespaces sends real multicast between three hosts (network
// namespaces on a private bridge): brokers of two clusters announce in
// hosts 0 and 2, a listener in host 1 hears only its own cluster's, and
// forgets it after its announcer is killed.
func TestAcrossNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("network namespaces: not in -short mode")
	}
	n := netnstest.New(t, 3)
	a, b, c := n.Hosts[0], n.Hosts[1], n.Hosts[2]
	const group = "239.255.77.77:5670"
	epA := "tcp://" + a.IP + ":5555"

	listener := b.Start(t, "listen", "-iface", b.Iface, "-group", group, "-cluster", "blue", "-expiry", "1s")
	if _, err := listener.WaitLine(10*time.Second, func(l string) bool { return l == "listening" }); err != nil {
		t.Fatal(err)
	}
	announcer := a.Start(t, "announce", "-iface", a.Iface, "-group", group, "-cluster", "blue",
		"-id", "broker-a", "-endpoint", epA, "-interval", "200ms")
	c.Start(t, "announce", "-iface", c.Iface, "-group", group, "-cluster", "green",
		"-id", "broker-c", "-endpoint", "tcp://"+c.IP+":5555", "-interval", "200ms")

	start := time.Now()
	if _, err := listener.WaitLine(10*time.Second, endpointsLine(epA)); err != nil {
		t.Fatal(err)
	}
	t.Logf("host 1 heard %s in %v", epA, time.Since(start).Round(time.Millisecond))

	announcer.Kill() // no goodbye: the listener must notice the silence
	start = time.Now()
	if _, err := listener.WaitLine(10*time.Second, endpointsLine()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("forgotten %v after the kill; want about the 1s expiry", d)
	}
	t.Logf("host 1 forgot it %v after the kill", time.Since(start).Round(time.Millisecond))

	listener.Stop()
	out := listener.Output()
	if strings.Contains(out, "tcp://"+c.IP) {
		t.Errorf("the blue listener reported a green broker:\n%s", out)
	}
	if !strings.Contains(out, "OtherCluster:") || strings.Contains(out, "OtherCluster:0 ") {
		t.Errorf("the listener counted no beacon of another cluster:\n%s", out)
	}
}

// TestMulticastOnLo announces and listens on the loopback interface of
// one host: the setting for a one-machine demo, whose beacons cannot leave
// the machine. A graceful stop is heard at once.
func TestMulticastOnLo(t *testing.T) {
	if testing.Short() {
		t.Skip("network namespaces: not in -short mode")
	}
	h := netnstest.New(t, 1).Hosts[0]
	const group = "239.255.77.78:5671"
	var listeners []*netnstest.Process
	for range 2 { // two listeners on one host share the group
		l := h.Start(t, "listen", "-iface", "lo", "-group", group, "-expiry", "5s")
		if _, err := l.WaitLine(10*time.Second, func(l string) bool { return l == "listening" }); err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, l)
	}
	announcer := h.Start(t, "announce", "-iface", "lo", "-group", group, "-id", "demo",
		"-endpoint", "tcp://127.0.0.1:5555", "-interval", "200ms")
	for _, l := range listeners {
		if _, err := l.WaitLine(10*time.Second, endpointsLine("tcp://127.0.0.1:5555")); err != nil {
			t.Fatal(err)
		}
	}
	announcer.Stop() // SIGTERM: a goodbye beacon
	if err := announcer.Err(); err != nil {
		t.Errorf("announcer: %v", err)
	}
	for _, l := range listeners {
		if _, err := l.WaitLine(2*time.Second, endpointsLine()); err != nil {
			t.Fatalf("%v (a leaving broker is forgotten before its 5s expiry)", err)
		}
	}
}
