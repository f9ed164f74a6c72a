// Package client is the SDK for calling domo services through brokers.
//
// A Client holds one connection per broker, all owned by one goroutine, and
// carries any number of concurrent calls over them: callers encode their
// requests in their own goroutine and hand them to the loop, which sends
// each to a broker and matches each reply to its caller by request id
// (net/rpc style). All Client methods are safe for concurrent use.
//
//	c, err := client.New(client.WithBroker("tcp://10.0.0.1:5555", "tcp://10.0.0.2:5555"))
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//
//	var cup Cup
//	err = c.Call(ctx, "tea.brew", BrewRequest{Leaves: "sencha"}, &cup)
//	if errors.Is(err, domo.ErrOverloaded) {
//		// back off and retry
//	}
//
//	raw, err := c.Invoke(ctx, "tea.brew", []byte(`{"leaves":"sencha"}`), client.Retry())
//
//	s, err := c.Stream(ctx, "tea.steep", nil)
//	for {
//		p, err := s.Next(ctx)
//		if err == io.EOF {
//			break
//		}
//		if err != nil {
//			return err
//		}
//		use(p)
//	}
//
// # Many brokers
//
// Calls go to the brokers that are alive, the one with the fewest calls in
// flight first (round-robin among equals). Any message from a broker proves
// it alive; a connection silent for one heartbeat interval is probed with an
// MMI "mmi.service" request, which any RFC 8 broker answers, and a broker
// silent for liveness intervals is dead (WithHeartbeat; 1 s and 3 by
// default). Sockets are ZMQ_IMMEDIATE: nothing queues for a broker that is
// not connected. A dead broker gets no calls; its calls in flight fail with
// domo.ErrUnavailable at once, except calls made with Retry, which are sent
// again to a live broker (same request id, "attempt" header 2, 3, ...) with
// backoff while their deadline allows; so are Retry calls that a broker
// answers "unavailable" (its worker was lost, or it is shutting down). The
// caller gets one answer, the first; later ones are dropped and counted as
// Late. The dead broker is still probed, and gets calls again as soon as it
// answers, so a restarted broker rejoins by itself. With no broker alive, a
// call waits for one, within its deadline, rather than failing at once.
//
// SetBrokers changes the set of brokers at run time; WithDiscovery lets a
// source (package discovery) drive it. Stats reports each broker's state and
// counts retries and failovers.
//
// A method name is "service.method", split at the last dot ("a.b.c" is
// method "c" of service "a.b"); a name starting with "mmi." is a broker
// query and names a service as a whole, answered by whichever broker the
// call goes to. Raw speaks plain MDP/0.1, without the domo envelope, to
// third-party workers; a Raw call is never sent again, and fails with
// domo.ErrUnavailable if its broker dies. Streams are never sent again
// either: a stream whose broker dies ends with domo.ErrUnavailable.
//
// Errors: a failure reported by the broker or a worker is a *domo.Error;
// compare with errors.Is against the domo sentinels (domo.ErrUnknownService,
// domo.ErrOverloaded, ...). A deadline that passes matches both
// domo.ErrDeadlineExceeded and context.DeadlineExceeded; a cancellation both
// domo.ErrCanceled and context.Canceled; a closed client domo.ErrClosed.
package client
