//go:build race

package dashboard_test

// raceEnabled: the race detector slows the pure-Go SQLite down several
// times, so the large-journal test writes fewer rows under it.
const raceEnabled = true
