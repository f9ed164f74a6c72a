// Package cluster holds the process-level tests of a cluster of domo
// brokers: real `domo broker` processes (built once by TestMain) that are
// SIGKILLed, SIGSTOPped and restarted under a client calling in a loop,
// worker processes (the test binary re-executed in a role) killed in the
// middle of a request, offloading between peered brokers, and discovery by
// multicast across network namespaces. It has no non-test code.
//
//	go test -race ./internal/cluster/
//
// With DOMO_CLUSTER_BENCH=1, TestBenchCluster also measures what
// docs/benchmarks.md ("Many brokers") records: the time from a broker's death to the
// first successful call through another one, and the throughput of three
// peered brokers against one.
package cluster
