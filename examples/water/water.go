// Package water is a demo service: pour a glass, or boil a kettle that
// refuses to boil past 100 degrees, which shows typed errors.
package water

import (
	"context"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/worker"
)

// Service is the service name the water workers offer.
const Service = "water"

// Glass is an amount of water.
type Glass struct {
	ML int `json:"ml" jsonschema:"required,minimum=1,maximum=1000,example=250" jsonschema_description:"Millilitres"`
}

// Pour pours a glass of up to a litre.
func Pour(_ context.Context, in Glass) (Glass, error) {
	if in.ML <= 0 || in.ML > 1000 {
		return Glass{}, domo.Errorf(domo.CodeInvalid, "ml must be 1 to 1000, not %d", in.ML)
	}
	return in, nil
}

// Kettle is a boil request.
type Kettle struct {
	Celsius int `json:"celsius" jsonschema:"example=100" jsonschema_description:"The temperature asked for; water boils at 100"`
}

// Boil heats the kettle; water at sea level does not go past 100.
func Boil(_ context.Context, in Kettle) (Kettle, error) {
	if in.Celsius > 100 {
		return Kettle{}, domo.Errorf(domo.CodeInvalid, "water boils at 100 degrees, not %d", in.Celsius)
	}
	return Kettle{Celsius: 100}, nil
}

// Echo returns its payload unchanged: the service `domo bench` measures.
func Echo(_ context.Context, req *worker.Request) ([]byte, error) { return req.Payload, nil }

// New returns a water worker with its methods registered.
func New(opts ...worker.Option) *worker.Worker {
	w := worker.New(Service, append([]worker.Option{worker.WithDoc("Water: pour a glass, boil a kettle, or echo a payload")}, opts...)...)
	w.Handle("pour", worker.Typed(Pour), worker.Doc("Pour a glass of up to a litre."))
	w.Handle("boil", worker.Typed(Boil), worker.Doc("Boil the kettle; asking for more than 100 degrees is a typed error."))
	w.HandleFunc("echo", Echo, worker.Doc("Return the payload unchanged, whatever it is: what `domo bench` measures."))
	return w
}
