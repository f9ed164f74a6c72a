// Package dashboard is domo's web dashboard: an http.Handler that shows a
// broker's health (brokers, services, workers, queues, request and error
// rates, latency percentiles over time), each service with its workers and
// its methods' docs, and, from the request journal, the requests (summary,
// failed, in progress, successful; searched by service, method, status,
// time and request id) and each one's timeline. Pages update live over
// server-sent events. Its pages, styles and scripts are embedded in the
// binary; they load nothing from elsewhere.
//
//	store, _ := journal.Open("sqlite:/var/lib/domo/journal.db")
//	dash := dashboard.New(dashboard.Config{
//		Broker:    b,     // *broker.Broker
//		Journal:   store, // nil: the journal is off
//		Contracts: dashboard.MMIDocs(c),
//		Title:     "production",
//	})
//	defer dash.Close()
//	mux.Handle("/", dash) // pages at /, JSON API under /api/
//
// The JSON API (see docs/dashboard.md): api/health, api/services,
// api/requests (keyset pages), api/requests/{id}, api/summary, api/series,
// api/live and the event stream api/events. The data behind each endpoint
// is also a method (Health, Services, Requests, Request, Summary, Series,
// Live), so tools can use it without HTTP.
package dashboard
