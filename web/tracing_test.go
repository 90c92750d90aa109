package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// authRequest is /auth with cookie, as a proxy sends it.
func authRequest(cookie *http.Cookie) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/auth", nil)
	req.AddCookie(cookie)
	return req
}

// TestTracingJoinsTheProxysTrace: /auth's server span continues the trace
// of the traceparent the proxy sent, is named for its route, and has the
// session read below it.
func TestTracingJoinsTheProxysTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	h := newHarness(t, harnessConfig{backend: backends[0], tracer: tp})
	c := h.browser()
	h.login(c, "demo", "alice", "/", "/")
	exp.Reset()

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req := authRequest(h.sessionCookie(c))
	req.Header.Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
	w := httptest.NewRecorder()
	h.web.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("/auth = %d", w.Code)
	}
	var server, current *tracetest.SpanStub
	spans := exp.GetSpans()
	for i, s := range spans {
		switch s.Name {
		case "GET /auth":
			server = &spans[i]
		case "session.Current":
			current = &spans[i]
		}
	}
	if server == nil || current == nil {
		t.Fatalf("spans %v, want GET /auth and session.Current", spans)
	}
	if got := server.SpanContext.TraceID().String(); got != traceID {
		t.Errorf("trace %s, want the proxy's %s", got, traceID)
	}
	if got := server.Parent.SpanID().String(); got != parentID || !server.Parent.IsRemote() {
		t.Errorf("parent %s (remote %v), want the proxy's %s", got, server.Parent.IsRemote(), parentID)
	}
	if server.SpanKind != trace.SpanKindServer {
		t.Errorf("kind %v", server.SpanKind)
	}
	if current.Parent.SpanID() != server.SpanContext.SpanID() {
		t.Errorf("session.Current's parent is %v, not the server span", current.Parent.SpanID())
	}
	if !strings.Contains(h.logs.String(), "trace_id="+traceID) {
		t.Errorf("the request log does not name the trace:\n%s", h.logs.String())
	}
}

// TestTracingOffAddsNoAllocationsToAuth: with no tracer provider, or
// otel's no-op one, /auth allocates exactly as much: the no-op path leaves
// the handler chain untouched.
func TestTracingOffAddsNoAllocationsToAuth(t *testing.T) {
	allocs := func(tp trace.TracerProvider) float64 {
		h := newHarness(t, harnessConfig{backend: backends[0], tracer: tp})
		c := h.browser()
		h.login(c, "demo", "alice", "/", "/")
		cookie, handler := h.sessionCookie(c), h.web.Handler()
		return testing.AllocsPerRun(200, func() {
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, authRequest(cookie))
			if w.Code != http.StatusOK {
				t.Fatalf("/auth = %d", w.Code)
			}
		})
	}
	// Under the race detector sync.Pool drops items at random; the
	// tolerance stays far below what a wrapped chain adds (about 35).
	tolerance := 0.0
	if raceEnabled {
		tolerance = 3
	}
	off, noopTP := allocs(nil), allocs(noop.NewTracerProvider())
	if noopTP > off+tolerance {
		t.Errorf("/auth allocates %v times with the no-op provider, %v without", noopTP, off)
	}
	// The measurement can tell: recording spans does allocate.
	if on := allocs(sdktrace.NewTracerProvider()); on <= off+10 {
		t.Errorf("/auth allocates %v times traced, %v untraced: the measurement cannot tell", on, off)
	}
}

// BenchmarkAuthTracing compares /auth untraced, with otel's no-op
// provider (tracing off: identical by construction), and traced with
// every request sampled into a provider that exports nowhere (the cost
// of the instrumentation itself, exporter excluded).
func BenchmarkAuthTracing(b *testing.B) {
	for _, c := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"off", nil},
		{"no-op provider", noop.NewTracerProvider()},
		{"on, every request sampled", sdktrace.NewTracerProvider()},
		{"on, no request sampled", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := newHarness(b, harnessConfig{backend: backends[0], tracer: c.tp})
			cl := h.browser()
			h.login(cl, "demo", "alice", "/", "/")
			benchAuth(b, h.web.Handler(), h.sessionCookie(cl))
		})
	}
}
