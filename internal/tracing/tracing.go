package tracing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Protocols of the OTLP exporter.
const (
	ProtocolHTTP = "http" // OTLP/HTTP protobuf, usually port 4318
	ProtocolGRPC = "grpc" // OTLP/gRPC, usually port 4317
)

// ServiceName is the service.name resource attribute of every span.
const ServiceName = "groupgate"

// Config is the tracing section of the configuration file.
type Config struct {
	// OTLPEndpoint is the collector's URL: http://host:4318 for OTLP/HTTP
	// (the path /v1/traces is added when the URL has none), http://host:4317
	// for OTLP/gRPC. https:// uses TLS. Empty: tracing is off.
	OTLPEndpoint string
	// Protocol is ProtocolHTTP (default) or ProtocolGRPC.
	Protocol string
	// Headers are sent with every export (e.g. a collector's API key).
	Headers map[string]string
	// SampleRatio is the share of traces that start here to record, 0 to
	// 1. A request that arrives with a W3C traceparent follows its
	// sampling decision instead.
	SampleRatio float64
	// ServiceVersion is the service.version resource attribute.
	ServiceVersion string
	// ExportTimeout bounds one export (default 10s).
	ExportTimeout time.Duration
}

// Enabled reports whether c exports spans.
func (c Config) Enabled() bool { return c.OTLPEndpoint != "" }

// Check reports what is wrong with c, keyed by its field's YAML name.
func (c Config) Check() map[string]string {
	problems := map[string]string{}
	switch c.Protocol {
	case "", ProtocolHTTP, ProtocolGRPC:
	default:
		problems["protocol"] = fmt.Sprintf("%q is neither http nor grpc", c.Protocol)
	}
	if !(c.SampleRatio >= 0 && c.SampleRatio <= 1) { // NaN too
		problems["sample_ratio"] = fmt.Sprintf("must be between 0 and 1, is %v", c.SampleRatio)
	}
	if c.OTLPEndpoint != "" {
		u, err := url.Parse(c.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems["otlp_endpoint"] = fmt.Sprintf("%q is not an http(s) URL (write e.g. http://127.0.0.1:4318)", c.OTLPEndpoint)
		}
	}
	return problems
}

// Option sets an optional part of New.
type Option func(*options)

type options struct {
	exporter sdktrace.SpanExporter
}

// WithExporter exports to e, synchronously as each span ends, instead of
// to the configured OTLP endpoint, and turns tracing on even when no
// endpoint is configured. For tests (tracetest.NewInMemoryExporter).
func WithExporter(e sdktrace.SpanExporter) Option { return func(o *options) { o.exporter = e } }

// Provider is the tracer provider of one groupgate process: a no-op one
// when tracing is off.
type Provider struct {
	tp  trace.TracerProvider
	sdk *sdktrace.TracerProvider // nil when off
}

// New builds the provider cfg describes. Off (no endpoint, no
// WithExporter) it is otel's no-op provider, which records nothing and
// whose Enabled is false, so that callers leave their code
// uninstrumented. It opens no connection: exporters dial on first export.
func New(ctx context.Context, cfg Config, opts ...Option) (*Provider, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if !cfg.Enabled() && o.exporter == nil {
		return &Provider{tp: noop.NewTracerProvider()}, nil
	}
	if p := cfg.Check(); len(p) > 0 {
		var errs []error
		for _, k := range slices.Sorted(maps.Keys(p)) {
			errs = append(errs, fmt.Errorf("tracing.%s: %s", k, p[k]))
		}
		return nil, errors.Join(errs...)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", ServiceName)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.ServiceVersion))
	}
	popts := []sdktrace.TracerProviderOption{
		// Schemaless: resource.Default() would read OTEL_* variables and
		// pin a semconv schema URL that may clash with the exporters'.
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(newSampler(cfg.SampleRatio)),
	}
	if o.exporter != nil {
		popts = append(popts, sdktrace.WithSyncer(o.exporter))
	} else {
		exp, err := newExporter(ctx, cfg)
		if err != nil {
			return nil, err
		}
		popts = append(popts, sdktrace.WithBatcher(exp))
	}
	sdk := sdktrace.NewTracerProvider(popts...)
	return &Provider{tp: sdk, sdk: sdk}, nil
}

// newExporter is the OTLP exporter over cfg.Protocol.
func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	timeout := cfg.ExportTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	u, err := url.Parse(cfg.OTLPEndpoint)
	if err != nil {
		return nil, fmt.Errorf("tracing.otlp_endpoint: %w", err)
	}
	if cfg.Protocol == ProtocolGRPC {
		exp, err := otlptracegrpc.New(ctx,
			otlptracegrpc.WithEndpointURL(u.String()),
			otlptracegrpc.WithHeaders(cfg.Headers),
			otlptracegrpc.WithTimeout(timeout))
		if err != nil {
			return nil, fmt.Errorf("OTLP/gRPC trace exporter: %w", err)
		}
		return exp, nil
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(u.String()),
		otlptracehttp.WithHeaders(cfg.Headers),
		otlptracehttp.WithTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("OTLP/HTTP trace exporter: %w", err)
	}
	return exp, nil
}

// TracerProvider is the provider to hand to instrumented code; a nil
// Provider's is the no-op one.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return noop.NewTracerProvider()
	}
	return p.tp
}

// Enabled reports whether spans are recorded and exported (false on a nil
// Provider). Callers skip instrumentation altogether when it is false, so
// that tracing off costs nothing.
func (p *Provider) Enabled() bool { return p != nil && p.sdk != nil }

// Shutdown exports the spans still buffered and stops the exporter,
// within ctx. A no-op when tracing is off.
func (p *Provider) Shutdown(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// Propagator is how trace context crosses process boundaries: W3C Trace
// Context (traceparent, tracestate) only. Baggage is not propagated: it
// would let any client put values into groupgate's outgoing requests.
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }
