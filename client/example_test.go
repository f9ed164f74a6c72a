package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/client"
)

// This example needs a running broker and a "tea" service, so it is
// compiled but not run.
func Example() {
	c, err := client.New(client.WithBroker("tcp://127.0.0.1:5555"), client.WithTimeout(5*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx := context.Background()

	type brew struct {
		Leaves string `json:"leaves"`
	}
	var cup struct {
		Temperature int `json:"temperature"`
	}
	err = c.Call(ctx, "tea.brew", brew{Leaves: "sencha"}, &cup)
	switch {
	case errors.Is(err, domo.ErrOverloaded):
		fmt.Println("busy; try later")
	case errors.Is(err, domo.ErrDeadlineExceeded):
		fmt.Println("too slow")
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Println("tea at", cup.Temperature)
	}

	s, err := c.Stream(ctx, "tea.steep", nil, client.Retry())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	for {
		p, err := s.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s\n", p)
	}
}
