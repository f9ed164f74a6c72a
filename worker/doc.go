// Package worker is the SDK for writing domo services: a Worker connects to a
// broker, declares how many requests it takes at once, runs a handler for
// each request the broker hands it, and reconnects when the broker goes away.
//
//	type BrewIn struct {
//		Cups int `json:"cups" jsonschema:"required,minimum=1,description=Cups to brew"`
//	}
//
//	w := worker.New("tea", worker.WithBroker("tcp://127.0.0.1:5555"))
//	w.Handle("brew", worker.Typed(func(ctx context.Context, in BrewIn) (BrewOut, error) {
//		return BrewOut{Pot: in.Cups}, nil // in has been checked against BrewIn's schema
//	}), worker.Doc("Brew a pot"))
//	w.HandleFunc("pour", func(ctx context.Context, req *worker.Request) ([]byte, error) {
//		if req.Streaming() {
//			for _, drop := range drops {
//				if err := req.Send(drop); err != nil {
//					return nil, err
//				}
//			}
//		}
//		return []byte(`"done"`), nil
//	}, worker.Doc("Pour the pot, a drop at a time"), worker.Streaming())
//	go func() {
//		<-stop
//		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//		defer cancel()
//		w.Shutdown(ctx) // finish in-flight requests, then DISCONNECT
//	}()
//	if err := w.Run(ctx); err != nil { ... }
//
// # Protocol
//
// The worker speaks MDP/0.1 (ZeroMQ RFC 7) to the broker: READY carries one
// extra frame, a domo headers frame with the credit (WithConcurrency) and the
// worker's contract (Worker.Contract: each method's doc and the JSON Schemas
// of its request and reply), which other MDP brokers ignore. Requests arrive as MDPW01 REQUEST (answered with
// REPLY) or as MDPW02 REQUEST (RFC 18; answered with FINAL, with PARTIALs
// before it from Request.Send). A request body that is a domo envelope
// [method, headers, payload] is routed to the method's Handler and answered
// with a reply envelope [status, headers, payload] that echoes the request id;
// any other body goes to the HandleRaw function, for plain MDP clients.
//
// # Contracts
//
// A method registered with Typed has the JSON Schemas of its In and Out
// types (see package contract for the struct tags that describe fields);
// the worker checks each request against In's schema before decoding it,
// and answers one that does not conform with domo.CodeInvalid, naming the
// field, without running the handler. Doc, Streaming and Schemas describe a
// method further; WithDoc describes the service.
//
// # Concurrency
//
// One goroutine owns the worker's socket to the broker. Handlers never run on
// it: they run on a pool of WithConcurrency goroutines, so a Handler must be
// safe for concurrent use, and may block. Their replies travel back to the
// socket's goroutine through a queue. A handler's context ends when the
// request's deadline (the "deadline" header) passes or the worker stops; a
// request whose deadline has already passed is answered
// domo.CodeDeadlineExceeded without running the handler. A panicking handler
// is recovered and answered domo.CodeInternal.
//
// When the broker is silent for the heartbeat interval times the liveness, or
// sends DISCONNECT, the worker closes its socket, waits (with backoff and
// jitter), opens a new one and says READY again; replies to requests that
// came on the old socket are dropped, since the broker has given them up.
package worker
