// Package otlp sends domo's spans to an OpenTelemetry collector over
// OTLP/HTTP. Tracing is off unless Setup is given an endpoint:
//
//	shutdown, err := otlp.Setup(ctx, *traceEndpoint, otlp.ServiceName("domo-broker"))
//	if err != nil {
//		return err
//	}
//	defer shutdown(context.Background()) // flushes the spans still batched
//
// It lives apart from package tracing so that programs which only carry
// trace context (every client and worker) do not link the exporter.
package otlp

import (
	"context"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Option configures Setup.
type Option func(*config)

type config struct {
	service string
	sampler sdktrace.Sampler
	sync    bool
}

// ServiceName sets the service.name resource attribute ("domo" by default).
func ServiceName(name string) Option { return func(c *config) { c.service = name } }

// Sampler sets the root sampler; the default samples what the caller
// sampled, and every trace started here (sdktrace.ParentBased(AlwaysSample)).
func Sampler(s sdktrace.Sampler) Option { return func(c *config) { c.sampler = s } }

// Synchronous exports each span as it ends instead of in batches: for
// tests and debugging only.
func Synchronous() Option { return func(c *config) { c.sync = true } }

// Setup installs a global tracer provider that exports spans to endpoint,
// the collector's OTLP/HTTP URL ("http://localhost:4318" or with a path,
// "https://collector.example/v1/traces"; "/v1/traces" if it has none), and
// sets W3C Trace Context as the global propagator. An empty endpoint
// leaves tracing off: the global provider stays a no-op and shutdown does
// nothing. Call shutdown before exit to flush batched spans; it blocks
// until they are sent or ctx ends. Setup does not block on the network.
func Setup(ctx context.Context, endpoint string, opts ...Option) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if endpoint == "" {
		return noop, nil
	}
	cfg := config{service: "domo", sampler: sdktrace.ParentBased(sdktrace.AlwaysSample())}
	for _, o := range opts {
		o(&cfg)
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return noop, fmt.Errorf("tracing: endpoint %q: want an http:// or https:// URL", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()))
	if err != nil {
		return noop, fmt.Errorf("tracing: OTLP exporter for %s: %w", endpoint, err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", cfg.service)))
	if err != nil {
		return noop, fmt.Errorf("tracing: resource: %w", err)
	}
	export := sdktrace.WithBatcher(exp)
	if cfg.sync {
		export = sdktrace.WithSyncer(exp)
	}
	tp := sdktrace.NewTracerProvider(export, sdktrace.WithResource(res), sdktrace.WithSampler(cfg.sampler))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Shutdown, nil
}
