// Package interop holds tests that run domo against peers it did not
// write: plain MDP/0.1 clients and workers in Python on pyzmq, and domo's
// own SDKs in separate processes that the tests kill.
package interop
