package discovery

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// loopbackGroup returns a free 127.0.0.1 UDP address: a unicast stand-in
// for a multicast group, so beacons never leave the machine.
func loopbackGroup(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// announce runs Announce until the test ends or the returned stop is
// called, and fails the test if it ends with an error but its context's.
func announce(t *testing.T, cfg AnnouncerConfig) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Announce(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Announce(%+v) = %v; want context.Canceled", cfg, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func send(t *testing.T, group string, p []byte) {
	t.Helper()
	c, err := net.Dial("udp4", group)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(p); err != nil {
		t.Fatal(err)
	}
}

func TestListenerUnicastLoopback(t *testing.T) {
	group := loopbackGroup(t)
	src := Multicast(ListenerConfig{Group: group, Cluster: "blue", Expiry: 300 * time.Millisecond})
	_, await := watch(t, src)
	time.Sleep(50 * time.Millisecond) // let Watch bind

	beacon := func(cluster, id, ep string) AnnouncerConfig {
		return AnnouncerConfig{Group: group, Interval: 50 * time.Millisecond,
			Beacon: Beacon{Cluster: cluster, BrokerID: id, Endpoint: ep}}
	}
	stopA := announce(t, beacon("blue", "a", "tcp://127.0.0.1:1001"))
	green, _ := Beacon{Cluster: "green", BrokerID: "g", Endpoint: "tcp://127.0.0.1:1003"}.Encode()
	send(t, group, green) // another cluster: ignored
	await("tcp://127.0.0.1:1001")
	stopB := announce(t, beacon("blue", "b", "tcp://127.0.0.1:1002"))
	await("tcp://127.0.0.1:1001", "tcp://127.0.0.1:1002")

	// Garbage is counted and ignored.
	send(t, group, []byte("not a beacon"))
	send(t, group, []byte("DOMO\x09"))

	// b leaves gracefully: forgotten at once, long before its expiry.
	start := time.Now()
	stopB()
	await("tcp://127.0.0.1:1001")
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("a leaving broker was forgotten after %v; want at once", d)
	}
	stopA()
	await()
	// Expiry (a broker that stops without a word) is TestListenerExpiry's.

	s := src.Stats()
	if s.OtherCluster != 1 || s.Malformed != 2 || s.Received < 3 {
		t.Errorf("Stats() = %+v; want 1 of another cluster and 2 malformed", s)
	}
}

func TestListenerExpiry(t *testing.T) {
	group := loopbackGroup(t)
	expiry := 200 * time.Millisecond
	src := Multicast(ListenerConfig{Group: group, Cluster: "blue", Expiry: expiry})
	_, await := watch(t, src)
	time.Sleep(50 * time.Millisecond)

	p, _ := Beacon{Cluster: "blue", BrokerID: "a", Endpoint: "tcp://127.0.0.1:1001"}.Encode()
	send(t, group, p)
	await("tcp://127.0.0.1:1001")
	start := time.Now()
	await()
	if d := time.Since(start); d < expiry-50*time.Millisecond || d > 3*expiry {
		t.Errorf("forgotten after %v; want about %v", d, expiry)
	}

	// The same broker moving to another endpoint is one broker.
	send(t, group, p)
	await("tcp://127.0.0.1:1001")
	q, _ := Beacon{Cluster: "blue", BrokerID: "a", Endpoint: "tcp://127.0.0.1:2002"}.Encode()
	send(t, group, q)
	await("tcp://127.0.0.1:2002")
}

func TestListenerMaxBrokers(t *testing.T) {
	group := loopbackGroup(t)
	src := Multicast(ListenerConfig{Group: group, Expiry: time.Minute, MaxBrokers: 2})
	_, await := watch(t, src)
	time.Sleep(50 * time.Millisecond)
	for _, id := range []string{"a", "b", "c"} {
		p, _ := Beacon{Cluster: DefaultCluster, BrokerID: id, Endpoint: "tcp://127.0.0.1:1/" + id}.Encode()
		send(t, group, p)
		time.Sleep(10 * time.Millisecond)
	}
	await("tcp://127.0.0.1:1/a", "tcp://127.0.0.1:1/b")
	deadline := time.Now().Add(2 * time.Second)
	for src.Stats().Dropped != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := src.Stats(); s.Dropped != 1 {
		t.Errorf("Stats() = %+v; want 1 dropped", s)
	}
}

func TestAnnounceErrors(t *testing.T) {
	b := Beacon{BrokerID: "a", Endpoint: "tcp://127.0.0.1:1"}
	for _, tc := range []struct {
		cfg  AnnouncerConfig
		want error
	}{
		{AnnouncerConfig{Beacon: b}, ErrNoInterface}, // the default group is multicast
		{AnnouncerConfig{Group: "239.255.77.77:5670", Beacon: b}, ErrNoInterface},
		{AnnouncerConfig{Group: "127.0.0.1:5670"}, ErrMalformed},
		{AnnouncerConfig{Group: "10.1.2.3:5670", Beacon: b}, nil}, // unicast off the host: refused
		{AnnouncerConfig{Group: "127.0.0.1", Beacon: b}, nil},
		{AnnouncerConfig{Group: "[::1]:5670", Beacon: b}, nil},
		{AnnouncerConfig{Group: "239.255.77.77:5670", Interface: "no-such-if0", Beacon: b}, nil},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := Announce(ctx, tc.cfg)
		cancel()
		if err == nil || errors.Is(err, context.DeadlineExceeded) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("Announce(%+v) = %v; want an error (%v) at once", tc.cfg, err, tc.want)
		}
	}
	for _, cfg := range []ListenerConfig{{}, {Group: "10.1.2.3:5670"}, {Group: "239.255.77.77:5670", Interface: "no-such-if0"}} {
		if err := Multicast(cfg).Watch(context.Background(), func([]string) {}); err == nil {
			t.Errorf("Multicast(%+v).Watch = nil; want an error at once", cfg)
		}
	}
}

func TestAdvertisedEndpoint(t *testing.T) {
	for _, tc := range []struct{ bind, iface, want string }{
		{"tcp://*:5555", "lo", "tcp://127.0.0.1:5555"},
		{"tcp://0.0.0.0:5555", "lo", "tcp://127.0.0.1:5555"},
		{"tcp://10.0.0.5:5555", "", "tcp://10.0.0.5:5555"},
		{"ipc:///tmp/broker", "", "ipc:///tmp/broker"},
	} {
		if got, err := AdvertisedEndpoint(tc.bind, tc.iface); err != nil || got != tc.want {
			t.Errorf("AdvertisedEndpoint(%q, %q) = %q, %v; want %q", tc.bind, tc.iface, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ bind, iface string }{
		{"tcp://*:5555", ""}, {"tcp://*:*", "lo"}, {"tcp://*:5555", "no-such-if0"}, {"tcp://nonsense", "lo"},
	} {
		if got, err := AdvertisedEndpoint(tc.bind, tc.iface); err == nil {
			t.Errorf("AdvertisedEndpoint(%q, %q) = %q; want an error", tc.bind, tc.iface, got)
		}
	}
}
