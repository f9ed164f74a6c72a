//go:build race

package cluster

// raceEnabled builds the domo binary with the race detector when the tests
// run with it, so a race in the broker under failover fails the test.
const raceEnabled = true
