package tracing

import (
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// newSampler follows a sampled parent; a trace that starts here is
// recorded at ratio when it starts with a server span (an incoming
// request), never otherwise. Background work (the outbox runner, key
// rotation, the session cache's subscription) runs Redis commands and SQL
// without a request around it; each would be a one-span trace of its own
// every few seconds, drowning the requests in noise.
func newSampler(ratio float64) sdktrace.Sampler {
	return sdktrace.ParentBased(requestRoots{ratio: sdktrace.TraceIDRatioBased(ratio), desc: fmt.Sprintf("RequestRoots{%g}", ratio)})
}

type requestRoots struct {
	ratio sdktrace.Sampler
	desc  string
}

func (s requestRoots) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.Kind != trace.SpanKindServer {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
	}
	return s.ratio.ShouldSample(p)
}

func (s requestRoots) Description() string { return s.desc }
