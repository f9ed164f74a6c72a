package discovery

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// watch runs src.Watch until the test ends and returns a channel of the
// sets it reports, and a function that waits for one equal to want.
func watch(t *testing.T, src Source) (sets <-chan []string, await func(want ...string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan []string, 100)
	done := make(chan error, 1)
	go func() { done <- src.Watch(ctx, func(eps []string) { ch <- eps }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v; want context.Canceled", err)
		}
	})
	await = func(want ...string) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		timeout := time.After(5 * time.Second)
		var got []string
		for {
			select {
			case got = <-ch:
				if slices.Equal(got, want) {
					return
				}
			case err := <-done:
				t.Fatalf("Watch ended: %v", err)
			case <-timeout:
				t.Fatalf("Watch: last set %q; want %q", got, want)
			}
		}
	}
	return ch, await
}

func TestStatic(t *testing.T) {
	_, await := watch(t, Static("tcp://b:2", "tcp://a:1", "tcp://b:2", ""))
	await("tcp://a:1", "tcp://b:2")
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct{ old, cur, added, removed []string }{
		{nil, nil, nil, nil},
		{nil, []string{"a", "b"}, []string{"a", "b"}, nil},
		{[]string{"a", "b"}, nil, nil, []string{"a", "b"}},
		{[]string{"a", "c", "d"}, []string{"b", "c", "e"}, []string{"b", "e"}, []string{"a", "d"}},
		{[]string{"a"}, []string{"a"}, nil, nil},
	} {
		added, removed := Diff(tc.old, tc.cur)
		if !slices.Equal(added, tc.added) || !slices.Equal(removed, tc.removed) {
			t.Errorf("Diff(%q, %q) = %q, %q; want %q, %q", tc.old, tc.cur, added, removed, tc.added, tc.removed)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Source
	}{
		{"static:tcp://a:1", Static("tcp://a:1")},
		{"static:tcp://b:2, tcp://a:1,", Static("tcp://a:1", "tcp://b:2")},
		{"dns:broker.example:5555", DNS(DNSConfig{Name: "broker.example", Port: 5555})},
		{"dns:broker.example:5555/10s", DNS(DNSConfig{Name: "broker.example", Port: 5555, Every: 10 * time.Second})},
		{"multicast:lo", Multicast(ListenerConfig{Interface: "lo"})},
		{"multicast:lo@239.1.2.3:4000#prod", Multicast(ListenerConfig{Interface: "lo", Group: "239.1.2.3:4000", Cluster: "prod"})},
		{"multicast:lo#prod", Multicast(ListenerConfig{Interface: "lo", Cluster: "prod"})},
	} {
		got, err := Parse(tc.spec)
		if err != nil {
			t.Errorf("Parse(%q) = %v", tc.spec, err)
			continue
		}
		if d, ok := got.(*DNSSource); ok {
			g, w := d.cfg, tc.want.(*DNSSource).cfg
			if g.Name != w.Name || g.Port != w.Port || g.Every != w.Every || g.Network != w.Network {
				t.Errorf("Parse(%q) = %+v; want %+v", tc.spec, g, w)
			}
			continue
		}
		if m, ok := got.(*MulticastSource); ok {
			if m.cfg != tc.want.(*MulticastSource).cfg {
				t.Errorf("Parse(%q) = %+v; want %+v", tc.spec, m.cfg, tc.want.(*MulticastSource).cfg)
			}
			continue
		}
		if !slices.Equal(got.(StaticSource).endpoints, tc.want.(StaticSource).endpoints) {
			t.Errorf("Parse(%q) = %v; want %v", tc.spec, got, tc.want)
		}
	}
	for _, spec := range []string{
		"", "tcp://a:1", "static:", "static:a:1", "dns:", "dns:name", "dns:name:0", "dns:name:99999",
		"dns::5555", "dns:name:5555/", "dns:name:5555/-1s", "multicast", "multicast:", "multicast:@239.1.2.3:4000",
		"multicast:no-such-interface0", "multicast:lo@10.0.0.1:4000", "multicast:lo#bad cluster", "udp:x",
	} {
		if src, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) = %v; want an error", spec, src)
		}
	}
	if _, err := Parse("multicast:"); !errors.Is(err, ErrNoInterface) {
		t.Errorf("Parse(%q) = %v; want ErrNoInterface", "multicast:", err)
	}
}

func TestDNSLocalhost(t *testing.T) {
	_, await := watch(t, DNS(DNSConfig{Name: "localhost", Port: 5555, Network: "ip4"}))
	await("tcp://127.0.0.1:5555")
}

// fakeDNS answers lookups from a table that the test changes.
type fakeDNS struct {
	mu     sync.Mutex
	answer []net.IP
	err    error
}

func (f *fakeDNS) set(err error, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer, f.err = nil, err
	for _, s := range ips {
		f.answer = append(f.answer, net.ParseIP(s))
	}
}

func (f *fakeDNS) LookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.answer, f.err
}

func TestDNSChanges(t *testing.T) {
	dns := &fakeDNS{}
	dns.set(nil, "10.0.0.2", "10.0.0.1", "10.0.0.2")
	var errs sync.Map
	src := DNS(DNSConfig{Name: "brokers.test", Port: 7, Every: 10 * time.Millisecond, Lookup: dns.LookupIP,
		OnError: func(err error) { errs.Store("seen", err) }})
	sets, await := watch(t, src)
	await("tcp://10.0.0.1:7", "tcp://10.0.0.2:7")

	dns.set(nil, "10.0.0.3", "fd00::1")
	await("tcp://10.0.0.3:7", "tcp://[fd00::1]:7")

	// A failed lookup keeps the brokers we know.
	dns.set(&net.DNSError{Err: "server misbehaving", Name: "brokers.test", IsTemporary: true})
	time.Sleep(100 * time.Millisecond)
	select {
	case got := <-sets:
		t.Fatalf("after a failed lookup: %q; want no change", got)
	default:
	}
	if _, ok := errs.Load("seen"); !ok {
		t.Error("OnError not called for a failed lookup")
	}

	// No such name: no brokers.
	dns.set(&net.DNSError{Err: "no such host", Name: "brokers.test", IsNotFound: true})
	await()
	dns.set(nil, "10.0.0.4")
	await("tcp://10.0.0.4:7")
}

func TestDNSNotFoundFirst(t *testing.T) {
	dns := &fakeDNS{}
	dns.set(&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true})
	_, await := watch(t, DNS(DNSConfig{Name: "x", Port: 1, Every: 10 * time.Millisecond, Lookup: dns.LookupIP}))
	await() // the empty set is known, and reported
}

func TestDNSBadConfig(t *testing.T) {
	for _, cfg := range []DNSConfig{{Port: 1}, {Name: "x"}, {Name: "x", Port: 70000}} {
		if err := DNS(cfg).Watch(context.Background(), func([]string) {}); err == nil || strings.Contains(err.Error(), "canceled") {
			t.Errorf("DNS(%+v).Watch = %v; want a configuration error", cfg, err)
		}
	}
}
