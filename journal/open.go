package journal

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// An Opener opens a store from the part of a spec after its scheme.
type Opener func(ctx context.Context, dsn string) (Store, error)

var (
	openersMu sync.Mutex
	openers   = map[string]Opener{}
)

// Register makes a store technology available to Open under scheme. The
// store packages register themselves when imported (journal/sqlite as
// "sqlite", journal/postgres as "postgres" and "postgresql"). It is safe
// from several goroutines; it panics if scheme is registered twice.
func Register(scheme string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	if _, dup := openers[scheme]; dup {
		panic("journal: Register called twice for " + scheme)
	}
	openers[scheme] = open
}

// Open opens the store a spec names: "sqlite:PATH" (a file, created if
// needed) or "postgres:DSN" (a libpq keyword string or URL; a bare
// "postgres://..." URL works too). The store package must be imported,
// e.g. with _ "github.com/domo-framework/domo/journal/sqlite". It blocks
// while it connects and creates the schema.
func Open(spec string) (Store, error) {
	return OpenContext(context.Background(), spec)
}

// OpenContext is Open with a context for connecting.
func OpenContext(ctx context.Context, spec string) (Store, error) {
	scheme, rest, ok := strings.Cut(spec, ":")
	if !ok || rest == "" {
		return nil, fmt.Errorf("journal: spec %q: want sqlite:PATH or postgres:DSN", spec)
	}
	openersMu.Lock()
	open := openers[scheme]
	var known []string
	for k := range openers {
		known = append(known, k)
	}
	openersMu.Unlock()
	if open == nil {
		sort.Strings(known)
		return nil, fmt.Errorf("journal: spec %q: unknown store %q (registered: %s)", spec, scheme, strings.Join(known, ", "))
	}
	if (scheme == "postgres" || scheme == "postgresql") && strings.HasPrefix(rest, "//") {
		rest = spec // a URL: pgx wants it whole
	}
	return open(ctx, rest)
}

// ParseRetention parses a retention age: a Go duration ("36h", "90m") or a
// whole number of days ("7d"); "0" or "" means keep forever.
func ParseRetention(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("journal: bad retention %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("journal: bad retention %q", s)
	}
	return d, nil
}
