// Package tracing builds groupgate's OpenTelemetry tracer provider from
// the tracing configuration (an OTLP exporter over HTTP or gRPC, or none)
// and hands out the instrumentation of the libraries groupgate uses
// (go-redis, pgx, connect). It keeps no global state: callers pass its
// provider on explicitly, and it never touches otel's global provider.
package tracing
