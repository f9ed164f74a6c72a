package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"
)

// DefaultDNSEvery is the default of DNSConfig.Every.
const DefaultDNSEvery = 5 * time.Second

// DNSConfig configures a DNSSource.
type DNSConfig struct {
	// Name is resolved to every address it has, e.g. a Kubernetes headless
	// service "domo-broker.prod.svc.cluster.local".
	Name string
	// Port is the brokers' port; each address A becomes tcp://A:Port.
	Port int
	// Every is the time between lookups (DefaultDNSEvery if zero).
	Every time.Duration
	// Network is "ip4" (A records), "ip6" (AAAA) or "ip" (both, the
	// default). IPv6 endpoints need ZeroMQ's IPv6 option on the sockets
	// that connect to them.
	Network string
	// Lookup resolves a name; net.DefaultResolver.LookupIP if nil. Tests
	// inject their own; a custom *net.Resolver's LookupIP fits.
	Lookup func(ctx context.Context, network, host string) ([]net.IP, error)
	// OnError, if set, is called with each failed lookup, on Watch's
	// goroutine; it must not block.
	OnError func(error)
}

// DNSSource is a Source of the brokers a DNS name resolves to, resolved
// again periodically.
type DNSSource struct {
	cfg DNSConfig
}

// DNS returns a Source of the addresses cfg.Name resolves to, as
// tcp://ADDRESS:PORT endpoints. Nothing happens until Watch.
func DNS(cfg DNSConfig) *DNSSource {
	if cfg.Every <= 0 {
		cfg.Every = DefaultDNSEvery
	}
	if cfg.Network == "" {
		cfg.Network = "ip"
	}
	if cfg.Lookup == nil {
		cfg.Lookup = net.DefaultResolver.LookupIP
	}
	return &DNSSource{cfg: cfg}
}

// Watch resolves the name at once and then every cfg.Every, and calls fn
// when the set of addresses changes. A name that does not exist (as a
// headless service with no ready broker) is an empty set; any other failed
// lookup keeps the last set, so a DNS hiccup does not drop every broker.
// The first call to fn comes with the first lookup that succeeds or finds
// no such name. It blocks; each lookup is bounded by cfg.Every.
func (d *DNSSource) Watch(ctx context.Context, fn func(endpoints []string)) error {
	cfg := d.cfg
	if cfg.Name == "" || cfg.Port < 1 || cfg.Port > 65535 {
		return fmt.Errorf("discovery: dns: want a name and a port, have %q and %d", cfg.Name, cfg.Port)
	}
	var last []string
	called := false
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	for {
		cur, err := d.lookup(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && cfg.OnError != nil {
			cfg.OnError(err)
		}
		if err == nil && (!called || !slices.Equal(cur, last)) {
			fn(slices.Clone(cur))
			last, called = cur, true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// lookup resolves the name once. A name that does not exist yields an
// empty set and no error.
func (d *DNSSource) lookup(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Every)
	defer cancel()
	ips, err := d.cfg.Lookup(ctx, d.cfg.Network, d.cfg.Name)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("discovery: dns %s: %w", d.cfg.Name, err)
	}
	port := strconv.Itoa(d.cfg.Port)
	eps := make([]string, 0, len(ips))
	for _, ip := range ips {
		eps = append(eps, "tcp://"+net.JoinHostPort(ip.String(), port))
	}
	return normalize(eps), nil
}
