package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/client"
	"github.com/domo-framework/domo/mdp"
)

// contracts caches the services' contracts, with their request schemas
// compiled, refreshed in the background and on demand. It is safe for
// concurrent use.
type contracts struct {
	fetch func(ctx context.Context) ([]mdp.ServiceContract, error)
	log   *slog.Logger

	mu       sync.RWMutex
	services map[string]*serviceDoc
	list     []mdp.ServiceContract // sorted by service
	gen      uint64                // bumped on every change

	refreshMu   sync.Mutex // one fetch at a time; guards lastAttempt, noDocs
	lastAttempt time.Time
	noDocs      bool // the brokers do not answer mmi.docs (logged once)
}

// serviceDoc is one service's contract, with its methods by name.
type serviceDoc struct {
	contract mdp.ServiceContract
	methods  map[string]*methodDoc
}

// methodDoc is one method's contract and its compiled request schema (nil
// when it has none, or it does not compile).
type methodDoc struct {
	contract mdp.MethodContract
	request  *jsonschema.Schema
}

// errNoDocs: the brokers do not answer mmi.docs.
var errNoDocs = errors.New("brokers do not serve contracts (mmi.docs)")

// mmiDocs returns a fetch function that asks the brokers through c.
func mmiDocs(c *client.Client) func(ctx context.Context) ([]mdp.ServiceContract, error) {
	return func(ctx context.Context) ([]mdp.ServiceContract, error) {
		p, err := c.Invoke(ctx, mdp.MMIDocs, nil)
		if errors.Is(err, domo.ErrUnknownService) {
			return nil, errNoDocs
		}
		if err != nil {
			return nil, err
		}
		var out []mdp.ServiceContract
		if len(bytes.TrimSpace(p)) == 0 {
			return nil, nil
		}
		if err := json.Unmarshal(p, &out); err != nil {
			return nil, fmt.Errorf("mmi.docs: %w", err)
		}
		return out, nil
	}
}

func newContracts(fetch func(ctx context.Context) ([]mdp.ServiceContract, error), log *slog.Logger) *contracts {
	return &contracts{fetch: fetch, log: log, services: map[string]*serviceDoc{}}
}

// lookup returns the doc of service and, if the service has a contract,
// whether it has method.
func (c *contracts) lookup(service, method string) (*serviceDoc, *methodDoc) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.services[service]
	if s == nil {
		return nil, nil
	}
	return s, s.methods[method]
}

// snapshot returns the contracts and their generation.
func (c *contracts) snapshot() ([]mdp.ServiceContract, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.list, c.gen
}

// refreshIfOlder fetches the contracts unless the last attempt is less
// than age ago. It blocks for at most one fetch.
func (c *contracts) refreshIfOlder(ctx context.Context, age time.Duration) {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	if time.Since(c.lastAttempt) < age {
		return
	}
	c.refreshLocked(ctx)
}

// refreshUnlessSince fetches the contracts unless an attempt started at or
// after since: evidence that ours are stale (a broker's digests, received
// at since) is answered only by a fetch that began after it. Callers that wait on
// a fetch already under way share it. It blocks for at most one fetch.
func (c *contracts) refreshUnlessSince(ctx context.Context, since time.Time) {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	if !c.lastAttempt.Before(since) {
		return
	}
	c.refreshLocked(ctx)
}

// run refreshes the contracts every interval until ctx ends. It blocks.
func (c *contracts) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.refreshIfOlder(ctx, interval/2)
		}
	}
}

const contractsTimeout = 5 * time.Second

func (c *contracts) refreshLocked(ctx context.Context) {
	c.lastAttempt = time.Now()
	ctx, cancel := context.WithTimeout(ctx, contractsTimeout)
	defer cancel()
	list, err := c.fetch(ctx)
	if errors.Is(err, errNoDocs) {
		if !c.noDocs {
			c.log.Info("gateway: brokers do not serve contracts (mmi.docs); requests go unvalidated and the OpenAPI document lists no methods")
			c.noDocs = true
		}
		list, err = nil, nil
	}
	if err != nil {
		c.log.Warn("gateway: fetching contracts failed; keeping those held", "err", err)
		return
	}
	c.noDocs = false
	c.install(list)
}

// install replaces the cache with list, reusing the compiled schemas of
// contracts whose digest has not changed.
func (c *contracts) install(list []mdp.ServiceContract) {
	list = slices.Clone(list)
	slices.SortFunc(list, func(a, b mdp.ServiceContract) int { return strings.Compare(a.Service, b.Service) })
	list = slices.CompactFunc(list, func(a, b mdp.ServiceContract) bool { return a.Service == b.Service })

	c.mu.RLock()
	old := c.services
	c.mu.RUnlock()

	services := make(map[string]*serviceDoc, len(list))
	changed := len(list) != len(old)
	for _, sc := range list {
		if prev := old[sc.Service]; prev != nil && sc.Digest != "" && prev.contract.Digest == sc.Digest {
			services[sc.Service] = prev
			continue
		}
		changed = true
		services[sc.Service] = c.compile(sc)
	}
	if !changed {
		return
	}
	c.mu.Lock()
	c.services, c.list = services, list
	c.gen++
	c.mu.Unlock()
}

// compile builds a service's doc, compiling each method's request schema.
// A schema that does not compile is logged, and its method not validated.
func (c *contracts) compile(sc mdp.ServiceContract) *serviceDoc {
	s := &serviceDoc{contract: sc, methods: make(map[string]*methodDoc, len(sc.Methods))}
	for _, m := range sc.Methods {
		md := &methodDoc{contract: m}
		if len(m.Request) > 0 {
			sch, err := compileSchema(fmt.Sprintf("mem:///%s/%s/request.json", sc.Service, m.Name), m.Request)
			if err != nil {
				c.log.Warn("gateway: request schema does not compile; not validating", "method", sc.Service+"."+m.Name, "err", err)
			}
			md.request = sch
		}
		s.methods[m.Name] = md
	}
	return s
}

func compileSchema(url string, raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft2020)
	if err := comp.AddResource(url, doc); err != nil {
		return nil, err
	}
	return comp.Compile(url)
}

// validate checks a request body against the method's schema.
func (m *methodDoc) validate(body []byte) error {
	if m == nil || m.request == nil {
		return nil
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return m.request.Validate(inst)
}
