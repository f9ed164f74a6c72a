package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/net/ipv4"
)

// Defaults of AnnouncerConfig and ListenerConfig.
const (
	DefaultGroup    = "239.255.77.77:5670" // administratively scoped (RFC 2365): never routed off the organisation
	DefaultCluster  = "domo"
	DefaultInterval = time.Second
	DefaultTTL      = 1 // one hop: the beacon stays on the local segment
)

// ErrNoInterface is returned when a multicast group is used without naming
// a network interface. No interface is ever chosen silently, so beacons go
// only where the operator said.
var ErrNoInterface = errors.New("discovery: a multicast group needs a network interface (e.g. eth0)")

// AnnouncerConfig configures Announce. The zero value of every field but
// Interface and Beacon.BrokerID and Beacon.Endpoint has a default.
type AnnouncerConfig struct {
	// Group is the UDP address beacons are sent to: an IPv4 multicast
	// group and port (DefaultGroup if empty), or, for tests, a loopback
	// unicast address such as 127.0.0.1:40000. Other unicast addresses
	// are refused.
	Group string
	// Interface names the network interface multicast beacons leave by,
	// e.g. "eth0". Required for a multicast group; ignored for loopback.
	Interface string
	// Interval between beacons (DefaultInterval if zero). Listeners forget
	// a broker after about three missed beacons, so keep their Expiry at
	// three Intervals or more.
	Interval time.Duration
	// TTL is the multicast hop limit (DefaultTTL if zero).
	TTL int
	// Beacon is what is announced. An empty Cluster means DefaultCluster;
	// Leaving is ignored (Announce sets it in its last beacon).
	Beacon Beacon
	// OnError, if set, is called with each failed send; Announce keeps
	// going, so an interface that is down for a while does not stop it.
	// It is called on Announce's goroutine and must not block.
	OnError func(error)
}

func (c AnnouncerConfig) withDefaults() AnnouncerConfig {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.Beacon.Cluster == "" {
		c.Beacon.Cluster = DefaultCluster
	}
	c.Beacon.Leaving = false
	return c
}

// Announce sends cfg.Beacon to cfg.Group at once and then every
// cfg.Interval, until ctx ends; then it sends one last beacon marked
// Leaving, so listeners forget the broker without waiting, and returns
// ctx.Err(). It blocks. It returns an error at once if the configuration
// is invalid or the socket cannot be set up. Several Announce calls may run
// at once (each has its own socket).
func Announce(ctx context.Context, cfg AnnouncerConfig) error {
	cfg = cfg.withDefaults()
	hello, err := cfg.Beacon.Encode()
	if err != nil {
		return fmt.Errorf("discovery: announce: %w", err)
	}
	bye := cfg.Beacon
	bye.Leaving = true
	goodbye, _ := bye.Encode()

	group, ifi, err := resolveGroup(cfg.Group, cfg.Interface)
	if err != nil {
		return fmt.Errorf("discovery: announce: %w", err)
	}
	laddr := "0.0.0.0:0"
	if ifi == nil {
		laddr = "127.0.0.1:0" // a loopback "group": never leave the host
	}
	conn, err := net.ListenPacket("udp4", laddr)
	if err != nil {
		return fmt.Errorf("discovery: announce: %w", err)
	}
	defer conn.Close()
	if ifi != nil {
		p := ipv4.NewPacketConn(conn)
		if err := p.SetMulticastInterface(ifi); err != nil {
			return fmt.Errorf("discovery: announce on %s: %w", ifi.Name, err)
		}
		if err := p.SetMulticastTTL(cfg.TTL); err != nil {
			return fmt.Errorf("discovery: announce: TTL %d: %w", cfg.TTL, err)
		}
		// Listeners on this host (a worker beside the broker) hear it too.
		if err := p.SetMulticastLoopback(true); err != nil {
			return fmt.Errorf("discovery: announce: loopback: %w", err)
		}
	}

	send := func(b []byte) {
		if _, err := conn.WriteTo(b, group); err != nil && cfg.OnError != nil {
			cfg.OnError(fmt.Errorf("discovery: announce to %s: %w", group, err))
		}
	}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		send(hello)
		select {
		case <-ctx.Done():
			send(goodbye)
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// resolveGroup parses a group address. It returns the interface to use for
// a multicast group (and fails without one), or nil for a loopback unicast
// address; any other address is refused.
func resolveGroup(group, iface string) (*net.UDPAddr, *net.Interface, error) {
	host, port, err := net.SplitHostPort(group)
	if err != nil {
		return nil, nil, fmt.Errorf("group %q: %w", group, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil {
		return nil, nil, fmt.Errorf("group %q: not an IPv4 address", group)
	}
	addr, err := net.ResolveUDPAddr("udp4", net.JoinHostPort(ip.String(), port))
	if err != nil || addr.Port == 0 {
		return nil, nil, fmt.Errorf("group %q: bad port", group)
	}
	switch {
	case ip.IsLoopback():
		return addr, nil, nil
	case !ip.IsMulticast():
		return nil, nil, fmt.Errorf("group %q: neither multicast nor loopback", group)
	case iface == "":
		return nil, nil, ErrNoInterface
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, nil, fmt.Errorf("interface %q: %w", iface, err)
	}
	return addr, ifi, nil
}

// AdvertisedEndpoint returns the endpoint a broker bound to bind should
// announce. A wildcard host ("*", "0.0.0.0", "" or "::") is replaced by the
// first IPv4 address of the interface iface; any other endpoint is returned
// unchanged. It does not block and is safe from several goroutines.
//
//	AdvertisedEndpoint("tcp://*:5555", "eth0") // "tcp://10.0.0.5:5555"
func AdvertisedEndpoint(bind, iface string) (string, error) {
	rest, ok := strings.CutPrefix(bind, "tcp://")
	if !ok {
		return bind, nil
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return "", fmt.Errorf("discovery: endpoint %q: %w", bind, err)
	}
	if host != "*" && host != "" && host != "0.0.0.0" && host != "::" {
		return bind, nil
	}
	if port == "*" || port == "0" {
		return "", fmt.Errorf("discovery: endpoint %q: announce the port the broker actually bound", bind)
	}
	if iface == "" {
		return "", fmt.Errorf("discovery: endpoint %q has a wildcard host: %w", bind, ErrNoInterface)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return "", fmt.Errorf("discovery: interface %q: %w", iface, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return "", fmt.Errorf("discovery: interface %q: %w", iface, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return "tcp://" + net.JoinHostPort(n.IP.String(), port), nil
		}
	}
	return "", fmt.Errorf("discovery: interface %q has no IPv4 address", iface)
}
