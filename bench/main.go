// Command compare drives the same request-reply work through domo, NATS and
// two floors (a plain Go TCP relay and a raw libzmq DEALER/ROUTER echo), each
// started fresh on 127.0.0.1 for every cell, interleaving the systems, and
// prints a markdown table. `make compare` runs it; see docs/benchmarks.md ("domo against NATS and the floors").
//
// The same binary plays every role: without -role it is the harness; with
// -role it is one of the processes the harness starts.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	role := flag.String("role", "", "internal: the process role (load, domo-server, nats-server, relay, tcp-echo, zmq-echo, mdp-workers)")
	addr := flag.String("addr", "", "internal: the address a role connects to")
	k := flag.Int("k", 2, "echo workers / responders per system")
	concurrency := flag.Int("concurrency", 32, "requests each domo worker handles at once")
	var lc loadConfig
	flag.StringVar(&lc.System, "system", "", "internal: the system the load role drives")
	flag.IntVar(&lc.Clients, "clients", 1, "internal: load clients")
	flag.IntVar(&lc.InFlight, "inflight", 1, "internal: requests in flight per client")
	flag.IntVar(&lc.Size, "size", 64, "internal: body bytes")
	flag.IntVar(&lc.BrokerPID, "broker-pid", 0, "internal: the broker process to read /proc of")
	var h harness
	flag.DurationVar(&h.duration, "duration", 3*time.Second, "measured time per cell")
	flag.DurationVar(&h.warmup, "warmup", 500*time.Millisecond, "unmeasured load before each cell's window")
	flag.IntVar(&h.rounds, "rounds", 2, "rounds over the grid; each figure is the median over rounds")
	flag.BoolVar(&h.quick, "quick", false, "a small grid, 1 s cells, 1 round (a smoke run)")
	flag.StringVar(&h.out, "out", "", "also write the report (markdown) to this file")
	flag.StringVar(&h.domoBin, "domo", "", "a prebuilt domo binary (default: build ./cmd/domo from -repo)")
	flag.StringVar(&h.repo, "repo", "..", "the domo checkout to build the broker from")
	flag.StringVar(&h.rows, "rows", "", "the grid's rows instead of the default: MODE/BYTES/CLIENTS,... (e.g. sync/64/1,pipelined/4096/64)")
	flag.StringVar(&h.systems, "systems", "domo,nats,relay,zmq", "systems to run, comma-separated (also: mdp, plain MDP/0.1 clients and workers through the domo broker)")
	flag.Parse()
	lc.Addr = *addr
	h.k, h.concurrency = *k, *concurrency

	var err error
	switch *role {
	case "":
		err = h.run()
	case "load":
		lc.Warmup, lc.Duration = h.warmup, h.duration
		var res loadResult
		if res, err = runLoad(lc); err == nil {
			err = json.NewEncoder(os.Stdout).Encode(res)
		}
	case "domo-server":
		err = serveDomo(*addr, *k, *concurrency)
	case "nats-server":
		err = serveNATS(*addr, *k)
	case "relay":
		err = serveRelay(*k)
	case "tcp-echo":
		err = serveTCPEcho(*addr, *k)
	case "zmq-echo":
		err = serveZMQEcho()
	case "mdp-workers":
		err = serveMDPWorkers(*addr, *k)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "compare: %v\n", err)
		os.Exit(1)
	}
}
