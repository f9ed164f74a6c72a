package gateway

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strings"
)

// page is the documentation page: it fetches /openapi.json and renders it
// with a small script of its own; it loads nothing from elsewhere.
//
//go:embed page.html
var page []byte

// pageCSP allows the page's one inline script (by its hash), its inline
// style, and requests to the gateway itself, and nothing else.
var pageCSP = func() string {
	s := string(page)
	start := strings.Index(s, "<script>") + len("<script>")
	end := strings.Index(s, "</script>")
	sum := sha256.Sum256([]byte(s[start:end]))
	return "default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; script-src 'sha256-" +
		base64.StdEncoding.EncodeToString(sum[:]) + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

func servePage(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return notAllowed(w, "GET, HEAD")
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(page)
	return nil
}
