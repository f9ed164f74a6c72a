// Package examples holds the demo services that `domo demo` runs: tea,
// coffee and water. Each subpackage is a small, complete service written
// with the worker SDK; read them as templates.
package examples
