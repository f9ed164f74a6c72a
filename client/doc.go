// Package client is the SDK for calling domo services through a broker.
//
// A Client holds one connection to a broker, owned by one goroutine, and
// carries any number of concurrent calls over it: callers encode their
// requests in their own goroutine and hand them to the loop, which matches
// each reply to its caller by request id (net/rpc style). All Client
// methods are safe for concurrent use.
//
//	c, err := client.New(client.WithBroker("tcp://127.0.0.1:5555"))
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
// A method name is "service.method", split at the last dot ("a.b.c" is
// method "c" of service "a.b"); a name starting with "mmi." is a broker
// query and names a service as a whole. Raw speaks plain MDP/0.1, without
// the domo envelope, to third-party workers.
//
// Errors: a failure reported by the broker or a worker is a *domo.Error;
// compare with errors.Is against the domo sentinels (domo.ErrUnknownService,
// domo.ErrOverloaded, ...). A deadline that passes matches both
// domo.ErrDeadlineExceeded and context.DeadlineExceeded; a cancellation both
// domo.ErrCanceled and context.Canceled; a closed client domo.ErrClosed.
package client
