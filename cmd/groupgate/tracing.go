package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/broker/oidc"
	"github.com/groupgate/groupgate/internal/tracing"
	"github.com/groupgate/groupgate/store/postgres"
)

// TracingConfig is the tracing section: OpenTelemetry spans exported over
// OTLP. Off unless otlp_endpoint is set.
type TracingConfig struct {
	// OTLPEndpoint is the collector's URL, e.g. http://127.0.0.1:4318
	// (OTLP/HTTP) or http://127.0.0.1:4317 (OTLP/gRPC).
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Protocol is http (default) or grpc.
	Protocol string `yaml:"protocol"`
	// SampleRatio is the share of requests traced, 0 to 1 (default 1).
	SampleRatio float64 `yaml:"sample_ratio"`
	// Headers are sent with every export, e.g. a collector's API key.
	Headers []TracingHeader `yaml:"headers"`
	// ExportTimeout bounds one export (default 10s).
	ExportTimeout Duration `yaml:"export_timeout"`
}

// TracingHeader is one header of the exports.
type TracingHeader struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

func defaultTracingConfig() TracingConfig {
	return TracingConfig{Protocol: tracing.ProtocolHTTP, SampleRatio: 1}
}

// Enabled reports whether spans are exported.
func (tc TracingConfig) Enabled() bool { return tc.OTLPEndpoint != "" }

// tracingConfig is tc in the tracing package's terms.
func (tc TracingConfig) tracingConfig() tracing.Config {
	c := tracing.Config{
		OTLPEndpoint:  tc.OTLPEndpoint,
		Protocol:      tc.Protocol,
		SampleRatio:   tc.SampleRatio,
		ExportTimeout: tc.ExportTimeout.D(),
	}
	if fields := strings.Fields(versionText()); len(fields) > 1 {
		c.ServiceVersion = fields[1]
	}
	for _, h := range tc.Headers {
		if c.Headers == nil {
			c.Headers = map[string]string{}
		}
		c.Headers[h.Name] = h.Value
	}
	return c
}

// validateTracing reports the tracing section's problems.
func (d *decoder) validateTracing(c *Config) {
	problems := c.Tracing.tracingConfig().Check()
	for _, key := range slices.Sorted(maps.Keys(problems)) {
		d.problemf("tracing."+key, "%s", problems[key])
	}
	for i, h := range c.Tracing.Headers {
		if h.Name == "" {
			d.problemf(fmt.Sprintf("tracing.headers[%d].name", i), "required")
		}
	}
}

// buildTracing opens the tracer provider of cfg.Tracing (or of
// m.SpanExporter, for tests) and registers its shutdown, which flushes the
// spans still buffered, on Close. It is registered before everything it
// traces, so it is closed after them and no span is lost. Off, the
// provider is a no-op one and nothing is instrumented.
func (m *Main) buildTracing(ctx context.Context, cfg Config, logger *slog.Logger) (*tracing.Provider, error) {
	var opts []tracing.Option
	if m.SpanExporter != nil {
		opts = append(opts, tracing.WithExporter(m.SpanExporter))
	}
	tp, err := tracing.New(ctx, cfg.Tracing.tracingConfig(), opts...)
	if err != nil {
		return nil, err
	}
	if !tp.Enabled() {
		return tp, nil
	}
	endpoint := cfg.Tracing.OTLPEndpoint
	if u, err := url.Parse(endpoint); err == nil {
		endpoint = u.Redacted() // a password in the URL stays out of the log
	}
	logger.Info("tracing on", "otlp_endpoint", endpoint, "protocol", cfg.Tracing.Protocol, "sample_ratio", cfg.Tracing.SampleRatio)
	m.onClose(func() error {
		timeout := min(m.ShutdownTimeout, traceFlushTimeout)
		if timeout <= 0 {
			timeout = traceFlushTimeout
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		// Traces are best effort: a collector that is down or hung costs
		// the spans still buffered, not a failed exit.
		if err := tp.Shutdown(sctx); err != nil {
			logger.Warn("tracing: spans still buffered at shutdown were lost", "err", err)
		}
		return nil
	})
	return tp, nil
}

// traceFlushTimeout bounds the flush of buffered spans at shutdown (at
// most ShutdownTimeout), so that a hung collector delays a stop by
// seconds, not by the exporter's minute of retries.
const traceFlushTimeout = 5 * time.Second

// otelErrors logs OpenTelemetry's own errors (an export that failed while
// serving) instead of otel's default, which writes them to the standard
// library's logger, unstructured.
type otelErrors struct{ logger *slog.Logger }

func (o otelErrors) Handle(err error) {
	o.logger.Warn("tracing: export failed", "err", err)
}

// pgTracing traces PostgreSQL statements when tracing is on.
func pgTracing(tp *tracing.Provider) []postgres.Option {
	if !tp.Enabled() {
		return nil
	}
	return []postgres.Option{postgres.WithQueryTracer(tracing.PgxTracer(tp.TracerProvider()))}
}

// traceRedis adds a span per Redis command when tracing is on. Its hook
// is go-redis's, beside any other hook on client.
func traceRedis(client redis.UniversalClient, tp *tracing.Provider) error {
	if !tp.Enabled() {
		return nil
	}
	return tracing.InstrumentRedis(client, tp.TracerProvider())
}

// apiTracing adds RPC spans to the Connect API when tracing is on.
func apiTracing(tp *tracing.Provider) ([]api.Option, error) {
	if !tp.Enabled() {
		return nil, nil
	}
	i, err := tracing.ConnectInterceptor(tp.TracerProvider())
	if err != nil {
		return nil, err
	}
	return []api.Option{api.WithInterceptors(i)}, nil
}

// oidcTracing gives OIDC connectors an HTTP client whose calls to the IdP
// are client spans when tracing is on. Its timeout is broker/oidc's
// default client's.
func oidcTracing(tp *tracing.Provider) []oidc.Option {
	if !tp.Enabled() {
		return nil
	}
	return []oidc.Option{oidc.WithHTTPClient(&http.Client{
		Timeout:   30 * time.Second,
		Transport: tracing.HTTPTransport(http.DefaultTransport, tp.TracerProvider()),
	})}
}
