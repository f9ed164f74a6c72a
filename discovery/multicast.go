package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// DefaultMaxBrokers is the default of ListenerConfig.MaxBrokers.
const DefaultMaxBrokers = 256

// ListenerConfig configures a MulticastSource. The zero value of every field
// but Interface has a default.
type ListenerConfig struct {
	// Group is the UDP address beacons arrive on: an IPv4 multicast group
	// and port (DefaultGroup if empty), or, for tests, a loopback unicast
	// address such as 127.0.0.1:40000.
	Group string
	// Interface names the network interface the group is joined on, e.g.
	// "eth0". Required for a multicast group; beacons that arrive on other
	// interfaces are ignored.
	Interface string
	// Cluster is the cluster to listen for (DefaultCluster if empty);
	// beacons of other clusters are ignored and counted.
	Cluster string
	// Expiry is how long a broker is remembered after its last beacon
	// (3 × DefaultInterval if zero).
	Expiry time.Duration
	// MaxBrokers bounds the brokers remembered at once (DefaultMaxBrokers
	// if zero); beacons of further brokers are dropped and counted.
	MaxBrokers int
}

func (c ListenerConfig) withDefaults() ListenerConfig {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.Cluster == "" {
		c.Cluster = DefaultCluster
	}
	if c.Expiry <= 0 {
		c.Expiry = 3 * DefaultInterval
	}
	if c.MaxBrokers <= 0 {
		c.MaxBrokers = DefaultMaxBrokers
	}
	return c
}

// MulticastSource is a Source that listens for the beacons of Announce.
type MulticastSource struct {
	cfg   ListenerConfig
	stats struct {
		received, malformed, otherCluster, otherInterface, dropped atomic.Uint64
	}
}

// ListenerStats counts the datagrams a MulticastSource received, over all
// its Watch calls.
type ListenerStats struct {
	Received       uint64 // datagrams read
	Malformed      uint64 // not a beacon this version understands
	OtherCluster   uint64 // beacons of another cluster, ignored
	OtherInterface uint64 // arrived on another interface than the one configured, ignored
	Dropped        uint64 // beacons of new brokers beyond MaxBrokers
}

// Multicast returns a Source of the brokers whose beacons arrive on
// cfg.Group at cfg.Interface for cfg.Cluster. A broker is reported from its
// first beacon and forgotten when its beacons stop for cfg.Expiry or it
// announces that it is leaving. Nothing happens until Watch. Several
// listeners on one host may share the group.
func Multicast(cfg ListenerConfig) *MulticastSource {
	return &MulticastSource{cfg: cfg.withDefaults()}
}

// Stats returns the counters. It does not block and is safe from several
// goroutines.
func (m *MulticastSource) Stats() ListenerStats {
	return ListenerStats{
		Received:       m.stats.received.Load(),
		Malformed:      m.stats.malformed.Load(),
		OtherCluster:   m.stats.otherCluster.Load(),
		OtherInterface: m.stats.otherInterface.Load(),
		Dropped:        m.stats.dropped.Load(),
	}
}

// Watch joins the group and reports brokers as described by Source. The
// first call to fn comes with the first beacon heard. It blocks; it uses
// one goroutine (the caller's) and one socket, closed when it returns.
func (m *MulticastSource) Watch(ctx context.Context, fn func(endpoints []string)) error {
	cfg := m.cfg
	group, ifi, err := resolveGroup(cfg.Group, cfg.Interface)
	if err != nil {
		return fmt.Errorf("discovery: listen: %w", err)
	}
	// Bound to the group address, the socket receives only datagrams sent
	// to the group, and Go sets SO_REUSEADDR on it, so other listeners on
	// this host can share the port.
	conn, err := net.ListenPacket("udp4", group.String())
	if err != nil {
		return fmt.Errorf("discovery: listen on %s: %w", group, err)
	}
	defer conn.Close()
	p := ipv4.NewPacketConn(conn)
	if ifi != nil {
		if err := p.JoinGroup(ifi, &net.UDPAddr{IP: group.IP}); err != nil {
			return fmt.Errorf("discovery: join %s on %s: %w", group.IP, ifi.Name, err)
		}
		if err := p.SetControlMessage(ipv4.FlagInterface, true); err != nil {
			return fmt.Errorf("discovery: listen on %s: %w", ifi.Name, err)
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	type broker struct {
		endpoint string
		seen     time.Time
	}
	brokers := make(map[string]broker)
	var last []string
	called, dirty := false, false
	check := cfg.Expiry / 4
	buf := make([]byte, MaxBeaconSize+1)
	nextExpire := time.Now().Add(check)
	for {
		_ = p.SetReadDeadline(nextExpire)
		n, cm, _, err := p.ReadFrom(buf)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now := time.Now()
		switch {
		case err != nil && !errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("discovery: listen on %s: %w", group, err)
		case err != nil:
			// A read deadline: time to expire.
		case ifi != nil && cm != nil && cm.IfIndex != ifi.Index:
			m.stats.received.Add(1)
			m.stats.otherInterface.Add(1)
		default:
			m.stats.received.Add(1)
			b, err := Decode(buf[:n])
			switch {
			case err != nil:
				m.stats.malformed.Add(1)
			case b.Cluster != cfg.Cluster:
				m.stats.otherCluster.Add(1)
			case b.Leaving:
				if _, ok := brokers[b.BrokerID]; ok {
					delete(brokers, b.BrokerID)
					dirty = true
				}
			default:
				old, ok := brokers[b.BrokerID]
				if !ok && len(brokers) >= cfg.MaxBrokers {
					m.stats.dropped.Add(1)
					break
				}
				brokers[b.BrokerID] = broker{endpoint: b.Endpoint, seen: now}
				dirty = dirty || old.endpoint != b.Endpoint
			}
		}
		if !now.Before(nextExpire) {
			for id, b := range brokers {
				if now.Sub(b.seen) > cfg.Expiry {
					delete(brokers, id)
					dirty = true
				}
			}
			nextExpire = now.Add(check)
		}
		if !dirty {
			continue
		}
		dirty = false
		cur := make([]string, 0, len(brokers))
		for _, b := range brokers {
			cur = append(cur, b.endpoint)
		}
		cur = normalize(cur)
		if (called || len(cur) > 0) && !slices.Equal(cur, last) {
			fn(slices.Clone(cur))
			last, called = cur, true
		}
	}
}
