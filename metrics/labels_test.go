package metrics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo"
	"github.com/domo-framework/domo/broker"
	"github.com/domo-framework/domo/mdp"
	"github.com/prometheus/client_golang/prometheus"
)

type fixedStats broker.Stats

func (f fixedStats) Stats(context.Context) (broker.Stats, error) { return broker.Stats(f), nil }

// TestLabelsNotUTF8: names that are not UTF-8 (a plain MDP client may ask
// for any service name) become label values with U+FFFD; the client
// library panics on them otherwise, which took the broker down.
func TestLabelsNotUTF8(t *testing.T) {
	rec := NewRecorder()
	now := time.Now()
	for _, e := range []broker.Event{
		{Kind: broker.Dispatched, Service: "tea\xff", Method: "brew", Time: now, Received: now},
		{Kind: broker.Completed, Service: "tea\xff", Method: "br\xfeew", Time: now, Received: now},
		{Kind: broker.Failed, Service: "tea\xff", Method: "brew", Code: domo.CodeInternal, Time: now, Received: now},
		{Kind: broker.Dropped, Service: "\xff\xfe", Time: now, Received: now},
		{Kind: broker.Failed, Service: "tea", Method: "brew", Code: "bad\xffcode", Time: now, Received: now},
	} {
		rec.Observe(e)
	}
	// Error codes come from workers: beyond MaxStatuses they share one label.
	for i := range MaxStatuses + 10 {
		rec.Observe(broker.Event{Kind: broker.Failed, Service: "tea", Method: "brew", Code: domo.Code(fmt.Sprint("code_", i)), Time: now, Received: now})
	}
	coll := NewBrokerCollector(fixedStats{Services: []mdp.ServiceInfo{{Name: "q\xffq", Queued: 3}}}, time.Second)
	reg := prometheus.NewRegistry()
	reg.MustRegister(rec, coll)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, f := range families {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), "\uFFFD") {
					seen = append(seen, f.GetName()+"{"+l.GetValue()+"}")
				}
			}
		}
	}
	statuses := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "domo_requests_total" {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "status" {
					statuses[l.GetValue()] = true
				}
			}
		}
	}
	if len(statuses) > MaxStatuses+3 || !statuses[LabelOther] || !statuses["bad\uFFFDcode"] {
		t.Errorf("%d statuses (want at most %d and %s, bad\uFFFDcode among them): %v", len(statuses), MaxStatuses+3, LabelOther, statuses)
	}
	for _, want := range []string{"domo_requests_total{tea\uFFFD}", "domo_requests_total{\uFFFD}", "domo_broker_queue_depth{q\uFFFDq}"} {
		found := false
		for _, s := range seen {
			found = found || s == want
		}
		if !found {
			t.Errorf("no series %s among %v", want, seen)
		}
	}
}
