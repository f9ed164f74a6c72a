//go:build race

package dashboard_test

// raceEnabled: the race detector slows the journal's Go side (the
// Recorder, the driver) down several times, so the large-journal test
// writes fewer rows under it.
const raceEnabled = true
