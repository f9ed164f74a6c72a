package dashboard

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/journal"
	"github.com/domo-framework/domo/mdp"
)

// Broker is what the dashboard needs of a broker: a snapshot of its state.
// *broker.Broker satisfies it. Stats must be safe from several goroutines.
type Broker interface {
	Stats(ctx context.Context) (broker.Stats, error)
}

// Config configures a Dashboard. Only Broker is required.
type Config struct {
	// Broker is the broker whose health, services and workers are shown.
	Broker Broker

	// Journal is where the requests pages read from. nil means the journal
	// is off: those pages say so, and the charts show live broker counters
	// only.
	Journal journal.Store

	// Contracts returns the contracts (methods, docs, schemas) of every
	// service; MMIDocs makes one that asks the brokers (mmi.docs). nil
	// means methods are not listed. It must be safe from several
	// goroutines; its answer is cached for ContractsTTL.
	Contracts func(ctx context.Context) ([]mdp.ServiceContract, error)

	// Title names the deployment in the page header (default "domo").
	Title string

	// Interval is how often live updates are pushed to open pages
	// (default 1 s).
	Interval time.Duration

	// History is how many live samples (one per Interval) the dashboard
	// keeps for its queue and throughput charts (default 600).
	History int

	// ContractsTTL is how long a Contracts answer is reused (default 5 s).
	ContractsTTL time.Duration

	// Logger receives the dashboard's errors; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults: title "domo", updates every second,
// ten minutes of live history, contracts cached for 5 s.
func DefaultConfig() Config {
	return Config{
		Title:        "domo",
		Interval:     time.Second,
		History:      600,
		ContractsTTL: 5 * time.Second,
	}
}

//go:embed assets
var assetsFS embed.FS

// Dashboard is an http.Handler serving the dashboard's pages (at its root)
// and their JSON API (under api/). Its methods are safe from several
// goroutines. Mount it at "/" (or under a prefix with http.StripPrefix:
// its pages use relative URLs only).
type Dashboard struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	assets http.Handler
	cache  *cache

	startOnce sync.Once
	stopOnce  sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu      sync.Mutex
	history []Sample // ring, oldest first once full
	next    int
	subs    map[chan []byte]struct{}
	last    []byte // the last event sent, for new subscribers
}

// New returns a Dashboard for cfg; zero fields take DefaultConfig's values.
// It starts nothing: live sampling begins with the first HTTP request and
// ends with Close.
func New(cfg Config) *Dashboard {
	d := DefaultConfig()
	if cfg.Title == "" {
		cfg.Title = d.Title
	}
	if cfg.Interval <= 0 {
		cfg.Interval = d.Interval
	}
	if cfg.History <= 0 {
		cfg.History = d.History
	}
	if cfg.ContractsTTL <= 0 {
		cfg.ContractsTTL = d.ContractsTTL
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	sub, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	ctx, cancel := context.WithCancel(context.Background())
	db := &Dashboard{
		cfg:    cfg,
		log:    log,
		assets: http.FileServerFS(sub),
		cache:  newCache(4096),
		ctx:    ctx,
		cancel: cancel,
		subs:   map[chan []byte]struct{}{},
	}
	db.routes()
	return db
}

// ServeHTTP serves the pages and the API.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.start()
	d.mux.ServeHTTP(w, r)
}

// Close stops live sampling and ends the event streams. It is idempotent;
// it does not close the Broker or the Journal.
func (d *Dashboard) Close() error {
	d.stopOnce.Do(func() {
		d.cancel()
		d.wg.Wait()
	})
	return nil
}

func (d *Dashboard) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", d.serveIndex)
	m.Handle("GET /assets/", http.StripPrefix("/assets", d.assetHandler()))
	m.HandleFunc("GET /api/health", d.HandleHealth)
	m.HandleFunc("GET /api/services", d.HandleServices)
	m.HandleFunc("GET /api/requests", d.HandleRequests)
	m.HandleFunc("GET /api/requests/{id}", d.HandleRequest)
	m.HandleFunc("GET /api/summary", d.HandleSummary)
	m.HandleFunc("GET /api/series", d.HandleSeries)
	m.HandleFunc("GET /api/live", d.HandleLive)
	m.HandleFunc("GET /api/events", d.HandleEvents)
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	d.mux = m
}

// csp lets the pages load their own scripts, styles and images and talk to
// the dashboard, and nothing else.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (d *Dashboard) serveIndex(w http.ResponseWriter, r *http.Request) {
	page, err := assetsFS.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	w.Write(page)
}

func (d *Dashboard) assetHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache") // revalidated: embedded files carry the build's mod time
		d.assets.ServeHTTP(w, r)
	})
}
