package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/mdp"
)

func newServicesCmd() *cobra.Command {
	var (
		endpoint string
		asJSON   bool
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "services",
		Short: "List the services a broker knows, with their workers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(endpoint, "")
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			services, err := c.Services(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(services)
			}
			return printServices(cmd.OutOrStdout(), services)
		},
	}
	cmd.Flags().StringVar(&endpoint, "broker", defaultBroker(), "broker endpoints, comma-separated ($DOMO_BROKER)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "deadline of the query")
	return cmd
}

// printServices prints one row per service. METHODS is "-" for a service
// whose workers sent no contract, and is marked "!" when its workers sent
// different contracts; a note under the table says which.
func printServices(w io.Writer, services []mdp.ServiceInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tWORKERS\tREADY\tCAPACITY\tIN FLIGHT\tQUEUED\tMETHODS")
	var disagree []mdp.ServiceInfo
	for _, s := range services {
		methods := "-"
		if s.Digest != "" {
			methods = strconv.Itoa(s.Methods)
		}
		if s.Contracts > 1 {
			methods += " !"
			disagree = append(disagree, s)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Workers, s.Ready, s.Capacity, s.InFlight, s.Queued, methods)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range disagree {
		fmt.Fprintf(w, "! the workers of %s disagree about its contract: %d different ones (domo docs %s shows the latest)\n", s.Name, s.Contracts, s.Name)
	}
	return nil
}
