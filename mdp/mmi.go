package mdp

import "strings"

// MMI (RFC 8): services whose names start with "mmi." are answered by the
// broker itself.
const (
	MMIPrefix   = "mmi."
	MMIService  = "mmi.service"  // body: a service name; reply "200" if it has workers, "404" if not
	MMIServices = "mmi.services" // domo: reply is a JSON array of ServiceInfo
	MMIWorkers  = "mmi.workers"  // domo: reply is a JSON array of WorkerInfo
	// MMIDocs (domo) is defined with the contract types, in contract.go.
)

// MMI reply codes (RFC 8).
const (
	MMIFound          = "200"
	MMINotFound       = "404"
	MMINotImplemented = "501"
)

// IsMMI reports whether service names a management query.
func IsMMI(service []byte) bool { return strings.HasPrefix(string(service), MMIPrefix) }

// ServiceInfo describes one service in the reply to mmi.services.
type ServiceInfo struct {
	Name     string `json:"name"`
	Workers  int    `json:"workers"`  // connected workers
	Ready    int    `json:"ready"`    // workers with free credit
	Capacity int    `json:"capacity"` // requests the workers take at once, in all
	InFlight int    `json:"in_flight"`
	Queued   int    `json:"queued"`
	// Methods is how many methods the service's contract lists (see
	// MMIDocs); 0 if its workers sent none.
	Methods int `json:"methods,omitempty"`
	// Contracts is how many different contracts its connected workers sent;
	// more than one means they disagree about the service.
	Contracts int `json:"contracts,omitempty"`
	// Digest identifies the contract mmi.docs returns for the service.
	Digest string `json:"digest,omitempty"`
}

// WorkerInfo describes one worker in the reply to mmi.workers.
type WorkerInfo struct {
	ID       string `json:"id"`
	Service  string `json:"service"`
	Protocol string `json:"protocol"` // MDPW01, or MDPW01+domo for an SDK worker
	Credit   int    `json:"credit"`
	InFlight int    `json:"in_flight"`
	Digest   string `json:"digest,omitempty"` // of the contract it sent in READY, if any
}
