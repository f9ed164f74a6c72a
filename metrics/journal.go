package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domo-framework/domo/journal"
)

// JournalStatsSource is what a JournalCollector reads: *journal.Recorder
// satisfies it.
type JournalStatsSource interface {
	Stats() journal.Stats
}

// JournalCollector reports a journal Recorder's counters on each scrape:
//
//	domo_journal_events_total          broker events read
//	domo_journal_dropped_total         events not recorded: the store could not keep up
//	domo_journal_written_total         record writes that reached the store
//	domo_journal_batches_total         transactions
//	domo_journal_write_errors_total    failed transactions
//	domo_journal_lost_total            record writes lost in failed transactions
//	domo_journal_trimmed_total         records deleted by retention
//	domo_journal_trim_errors_total     failed retention runs
//	domo_journal_pending               records waiting for the store
//	domo_journal_live                  requests received and not yet ended
//
// Events the journal's subscription had no room for are
// domo_eventbus_dropped_total{subscriber="journal"} (and, for a broker
// whose events go through Config.Events, domo_broker_events_dropped_total).
// It is safe for concurrent use.
type JournalCollector struct {
	src JournalStatsSource
}

type journalSeries struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	get  func(*journal.Stats) float64
}

var journalMetrics = func() []journalSeries {
	counter := func(name, help string, get func(*journal.Stats) uint64) journalSeries {
		return journalSeries{
			desc: prometheus.NewDesc("domo_journal_"+name+"_total", help, nil, nil),
			kind: prometheus.CounterValue,
			get:  func(s *journal.Stats) float64 { return float64(get(s)) },
		}
	}
	gauge := func(name, help string, get func(*journal.Stats) int) journalSeries {
		return journalSeries{
			desc: prometheus.NewDesc("domo_journal_"+name, help, nil, nil),
			kind: prometheus.GaugeValue,
			get:  func(s *journal.Stats) float64 { return float64(get(s)) },
		}
	}
	return []journalSeries{
		counter("events", "Broker events the journal read.", func(s *journal.Stats) uint64 { return s.Events }),
		counter("dropped", "Events not recorded because the store could not keep up.", func(s *journal.Stats) uint64 { return s.Dropped }),
		counter("written", "Record writes that reached the store (a request may be written more than once).", func(s *journal.Stats) uint64 { return s.Written }),
		counter("batches", "Transactions written to the store.", func(s *journal.Stats) uint64 { return s.Batches }),
		counter("write_errors", "Transactions that failed.", func(s *journal.Stats) uint64 { return s.WriteErrors }),
		counter("lost", "Record writes lost in failed transactions.", func(s *journal.Stats) uint64 { return s.Lost }),
		counter("trimmed", "Records deleted by retention.", func(s *journal.Stats) uint64 { return s.Trimmed }),
		counter("trim_errors", "Retention runs that failed.", func(s *journal.Stats) uint64 { return s.TrimErrors }),
		gauge("pending", "Records waiting for the store: gathered, or in a write not yet done.", func(s *journal.Stats) int { return s.Pending }),
		gauge("live", "Requests received and not yet ended.", func(s *journal.Stats) int { return s.Live }),
	}
}()

// NewJournalCollector returns a collector of r's counters.
func NewJournalCollector(r JournalStatsSource) *JournalCollector {
	return &JournalCollector{src: r}
}

// Describe implements prometheus.Collector.
func (c *JournalCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range journalMetrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *JournalCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	for _, m := range journalMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.get(&st))
	}
}
