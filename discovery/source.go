package discovery

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Source tells which brokers exist.
//
// Watch blocks until ctx ends or the source fails, calling fn with the full
// current set of broker endpoints, sorted and without duplicates, each time
// it changes; the first call comes as soon as the set is known. fn is
// called from one goroutine at a time, never concurrently, and must not
// keep the slice. Watch returns ctx.Err() when ctx ends, or an error at
// once if the source cannot start (a bad interface, say). Every goroutine
// Watch starts has ended when it returns. A Source may be watched by
// several goroutines at once; each Watch is independent.
type Source interface {
	Watch(ctx context.Context, fn func(endpoints []string)) error
}

// StaticSource is a fixed list of broker endpoints.
type StaticSource struct {
	endpoints []string
}

// Static returns a Source that reports the given endpoints once and never
// changes. It is safe from several goroutines.
func Static(endpoints ...string) StaticSource {
	return StaticSource{endpoints: normalize(endpoints)}
}

// Watch calls fn once with the endpoints, then blocks until ctx ends and
// returns ctx.Err().
func (s StaticSource) Watch(ctx context.Context, fn func(endpoints []string)) error {
	fn(slices.Clone(s.endpoints))
	<-ctx.Done()
	return ctx.Err()
}

// normalize returns the endpoints sorted, without duplicates or empty
// strings, in a new slice.
func normalize(endpoints []string) []string {
	out := make([]string, 0, len(endpoints))
	for _, e := range endpoints {
		if e != "" {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Diff compares two endpoint sets as given to a Watch callback (sorted,
// without duplicates) and returns the endpoints to connect to and those to
// disconnect from. It does not block and is safe from several goroutines.
func Diff(old, cur []string) (added, removed []string) {
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(old) && old[i] < cur[j]):
			removed = append(removed, old[i])
			i++
		case i == len(old) || cur[j] < old[i]:
			added = append(added, cur[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// Parse returns the Source a command-line flag such as --discover names.
// It does not block and is safe from several goroutines. The syntax:
//
//	static:ENDPOINT[,ENDPOINT...]        a fixed list, e.g. static:tcp://10.0.0.5:5555,tcp://10.0.0.6:5555
//	dns:NAME:PORT[/EVERY]                every address NAME resolves to, re-resolved every EVERY (default 5s),
//	                                     e.g. dns:domo-broker.prod.svc.cluster.local:5555/10s
//	multicast:IFACE[@GROUP][#CLUSTER]    beacons heard on interface IFACE (required), on GROUP (default
//	                                     239.255.77.77:5670), for CLUSTER (default domo), e.g. multicast:eth0#prod
func Parse(spec string) (Source, error) {
	kind, rest, _ := strings.Cut(spec, ":")
	switch kind {
	case "static":
		var eps []string
		for _, e := range strings.Split(rest, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			if !strings.Contains(e, "://") {
				return nil, fmt.Errorf("discovery: %q: endpoint %q has no transport (tcp://HOST:PORT)", spec, e)
			}
			eps = append(eps, e)
		}
		if len(eps) == 0 {
			return nil, fmt.Errorf("discovery: %q: no endpoints", spec)
		}
		return Static(eps...), nil
	case "dns":
		every := DefaultDNSEvery
		if i := strings.LastIndexByte(rest, '/'); i >= 0 {
			d, err := time.ParseDuration(rest[i+1:])
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("discovery: %q: bad interval %q", spec, rest[i+1:])
			}
			every, rest = d, rest[:i]
		}
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 {
			return nil, fmt.Errorf("discovery: %q: want dns:NAME:PORT", spec)
		}
		port, err := strconv.Atoi(rest[i+1:])
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("discovery: %q: bad port %q", spec, rest[i+1:])
		}
		return DNS(DNSConfig{Name: rest[:i], Port: port, Every: every}), nil
	case "multicast":
		rest, cluster, _ := strings.Cut(rest, "#")
		iface, group, _ := strings.Cut(rest, "@")
		if iface == "" {
			return nil, fmt.Errorf("discovery: %q: %w", spec, ErrNoInterface)
		}
		cfg := ListenerConfig{Interface: iface, Group: group, Cluster: cluster}
		if cfg.Cluster != "" {
			if err := checkField(cfg.Cluster, MaxClusterLen); err != nil {
				return nil, fmt.Errorf("discovery: %q: cluster: %v", spec, err)
			}
		}
		if _, _, err := resolveGroup(cfg.withDefaults().Group, iface); err != nil {
			return nil, fmt.Errorf("discovery: %q: %w", spec, err)
		}
		return Multicast(cfg), nil
	}
	return nil, fmt.Errorf("discovery: %q: want static:LIST, dns:NAME:PORT or multicast:IFACE", spec)
}
