// Package discovery tells workers and clients which brokers exist.
//
// A broker announces itself with Announce: a small versioned beacon
// (cluster, broker id, endpoint) sent to a UDP multicast group on one
// named network interface at a fixed interval, and a last beacon marked
// Leaving when it stops. Multicast is opt-in and never uses an interface
// that was not named.
//
// Workers and clients watch a Source and connect to every endpoint it
// reports:
//
//   - Multicast: brokers whose beacons arrive, forgotten when the beacons
//     stop for the expiry or the broker says it is leaving; other clusters
//     are ignored;
//   - Static: a fixed list;
//   - DNS: every address a name resolves to, resolved again periodically,
//     as a Kubernetes headless service gives.
//
// Parse builds a Source from a flag value (static:LIST, dns:NAME:PORT,
// multicast:IFACE[@GROUP][#CLUSTER]); docs/discovery.md has the details
// and the beacon's wire format.
//
// A broker:
//
//	ep, err := discovery.AdvertisedEndpoint("tcp://*:5555", "eth0")
//	go discovery.Announce(ctx, discovery.AnnouncerConfig{
//		Interface: "eth0",
//		Beacon:    discovery.Beacon{Cluster: "prod", BrokerID: id, Endpoint: ep},
//	})
//
// A worker or client:
//
//	src, err := discovery.Parse("multicast:eth0#prod")
//	var connected []string
//	err = src.Watch(ctx, func(eps []string) {
//		added, removed := discovery.Diff(connected, eps)
//		connected = eps
//		// connect to added, disconnect from removed
//	})
//
// Beacons are not authenticated: anyone on the segment who knows the
// cluster name can announce a broker. Use a static list or DNS where the
// network is not trusted.
package discovery
