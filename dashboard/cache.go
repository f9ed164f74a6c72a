package dashboard

import (
	"sync"
	"time"
)

// cache keeps answers for a while, so that many open pages (and the live
// sampler) cost one query per key and period. Concurrent misses on one key
// share one computation. It is bounded: when full, expired entries go, and
// if that is not enough, everything does.
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*entry
}

type entry struct {
	done    chan struct{} // closed when val and err are set
	val     any
	err     error
	expires time.Time
}

func newCache(max int) *cache { return &cache{max: max, entries: map[string]*entry{}} }

// do returns the value cached under key, or computes it with fn and keeps
// it for ttl (errors are not kept).
func (c *cache) do(key string, ttl time.Duration, fn func() (any, error)) (any, error) {
	now := time.Now()
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		select {
		case <-e.done:
			if now.Before(e.expires) {
				c.mu.Unlock()
				return e.val, nil
			}
		default: // being computed: wait for it
			c.mu.Unlock()
			<-e.done
			return e.val, e.err
		}
	}
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			select {
			case <-e.done:
				if now.After(e.expires) {
					delete(c.entries, k)
				}
			default:
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	e := &entry{done: make(chan struct{})}
	c.entries[key] = e
	c.mu.Unlock()

	e.val, e.err = fn()
	c.mu.Lock()
	if e.err != nil {
		if c.entries[key] == e {
			delete(c.entries, key)
		}
	} else {
		e.expires = time.Now().Add(ttl)
	}
	c.mu.Unlock()
	close(e.done)
	return e.val, e.err
}
