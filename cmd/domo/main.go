// Command domo runs brokers, calls services and measures them.
//
//	domo broker --listen tcp://127.0.0.1:5555
//	domo call tea.brew '{"sugar":2}'
//	domo services
//	domo demo
//	domo bench --clients 8 --inflight 8
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "domo:", err)
		os.Exit(1)
	}
}
