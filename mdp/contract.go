package mdp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Contracts: a domo worker describes its service in READY, and the broker
// serves the descriptions over MMI (mmi.docs). The description travels as
// the JSON of a ServiceContract in the READY extension headers, under
// HeaderContract; plain MDP workers send none.

// HeaderContract is the READY extension header carrying the worker's
// ServiceContract as JSON.
const HeaderContract = "contract"

// MMIDocs is domo's management query for contracts: the payload is a
// service name, the reply the JSON of its ServiceContract; an empty payload
// asks for every service, and the reply is a JSON array of them.
const MMIDocs = "mmi.docs"

// ServiceContract describes a service: its methods, each with a doc string
// and the JSON Schemas of its request and reply.
type ServiceContract struct {
	Service string           `json:"service"`
	Doc     string           `json:"doc,omitempty"`
	Methods []MethodContract `json:"methods"`
	// Digest identifies this description; two workers of a service whose
	// digests differ disagree about it. The worker computes it over the
	// JSON of the other fields.
	Digest string `json:"digest,omitempty"`
}

// MethodContract describes one method.
type MethodContract struct {
	Name string `json:"name"`
	Doc  string `json:"doc,omitempty"`
	// Request and Reply are JSON Schemas (draft 2020-12); absent when the
	// method takes or returns raw bytes.
	Request json.RawMessage `json:"request,omitempty"`
	Reply   json.RawMessage `json:"reply,omitempty"`
	// Streaming reports that the method sends partial replies.
	Streaming bool `json:"streaming,omitempty"`
	// Sensitive marks a method whose bodies must never be recorded (in a
	// journal, logs or traces), whatever else is configured.
	Sensitive bool `json:"sensitive,omitempty"`
}

// ParseContract decodes a contract from its JSON, checking that it names
// a service and that its methods have distinct, non-empty names.
func ParseContract(data []byte) (ServiceContract, error) {
	var c ServiceContract
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%w: contract: %v", ErrMalformed, err)
	}
	if c.Service == "" {
		return c, fmt.Errorf("%w: contract names no service", ErrMalformed)
	}
	seen := make(map[string]bool, len(c.Methods))
	for _, m := range c.Methods {
		if m.Name == "" || seen[m.Name] {
			return c, fmt.Errorf("%w: contract of %q: empty or repeated method name %q", ErrMalformed, c.Service, m.Name)
		}
		seen[m.Name] = true
	}
	return c, nil
}

// ComputeDigest returns the digest of c: "sha256:" and the hex SHA-256 of
// the JSON of c with its Digest field empty. JSON Schemas are compacted
// first, so the digest does not depend on their layout.
func (c ServiceContract) ComputeDigest() string {
	c.Digest = ""
	b, err := json.Marshal(c)
	if err != nil { // a schema that is not JSON: digest it as it came
		c.Methods = nil
		b, _ = json.Marshal(c)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
