package mdp_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/domo-framework/domo/mdp"
)

func TestDefaultLimits(t *testing.T) {
	got := mdp.DefaultLimits()
	want := mdp.Limits{MaxFrames: 64, MaxFrameSize: 4 << 20, MaxMessageSize: 4 << 20}
	if got != want {
		t.Errorf("DefaultLimits() = %+v; want %+v", got, want)
	}
}

func TestLimitsCheck(t *testing.T) {
	small := mdp.Limits{MaxFrames: 3, MaxFrameSize: 4, MaxMessageSize: 6}
	def := mdp.DefaultLimits()
	tests := []struct {
		name   string
		limits mdp.Limits
		frames [][]byte
		want   error
	}{
		{"nothing", small, nil, nil},
		{"at every limit", small, fr("aa", "bbbb", ""), nil},
		{"one frame too many", small, fr("", "", "", ""), mdp.ErrTooManyFrames},
		{"frame one byte too large", small, fr("aaaaa"), mdp.ErrFrameTooLarge},
		{"message one byte too large", small, fr("aaa", "bbbb"), mdp.ErrTooLarge},
		{"frame count checked first", small, fr("aaaaa", "", "", ""), mdp.ErrTooManyFrames},
		{"zero limits mean none", mdp.Limits{}, make([][]byte, 1000), nil},
		{"default: 64 frames", def, make([][]byte, 64), nil},
		{"default: 65 frames", def, make([][]byte, 65), mdp.ErrTooManyFrames},
		{"default: 4 MiB frame", def, [][]byte{make([]byte, 4<<20)}, nil},
		{"default: 4 MiB + 1 frame", def, [][]byte{make([]byte, 4<<20+1)}, mdp.ErrFrameTooLarge},
		{"default: 4 MiB + 1 message", def, [][]byte{make([]byte, 2<<20), make([]byte, 2<<20), {0}}, mdp.ErrTooLarge},
	}
	all := []error{mdp.ErrTooManyFrames, mdp.ErrFrameTooLarge, mdp.ErrTooLarge}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.limits.Check(tt.frames)
			if tt.want == nil {
				if err != nil {
					t.Errorf("%+v.Check(%d frames) = %v; want nil", tt.limits, len(tt.frames), err)
				}
				return
			}
			for _, c := range all {
				if errors.Is(err, c) != (c == tt.want) {
					t.Errorf("%+v.Check(%d frames) = %v; want %v", tt.limits, len(tt.frames), err, tt.want)
				}
			}
		})
	}
}

func TestIsMMI(t *testing.T) {
	tests := []struct {
		service string
		want    bool
	}{
		{mdp.MMIService, true},
		{mdp.MMIServices, true},
		{mdp.MMIWorkers, true},
		{"mmi.", true},
		{"mmi.anything", true},
		{"mmi", false},
		{"MMI.service", false},
		{"xmmi.service", false},
		{"", false},
		{"echo", false},
	}
	for _, tt := range tests {
		if got := mdp.IsMMI([]byte(tt.service)); got != tt.want {
			t.Errorf("IsMMI(%q) = %t; want %t", tt.service, got, tt.want)
		}
	}
}

// TestMMIJSON pins the JSON field names of the mmi.services and mmi.workers
// replies: they are part of the protocol.
func TestMMIJSON(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{[]mdp.ServiceInfo{{Name: "tea", Workers: 2, Ready: 1, Capacity: 32, InFlight: 5, Queued: 0}},
			`[{"name":"tea","workers":2,"ready":1,"capacity":32,"in_flight":5,"queued":0}]`},
		{[]mdp.WorkerInfo{{ID: "0a1b", Service: "tea", Protocol: "MDPW01+domo", Credit: 16, InFlight: 3}},
			`[{"id":"0a1b","service":"tea","protocol":"MDPW01+domo","credit":16,"in_flight":3}]`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.v)
		if err != nil || string(got) != tt.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s", tt.v, got, err, tt.want)
		}
	}
	consts := []struct{ got, want string }{
		{mdp.MMIPrefix, "mmi."}, {mdp.MMIService, "mmi.service"}, {mdp.MMIServices, "mmi.services"},
		{mdp.MMIWorkers, "mmi.workers"}, {mdp.MMIFound, "200"}, {mdp.MMINotFound, "404"}, {mdp.MMINotImplemented, "501"},
	}
	for _, c := range consts {
		if c.got != c.want {
			t.Errorf("MMI constant %q; want %q", c.got, c.want)
		}
	}
}
