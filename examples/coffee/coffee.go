// Package coffee is a demo service: order a coffee; large ones take a
// while, which shows queueing and deadlines.
package coffee

import (
	"context"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/worker"
)

// Service is the service name the coffee workers offer.
const Service = "coffee"

// Order asks for a coffee.
type Order struct {
	Size string `json:"size" jsonschema:"required,enum=small,enum=medium,enum=large,example=medium" jsonschema_description:"Small, medium or large; large ones take a while"`
	Milk bool   `json:"milk,omitempty" jsonschema:"description=With milk"`
}

// Coffee is a made coffee.
type Coffee struct {
	Size   string `json:"size" jsonschema:"description=The size made"`
	Milk   bool   `json:"milk" jsonschema:"description=With milk"`
	Millis int64  `json:"millis" jsonschema:"description=How long it took in milliseconds"`
}

var brewTime = map[string]time.Duration{"small": 5 * time.Millisecond, "medium": 20 * time.Millisecond, "large": 100 * time.Millisecond}

// Make makes the coffee, taking longer for larger sizes and giving up when
// the caller's deadline passes.
func Make(ctx context.Context, in Order) (Coffee, error) {
	d, ok := brewTime[in.Size]
	if !ok {
		return Coffee{}, domo.Errorf(domo.CodeInvalid, "size must be small, medium or large, not %q", in.Size)
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return Coffee{}, domo.Errorf(domo.CodeDeadlineExceeded, "gave up on a %s coffee: %v", in.Size, ctx.Err())
	case <-time.After(d):
	}
	return Coffee{Size: in.Size, Milk: in.Milk, Millis: time.Since(start).Milliseconds()}, nil
}

// New returns a coffee worker with its methods registered.
func New(opts ...worker.Option) *worker.Worker {
	w := worker.New(Service, append([]worker.Option{worker.WithDoc("Coffee, made to order; large ones take a while")}, opts...)...)
	w.Handle("order", worker.Typed(Make), worker.Doc("Make a coffee; gives up when the caller's deadline passes."))
	return w
}
