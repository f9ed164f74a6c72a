package examples_test

import (
	"testing"

	"github.com/domo-framework/domo/contract"
	"github.com/domo-framework/domo/examples/coffee"
	"github.com/domo-framework/domo/examples/tea"
	"github.com/domo-framework/domo/examples/water"
	"github.com/domo-framework/domo/worker"
)

// TestContracts checks that every example service and method is described,
// and that the schemas it publishes compile.
func TestContracts(t *testing.T) {
	for _, w := range []*worker.Worker{tea.New(), coffee.New(), water.New()} {
		c := w.Contract()
		if c.Doc == "" || len(c.Methods) == 0 {
			t.Errorf("service %s: doc %q, %d methods; want a doc and methods", c.Service, c.Doc, len(c.Methods))
		}
		for _, m := range c.Methods {
			if m.Doc == "" {
				t.Errorf("%s.%s has no doc", c.Service, m.Name)
			}
			for what, s := range map[string][]byte{"request": m.Request, "reply": m.Reply} {
				if s == nil {
					continue
				}
				if _, err := contract.Compile(s); err != nil {
					t.Errorf("%s.%s %s schema: %v", c.Service, m.Name, what, err)
				}
			}
		}
	}
}
