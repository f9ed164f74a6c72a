// Package journal records every request's life as the broker saw it:
// received, dispatched (to which worker), completed, failed or dropped, with
// timings (queue wait, handling, total), service, method, caller, request id
// and sizes; one row per request, rewritten as it moves on, so requests in
// progress are visible.
//
// The broker reports steps on a bounded channel (broker.Config.Events) and
// never waits on it. A Recorder reads that channel, folds events by request
// in memory, and writes batches to a Store from a goroutine of its own; when
// the store falls behind, the batch grows up to Config.MaxPending records and
// then events are dropped and counted (Stats.Dropped), never the routing.
// Retention (Config.Retention, Config.MaxRows) runs every TrimInterval.
//
// Stores, one package per technology, register with Open:
// journal/sqlite (embedded, WAL) and journal/postgres (shared by many
// brokers). journal/journaltest is the suite both pass.
//
//	store, err := journal.Open("sqlite:/var/lib/domo/journal.db") // with _ ".../journal/sqlite"
//	events := make(chan broker.Event, 65536)
//	cfg.Events = events // broker.Config
//	rec := journal.NewRecorder(store, journal.Config{Broker: id, Retention: 7 * 24 * time.Hour})
//	go rec.Run(ctx, events)
//
// A dashboard reads the store: List (filters and keyset pages, newest
// first), Get (one request; Record.Timeline for its steps) and Summary
// (counts by status and latency percentiles over a window; the stores keep
// per-minute rollups, so a long window costs its minutes, not its rows).
package journal
