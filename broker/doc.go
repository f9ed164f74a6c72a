// Package broker routes requests from clients to workers: the Majordomo
// broker of domo.
//
// A Broker binds one ROUTER socket and runs one loop that owns it and all
// routing state: per-service bounded queues, the registry of workers with
// their credit, the map of requests in flight, and heartbeats both ways.
// Nothing in the loop waits on disk or another peer; other goroutines reach
// it through Stats, Shutdown and Close, which post work to the loop.
//
//	b, err := broker.New(broker.DefaultConfig())
//	if err != nil { ... }
//	go b.Run(ctx)
//	...
//	b.Shutdown(ctx) // drain, tell workers DISCONNECT
//
// The broker speaks MDP/0.1 and MDP/0.2 to clients and workers of any
// implementation, and the domo extensions (credit, the envelope) to domo's
// own SDKs; docs/protocol.md specifies all of it.
package broker
