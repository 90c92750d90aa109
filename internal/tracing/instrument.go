package tracing

import (
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// HTTPTransport wraps base so that each outgoing request (OIDC discovery,
// token exchange, keys, UserInfo) is a client span below the caller's
// span, named "METHOD host", and carries the W3C traceparent. Headers and
// bodies are not recorded (they hold client secrets, codes and tokens).
func HTTPTransport(base http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	return otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(Propagator()),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Host }),
	)
}

// InstrumentRedis adds a span per command (and per pipeline) to client,
// as a child of the caller's span. Commands' arguments are not recorded:
// they hold session IDs and sessions, which are credentials.
func InstrumentRedis(client redis.UniversalClient, tp trace.TracerProvider) error {
	if err := redisotel.InstrumentTracing(client,
		redisotel.WithTracerProvider(tp),
		redisotel.WithDBStatement(false),
		// The caller's file and line cost a stack walk per command.
		redisotel.WithCallerEnabled(false),
	); err != nil {
		return fmt.Errorf("trace redis: %w", err)
	}
	return nil
}

// PgxTracer is a pgx tracer that adds a span per statement, batch and
// pool acquire. It records the statement's text (our own SQL, with $n
// placeholders), never its arguments.
func PgxTracer(tp trace.TracerProvider) pgx.QueryTracer {
	// Its metrics are off (a no-op meter): groupgate's are Prometheus'.
	return otelpgx.NewTracer(otelpgx.WithTracerProvider(tp), otelpgx.WithMeterProvider(metricnoop.NewMeterProvider()))
}

// ConnectInterceptor adds an RPC span per Connect, gRPC or gRPC-Web call,
// a child of the HTTP server span. Its metrics are off: groupgate's
// metrics are Prometheus'. Request and response headers are not
// recorded (they carry bearer tokens).
func ConnectInterceptor(tp trace.TracerProvider) (connect.Interceptor, error) {
	i, err := otelconnect.NewInterceptor(
		otelconnect.WithTracerProvider(tp),
		otelconnect.WithPropagator(Propagator()),
		otelconnect.WithoutMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("trace connect: %w", err)
	}
	return i, nil
}
