package otlp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/domo-framework/domo/tracing/otlp"
)

func TestSetupOffByDefault(t *testing.T) {
	before := otel.GetTracerProvider()
	shutdown, err := otlp.Setup(context.Background(), "")
	if err != nil {
		t.Fatalf("Setup(\"\") = %v", err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown = %v", err)
	}
	if otel.GetTracerProvider() != before {
		t.Fatal("Setup(\"\") changed the global tracer provider")
	}
	for _, bad := range []string{"localhost:4318", "ftp://x", "http://"} {
		if _, err := otlp.Setup(context.Background(), bad); err == nil {
			t.Errorf("Setup(%q) = nil; want an error", bad)
		}
	}
}

func TestSetupExports(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	var bodies int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		if len(b) > 0 {
			bodies++
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()

	before := otel.GetTracerProvider()
	defer otel.SetTracerProvider(before)
	ctx := context.Background()
	shutdown, err := otlp.Setup(ctx, srv.URL, otlp.ServiceName("test"))
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(ctx, "tea.brew")
	span.End()
	if err := shutdown(ctx); err != nil { // flushes the batch
		t.Fatalf("shutdown = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "POST /v1/traces application/x-protobuf" || bodies != 1 {
		t.Fatalf("collector got %q (%d with a body); want one POST /v1/traces application/x-protobuf", paths, bodies)
	}
}
