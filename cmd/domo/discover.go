package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/discovery"
)

// announceFlags are a broker's multicast announcement settings.
type announceFlags struct {
	on        bool
	iface     string
	group     string
	endpoint  string
	cluster   string
	interval  time.Duration
	discover  string // where the broker finds its peers
	discovery discovery.Source
}

func (a *announceFlags) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&a.on, "announce", false, "announce this broker by UDP multicast (needs --announce-interface)")
	f.StringVar(&a.iface, "announce-interface", "", "network interface the beacons leave by, e.g. eth0 (lo on one machine)")
	f.StringVar(&a.group, "announce-group", discovery.DefaultGroup, "multicast group and port of the beacons")
	f.StringVar(&a.endpoint, "announce-endpoint", "", "endpoint to announce (default: the first --listen endpoint, a wildcard host replaced by the interface's address)")
	f.StringVar(&a.cluster, "cluster", discovery.DefaultCluster, "cluster name: brokers, workers and clients of other clusters ignore each other")
	f.DurationVar(&a.interval, "announce-interval", discovery.DefaultInterval, "time between beacons")
	f.StringVar(&a.discover, "discover", "", "where to find peer brokers: static:EP,EP | dns:NAME:PORT | multicast:IFACE[@GROUP][#CLUSTER] (see docs/discovery.md)")
}

// check validates the flags before the broker starts.
func (a *announceFlags) check() error {
	if a.on && a.iface == "" {
		return fmt.Errorf("--announce needs --announce-interface: beacons go only where you say")
	}
	if a.discover != "" {
		src, err := discovery.Parse(a.discover)
		if err != nil {
			return fmt.Errorf("--discover: %w", err)
		}
		a.discovery = src
	}
	return nil
}

// start runs the announcer and the peer discovery of b until ctx ends.
func (a *announceFlags) start(ctx context.Context, b *broker.Broker, id string) error {
	if a.on {
		ep := a.endpoint
		if ep == "" {
			var err error
			if ep, err = discovery.AdvertisedEndpoint(b.Endpoints()[0], a.iface); err != nil {
				return err
			}
		}
		cfg := discovery.AnnouncerConfig{
			Group:     a.group,
			Interface: a.iface,
			Interval:  a.interval,
			Beacon:    discovery.Beacon{Cluster: a.cluster, BrokerID: id, Endpoint: ep},
			OnError:   func(err error) { slog.Warn("announce", "err", err) },
		}
		slog.Info("announcing", "endpoint", ep, "interface", a.iface, "group", a.group, "cluster", a.cluster)
		go func() {
			if err := discovery.Announce(ctx, cfg); err != nil && ctx.Err() == nil {
				slog.Error("announce stopped", "err", err)
			}
		}()
	}
	if a.discovery != nil {
		go func() {
			err := a.discovery.Watch(ctx, func(endpoints []string) {
				slog.Info("peers", "endpoints", endpoints)
				b.SetPeers(endpoints)
			})
			if err != nil && ctx.Err() == nil {
				slog.Error("peer discovery stopped", "err", err)
			}
		}()
	}
	return nil
}

// parseDiscover parses a --discover flag of a worker or client; nil if unset.
func parseDiscover(spec string) (discovery.Source, error) {
	if spec == "" {
		return nil, nil
	}
	src, err := discovery.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("--discover: %w", err)
	}
	return src, nil
}

// newClient connects a client to the comma-separated broker endpoints, or
// to the brokers a --discover spec finds.
func newClient(endpoints, discover string, opts ...client.Option) (*client.Client, error) {
	src, err := parseDiscover(discover)
	if err != nil {
		return nil, err
	}
	if src != nil {
		opts = append(opts, client.WithDiscovery(src))
	} else {
		opts = append(opts, client.WithBroker(strings.Split(endpoints, ",")...))
	}
	return client.New(opts...)
}
