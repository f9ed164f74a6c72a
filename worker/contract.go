package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/contract"
	"github.com/domo-framework/domo/mdp"
)

// MethodOption describes a method registered with Handle: its doc string
// and, for a handler that is not Typed, its schemas.
type MethodOption func(*mdp.MethodContract)

// Doc sets the method's doc string: a sentence or two saying what it does,
// shown by `domo docs` and in the gateway's OpenAPI document.
func Doc(text string) MethodOption {
	return func(m *mdp.MethodContract) { m.Doc = text }
}

// Streaming marks the method as one that sends partial replies
// (Request.Send) to callers that accept them.
func Streaming() MethodOption {
	return func(m *mdp.MethodContract) { m.Streaming = true }
}

// Sensitive marks the method's requests and replies as never to be
// recorded: a broker that journals bodies leaves this method's out.
func Sensitive() MethodOption {
	return func(m *mdp.MethodContract) { m.Sensitive = true }
}

// Schemas sets the JSON Schemas of the method's request and reply payloads
// (nil for none), for a handler that is not Typed, or to replace what Typed
// reflected. They are published in the contract only: the worker checks
// requests against the schema of a Typed handler alone.
func Schemas(request, reply json.RawMessage) MethodOption {
	return func(m *mdp.MethodContract) { m.Request, m.Reply = request, reply }
}

// WithDoc sets the doc string of the service as a whole.
func WithDoc(text string) Option {
	return func(o *options) { o.doc = text }
}

// described is a Handler that knows the schemas of its payloads: Typed's.
type described interface {
	schemas() (request, reply json.RawMessage)
}

// typed is the Handler Typed returns.
type typed[In, Out any] struct {
	fn             func(context.Context, In) (Out, error)
	request, reply json.RawMessage
	check          *contract.Validator // nil: In has no schema
}

// Typed returns a Handler that checks the request payload against the JSON
// Schema of In, decodes it as JSON into an In, calls fn, and encodes its Out
// as the JSON reply payload. Registered with Handle, it publishes both
// schemas in the worker's contract (see package contract for how they are
// generated from the types and their struct tags).
//
// An empty payload decodes as the zero In (and is checked as {} if In is a
// struct). A payload that does not conform is answered with a *domo.Error of
// code domo.CodeInvalid without calling fn; its Details name the offending
// field as a JSON Pointer, {"field": "/sugar", "reason": "..."}. The schemas
// are generated and compiled once, by Typed. The Handler is as blocking and
// as goroutine-safe as fn.
func Typed[In, Out any](fn func(context.Context, In) (Out, error)) Handler {
	t := &typed[In, Out]{fn: fn, request: contract.For[In](), reply: contract.For[Out]()}
	if t.request != nil {
		v, err := contract.Compile(t.request)
		if err != nil { // not expected of a reflected schema: publish nothing unchecked
			t.request = nil
		}
		t.check = v
	}
	return t
}

func (t *typed[In, Out]) schemas() (json.RawMessage, json.RawMessage) { return t.request, t.reply }

// ServeMDP checks, decodes, calls fn and encodes; see Typed.
func (t *typed[In, Out]) ServeMDP(ctx context.Context, req *Request) ([]byte, error) {
	if t.check != nil {
		if err := t.check.Validate(req.Payload); err != nil {
			e := domo.AsError(err)
			e.Message = fmt.Sprintf("method %q: %s", req.Method, e.Message)
			return nil, e
		}
	}
	var in In
	if len(req.Payload) > 0 {
		if err := json.Unmarshal(req.Payload, &in); err != nil {
			return nil, domo.Errorf(domo.CodeInvalid, "method %q: request payload: %v", req.Method, err)
		}
	}
	out, err := t.fn(ctx, in)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("method %q: encode reply: %w", req.Method, err)
	}
	return b, nil
}

// describe returns the contract of method served by h.
func describe(method string, h Handler, opts []MethodOption) mdp.MethodContract {
	m := mdp.MethodContract{Name: method}
	if d, ok := h.(described); ok {
		m.Request, m.Reply = d.schemas()
	}
	for _, opt := range opts {
		opt(&m)
	}
	return m
}

// Contract returns the worker's contract: its service, the doc string of
// WithDoc, and each registered method (sorted by name) with its doc and
// schemas, and the digest of all that. It is the contract the worker sends
// the broker in READY when Run starts; methods registered after that are
// served but not published. It does not block and is safe for concurrent
// use.
func (w *Worker) Contract() mdp.ServiceContract {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.contractLocked()
}

func (w *Worker) contractLocked() mdp.ServiceContract {
	c := mdp.ServiceContract{Service: w.service, Doc: w.opts.doc, Methods: make([]mdp.MethodContract, 0, len(w.methods))}
	for _, m := range w.methods {
		c.Methods = append(c.Methods, m)
	}
	slices.SortFunc(c.Methods, func(a, b mdp.MethodContract) int { return strings.Compare(a.Name, b.Name) })
	c.Digest = c.ComputeDigest()
	return c
}

// readyLocked builds the READY message: the credit, that the worker takes
// batches, and, if the worker has methods, its contract (mdp.HeaderContract). A contract that would put the
// READY over the worker's limits is left out, with a warning.
func (w *Worker) readyLocked() [][]byte {
	hdr := mdp.AppendHeader(nil, mdp.HeaderCredit, strconv.Itoa(w.opts.concurrency))
	hdr = mdp.AppendHeader(hdr, mdp.HeaderBatch, "1")
	ready := mdp.Message{Role: mdp.Worker, Version: 1, Command: mdp.Ready, Service: []byte(w.service), Body: [][]byte{hdr}}
	plain, _ := ready.Append(nil) // cannot fail: READY exists in MDP/0.1
	if len(w.methods) == 0 && w.opts.doc == "" {
		return plain
	}
	c := w.contractLocked()
	js, err := json.Marshal(c)
	if err != nil {
		w.log.Warn("worker: contract not sent: a schema is not JSON", "err", err)
		return plain
	}
	ready.Body = [][]byte{mdp.AppendHeader(hdr, mdp.HeaderContract, js)}
	frames, _ := ready.Append(nil)
	// The broker adds an identity frame; leave room for it.
	if err := w.opts.limits.Check(append(frames, make([]byte, 256))); err != nil {
		w.log.Warn("worker: contract not sent: READY would break the limits", "err", err)
		return plain
	}
	return frames
}
