package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/client"
)

func newCallCmd() *cobra.Command {
	var (
		endpoint string
		discover string
		timeout  time.Duration
		retry    bool
	)
	cmd := &cobra.Command{
		Use:   "call METHOD [JSON]",
		Short: "Call a method and print its JSON reply",
		Example: `  domo call tea.brew '{"kind":"green","sugar":1}'
  domo call tea.menu`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			payload := []byte("{}")
			if len(args) == 2 {
				payload = []byte(args[1])
				var v any
				if err := json.Unmarshal(payload, &v); err != nil {
					return fmt.Errorf("request for %s is not valid JSON (%v): %q", args[0], err, args[1])
				}
			}
			c, err := newClient(endpoint, discover)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			var opts []client.CallOption
			if retry {
				opts = append(opts, client.Retry())
			}
			reply, err := c.Invoke(ctx, args[0], payload, opts...)
			if err != nil {
				return err
			}
			var out bytes.Buffer
			if json.Indent(&out, reply, "", "  ") != nil {
				out.Reset()
				out.Write(reply) // not JSON: print as it came
			}
			out.WriteByte('\n')
			_, err = cmd.OutOrStdout().Write(out.Bytes())
			return err
		},
	}
	cmd.Flags().StringVar(&endpoint, "broker", defaultBroker(), "broker endpoints, comma-separated ($DOMO_BROKER); the call fails over between them")
	cmd.Flags().StringVar(&discover, "discover", "", "find brokers: static:EP,EP | dns:NAME:PORT | multicast:IFACE[@GROUP][#CLUSTER]; replaces --broker")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "deadline of the call")
	cmd.Flags().BoolVar(&retry, "retry", false, "allow the broker to redeliver the request if its worker dies")
	return cmd
}
