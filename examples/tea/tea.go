// Package tea is a demo service: brew a cup, read the menu, or watch a pot
// steep as a stream of progress updates.
package tea

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/worker"
)

// Service is the service name the tea workers offer.
const Service = "tea"

// Kinds lists the teas on the menu.
var Kinds = []string{"assam", "darjeeling", "earl grey", "green", "sencha"}

// BrewRequest asks for a cup.
type BrewRequest struct {
	Kind  string `json:"kind,omitempty" jsonschema:"enum=assam,enum=darjeeling,enum=earl grey,enum=green,enum=sencha,example=green" jsonschema_description:"The tea, one of the menu; assam if absent"`
	Sugar int    `json:"sugar,omitempty" jsonschema:"minimum=0,maximum=5,example=1" jsonschema_description:"Spoons of sugar"`
}

// Cup is a brewed cup of tea.
type Cup struct {
	Kind  string `json:"kind" jsonschema:"description=The tea brewed"`
	Sugar int    `json:"sugar" jsonschema:"description=Spoons of sugar in it"`
	Note  string `json:"note" jsonschema:"description=A word from the brewer"`
}

// Brew makes a cup, refusing kinds not on the menu and silly amounts of sugar.
func Brew(_ context.Context, in BrewRequest) (Cup, error) {
	if in.Kind == "" {
		in.Kind = "assam"
	}
	if !slices.Contains(Kinds, in.Kind) {
		return Cup{}, domo.Errorf(domo.CodeInvalid, "kind %q is not on the menu", in.Kind)
	}
	if in.Sugar < 0 || in.Sugar > 5 {
		return Cup{}, domo.Errorf(domo.CodeInvalid, "sugar must be 0 to 5 spoons, not %d", in.Sugar)
	}
	return Cup{Kind: in.Kind, Sugar: in.Sugar, Note: fmt.Sprintf("a cup of %s with %d sugar", in.Kind, in.Sugar)}, nil
}

// Menu lists the teas.
func Menu(context.Context, struct{}) ([]string, error) { return Kinds, nil }

// Steep streams the progress of a steeping pot, one update per step, when
// the caller accepts a stream, and returns the finished pot.
func Steep(ctx context.Context, req *worker.Request) ([]byte, error) {
	const steps = 3
	for i := 1; i <= steps; i++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if req.Streaming() {
			update, _ := json.Marshal(map[string]int{"step": i, "of": steps})
			if err := req.Send(update); err != nil {
				return nil, err
			}
		}
	}
	return json.Marshal(map[string]string{"pot": "ready"})
}

// New returns a tea worker with its methods registered.
func New(opts ...worker.Option) *worker.Worker {
	w := worker.New(Service, append([]worker.Option{worker.WithDoc("Tea, brewed to order")}, opts...)...)
	w.Handle("brew", worker.Typed(Brew), worker.Doc("Brew a cup of tea, with sugar if asked."))
	w.Handle("menu", worker.Typed(Menu), worker.Doc("List the teas on the menu."))
	w.HandleFunc("steep", Steep, worker.Doc("Steep a pot, reporting each step to callers that accept a stream."), worker.Streaming(),
		worker.Schemas(nil, json.RawMessage(`{"type":"object","properties":{"pot":{"type":"string","description":"ready"}}}`)))
	return w
}
