package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/mdp"
)

// MMIDocs returns a Config.Contracts that asks the brokers c talks to for
// every service's contract (MMI mmi.docs). It is safe from several
// goroutines, as c is.
func MMIDocs(c *client.Client) func(ctx context.Context) ([]mdp.ServiceContract, error) {
	return func(ctx context.Context) ([]mdp.ServiceContract, error) {
		p, err := c.Invoke(ctx, mdp.MMIDocs, nil)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(p)) == 0 {
			return nil, nil
		}
		var out []mdp.ServiceContract
		if err := json.Unmarshal(p, &out); err != nil {
			return nil, fmt.Errorf("%s: %w", mdp.MMIDocs, err)
		}
		return out, nil
	}
}
