package gateway

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// jwks is a JSON Web Key Set fetched from a URL, refreshed in the
// background and on demand when a token names a key it does not hold. It
// is safe for concurrent use.
type jwks struct {
	url        string
	hc         *http.Client
	log        *slog.Logger
	minRefresh time.Duration

	mu   sync.RWMutex
	keys map[string]any // by key id
	all  []any

	fetchMu     sync.Mutex // one fetch at a time; guards lastAttempt
	lastAttempt time.Time
}

const (
	jwksTimeout = 10 * time.Second
	jwksMaxSize = 1 << 20
)

func newJWKS(url string, minRefresh time.Duration, log *slog.Logger) *jwks {
	return &jwks{url: url, hc: &http.Client{Timeout: jwksTimeout}, log: log, minRefresh: minRefresh}
}

// lookup returns the keys that may verify a token naming kid: the one key
// with that id, or every key when kid is empty. An unknown kid makes it
// fetch the set again, unless it did less than minRefresh ago. It blocks
// for at most one fetch.
func (j *jwks) lookup(ctx context.Context, kid string) []any {
	if ks := j.find(kid); len(ks) > 0 || kid == "" {
		return ks
	}
	j.fetchMu.Lock()
	if time.Since(j.lastAttempt) >= j.minRefresh {
		j.fetchLocked(ctx)
	}
	j.fetchMu.Unlock()
	return j.find(kid)
}

func (j *jwks) find(kid string) []any {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if kid == "" {
		return j.all
	}
	if k, ok := j.keys[kid]; ok {
		return []any{k}
	}
	return nil
}

// refresh fetches the set now. It blocks until the fetch ends.
func (j *jwks) refresh(ctx context.Context) error {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	return j.fetchLocked(ctx)
}

// run refreshes the set every interval until ctx ends. It blocks.
func (j *jwks) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			j.refresh(ctx)
		}
	}
}

// fetchLocked fetches and installs the set; on failure the keys held stay.
// j.fetchMu is held.
func (j *jwks) fetchLocked(ctx context.Context) error {
	j.lastAttempt = time.Now()
	keys, err := j.fetch(ctx)
	if err != nil {
		j.log.Warn("gateway: JWKS fetch failed; keeping the keys held", "url", j.url, "err", err)
		return err
	}
	all := make([]any, 0, len(keys))
	for _, k := range keys {
		all = append(all, k)
	}
	j.mu.Lock()
	j.keys, j.all = keys, all
	j.mu.Unlock()
	j.log.Debug("gateway: JWKS fetched", "url", j.url, "keys", len(keys))
	return nil
}

func (j *jwks) fetch(ctx context.Context) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", j.url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > jwksMaxSize {
		return nil, fmt.Errorf("GET %s: key set larger than %d bytes", j.url, jwksMaxSize)
	}
	return parseJWKS(data)
}

// jwk is one JSON Web Key (RFC 7517), the fields we use.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS decodes a key set's RSA and EC signing keys by key id; keys of
// other types, or for encryption, are skipped. A key without an id gets
// its index as one.
func parseJWKS(data []byte) (map[string]any, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	out := make(map[string]any, len(set.Keys))
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var key any
		var err error
		switch k.Kty {
		case "RSA":
			key, err = k.rsa()
		case "EC":
			key, err = k.ec()
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key set: key %d (%q): %w", i, k.Kid, err)
		}
		id := k.Kid
		if id == "" {
			id = fmt.Sprintf("#%d", i)
		}
		out[id] = key
	}
	return out, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("bad base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}

func (k jwk) rsa() (*rsa.PublicKey, error) {
	n, err := b64int(k.N)
	if err != nil {
		return nil, fmt.Errorf("n: %w", err)
	}
	e, err := b64int(k.E)
	if err != nil {
		return nil, fmt.Errorf("e: %w", err)
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || n.BitLen() < 2048 {
		return nil, fmt.Errorf("unacceptable RSA key (%d bits, e=%v)", n.BitLen(), e)
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func (k jwk) ec() (*ecdsa.PublicKey, error) {
	var (
		c  elliptic.Curve
		dh ecdh.Curve
	)
	switch k.Crv {
	case "P-256":
		c, dh = elliptic.P256(), ecdh.P256()
	case "P-384":
		c, dh = elliptic.P384(), ecdh.P384()
	case "P-521":
		c, dh = elliptic.P521(), ecdh.P521()
	default:
		return nil, fmt.Errorf("curve %q not supported", k.Crv)
	}
	x, err := b64int(k.X)
	if err != nil {
		return nil, fmt.Errorf("x: %w", err)
	}
	y, err := b64int(k.Y)
	if err != nil {
		return nil, fmt.Errorf("y: %w", err)
	}
	// crypto/ecdh checks that the point is on the curve.
	size := (c.Params().BitSize + 7) / 8
	if len(x.Bytes()) > size || len(y.Bytes()) > size {
		return nil, fmt.Errorf("coordinates too long for %s", k.Crv)
	}
	point := make([]byte, 1+2*size)
	point[0] = 4 // uncompressed
	x.FillBytes(point[1 : 1+size])
	y.FillBytes(point[1+size:])
	if _, err := dh.NewPublicKey(point); err != nil {
		return nil, fmt.Errorf("point not on curve %s", k.Crv)
	}
	return &ecdsa.PublicKey{Curve: c, X: x, Y: y}, nil
}
