package main

import (
	"strings"
	"testing"
	"time"
)

// TestReportRatios: the ratio columns are domo's against each peer, or,
// when domo itself did not run, plain MDP's through the domo broker; a
// system that did not run has a dash, not 0.00.
func TestReportRatios(t *testing.T) {
	r := row{Pipelined: false, Size: 64, Clients: 1}
	cell := func(n int64) []loadResult { return []loadResult{{Requests: n, Seconds: 1}} }
	for _, tc := range []struct {
		systems []string
		header  string
		ratios  string // the row's last three cells
	}{
		{[]string{"domo", "mdp", "nats"}, "| domo/NATS | domo/relay | domo/zmq |", "| 2.00 | – | – |"},
		{[]string{"mdp", "nats"}, "| MDP/NATS | MDP/relay | MDP/zmq |", "| 0.50 | – | – |"},
	} {
		h := &harness{k: 2, duration: 3 * time.Second, rounds: 2}
		results := map[string][]loadResult{
			r.String() + "|domo": cell(2000),
			r.String() + "|mdp":  cell(500),
			r.String() + "|nats": cell(1000),
		}
		report := h.report([]row{r}, tc.systems, results, time.Second)
		if !strings.Contains(report, tc.header) {
			t.Errorf("systems %v: no header %q in\n%s", tc.systems, tc.header, report)
		}
		if !strings.Contains(report, tc.ratios+"\n") {
			t.Errorf("systems %v: no row ending %q in\n%s", tc.systems, tc.ratios, report)
		}
	}
}
